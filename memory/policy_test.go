package memory_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/memory"
)

// matchLog is an Observer that records every match as it is made (under
// the backend's lock, so in order).
type matchLog struct {
	mu    sync.Mutex
	rooms []matchd.Room
}

func (l *matchLog) Matched(r matchd.Room, _ [2]time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rooms = append(l.rooms, r)
}
func (*matchLog) RoomFailed(error)         {}
func (*matchLog) Swept(time.Duration, int) {}

func (l *matchLog) take() []matchd.Room {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rooms
	l.rooms = nil
	return r
}

// TestPolicyModel drives the embedded backend with random joins, leaves,
// releases and the passing of time on a fake clock, and checks it against
// a plain model of who waits: nobody is matched with themselves, twice, or
// while not waiting; every match fits the policy as it stood at that
// moment (the model's own join times, ratings and match history); a join
// is matched with the best partner there is (highest priority, then
// oldest); and after each sweep no two waiting players fit each other.
//
// The bound on the tickets a join checks per rating band is drawn: with 1
// or 2 a join's search is often cut, and the sweep's unbounded searches
// must still leave no fitting pair waiting (the best-partner check needs
// every candidate seen, so it runs with the default bound, which eight
// players never reach). The no-rematch ban is 1 min, longer than the 30 s
// in which the rules widen fully, so that a sweep must notice the bans
// that end (RunPolicy checks that case directly).
func TestPolicyModel(t *testing.T) {
	rooms := matchdtest.NewFlakyRooms(t)
	rapid.Check(t, func(t *rapid.T) {
		policy := matchd.DefaultPolicy()
		policy.NoRematch = time.Minute
		perBand := rapid.SampledFrom([]int{1, 2, 8}).Draw(t, "perBand")
		clock := matchdtest.NewClock()
		log := &matchLog{}
		b := memory.New(memory.Config{Rooms: rooms, Policy: &policy, Clock: clock, Observer: log, SweepEvery: time.Hour, PerBand: perBand})
		defer b.Close()
		ctx := context.Background()

		waiting := map[string]matchd.Ticket{} // the model's queue
		assigned := map[string]string{}       // player -> match id
		met := map[[2]string]time.Time{}      // pair -> last match
		recent := func(a, b string) bool {
			at, ok := met[pairKey(a, b)]
			return ok && clock.Now().Sub(at) < policy.NoRematch
		}
		var seq uint64
		// check applies the matches the backend reports to the model, each
		// checked against it.
		check := func(joiner string) {
			now := clock.Now()
			for _, r := range log.take() {
				a, ok1 := waiting[r.Player1]
				c, ok2 := waiting[r.Player2]
				if !ok1 || !ok2 || r.Player1 == r.Player2 {
					t.Fatalf("match %s–%s of players not both waiting", r.Player1, r.Player2)
				}
				if !policy.Fits(&a, &c, now, recent(a.PlayerID, c.PlayerID)) {
					t.Fatalf("match %+v / %+v does not fit the policy at %v", a, c, now)
				}
				if joiner != "" && perBand == 8 {
					x, other := a, c
					if c.PlayerID == joiner {
						x, other = c, a
					}
					for _, w := range waiting {
						if w.PlayerID == x.PlayerID || w.PlayerID == other.PlayerID || !policy.Fits(&x, &w, now, recent(x.PlayerID, w.PlayerID)) {
							continue
						}
						if w.Priority > other.Priority || w.Priority == other.Priority && w.Seq < other.Seq {
							t.Fatalf("%s matched with %+v, but %+v is a better partner", x.PlayerID, other, w)
						}
					}
				}
				delete(waiting, r.Player1)
				delete(waiting, r.Player2)
				assigned[r.Player1], assigned[r.Player2] = r.MatchID, r.MatchID
				met[pairKey(r.Player1, r.Player2)] = now
			}
		}
		players := rapid.SampledFrom([]string{"a", "b", "c", "d", "e", "f", "g", "h"})
		for range rapid.IntRange(1, 60).Draw(t, "steps") {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op < 5: // join
				p := players.Draw(t, "player")
				tk := matchd.Ticket{
					PlayerID: p,
					// Often 1500, where new players start and bands fill.
					Rating:   float64(rapid.OneOf(rapid.IntRange(1300, 1800), rapid.Just(1500)).Draw(t, "rating")),
					Priority: rapid.IntRange(0, 2).Draw(t, "priority"),
					Prefs: matchd.Preferences{
						Difficulty: rapid.SampledFrom([]string{"", "easy", "hard"}).Draw(t, "difficulty"),
						Language:   rapid.SampledFrom([]string{"", "en", "de"}).Draw(t, "language"),
						Region:     rapid.SampledFrom([]string{"", "eu", "us"}).Draw(t, "region"),
						Topics:     rapid.SliceOfDistinct(rapid.SampledFrom([]string{"algorithms", "behavioral", "system_design"}), rapid.ID[string]).Draw(t, "topics"),
					},
				}
				res, err := b.Join(ctx, tk)
				if err != nil {
					t.Fatal(err)
				}
				_, queued := waiting[p]
				_, matched := assigned[p]
				if res.Added == (queued || matched) {
					t.Fatalf("Join(%s).Added = %v; queued %v, matched %v", p, res.Added, queued, matched)
				}
				if res.Added {
					seq++
					tk.Seq, tk.JoinedAt = seq, clock.Now()
					waiting[p] = tk
				}
				check(p)
			case op < 7: // leave
				p := players.Draw(t, "player")
				res, err := b.Leave(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				_, queued := waiting[p]
				if res.Removed != queued {
					t.Fatalf("Leave(%s).Removed = %v, model says queued %v", p, res.Removed, queued)
				}
				delete(waiting, p)
			case op < 8: // the session ends: release a match
				p := players.Draw(t, "player")
				id, ok := assigned[p]
				if !ok {
					continue
				}
				if err := b.Release(ctx, id); err != nil {
					t.Fatal(err)
				}
				for q, m := range assigned {
					if m == id {
						delete(assigned, q)
					}
				}
			default: // time passes, then a sweep
				clock.Advance(time.Duration(rapid.IntRange(0, 30_000).Draw(t, "ms")) * time.Millisecond)
				if _, err := b.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				check("")
				now := clock.Now()
				for _, x := range waiting {
					for _, y := range waiting {
						if x.PlayerID < y.PlayerID && policy.Fits(&x, &y, now, recent(x.PlayerID, y.PlayerID)) {
							t.Fatalf("after a sweep %+v and %+v both wait though they fit", x, y)
						}
					}
				}
			}
			if n, _ := b.QueueSize(ctx); n != len(waiting) {
				t.Fatalf("QueueSize = %d, model has %d", n, len(waiting))
			}
		}
	})
}

func pairKey(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}
