package memory

import (
	"context"
	"sync"
	"time"

	"github.com/matchd/matchd"
)

// Limiter is the in-process matchd.Limiter: one window log per key.
type Limiter struct {
	w     matchd.Window
	clock matchd.Clock

	mu    sync.Mutex
	logs  map[string][]time.Time
	calls int
}

var _ matchd.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter for w; a nil clock is the system clock.
func NewLimiter(w matchd.Window, clock matchd.Clock) *Limiter {
	if clock == nil {
		clock = matchd.SystemClock{}
	}
	return &Limiter{w: w, clock: clock, logs: make(map[string][]time.Time)}
}

// Allow implements matchd.Limiter.
func (l *Limiter) Allow(_ context.Context, key string) (time.Duration, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	kept, retry, ok := l.w.Admit(l.logs[key], now)
	l.logs[key] = kept
	l.calls++
	if l.calls%1024 == 0 {
		l.forgetLocked(now)
	}
	return retry, ok, nil
}

// forgetLocked drops the logs whose newest event has left the window, so
// the map holds only keys active within the last Per.
func (l *Limiter) forgetLocked(now time.Time) {
	for k, log := range l.logs {
		if len(log) == 0 || !log[0].Add(l.w.Per).After(now) {
			delete(l.logs, k)
		}
	}
}
