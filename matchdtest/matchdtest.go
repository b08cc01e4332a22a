// Package matchdtest holds what the tests of matchd's packages share: the
// conformance suite that every Matchmaker backend must pass, a RoomMaker
// whose failures a test switches on and off, and polling helpers.
package matchdtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/questions"
)

// Eventually polls cond every few milliseconds until it holds, and fails
// the test if it does not within the given time. Use it instead of sleeps.
func Eventually(t testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: "+format, append([]any{within}, args...)...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ErrInjected is the error of a FlakyRooms in failing mode.
var ErrInjected = errors.New("injected room creation failure")

// FlakyRooms is a RoomMaker that fails while Failing is set and otherwise
// makes rooms from the shipped question bank.
type FlakyRooms struct {
	Failing  atomic.Bool
	Attempts atomic.Int64 // every MakeRoom call, failed or not
	rooms    matchd.RoomMaker
}

// NewFlakyRooms returns a FlakyRooms that starts out working.
func NewFlakyRooms(t testing.TB) *FlakyRooms {
	t.Helper()
	bank, err := questions.Load()
	if err != nil {
		t.Fatal(err)
	}
	return &FlakyRooms{rooms: matchd.QuestionRooms{Bank: bank, Clock: matchd.SystemClock{}}}
}

// MakeRoom implements matchd.RoomMaker.
func (f *FlakyRooms) MakeRoom(ctx context.Context, a, b matchd.Ticket) (matchd.Room, error) {
	f.Attempts.Add(1)
	if f.Failing.Load() {
		return matchd.Room{}, ErrInjected
	}
	return f.rooms.MakeRoom(ctx, a, b)
}

// Clock is a fake matchd.Clock that moves only when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a fake clock set to a fixed instant.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)} }

// Now implements matchd.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
