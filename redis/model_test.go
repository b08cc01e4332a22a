package redis_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"pgregory.net/rapid"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/questions"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/redistest"
)

// TestModel drives the Redis backend with random joins, leaves, releases
// and the passing of time (then a sweep), on a fake clock, and checks it
// against a plain slice of waiting tickets: nobody is matched with
// themselves or while not waiting, every match fits the policy as it
// stands, a join is matched only if the model has a partner for it, and
// after every sweep no two waiting players fit each other. Matched
// players are released, so they join again, and the no-rematch window is
// 45 s, so time passes beyond it: the rule and the end of its bans are
// exercised too (a ban can outlast the 30 s in which the default rules
// widen, and then only the ban's own end wakes its tickets). Sweeps come as
// often with no time passed as after some, so that tickets that are not
// due (they just joined) must have been made due by a join that missed a
// partner.
//
// It runs twice. With no bound on the candidates ("exact"), a join's own
// search sees everyone, so a join is matched at once with the model's
// best partner (the policy's fit, then priority, then the oldest) and no
// two waiting players fit each other after any step. With a tiny bound
// ("bounded": one ticket read in all), a join may miss its partner (or
// its best one), and it is the next sweep that must leave no fitting pair
// waiting.
func TestModel(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client := srv.Client(t)
	bank, err := questions.Load()
	if err != nil {
		t.Fatal(err)
	}
	policy := matchd.DefaultPolicy()
	policy.NoRematch, policy.NoRepeat = 45*time.Second, 45*time.Second
	for _, c := range []struct {
		name                string
		perBand, candidates int
		exact               bool // a join's search sees every waiting ticket
	}{
		{"exact", 1 << 10, 1 << 10, true},
		{"bounded", 1, 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			testModel(t, client, bank, policy, c.perBand, c.candidates, c.exact)
		})
	}
}

// testModel runs the model on a backend with the given bounds; exact
// says whether those bounds let a join's search see every waiting ticket.
func testModel(t *testing.T, client goredis.UniversalClient, bank *matchd.QuestionBank, policy matchd.Policy, perBand, candidates int, exact bool) {
	pools := 0
	rapid.Check(t, func(rt *rapid.T) {
		pools++
		clock := matchdtest.NewClock()
		pool := fmt.Sprintf("model-%s%d", t.Name(), pools)
		b := redis.New(redis.Config{
			Client:     client,
			Rooms:      matchd.QuestionRooms{Bank: bank, Clock: clock},
			Policy:     &policy,
			Clock:      clock,
			Pool:       pool,
			Channel:    "match_channel:" + pool,
			MatchEvery: time.Hour, // only the model's sweeps
			PerBand:    perBand,
			Candidates: candidates,
		})
		defer b.Close()
		ctx := context.Background()

		var waiting []matchd.Ticket // the model
		var seq uint64
		matchedWith := map[[2]string]time.Time{}
		recent := func(a, b string) bool {
			at, ok := matchedWith[pair(a, b)]
			return ok && clock.Now().Sub(at) < policy.NoRematch
		}
		isWaiting := func(p string) bool {
			return slices.ContainsFunc(waiting, func(w matchd.Ticket) bool { return w.PlayerID == p })
		}
		ticketOf := func(p string) matchd.Ticket {
			i := slices.IndexFunc(waiting, func(w matchd.Ticket) bool { return w.PlayerID == p })
			return waiting[i]
		}
		// matched records a match the backend formed, checks it, and
		// releases it so that its players may join again.
		matched := func(room *matchd.Room) {
			a, c := room.Player1, room.Player2
			if a == c || !isWaiting(a) || !isWaiting(c) {
				rt.Fatalf("match %s of %s and %s: not two waiting players (waiting: %v)", room.MatchID, a, c, waiting)
			}
			ta, tc := ticketOf(a), ticketOf(c)
			if !policy.Fits(&ta, &tc, clock.Now(), recent(a, c)) {
				rt.Fatalf("match of %+v and %+v does not fit at %v", ta, tc, clock.Now())
			}
			waiting = slices.DeleteFunc(waiting, func(w matchd.Ticket) bool { return w.PlayerID == a || w.PlayerID == c })
			matchedWith[pair(a, c)] = clock.Now()
			if err := b.Release(ctx, room.MatchID); err != nil {
				rt.Fatalf("Release: %v", err)
			}
		}
		// Few players make a banned pair the only one that fits; many make
		// tickets that block a bounded search.
		names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
		players := rapid.SampledFrom(names[:rapid.IntRange(2, len(names)).Draw(rt, "players")])
		for range rapid.IntRange(1, 40).Draw(rt, "steps") {
			swept := false
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0, 1, 2, 3, 4: // join
				p := players.Draw(rt, "player")
				if isWaiting(p) {
					continue
				}
				tk := matchd.Ticket{
					PlayerID: p,
					// Often one rating, so that tickets share a band and
					// block each other's bounded search.
					Rating:   float64(rapid.OneOf(rapid.Just(1500), rapid.IntRange(1300, 1800)).Draw(rt, "rating")),
					Priority: rapid.IntRange(0, 2).Draw(rt, "priority"),
					Prefs: matchd.Preferences{
						Difficulty: rapid.SampledFrom([]string{"", "easy", "hard"}).Draw(rt, "difficulty"),
						Language:   rapid.SampledFrom([]string{"", "en", "de"}).Draw(rt, "language"),
						Region:     rapid.SampledFrom([]string{"", "eu", "us"}).Draw(rt, "region"),
						Topics:     rapid.SliceOfDistinct(rapid.SampledFrom([]string{"algorithms", "databases", "behavioral"}), rapid.ID[string]).Draw(rt, "topics"),
					},
				}
				// The model's best partner for the new ticket.
				seq++
				tk.Seq, tk.JoinedAt = seq, clock.Now()
				var want *matchd.Ticket
				for i := range waiting {
					c := &waiting[i]
					if !policy.Fits(&tk, c, clock.Now(), recent(p, c.PlayerID)) {
						continue
					}
					if want == nil || c.Priority > want.Priority || c.Priority == want.Priority && c.Seq < want.Seq {
						want = c
					}
				}
				res, err := b.Join(ctx, tk)
				if err != nil {
					rt.Fatalf("Join(%s): %v", p, err)
				}
				if !res.Added {
					rt.Fatalf("Join(%s) = %+v, want a new ticket", p, res)
				}
				waiting = append(waiting, tk)
				switch {
				case want == nil && res.Room != nil:
					rt.Fatalf("Join(%s) matched %s; the model has no partner", p, res.Room.Partner(p))
				case exact && want != nil && (res.Room == nil || res.Room.Partner(p) != want.PlayerID):
					rt.Fatalf("Join(%s) = %+v; the model's best partner is %s", p, res.Room, want.PlayerID)
				case res.Room != nil:
					matched(res.Room)
				}
			case 5, 6: // leave
				p := players.Draw(rt, "leaver")
				res, err := b.Leave(ctx, p)
				if err != nil {
					rt.Fatalf("Leave(%s): %v", p, err)
				}
				if res.Removed != isWaiting(p) || res.Room != nil {
					rt.Fatalf("Leave(%s) = %+v; the model says waiting=%v", p, res, isWaiting(p))
				}
				waiting = slices.DeleteFunc(waiting, func(w matchd.Ticket) bool { return w.PlayerID == p })
			default: // time passes (or not); a sweep matches whom it now allows
				seconds := rapid.OneOf(rapid.Just(0), rapid.IntRange(1, 40)).Draw(rt, "seconds")
				clock.Advance(time.Duration(seconds) * time.Second)
				swept = true
				before := slices.Clone(waiting)
				if _, err := b.Sweep(ctx); err != nil {
					rt.Fatalf("Sweep: %v", err)
				}
				for _, w := range before {
					room, err := b.Assignment(ctx, w.PlayerID)
					if err != nil {
						rt.Fatal(err)
					}
					if room != nil && isWaiting(room.Player1) && isWaiting(room.Player2) {
						matched(room)
					}
				}
			}
			if n, err := b.QueueSize(ctx); err != nil || n != len(waiting) {
				rt.Fatalf("queue size %d (%v), the model %d", n, err, len(waiting))
			}
			if !exact && !swept {
				continue // a join may have missed its partner: the next sweep must not
			}
			for i := range waiting {
				for j := i + 1; j < len(waiting); j++ {
					x, y := &waiting[i], &waiting[j]
					if policy.Fits(x, y, clock.Now(), recent(x.PlayerID, y.PlayerID)) {
						rt.Fatalf("%+v and %+v fit each other at %v but both still wait", *x, *y, clock.Now())
					}
				}
			}
		}
	})
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}
