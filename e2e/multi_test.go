package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/redistest"
)

// watchChannel records every event published on match_channel.
type watchChannel struct {
	mu     sync.Mutex
	events map[string][]matchd.Event // by match id
}

func watch(t *testing.T, c goredis.UniversalClient) *watchChannel {
	t.Helper()
	w := &watchChannel{events: map[string][]matchd.Event{}}
	ctx, cancel := context.WithCancel(context.Background())
	ps := c.Subscribe(ctx, channel)
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("subscribing to %s: %v", channel, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ps.Channel() {
			var ev matchd.Event
			if err := json.Unmarshal([]byte(msg.Payload), &ev); err != nil {
				t.Errorf("undecodable event %q", msg.Payload)
				continue
			}
			w.mu.Lock()
			w.events[ev.MatchID] = append(w.events[ev.MatchID], ev)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); ps.Close(); <-done })
	return w
}

func (w *watchChannel) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// runMany has n players join through the instances at once, some leaving
// and some dropping their sockets, and checks: each player is matched at
// most once, every match is symmetric and published exactly once on
// match_channel in the original format, and nobody told left_queue is
// matched.
//
// With crash set, instances[0] is crashed once a third of the players are
// done; its players reconnect to instances[1] and join again.
func runMany(t *testing.T, n int, crash bool, check goredis.UniversalClient, instances ...*instance) {
	w := watch(t, check)
	type outcome struct {
		matchID, partner string
		left, dropped    bool
		reconnected      bool
	}
	results := make([]outcome, n)
	players := make([]*player, n)
	for i := range n {
		players[i] = newPlayer(t, fmt.Sprintf("m%03d", i))
		players[i].connect(instances[i%len(instances)])
	}
	var wg sync.WaitGroup
	var finished atomic.Int64
	crashed := make(chan struct{})
	if crash {
		wg.Go(func() {
			defer close(crashed)
			for finished.Load() < int64(n/3) {
				time.Sleep(time.Millisecond)
			}
			instances[0].crash()
		})
	}
	for i, p := range players {
		wg.Go(func() {
			defer finished.Add(1)
			defer p.done.Store(true)
			r := rand.New(rand.NewPCG(uint64(i), 3))
			onCrashed := crash && i%len(instances) == 0
			// moveOn reconnects a player of the crashed instance to
			// another one and joins again, once.
			moveOn := func() error {
				results[i].reconnected = true
				<-crashed
				if err := p.dial(instances[1]); err != nil {
					return err
				}
				return p.send("join_queue")
			}
			if crash {
				// Players arrive over a second, so the crash finds some
				// waiting and some not yet joined.
				time.Sleep(time.Duration(r.IntN(1000)) * time.Millisecond)
			}
			err := p.send("join_queue")
			if err != nil && onCrashed {
				err = moveOn()
			}
			if err != nil {
				t.Errorf("%s: %v", p.id, err)
				return
			}
			switch r.IntN(10) {
			case 0:
				p.conn().CloseNow()
				results[i].dropped = true
				return
			case 1:
				p.send("leave_queue")
			}
			for {
				m, err := p.read(20 * time.Second)
				if err != nil && onCrashed && !results[i].reconnected {
					// Our instance died: go to another and join again.
					if err = moveOn(); err == nil {
						continue
					}
				}
				if err != nil {
					t.Errorf("%s: %v", p.id, err)
					return
				}
				switch m["type"] {
				case "queued":
				case "error":
					// A join that reached the dying instance after its
					// Redis connection went is answered unavailable; the
					// socket is cut next and the player moves on.
					if !onCrashed || m["code"] != "unavailable" {
						t.Errorf("%s: unexpected %v", p.id, m)
						return
					}
				case "left_queue":
					results[i].left = true
					return
				case "match_found":
					results[i].matchID, results[i].partner = m["match_id"].(string), m["partner_id"].(string)
					return
				default:
					t.Errorf("%s: unexpected %v", p.id, m)
					return
				}
			}
		})
	}
	matchdtest.Eventually(t, 20*time.Second, func() bool {
		return finished.Load() >= int64(n-1) && queueSize(t, check) <= 1
	}, "players still waiting")
	for _, p := range players {
		if !p.done.Load() {
			p.send("leave_queue") // fails harmlessly on a socket that is gone
		}
	}
	wg.Wait()

	ctx := context.Background()
	live := instances[len(instances)-1] // instances[0] may have crashed
	byMatch := map[string][]string{}
	for i, r := range results {
		id := players[i].id
		if r.matchID != "" {
			byMatch[r.matchID] = append(byMatch[r.matchID], id)
			var other outcome
			for j := range players {
				if players[j].id == r.partner {
					other = results[j]
				}
			}
			if other.matchID != r.matchID && !other.dropped {
				t.Errorf("%s matched %s in %s, but %s has %q", id, r.partner, r.matchID, r.partner, other.matchID)
			}
		}
		if r.left {
			if room, err := live.backend.Assignment(ctx, id); err != nil || room != nil {
				t.Errorf("%s was told left_queue but holds %v (%v)", id, room, err)
			}
		}
	}
	// Every match any player saw, and every assignment, was published
	// exactly once.
	matchdtest.Eventually(t, 5*time.Second, func() bool { return w.count() >= len(byMatch) }, "events missing: %d of %d", w.count(), len(byMatch))
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, evs := range w.events {
		if len(evs) != 1 {
			t.Errorf("match %s published %d times", id, len(evs))
		}
		ev := evs[0]
		if ev.Players[0] == ev.Players[1] || ev.Room.MatchID != id {
			t.Errorf("malformed event %+v", ev)
		}
		for _, p := range ev.Players {
			room, err := live.backend.Assignment(ctx, p)
			if err != nil || room == nil || room.MatchID != id {
				t.Errorf("event %s names %s, whose assignment is %v (%v)", id, p, room, err)
			}
		}
	}
	for id, ps := range byMatch {
		if _, ok := w.events[id]; !ok {
			t.Errorf("match %s of %v never published", id, ps)
		}
		if len(ps) > 2 {
			t.Errorf("match %s has players %v", id, ps)
		}
	}
	if len(w.events) < n/4 {
		t.Errorf("only %d matches among %d players", len(w.events), n)
	}
	reconnected := 0
	for _, r := range results {
		if r.reconnected {
			reconnected++
		}
	}
	if crash && reconnected == 0 {
		t.Error("the crash caught no player in flight; the test proved nothing about it")
	}
	t.Logf("%d players, %d matches over %d instances, %d reconnected after the crash", n, len(w.events), len(instances), reconnected)
}

func TestManyPlayersOnThreeInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	addrs := []string{srv.Addr}
	a, b, c := startInstance(t, "a", addrs), startInstance(t, "b", addrs), startInstance(t, "c", addrs)
	runMany(t, 300, false, srv.Client(t), a, b, c)
}

func TestManyPlayersOnRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	a, b := startInstance(t, "a", cluster.Addrs()), startInstance(t, "b", cluster.Addrs())
	runMany(t, 200, false, cluster.Client(t), a, b)
}

func TestMatchAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	addrs := []string{srv.Addr}
	a, b, c := startInstance(t, "a", addrs), startInstance(t, "b", addrs), startInstance(t, "c", addrs)
	alice, bob := newPlayer(t, "alice"), newPlayer(t, "bob")
	alice.connect(a)
	bob.connect(b)
	_, mb := pairUp(t, alice, bob)
	id := mb["match_id"]
	// A socket opened on any instance while matched is told at once.
	alice.connect(c)
	if m := alice.expect("match_found"); m["match_id"] != id {
		t.Errorf("alice on c got %v, want match %v", m, id)
	}
	// A duplicate join through a third instance keeps one match.
	alice.send("join_queue")
	if m := alice.expect("match_found"); m["match_id"] != id {
		t.Errorf("join after match on c got %v", m)
	}
}

// TestCrashMidRun crashes one of three instances while hundreds of players
// are joining; its players reconnect to another instance, and the
// invariants hold.
func TestCrashMidRun(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	addrs := []string{srv.Addr}
	a, b, c := startInstance(t, "a", addrs), startInstance(t, "b", addrs), startInstance(t, "c", addrs)
	runMany(t, 300, true, srv.Client(t), a, b, c)
}

// TestCrashKeepsPlacesAndSweepsGhosts: a player whose instance dies and who
// reconnects elsewhere keeps their ticket and place; a player who never
// comes back is removed once the dead instance's lease expires.
func TestCrashKeepsPlacesAndSweepsGhosts(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	check := srv.Client(t)
	addrs := []string{srv.Addr}
	a, b, c := startInstance(t, "a", addrs), startInstance(t, "b", addrs), startInstance(t, "c", addrs)
	ctx := context.Background()
	ticket := func(p string) string {
		s, _ := check.HGet(ctx, "matchd:{"+pool+"}:tickets", p).Result()
		return s
	}

	stay := newPlayer(t, "stay")
	stay.connect(a)
	stay.send("join_queue")
	stay.expect("queued")
	before := ticket("stay")
	a.crash()
	stay.connect(b)
	stay.send("join_queue")
	if q := stay.expect("queued"); q["queue_size"] != 1.0 {
		t.Errorf("re-join after crash: %v, want queue_size 1", q)
	}
	if after := ticket("stay"); after == "" || after != before {
		t.Fatalf("ticket after re-join = %q, want the original %q (same seq, same place)", after, before)
	}
	// Well past the dead instance's lease, the ticket is still there: b
	// owns it now.
	matchdtest.Eventually(t, 10*time.Second, func() bool {
		n, _ := check.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: "matchd:{" + pool + "}:leases", Start: "-inf", Stop: "+inf", ByScore: true}).Result()
		return len(n) == 2 // a's lease was swept; b's and c's remain
	}, "dead instance's lease not swept")
	if ticket("stay") == "" {
		t.Fatal("the sweep removed a ticket that a live instance owns")
	}
	p := newPlayer(t, "partner")
	p.connect(c)
	p.send("join_queue")
	if m := p.matched(); m["partner_id"] != "stay" {
		t.Errorf("partner matched with %v, want stay", m["partner_id"])
	}
	stay.expect("match_found")

	// A ghost: joins on c, c dies, the player never returns.
	ghost := newPlayer(t, "ghost")
	ghost.connect(c)
	ghost.send("join_queue")
	ghost.expect("queued")
	start := time.Now()
	c.crash()
	matchdtest.Eventually(t, 15*time.Second, func() bool { return queueSize(t, check) == 0 }, "ghost ticket not removed")
	t.Logf("ghost removed %v after its instance died (lease %v)", time.Since(start).Round(10*time.Millisecond), leaseTTL)
	late := newPlayer(t, "late")
	late.connect(b)
	late.send("join_queue")
	if q := late.expect("queued"); q["queue_size"] != 1.0 {
		t.Errorf("late joined a queue of %v, want 1 (the ghost is gone)", q["queue_size"])
	}
	late.quiet()
}

// TestRedisRestart stops Redis under running instances: joins are answered
// unavailable, health turns 503, sockets stay open; when Redis returns,
// queued tickets survive (AOF) and are matched, with no restart of matchd.
func TestRedisRestart(t *testing.T) {
	for _, aof := range []bool{true, false} {
		t.Run(fmt.Sprintf("aof=%v", aof), func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{AOF: aof})
			addrs := []string{srv.Addr}
			a, b := startInstance(t, "a", addrs), startInstance(t, "b", addrs)
			alice, bob := newPlayer(t, "alice"), newPlayer(t, "bob")
			alice.connect(a)
			bob.connect(b)
			alice.send("join_queue")
			alice.expect("queued")

			srv.Stop()
			matchdtest.Eventually(t, 5*time.Second, func() bool { s, _ := health(t, b); return s == 503 }, "healthz not 503 with Redis down")
			_, body := health(t, b)
			if body["status"] != "unhealthy" || body["error"] == "" {
				t.Errorf("healthz body = %v", body)
			}
			bob.send("join_queue")
			if e := bob.expect("error"); e["code"] != "unavailable" {
				t.Errorf("join with Redis down: %v, want error unavailable", e)
			}
			bob.quiet() // the socket stays usable

			srv.Restart()
			matchdtest.Eventually(t, 10*time.Second, func() bool { s, _ := health(t, b); return s == 200 }, "healthz not back to 200")
			// Without persistence alice's ticket is gone with the data;
			// her instance joins her again when it resyncs.
			matchdtest.Eventually(t, 10*time.Second, func() bool { return queueSize(t, srv.Client(t)) == 1 }, "alice's ticket not back after the restart")
			bob.send("join_queue")
			if m := bob.matched(); m["partner_id"] != "alice" {
				t.Errorf("bob matched with %v, want alice", m["partner_id"])
			}
			if m := alice.expect("match_found"); m["partner_id"] != "bob" {
				t.Errorf("alice got %v", m)
			}
		})
	}
}

// TestDisconnectDuringOutage: a player whose socket closes while Redis is
// down cannot be dropped then; their instance drops them once Redis is
// back, so no ghost is left for someone to be matched with.
func TestDisconnectDuringOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true})
	a := startInstance(t, "a", []string{srv.Addr})
	alice := newPlayer(t, "alice")
	alice.connect(a)
	alice.send("join_queue")
	alice.expect("queued")

	srv.Stop()
	matchdtest.Eventually(t, 5*time.Second, func() bool { s, _ := health(t, a); return s == 503 }, "healthz not 503 with Redis down")
	alice.conn().CloseNow()
	matchdtest.Eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(a.metrics.PendingDrops) == 1 },
		"the drop of alice's closed socket was not attempted and held while Redis was down")
	srv.Restart()
	check := srv.Client(t)
	matchdtest.Eventually(t, 15*time.Second, func() bool { return queueSize(t, check) == 0 }, "alice's ticket still queued after Redis returned: a ghost")
	matchdtest.Eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(a.metrics.PendingDrops) == 0 },
		"pending drops not back to 0 after the drop went through")
}

// TestJoinRateLimitAcrossInstances: the join limit (10 a minute) holds
// across sockets and instances, because it is kept in Redis.
func TestJoinRateLimitAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	addrs := []string{srv.Addr}
	a, b := startInstance(t, "a", addrs), startInstance(t, "b", addrs)
	alice := newPlayer(t, "alice")
	alice.connect(a)
	for range 10 {
		alice.send("join_queue")
		alice.expect("queued")
	}
	limited := func(p *player, where string) {
		t.Helper()
		p.send("join_queue")
		e := p.expect("error")
		if e["code"] != "rate_limited" || e["retry_after_seconds"] == nil {
			t.Errorf("join %s: %v, want rate_limited with retry_after_seconds", where, e)
		}
	}
	limited(alice, "11 on a")
	// More sockets of alice's, the first one staying open (closing it
	// would drop her ticket).
	onA, onB := newPlayer(t, "alice"), newPlayer(t, "alice")
	onA.connect(a)
	onB.connect(b)
	limited(onA, "12 from a new socket on a")
	limited(onA, "13 from a new socket on a")
	limited(onB, "14 from another instance")
	limited(onB, "15 from another instance")
	// Another player is not limited.
	bob := newPlayer(t, "bob")
	bob.connect(b)
	bob.send("join_queue")
	if m := bob.matched(); m["partner_id"] != "alice" {
		t.Errorf("bob matched with %v, want alice (whose one ticket survived the refused joins)", m["partner_id"])
	}
}
