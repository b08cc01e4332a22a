package memory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/memory"
	"github.com/matchd/matchd/questions"
)

// BenchmarkJoinMatch measures the embedded backend's Join with the
// default policy on, with 1k, 100k and 1M tickets waiting: one op is a
// join that is matched at once (partner search, room with a question new
// to both, history, commit) plus the join of a newcomer who replaces the
// partner and waits, so that the queue keeps its size.
//
// The waiting tickets are spread over the 60 buckets of difficulty ×
// duration × language, and within a bucket 101 rating points apart, so no
// two of them fit each other (tolerance 100) and each joiner, 30 points
// from one of them, has exactly one partner.
//
//	go test -run '^$' -bench JoinMatch -benchtime 100000x ./memory
func BenchmarkJoinMatch(b *testing.B) {
	bank, err := questions.Load()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("waiting=%d", n), func(b *testing.B) {
			policy := matchd.DefaultPolicy()
			clock := matchdtest.NewClock()
			mm := memory.New(memory.Config{Rooms: matchd.QuestionRooms{Bank: bank, Clock: clock}, Policy: &policy, Clock: clock})
			defer mm.Close()
			ctx := context.Background()
			difficulties := []string{"easy", "medium", "hard"}
			durations := []int{15, 30, 45, 60}
			languages := []string{"en", "de", "fr", "es", "pt"}
			ticket := func(id string, i int) matchd.Ticket {
				k := i % 60
				return matchd.Ticket{
					PlayerID: id,
					Rating:   float64(i/60) * 101,
					Prefs:    matchd.Preferences{Difficulty: difficulties[k%3], Duration: durations[k/3%4], Language: languages[k/12]},
				}
			}
			for i := range n {
				if res, err := mm.Join(ctx, ticket(fmt.Sprintf("w%d", i), i)); err != nil || !res.Added || res.Room != nil {
					b.Fatalf("setting up: %+v, %v", res, err)
				}
			}
			joiners := make([]matchd.Ticket, b.N)
			newcomers := make([]matchd.Ticket, b.N)
			for i := range b.N {
				// Joiner i pairs with waiting ticket i (or with the
				// newcomer who took its place), spread over the queue.
				slot := i * 7919 % n
				joiners[i] = ticket(fmt.Sprintf("j%d", i), slot)
				joiners[i].Rating += 30
				newcomers[i] = ticket(fmt.Sprintf("n%d", i), slot)
			}
			b.ResetTimer()
			for i := range b.N {
				res, err := mm.Join(ctx, joiners[i])
				if err != nil || res.Room == nil {
					b.Fatalf("joiner %d not matched: %+v, %v", i, res, err)
				}
				if res, err := mm.Join(ctx, newcomers[i]); err != nil || res.Room != nil {
					b.Fatalf("newcomer %d: %+v, %v; want waiting", i, res, err)
				}
			}
			b.StopTimer()
			if size, _ := mm.QueueSize(ctx); size != n {
				b.Fatalf("queue size %d, want %d", size, n)
			}
		})
	}
}
