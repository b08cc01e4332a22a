package matchdtest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/matchd/matchd"
)

// SessionStoreFactory returns, for one test, a function that makes
// instances of one fresh, empty store: each call is another matchd
// instance on the same shared state (for the embedded store, the same
// object). It registers its own cleanup.
type SessionStoreFactory func(t *testing.T) func() matchd.SessionStore

// RunSessionStore runs the conformance suite of session stores: the store
// operations, and the room lifecycle on top of them with a fake clock and
// a fake matchmaker.
func RunSessionStore(t *testing.T, factory SessionStoreFactory) {
	tests := []struct {
		name string
		run  func(t *testing.T, instance func() matchd.SessionStore)
	}{
		{"open_is_idempotent", testOpenIdempotent},
		{"commit_compares_versions", testCommitVersions},
		{"due_claims_sessions", testDueClaims},
		{"events_reach_subscribers", testRoomEvents},
		{"history_newest_first", testHistory},
		{"feedback_once_with_rating", testStoreFeedback},
		{"lifecycle/both_ready", testBothReady},
		{"lifecycle/one_no_show", testNoShow},
		{"lifecycle/neither_ready", testNeitherReady},
		{"lifecycle/leave_mid_session", testLeaveMidSession},
		{"lifecycle/warnings_and_end", testWarningsAndEnd},
		{"lifecycle/no_ready_window", testNoReadyWindow},
		{"lifecycle/feedback_once_players_only", testFeedback},
		{"lifecycle/cleanup_once_with_several_instances", testCleanupOnce},
		{"lifecycle/tick_takes_more_than_a_batch", testTickBatches},
		{"lifecycle/settling_is_retried", testSettleRetried},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, factory(t)) })
	}
}

// FakeSettler records the lifecycle's Requeue and Release calls.
type FakeSettler struct {
	mu       sync.Mutex
	Requeued []string // "matchID/player/owner/boost"
	Released []string // match ids
	// Fail, while set, makes both calls fail as an unreachable backend
	// would.
	Fail bool
}

var errSettlerDown = matchd.Errorf(matchd.EUnavailable, "matchmaker down")

// SetFail switches failing on or off.
func (f *FakeSettler) SetFail(fail bool) {
	f.mu.Lock()
	f.Fail = fail
	f.mu.Unlock()
}

// Requeue implements matchd.Settler.
func (f *FakeSettler) Requeue(_ context.Context, matchID, player, owner string, boost int) (matchd.JoinResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail {
		return matchd.JoinResult{}, errSettlerDown
	}
	f.Requeued = append(f.Requeued, fmt.Sprintf("%s/%s/%s/%d", matchID, player, owner, boost))
	return matchd.JoinResult{Added: true}, nil
}

// Release implements matchd.Settler.
func (f *FakeSettler) Release(_ context.Context, matchID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail {
		return errSettlerDown
	}
	f.Released = append(f.Released, matchID)
	return nil
}

// Calls returns copies of what was recorded.
func (f *FakeSettler) Calls() (requeued, released []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.Requeued), slices.Clone(f.Released)
}

// EventLog collects room events from a subscription.
type EventLog struct {
	mu     sync.Mutex
	events []matchd.RoomEvent
}

// Collect subscribes to store and records its events until the test ends.
func Collect(t *testing.T, store matchd.SessionStore) *EventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := store.Subscribe(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Subscribe: %v", err)
	}
	log := &EventLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			log.mu.Lock()
			log.events = append(log.events, ev)
			log.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return log
}

// Events returns the events recorded so far, as "type>to" plus the
// reason or seconds left when set.
func (l *EventLog) Events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.events {
		s := ev.Type + ">" + ev.To
		if ev.Reason != "" {
			s += ":" + ev.Reason
		}
		if ev.SecondsLeft != 0 {
			s += fmt.Sprintf(":%d", ev.SecondsLeft)
		}
		if ev.Text != "" {
			s += ":" + ev.Text
		}
		out = append(out, s)
	}
	return out
}

// Want waits until the log holds exactly want (in any order).
func (l *EventLog) Want(t *testing.T, want ...string) {
	t.Helper()
	slices.Sort(want)
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = l.Events()
		slices.Sort(got)
		if slices.Equal(got, want) || len(got) > len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("room events (-want +got):\n%s", diff)
	}
}

// sessionRoom is a room of alice and bob with a 15-minute question.
func sessionRoom() matchd.Room {
	return matchd.Room{MatchID: matchd.NewMatchID(), Player1: "alice", Player2: "bob", Status: matchd.StatusActive,
		QuestionID: "q-1", QuestionText: "Why?", DurationMinutes: 15}
}

func newLifecycle(store matchd.SessionStore, mm matchd.Settler, clock *Clock) *matchd.Lifecycle {
	return newObservedLifecycle(store, mm, clock, nil)
}

func newObservedLifecycle(store matchd.SessionStore, mm matchd.Settler, clock *Clock, o matchd.SessionObserver) *matchd.Lifecycle {
	return matchd.NewLifecycle(store, mm, matchd.LifecycleConfig{
		SessionConfig: matchd.SessionConfig{ReadyTimeout: 30 * time.Second, RoomTTL: time.Hour},
		Cooldown:      2 * time.Minute,
		Boost:         10,
		Clock:         clock,
		Observer:      o,
	})
}

// sessionCounts is a SessionObserver that counts what it hears.
type sessionCounts struct {
	mu      sync.Mutex
	started int
	ended   map[string]int // by reason
}

func (c *sessionCounts) SessionStarted(matchd.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started++
}

func (c *sessionCounts) SessionEnded(s matchd.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended == nil {
		c.ended = map[string]int{}
	}
	c.ended[s.Reason]++
}

func mustSession(t *testing.T, store matchd.SessionStore, id string) matchd.Session {
	t.Helper()
	s, err := store.Session(ctxFor(t), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	return s
}

func tick(t *testing.T, l *matchd.Lifecycle) int {
	t.Helper()
	n, err := l.Tick(ctxFor(t))
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	return n
}

func testOpenIdempotent(t *testing.T, instance func() matchd.SessionStore) {
	store, clock := instance(), NewClock()
	room := sessionRoom()
	first := matchd.NewSession(room, matchd.SessionConfig{ReadyTimeout: time.Minute, RoomTTL: time.Hour}, clock.Now())
	got, err := store.Open(ctxFor(t), first)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	again, err := instance().Open(ctxFor(t), matchd.NewSession(room, matchd.SessionConfig{RoomTTL: time.Hour}, clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("second Open returned another session (-first +second):\n%s", diff)
	}
	if _, err := store.Session(ctxFor(t), "no-such-session-0000"); matchd.ErrorCode(err) != matchd.ENotFound {
		t.Errorf("Session of an unknown id: err = %v, want not_found", err)
	}
}

func testCommitVersions(t *testing.T, instance func() matchd.SessionStore) {
	store, clock := instance(), NewClock()
	s, _ := store.Open(ctxFor(t), matchd.NewSession(sessionRoom(), matchd.SessionConfig{ReadyTimeout: time.Minute, RoomTTL: time.Hour}, clock.Now()))
	a, _, _, _ := s.Apply(matchd.Step{Kind: matchd.StepReady, Player: "alice"}, clock.Now())
	b, _, _, _ := s.Apply(matchd.Step{Kind: matchd.StepReady, Player: "bob"}, clock.Now())
	if ok, err := store.Commit(ctxFor(t), matchd.Commit{Session: a}); !ok || err != nil {
		t.Fatalf("first commit = %v, %v; want committed", ok, err)
	}
	if ok, err := instance().Commit(ctxFor(t), matchd.Commit{Session: b}); ok || err != nil {
		t.Fatalf("commit from a stale version = %v, %v; want refused", ok, err)
	}
	if diff := cmp.Diff(a, mustSession(t, store, s.MatchID)); diff != "" {
		t.Errorf("stored session (-want +got):\n%s", diff)
	}
}

func testDueClaims(t *testing.T, instance func() matchd.SessionStore) {
	store, clock := instance(), NewClock()
	cfg := matchd.SessionConfig{ReadyTimeout: 30 * time.Second, RoomTTL: time.Hour}
	early, _ := store.Open(ctxFor(t), matchd.NewSession(sessionRoom(), cfg, clock.Now()))
	clock.Advance(10 * time.Second)
	late, _ := store.Open(ctxFor(t), matchd.NewSession(sessionRoom(), cfg, clock.Now()))
	due := func(store matchd.SessionStore) []string {
		t.Helper()
		ids, err := store.Due(ctxFor(t), clock.Now(), 10, time.Minute)
		if err != nil {
			t.Fatalf("Due: %v", err)
		}
		return ids
	}
	if ids := due(store); len(ids) != 0 {
		t.Fatalf("Due before any deadline = %v, want none", ids)
	}
	clock.Advance(20 * time.Second) // early's window closed, late's not
	if ids := due(store); !slices.Equal(ids, []string{early.MatchID}) {
		t.Fatalf("Due = %v, want only %s", ids, early.MatchID)
	}
	if ids := due(instance()); len(ids) != 0 {
		t.Fatalf("Due while claimed = %v, want none", ids)
	}
	clock.Advance(20 * time.Second)
	if ids := due(store); !slices.Equal(ids, []string{late.MatchID}) {
		t.Fatalf("Due = %v, want only %s (early is still claimed)", ids, late.MatchID)
	}
	clock.Advance(time.Minute) // the claims lapse
	if ids := due(store); len(ids) != 2 {
		t.Fatalf("Due after the claims lapsed = %v, want both", ids)
	}
	// A commit reschedules: the ended session is due soon (to settle).
	clock.Advance(2 * time.Minute)
	next, _, _, _ := mustSession(t, store, early.MatchID).Apply(matchd.Step{Kind: matchd.StepTick}, clock.Now())
	if ok, err := store.Commit(ctxFor(t), matchd.Commit{Session: next}); !ok || err != nil {
		t.Fatalf("commit = %v, %v", ok, err)
	}
	if ids := due(store); slices.Contains(ids, early.MatchID) {
		t.Fatalf("Due right after the commit = %v, want %s not yet (SettleRetry)", ids, early.MatchID)
	}
	clock.Advance(matchd.SettleRetry)
	if ids := due(store); !slices.Contains(ids, early.MatchID) {
		t.Fatalf("Due after the commit = %v, want %s among them", ids, early.MatchID)
	}
	// A deleted session is never due again.
	gone := mustSession(t, store, early.MatchID)
	gone.Version++
	if ok, err := store.Commit(ctxFor(t), matchd.Commit{Session: gone, Delete: true}); !ok || err != nil {
		t.Fatalf("delete = %v, %v", ok, err)
	}
	clock.Advance(2 * time.Hour)
	if ids := due(store); slices.Contains(ids, early.MatchID) {
		t.Fatalf("Due = %v after %s was deleted", ids, early.MatchID)
	}
	if _, err := store.Session(ctxFor(t), early.MatchID); matchd.ErrorCode(err) != matchd.ENotFound {
		t.Errorf("Session after delete: err = %v, want not_found", err)
	}
}

func testRoomEvents(t *testing.T, instance func() matchd.SessionStore) {
	store, other := instance(), instance()
	log := Collect(t, store)
	ev := matchd.RoomEvent{Type: matchd.RoomChat, MatchID: "m", To: "bob", From: "alice", Text: "hi <b>\"there\""}
	if err := other.Publish(ctxFor(t), ev); err != nil {
		t.Fatal(err)
	}
	log.Want(t, `chat>bob:hi <b>"there"`)
	log.mu.Lock()
	got := log.events[0]
	log.mu.Unlock()
	if diff := cmp.Diff(ev, got); diff != "" {
		t.Errorf("event (-sent +received):\n%s", diff)
	}
	// A refused commit publishes nothing.
	clock := NewClock()
	s, _ := store.Open(ctxFor(t), matchd.NewSession(sessionRoom(), matchd.SessionConfig{RoomTTL: time.Hour}, clock.Now()))
	stale := s
	stale.Version += 5
	if ok, _ := store.Commit(ctxFor(t), matchd.Commit{Session: stale, Events: []matchd.RoomEvent{{Type: matchd.RoomTimeUp, MatchID: s.MatchID, To: "alice"}}}); ok {
		t.Fatal("a commit from a wrong version was accepted")
	}
	other.Publish(ctxFor(t), matchd.RoomEvent{Type: matchd.RoomPartnerOnline, MatchID: s.MatchID, To: "alice"})
	log.Want(t, `chat>bob:hi <b>"there"`, "partner_connected>alice")
}

func testHistory(t *testing.T, instance func() matchd.SessionStore) {
	store, clock := instance(), NewClock()
	l := newLifecycle(store, &FakeSettler{}, clock)
	var ids []string
	for range 3 {
		room := sessionRoom()
		ids = append(ids, room.MatchID)
		if _, err := l.Leave(ctxFor(t), room, "alice"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	h, err := store.History(ctxFor(t), "bob", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].MatchID != ids[2] || h[1].MatchID != ids[1] {
		t.Fatalf("bob's history = %+v, want the last two, newest first", h)
	}
	if h[0].PartnerID != "alice" || h[0].Status != matchd.StatusAbandoned || h[0].Reason != matchd.EndLeft {
		t.Errorf("history entry = %+v, want abandoned by alice leaving", h[0])
	}
	if h, _ := store.History(ctxFor(t), "carol", 10); len(h) != 0 {
		t.Errorf("history of a stranger = %+v, want none", h)
	}
}

func testStoreFeedback(t *testing.T, instance func() matchd.SessionStore) {
	store := instance()
	fb := matchd.Feedback{MatchID: "m1", From: "alice", To: "bob", Stars: 4, Notes: "clear", At: NewClock().Now()}
	if ok, err := store.AddFeedback(ctxFor(t), fb, nil, 1510); !ok || err != nil {
		t.Fatalf("AddFeedback = %v, %v", ok, err)
	}
	if r, ok, _ := store.Rating(ctxFor(t), "bob"); !ok || r != 1510 {
		t.Fatalf("bob's rating = %v, %v; want 1510", r, ok)
	}
	if _, err := instance().AddFeedback(ctxFor(t), fb, ptr(1510.0), 1520); matchd.ErrorCode(err) != matchd.EConflict {
		t.Fatalf("second feedback: err = %v, want conflict", err)
	}
	other := matchd.Feedback{MatchID: "m2", From: "carol", To: "bob", Stars: 5, At: fb.At}
	if ok, err := store.AddFeedback(ctxFor(t), other, nil, 1600); ok || err != nil {
		t.Fatalf("AddFeedback from a stale rating = %v, %v; want refused", ok, err)
	}
	if r, _, _ := store.Rating(ctxFor(t), "bob"); r != 1510 {
		t.Fatalf("bob's rating = %v after a refused update, want 1510", r)
	}
	got, err := store.Feedback(ctxFor(t), "m1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]matchd.Feedback{fb}, got); diff != "" {
		t.Errorf("feedback (-want +got):\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }

func testBothReady(t *testing.T, instance func() matchd.SessionStore) {
	store, clock, mm := instance(), NewClock(), &FakeSettler{}
	log := Collect(t, store)
	l := newLifecycle(store, mm, clock)
	room := sessionRoom()
	s, err := l.Ready(ctxFor(t), room, "alice", "gw1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != matchd.StatusWaiting || !s.Ready[0] || s.Ready[1] {
		t.Fatalf("after alice's ready: %+v, want waiting with alice ready", s)
	}
	clock.Advance(10 * time.Second)
	// Bob says ready through another instance.
	s, err = newLifecycle(instance(), mm, clock).Ready(ctxFor(t), room, "bob", "gw2")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != matchd.StatusActive || !s.StartedAt.Equal(clock.Now()) || !s.EndsAt.Equal(clock.Now().Add(15*time.Minute)) {
		t.Fatalf("after both ready: %+v, want active from now for 15 minutes", s)
	}
	log.Want(t, "room_state>bob", "room_started>alice", "room_started>bob")
	// A repeated ready changes nothing.
	if again, err := l.Ready(ctxFor(t), room, "alice", "gw1"); err != nil || again.Version != s.Version {
		t.Errorf("repeated ready = %+v, %v; want the same session", again, err)
	}
	if _, err := l.Ready(ctxFor(t), room, "mallory", "gw1"); matchd.ErrorCode(err) != matchd.EForbidden {
		t.Errorf("ready by an outsider: err = %v, want forbidden", err)
	}
	clock.Advance(time.Minute)
	if n := tick(t, l); n != 0 {
		t.Errorf("tick with nothing due changed %d sessions", n)
	}
	log.Want(t, "room_state>bob", "room_started>alice", "room_started>bob")
}

func testNoShow(t *testing.T, instance func() matchd.SessionStore) {
	store, clock, mm := instance(), NewClock(), &FakeSettler{}
	log := Collect(t, store)
	counts := &sessionCounts{}
	l := newObservedLifecycle(store, mm, clock, counts)
	room := sessionRoom()
	if _, err := l.Ready(ctxFor(t), room, "bob", "gw2"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(29 * time.Second)
	tick(t, l)
	if s := mustSession(t, store, room.MatchID); s.Status != matchd.StatusWaiting {
		t.Fatalf("before the window closed: status %s, want waiting", s.Status)
	}
	clock.Advance(time.Second)
	if n := tick(t, l); n != 1 {
		t.Fatalf("tick at the end of the window changed %d sessions, want 1", n)
	}
	s := mustSession(t, store, room.MatchID)
	if s.Status != matchd.StatusAbandoned || s.Reason != matchd.EndNoShow || s.By != "alice" || !s.Settled {
		t.Fatalf("after the window: %+v, want abandoned and settled, alice a no-show", s)
	}
	log.Want(t, "room_state>alice", "requeued>bob:partner_no_show", "match_cancelled>alice:not_ready")
	requeued, released := mm.Calls()
	if want := []string{room.MatchID + "/bob/gw2/10"}; !slices.Equal(requeued, want) {
		t.Errorf("requeued = %v, want %v", requeued, want)
	}
	if !slices.Equal(released, []string{room.MatchID}) {
		t.Errorf("released = %v, want %s", released, room.MatchID)
	}
	if d, _ := store.Cooldown(ctxFor(t), "alice", clock.Now()); d != 2*time.Minute {
		t.Errorf("alice's cooldown = %v, want 2m", d)
	}
	if d, _ := store.Cooldown(ctxFor(t), "bob", clock.Now()); d != 0 {
		t.Errorf("bob's cooldown = %v, want none", d)
	}
	clock.Advance(2 * time.Minute)
	if d, _ := store.Cooldown(ctxFor(t), "alice", clock.Now()); d != 0 {
		t.Errorf("alice's cooldown after 2m = %v, want none", d)
	}
	// Nothing more happens until the cleanup.
	tick(t, l)
	log.Want(t, "room_state>alice", "requeued>bob:partner_no_show", "match_cancelled>alice:not_ready")
	if requeued, _ := mm.Calls(); len(requeued) != 1 {
		t.Errorf("requeued %v: want once", requeued)
	}
	if counts.started != 0 || len(counts.ended) != 1 || counts.ended[matchd.EndNoShow] != 1 {
		t.Errorf("observer heard %d starts and ends %v, want one no_show and no start", counts.started, counts.ended)
	}
}

func testNeitherReady(t *testing.T, instance func() matchd.SessionStore) {
	store, clock, mm := instance(), NewClock(), &FakeSettler{}
	log := Collect(t, store)
	l := newLifecycle(store, mm, clock)
	room := sessionRoom()
	if _, err := l.Open(ctxFor(t), room); err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * time.Second)
	// A ready after the window closed is too late: it ends the session.
	s, err := l.Ready(ctxFor(t), room, "alice", "gw1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != matchd.StatusAbandoned || s.Reason != matchd.EndNotReady {
		t.Fatalf("session = %+v, want abandoned, neither ready", s)
	}
	log.Want(t, "match_cancelled>alice:not_ready", "match_cancelled>bob:not_ready")
	requeued, released := mm.Calls()
	if len(requeued) != 0 || !slices.Equal(released, []string{room.MatchID}) {
		t.Errorf("requeued %v, released %v; want no requeue and the room released", requeued, released)
	}
	for _, p := range []string{"alice", "bob"} {
		if d, _ := store.Cooldown(ctxFor(t), p, clock.Now()); d != 0 {
			t.Errorf("%s's cooldown = %v, want none", p, d)
		}
	}
}

func testLeaveMidSession(t *testing.T, instance func() matchd.SessionStore) {
	store, clock, mm := instance(), NewClock(), &FakeSettler{}
	log := Collect(t, store)
	l := newLifecycle(store, mm, clock)
	room := sessionRoom()
	l.Ready(ctxFor(t), room, "alice", "gw1")
	l.Ready(ctxFor(t), room, "bob", "gw1")
	clock.Advance(5 * time.Minute)
	s, err := l.Leave(ctxFor(t), room, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != matchd.StatusCompleted || s.Reason != matchd.EndLeft || s.By != "bob" || !s.Settled {
		t.Fatalf("after bob left: %+v, want completed by bob leaving, settled", s)
	}
	log.Want(t, "room_state>bob", "room_started>alice", "room_started>bob", "partner_left>alice")
	if _, released := mm.Calls(); !slices.Equal(released, []string{room.MatchID}) {
		t.Errorf("released = %v, want the room", released)
	}
	// The timer of an ended session sends nothing.
	clock.Advance(15 * time.Minute)
	tick(t, l)
	log.Want(t, "room_state>bob", "room_started>alice", "room_started>bob", "partner_left>alice")
	if again, err := l.Leave(ctxFor(t), room, "alice"); err != nil || again.Version != s.Version {
		t.Errorf("leaving an ended session = %+v, %v; want no change", again, err)
	}
}

func testWarningsAndEnd(t *testing.T, instance func() matchd.SessionStore) {
	store, clock, mm := instance(), NewClock(), &FakeSettler{}
	log := Collect(t, store)
	// Two instances tick the same store: each timer fires once, and the
	// observers of both hear of the start and the end once in all.
	counts := &sessionCounts{}
	l1, l2 := newObservedLifecycle(store, mm, clock, counts), newObservedLifecycle(instance(), mm, clock, counts)
	room := sessionRoom()
	l1.Ready(ctxFor(t), room, "alice", "gw1")
	l2.Ready(ctxFor(t), room, "bob", "gw2")
	ticks := func() {
		t.Helper()
		var wg sync.WaitGroup
		for _, l := range []*matchd.Lifecycle{l1, l2, l1, l2} {
			wg.Go(func() {
				if _, err := l.Tick(ctxFor(t)); err != nil {
					t.Errorf("Tick: %v", err)
				}
			})
		}
		wg.Wait()
	}
	started := []string{"room_state>bob", "room_started>alice", "room_started>bob"}
	clock.Advance(10*time.Minute - time.Second)
	ticks()
	log.Want(t, started...)
	clock.Advance(time.Second)
	ticks()
	five := append(slices.Clone(started), "time_warning>alice:300", "time_warning>bob:300")
	log.Want(t, five...)
	clock.Advance(4 * time.Minute)
	ticks()
	one := append(slices.Clone(five), "time_warning>alice:60", "time_warning>bob:60")
	log.Want(t, one...)
	clock.Advance(time.Minute)
	ticks()
	log.Want(t, append(slices.Clone(one), "time_up>alice", "time_up>bob")...)
	s := mustSession(t, store, room.MatchID)
	if s.Status != matchd.StatusCompleted || s.Reason != matchd.EndTimeUp || !s.Settled {
		t.Fatalf("after time up: %+v, want completed and settled", s)
	}
	if _, released := mm.Calls(); len(released) != 1 {
		t.Errorf("released %v, want once", released)
	}
	if counts.started != 1 || len(counts.ended) != 1 || counts.ended[matchd.EndTimeUp] != 1 {
		t.Errorf("observers heard %d starts and ends %v, want 1 start and 1 time_up", counts.started, counts.ended)
	}
	for _, p := range []string{"alice", "bob"} {
		if h, _ := store.History(ctxFor(t), p, 10); len(h) != 1 || h[0].Status != matchd.StatusCompleted {
			t.Errorf("%s's history = %+v, want the completed session", p, h)
		}
	}
}

func testNoReadyWindow(t *testing.T, instance func() matchd.SessionStore) {
	store, clock := instance(), NewClock()
	l := matchd.NewLifecycle(store, &FakeSettler{}, matchd.LifecycleConfig{SessionConfig: matchd.SessionConfig{RoomTTL: time.Hour}, Clock: clock})
	room := sessionRoom()
	room.DurationMinutes = 3 // shorter than the first warning: only the 1-minute one
	s, err := l.Open(ctxFor(t), room)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != matchd.StatusActive || !s.EndsAt.Equal(clock.Now().Add(3*time.Minute)) {
		t.Fatalf("session = %+v, want active at once for 3 minutes", s)
	}
	log := Collect(t, store)
	clock.Advance(2 * time.Minute)
	tick(t, l)
	log.Want(t, "time_warning>alice:60", "time_warning>bob:60")
}

func testFeedback(t *testing.T, instance func() matchd.SessionStore) {
	store, clock := instance(), NewClock()
	l := newLifecycle(store, &FakeSettler{}, clock)
	room := sessionRoom()
	l.Ready(ctxFor(t), room, "alice", "gw1")
	if _, err := l.Feedback(ctxFor(t), room.MatchID, "alice", 5, ""); matchd.ErrorCode(err) != matchd.EInvalid {
		t.Fatalf("feedback before the session: err = %v, want invalid_message", err)
	}
	l.Ready(ctxFor(t), room, "bob", "gw1")
	clock.Advance(15 * time.Minute)
	tick(t, l)

	if _, err := l.Feedback(ctxFor(t), room.MatchID, "mallory", 5, ""); matchd.ErrorCode(err) != matchd.EForbidden {
		t.Errorf("feedback by an outsider: err = %v, want forbidden", err)
	}
	for _, stars := range []int{0, 6} {
		if _, err := l.Feedback(ctxFor(t), room.MatchID, "alice", stars, ""); matchd.ErrorCode(err) != matchd.EInvalid {
			t.Errorf("%d stars: err = %v, want invalid_message", stars, err)
		}
	}
	if _, err := l.Feedback(ctxFor(t), room.MatchID, "alice", 5, "great"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Feedback(ctxFor(t), room.MatchID, "alice", 1, "changed my mind"); matchd.ErrorCode(err) != matchd.EConflict {
		t.Errorf("second feedback: err = %v, want conflict", err)
	}
	bob, ok, _ := store.Rating(ctxFor(t), "bob")
	if want := matchd.Elo(matchd.DefaultRating, matchd.DefaultRating, 5); !ok || math.Abs(bob-want) > 1e-9 {
		t.Errorf("bob's rating = %v, %v; want %v", bob, ok, want)
	}
	if _, ok, _ := store.Rating(ctxFor(t), "alice"); ok {
		t.Error("alice has a rating before bob rated her")
	}
	if _, err := l.Feedback(ctxFor(t), room.MatchID, "bob", 2, ""); err != nil {
		t.Fatal(err)
	}
	alice, _, _ := store.Rating(ctxFor(t), "alice")
	if want := matchd.Elo(matchd.DefaultRating, bob, 2); math.Abs(alice-want) > 1e-9 {
		t.Errorf("alice's rating = %v, want %v (rated 2 by bob at %v)", alice, want, bob)
	}
	if fbs, _ := store.Feedback(ctxFor(t), room.MatchID); len(fbs) != 2 {
		t.Errorf("feedback = %+v, want two", fbs)
	}
}

func testCleanupOnce(t *testing.T, instance func() matchd.SessionStore) {
	clock, mm := NewClock(), &FakeSettler{}
	var mu sync.Mutex
	cleaned := map[string]int{}
	var instances []*matchd.Lifecycle
	for range 3 {
		instances = append(instances, matchd.NewLifecycle(instance(), mm, matchd.LifecycleConfig{
			SessionConfig: matchd.SessionConfig{ReadyTimeout: 30 * time.Second, RoomTTL: time.Hour},
			Clock:         clock,
			OnCleanup: func(s matchd.Session) {
				mu.Lock()
				cleaned[s.MatchID]++
				mu.Unlock()
			},
		}))
	}
	const rooms = 20
	var ids []string
	for i := range rooms {
		room := sessionRoom()
		ids = append(ids, room.MatchID)
		l := instances[i%len(instances)]
		switch i % 3 {
		case 0: // never started
			l.Open(ctxFor(t), room)
		case 1: // completed
			l.Ready(ctxFor(t), room, "alice", "gw")
			l.Ready(ctxFor(t), room, "bob", "gw")
		case 2: // left
			l.Leave(ctxFor(t), room, "alice")
		}
	}
	for range 4 {
		clock.Advance(30 * time.Minute)
		var wg sync.WaitGroup
		for _, l := range instances {
			wg.Go(func() {
				for range 3 {
					if _, err := l.Tick(ctxFor(t)); err != nil {
						t.Errorf("Tick: %v", err)
					}
				}
			})
		}
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if cleaned[id] != 1 {
			t.Errorf("session %s cleaned up %d times, want once", id, cleaned[id])
		}
		if _, err := instances[0].Store().Session(ctxFor(t), id); matchd.ErrorCode(err) != matchd.ENotFound {
			t.Errorf("session %s after cleanup: err = %v, want not_found", id, err)
		}
	}
	_, released := mm.Calls()
	for _, id := range ids {
		if !slices.Contains(released, id) {
			t.Errorf("room %s was never released", id)
		}
	}
}

func testTickBatches(t *testing.T, instance func() matchd.SessionStore) {
	store, clock, mm := instance(), NewClock(), &FakeSettler{}
	l := newLifecycle(store, mm, clock)
	const rooms = 250 // more than one claim batch
	for range rooms {
		if _, err := l.Open(ctxFor(t), sessionRoom()); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	if n := tick(t, l); n != rooms {
		t.Fatalf("one tick ended %d sessions, want all %d", n, rooms)
	}
	if _, released := mm.Calls(); len(released) != rooms {
		t.Errorf("released %d rooms, want %d", len(released), rooms)
	}
}

// testSettleRetried: when the matchmaker cannot be told of a session's
// end, the session stays due and its players are told nothing yet; a
// later tick (here another instance's) settles it and sends the frames,
// once.
func testSettleRetried(t *testing.T, instance func() matchd.SessionStore) {
	store, clock, mm := instance(), NewClock(), &FakeSettler{}
	log := Collect(t, store)
	l1, l2 := newLifecycle(store, mm, clock), newLifecycle(instance(), mm, clock)
	room := sessionRoom()
	l1.Ready(ctxFor(t), room, "bob", "gw2")
	mm.SetFail(true)
	clock.Advance(30 * time.Second)
	if _, err := l1.Tick(ctxFor(t)); matchd.ErrorCode(err) != matchd.EUnavailable {
		t.Fatalf("Tick with the matchmaker down: err = %v, want unavailable", err)
	}
	s := mustSession(t, store, room.MatchID)
	if s.Status != matchd.StatusAbandoned || s.Settled || len(s.Pending) != 2 {
		t.Fatalf("session = %+v, want ended, not settled, two frames pending", s)
	}
	mm.SetFail(false)
	if n := tick(t, l2); n != 0 {
		t.Errorf("a tick within the claim settled %d sessions, want none (claimed)", n)
	}
	clock.Advance(31 * time.Second) // the failed tick's claim lapses
	if n := tick(t, l2); n != 1 {
		t.Fatalf("the retry settled %d sessions, want 1", n)
	}
	log.Want(t, "room_state>alice", "requeued>bob:partner_no_show", "match_cancelled>alice:not_ready")
	if s := mustSession(t, store, room.MatchID); !s.Settled || len(s.Pending) != 0 {
		t.Errorf("session = %+v, want settled, nothing pending", s)
	}
	requeued, released := mm.Calls()
	if len(requeued) != 1 || len(released) != 1 {
		t.Errorf("requeued %v, released %v: want each once", requeued, released)
	}
}
