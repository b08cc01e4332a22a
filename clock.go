package matchd

import "time"

// Clock tells the time. Everything time-based takes one, so tests can use a
// fake clock instead of sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }
