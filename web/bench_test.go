package web_test

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkMatchNotify measures, over real WebSockets on loopback, the time
// from the second player's join_queue to both players holding match_found.
// One iteration is one pair; it reports the p50, p99 and max of that time.
//
//	go test -run '^$' -bench MatchNotify -benchtime 1000x ./web
func BenchmarkMatchNotify(b *testing.B) {
	h := start(b)
	lat := make([]time.Duration, 0, b.N)
	for i := range b.N {
		b.StopTimer()
		first, second := h.player(fmt.Sprintf("a%d", i)), h.player(fmt.Sprintf("b%d", i))
		first.join()
		first.expect("queued")
		got := make(chan time.Time, 1)
		go func() {
			m := first.read()
			if m["type"] != "match_found" {
				b.Errorf("first player got %v", m)
			}
			got <- time.Now()
		}()
		b.StartTimer()

		t0 := time.Now()
		second.join()
		second.matched()
		t2 := time.Now()
		t1 := <-got
		lat = append(lat, later(t1, t2).Sub(t0))

		b.StopTimer()
		first.ws.CloseNow()
		second.ws.CloseNow()
		b.StartTimer()
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(1), "max-µs")
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
