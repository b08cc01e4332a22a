package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	goredis "github.com/redis/go-redis/v9"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/redistest"
	"github.com/matchd/matchd/web"
)

// roomFleet is several instances with the room lifecycle on, sharing one
// fake clock for its timers, and counting cleanups across them.
type roomFleet struct {
	clock *matchdtest.Clock
	mu    sync.Mutex
	// cleaned counts, per match, the instances' cleanups of its session.
	cleaned map[string]int
}

func (f *roomFleet) cleanups(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cleaned[id]
}

// start starts an instance with the lifecycle: a 30 s ready window, a
// 2-minute no-show cooldown, a boost of 10, timers checked every 20 ms.
func (f *roomFleet) start(t *testing.T, name string, addrs []string) *instance {
	t.Helper()
	return startInstanceWith(t, name, addrs, func(c *web.Config, client goredis.UniversalClient) {
		store := redis.NewSessions(redis.SessionsConfig{Client: client, Pool: pool, Channel: channel + ":rooms", Clock: f.clock})
		c.Lifecycle = matchd.NewLifecycle(store, c.Matchmaker, matchd.LifecycleConfig{
			SessionConfig: matchd.SessionConfig{ReadyTimeout: 30 * time.Second, RoomTTL: 2 * time.Hour},
			Cooldown:      2 * time.Minute,
			Boost:         10,
			Clock:         f.clock,
			OnCleanup: func(s matchd.Session) {
				f.mu.Lock()
				f.cleaned[s.MatchID]++
				f.mu.Unlock()
			},
		})
		c.TickEvery = 20 * time.Millisecond
	})
}

func newRoomFleet() *roomFleet {
	return &roomFleet{clock: matchdtest.NewClock(), cleaned: map[string]int{}}
}

func (p *player) sendJSON(v any) {
	p.t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.conn().Write(ctx, websocket.MessageText, b); err != nil {
		p.t.Fatalf("%s: write: %v", p.id, err)
	}
}

// expectAll reads len(want) messages whose types are want in any order.
func (p *player) expectAll(want ...string) map[string]map[string]any {
	p.t.Helper()
	got := map[string]map[string]any{}
	left := map[string]int{}
	for _, w := range want {
		left[w]++
	}
	for range want {
		m := p.expectAny()
		typ, _ := m["type"].(string)
		if left[typ] == 0 {
			p.t.Fatalf("%s: got %v, want one of %v", p.id, m, want)
		}
		left[typ]--
		got[typ] = m
	}
	return got
}

func (p *player) expectAny() map[string]any {
	p.t.Helper()
	m, err := p.read(5 * time.Second)
	if err != nil {
		p.t.Fatalf("%s: read: %v", p.id, err)
	}
	return m
}

// post sends a JSON body with p's token and returns the status.
func (p *player) post(in *instance, path string, body any) int {
	p.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", in.url+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func eachRedis(t *testing.T, run func(t *testing.T, addrs []string)) {
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		run(t, []string{srv.Addr})
	})
	t.Run("cluster", func(t *testing.T) {
		cluster := redistest.StartCluster(t, 3)
		run(t, cluster.Addrs())
	})
}

// A whole session with its players on different instances: the ready
// check, chat, a reconnect to a third instance that restores the state,
// the end, feedback once, and the cleanup done once by one of three
// instances.
func TestRoomSessionAcrossInstances(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		f := newRoomFleet()
		a, b, c := f.start(t, "a", addrs), f.start(t, "b", addrs), f.start(t, "c", addrs)
		alice, bob := newPlayer(t, "alice"), newPlayer(t, "bob")
		alice.connect(a)
		bob.connect(b)
		ma, mb := pairUp(t, alice, bob)
		id := ma["match_id"].(string)
		if mb["match_id"] != id || ma["room"].(map[string]any)["status"] != "waiting" {
			t.Fatalf("match_found alice=%v bob=%v: want one match, waiting", ma, mb)
		}

		alice.sendJSON(map[string]string{"type": "ready", "match_id": id})
		alice.expect("room_state")
		if st := bob.expect("room_state"); st["partner_ready"] != true {
			t.Errorf("bob's room_state after alice's ready = %v, want his partner ready", st)
		}
		bob.sendJSON(map[string]string{"type": "ready"})
		bob.expectAll("room_state", "room_started")
		alice.expect("room_started")

		bob.sendJSON(map[string]string{"type": "chat", "text": "across instances"})
		if m := alice.expect("chat"); m["text"] != "across instances" || m["from"] != "bob" {
			t.Errorf("alice got %v, want bob's chat", m)
		}

		f.clock.Advance(2 * time.Minute)
		alice.conn().CloseNow()
		bob.expect("partner_disconnected")
		alice.connect(c)
		alice.expect("match_found")
		st := alice.expect("room_state")
		if st["status"] != "active" || st["you_ready"] != true || st["partner_ready"] != true || st["partner_id"] != "bob" {
			t.Errorf("room_state after reconnecting elsewhere = %v, want the active session", st)
		}
		bob.expect("partner_connected")
		alice.expect("partner_connected") // bob is there too

		f.clock.Advance(time.Hour)
		alice.expect("time_up")
		bob.expect("time_up")
		matchdtest.Eventually(t, 5*time.Second, func() bool {
			r1, _ := a.backend.Assignment(t.Context(), "alice")
			r2, _ := a.backend.Assignment(t.Context(), "bob")
			return r1 == nil && r2 == nil
		}, "the room was not released after time_up")

		path := "/api/matches/" + id + "/feedback"
		if s := alice.post(b, path, map[string]any{"rating": 5, "notes": "great"}); s != http.StatusCreated {
			t.Errorf("alice's feedback: %d, want 201", s)
		}
		if s := alice.post(c, path, map[string]any{"rating": 1}); s != http.StatusConflict {
			t.Errorf("alice's second feedback on another instance: %d, want 409", s)
		}
		if s := newPlayer(t, "mallory").post(a, path, map[string]any{"rating": 1}); s != http.StatusForbidden {
			t.Errorf("an outsider's feedback: %d, want 403", s)
		}

		f.clock.Advance(2 * time.Hour)
		matchdtest.Eventually(t, 5*time.Second, func() bool { return f.cleanups(id) > 0 }, "the session was not cleaned up")
		// The instances keep ticking meanwhile; nobody cleans it again.
		for range 3 {
			alice.quiet()
		}
		if n := f.cleanups(id); n != 1 {
			t.Errorf("session cleaned up %d times, want once", n)
		}
		if n, _ := a.client.Exists(t.Context(), "matchd:{"+pool+"}:session:"+id).Result(); n != 0 {
			t.Errorf("session key still there after the cleanup")
		}
	})
}

// The no-show's partner, on another instance than the no-show, is
// requeued at their place and matched with the next joiner; the no-show
// waits out the cooldown.
func TestRoomNoShowAcrossInstances(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		f := newRoomFleet()
		a, b, c := f.start(t, "a", addrs), f.start(t, "b", addrs), f.start(t, "c", addrs)
		alice, bob, carol := newPlayer(t, "alice"), newPlayer(t, "bob"), newPlayer(t, "carol")
		alice.connect(a)
		bob.connect(b)
		carol.connect(c)
		_, mb := pairUp(t, alice, bob)
		id := mb["match_id"].(string)

		bob.sendJSON(map[string]string{"type": "ready", "match_id": id})
		bob.expect("room_state")
		alice.expect("room_state") // her partner is ready
		f.clock.Advance(30 * time.Second)
		if m := bob.expect("requeued"); m["reason"] != "partner_no_show" {
			t.Errorf("bob got %v, want requeued for partner_no_show", m)
		}
		if m := alice.expect("match_cancelled"); m["reason"] != "not_ready" {
			t.Errorf("alice got %v, want match_cancelled, not_ready", m)
		}
		matchdtest.Eventually(t, 5*time.Second, func() bool { return queueSize(t, a.client) == 1 }, "bob is not back in the queue")

		carol.send("join_queue")
		if m := carol.matched(); m["partner_id"] != "bob" {
			t.Errorf("carol matched %v, want bob", m)
		}
		if m := bob.expect("match_found"); m["partner_id"] != "carol" {
			t.Errorf("bob got %v, want his match with carol", m)
		}
		alice.send("join_queue")
		if e := alice.expect("error"); e["code"] != "rate_limited" {
			t.Errorf("the no-show's join = %v, want rate_limited", e)
		}
	})
}

// When an instance's room-event subscription breaks (here: Redis closes
// the pub/sub connections), it resubscribes and sends room_state to every
// socket it had shown a room, so a frame lost in the gap is made up for.
func TestRoomStateAfterResubscribe(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	f := newRoomFleet()
	a, b := f.start(t, "a", []string{srv.Addr}), f.start(t, "b", []string{srv.Addr})
	alice, bob := newPlayer(t, "alice"), newPlayer(t, "bob")
	alice.connect(a)
	bob.connect(b)
	_, mb := pairUp(t, alice, bob)
	id := mb["match_id"].(string)
	alice.sendJSON(map[string]string{"type": "ready", "match_id": id})
	alice.expect("room_state")
	bob.expect("room_state")
	bob.sendJSON(map[string]string{"type": "ready", "match_id": id})
	bob.expectAll("room_state", "room_started")
	alice.expect("room_started")

	if err := srv.Client(t).Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v", err)
	}
	for _, p := range []*player{alice, bob} {
		st := p.expect("room_state")
		if st["match_id"] != id || st["status"] != "active" {
			t.Errorf("%s: room_state after the resubscribe = %v, want the active session", p.id, st)
		}
	}
	// Events flow again.
	alice.sendJSON(map[string]string{"type": "chat", "text": "still there?"})
	if m := bob.expect("chat"); m["text"] != "still there?" {
		t.Errorf("bob got %v, want alice's chat", m)
	}
}
