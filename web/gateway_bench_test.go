package web_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// gatewayClients is how many sockets BenchmarkGatewayPing drives at once.
const gatewayClients = 64

// BenchmarkGatewayPing measures the gateway's message rate: 64 clients
// over real WebSockets on loopback, each sending ping and reading its pong
// in a loop, against one in-process server with the per-socket message
// limit lifted. One iteration is one client message read, decoded,
// counted and answered (a ping in, a pong out). It reports msgs/s and
// msgs/s/core (msgs/s over GOMAXPROCS). Clients and server share the
// cores, so the per-core figure is a floor for the server alone.
//
//	go test -run '^$' -bench GatewayPing -benchtime 200000x ./web
func BenchmarkGatewayPing(b *testing.B) {
	h := start(b, withoutMessageLimit)
	conns := make([]*websocket.Conn, gatewayClients)
	for i := range conns {
		conns[i] = h.player(fmt.Sprintf("g%d", i)).ws
	}
	ping := []byte(`{"type":"ping"}`)
	// Warm up every socket (and the server's writer path) once.
	for _, ws := range conns {
		if err := roundTrip(ws, ping); err != nil {
			b.Fatal(err)
		}
	}

	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for _, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := roundTrip(ws, ping); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(rate/float64(runtime.GOMAXPROCS(0)), "msgs/s/core")
}

// roundTrip sends msg and reads one answer, which must be a pong.
func roundTrip(ws *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	_, data, err := ws.Read(ctx)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(data) != `{"type":"pong"}` {
		return fmt.Errorf("got %s, want pong", data)
	}
	return nil
}
