package matchdtest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matchd/matchd"
)

// LimiterFactory returns a fresh Limiter for w, on the real clock.
type LimiterFactory func(t *testing.T, w matchd.Window) matchd.Limiter

// RunLimiter runs the conformance suite of matchd.Limiter
// implementations. Windows are short so that it runs on the real clock.
func RunLimiter(t *testing.T, newLimiter LimiterFactory) {
	t.Run("admits_max_then_refuses_with_retry_after", func(t *testing.T) {
		w := matchd.Window{Max: 3, Per: 2 * time.Second}
		l := newLimiter(t, w)
		for i := range w.Max {
			if _, ok, err := l.Allow(t.Context(), "alice"); err != nil || !ok {
				t.Fatalf("event %d: ok=%v err=%v, want admitted", i+1, ok, err)
			}
		}
		retry, ok, err := l.Allow(t.Context(), "alice")
		if err != nil || ok || retry <= 0 || retry > w.Per {
			t.Fatalf("event %d: ok=%v retry=%v err=%v, want refused with 0 < retry <= %v", w.Max+1, ok, retry, err, w.Per)
		}
		// Other keys are not affected.
		if _, ok, _ := l.Allow(t.Context(), "bob"); !ok {
			t.Error("bob refused because of alice's events")
		}
		// Once the window has moved on, alice is admitted again.
		Eventually(t, w.Per+time.Second, func() bool {
			_, ok, err := l.Allow(t.Context(), "alice")
			return err == nil && ok
		}, "alice still refused after the window")
	})
	t.Run("concurrent_events_admit_exactly_max", func(t *testing.T) {
		w := matchd.Window{Max: 10, Per: time.Minute}
		l := newLimiter(t, w)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if _, ok, err := l.Allow(t.Context(), "carol"); err != nil {
					t.Error(err)
				} else if ok {
					admitted.Add(1)
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != int64(w.Max) {
			t.Errorf("%d of 50 concurrent events admitted, want exactly %d", n, w.Max)
		}
	})
	t.Run("many_keys", func(t *testing.T) {
		l := newLimiter(t, matchd.Window{Max: 1, Per: time.Minute})
		for i := range 100 {
			if _, ok, err := l.Allow(t.Context(), fmt.Sprintf("p%d", i)); err != nil || !ok {
				t.Fatalf("first event of p%d: ok=%v err=%v", i, ok, err)
			}
		}
	})
}
