package matchd_test

import (
	"math"
	"math/rand/v2"
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
		t.Errorf("Estimate from steady 4 s joins = %v, want 4s", got)
	}
	if got := e.Estimate(1, false); got != 0 {
		t.Errorf("Estimate with one player waiting = %v, want 0 (a join pairs at once)", got)
	}
	if got := e.Estimate(1, true); got != 4*time.Second {
		t.Errorf("Estimate for the one waiting player = %v, want 4s", got)
	}
	// Once the pool's matches are known, they win over local joins: a
	// match every 3 s means a player arrives every 1.5 s.
	for i := range 20 {
		e.Matched(start.Add(time.Duration(i) * 3 * time.Second))
	}
	if got := e.Estimate(0, false); got != 1500*time.Millisecond {
		t.Errorf("Estimate from matches every 3 s = %v, want 1.5s", got)
	}
}

// TestWaitEstimateAccuracy runs simulated arrival streams (Poisson, at
// several rates, and one whose rate changes midway) through the estimator
// and an exact model of the queue, and compares each estimate with the
// wait that player really had: the mean absolute error, against the
// original design's fixed rule (5 s for an empty queue, 10 s with one
// player, else 3 s).
func TestWaitEstimateAccuracy(t *testing.T) {
	fixed := func(queueSize int) time.Duration {
		switch queueSize {
		case 0:
			return 5 * time.Second
		case 1:
			return 10 * time.Second
		default:
			return 3 * time.Second
		}
	}
	tests := []struct {
		name  string
		rates []float64 // arrivals per second, one phase each
	}{
		{"slow_0.05_per_s", []float64{0.05}},
		{"medium_1_per_s", []float64{1}},
		{"fast_20_per_s", []float64{20}},
		{"rate_changes_0.2_to_2_per_s", []float64{0.2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			e := matchd.NewWaitEstimator()
			now := time.Unix(0, 0)
			var arrivals []time.Time
			for _, rate := range tt.rates {
				for range 4000 {
					now = now.Add(seconds(r.ExpFloat64() / rate))
					arrivals = append(arrivals, now)
				}
			}
			// Exact model: any two players pair, so the queue holds at most
			// one; an arrival to an empty queue waits for the next one.
			var errOurs, errFixed float64
			var n int
			waiting := -1 // index of the waiting player, or -1
			for i, at := range arrivals {
				size := 0
				if waiting >= 0 {
					size = 1
				}
				est := e.Estimate(size, false)
				old := fixed(size)
				e.Arrived(at)
				var real time.Duration
				if waiting >= 0 {
					e.Matched(at)
					waiting = -1
				} else if i+1 < len(arrivals) {
					real = arrivals[i+1].Sub(at)
					waiting = i
				} else {
					break
				}
				if i < 100 {
					continue // warm-up: no estimator knows a pool it has not seen
				}
				errOurs += math.Abs((est - real).Seconds())
				errFixed += math.Abs((old - real).Seconds())
				n++
			}
			maeOurs, maeFixed := errOurs/float64(n), errFixed/float64(n)
			t.Logf("mean absolute error over %d joins: measured estimate %.3f s, fixed rule %.3f s", n, maeOurs, maeFixed)
			if maeOurs >= maeFixed {
				t.Errorf("the measured estimate (MAE %.3f s) is no better than the fixed rule (%.3f s)", maeOurs, maeFixed)
			}
			// Half the joins wait 0 and are estimated exactly; the others
			// wait an exponential time whose mean the estimate tracks, so
			// the error is bounded by about the mean interval between
			// arrivals (1/rate) of the slowest phase.
			if bound := 1 / tt.rates[0]; maeOurs > bound {
				t.Errorf("MAE %.3f s exceeds the mean arrival interval %.3f s", maeOurs, bound)
			}
		})
	}
}
