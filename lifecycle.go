package matchd

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SessionStore keeps sessions, their timers, ratings, feedback and the
// players' history, and carries room events between instances. The
// embedded store (package memory) and the Redis store implement it, and
// matchdtest.RunSessionStore holds both to the same behaviour.
type SessionStore interface {
	// Open stores s unless a session with its match id exists, and returns
	// the stored session.
	Open(ctx context.Context, s Session) (Session, error)
	// Session returns a stored session, or an ENotFound error.
	Session(ctx context.Context, matchID string) (Session, error)
	// Commit stores c.Session in place of the version c.Session was
	// computed from (c.Session.Version-1), and in the same atomic step
	// schedules its next Due, publishes c.Events, appends c.History and
	// sets c.Cooldown; with c.Delete it removes the session instead. It
	// reports false, changing nothing, when the stored version differs.
	Commit(ctx context.Context, c Commit) (bool, error)
	// Due returns up to limit sessions whose Due time is at or before now
	// and claims them until now+claim: Due does not return them again in
	// the meantime, unless a commit reschedules them.
	Due(ctx context.Context, now time.Time, limit int, claim time.Duration) ([]string, error)

	// Publish sends an event that needs no state change (chat, presence).
	Publish(ctx context.Context, ev RoomEvent) error
	// Subscribe returns the stream of room events, like
	// Matchmaker.Subscribe: closed when ctx ends or the subscriber falls
	// behind or loses its connection; a subscriber that resubscribes must
	// re-read the sessions of the players it serves.
	Subscribe(ctx context.Context) (<-chan RoomEvent, error)

	// History returns up to limit of player's ended sessions, newest first.
	History(ctx context.Context, player string, limit int) ([]HistoryEntry, error)
	// Cooldown returns how long player may not join, at now.
	Cooldown(ctx context.Context, player string, now time.Time) (time.Duration, error)

	Ratings
	// AddFeedback stores fb, once per player and match, and in the same
	// step sets fb.To's rating to rating, provided their stored rating is
	// still old (nil: none). It fails with EConflict when fb.From already
	// gave feedback on the match, and reports false, changing nothing, when
	// the rating changed meanwhile.
	AddFeedback(ctx context.Context, fb Feedback, old *float64, rating float64) (bool, error)
	// Feedback returns the feedback given on a match.
	Feedback(ctx context.Context, matchID string) ([]Feedback, error)
}

// A Commit is one step of a session, for SessionStore.Commit.
type Commit struct {
	Session Session
	Events  []RoomEvent
	// History holds the entries to add to the players' histories: both
	// players' when the step ended the session.
	History []HistoryEntry
	// Cooldown, when Player is set, bars a no-show from joining until.
	Cooldown Cooldown
	// Delete removes the session (cleanup after its expiry).
	Delete bool
}

// Cooldown bars Player from joining until Until.
type Cooldown struct {
	Player string
	Until  time.Time
}

// Settler is what the lifecycle needs of the matchmaker: Requeue and
// Release as Matchmaker documents them.
type Settler interface {
	Requeue(ctx context.Context, matchID, player, owner string, boost int) (JoinResult, error)
	Release(ctx context.Context, matchID string) error
}

// LifecycleConfig configures a Lifecycle.
type LifecycleConfig struct {
	SessionConfig
	// Cooldown is how long a no-show may not join again. 0: none.
	Cooldown time.Duration
	// Boost is added to the priority of a player requeued after their
	// partner did not show up.
	Boost int
	// Clock: default the system clock.
	Clock Clock
	// OnCleanup, if set, is called once per session removed at its expiry
	// (for tests and metrics).
	OnCleanup func(Session)
	// Observer, if set, hears of each session that starts or ends, once
	// across all instances: from the instance whose step committed it.
	Observer SessionObserver
}

// SessionObserver is told how sessions go, for metrics.
type SessionObserver interface {
	// SessionStarted is called when a session becomes active after its
	// ready check (sessions without one start active when opened, and are
	// not reported).
	SessionStarted(s Session)
	// SessionEnded is called when a session ends (s.Status is completed
	// or abandoned, s.Reason says why).
	SessionEnded(s Session)
}

// Lifecycle runs match sessions: ready checks, no-shows, timers, leaving,
// feedback and ratings. It keeps no state of its own, so every instance
// runs one on the shared store and each step takes effect exactly once:
// a step is computed by Session.Apply and committed only if the session
// did not change meanwhile, otherwise it is computed again.
type Lifecycle struct {
	store SessionStore
	mm    Settler
	cfg   LifecycleConfig
}

// NewLifecycle returns a Lifecycle.
func NewLifecycle(store SessionStore, mm Settler, cfg LifecycleConfig) *Lifecycle {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.RoomTTL <= 0 {
		cfg.RoomTTL = 2 * time.Hour
	}
	return &Lifecycle{store: store, mm: mm, cfg: cfg}
}

// Config returns the lifecycle's configuration.
func (l *Lifecycle) Config() LifecycleConfig { return l.cfg }

// Store returns the session store.
func (l *Lifecycle) Store() SessionStore { return l.store }

// Open returns the session of room, opening it if it has none. Every
// instance that sees a match may call it; the first open wins.
func (l *Lifecycle) Open(ctx context.Context, room Room) (Session, error) {
	return l.store.Open(ctx, NewSession(room, l.cfg.SessionConfig, l.cfg.Clock.Now()))
}

// Ready marks player ready in room, said through instance owner.
func (l *Lifecycle) Ready(ctx context.Context, room Room, player, owner string) (Session, error) {
	if _, err := l.Open(ctx, room); err != nil {
		return Session{}, err
	}
	return l.step(ctx, room.MatchID, Step{Kind: StepReady, Player: player, Owner: owner})
}

// Leave ends room's session for both players, as player left it.
func (l *Lifecycle) Leave(ctx context.Context, room Room, player string) (Session, error) {
	if _, err := l.Open(ctx, room); err != nil {
		return Session{}, err
	}
	return l.step(ctx, room.MatchID, Step{Kind: StepLeave, Player: player})
}

// maxAttempts bounds the compare-and-set retries of one step. Only the
// two players and the timers touch a session, so a few suffice.
const maxAttempts = 20

var errBusy = Errorf(EUnavailable, "the session is busy; try again")

// step applies one step to a session, retrying when another instance
// committed first, and settles the session if the step ended it.
func (l *Lifecycle) step(ctx context.Context, matchID string, st Step) (Session, error) {
	for range maxAttempts {
		s, err := l.store.Session(ctx, matchID)
		if err != nil {
			return Session{}, err
		}
		next, events, changed, err := s.Apply(st, l.cfg.Clock.Now())
		if err != nil || !changed {
			return s, err
		}
		c := Commit{Session: next, Events: events}
		if next.Ended() {
			next.Pending, c.Events = events, nil
			c.Session = next
			for _, p := range next.Players {
				c.History = append(c.History, next.History(p))
			}
			if next.Reason == EndNoShow && l.cfg.Cooldown > 0 {
				c.Cooldown = Cooldown{Player: next.By, Until: next.EndedAt.Add(l.cfg.Cooldown)}
			}
		}
		ok, err := l.store.Commit(ctx, c)
		if err != nil {
			return Session{}, err
		}
		if !ok {
			continue
		}
		if o := l.cfg.Observer; o != nil && next.Status != s.Status {
			switch {
			case next.Ended():
				o.SessionEnded(next)
			case next.Status == StatusActive:
				o.SessionStarted(next)
			}
		}
		if next.Ended() {
			return l.settle(ctx, next)
		}
		return next, nil
	}
	return Session{}, errBusy
}

// settle tells the matchmaker that an ended session is over: the ready
// partner of a no-show goes back to the queue at their place, with the
// boost, and the room is released. Both calls are idempotent, so a settle
// repeated by another instance (after this one died halfway) is harmless.
// The players are told (the pending events) in the commit that marks the
// session settled, so once told they are queued or free to join.
func (l *Lifecycle) settle(ctx context.Context, s Session) (Session, error) {
	if p := s.Requeued(); p != "" {
		owner := s.Owners[s.Index(p)]
		if _, err := l.mm.Requeue(ctx, s.MatchID, p, owner, l.cfg.Boost); err != nil && ErrorCode(err) != ENotFound {
			return s, fmt.Errorf("requeue %s: %w", p, err)
		}
	}
	if err := l.mm.Release(ctx, s.MatchID); err != nil && ErrorCode(err) != ENotFound {
		return s, fmt.Errorf("release: %w", err)
	}
	next := s
	next.Settled, next.Pending = true, nil
	next.Version++
	ok, err := l.store.Commit(ctx, Commit{Session: next, Events: s.Pending})
	if err != nil || !ok {
		// Someone else settled it, or the next Tick will.
		return s, err
	}
	return next, nil
}

// claimFor is how long a due session a Tick took stays hidden from the
// other instances' ticks: if this instance dies with it, another takes it
// over after that.
const claimFor = 30 * time.Second

// Tick applies every deadline that has passed: ready windows, warnings,
// ends, settling, and the cleanup of expired sessions. Every instance
// ticks; the store's claims spread the work, and the version check makes
// each transition happen once. It returns how many sessions it changed.
func (l *Lifecycle) Tick(ctx context.Context) (int, error) {
	now := l.cfg.Clock.Now()
	n := 0
	var errs []error
	// Batches of tickBatch, until the due sessions run out or a tick has
	// done tickRounds batches (the next tick goes on).
	for range tickRounds {
		ids, err := l.store.Due(ctx, now, tickBatch, claimFor)
		if err != nil {
			return n, errors.Join(append(errs, err)...)
		}
		for _, id := range ids {
			changed, err := l.tickOne(ctx, id, now)
			if changed {
				n++
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("session %s: %w", id, err))
			}
		}
		if len(ids) < tickBatch {
			break
		}
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return n, errors.Join(errs...)
}

// A Tick claims due sessions tickBatch at a time, at most tickRounds
// times.
const (
	tickBatch  = 100
	tickRounds = 10
)

func (l *Lifecycle) tickOne(ctx context.Context, id string, now time.Time) (bool, error) {
	s, err := l.store.Session(ctx, id)
	if ErrorCode(err) == ENotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch {
	case s.Ended() && !s.Settled:
		next, err := l.settle(ctx, s)
		return next.Settled, err
	case s.Ended() && !now.Before(s.ExpiresAt):
		next := s
		next.Version++
		ok, err := l.store.Commit(ctx, Commit{Session: next, Delete: true})
		if ok && l.cfg.OnCleanup != nil {
			l.cfg.OnCleanup(s)
		}
		return ok, err
	case s.Ended():
		// Claimed early by a clock running ahead: put it back.
		next := s
		next.Version++
		_, err := l.store.Commit(ctx, Commit{Session: next})
		return false, err
	}
	before := s.Version
	next, err := l.step(ctx, id, Step{Kind: StepTick})
	if err != nil {
		return false, err
	}
	if next.Version == before {
		// Nothing was due after all (another instance was first): the
		// claim must not hide the session until claimFor passes.
		bumped := next
		bumped.Version++
		_, err := l.store.Commit(ctx, Commit{Session: bumped})
		return false, err
	}
	return true, nil
}

// Feedback records player's rating of their partner in a completed
// session and updates the partner's rating (Elo, see Elo).
func (l *Lifecycle) Feedback(ctx context.Context, matchID, player string, stars int, notes string) (Feedback, error) {
	if err := ValidateFeedback(stars, notes); err != nil {
		return Feedback{}, err
	}
	s, err := l.store.Session(ctx, matchID)
	if err != nil {
		return Feedback{}, err
	}
	if s.Index(player) < 0 {
		return Feedback{}, Errorf(EForbidden, "you are not a player of this match")
	}
	if s.Status != StatusCompleted {
		return Feedback{}, Errorf(EInvalid, "feedback is possible once the session has taken place (it is %s)", s.Status)
	}
	partner := s.Partner(player)
	fb := Feedback{MatchID: matchID, From: player, To: partner, Stars: stars, Notes: notes, At: l.cfg.Clock.Now().UTC()}
	for range maxAttempts {
		rated, okRated, err := l.store.Rating(ctx, partner)
		if err != nil {
			return Feedback{}, err
		}
		rater, okRater, err := l.store.Rating(ctx, player)
		if err != nil {
			return Feedback{}, err
		}
		var old *float64
		if okRated {
			old = &rated
		} else {
			rated = DefaultRating
		}
		if !okRater {
			rater = DefaultRating
		}
		ok, err := l.store.AddFeedback(ctx, fb, old, Elo(rated, rater, stars))
		if err != nil {
			return Feedback{}, err
		}
		if ok {
			return fb, nil
		}
	}
	return Feedback{}, errBusy
}
