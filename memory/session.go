package memory

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/matchd/matchd"
)

// historyCap is how many past sessions a player's history keeps.
const historyCap = 50

// Sessions is the embedded matchd.SessionStore: sessions, timers, ratings,
// feedback and histories of one process. One mutex guards it all, so each
// operation is atomic. Create it with NewSessions; Close ends its
// subscriptions.
type Sessions struct {
	eventBuffer int

	mu        sync.Mutex
	sessions  map[string]*storedSession
	history   map[string][]matchd.HistoryEntry // newest first
	cooldowns map[string]time.Time
	ratings   map[string]float64
	feedback  map[string][]matchd.Feedback
	subs      map[*roomSubscriber]struct{}
	closed    bool
}

type storedSession struct {
	s         matchd.Session
	claimedTo time.Time // Due skips it until then
}

type roomSubscriber struct {
	ch   chan matchd.RoomEvent
	stop func() bool
}

var _ matchd.SessionStore = (*Sessions)(nil)

// NewSessions returns an empty store. eventBuffer is each subscriber's
// channel capacity (default 1024); a subscriber that falls further behind
// is dropped.
func NewSessions(eventBuffer int) *Sessions {
	if eventBuffer <= 0 {
		eventBuffer = 1024
	}
	return &Sessions{
		eventBuffer: eventBuffer,
		sessions:    make(map[string]*storedSession),
		history:     make(map[string][]matchd.HistoryEntry),
		cooldowns:   make(map[string]time.Time),
		ratings:     make(map[string]float64),
		feedback:    make(map[string][]matchd.Feedback),
		subs:        make(map[*roomSubscriber]struct{}),
	}
}

// Open implements matchd.SessionStore.
func (m *Sessions) Open(_ context.Context, s matchd.Session) (matchd.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.sessions[s.MatchID]; ok {
		return st.s, nil
	}
	m.sessions[s.MatchID] = &storedSession{s: s}
	return s, nil
}

// Session implements matchd.SessionStore.
func (m *Sessions) Session(_ context.Context, matchID string) (matchd.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.sessions[matchID]
	if !ok {
		return matchd.Session{}, matchd.Errorf(matchd.ENotFound, "no such session")
	}
	return st.s, nil
}

// Commit implements matchd.SessionStore.
func (m *Sessions) Commit(_ context.Context, c matchd.Commit) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.sessions[c.Session.MatchID]
	if !ok || st.s.Version != c.Session.Version-1 {
		return false, nil
	}
	if c.Delete {
		delete(m.sessions, c.Session.MatchID)
		delete(m.feedback, c.Session.MatchID) // the Redis store keeps it 30 days; here memory is the limit
	} else {
		m.sessions[c.Session.MatchID] = &storedSession{s: c.Session}
	}
	for _, h := range c.History {
		player := c.Session.Partner(h.PartnerID)
		list := append([]matchd.HistoryEntry{h}, m.history[player]...)
		m.history[player] = list[:min(len(list), historyCap)]
	}
	if c.Cooldown.Player != "" {
		m.cooldowns[c.Cooldown.Player] = c.Cooldown.Until
	}
	for _, ev := range c.Events {
		m.publishLocked(ev)
	}
	return true, nil
}

// Due implements matchd.SessionStore.
func (m *Sessions) Due(_ context.Context, now time.Time, limit int, claim time.Duration) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var due []*storedSession
	for _, st := range m.sessions {
		if !now.Before(st.s.Due()) && !now.Before(st.claimedTo) {
			due = append(due, st)
		}
	}
	slices.SortFunc(due, func(a, b *storedSession) int { return a.s.Due().Compare(b.s.Due()) })
	ids := make([]string, 0, min(limit, len(due)))
	for _, st := range due[:min(limit, len(due))] {
		st.claimedTo = now.Add(claim)
		ids = append(ids, st.s.MatchID)
	}
	return ids, nil
}

// Publish implements matchd.SessionStore.
func (m *Sessions) Publish(_ context.Context, ev matchd.RoomEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.publishLocked(ev)
	return nil
}

func (m *Sessions) publishLocked(ev matchd.RoomEvent) {
	for s := range m.subs {
		select {
		case s.ch <- ev:
		default:
			// Dropped, not waited for: it resubscribes and resyncs.
			s.stop()
			m.dropLocked(s)
		}
	}
}

// Subscribe implements matchd.SessionStore.
func (m *Sessions) Subscribe(ctx context.Context) (<-chan matchd.RoomEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	s := &roomSubscriber{ch: make(chan matchd.RoomEvent, m.eventBuffer)}
	m.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.dropLocked(s)
	})
	return s.ch, nil
}

func (m *Sessions) dropLocked(s *roomSubscriber) {
	if _, ok := m.subs[s]; ok {
		delete(m.subs, s)
		close(s.ch)
	}
}

// Close ends every subscription.
func (m *Sessions) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for s := range m.subs {
		s.stop()
		m.dropLocked(s)
	}
	return nil
}

// History implements matchd.SessionStore.
func (m *Sessions) History(_ context.Context, player string, limit int) ([]matchd.HistoryEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.history[player]
	return slices.Clone(h[:min(limit, len(h))]), nil
}

// Cooldown implements matchd.SessionStore.
func (m *Sessions) Cooldown(_ context.Context, player string, now time.Time) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.cooldowns[player]
	if !ok {
		return 0, nil
	}
	if !now.Before(until) {
		delete(m.cooldowns, player)
		return 0, nil
	}
	return until.Sub(now), nil
}

// Rating implements matchd.Ratings.
func (m *Sessions) Rating(_ context.Context, player string) (float64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.ratings[player]
	return r, ok, nil
}

// AddFeedback implements matchd.SessionStore.
func (m *Sessions) AddFeedback(_ context.Context, fb matchd.Feedback, old *float64, rating float64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.feedback[fb.MatchID] {
		if f.From == fb.From {
			return false, errFeedbackGiven
		}
	}
	cur, ok := m.ratings[fb.To]
	if ok != (old != nil) || ok && cur != *old {
		return false, nil
	}
	m.feedback[fb.MatchID] = append(m.feedback[fb.MatchID], fb)
	m.ratings[fb.To] = rating
	return true, nil
}

var errFeedbackGiven = matchd.Errorf(matchd.EConflict, "you have already given feedback on this session")

// Feedback implements matchd.SessionStore.
func (m *Sessions) Feedback(_ context.Context, matchID string) ([]matchd.Feedback, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.feedback[matchID])
	slices.SortFunc(out, func(a, b matchd.Feedback) int { return cmp.Compare(a.From, b.From) })
	return out, nil
}
