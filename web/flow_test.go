package web_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/web"
)

// The original design's integration test: two players join, both are
// notified of the same match, and both can open its room.
func TestTwoPlayersMatch(t *testing.T) {
	h := start(t)
	alice, bob := h.player("alice"), h.player("bob")

	alice.join()
	q := alice.expect("queued")
	if q["queue_size"] != 1.0 {
		t.Errorf("alice queued = %v, want queue_size 1", q)
	}
	bob.join()
	if q := bob.expect("queued"); q["queue_size"] != 0.0 || q["estimated_wait_seconds"] != 0.0 {
		t.Errorf("bob queued = %v, want queue_size 0 and no wait: his join completed the pair", q)
	}
	mb := bob.expect("match_found")
	ma := alice.expect("match_found")
	id := ma["match_id"].(string)
	if mb["match_id"] != id || ma["partner_id"] != "bob" || mb["partner_id"] != "alice" {
		t.Fatalf("match_found alice=%v bob=%v: want one match, each other as partners", ma, mb)
	}
	room := ma["room"].(map[string]any)
	for _, f := range []string{"match_id", "player1", "player2", "created_at", "status", "question_id", "question_text"} {
		if room[f] == nil || room[f] == "" {
			t.Errorf("room lacks %s: %v", f, room)
		}
	}
	if room["player1"] != "alice" || room["player2"] != "bob" || room["status"] != "active" {
		t.Errorf("room = %v, want alice, bob, active", room)
	}
	if _, err := time.Parse(time.RFC3339, room["created_at"].(string)); err != nil {
		t.Errorf("created_at is not RFC 3339: %v", err)
	}
	if strings.Contains(id, "alice") || strings.Contains(id, "bob") {
		t.Errorf("match id %q leaks a user id", id)
	}

	for _, p := range []*client{alice, bob} {
		status, got := h.do("GET", "/api/matches/"+id, h.login(p.user), nil)
		if status != http.StatusOK || got["match_id"] != id || got["question_text"] != room["question_text"] {
			t.Errorf("GET room as %s: %d %v", p.user, status, got)
		}
	}
	resp, err := http.Get(h.url + "/match/" + id)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "room.js") {
		t.Errorf("GET /match/{id}: %d, want the room page", resp.StatusCode)
	}
	if n := h.queueSize(); n != 0 {
		t.Errorf("queue size after the match = %d, want 0", n)
	}
	alice.quiet()
	bob.quiet()
}

func TestRoomAccess(t *testing.T) {
	h := start(t)
	alice, bob := h.player("alice"), h.player("bob")
	alice.join()
	bob.join()
	id := alice.matched()["match_id"].(string)

	tests := []struct {
		name   string
		path   string
		token  string
		status int
		code   string
	}{
		{"no_token", "/api/matches/" + id, "", 401, "unauthorized"},
		{"bad_token", "/api/matches/" + id, "not-a-token", 401, "unauthorized"},
		{"other_player", "/api/matches/" + id, h.login("mallory"), 403, "forbidden"},
		{"unknown_id", "/api/matches/AAAAAAAAAAAAAAAAAAAAAA", h.login("alice"), 404, "not_found"},
		{"malformed_id", "/api/matches/x%20y", h.login("alice"), 404, "not_found"},
		{"unknown_endpoint", "/api/nothing", "", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.do("GET", tt.path, tt.token, nil)
			if status != tt.status {
				t.Errorf("status = %d, want %d (%v)", status, tt.status, body)
			}
			e, _ := body["error"].(map[string]any)
			if e == nil || e["code"] != tt.code || e["message"] == "" {
				t.Errorf("body = %v, want error code %q with a message", body, tt.code)
			}
		})
	}
}

func TestDuplicateJoinsKeepOneTicketAndOneMatch(t *testing.T) {
	h := start(t)
	token := h.login("alice")
	a1, a2 := h.dial(token), h.dial(token)
	a1.user, a2.user = "alice", "alice"
	for range 3 {
		a1.join()
		a1.expect("queued")
		a2.join()
		a2.expect("queued")
	}
	if n := h.queueSize(); n != 1 {
		t.Fatalf("queue size = %d after six joins of alice, want 1", n)
	}
	bob := h.player("bob")
	bob.join()
	bob.expect("queued")
	id := bob.expect("match_found")["match_id"]
	for _, c := range []*client{a1, a2} {
		if m := c.expect("match_found"); m["match_id"] != id {
			t.Errorf("alice socket got %v, want match %v", m, id)
		}
		c.quiet() // exactly one match_found per socket
	}
	// A join or leave after the match is answered with the match again.
	a1.join()
	if m := a1.expect("match_found"); m["match_id"] != id {
		t.Errorf("join after match: got %v, want match %v", m, id)
	}
	a2.leave()
	if m := a2.expect("match_found"); m["match_id"] != id {
		t.Errorf("leave after match: got %v, want match %v, never left_queue", m, id)
	}
	if n := h.queueSize(); n != 0 {
		t.Errorf("queue size = %d, want 0", n)
	}
}

func TestLeave(t *testing.T) {
	h := start(t)
	alice := h.player("alice")
	alice.leave()
	alice.expect("left_queue") // safe when not queued
	alice.join()
	alice.expect("queued")
	alice.leave()
	alice.expect("left_queue")
	if n := h.queueSize(); n != 0 {
		t.Fatalf("queue size = %d after leave, want 0", n)
	}
	bob := h.player("bob")
	bob.join()
	if q := bob.expect("queued"); q["queue_size"] != 1.0 {
		t.Errorf("bob queued = %v, want queue_size 1 (alice left)", q)
	}
	bob.quiet()
	alice.quiet()
}

func TestDisconnectRemovesTicket(t *testing.T) {
	h := start(t)
	token := h.login("alice")
	joined, idle := h.dial(token), h.dial(token)
	joined.join()
	joined.expect("queued")

	// Closing a socket that did not join leaves the ticket alone.
	idle.ws.Close(websocket.StatusNormalClosure, "")
	joined.quiet()
	if n := h.queueSize(); n != 1 {
		t.Fatalf("queue size = %d after an idle socket closed, want 1", n)
	}
	joined.ws.CloseNow()
	matchdtest.Eventually(t, 5*time.Second, func() bool { return h.queueSize() == 0 }, "ticket of a disconnected player still queued")

	// Nobody is matched with the player who walked away.
	bob := h.player("bob")
	bob.join()
	bob.expect("queued")
	bob.quiet()
}

func TestMatchFoundOnConnect(t *testing.T) {
	h := start(t)
	alice, bob := h.player("alice"), h.player("bob")
	alice.join()
	bob.join()
	id := alice.matched()["match_id"]
	alice.ws.CloseNow()

	again := h.dial(h.login("alice"))
	if m := again.expect("match_found"); m["match_id"] != id || m["partner_id"] != "bob" {
		t.Errorf("new socket got %v, want match_found %v at once", m, id)
	}
}

func TestRoomFailureRequeuesAtOriginalPosition(t *testing.T) {
	h := start(t)
	h.rooms.Failing.Store(true)
	ps := []*client{h.player("p1"), h.player("p2"), h.player("p3")}
	for _, p := range ps {
		p.join()
		p.expect("queued")
	}
	before := h.rooms.Attempts.Load()
	matchdtest.Eventually(t, 5*time.Second, func() bool { return h.rooms.Attempts.Load() >= before+2 }, "no retry")
	for _, p := range ps {
		p.quiet() // nobody was told of the failed match
	}
	if n := h.queueSize(); n != 3 {
		t.Fatalf("queue size = %d, want 3", n)
	}

	h.rooms.Failing.Store(false)
	m1, m2 := ps[0].expect("match_found"), ps[1].expect("match_found")
	if m1["match_id"] != m2["match_id"] || m1["partner_id"] != "p2" {
		t.Fatalf("p1 got %v, p2 got %v: want p1 and p2 matched together", m1, m2)
	}
	ps[2].quiet()
	p4 := h.player("p4")
	p4.join()
	p4.expect("queued")
	if m := p4.expect("match_found"); m["partner_id"] != "p3" {
		t.Errorf("p4 matched with %v, want p3", m["partner_id"])
	}
}

// TestManyConcurrentPlayers has hundreds of players join at once, some
// leaving and some dropping their sockets, and checks that each is matched
// at most once, that every match is symmetric, and that a player told
// left_queue is never matched.
func TestManyConcurrentPlayers(t *testing.T) {
	h := start(t)
	const n = 300
	type outcome struct {
		matchID, partner string
		left, dropped    bool
	}
	results := make([]outcome, n)
	clients := make([]*client, n)
	for i := range n {
		clients[i] = h.player(fmt.Sprintf("u%03d", i))
	}
	var wg sync.WaitGroup
	var finished atomic.Int64
	done := make([]atomic.Bool, n) // done[i]: client i's goroutine has ended
	for i, c := range clients {
		wg.Go(func() {
			defer finished.Add(1)
			defer done[i].Store(true)
			r := rand.New(rand.NewPCG(uint64(i), 42))
			c.join()
			switch r.IntN(10) {
			case 0: // drops the socket
				c.ws.CloseNow()
				results[i].dropped = true
				return
			case 1: // leaves at once
				c.leave()
			}
			for {
				m := c.read()
				switch m["type"] {
				case "queued":
				case "left_queue":
					results[i].left = true
					return
				case "match_found":
					results[i].matchID, results[i].partner = m["match_id"].(string), m["partner_id"].(string)
					return
				default:
					t.Errorf("u%03d: unexpected %v", i, m)
					return
				}
			}
		})
	}
	// Once the dust settles at most one player can still wait alone; let
	// them leave so that every goroutine ends.
	matchdtest.Eventually(t, 10*time.Second, func() bool {
		return finished.Load() >= n-1 && h.queueSize() <= 1
	}, "players still waiting: %d finished, queue size %d", finished.Load(), h.queueSize())
	for i, c := range clients {
		if !done[i].Load() { // results are read only after wg.Wait
			c.leave()
		}
	}
	wg.Wait()

	for i, r := range results {
		if r.left {
			if room, _ := h.backend.Assignment(t.Context(), fmt.Sprintf("u%03d", i)); room != nil {
				t.Errorf("u%03d was told left_queue but is matched in %s", i, room.MatchID)
			}
		}
	}
	byMatch := map[string][]string{}
	for i, r := range results {
		me := fmt.Sprintf("u%03d", i)
		if r.matchID != "" {
			byMatch[r.matchID] = append(byMatch[r.matchID], me)
			other := results[idx(r.partner)]
			if other.matchID != r.matchID && !other.dropped {
				t.Errorf("%s matched %s in %s, but %s has %q", me, r.partner, r.matchID, r.partner, other.matchID)
			}
		}
	}
	for id, ps := range byMatch {
		if len(ps) > 2 {
			t.Errorf("match %s has %d players: %v", id, len(ps), ps)
		}
	}
	// Dropped players are either matched (their partner saw them) or out
	// of the queue; nobody is left behind in it.
	matchdtest.Eventually(t, 5*time.Second, func() bool { return h.queueSize() == 0 }, "queue not empty at the end")
	if len(byMatch) < n/4 {
		t.Errorf("only %d matches among %d players", len(byMatch), n)
	}
	t.Logf("%d matches among %d players", len(byMatch), n)
}

func idx(user string) int {
	var i int
	fmt.Sscanf(user, "u%03d", &i)
	return i
}

// TestDrain: when the server stops, /readyz turns 503, every client is
// told to reconnect and closed with 1012, tickets stay in place for the
// instance they reconnect to, and new sockets are refused.
func TestDrain(t *testing.T) {
	h := start(t)
	if status, body := h.do("GET", "/readyz", "", nil); status != http.StatusOK || body["status"] != "ready" {
		t.Fatalf("readyz before draining: %d %v", status, body)
	}
	alice := h.player("alice")
	alice.join()
	alice.expect("queued")
	token := h.login("bob")

	h.stopRun()
	alice.expect("reconnect")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := alice.ws.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusServiceRestart {
		t.Errorf("close status = %v (%v), want 1012", got, err)
	}
	if status, body := h.do("GET", "/readyz", "", nil); status != http.StatusServiceUnavailable || body["status"] != "draining" {
		t.Errorf("readyz while draining: %d %v, want 503 draining", status, body)
	}
	if n, _ := h.backend.QueueSize(t.Context()); n != 1 {
		t.Errorf("queue size after the drain = %d, want 1: alice's ticket stays for her reconnect", n)
	}
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/ws?token="+token, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("socket while draining: err %v, response %v; want 503", err, resp)
	}
}

// TestDeadPeerIsDropped: a client that stops answering (here: stops
// reading, so it never answers the server's pings, as a vanished laptop
// would) is closed after the ping timeout and its ticket released, while
// others are unaffected.
func TestDeadPeerIsDropped(t *testing.T) {
	h := start(t, withoutMessageLimit, func(c *web.Config) { c.PingInterval, c.PingTimeout = 100*time.Millisecond, 300*time.Millisecond })
	ghost := h.player("ghost")
	ghost.join()
	ghost.expect("queued") // and then never reads again
	matchdtest.Eventually(t, 5*time.Second, func() bool { return h.queueSize() == 0 }, "the dead peer's ticket is still queued")
	// A client that reads answers the pings and stays. (It is created
	// only now: a client that does not read in between is a dead peer
	// too, at these short settings.)
	live := h.player("live")
	live.join()
	if q := live.expect("queued"); q["queue_size"] != 1.0 {
		t.Errorf("live joined a queue of %v, want 1: the dead peer must not be matched", q["queue_size"])
	}
	// Over many ping intervals a client that keeps reading stays, and its
	// ticket with it: pings go on after the first, and pongs count.
	for start := time.Now(); time.Since(start) < time.Second; {
		live.quiet()
	}
	if n := h.queueSize(); n != 1 {
		t.Errorf("queue size = %d after 10 ping intervals, want 1: a live client was dropped", n)
	}
}
