// Package memory is matchd's embedded backend: the queue, rooms and
// assignments of one process, in memory. It needs nothing installed, so
// `go run ./cmd/matchd` works on a bare machine; instances that must share
// a queue use the Redis backend instead.
//
// Waiting tickets live in a matchd.Pool, indexed for the matching policy:
// a join finds its best partner without scanning the queue, and a sweep
// looks again at the tickets whose rules have widened or whose no-rematch
// ban has ended. A join checks a bounded number of tickets per rating
// band; when that search was cut short and found nobody, the next sweep
// searches for the ticket without the bound, so that after a sweep no two
// waiting players fit each other.
//
// Concurrency: one mutex guards all state. Every operation, including the
// matching that a join triggers and the room it creates, runs inside it, so
// each is atomic: no ticket is matched twice, a leave and a match never
// both win, and a failed room creation commits nothing.
package memory

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/matchd/matchd"
)

// Config configures a Backend. Rooms is required; the rest have defaults.
type Config struct {
	Rooms    matchd.RoomMaker // creates the room of each pair
	Policy   *matchd.Policy   // who may be paired; default matchd.DefaultPolicy()
	Clock    matchd.Clock     // default: the system clock
	Observer matchd.Observer  // default: none
	Logger   *slog.Logger     // default: discard

	// RoomTTL is how long a room, and with it its players' assignments,
	// is kept after creation. Default 2 h.
	RoomTTL time.Duration

	// After a failed room creation the pair stays queued and matching is
	// retried after RetryMin, doubling up to RetryMax. Defaults 100 ms
	// and 5 s.
	RetryMin, RetryMax time.Duration

	// EventBuffer is each subscriber's channel capacity; a subscriber that
	// falls this far behind is dropped (its channel closed) rather than
	// allowed to stall matching. Default 1024.
	EventBuffer int

	// SweepEvery is how often the backend sweeps: it matches the tickets
	// whose rules have widened since. Default 250 ms, a small delay next
	// to the policy's 5 s steps; tests on a fake clock call Sweep.
	SweepEvery time.Duration

	// PerBand bounds the tickets a search checks in one rating band
	// (matchd.Pool.PerBand); default 8. Tests set it low to make the
	// sweep's unbounded searches do the work.
	PerBand int
}

// Backend is the embedded Matchmaker. Create it with New; Close it to stop
// its retry timer and end its subscriptions.
type Backend struct {
	cfg Config

	policy matchd.Policy
	stop   chan struct{} // closed by Close: ends the sweeper
	done   chan struct{} // closed when the sweeper has returned

	mu          sync.Mutex
	pool        *matchd.Pool
	seq         uint64
	rooms       map[string]*storedRoom
	expiry      []*storedRoom     // rooms in creation order, for expiry
	assignments map[string]string // player -> match id
	history     history
	// deep holds, oldest first, the tickets whose bounded search was cut
	// and found nobody: the next sweep searches for them without the
	// bound. inDeep holds the seq of each player's ticket in deep, to
	// queue each ticket once.
	deep    []deepItem
	inDeep  map[string]uint64
	subs    map[*subscriber]struct{}
	retry   *time.Timer
	backoff time.Duration
	closed  bool
}

type storedRoom struct {
	room    matchd.Room
	tickets [2]matchd.Ticket // the tickets the players were matched by, for Requeue
	expires time.Time
}

type deepItem struct {
	player string
	seq    uint64
}

type subscriber struct {
	ch   chan matchd.Event
	stop func() bool // unregisters the context callback
}

var _ matchd.Matchmaker = (*Backend)(nil)

// New returns a Backend.
func New(cfg Config) *Backend {
	if cfg.Clock == nil {
		cfg.Clock = matchd.SystemClock{}
	}
	if cfg.Observer == nil {
		cfg.Observer = matchd.NopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RoomTTL <= 0 {
		cfg.RoomTTL = 2 * time.Hour
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(5*time.Second, cfg.RetryMin)
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 1024
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = 250 * time.Millisecond
	}
	policy := matchd.DefaultPolicy()
	if cfg.Policy != nil {
		policy = *cfg.Policy
	}
	b := &Backend{
		cfg:         cfg,
		policy:      policy,
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		pool:        matchd.NewPool(policy),
		rooms:       make(map[string]*storedRoom),
		assignments: make(map[string]string),
		history:     newHistory(policy),
		inDeep:      make(map[string]uint64),
		subs:        make(map[*subscriber]struct{}),
	}
	if cfg.PerBand > 0 {
		b.pool.PerBand = cfg.PerBand
	}
	go b.sweeper()
	return b
}

// Join implements matchd.Matchmaker.
func (b *Backend) Join(ctx context.Context, t matchd.Ticket) (matchd.JoinResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return matchd.JoinResult{}, errClosed
	}
	now := b.cfg.Clock.Now()
	b.expireLocked(now)
	if r := b.assignmentLocked(t.PlayerID); r != nil {
		return matchd.JoinResult{Room: r, QueueSize: b.pool.Len()}, nil
	}
	if b.pool.SetOwner(t.PlayerID, t.Owner) {
		return matchd.JoinResult{QueueSize: b.pool.Len()}, nil
	}
	b.seq++
	t.Seq, t.JoinedAt, t.Seen = b.seq, now, nil
	b.pool.Add(t, now)
	b.matchLocked(ctx, []matchd.Ticket{t})
	return matchd.JoinResult{Room: b.assignmentLocked(t.PlayerID), Added: true, QueueSize: b.pool.Len()}, nil
}

// Leave implements matchd.Matchmaker.
func (b *Backend) Leave(_ context.Context, player string) (matchd.LeaveResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return matchd.LeaveResult{}, errClosed
	}
	if r := b.assignmentLocked(player); r != nil {
		return matchd.LeaveResult{Room: r}, nil
	}
	return matchd.LeaveResult{Removed: b.pool.Remove(player)}, nil
}

// Drop implements matchd.Matchmaker.
func (b *Backend) Drop(_ context.Context, player, owner string) (matchd.LeaveResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return matchd.LeaveResult{}, errClosed
	}
	if r := b.assignmentLocked(player); r != nil {
		return matchd.LeaveResult{Room: r}, nil
	}
	if t, ok := b.pool.Get(player); !ok || t.Owner != owner {
		return matchd.LeaveResult{}, nil
	}
	return matchd.LeaveResult{Removed: b.pool.Remove(player)}, nil
}

// QueueSize implements matchd.Matchmaker.
func (b *Backend) QueueSize(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pool.Len(), nil
}

// Room implements matchd.Matchmaker.
func (b *Backend) Room(_ context.Context, matchID string) (matchd.Room, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.rooms[matchID]
	if !ok || !b.cfg.Clock.Now().Before(s.expires) {
		return matchd.Room{}, matchd.Errorf(matchd.ENotFound, "no such match")
	}
	return s.room, nil
}

// PoolSize implements matchd.Matchmaker.
func (b *Backend) PoolSize(_ context.Context, p matchd.Preferences) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pool.Count(p), nil
}

// Requeue implements matchd.Matchmaker.
func (b *Backend) Requeue(ctx context.Context, matchID, player, owner string, boost int) (matchd.JoinResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return matchd.JoinResult{}, errClosed
	}
	now := b.cfg.Clock.Now()
	b.expireLocked(now)
	s, ok := b.rooms[matchID]
	if !ok || !s.room.Has(player) {
		return matchd.JoinResult{}, matchd.Errorf(matchd.ENotFound, "no such match")
	}
	if b.assignments[player] != matchID {
		return matchd.JoinResult{Room: b.assignmentLocked(player), QueueSize: b.pool.Len()}, nil
	}
	delete(b.assignments, player)
	t := s.tickets[0]
	if t.PlayerID != player {
		t = s.tickets[1]
	}
	t.Priority += boost
	t.Owner, t.Seen = owner, nil
	if !b.pool.Add(t, now) { // cannot happen: a matched player holds no ticket
		return matchd.JoinResult{QueueSize: b.pool.Len()}, nil
	}
	b.matchLocked(ctx, []matchd.Ticket{t})
	return matchd.JoinResult{Room: b.assignmentLocked(player), Added: true, QueueSize: b.pool.Len()}, nil
}

// Release implements matchd.Matchmaker.
func (b *Backend) Release(_ context.Context, matchID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked(b.cfg.Clock.Now())
	s, ok := b.rooms[matchID]
	if !ok {
		return matchd.Errorf(matchd.ENotFound, "no such match")
	}
	for _, p := range s.room.Players() {
		if b.assignments[p] == matchID {
			delete(b.assignments, p)
		}
	}
	return nil
}

// Assignment implements matchd.Matchmaker.
func (b *Backend) Assignment(_ context.Context, player string) (*matchd.Room, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.assignmentLocked(player), nil
}

// ActiveRooms implements matchd.Inspector.
func (b *Backend) ActiveRooms(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked(b.cfg.Clock.Now())
	return len(b.expiry), nil
}

// Assignments implements matchd.Matchmaker.
func (b *Backend) Assignments(_ context.Context, players []string) ([]*matchd.Room, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rooms := make([]*matchd.Room, len(players))
	for i, p := range players {
		rooms[i] = b.assignmentLocked(p)
	}
	return rooms, nil
}

// Waiting implements matchd.Inspector.
func (b *Backend) Waiting(_ context.Context, limit int) ([]matchd.Ticket, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.pool.Tickets()
	return all[:min(limit, len(all))], nil
}

// Subscribe implements matchd.Matchmaker.
func (b *Backend) Subscribe(ctx context.Context) (<-chan matchd.Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	s := &subscriber{ch: make(chan matchd.Event, b.cfg.EventBuffer)}
	b.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.dropLocked(s)
	})
	return s.ch, nil
}

// Ping implements matchd.Matchmaker.
func (b *Backend) Ping(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	return nil
}

// Close stops matching and closes every subscription.
func (b *Backend) Close() error {
	b.mu.Lock()
	if !b.closed {
		close(b.stop)
	}
	b.closed = true
	if b.retry != nil {
		b.retry.Stop()
		b.retry = nil
	}
	for s := range b.subs {
		s.stop()
		b.dropLocked(s)
	}
	b.mu.Unlock()
	<-b.done // the sweeper takes the lock: wait for it outside
	return nil
}

var errClosed = matchd.Errorf(matchd.EUnavailable, "matchmaker is shutting down")

// matchLocked finds a partner for each of tickets in turn (those still
// waiting), the best one the policy allows, and commits each match. When a
// room cannot be made it stops: both players keep their tickets, and a
// retry later goes over the whole pool, oldest ticket first, so the
// original order holds.
func (b *Backend) matchLocked(ctx context.Context, tickets []matchd.Ticket) {
	now := b.cfg.Clock.Now()
	recent := b.history.recentFunc(now)
	for _, t := range tickets {
		t, ok := b.pool.Get(t.PlayerID)
		if !ok {
			continue // matched earlier in this pass, or gone
		}
		partner, ok, cut := b.pool.Partner(&t, now, recent)
		if !ok {
			if cut && b.inDeep[t.PlayerID] != t.Seq {
				b.inDeep[t.PlayerID] = t.Seq
				b.deep = append(b.deep, deepItem{t.PlayerID, t.Seq})
			}
			continue
		}
		if !b.pairLocked(ctx, t, partner, now) {
			return
		}
	}
}

// deepBudget bounds the tickets checked by one sweep's unbounded searches
// (about 5 ms of work) after its first, which always runs to the end, so
// that every sweep completes at least one. A search the budget cuts stays
// first in line for the next sweep.
const deepBudget = 100_000

// matchDeepLocked searches, without the per-band bound, for the tickets
// in b.deep, oldest first, and commits the matches it finds.
func (b *Backend) matchDeepLocked(ctx context.Context, now time.Time) {
	recent := b.history.recentFunc(now)
	budget, first := deepBudget, true
	for len(b.deep) > 0 {
		d := b.deep[0]
		t, ok := b.pool.Get(d.player)
		if !ok || t.Seq != d.seq {
			b.popDeepLocked()
			continue // matched or gone since
		}
		searchBudget := &budget
		if first {
			unlimited := math.MaxInt
			searchBudget, first = &unlimited, false
		} else if budget <= 0 {
			return
		}
		partner, found, cut := b.pool.PartnerExhaustive(&t, now, recent, searchBudget)
		if cut {
			return // out of budget: this ticket is searched first next time
		}
		b.popDeepLocked()
		if found && !b.pairLocked(ctx, t, partner, now) {
			return
		}
	}
}

func (b *Backend) popDeepLocked() {
	if d := b.deep[0]; b.inDeep[d.player] == d.seq {
		delete(b.inDeep, d.player) // not if a newer ticket of the player is queued behind
	}
	b.deep[0] = deepItem{}
	b.deep = b.deep[1:]
}

// pairLocked makes the room of t and partner and commits their match. It
// reports false when the room could not be made: both players keep their
// places, and a retry is scheduled.
func (b *Backend) pairLocked(ctx context.Context, t, partner matchd.Ticket, now time.Time) bool {
	// The older ticket is player1, as in the FIFO design.
	p1, p2 := t, partner
	if p2.Seq < p1.Seq {
		p1, p2 = p2, p1
	}
	p1.Seen, p2.Seen = b.history.seen(p1.PlayerID, now), b.history.seen(p2.PlayerID, now)
	room, err := b.cfg.Rooms.MakeRoom(ctx, p1, p2)
	if err != nil {
		// Nothing was removed, so both players keep their places.
		b.cfg.Observer.RoomFailed(err)
		b.cfg.Logger.Warn("room creation failed; pair stays queued", "err", err)
		b.scheduleRetryLocked()
		return false
	}
	b.backoff = 0
	p1.Seen, p2.Seen = nil, nil
	b.commitLocked(room, p1, p2)
	return true
}

// Sweep implements matchd.Sweeper: it matches the tickets whose rules
// have widened by now, oldest first, and those of players whose
// no-rematch ban with someone ended; then it searches without the bound
// for the tickets whose bounded search was cut.
func (b *Backend) Sweep(ctx context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errClosed
	}
	now := b.cfg.Clock.Now()
	b.expireLocked(now)
	due := b.pool.Due(now)
	for _, p := range b.history.bansEnded(now) {
		if t, ok := b.pool.Get(p); ok {
			due = append(due, t)
		}
	}
	b.history.expire(now)
	if len(due) == 0 && len(b.deep) == 0 {
		return 0, nil
	}
	before := len(b.expiry)
	b.matchLocked(ctx, due)
	b.matchDeepLocked(ctx, now)
	return len(b.expiry) - before, nil
}

// sweeper runs Sweep every SweepEvery until Close.
func (b *Backend) sweeper() {
	defer close(b.done)
	tick := time.NewTicker(b.cfg.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
			b.Sweep(context.Background()) // fails only once closed
		}
	}
}

// commitLocked records the match of p1 and p2 in room and announces it.
func (b *Backend) commitLocked(room matchd.Room, p1, p2 matchd.Ticket) {
	now := b.cfg.Clock.Now()
	b.pool.Remove(p1.PlayerID)
	b.pool.Remove(p2.PlayerID)
	b.history.record(room, now)
	s := &storedRoom{room: room, tickets: [2]matchd.Ticket{p1, p2}, expires: now.Add(b.cfg.RoomTTL)}
	b.rooms[room.MatchID] = s
	b.expiry = append(b.expiry, s)
	b.assignments[p1.PlayerID] = room.MatchID
	b.assignments[p2.PlayerID] = room.MatchID
	b.cfg.Observer.Matched(room, [2]time.Duration{p1.Waited(now), p2.Waited(now)})
	ev := matchd.NewEvent(room)
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			// A subscriber this far behind is dropped, not waited for; it
			// resubscribes and re-reads assignments.
			b.cfg.Logger.Warn("dropping slow match-event subscriber")
			s.stop()
			b.dropLocked(s)
		}
	}
}

// scheduleRetryLocked arranges another matching pass after the current
// backoff, unless one is already scheduled.
func (b *Backend) scheduleRetryLocked() {
	if b.retry != nil || b.closed {
		return
	}
	b.backoff = min(max(2*b.backoff, b.cfg.RetryMin), b.cfg.RetryMax)
	b.retry = time.AfterFunc(b.backoff, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.retry = nil
		if !b.closed {
			b.matchLocked(context.Background(), b.pool.Tickets())
		}
	})
}

func (b *Backend) dropLocked(s *subscriber) {
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

func (b *Backend) assignmentLocked(player string) *matchd.Room {
	id, ok := b.assignments[player]
	if !ok {
		return nil
	}
	s := b.rooms[id]
	if !b.cfg.Clock.Now().Before(s.expires) {
		return nil
	}
	r := s.room
	return &r
}

// expireLocked forgets rooms whose TTL has passed, with their assignments.
// Rooms expire in creation order because the TTL is fixed, so the oldest
// are at the front of b.expiry.
func (b *Backend) expireLocked(now time.Time) {
	n := 0
	for n < len(b.expiry) && !now.Before(b.expiry[n].expires) {
		r := b.expiry[n].room
		b.expiry[n] = nil
		delete(b.rooms, r.MatchID)
		for _, p := range r.Players() {
			if b.assignments[p] == r.MatchID {
				delete(b.assignments, p)
			}
		}
		n++
	}
	// Reslicing is O(1); append reallocates once the array is full and
	// then copies only the live rooms.
	b.expiry = b.expiry[n:]
}
