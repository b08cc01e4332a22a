package matchd_test

import (
	"testing"
	"time"

	"github.com/matchd/matchd"
)

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestWaitEstimator(t *testing.T) {
	e := matchd.NewWaitEstimator()
	if got := e.Estimate(0, false); got != e.Prior {
		t.Errorf("Estimate before data = %v, want the prior %v", got, e.Prior)
	}
	start := time.Unix(1_000_000, 0)
	for i := range 50 {
		e.Arrived(start.Add(time.Duration(i) * 4 * time.Second))
	}
	if got := e.Estimate(0, false); got != 4*time.Second {
		t.Errorf("Estimate after steady 4 s arrivals = %v, want 4s", got)
	}
	if got := e.Estimate(1, false); got != 0 {
		t.Errorf("Estimate with one player waiting = %v, want 0 (a join pairs at once)", got)
	}
	if got := e.Estimate(1, true); got != 4*time.Second {
		t.Errorf("Estimate for the one waiting player = %v, want 4s", got)
	}
	// Faster arrivals pull the estimate down, without jumping all the way.
	for i := range 3 {
		e.Arrived(start.Add(200*time.Second + time.Duration(i)*time.Second))
	}
	if got := e.Estimate(0, false); got >= 4*time.Second*2 || got <= time.Second {
		t.Errorf("Estimate after a gap and faster arrivals = %v, want between 1s and 8s", got)
	}
}
