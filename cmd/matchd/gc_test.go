package main

import (
	"runtime/debug"
	"testing"
)

// gcPercent reads GOGC's current value.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestKeepHeapFloor(t *testing.T) {
	tests := []struct {
		name       string
		floor      uint64
		raisesGOGC bool
	}{
		{name: "a floor far above the live heap raises GOGC", floor: 1 << 40, raisesGOGC: true},
		{name: "no floor leaves GOGC at 100", floor: 0, raisesGOGC: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stop := keepHeapFloor(tt.floor)
			got := gcPercent()
			stop()
			if raised := got > 100; raised != tt.raisesGOGC {
				t.Errorf("GOGC while keeping a floor of %d bytes = %d; raised = %v, want %v", tt.floor, got, raised, tt.raisesGOGC)
			}
			if after := gcPercent(); after != 100 {
				t.Errorf("GOGC after stop = %d, want 100", after)
			}
		})
	}
}
