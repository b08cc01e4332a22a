package matchd

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// WaitEstimator estimates how long a player will wait for a partner from
// what it has measured, not from a fixed rule: an exponentially weighted
// mean of the time between matches, as seen on the match event stream
// (every instance sees every match, so the rate is the pool's, not this
// instance's), or, before any match was seen, of the time between the
// joins this instance took.
//
// Each match takes two players, so players arrive about twice as often as
// matches form. When pairing is open to everyone, a player who finds
// someone waiting is matched at once, and a player who waits alone waits
// for the next arrival; the estimate follows that.
//
// It is safe for concurrent use. With nothing measured yet it returns
// Prior.
type WaitEstimator struct {
	Alpha float64       // weight of the newest interval, in (0,1]
	Prior time.Duration // estimate before anything is measured

	mu      sync.Mutex
	joins   ewma // seconds between joins seen here
	matches ewma // seconds between matches in the pool
}

// ewma is an exponentially weighted mean of the intervals between events.
type ewma struct {
	last    time.Time
	mean    float64
	samples int
}

func (e *ewma) add(t time.Time, alpha float64) {
	if !e.last.IsZero() && t.After(e.last) {
		d := t.Sub(e.last).Seconds()
		if e.samples == 0 {
			e.mean = d
		} else {
			e.mean = alpha*d + (1-alpha)*e.mean
		}
		e.samples++
	}
	if t.After(e.last) {
		e.last = t
	}
}

// NewWaitEstimator returns an estimator with weight 0.1 and a 10 s prior.
func NewWaitEstimator() *WaitEstimator {
	return &WaitEstimator{Alpha: 0.1, Prior: 10 * time.Second}
}

// Arrived records a new ticket taken by this instance at t.
func (e *WaitEstimator) Arrived(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.joins.add(t, e.Alpha)
}

// Matched records a match of the pool seen at t.
func (e *WaitEstimator) Matched(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.matches.add(t, e.Alpha)
}

// minMatchSamples is how many match intervals are needed before they are
// trusted over this instance's own joins.
const minMatchSamples = 5

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
	var arrival float64 // mean seconds between arrivals
	switch {
	case e.matches.samples >= minMatchSamples:
		arrival = e.matches.mean / 2
	case e.joins.samples > 0:
		arrival = e.joins.mean
	default:
		return e.Prior
	}
	return time.Duration(arrival * float64(time.Second))
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
