package web_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/memory"
	"github.com/matchd/matchd/web"
)

// lifecycleOpts are the room lifecycle's settings in these tests.
type lifecycleOpts struct {
	clock        *matchdtest.Clock
	readyTimeout time.Duration
	store        *memory.Sessions // default: a new one
}

// withLifecycle turns the room lifecycle on, on the fake clock, with the
// harness's backend as the matchmaker: a 30 s ready window (unless
// readyTimeout says otherwise), a 2-minute no-show cooldown and a boost
// of 10.
func withLifecycle(o lifecycleOpts) option {
	return func(c *web.Config) {
		store := o.store
		if store == nil {
			store = memory.NewSessions(0)
		}
		c.Lifecycle = matchd.NewLifecycle(store, c.Matchmaker, matchd.LifecycleConfig{
			SessionConfig: matchd.SessionConfig{ReadyTimeout: o.readyTimeout, RoomTTL: 2 * time.Hour},
			Cooldown:      2 * time.Minute,
			Boost:         10,
			Clock:         o.clock,
		})
		c.TickEvery = 5 * time.Millisecond
		c.Ratings = store
	}
}

// roomHarness starts a server with the lifecycle on and returns it with
// its clock.
func roomHarness(t *testing.T, readyTimeout time.Duration) (*harness, *matchdtest.Clock) {
	clock := matchdtest.NewClock()
	return start(t, withLifecycle(lifecycleOpts{clock: clock, readyTimeout: readyTimeout})), clock
}

// expectAll reads len(want) messages and checks that their types are
// want, in any order (frames from the event stream and answers race). It
// returns the messages by type.
func (c *client) expectAll(want ...string) map[string]map[string]any {
	c.t.Helper()
	got := map[string]map[string]any{}
	var types []string
	for range want {
		m := c.read()
		typ, _ := m["type"].(string)
		types = append(types, typ)
		got[typ] = m
	}
	slices.Sort(types)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(types, want) {
		c.t.Fatalf("%s: got messages %v, want %v (last: %v)", c.user, types, want, got)
	}
	return got
}

// pair matches alice and bob and returns their clients and the match id.
func pair(t *testing.T, h *harness) (alice, bob *client, id string) {
	t.Helper()
	alice, bob = h.player("alice"), h.player("bob")
	alice.join()
	alice.expect("queued")
	bob.join()
	mb := bob.matched()
	ma := alice.expect("match_found")
	if ma["match_id"] != mb["match_id"] {
		t.Fatalf("alice and bob got different matches: %v, %v", ma, mb)
	}
	return alice, bob, ma["match_id"].(string)
}

func (c *client) ready(id string) {
	c.send(map[string]string{"type": "ready", "match_id": id})
}

// start both players' session: both ready, both told.
func startSession(t *testing.T, alice, bob *client, id string) {
	t.Helper()
	alice.ready(id)
	if st := alice.expect("room_state"); st["you_ready"] != true || st["partner_ready"] != false || st["status"] != "waiting" {
		t.Fatalf("alice's room_state after ready = %v, want waiting, her ready", st)
	}
	if st := bob.expect("room_state"); st["you_ready"] != false || st["partner_ready"] != true {
		t.Fatalf("bob's room_state after alice's ready = %v, want his partner ready", st)
	}
	bob.ready(id)
	got := bob.expectAll("room_state", "room_started")
	if st := got["room_state"]; st["status"] != "active" || st["you_ready"] != true || st["partner_ready"] != true {
		t.Fatalf("bob's room_state = %v, want active, both ready", st)
	}
	started := alice.expect("room_started")
	if started["match_id"] != id || started["question_text"] == "" || started["ends_at"] == nil {
		t.Fatalf("room_started = %v, want the match, its question and ends_at", started)
	}
}

func TestRoomBothReady(t *testing.T) {
	h, clock := roomHarness(t, 30*time.Second)
	alice, bob, id := pair(t, h)
	status, room := h.do("GET", "/api/matches/"+id, h.login("alice"), nil)
	if status != http.StatusOK || room["status"] != "waiting" {
		t.Fatalf("GET room = %d %v, want status waiting", status, room)
	}
	startSession(t, alice, bob, id)
	if _, room := h.do("GET", "/api/matches/"+id, h.login("alice"), nil); room["status"] != "active" {
		t.Errorf("GET room after both ready: status %v, want active", room["status"])
	}
	// The window passing after the start changes nothing.
	clock.Advance(time.Minute)
	alice.quiet()
	bob.quiet()
	// A repeated ready is answered with the state, nothing else.
	alice.ready(id)
	if st := alice.expect("room_state"); st["status"] != "active" {
		t.Errorf("room_state = %v, want active", st)
	}
	bob.quiet()
}

func TestRoomMatchFoundIsWaiting(t *testing.T) {
	h, _ := roomHarness(t, 30*time.Second)
	pair(t, h)
	// A second socket of alice's gets match_found and room_state at once.
	again := h.player("alice")
	m := again.expect("match_found")
	if room := m["room"].(map[string]any); room["status"] != "waiting" {
		t.Errorf("match_found room status = %v, want waiting", room["status"])
	}
	st := again.expect("room_state")
	if st["status"] != "waiting" || st["seconds_left"] != 30.0 {
		t.Errorf("room_state = %v, want waiting with 30 s left", st)
	}
}

func TestRoomNoShow(t *testing.T) {
	h, clock := roomHarness(t, 30*time.Second)
	alice, bob, id := pair(t, h)
	bob.ready(id)
	bob.expect("room_state")
	alice.expect("room_state") // her partner is ready

	clock.Advance(30 * time.Second)
	if m := bob.expect("requeued"); m["reason"] != "partner_no_show" || m["match_id"] != id {
		t.Errorf("bob got %v, want requeued for partner_no_show", m)
	}
	if m := alice.expect("match_cancelled"); m["reason"] != "not_ready" {
		t.Errorf("alice got %v, want match_cancelled, not_ready", m)
	}
	// Bob is back in the queue at his place, ahead of later joiners, with
	// the boost: carol and dave joined after him and wait (rooms cannot be
	// made meanwhile); when rooms work again, bob is matched first.
	waitingOrder := func() []string {
		ts, _ := h.backend.Waiting(t.Context(), 10)
		var ids []string
		for _, tk := range ts {
			ids = append(ids, tk.PlayerID)
		}
		return ids
	}
	matchdtest.Eventually(t, 5*time.Second, func() bool { return slices.Equal(waitingOrder(), []string{"bob"}) }, "bob is not back in the queue")
	if ts, _ := h.backend.Waiting(t.Context(), 1); ts[0].Seq != 2 || ts[0].Priority != 10 {
		t.Errorf("bob's ticket = %+v, want his original seq 2 and priority 10", ts[0])
	}
	h.rooms.Failing.Store(true)
	carol, dave := h.player("carol"), h.player("dave")
	carol.join()
	carol.expect("queued")
	dave.join()
	dave.expect("queued")
	if got := waitingOrder(); !slices.Equal(got, []string{"bob", "carol", "dave"}) {
		t.Errorf("waiting = %v, want bob ahead of carol and dave", got)
	}
	h.rooms.Failing.Store(false)
	if m := bob.expect("match_found"); m["partner_id"] != "carol" {
		t.Errorf("bob got %v, want a match with carol", m)
	}
	carol.expect("match_found")
	if got := waitingOrder(); !slices.Equal(got, []string{"dave"}) {
		t.Errorf("waiting = %v, want dave alone", got)
	}
	// Alice, the no-show, waits out her cooldown.
	alice.join()
	e := alice.expect("error")
	if e["code"] != "rate_limited" || e["retry_after_seconds"] != 120.0 {
		t.Errorf("alice's join = %v, want rate_limited for 120 s", e)
	}
	clock.Advance(2 * time.Minute)
	alice.join()
	if m := alice.matched(); m["partner_id"] != "dave" {
		t.Errorf("alice's join after the cooldown = %v, want a match with dave", m)
	}
}

func TestRoomNeitherReady(t *testing.T) {
	h, clock := roomHarness(t, 30*time.Second)
	alice, bob, id := pair(t, h)
	clock.Advance(31 * time.Second)
	for _, c := range []*client{alice, bob} {
		if m := c.expect("match_cancelled"); m["reason"] != "not_ready" || m["match_id"] != id {
			t.Errorf("%s got %v, want match_cancelled, not_ready", c.user, m)
		}
	}
	// Both were released: they can queue again (a player still assigned
	// would get the old match_found instead), and neither has a cooldown.
	for _, c := range []*client{alice, bob} {
		c.join()
		c.expect("queued")
	}
}

func TestRoomLeaveFeedbackHistory(t *testing.T) {
	h, clock := roomHarness(t, 30*time.Second)
	alice, bob, id := pair(t, h)
	startSession(t, alice, bob, id)
	clock.Advance(5 * time.Minute)
	alice.send(map[string]string{"type": "leave_room"})
	if st := alice.expect("room_state"); st["status"] != "completed" || st["reason"] != "left" {
		t.Errorf("alice's room_state after leaving = %v, want completed, left", st)
	}
	if m := bob.expect("partner_left"); m["match_id"] != id {
		t.Errorf("bob got %v, want partner_left", m)
	}
	// Both are free to join again.
	matchdtest.Eventually(t, 5*time.Second, func() bool {
		r, _ := h.backend.Assignment(t.Context(), "bob")
		return r == nil
	}, "bob is still assigned to the room")

	aliceToken, bobToken := h.login("alice"), h.login("bob")
	path := "/api/matches/" + id + "/feedback"
	tests := []struct {
		name   string
		token  string
		body   any
		status int
		code   string
	}{
		{"no_token", "", map[string]any{"rating": 4}, http.StatusUnauthorized, "unauthorized"},
		{"outsider", h.login("carol"), map[string]any{"rating": 4}, http.StatusForbidden, "forbidden"},
		{"rating_too_high", aliceToken, map[string]any{"rating": 6}, http.StatusBadRequest, "invalid_message"},
		{"rating_not_integer", aliceToken, map[string]any{"rating": 4.5}, http.StatusBadRequest, "invalid_message"},
		{"rating_missing", aliceToken, map[string]any{"notes": "x"}, http.StatusBadRequest, "invalid_message"},
		{"unknown_field", aliceToken, map[string]any{"rating": 4, "stars": 4}, http.StatusBadRequest, "invalid_message"},
		{"notes_too_long", aliceToken, map[string]any{"rating": 4, "notes": strings.Repeat("x", matchd.MaxNotesLength+1)}, http.StatusBadRequest, "invalid_message"},
		{"alice_rates_bob", aliceToken, map[string]any{"rating": 4, "notes": "clear thinking"}, http.StatusCreated, ""},
		{"alice_again", aliceToken, map[string]any{"rating": 1}, http.StatusConflict, "conflict"},
		{"bob_rates_alice_with_long_notes", bobToken, map[string]any{"rating": 5, "notes": strings.Repeat("😀", matchd.MaxNotesLength)}, http.StatusCreated, ""},
	}
	for _, tt := range tests {
		status, body := h.do("POST", path, tt.token, tt.body)
		if status != tt.status {
			t.Errorf("%s: status %d %v, want %d", tt.name, status, body, tt.status)
			continue
		}
		if tt.code != "" {
			if e, _ := body["error"].(map[string]any); e == nil || e["code"] != tt.code {
				t.Errorf("%s: body %v, want error code %s", tt.name, body, tt.code)
			}
		}
	}
	if status, body := h.do("POST", "/api/matches/nosuchmatch0000000000/feedback", aliceToken, map[string]any{"rating": 3}); status != http.StatusNotFound {
		t.Errorf("feedback on an unknown match: %d %v, want 404", status, body)
	}

	// Bob's rating moved with alice's 4 stars, and his next join uses it.
	bob.join()
	bob.expect("queued")
	waiting, _ := h.backend.Waiting(t.Context(), 10)
	if want := matchd.Elo(matchd.DefaultRating, matchd.DefaultRating, 4); len(waiting) != 1 || waiting[0].Rating != want {
		t.Errorf("bob's ticket = %+v, want his stored rating %v", waiting, want)
	}
	bob.leave()
	bob.expect("left_queue")

	status, body := h.do("GET", "/api/players/me/matches", bobToken, nil)
	matches, _ := body["matches"].([]any)
	if status != http.StatusOK || len(matches) != 1 {
		t.Fatalf("bob's history = %d %v, want one session", status, body)
	}
	entry := matches[0].(map[string]any)
	want := map[string]any{"match_id": id, "partner_id": "alice", "status": "completed", "reason": "left"}
	for k, v := range want {
		if entry[k] != v {
			t.Errorf("history entry %s = %v, want %v (%v)", k, entry[k], v, entry)
		}
	}
	if status, _ := h.do("GET", "/api/players/me/matches?limit=0", bobToken, nil); status != http.StatusBadRequest {
		t.Errorf("limit=0: status %d, want 400", status)
	}
	if status, _ := h.do("GET", "/api/players/me/matches", "", nil); status != http.StatusUnauthorized {
		t.Errorf("history without a token: status %d, want 401", status)
	}
}

func TestRoomTimer(t *testing.T) {
	h, clock := roomHarness(t, 30*time.Second)
	alice, bob, id := pair(t, h)
	startSession(t, alice, bob, id)
	room, _ := h.backend.Room(t.Context(), id)
	d := time.Duration(room.DurationMinutes) * time.Minute
	clock.Advance(d - 5*time.Minute)
	for _, c := range []*client{alice, bob} {
		if m := c.expect("time_warning"); m["seconds_left"] != 300.0 {
			t.Errorf("%s got %v, want a warning at 300 s", c.user, m)
		}
	}
	clock.Advance(4 * time.Minute)
	for _, c := range []*client{alice, bob} {
		if m := c.expect("time_warning"); m["seconds_left"] != 60.0 {
			t.Errorf("%s got %v, want a warning at 60 s", c.user, m)
		}
	}
	clock.Advance(time.Minute)
	for _, c := range []*client{alice, bob} {
		c.expect("time_up")
	}
	matchdtest.Eventually(t, 5*time.Second, func() bool {
		r, _ := h.backend.Assignment(t.Context(), "alice")
		return r == nil
	}, "alice is still assigned after time_up")
	alice.quiet()
	bob.quiet()
}

func TestRoomReconnectRestoresState(t *testing.T) {
	h, clock := roomHarness(t, 30*time.Second)
	alice, bob, id := pair(t, h)
	startSession(t, alice, bob, id)
	clock.Advance(3 * time.Minute)
	alice.ws.CloseNow()
	if m := bob.expect("partner_disconnected"); m["match_id"] != id {
		t.Errorf("bob got %v, want partner_disconnected", m)
	}
	again := h.player("alice")
	if m := again.expect("match_found"); m["room"].(map[string]any)["status"] != "active" {
		t.Errorf("match_found on reconnect = %v, want the room, active", m)
	}
	st := again.expect("room_state")
	room, _ := h.backend.Room(t.Context(), id)
	left := float64(room.DurationMinutes*60 - 180)
	want := map[string]any{"match_id": id, "status": "active", "partner_id": "bob", "you_ready": true, "partner_ready": true, "seconds_left": left, "question_text": room.QuestionText}
	for k, v := range want {
		if diff := cmp.Diff(v, st[k]); diff != "" {
			t.Errorf("room_state %s (-want +got):\n%s", k, diff)
		}
	}
	if m := bob.expect("partner_connected"); m["match_id"] != id {
		t.Errorf("bob got %v, want partner_connected", m)
	}
	// And alice learns that bob is here.
	if m := again.expect("partner_connected"); m["match_id"] != id || len(m) != 2 {
		t.Errorf("alice got %v, want partner_connected with only the match id", m)
	}
	// The session goes on: chat still reaches the partner.
	again.send(map[string]string{"type": "chat", "text": "back"})
	if m := bob.expect("chat"); m["text"] != "back" || m["from"] != "alice" {
		t.Errorf("bob got %v, want alice's chat", m)
	}
}

func TestRoomChat(t *testing.T) {
	h, _ := roomHarness(t, 0)
	alice, bob, id := pair(t, h)
	alice.send(map[string]string{"type": "chat", "match_id": id, "text": "hello <b>bob</b>"})
	if m := bob.expect("chat"); m["text"] != "hello <b>bob</b>" || m["from"] != "alice" || m["match_id"] != id {
		t.Errorf("bob got %v, want alice's message", m)
	}
	tests := []struct {
		name string
		msg  map[string]any
		code string
	}{
		{"too_long", map[string]any{"type": "chat", "text": strings.Repeat("é", web.MaxChatLength+1)}, "invalid_message"},
		{"empty", map[string]any{"type": "chat", "text": "  "}, "invalid_message"},
		{"no_text", map[string]any{"type": "chat"}, "invalid_message"},
		{"text_not_string", map[string]any{"type": "chat", "text": 5}, "invalid_message"},
		{"unknown_field", map[string]any{"type": "chat", "text": "x", "to": "bob"}, "invalid_message"},
		{"other_match", map[string]any{"type": "chat", "match_id": matchd.NewMatchID(), "text": "x"}, "not_found"},
	}
	for _, tt := range tests {
		alice.send(tt.msg)
		if e := alice.expect("error"); e["code"] != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, e, tt.code)
		}
	}
	// Five in a row, then the rate limit.
	for range 4 {
		alice.send(map[string]string{"type": "chat", "text": "x"})
		bob.expect("chat")
	}
	alice.send(map[string]string{"type": "chat", "text": "one too many"})
	if e := alice.expect("error"); e["code"] != "rate_limited" || e["retry_after_seconds"] == nil {
		t.Errorf("sixth chat: %v, want rate_limited with retry_after_seconds", e)
	}
	bob.quiet()
	// An outsider may not chat in the room.
	carol := h.player("carol")
	carol.send(map[string]string{"type": "chat", "match_id": id, "text": "hi"})
	if e := carol.expect("error"); e["code"] != "forbidden" {
		t.Errorf("outsider's chat: %v, want forbidden", e)
	}
	carol.send(map[string]string{"type": "ready"})
	if e := carol.expect("error"); e["code"] != "not_found" {
		t.Errorf("ready without a match: %v, want not_found", e)
	}
}

func TestRoomNoReadyWindow(t *testing.T) {
	h, _ := roomHarness(t, 0)
	_, _, id := pair(t, h)
	again := h.player("alice")
	if m := again.expect("match_found"); m["room"].(map[string]any)["status"] != "active" {
		t.Errorf("match_found = %v, want active at once without a ready window", m)
	}
	if st := again.expect("room_state"); st["status"] != "active" || st["match_id"] != id {
		t.Errorf("room_state = %v, want active", st)
	}
}

func TestRoomLifecycleOff(t *testing.T) {
	h := start(t)
	alice := h.player("alice")
	alice.send(map[string]string{"type": "ready"})
	if e := alice.expect("error"); e["code"] != "invalid_message" || !strings.Contains(e["message"].(string), "off") {
		t.Errorf("ready without a lifecycle: %v, want invalid_message saying it is off", e)
	}
	if status, _ := h.do("GET", "/api/players/me/matches", h.login("alice"), nil); status != http.StatusNotFound {
		t.Errorf("history without a lifecycle: status %d, want 404", status)
	}
}

// Two gateways on one backend and one session store: room events reach
// a player whichever instance their socket is on.
func TestRoomAcrossInstances(t *testing.T) {
	clock := matchdtest.NewClock()
	backend := memory.New(memory.Config{Rooms: matchdtest.NewFlakyRooms(t)})
	store := memory.NewSessions(0)
	authority := auth.New([]byte("harness-secret"), nil)
	var hs []*harness
	for i := range 2 {
		cfg := web.Config{Matchmaker: backend, Auth: authority, DevLogin: true, Instance: []string{"gw1", "gw2"}[i]}
		withLifecycle(lifecycleOpts{clock: clock, readyTimeout: 30 * time.Second, store: store})(&cfg)
		ts, stopRun := serve(cfg)
		t.Cleanup(func() {
			stopRun()
			ts.Close()
		})
		hs = append(hs, &harness{t: t, url: ts.URL, backend: backend})
	}
	t.Cleanup(func() {
		store.Close()
		backend.Close()
	})
	alice, bob := hs[0].player("alice"), hs[1].player("bob")
	alice.join()
	alice.expect("queued")
	bob.join()
	id := bob.matched()["match_id"].(string)
	alice.expect("match_found")
	startSession(t, alice, bob, id)
	bob.send(map[string]string{"type": "chat", "text": "across"})
	if m := alice.expect("chat"); m["text"] != "across" {
		t.Errorf("alice got %v, want bob's chat", m)
	}
	clock.Advance(time.Hour)
	alice.expect("time_up")
	bob.expect("time_up")
	alice.quiet()
	bob.quiet()
}

// A ready player who left before the window closed is not left in the
// queue as a ghost when their partner turns out to be a no-show.
func TestRoomNoShowAfterReadyPlayerLeft(t *testing.T) {
	h, clock := roomHarness(t, 30*time.Second)
	alice, bob, id := pair(t, h)
	bob.ready(id)
	bob.expect("room_state")
	alice.expect("room_state")
	bob.ws.CloseNow()
	alice.expect("partner_disconnected")
	clock.Advance(30 * time.Second)
	alice.expect("match_cancelled")
	matchdtest.Eventually(t, 5*time.Second, func() bool {
		n, _ := h.backend.QueueSize(t.Context())
		r, _ := h.backend.Assignment(t.Context(), "bob")
		s, _ := h.backend.Room(t.Context(), id)
		return n == 0 && r == nil && s.MatchID == id
	}, "bob, gone, is still queued or assigned")
	// Requeued and dropped: a new join queues him afresh.
	again := h.player("bob")
	again.join()
	if q := again.expect("queued"); q["queue_size"] != 1.0 {
		t.Errorf("bob's join = %v, want queued alone", q)
	}
}
