package redis_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/questions"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/redistest"
)

// TestConcurrentSweeps: two instances on one Redis sweep the same pool at
// once, many times, while every waiting ticket becomes matchable at the
// same instant (the region rule lapses after 20 s). Claims and
// conditional commits keep every player in at most one match, and between
// them the sweeps match everyone.
func TestConcurrentSweeps(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	testConcurrentSweeps(t, srv.Client(t))
}

func TestConcurrentSweepsCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	testConcurrentSweeps(t, cluster.Client(t))
}

func testConcurrentSweeps(t *testing.T, client goredis.UniversalClient) {
	bank, err := questions.Load()
	if err != nil {
		t.Fatal(err)
	}
	clock := matchdtest.NewClock()
	rooms := &matchdtest.RecordingRooms{Rooms: matchd.QuestionRooms{Bank: bank, Clock: clock}}
	instances, events := twoInstances(t, redis.Config{
		Client:     client,
		Rooms:      rooms,
		Clock:      clock,
		Pool:       "sweeps",
		Channel:    "match_channel:sweeps",
		MatchEvery: time.Hour, // only the test's sweeps
		Batch:      4,         // many small claims, so the instances interleave
	})
	ctx := t.Context()

	const players = 200
	for i := range players {
		tk := matchd.Ticket{PlayerID: fmt.Sprintf("p%03d", i), Rating: 1500, Prefs: matchd.Preferences{Region: fmt.Sprintf("r%d", i)}}
		if res, err := instances[i%2].Join(ctx, tk); err != nil || res.Room != nil {
			t.Fatalf("Join(%s) = %+v, %v; want a waiting ticket (every region differs)", tk.PlayerID, res, err)
		}
	}
	clock.Advance(20 * time.Second)

	var wg sync.WaitGroup
	var mu sync.Mutex
	swept := 0
	for _, b := range instances {
		for range 3 {
			wg.Go(func() {
				n, err := b.Sweep(ctx)
				if err != nil {
					t.Errorf("Sweep: %v", err)
				}
				mu.Lock()
				swept += n
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	collectMatches(t, events, players, fmt.Sprintf("sweeps reported %d matches", swept))
	if swept != players/2 {
		t.Errorf("sweeps reported %d matches, want %d", swept, players/2)
	}
	if n, _ := instances[1].QueueSize(ctx); n != 0 {
		t.Errorf("queue size = %d, want 0", n)
	}
	select {
	case ev := <-events:
		t.Errorf("unexpected extra match %+v", ev)
	default:
	}
	t.Logf("%d matches, %d rooms made (the rest lost a commit to the other instance)", players/2, rooms.Calls())
}

// TestJoinsPastTheSettlers: with room for one join being matched at a
// time, a burst of concurrent joins on two instances leaves most of them
// to the sweep; everyone is still matched, exactly once. The clock stands
// still, so no rule widens: the sweep finds those tickets only because
// they were made due.
func TestJoinsPastTheSettlers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client := srv.Client(t)
	rooms := matchdtest.NewFlakyRooms(t)
	clock := matchdtest.NewClock()
	instances, events := twoInstances(t, redis.Config{
		Client: client, Rooms: rooms, Pool: "settlers", Channel: "match_channel:settlers",
		Clock: clock, Settlers: 1, MatchEvery: 20 * time.Millisecond,
	})
	ctx := t.Context()
	const players = 200
	var wg sync.WaitGroup
	for i := range players {
		wg.Go(func() {
			if _, err := instances[i%2].Join(ctx, matchd.Ticket{PlayerID: fmt.Sprintf("s%03d", i), Rating: 1500}); err != nil {
				t.Errorf("Join: %v", err)
			}
		})
	}
	wg.Wait()
	collectMatches(t, events, players, "")
	if n, _ := instances[1].QueueSize(ctx); n != 0 {
		t.Errorf("queue size = %d, want 0", n)
	}
}

// twoInstances starts instances "a" and "b" of cfg on one pool, closed
// at the test's end, and subscribes to the match events through "a".
func twoInstances(t *testing.T, cfg redis.Config) ([]*redis.Backend, <-chan matchd.Event) {
	t.Helper()
	var instances []*redis.Backend
	for _, name := range []string{"a", "b"} {
		cfg.Instance = name
		b := redis.New(cfg)
		t.Cleanup(func() { b.Close() })
		instances = append(instances, b)
	}
	events, err := instances[0].Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return instances, events
}

// collectMatches reads match events until players players are matched,
// failing if one is matched twice or if 10 s pass without a new match;
// context is added to that failure.
func collectMatches(t *testing.T, events <-chan matchd.Event, players int, context string) {
	t.Helper()
	matched := map[string]string{}
	for len(matched) < players {
		select {
		case ev := <-events:
			for _, p := range ev.Players {
				if old, dup := matched[p]; dup {
					t.Fatalf("%s matched twice: %s and %s", p, old, ev.MatchID)
				}
				matched[p] = ev.MatchID
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d players matched %s", len(matched), players, context)
		}
	}
}

// TestDeepSearchPastThePageBudget: a sweep reads at most 64 pages of
// exhaustive search; a search that needs more leaves its ticket due, and
// the next sweep goes on from where it stopped. With Candidates 2, the
// 200 blockers (each alone in a bucket of its own language, so none of
// them is due itself) take 100 pages to read.
func TestDeepSearchPastThePageBudget(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	clock := matchdtest.NewClock()
	b := redis.New(redis.Config{
		Client: srv.Client(t), Rooms: matchdtest.NewFlakyRooms(t), Clock: clock,
		Pool: "budget", Channel: "match_channel:budget",
		MatchEvery: time.Hour, // only the test's sweeps
		PerBand:    1, Candidates: 2,
	})
	t.Cleanup(func() { b.Close() })
	ctx := t.Context()
	sweep := func() {
		t.Helper()
		if _, err := b.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		joinWaiting(t, b, matchd.Ticket{PlayerID: fmt.Sprintf("blocker%03d", i), Rating: 1500,
			Prefs: matchd.Preferences{Language: fmt.Sprintf("l%d", i), Region: fmt.Sprintf("r%d", i)}})
	}
	// x is a band further than the blockers, so y's search reads them first.
	joinWaiting(t, b, matchd.Ticket{PlayerID: "x", Rating: 1560, Prefs: matchd.Preferences{Region: "z"}})
	sweep()
	sweep() // x's own search, which finds nobody
	joinWaiting(t, b, matchd.Ticket{PlayerID: "y", Rating: 1500, Prefs: matchd.Preferences{Region: "z"}})
	sweep()
	if r, _ := b.Assignment(ctx, "y"); r != nil {
		t.Fatalf("y matched with %s by one sweep; its search needs more pages than one sweep reads", r.Partner("y"))
	}
	sweep()
	if r, err := b.Assignment(ctx, "y"); err != nil || r == nil || r.Partner("y") != "x" {
		t.Fatalf("y's assignment after two sweeps = %+v, %v; want a match with x", r, err)
	}
}

// joinWaiting joins tk and fails unless it waits, unmatched.
func joinWaiting(t *testing.T, b *redis.Backend, tk matchd.Ticket) {
	t.Helper()
	res, err := b.Join(t.Context(), tk)
	if err != nil || res.Room != nil {
		t.Fatalf("Join(%s) = %+v, %v; want a waiting ticket", tk.PlayerID, res, err)
	}
}
