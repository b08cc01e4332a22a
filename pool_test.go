package matchd_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/matchd/matchd"
)

// TestPoolModel drives a Pool with random joins, leaves and the passing of
// time, matching as the embedded backend will (a join is matched at once
// with the best partner; when rules widen, the tickets due are matched),
// and checks it against a plain slice: every match fits the policy as it
// stood at that moment, nobody is matched with themselves or twice at once,
// the partner chosen is the best one (priority, then oldest), and after
// each step no two waiting players fit each other.
//
// The pool's bound on checks per band is drawn too. With a bound, a
// search that finds nobody may be cut; then PartnerExhaustive must find
// the model's best, and a partner found within the bound must fit (it is
// the best only when nothing was left unchecked, as with no bound).
func TestPoolModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		policy := matchd.DefaultPolicy()
		pool := matchd.NewPool(policy)
		pool.PerBand = rapid.SampledFrom([]int{1, 2, 1 << 20}).Draw(t, "perBand")
		now := time.Unix(1_000_000, 0)
		var waiting []matchd.Ticket // the model
		matchedWith := map[[2]string]time.Time{}
		recent := func(a, b string) bool {
			at, ok := matchedWith[pair(a, b)]
			return ok && now.Sub(at) < policy.NoRematch
		}
		var seq uint64
		players := rapid.SampledFrom([]string{"a", "b", "c", "d", "e", "f", "g", "h"})
		// Mostly close ratings, often in one band (as new players all
		// start at 1500, where bands fill up and the bound bites); now
		// and then one thousands of bands away, which the pool keeps
		// apart from its dense bands.
		ratings := rapid.OneOf(rapid.IntRange(1300, 1800), rapid.Just(1500), rapid.Just(1500), rapid.IntRange(1500, 1549),
			rapid.SampledFrom([]int{-100_000, 100_000, 100_050, 10_000_000}))
		match := func(x matchd.Ticket) {
			partner, ok, cut := pool.Partner(&x, now, recent)
			if !ok && cut {
				budget := math.MaxInt
				partner, ok, cut = pool.PartnerExhaustive(&x, now, recent, &budget)
				if cut {
					t.Fatalf("PartnerExhaustive(%s) was cut with an unlimited budget", x.PlayerID)
				}
			}
			// The model's best partner.
			var want *matchd.Ticket
			for i := range waiting {
				c := &waiting[i]
				if c.PlayerID == x.PlayerID || !policy.Fits(&x, c, now, recent(x.PlayerID, c.PlayerID)) {
					continue
				}
				if want == nil || c.Priority > want.Priority || c.Priority == want.Priority && c.Seq < want.Seq {
					want = c
				}
			}
			switch {
			case ok != (want != nil):
				t.Fatalf("Partner(%s) = %s,%v; the model's best is %v", x.PlayerID, partner.PlayerID, ok, want)
			case ok && !policy.Fits(&x, &partner, now, recent(x.PlayerID, partner.PlayerID)):
				t.Fatalf("Partner(%s) = %+v, who does not fit", x.PlayerID, partner)
			case ok && pool.PerBand == 1<<20 && partner.PlayerID != want.PlayerID:
				t.Fatalf("Partner(%s) = %s; the model's best is %v", x.PlayerID, partner.PlayerID, want)
			}
			if !ok {
				return
			}
			pool.Remove(x.PlayerID)
			pool.Remove(partner.PlayerID)
			waiting = slices.DeleteFunc(waiting, func(w matchd.Ticket) bool { return w.PlayerID == x.PlayerID || w.PlayerID == partner.PlayerID })
			matchedWith[pair(x.PlayerID, partner.PlayerID)] = now
		}
		for range rapid.IntRange(1, 80).Draw(t, "steps") {
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0, 1, 2, 3, 4: // join
				p := players.Draw(t, "player")
				if _, ok := pool.Get(p); ok {
					continue
				}
				seq++
				tk := matchd.Ticket{
					PlayerID: p, Seq: seq, JoinedAt: now,
					Rating:   float64(ratings.Draw(t, "rating")),
					Priority: rapid.IntRange(0, 2).Draw(t, "priority"),
					Prefs: matchd.Preferences{
						Difficulty: rapid.SampledFrom([]string{"", "easy", "hard"}).Draw(t, "difficulty"),
						Language:   rapid.SampledFrom([]string{"", "en", "de"}).Draw(t, "language"),
						Region:     rapid.SampledFrom([]string{"", "eu", "us"}).Draw(t, "region"),
						Topics:     rapid.SliceOfDistinct(rapid.SampledFrom(bankTopics[:3]), rapid.ID[string]).Draw(t, "topics"),
					},
				}
				pool.Add(tk, now)
				waiting = append(waiting, tk)
				match(tk)
			case 5, 6: // leave
				p := players.Draw(t, "leaver")
				pool.Remove(p)
				waiting = slices.DeleteFunc(waiting, func(w matchd.Ticket) bool { return w.PlayerID == p })
			default: // time passes; tickets whose rules widened are matched
				now = now.Add(time.Duration(rapid.IntRange(1, 30).Draw(t, "seconds")) * time.Second)
				for _, due := range pool.Due(now) {
					if _, ok := pool.Get(due.PlayerID); ok {
						match(due)
					}
				}
			}
			if pool.Len() != len(waiting) {
				t.Fatalf("pool holds %d tickets, the model %d", pool.Len(), len(waiting))
			}
			for i := range waiting {
				for j := i + 1; j < len(waiting); j++ {
					a, b := &waiting[i], &waiting[j]
					if policy.Fits(a, b, now, recent(a.PlayerID, b.PlayerID)) {
						t.Fatalf("%s and %s fit each other at %v but both still wait", a.PlayerID, b.PlayerID, now)
					}
				}
			}
		}
	})
}

// TestPartnerCut: a bounded search that leaves a band's tickets unchecked
// and finds nobody says so, and the exhaustive search finds the partner
// beyond the bound, within its budget of checks.
func TestPartnerCut(t *testing.T) {
	policy := matchd.DefaultPolicy()
	pool := matchd.NewPool(policy)
	pool.PerBand = 2
	now := time.Unix(1_000_000, 0)
	// Two blockers in x's band (regions of their own, for the first 20 s),
	// then x's partner: the third ticket of the band.
	for i, region := range []string{"eu", "ap", "us"} {
		pool.Add(matchd.Ticket{PlayerID: region, Seq: uint64(i + 1), JoinedAt: now, Rating: 1500, Prefs: matchd.Preferences{Region: region}}, now)
	}
	x := matchd.Ticket{PlayerID: "x", Seq: 4, JoinedAt: now, Rating: 1510, Prefs: matchd.Preferences{Region: "us"}}
	if p, ok, cut := pool.Partner(&x, now, nil); ok || !cut {
		t.Fatalf("Partner = %s,%v,%v; want nobody, cut", p.PlayerID, ok, cut)
	}
	budget := 2
	if p, ok, cut := pool.PartnerExhaustive(&x, now, nil, &budget); ok || !cut || budget != 0 {
		t.Fatalf("PartnerExhaustive with 2 checks = %s,%v,%v, budget left %d; want nobody, cut, 0", p.PlayerID, ok, cut, budget)
	}
	budget = 10
	if p, ok, cut := pool.PartnerExhaustive(&x, now, nil, &budget); !ok || cut || p.PlayerID != "us" || budget != 7 {
		t.Fatalf("PartnerExhaustive = %s,%v,%v, budget left %d; want us, found, 7 left", p.PlayerID, ok, cut, budget)
	}
	// Not cut: a band whose every ticket was checked.
	pool.PerBand = 3
	if p, ok, cut := pool.Partner(&x, now, nil); !ok || cut || p.PlayerID != "us" {
		t.Fatalf("Partner with 3 per band = %s,%v,%v; want us", p.PlayerID, ok, cut)
	}
	pool.Remove("us")
	if p, ok, cut := pool.Partner(&x, now, nil); ok || cut {
		t.Fatalf("Partner with every ticket checked = %s,%v,%v; want nobody, not cut", p.PlayerID, ok, cut)
	}
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// BenchmarkPoolJoin measures a join that finds its partner among n waiting
// tickets (join + search + removal of both), with the default policy and
// the default per-band bound. The waiting tickets are spread over 3
// difficulties, 4 durations, 5 languages and ratings 0–10000.
func BenchmarkPoolJoin(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("waiting=%d", n), func(b *testing.B) {
			policy := matchd.DefaultPolicy()
			policy.SameRegionFor = 0
			pool := matchd.NewPool(policy)
			r := rand.New(rand.NewPCG(1, 2))
			now := time.Unix(1_000_000, 0)
			difficulties := []string{"easy", "medium", "hard"}
			durations := []int{15, 30, 45, 60}
			languages := []string{"en", "de", "fr", "es", "pt"}
			ticket := func(seq uint64) matchd.Ticket {
				return matchd.Ticket{
					PlayerID: fmt.Sprintf("p%d", seq), Seq: seq, JoinedAt: now, Rating: float64(r.IntN(10000)),
					Prefs: matchd.Preferences{
						Difficulty: difficulties[r.IntN(3)], Duration: durations[r.IntN(4)], Language: languages[r.IntN(5)],
					},
				}
			}
			var seq uint64
			all := make([]matchd.Ticket, 0, n+b.N)
			for range n {
				seq++
				tk := ticket(seq)
				pool.Add(tk, now)
				all = append(all, tk)
			}
			// Each joiner asks for what a waiting ticket offers, at a
			// rating within 50, so that a partner exists.
			joiners := make([]matchd.Ticket, b.N)
			for i := range joiners {
				like := all[r.IntN(len(all))]
				seq++
				joiners[i] = like
				joiners[i].PlayerID, joiners[i].Seq = fmt.Sprintf("j%d", seq), seq
				joiners[i].Rating += float64(r.IntN(101) - 50)
			}
			// The setup's garbage (a million tickets and their ids) is
			// collected now, not by a GC that would start while the joins
			// are timed and mark the whole pool then.
			runtime.GC()
			b.ResetTimer()
			found := 0
			for i := range b.N {
				j := joiners[i]
				if partner, ok, _ := pool.Partner(&j, now, nil); ok {
					pool.Remove(partner.PlayerID)
					found++
					// The partner comes back as a new ticket, so the pool
					// keeps its size and make-up.
					seq++
					partner.Seq = seq
					pool.Add(partner, now)
				}
			}
			b.StopTimer()
			if found < b.N*9/10 {
				b.Fatalf("only %d of %d joins found a partner", found, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "joins/s")
		})
	}
}
