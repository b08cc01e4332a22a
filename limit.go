package matchd

import (
	"context"
	"time"
)

// Window is a rate limit: at most Max events in any span of Per. Unlike a
// token bucket, which lets a full burst through again as soon as it has
// refilled, a window never admits more than Max events in any Per, which
// is what "10 joins a minute" promises.
type Window struct {
	Max int
	Per time.Duration
}

// Admit decides on an event at now, given log: the times of the latest
// admitted events, newest first, at most Max of them. It returns the log
// to keep and, when the event is refused (ok false), how long until it
// would be admitted. Refused events are not recorded, so waiting out
// retryAfter always works.
func (w Window) Admit(log []time.Time, now time.Time) (kept []time.Time, retryAfter time.Duration, ok bool) {
	if len(log) >= w.Max {
		if free := log[w.Max-1].Add(w.Per); free.After(now) {
			return log, free.Sub(now), false
		}
	}
	kept = append(log[:0:0], now)
	for _, t := range log {
		if len(kept) == w.Max {
			break
		}
		kept = append(kept, t)
	}
	return kept, 0, true
}

// Limiter admits or refuses events per key (a player id) under a Window.
// The embedded backend limits in process; the Redis one across instances.
type Limiter interface {
	// Allow records an event for key if the window admits it, and
	// otherwise returns how long until it would.
	Allow(ctx context.Context, key string) (retryAfter time.Duration, ok bool, err error)
}
