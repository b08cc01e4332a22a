package matchd_test

import (
	"testing"
	"time"

	"github.com/matchd/matchd"
)

func TestWindowAdmit(t *testing.T) {
	w := matchd.Window{Max: 3, Per: time.Minute}
	start := time.Unix(1_000_000, 0)
	var log []time.Time
	at := func(sec float64) time.Time { return start.Add(time.Duration(sec * float64(time.Second))) }
	admit := func(sec float64) (time.Duration, bool) {
		t.Helper()
		kept, retry, ok := w.Admit(log, at(sec))
		log = kept
		if len(log) > w.Max {
			t.Fatalf("log grew to %d entries", len(log))
		}
		return retry, ok
	}
	for _, s := range []float64{0, 10, 20} {
		if _, ok := admit(s); !ok {
			t.Fatalf("event %d at %vs refused, want admitted", len(log), s)
		}
	}
	if retry, ok := admit(30); ok || retry != 30*time.Second {
		t.Errorf("4th event at 30s: ok=%v retry=%v, want refused for 30s (until the first leaves the window)", ok, retry)
	}
	if retry, ok := admit(59.5); ok || retry != 500*time.Millisecond {
		t.Errorf("at 59.5s: ok=%v retry=%v, want refused for 0.5s", ok, retry)
	}
	if _, ok := admit(60); !ok {
		t.Error("at 60s the first event has left the window: want admitted")
	}
	if retry, ok := admit(60); ok || retry != 10*time.Second {
		t.Errorf("again at 60s: ok=%v retry=%v, want refused for 10s", ok, retry)
	}
}

// In no span of Per are more than Max events admitted, whatever the
// arrival pattern.
func TestWindowNeverExceedsMax(t *testing.T) {
	w := matchd.Window{Max: 10, Per: time.Minute}
	var log, admitted []time.Time
	now := time.Unix(0, 0)
	for i := range 2000 {
		now = now.Add(time.Duration(i%7) * 700 * time.Millisecond)
		kept, _, ok := w.Admit(log, now)
		log = kept
		if ok {
			admitted = append(admitted, now)
		}
	}
	for i := range admitted {
		n := 0
		for j := i; j < len(admitted) && admitted[j].Sub(admitted[i]) < w.Per; j++ {
			n++
		}
		if n > w.Max {
			t.Fatalf("%d events admitted within a minute from %v", n, admitted[i])
		}
	}
}
