// Command idleheap serves matchd's gateway on the embedded backend, wired
// as cmd/matchd wires it (no join limit, tokens signed with -secret), and
// writes a heap profile of what its idle WebSocket connections hold: once
// -n sockets are open (from another process, e.g. matchload -idle), it
// runs the garbage collector, prints the live heap and stacks before and
// after as JSON on stdout, writes the profile to -heap, and serves on until
// SIGTERM or Ctrl-C. bench/run uses it; cmd/matchd has no pprof endpoint.
//
//	go run ./bench/idleheap -addr 127.0.0.1:8090 -secret s -n 10000 -heap heap.pprof
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/memory"
	"github.com/matchd/matchd/metrics"
	"github.com/matchd/matchd/questions"
	"github.com/matchd/matchd/web"
)

// memory is the part of runtime.MemStats the report uses, in bytes.
type memStats struct {
	HeapAlloc  uint64 `json:"heap_alloc"`  // live objects (just after a GC)
	HeapInuse  uint64 `json:"heap_inuse"`  // spans holding them
	StackInuse uint64 `json:"stack_inuse"` // goroutine stacks
	Goroutines int    `json:"goroutines"`
}

// report is what idleheap prints once the sockets are open.
type report struct {
	Connections int      `json:"connections"`
	Before      memStats `json:"before"`
	After       memStats `json:"after"`
	// HeapPerConn and StackPerConn are (after - before) / connections.
	HeapPerConn  float64 `json:"heap_alloc_per_conn"`
	StackPerConn float64 `json:"stack_per_conn"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	secret := flag.String("secret", "", "HS256 secret of the session tokens (matchload -secret)")
	n := flag.Int("n", 10000, "profile once this many WebSockets are open")
	heap := flag.String("heap", "heap.pprof", "where to write the heap profile")
	rate := flag.Int("memprofilerate", 16<<10, "runtime.MemProfileRate: one sampled allocation per this many bytes")
	churn := flag.Duration("churn", 0, "after the heap profile, also write allocation profiles (FILE.allocs0 and FILE.allocs1, for go tool pprof -base) this far apart, to see what the idle sockets allocate")
	flag.Parse()
	if *secret == "" {
		fmt.Fprintln(os.Stderr, "idleheap: -secret is required")
		os.Exit(2)
	}
	runtime.MemProfileRate = *rate
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *secret, *n, *heap, *churn, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "idleheap:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, secret string, n int, heapPath string, churn time.Duration, out io.Writer) error {
	bank, err := questions.Load()
	if err != nil {
		return err
	}
	clock := matchd.SystemClock{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	backend := memory.New(memory.Config{Rooms: matchd.QuestionRooms{Bank: bank, Clock: clock}, Clock: clock, Observer: m, Logger: logger})
	defer backend.Close()
	m.WatchQueue("default", backend.QueueSize)
	m.WatchRooms("default", backend.ActiveRooms)
	srv := web.New(web.Config{
		Matchmaker:     backend,
		Auth:           auth.New([]byte(secret), clock),
		Metrics:        m,
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Logger:         logger,
		Clock:          clock,
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	events, stopEvents := context.WithCancel(context.Background())
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		srv.Run(events)
	}()
	defer func() {
		stopEvents()
		<-eventsDone
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		httpSrv.Shutdown(shutdown)
	}()
	fmt.Fprintf(os.Stderr, "idleheap: listening on %s, pid %d\n", ln.Addr(), os.Getpid())

	before := collect()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for testutil.ToFloat64(m.Connections) < float64(n) {
		select {
		case <-ctx.Done():
			return errors.New("stopped before the sockets were open")
		case err := <-serveErr:
			return err
		case <-tick.C:
		}
	}
	time.Sleep(time.Second) // the last handlers reach their read loops
	after := collect()
	if err := writeProfile("heap", heapPath); err != nil {
		return err
	}
	rep := report{Connections: n, Before: before, After: after,
		HeapPerConn:  (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n),
		StackPerConn: (float64(after.StackInuse) - float64(before.StackInuse)) / float64(n),
	}
	if err := json.NewEncoder(out).Encode(rep); err != nil {
		return err
	}
	if churn > 0 {
		runtime.GC()
		if err := writeProfile("allocs", heapPath+".allocs0"); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(churn):
		}
		runtime.GC() // the profile shows allocations as of the last GC
		if err := writeProfile("allocs", heapPath+".allocs1"); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "idleheap: allocation profiles %s.allocs0 and .allocs1 written, %v apart\n", heapPath, churn)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-serveErr:
		return err
	}
}

// collect runs the garbage collector twice (the second run frees what the
// first one's finalizers released) and reads the memory figures.
func collect() memStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memStats{HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine()}
}

// writeProfile writes the named runtime/pprof profile to path.
func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
