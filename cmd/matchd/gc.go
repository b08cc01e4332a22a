package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// heapFloor is the smallest heap goal matchd lets the garbage collector
// aim for: unless GOGC or GOMEMLIMIT is set, a GC starts no earlier than
// when the heap reaches about heapFloor, and at GOGC=100's usual point
// (twice the live heap and stacks) once the live heap passes half of it.
//
// Why: a busy instance with few sockets has a live heap of a few MB, and at
// GOGC=100 collected it ten times a second under 1,000 joins/s (110 cycles
// in a 12 s matchload run). Each cycle stops the world twice and takes a
// core for marking, and on a 2-core machine shared with other processes
// those pauses stretched to milliseconds: in an execution trace most of the
// time goroutines spent runnable but not running was behind GC starts.
// 64 MiB is small next to any server's memory and next to what 10,000 idle
// sockets hold (about 100 MB live), whose collections it leaves unchanged.
const heapFloor = 64 << 20

// minHeap is the Go runtime's smallest heap goal at GOGC=100.
const minHeap = 4 << 20

// keepHeapFloor raises GOGC after each collection so that the next one's
// goal is about floor bytes, never lowering it below 100, and returns a
// function that stops doing so and restores GOGC=100.
func keepHeapFloor(floor uint64) (stop func()) {
	var stopped atomic.Bool
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	last := 100
	tune := func() {
		metrics.Read(samples)
		live := samples[0].Value.Uint64()
		// GOGC's goal is live + (live + stacks + globals) * GOGC/100.
		scan := max(live+samples[1].Value.Uint64()+samples[2].Value.Uint64(), 1<<20)
		percent := 100
		if live < floor {
			// The runtime's smallest goal, 4 MiB at GOGC=100, grows with
			// GOGC too: capped, it stays at most floor.
			percent = max(100, min(int((floor-live)*100/scan), int(floor*100/minHeap)))
		}
		// Only a change of more than a tenth is worth setting.
		if percent*10 < last*9 || percent*10 > last*11 {
			debug.SetGCPercent(percent)
			last = percent
		}
	}
	// A sentinel whose finalizer runs after each collection and makes the
	// next sentinel; it holds a pointer so that it is not a tiny
	// allocation, whose finalizer might never run.
	type sentinel struct {
		_ *int
		_ [16]byte
	}
	var arm func()
	arm = func() {
		runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
			if stopped.Load() {
				return
			}
			tune()
			arm()
		})
	}
	tune()
	arm()
	return func() {
		stopped.Store(true)
		debug.SetGCPercent(100)
	}
}
