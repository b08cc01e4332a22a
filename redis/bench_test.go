package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/redistest"
)

// The benchmarks measure matches per second through the Redis backend
// against a real redis-server of their own (redistest), for bench/run to
// compare with redis-benchmark's EVAL rate on the same machine. Each one
// checks what it measured: every player matched exactly once, every
// assignment written, the queue empty.

// benchPools numbers the pools of benchmark runs: Go runs a benchmark
// function more than once (b.N = 1 first), and each run gets its own pool.
var benchPools atomic.Int64

func benchPool(name string) string {
	return fmt.Sprintf("bench-%s-%d", name, benchPools.Add(1))
}

// matchLog is an Observer that records every match, so a benchmark can
// prove that each player was matched exactly once.
type matchLog struct {
	mu      sync.Mutex
	matched map[string]string // player -> match id
	dups    []string          // players matched more than once
	count   atomic.Int64      // matches
	failed  atomic.Int64      // failed room creations
}

func newMatchLog() *matchLog { return &matchLog{matched: make(map[string]string)} }

func (l *matchLog) Matched(room matchd.Room, _ [2]time.Duration) {
	l.mu.Lock()
	for _, p := range room.Players() {
		if old, ok := l.matched[p]; ok {
			l.dups = append(l.dups, fmt.Sprintf("%s in %s and %s", p, old, room.MatchID))
		}
		l.matched[p] = room.MatchID
	}
	l.mu.Unlock()
	l.count.Add(1)
}

func (l *matchLog) RoomFailed(error)         { l.failed.Add(1) }
func (l *matchLog) Swept(time.Duration, int) {}

// check fails b unless exactly the given players were matched, each once,
// in wantMatches matches.
func (l *matchLog) check(b *testing.B, players []string, wantMatches int) {
	b.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.dups) > 0 {
		b.Fatalf("%d players matched twice, e.g. %s", len(l.dups), l.dups[0])
	}
	if got := l.count.Load(); got != int64(wantMatches) {
		b.Fatalf("%d matches formed, want %d", got, wantMatches)
	}
	if len(l.matched) != len(players) {
		b.Fatalf("%d players matched, want %d", len(l.matched), len(players))
	}
	for _, p := range players {
		if _, ok := l.matched[p]; !ok {
			b.Fatalf("player %s was never matched", p)
		}
	}
}

// checkAssigned fails b unless every player's assignment is in Redis and
// the pool's queue is empty.
func checkAssigned(b *testing.B, client *goredis.Client, pool string, players []string) {
	b.Helper()
	ctx := context.Background()
	prefix := "matchd:{" + pool + "}:"
	pipe := client.Pipeline()
	cmds := make([]*goredis.IntCmd, len(players))
	for i, p := range players {
		cmds[i] = pipe.Exists(ctx, prefix+"assign:"+p)
	}
	queue := pipe.ZCard(ctx, prefix+"queue")
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	missing := 0
	for i, c := range cmds {
		if c.Val() != 1 {
			if missing == 0 {
				b.Errorf("no assignment for %s", players[i])
			}
			missing++
		}
	}
	if missing > 0 {
		b.Fatalf("%d of %d players have no assignment", missing, len(players))
	}
	if n := queue.Val(); n != 0 {
		b.Fatalf("%d tickets left in the queue, want 0", n)
	}
}

// BenchmarkJoinPairs forms b.N matches from 2·b.N fresh players who join
// from 8 goroutines per CPU, two Join calls per iteration, under the
// default policy with no stated preferences (one bucket, one rating
// band). A match costs two join.lua and at least one match.lua round
// trip; a commit that loses to another (a conflict) costs a room, a
// search.lua and another match.lua.
func BenchmarkJoinPairs(b *testing.B) { benchJoinPairs(b, uniformPlayer) }

// BenchmarkJoinPairsPrefs is BenchmarkJoinPairs with varied preferences:
// each pair states one of 24 combinations of difficulty, duration and
// language (all stated, so only its own class fits), a topic, and a
// rating band of its own, so every join searches several buckets and
// bands' worth of index and filters candidates with the policy.
func BenchmarkJoinPairsPrefs(b *testing.B) { benchJoinPairs(b, variedPlayer) }

// uniformPlayer is the player of pair i who states nothing.
func uniformPlayer(int) (matchd.Preferences, float64) { return matchd.Preferences{}, 1500 }

// variedPlayer is the player of pair i with the preferences and rating of
// its class (i mod 24); both players of a pair are of one class.
func variedPlayer(i int) (matchd.Preferences, float64) {
	c := i % 24
	p := matchd.Preferences{
		Difficulty: matchd.Difficulties[c%3],
		Duration:   matchd.Durations[c/3%4],
		Language:   []string{"en", "de"}[c/12],
		Topics:     []string{[]string{"algorithms", "databases", "concurrency"}[c%3]},
	}
	return p, float64(1000 + 40*c)
}

func benchJoinPairs(b *testing.B, player func(pair int) (matchd.Preferences, float64)) {
	srv := redistest.Start(b, redistest.Options{})
	client := srv.Client(b)
	pool := benchPool("join")
	rooms := matchdtest.NewFlakyRooms(b)
	log := newMatchLog()
	backend := redis.New(redis.Config{
		Client:   client,
		Rooms:    rooms,
		Pool:     pool,
		Channel:  "match_channel:" + pool,
		Observer: log,
	})
	b.Cleanup(func() { backend.Close() })

	players := make([]string, 2*b.N)
	for i := range players {
		players[i] = fmt.Sprintf("%s-p%d", pool, i)
	}
	var next atomic.Int64 // pairs handed out
	var errs atomic.Int64
	var firstErr atomic.Value
	ctx := context.Background()

	client.ConfigResetStat(ctx) // for redisMicros
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			prefs, rating := player(int(i))
			for _, p := range players[2*i : 2*i+2] {
				if _, err := backend.Join(ctx, matchd.Ticket{PlayerID: p, Rating: rating, Prefs: prefs}); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}
	})
	// Every Join matches its player if anyone fits, so all matches should
	// be formed by now; allow the periodic sweep (1 s) to catch up in case
	// one was not, and count its time.
	deadline := time.Now().Add(5 * time.Second)
	for log.count.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	if n := errs.Load(); n > 0 {
		b.Fatalf("%d joins failed, first: %v", n, firstErr.Load())
	}
	log.check(b, players, b.N)
	checkAssigned(b, client, pool, players)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "matches/s")
	b.ReportMetric(redisMicros(b, client)/float64(b.N), "redis-µs/match")
	// Rooms made per match: above 1 when commits lost to a stale read.
	b.ReportMetric(float64(rooms.Attempts.Load())/float64(b.N), "rooms/match")
}

// BenchmarkDrain measures how fast one instance drains a backlog: 2·b.N
// tickets pile up while room creation fails (which leaves each due for a
// sweep), then a new backend on the same pool matches them all in its
// sweeps: one claim.lua and one match.lua round trip per batch of up to
// 16 matches.
func BenchmarkDrain(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	client := srv.Client(b)
	pool := benchPool("drain")
	rooms := matchdtest.NewFlakyRooms(b)
	rooms.Failing.Store(true)
	cfg := redis.Config{
		Client:     client,
		Rooms:      rooms,
		Pool:       pool,
		Channel:    "match_channel:" + pool,
		MatchEvery: time.Hour, // no sweep of its own during the fill
		RetryMin:   time.Hour, // and no retry after the failed rooms
		LeaseTTL:   time.Hour, // nobody sweeps the filler's tickets
	}
	ctx := context.Background()

	// Fill: every Join after the first tries a room, which fails, so the
	// tickets stay queued.
	filler := redis.New(cfg)
	b.Cleanup(func() { filler.Close() }) // on failure; Close twice is fine
	players := make([]string, 2*b.N)
	for i := range players {
		players[i] = fmt.Sprintf("%s-p%d", pool, i)
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(players) {
					return
				}
				if _, err := filler.Join(ctx, matchd.Ticket{PlayerID: players[i], Rating: 1500}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	filler.Close()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("filling the queue: %v", err)
	}
	queue := "matchd:{" + pool + "}:queue"
	if n := client.ZCard(ctx, queue).Val(); n != int64(len(players)) {
		b.Fatalf("queue holds %d tickets after the fill, want %d", n, len(players))
	}

	client.ConfigResetStat(ctx) // for redisMicros: the drain only
	// Drain: a new backend whose periodic sweep starts within 1 ms.
	log := newMatchLog()
	b.ResetTimer()
	start := time.Now()
	rooms.Failing.Store(false)
	cfg.MatchEvery = time.Millisecond
	cfg.Observer = log
	drainer := redis.New(cfg)
	b.Cleanup(func() { drainer.Close() })
	// Done when every match has been observed (the Observer hears of a
	// match just after its commit): polled in process, so that the only
	// Redis commands counted are the backend's.
	deadline := start.Add(time.Minute)
	for log.count.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d matches after %v", log.count.Load(), b.N, time.Minute)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	if n := client.ZCard(ctx, queue).Val(); n != 0 {
		b.Fatalf("%d tickets still queued after %d matches", n, b.N)
	}
	log.check(b, players, b.N)
	// bench/run builds its stand-in script for the Redis limit from this
	// line: the commands the backend's scripts ran, per match.
	b.Logf("redis commands per match: %s", commandsPerMatch(b, client, b.N))
	checkAssigned(b, client, pool, players)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "matches/s")
	b.ReportMetric(redisMicros(b, client)/float64(b.N), "redis-µs/match")
}

// commandsPerMatch lists the Redis commands run since the last CONFIG
// RESETSTAT, other than EVAL/EVALSHA themselves and the statistics
// commands, each as NAME=calls÷matches, sorted by name.
func commandsPerMatch(b *testing.B, client *goredis.Client, matches int) string {
	info, err := client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch name {
		case "eval", "evalsha", "config|resetstat", "info", "zcard|", "config":
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		n, err := strconv.Atoi(calls)
		if err != nil {
			b.Fatalf("commandstats line %q: %v", line, err)
		}
		out = append(out, fmt.Sprintf("%s=%.4f", strings.ToUpper(name), float64(n)/float64(matches)))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// redisMicros is the time Redis spent running scripts since the last
// CONFIG RESETSTAT, in µs (INFO commandstats, EVAL and EVALSHA): divided
// by the matches, the Redis CPU one match costs, which bounds the matches
// per second one Redis core can serve.
func redisMicros(b *testing.B, client *goredis.Client) float64 {
	info, err := client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for line := range strings.SplitSeq(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_eval") {
			continue
		}
		for f := range strings.SplitSeq(line, ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += n
			}
		}
	}
	return total
}
