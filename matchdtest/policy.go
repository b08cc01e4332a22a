package matchdtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/questions"
)

// PolicyConfig is what a PolicyFactory builds a backend from.
type PolicyConfig struct {
	Rooms  matchd.RoomMaker
	Policy matchd.Policy
	// Clock is the backend's clock for the policy (join times, widening,
	// history). The suite moves it; the backend must use it.
	Clock *Clock
}

// PolicyFactory returns a fresh, empty backend built from cfg that
// implements matchd.Sweeper and retries failed room creations within a
// few tens of milliseconds. It registers its own cleanup.
type PolicyFactory func(t *testing.T, cfg PolicyConfig) matchd.Matchmaker

// RunPolicy runs the policy conformance suite: the default policy's rules
// (must-equal and must-intersect preferences, rating tolerance widening
// with waiting time, region, no rematch, priority then FIFO, questions
// new to both players), PoolSize, Requeue and Release. Time moves only
// when a test advances the fake clock; Sweep then re-evaluates waiting
// tickets, as a backend's own sweeps do.
func RunPolicy(t *testing.T, newBackend PolicyFactory) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *policySetup)
	}{
		{"must_equal_fields_fit_when_both_state_them", testMustEqual},
		{"topics_intersect_and_the_question_is_on_a_shared_topic", testSharedTopic},
		{"rating_tolerance_widens_with_waiting", testRatingWidens},
		{"same_region_first_then_any_after_20s", testRegion},
		{"no_rematch_within_24h", testNoRematch},
		{"a_rematch_ban_ending_is_noticed_by_a_sweep", testBanEnds},
		{"a_fitting_pair_past_the_candidate_bound_is_found_by_a_sweep", testBeyondTheBound},
		{"a_player_who_joins_again_behind_the_bound_is_found_by_a_sweep", testBeyondTheBoundAgain},
		{"priority_first_then_fifo", testPriorityThenFIFO},
		{"question_not_repeated_within_the_window", testNoRepeatQuestion},
		{"pool_size_counts_the_fitting_buckets", testPoolSize},
		{"requeue_restores_the_ticket_ahead_with_boosted_priority", testRequeue},
		{"requeue_is_idempotent", testRequeueIdempotent},
		{"requeue_and_release_of_unknown_matches_are_not_found", testNotFound},
		{"release_lets_players_join_again", testRelease},
		{"concurrent_joins_fit_and_match_once", testPolicyConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newPolicySetup(t, newBackend, matchd.DefaultPolicy()))
		})
	}
}

// policySetup is one backend under test with its fake clock and rooms.
type policySetup struct {
	mm    matchd.Matchmaker
	clock *Clock
	rooms *RecordingRooms
	bank  *matchd.QuestionBank

	newBackend PolicyFactory
	policy     matchd.Policy
}

// fresh returns a new setup like s, for a subtest of its own.
func (s *policySetup) fresh(t *testing.T) *policySetup {
	t.Helper()
	return newPolicySetup(t, s.newBackend, s.policy)
}

func newPolicySetup(t *testing.T, newBackend PolicyFactory, p matchd.Policy) *policySetup {
	t.Helper()
	bank, err := questions.Load()
	if err != nil {
		t.Fatal(err)
	}
	clock := NewClock()
	rooms := &RecordingRooms{Rooms: matchd.QuestionRooms{Bank: bank, Clock: clock}}
	mm := newBackend(t, PolicyConfig{Rooms: rooms, Policy: p, Clock: clock})
	if _, ok := mm.(matchd.Sweeper); !ok {
		t.Fatal("the backend does not implement matchd.Sweeper")
	}
	return &policySetup{mm: mm, clock: clock, rooms: rooms, bank: bank, newBackend: newBackend, policy: p}
}

// RecordingRooms is a RoomMaker that records the tickets of every room it
// makes (so tests can see Ticket.Seen) and fails while Failing is set.
type RecordingRooms struct {
	Rooms   matchd.RoomMaker
	Failing atomic.Bool

	mu    sync.Mutex
	made  map[string][2]matchd.Ticket // match id -> the tickets it was made for
	calls int
}

// MakeRoom implements matchd.RoomMaker.
func (r *RecordingRooms) MakeRoom(ctx context.Context, a, b matchd.Ticket) (matchd.Room, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	if r.Failing.Load() {
		return matchd.Room{}, ErrInjected
	}
	room, err := r.Rooms.MakeRoom(ctx, a, b)
	if err != nil {
		return room, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.made == nil {
		r.made = make(map[string][2]matchd.Ticket)
	}
	r.made[room.MatchID] = [2]matchd.Ticket{a, b}
	return room, nil
}

// Tickets returns the tickets the room matchID was made for.
func (r *RecordingRooms) Tickets(matchID string) ([2]matchd.Ticket, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.made[matchID]
	return p, ok
}

// Calls returns how many rooms were asked for, failed or not.
func (r *RecordingRooms) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func (s *policySetup) join(t *testing.T, player string, p matchd.Preferences) matchd.JoinResult {
	t.Helper()
	return s.joinTicket(t, matchd.Ticket{PlayerID: player, Rating: matchd.DefaultRating, Prefs: p})
}

func (s *policySetup) joinTicket(t *testing.T, tk matchd.Ticket) matchd.JoinResult {
	t.Helper()
	res, err := s.mm.Join(ctxFor(t), tk)
	if err != nil {
		t.Fatalf("Join(%s): %v", tk.PlayerID, err)
	}
	return res
}

// sweep runs one sweep at the fake clock's time.
func (s *policySetup) sweep(t *testing.T) {
	t.Helper()
	if _, err := s.mm.(matchd.Sweeper).Sweep(ctxFor(t)); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
}

// waiting asserts that player waits, unmatched.
func (s *policySetup) waiting(t *testing.T, player, why string) {
	t.Helper()
	if r := assignment(t, s.mm, player); r != nil {
		t.Fatalf("%s matched with %s, want waiting: %s", player, r.Partner(player), why)
	}
}

// matched waits until player is matched and returns the room.
func (s *policySetup) matched(t *testing.T, player string) *matchd.Room {
	t.Helper()
	var r *matchd.Room
	Eventually(t, 5*time.Second, func() bool { r = assignment(t, s.mm, player); return r != nil }, "%s not matched", player)
	return r
}

// wantPartners fails unless res matched a and b.
func wantPartners(t *testing.T, r *matchd.Room, a, b string) {
	t.Helper()
	if r == nil {
		t.Fatalf("no match, want %s with %s", a, b)
	}
	if !r.Has(a) || r.Partner(a) != b {
		t.Fatalf("match of %s and %s, want %s with %s", r.Player1, r.Player2, a, b)
	}
}

func release(t *testing.T, mm matchd.Matchmaker, matchID string) {
	t.Helper()
	if err := mm.Release(ctxFor(t), matchID); err != nil {
		t.Fatalf("Release(%s): %v", matchID, err)
	}
}

func testMustEqual(t *testing.T, setup *policySetup) {
	type prefs = matchd.Preferences
	cases := []struct {
		name string
		a, b prefs
		fit  bool
	}{
		{"same_difficulty", prefs{Difficulty: "easy"}, prefs{Difficulty: "easy"}, true},
		{"different_difficulty", prefs{Difficulty: "easy"}, prefs{Difficulty: "hard"}, false},
		{"difficulty_stated_by_one", prefs{Difficulty: "hard"}, prefs{}, true},
		{"different_duration", prefs{Duration: 30}, prefs{Duration: 60}, false},
		{"duration_stated_by_one", prefs{}, prefs{Duration: 45}, true},
		{"different_language", prefs{Language: "en"}, prefs{Language: "pt-BR"}, false},
		{"same_language", prefs{Language: "en"}, prefs{Language: "en"}, true},
		{"language_stated_by_one", prefs{Language: "en", Difficulty: "easy"}, prefs{Difficulty: "easy"}, true},
		{"disjoint_topics", prefs{Topics: []string{"algorithms"}}, prefs{Topics: []string{"databases"}}, false},
		{"topics_stated_by_one", prefs{Topics: []string{"algorithms"}}, prefs{}, true},
		{"all_stated_and_equal", prefs{Difficulty: "medium", Duration: 30, Language: "en", Topics: []string{"concurrency", "databases"}},
			prefs{Difficulty: "medium", Duration: 30, Language: "en", Topics: []string{"databases"}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := setup.fresh(t)
			s.join(t, "a", c.a)
			res := s.join(t, "b", c.b)
			switch {
			case c.fit && res.Room == nil:
				t.Fatalf("%+v and %+v not matched, want a match", c.a, c.b)
			case !c.fit && res.Room != nil:
				t.Fatalf("%+v and %+v matched, want both waiting", c.a, c.b)
			}
			if c.fit {
				wantPartners(t, res.Room, "a", "b")
				return
			}
			// Waiting does not widen these rules.
			s.clock.Advance(time.Minute)
			s.sweep(t)
			s.waiting(t, "a", "must-equal fields never widen")
		})
	}
}

func testSharedTopic(t *testing.T, s *policySetup) {
	s.join(t, "a", matchd.Preferences{Difficulty: "medium", Topics: []string{"algorithms", "system_design"}})
	s.join(t, "b", matchd.Preferences{Topics: []string{"databases"}})
	res := s.join(t, "c", matchd.Preferences{Topics: []string{"system_design", "behavioral"}})
	wantPartners(t, res.Room, "c", "a")
	if res.Room.Topic != "system_design" || res.Room.Difficulty != "medium" {
		t.Errorf("question on %s at %s, want system_design (the shared topic) at medium (the stated difficulty)", res.Room.Topic, res.Room.Difficulty)
	}
	s.waiting(t, "b", "databases shares no topic with the others")
}

func testRatingWidens(t *testing.T, s *policySetup) {
	// Tolerance 100, +50 every 5 s of the longer wait: 1500 and 1700
	// (200 apart) fit once the older ticket has waited 10 s.
	s.joinTicket(t, matchd.Ticket{PlayerID: "a", Rating: 1500})
	s.clock.Advance(5 * time.Second)
	if res := s.joinTicket(t, matchd.Ticket{PlayerID: "b", Rating: 1700}); res.Room != nil {
		t.Fatalf("matched at once with tolerance 150: %+v", res.Room)
	}
	s.clock.Advance(4*time.Second + 999*time.Millisecond)
	s.sweep(t)
	s.waiting(t, "a", "a has waited 9.999 s: tolerance 150 < 200")
	s.clock.Advance(time.Millisecond)
	s.sweep(t)
	wantPartners(t, s.matched(t, "a"), "a", "b")

	// A partner in tolerance from the start is matched at once.
	s.joinTicket(t, matchd.Ticket{PlayerID: "c", Rating: 1200})
	res := s.joinTicket(t, matchd.Ticket{PlayerID: "d", Rating: 1300})
	wantPartners(t, res.Room, "d", "c")
}

func testRegion(t *testing.T, s *policySetup) {
	s.join(t, "a", matchd.Preferences{Region: "eu-west"})
	if res := s.join(t, "b", matchd.Preferences{Region: "us-east"}); res.Room != nil {
		t.Fatalf("regions differ and nobody waited: matched %+v", res.Room)
	}
	// The same region is preferred while others wait less than 20 s.
	res := s.join(t, "c", matchd.Preferences{Region: "us-east"})
	wantPartners(t, res.Room, "c", "b")
	s.join(t, "d", matchd.Preferences{Region: "ap-south"})
	s.clock.Advance(20*time.Second - time.Millisecond)
	s.sweep(t)
	s.waiting(t, "a", "nobody has waited 20 s")
	s.clock.Advance(time.Millisecond)
	s.sweep(t)
	wantPartners(t, s.matched(t, "a"), "a", "d")
}

// meetAndWaitAgain has a and b matched, their match released, and both
// join again: they wait, for they met within the no-rematch window.
func (s *policySetup) meetAndWaitAgain(t *testing.T) {
	t.Helper()
	s.join(t, "a", matchd.Preferences{})
	first := s.join(t, "b", matchd.Preferences{}).Room
	wantPartners(t, first, "b", "a")
	release(t, s.mm, first.MatchID)
	if res := s.join(t, "a", matchd.Preferences{}); !res.Added || res.Room != nil {
		t.Fatalf("Join(a) after release = %+v, want a new ticket", res)
	}
	if res := s.join(t, "b", matchd.Preferences{}); res.Room != nil {
		t.Fatalf("a and b matched again at once: %+v", res.Room)
	}
}

func testNoRematch(t *testing.T, s *policySetup) {
	s.meetAndWaitAgain(t)
	s.clock.Advance(time.Hour)
	s.sweep(t)
	s.waiting(t, "a", "a and b met an hour ago")
	res := s.join(t, "c", matchd.Preferences{})
	wantPartners(t, res.Room, "c", "a")

	// After the window b may meet a again.
	release(t, s.mm, res.Room.MatchID)
	s.clock.Advance(23 * time.Hour)
	s.join(t, "a", matchd.Preferences{})
	s.sweep(t)
	wantPartners(t, s.matched(t, "b"), "b", "a")
}

// testBanEnds: two players who met wait again, their rules fully widened,
// so nothing in the rules wakes them; when their no-rematch ban ends, a
// sweep pairs them without anybody joining.
func testBanEnds(t *testing.T, s *policySetup) {
	s.meetAndWaitAgain(t)
	s.clock.Advance(30 * time.Second) // tolerance at its widest, region lapsed
	s.sweep(t)
	s.waiting(t, "a", "a and b met 30 s ago")
	s.clock.Advance(s.policy.NoRematch - 30*time.Second - time.Millisecond)
	s.sweep(t)
	s.waiting(t, "a", "the ban has a millisecond to run")
	s.clock.Advance(time.Millisecond)
	s.sweep(t)
	wantPartners(t, s.matched(t, "a"), "a", "b")
}

// blockTheBand has eight players wait at the default rating, each in a
// region of its own: for 20 s they fit nobody, and they fill the first
// eight places of the band.
func (s *policySetup) blockTheBand(t *testing.T) {
	t.Helper()
	for i := range 8 {
		s.join(t, fmt.Sprintf("blocker%d", i), matchd.Preferences{Region: fmt.Sprintf("r%d", i)})
	}
}

// testBeyondTheBound: a join checks a bounded number of tickets per rating
// band (8 by default), so a partner queued behind eight tickets that do
// not fit is not seen by the join; the next sweep must find it. The eight
// are at the same rating, each in a region of its own (the same region is
// preferred for 20 s, which do not pass here).
func testBeyondTheBound(t *testing.T, s *policySetup) {
	s.blockTheBand(t)
	s.join(t, "x", matchd.Preferences{Region: "z"})
	if res := s.join(t, "y", matchd.Preferences{Region: "z"}); res.Room != nil {
		// A backend that checks more than eight finds x at once: fine.
		wantPartners(t, res.Room, "y", "x")
		return
	}
	s.sweep(t)
	wantPartners(t, s.matched(t, "y"), "y", "x")
	for i := range 8 {
		s.waiting(t, fmt.Sprintf("blocker%d", i), "the blockers fit nobody for 20 s")
	}
}

// testBeyondTheBound, with y leaving and joining again before the sweep:
// the sweep must search for y's new ticket, not only remember the old.
func testBeyondTheBoundAgain(t *testing.T, s *policySetup) {
	s.blockTheBand(t)
	s.join(t, "x", matchd.Preferences{Region: "z"})
	for range 2 {
		if res := s.join(t, "y", matchd.Preferences{Region: "z"}); res.Room != nil {
			wantPartners(t, res.Room, "y", "x") // a backend that checks more than eight
			return
		}
		if _, err := s.mm.Leave(ctxFor(t), "y"); err != nil {
			t.Fatalf("Leave(y): %v", err)
		}
	}
	s.join(t, "y", matchd.Preferences{Region: "z"})
	s.sweep(t)
	wantPartners(t, s.matched(t, "y"), "y", "x")
}

func testPriorityThenFIFO(t *testing.T, s *policySetup) {
	// Three waiting players who cannot pair with each other, all of whom
	// fit a fourth who states no difficulty.
	s.joinTicket(t, matchd.Ticket{PlayerID: "easy", Rating: 1500, Prefs: matchd.Preferences{Difficulty: "easy"}})
	s.joinTicket(t, matchd.Ticket{PlayerID: "medium", Rating: 1500, Prefs: matchd.Preferences{Difficulty: "medium"}})
	s.joinTicket(t, matchd.Ticket{PlayerID: "hard", Rating: 1500, Priority: 1, Prefs: matchd.Preferences{Difficulty: "hard"}})
	wantPartners(t, s.join(t, "x", matchd.Preferences{}).Room, "x", "hard") // priority first
	wantPartners(t, s.join(t, "y", matchd.Preferences{}).Room, "y", "easy") // then the oldest
	wantPartners(t, s.join(t, "z", matchd.Preferences{}).Room, "z", "medium")
}

func testNoRepeatQuestion(t *testing.T, s *policySetup) {
	// The bank has exactly three easy concurrency questions: a meets three
	// partners and gets each of them once.
	want := matchd.Preferences{Difficulty: "easy", Topics: []string{"concurrency"}}
	n := 0
	for _, q := range s.bank.Questions() {
		if q.Difficulty == "easy" && q.Topic == "concurrency" {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("the bank has %d easy concurrency questions; the test needs 3", n)
	}
	var had []string
	for i := range 3 {
		partner := fmt.Sprintf("p%d", i)
		s.join(t, "a", want)
		room := s.join(t, partner, want).Room
		wantPartners(t, room, partner, "a")
		tickets, ok := s.rooms.Tickets(room.MatchID)
		if !ok {
			t.Fatalf("room %s was not made by the suite's RoomMaker", room.MatchID)
		}
		seen := tickets[0].Seen
		if tickets[1].PlayerID == "a" {
			seen = tickets[1].Seen
		}
		if slices.Sort(seen); !slices.Equal(seen, sorted(had)) {
			t.Errorf("round %d: a's ticket had Seen %v, want %v", i, seen, sorted(had))
		}
		if slices.Contains(had, room.QuestionID) {
			t.Fatalf("round %d: question %s repeated for a (had %v)", i, room.QuestionID, had)
		}
		had = append(had, room.QuestionID)
		release(t, s.mm, room.MatchID)
		s.clock.Advance(time.Minute)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func testPoolSize(t *testing.T, s *policySetup) {
	s.join(t, "a", matchd.Preferences{Difficulty: "easy", Language: "en"})
	s.join(t, "b", matchd.Preferences{Difficulty: "hard", Language: "en"})
	s.join(t, "c", matchd.Preferences{Difficulty: "easy", Language: "fr", Duration: 30})
	for _, c := range []struct {
		p    matchd.Preferences
		want int
	}{
		{matchd.Preferences{}, 3},
		{matchd.Preferences{Difficulty: "easy"}, 2},
		{matchd.Preferences{Difficulty: "hard"}, 1},
		{matchd.Preferences{Difficulty: "easy", Language: "en"}, 1},
		{matchd.Preferences{Language: "en"}, 2},
		{matchd.Preferences{Duration: 60}, 2},
		{matchd.Preferences{Region: "eu-west", Topics: []string{"databases"}}, 3}, // not must-equal
	} {
		got, err := s.mm.PoolSize(ctxFor(t), c.p)
		if err != nil {
			t.Fatalf("PoolSize(%+v): %v", c.p, err)
		}
		if got != c.want {
			t.Errorf("PoolSize(%+v) = %d, want %d", c.p, got, c.want)
		}
	}
	if n := queueSize(t, s.mm); n != 3 {
		t.Errorf("QueueSize = %d, want 3", n)
	}
}

// matchPair matches a and b (a joins first) and returns their room.
func (s *policySetup) matchPair(t *testing.T, a, b string) *matchd.Room {
	t.Helper()
	s.join(t, a, matchd.Preferences{})
	room := s.join(t, b, matchd.Preferences{}).Room
	wantPartners(t, room, a, b)
	return room
}

func testRequeue(t *testing.T, s *policySetup) {
	ctx := ctxFor(t)
	in, ok := s.mm.(matchd.Inspector)
	if !ok {
		t.Fatal("the backend does not implement matchd.Inspector")
	}
	s.joinTicket(t, matchd.Ticket{PlayerID: "a", Rating: 1500, Priority: 1, Prefs: matchd.Preferences{Language: "en"}})
	s.clock.Advance(time.Second)
	room := s.join(t, "b", matchd.Preferences{}).Room
	wantPartners(t, room, "b", "a")
	before, _ := s.rooms.Tickets(room.MatchID)
	orig := before[0]
	if orig.PlayerID != "a" {
		orig = before[1]
	}

	// c joins after the match; c's language does not fit a's.
	s.clock.Advance(time.Second)
	s.join(t, "c", matchd.Preferences{Language: "de"})
	res, err := s.mm.Requeue(ctx, room.MatchID, "a", "gw-r", 2)
	if err != nil {
		t.Fatalf("Requeue: %v", err)
	}
	if !res.Added || res.Room != nil || res.QueueSize != 2 {
		t.Fatalf("Requeue = %+v, want a ticket, no match, queue size 2", res)
	}
	if r := assignment(t, s.mm, "a"); r != nil {
		t.Fatalf("a is still assigned to %s after Requeue", r.MatchID)
	}
	if r := assignment(t, s.mm, "b"); r == nil || r.MatchID != room.MatchID {
		t.Fatalf("b's assignment = %v, want the match %s kept", r, room.MatchID)
	}
	got, err := in.Waiting(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].PlayerID != "a" || got[1].PlayerID != "c" {
		t.Fatalf("waiting = %+v, want a (requeued, original place) ahead of c", got)
	}
	a := got[0]
	if a.Seq != orig.Seq || !a.JoinedAt.Equal(orig.JoinedAt) || a.Priority != 3 || a.Owner != "gw-r" || a.Prefs.Language != "en" {
		t.Errorf("requeued ticket = %+v, want seq %d, joined %v, priority 1+2, owner gw-r, language en", a, orig.Seq, orig.JoinedAt)
	}

	// A new player who fits both meets a: the higher priority, and
	// the older ticket.
	wantPartners(t, s.join(t, "d", matchd.Preferences{}).Room, "d", "a")
}

func testRequeueIdempotent(t *testing.T, s *policySetup) {
	ctx := ctxFor(t)
	room := s.matchPair(t, "a", "b")
	first, err := s.mm.Requeue(ctx, room.MatchID, "a", "gw", 1)
	if err != nil || !first.Added || first.QueueSize != 1 {
		t.Fatalf("Requeue = %+v, %v; want a ticket, queue size 1", first, err)
	}
	for range 2 {
		again, err := s.mm.Requeue(ctx, room.MatchID, "a", "gw", 1)
		if err != nil {
			t.Fatalf("second Requeue: %v", err)
		}
		if again.Added || again.Room != nil || again.QueueSize != 1 {
			t.Fatalf("second Requeue = %+v, want nothing changed (queue size 1)", again)
		}
	}
	if n := queueSize(t, s.mm); n != 1 {
		t.Errorf("queue size = %d, want 1", n)
	}
	// b requeues too: with a waiting (a rematch within 24 h), b waits.
	if res, err := s.mm.Requeue(ctx, room.MatchID, "b", "gw", 0); err != nil || !res.Added || res.Room != nil {
		t.Fatalf("Requeue(b) = %+v, %v; want a ticket and no rematch with a", res, err)
	}
	// A player matched again since gets that match back.
	res := s.join(t, "c", matchd.Preferences{})
	wantPartners(t, res.Room, "c", "a")
	again, err := s.mm.Requeue(ctx, room.MatchID, "a", "gw", 1)
	if err != nil || again.Room == nil || again.Room.MatchID != res.Room.MatchID {
		t.Fatalf("Requeue after a new match = %+v, %v; want the new match %s", again, err, res.Room.MatchID)
	}
}

func testNotFound(t *testing.T, s *policySetup) {
	ctx := ctxFor(t)
	room := s.matchPair(t, "a", "b")
	for _, c := range []struct{ name, id, player string }{
		{"unknown match", matchd.NewMatchID(), "a"},
		{"player not in the match", room.MatchID, "stranger"},
	} {
		if _, err := s.mm.Requeue(ctx, c.id, c.player, "gw", 1); matchd.ErrorCode(err) != matchd.ENotFound {
			t.Errorf("Requeue, %s: err = %v, want %s", c.name, err, matchd.ENotFound)
		}
	}
	if err := s.mm.Release(ctx, matchd.NewMatchID()); matchd.ErrorCode(err) != matchd.ENotFound {
		t.Errorf("Release(unknown) err = %v, want %s", err, matchd.ENotFound)
	}
	if r := assignment(t, s.mm, "a"); r == nil || r.MatchID != room.MatchID {
		t.Errorf("a's assignment = %v after failed calls, want %s", r, room.MatchID)
	}
}

func testRelease(t *testing.T, s *policySetup) {
	ctx := ctxFor(t)
	room := s.matchPair(t, "a", "b")
	if res := s.join(t, "a", matchd.Preferences{}); res.Room == nil || res.Room.MatchID != room.MatchID {
		t.Fatalf("Join before release = %+v, want the match", res)
	}
	release(t, s.mm, room.MatchID)
	release(t, s.mm, room.MatchID) // idempotent
	for _, p := range []string{"a", "b"} {
		if r := assignment(t, s.mm, p); r != nil {
			t.Errorf("%s still assigned to %s after Release", p, r.MatchID)
		}
	}
	if _, err := s.mm.Room(ctx, room.MatchID); err != nil {
		t.Errorf("Room after Release: %v; the room is kept until its TTL", err)
	}
	if res := s.join(t, "a", matchd.Preferences{}); !res.Added || res.Room != nil {
		t.Errorf("Join after Release = %+v, want a new ticket", res)
	}
	if res, err := s.mm.Requeue(ctx, room.MatchID, "b", "gw", 1); err != nil || res.Added {
		t.Errorf("Requeue after Release = %+v, %v; want nothing changed", res, err)
	}
}

// testPolicyConcurrent has many players join at once with random
// preferences and ratings, and checks that every match fits the policy,
// nobody is matched twice, and that after a sweep no two waiting players
// fit each other.
func testPolicyConcurrent(t *testing.T, s *policySetup) {
	ctx := ctxFor(t)
	events, err := s.mm.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const players = 120
	tickets := make(map[string]matchd.Ticket, players)
	r := rand.New(rand.NewPCG(4, 2))
	pick := func(vals ...string) string { return vals[r.IntN(len(vals))] }
	for i := range players {
		p := matchd.Preferences{
			Difficulty: pick("", "", "easy", "medium", "hard"),
			Language:   pick("", "en", "en", "de"),
			Region:     pick("", "eu-west", "us-east"),
		}
		if r.IntN(3) == 0 {
			p.Duration = 30
		}
		if r.IntN(2) == 0 {
			p.Topics = []string{pick("algorithms", "databases", "behavioral")}
		}
		id := fmt.Sprintf("c%03d", i)
		tickets[id] = matchd.Ticket{PlayerID: id, Rating: float64(1200 + r.IntN(600)), Priority: r.IntN(2), Prefs: p}
	}
	var wg sync.WaitGroup
	for _, tk := range tickets {
		wg.Go(func() {
			if _, err := s.mm.Join(ctx, tk); err != nil {
				t.Errorf("Join(%s): %v", tk.PlayerID, err)
			}
		})
	}
	wg.Wait()
	s.sweep(t)

	policy := matchd.DefaultPolicy()
	now := s.clock.Now()
	fits := func(a, b string) bool {
		ta, tb := tickets[a], tickets[b]
		ta.JoinedAt, tb.JoinedAt = now, now
		return policy.Fits(&ta, &tb, now, false)
	}
	assigned := map[string]string{}
	for p := range tickets {
		if r := assignment(t, s.mm, p); r != nil {
			assigned[p] = r.MatchID
		}
	}
	seen := map[string]string{}
	for n := 0; n*2 < len(assigned); n++ {
		select {
		case ev := <-events:
			for _, p := range ev.Players {
				if old, dup := seen[p]; dup {
					t.Fatalf("%s matched twice: %s and %s", p, old, ev.MatchID)
				}
				seen[p] = ev.MatchID
				if assigned[p] != ev.MatchID {
					t.Fatalf("event of match %s names %s, whose assignment is %q", ev.MatchID, p, assigned[p])
				}
			}
			if !fits(ev.Players[0], ev.Players[1]) {
				t.Errorf("match %s pairs %+v with %+v, which the policy does not allow", ev.MatchID, tickets[ev.Players[0]], tickets[ev.Players[1]])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d match events for %d assigned players", len(seen)/2, len(assigned))
		}
	}
	var waiting []string
	for p := range tickets {
		if _, ok := assigned[p]; !ok {
			waiting = append(waiting, p)
		}
	}
	if n := queueSize(t, s.mm); n != len(waiting) {
		t.Errorf("queue size = %d, want the %d unmatched players", n, len(waiting))
	}
	for i, a := range waiting {
		for _, b := range waiting[i+1:] {
			if fits(a, b) {
				t.Errorf("%+v and %+v both wait but fit each other", tickets[a], tickets[b])
			}
		}
	}
	if len(assigned) < players/4 {
		t.Errorf("only %d of %d players matched", len(assigned), players)
	}
}
