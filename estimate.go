package matchd

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// WaitEstimator estimates how long a player will wait for a partner from
// what it has measured: an exponentially weighted mean of the time between
// new tickets. Under pairing where everyone fits, a player who finds
// someone waiting is matched at once, and a player who waits alone waits
// for the next arrival; the estimate follows that.
//
// It is safe for concurrent use. With nothing measured yet it returns
// Prior.
type WaitEstimator struct {
	Alpha float64       // weight of the newest interval, in (0,1]
	Prior time.Duration // estimate before any interval is measured

	mu      sync.Mutex
	last    time.Time
	mean    float64 // seconds; 0 until the first interval
	samples int
}

// NewWaitEstimator returns an estimator with weight 0.2 and a 10 s prior.
func NewWaitEstimator() *WaitEstimator {
	return &WaitEstimator{Alpha: 0.2, Prior: 10 * time.Second}
}

// Arrived records a new ticket at t.
func (e *WaitEstimator) Arrived(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.last.IsZero() && t.After(e.last) {
		d := t.Sub(e.last).Seconds()
		if e.samples == 0 {
			e.mean = d
		} else {
			e.mean = e.Alpha*d + (1-e.Alpha)*e.mean
		}
		e.samples++
	}
	if t.After(e.last) {
		e.last = t
	}
}

// Estimate returns the expected wait of a player who would join a queue of
// queueSize waiting tickets now (queueSize counts the player if they are
// already in it, with queued=true).
func (e *WaitEstimator) Estimate(queueSize int, queued bool) time.Duration {
	others := queueSize
	if queued {
		others--
	}
	if others > 0 && others%2 == 1 {
		// Someone is waiting without a partner: a join pairs at once.
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.samples == 0 {
		return e.Prior
	}
	return time.Duration(e.mean * float64(time.Second))
}

// WaitText renders a wait for people: "under a second", "about 10 s",
// "about 2 min".
func WaitText(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s < 1:
		return "under a second"
	case s < 60:
		return fmt.Sprintf("about %d s", int(math.Round(s)))
	case s < 3600:
		return fmt.Sprintf("about %d min", int(math.Round(s/60)))
	default:
		return "over an hour"
	}
}
