package matchdtest

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/questions"
)

// ModelConfig is what a ModelFactory builds a backend from.
type ModelConfig struct {
	// Rooms never fail: a failed room is retried on a real-time timer
	// whose sweep would race the model's steps (Run and RunPolicy cover
	// failures).
	Rooms matchd.RoomMaker
	// Policy is the policy the model checks matches against.
	Policy matchd.Policy
	// Clock is the backend's clock for the policy. The model moves it; the
	// backend must use it.
	Clock *Clock
	// Observer must be told of every match before the Join or Sweep that
	// made it returns: the model checks it against what Join and
	// Assignment show.
	Observer matchd.Observer
	// Exact asks for bounds under which a join's own search sees every
	// waiting ticket; otherwise the backend is to use the tiniest bounds
	// it supports, so that joins often miss their partner and the sweep
	// must find it.
	Exact bool
}

// ModelBackend is a backend the model drives: a Matchmaker that sweeps
// when told and is closed at the end of each case.
type ModelBackend interface {
	matchd.Matchmaker
	matchd.Sweeper
	Close() error
}

// ModelFactory returns a fresh, empty backend built from cfg, one for each
// case the model runs. It must not sweep or match on a timer of its own
// (the model's sweeps are the only ones), and each call must give a backend
// that shares no state with earlier ones.
type ModelFactory func(t *testing.T, cfg ModelConfig) ModelBackend

// RunModel drives backends with random joins, leaves, releases and the
// passing of time (then a sweep), on a fake clock, and checks them against
// a plain model of who waits: nobody is matched with themselves, twice, or
// while not waiting; every match fits the policy as it stood at that
// moment (the model's own join times, ratings and match history); a join
// is matched only if the model has a partner for it; after every sweep no
// two waiting players fit each other; and the queue size and Leave's
// Removed agree with the model. Matches are seen through Join's result and
// then the Assignment of every player, and each step's matches must be
// exactly those the Observer was told of.
//
// The no-rematch ban is 45 s, longer than the 30 s in which the default
// rules widen fully, and time steps reach 40 s, so that a sweep must notice
// the bans that end. Sweeps come as often with no time passed as after
// some, so that tickets that just joined and missed a partner must already
// be due. Ratings are often exactly 1500, so that tickets share a band and
// block each other's bounded search; few players make a banned pair the
// only one that fits. A match is released at once or by a later step.
//
// It runs twice. In "exact" a join's search sees every waiting ticket, so
// a join is matched with the model's best partner (the policy's fit, then
// priority, then the oldest) and no two waiting players fit after any
// step. In "bounded" a join may miss its partner, and it is the next sweep
// that must leave no fitting pair waiting.
func RunModel(t *testing.T, newBackend ModelFactory) {
	bank, err := questions.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []struct {
		name  string
		exact bool
	}{
		{"exact", true},
		{"bounded", false},
	} {
		t.Run(run.name, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				policy := matchd.DefaultPolicy()
				policy.NoRematch, policy.NoRepeat = 45*time.Second, 45*time.Second
				clock := NewClock()
				log := &matchLog{}
				b := newBackend(t, ModelConfig{
					Rooms:    matchd.QuestionRooms{Bank: bank, Clock: clock},
					Policy:   policy,
					Clock:    clock,
					Observer: log,
					Exact:    run.exact,
				})
				defer b.Close()
				m := &model{t: rt, b: b, policy: policy, clock: clock, log: log, exact: run.exact,
					waiting: map[string]matchd.Ticket{}, assigned: map[string]string{}, met: map[[2]string]time.Time{}}
				m.run()
			})
		})
	}
}

// matchLog is an Observer that records every match as it is made.
type matchLog struct {
	mu    sync.Mutex
	rooms []matchd.Room
}

func (l *matchLog) Matched(r matchd.Room, _ [2]time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rooms = append(l.rooms, r)
}
func (*matchLog) RoomFailed(error)         {}
func (*matchLog) Swept(time.Duration, int) {}

// take returns the matches recorded since the last take.
func (l *matchLog) take() []matchd.Room {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rooms
	l.rooms = nil
	return r
}

// model is one case of RunModel: the backend and what it should hold.
type model struct {
	t      *rapid.T
	b      ModelBackend
	policy matchd.Policy
	clock  *Clock
	log    *matchLog
	exact  bool

	names    []string
	waiting  map[string]matchd.Ticket // the model's queue
	assigned map[string]string        // player -> match id, until released
	met      map[[2]string]time.Time  // pair -> last match
	seq      uint64
}

func (m *model) run() {
	t, ctx := m.t, context.Background()
	// Few players make a banned pair the only one that fits; many make
	// tickets that block a bounded search.
	all := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	m.names = all[:rapid.IntRange(2, len(all)).Draw(t, "players")]
	players := rapid.SampledFrom(m.names)
	for range rapid.IntRange(1, 60).Draw(t, "steps") {
		swept := false
		switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
		case op < 5:
			m.join(ctx, players.Draw(t, "player"))
		case op < 7:
			m.leave(ctx, players.Draw(t, "leaver"))
		case op < 8: // the session ends: release a match
			p := players.Draw(t, "releaser")
			if id, ok := m.assigned[p]; ok {
				m.release(ctx, id)
			}
			m.matches(ctx, "", nil)
		default: // time passes (or not); a sweep matches whom it now allows
			ms := rapid.OneOf(rapid.Just(0), rapid.IntRange(1, 40_000)).Draw(t, "ms")
			m.clock.Advance(time.Duration(ms) * time.Millisecond)
			if _, err := m.b.Sweep(ctx); err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			m.matches(ctx, "", nil)
			swept = true
		}
		if n, err := m.b.QueueSize(ctx); err != nil || n != len(m.waiting) {
			t.Fatalf("QueueSize = %d (%v), the model has %d", n, err, len(m.waiting))
		}
		if m.exact || swept {
			m.noFittingPairWaits()
		}
	}
}

// join joins p with a drawn ticket and checks the result against the
// model: a new ticket only for a player neither waiting nor matched, a
// match only with a partner the model has, and in exact runs with the
// model's best one.
func (m *model) join(ctx context.Context, p string) {
	t := m.t
	tk := matchd.Ticket{
		PlayerID: p,
		// Often 1500, where new players start and bands fill.
		Rating:   float64(rapid.OneOf(rapid.IntRange(1300, 1800), rapid.Just(1500)).Draw(t, "rating")),
		Priority: rapid.IntRange(0, 2).Draw(t, "priority"),
		Prefs: matchd.Preferences{
			Difficulty: rapid.SampledFrom([]string{"", "easy", "hard"}).Draw(t, "difficulty"),
			Language:   rapid.SampledFrom([]string{"", "en", "de"}).Draw(t, "language"),
			Region:     rapid.SampledFrom([]string{"", "eu", "us"}).Draw(t, "region"),
			Topics:     rapid.SliceOfDistinct(rapid.SampledFrom([]string{"algorithms", "behavioral", "databases", "system_design"}), rapid.ID[string]).Draw(t, "topics"),
		},
	}
	_, queued := m.waiting[p]
	id, matched := m.assigned[p]
	res, err := m.b.Join(ctx, tk)
	if err != nil {
		t.Fatalf("Join(%s): %v", p, err)
	}
	if res.Added == (queued || matched) {
		t.Fatalf("Join(%s).Added = %v; the model says queued %v, matched %v", p, res.Added, queued, matched)
	}
	if matched {
		if res.Room == nil || res.Room.MatchID != id {
			t.Fatalf("Join(%s) of a matched player = %+v, want the match %s", p, res.Room, id)
		}
		m.matches(ctx, "", nil)
		return
	}
	if res.Added {
		m.seq++
		tk.Seq, tk.JoinedAt = m.seq, m.clock.Now()
		m.waiting[p] = tk
	}
	m.matches(ctx, p, res.Room)
}

// leave leaves p and checks the result against the model.
func (m *model) leave(ctx context.Context, p string) {
	t := m.t
	res, err := m.b.Leave(ctx, p)
	if err != nil {
		t.Fatalf("Leave(%s): %v", p, err)
	}
	_, queued := m.waiting[p]
	id, matched := m.assigned[p]
	if res.Removed != queued || (res.Room != nil) != matched || matched && res.Room.MatchID != id {
		t.Fatalf("Leave(%s) = %+v; the model says queued %v, match %q", p, res, queued, id)
	}
	delete(m.waiting, p)
	m.matches(ctx, "", nil)
}

// release ends the match id, so that its players may join again.
func (m *model) release(ctx context.Context, id string) {
	if err := m.b.Release(ctx, id); err != nil {
		m.t.Fatalf("Release(%s): %v", id, err)
	}
	for q, mid := range m.assigned {
		if mid == id {
			delete(m.assigned, q)
		}
	}
}

// matches finds the matches the last step made: joined's room (the
// result of a join by joiner, or nil), then those the Assignment of every
// player shows that the model does not know yet. They must be exactly the
// ones the Observer was told of; each is checked against the model and
// then applied to it.
func (m *model) matches(ctx context.Context, joiner string, joined *matchd.Room) {
	t, now := m.t, m.clock.Now()
	found := map[string]matchd.Room{} // match id -> room
	if joined != nil {
		found[joined.MatchID] = *joined
	}
	assignment := map[string]string{} // player -> match id
	for _, p := range m.names {
		room, err := m.b.Assignment(ctx, p)
		if err != nil {
			t.Fatalf("Assignment(%s): %v", p, err)
		}
		id, matched := m.assigned[p]
		switch {
		case matched && (room == nil || room.MatchID != id):
			t.Fatalf("Assignment(%s) = %+v, want the match %s", p, room, id)
		case room == nil:
			if joiner == p && joined != nil {
				t.Fatalf("Join(%s) matched %s, but its Assignment is empty", p, joined.MatchID)
			}
		case !matched:
			assignment[p] = room.MatchID
			found[room.MatchID] = *room
		}
	}
	observed := m.log.take()
	if got, want := sorted(matchIDs(observed)), sorted(slices.Collect(maps.Keys(found))); !slices.Equal(got, want) {
		t.Fatalf("the Observer was told of matches %v; Join and Assignment show %v", got, want)
	}
	var best *matchd.Ticket // the model's best partner for the joiner
	if w, ok := m.waiting[joiner]; ok && joined != nil {
		for _, c := range m.waiting {
			if c.PlayerID == joiner || !m.policy.Fits(&w, &c, now, m.recent(joiner, c.PlayerID)) {
				continue
			}
			if best == nil || c.Priority > best.Priority || c.Priority == best.Priority && c.Seq < best.Seq {
				best = &c
			}
		}
	}
	// Check every match against the model before applying any.
	inMatch := map[string]string{}
	for _, r := range observed {
		a, ok1 := m.waiting[r.Player1]
		c, ok2 := m.waiting[r.Player2]
		if r.Player1 == r.Player2 || !ok1 || !ok2 {
			t.Fatalf("match %s of %s and %s: not two waiting players (waiting: %v)", r.MatchID, r.Player1, r.Player2, slices.Sorted(maps.Keys(m.waiting)))
		}
		for _, p := range []string{r.Player1, r.Player2} {
			if other, twice := inMatch[p]; twice {
				t.Fatalf("%s matched twice: in %s and %s", p, other, r.MatchID)
			}
			inMatch[p] = r.MatchID
			if assignment[p] != r.MatchID {
				t.Fatalf("%s is in match %s, but its Assignment is %q", p, r.MatchID, assignment[p])
			}
		}
		if !m.policy.Fits(&a, &c, now, m.recent(a.PlayerID, c.PlayerID)) {
			t.Fatalf("match of %+v and %+v does not fit the policy at %v", a, c, now)
		}
	}
	if joined != nil {
		partner := joined.Partner(joiner)
		switch {
		case best == nil:
			t.Fatalf("Join(%s) matched %s; the model has no partner", joiner, partner)
		case m.exact && partner != best.PlayerID:
			t.Fatalf("Join(%s) matched %s, but the model's best partner is %+v", joiner, partner, *best)
		}
	}
	for _, r := range observed {
		delete(m.waiting, r.Player1)
		delete(m.waiting, r.Player2)
		m.assigned[r.Player1], m.assigned[r.Player2] = r.MatchID, r.MatchID
		m.met[pairKey(r.Player1, r.Player2)] = now
		if rapid.Bool().Draw(m.t, "release at once") {
			m.release(ctx, r.MatchID)
		}
	}
}

// noFittingPairWaits fails if two waiting players fit each other.
func (m *model) noFittingPairWaits() {
	now := m.clock.Now()
	for _, x := range m.waiting {
		for _, y := range m.waiting {
			if x.PlayerID < y.PlayerID && m.policy.Fits(&x, &y, now, m.recent(x.PlayerID, y.PlayerID)) {
				m.t.Fatalf("%+v and %+v fit each other at %v but both still wait", x, y, now)
			}
		}
	}
}

// recent says whether a and b met within the no-rematch window.
func (m *model) recent(a, b string) bool {
	at, ok := m.met[pairKey(a, b)]
	return ok && m.clock.Now().Sub(at) < m.policy.NoRematch
}

func pairKey(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

func matchIDs(rooms []matchd.Room) []string {
	ids := make([]string, len(rooms))
	for i, r := range rooms {
		ids[i] = r.MatchID
	}
	return ids
}
