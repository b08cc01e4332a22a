package matchd

import (
	"time"
)

// Session statuses, besides StatusActive. A session starts waiting (for
// both players to be ready) or, without a ready window, active; it ends
// completed (it took place) or abandoned (it never started, or expired).
const (
	StatusWaiting   = "waiting"
	StatusCompleted = "completed"
	StatusAbandoned = "abandoned"
)

// Why a session ended: Session.Reason, and the reason of the frames that
// tell players.
const (
	EndTimeUp   = "time_up"   // the agreed duration passed
	EndLeft     = "left"      // a player left the room (Session.By)
	EndNoShow   = "no_show"   // one player was not ready in time (Session.By)
	EndNotReady = "not_ready" // neither player was ready in time
	EndExpired  = "expired"   // the room reached its TTL while still open
)

// Warnings are how long before a session's end its players are warned
// (time_warning), longest first.
var Warnings = [...]time.Duration{5 * time.Minute, time.Minute}

// DefaultSessionDuration is the length of a session whose room states none.
const DefaultSessionDuration = 30 * time.Minute

// A Session is the lifecycle of one match room: who is ready, when it
// started and ends, how it ended. Its transitions are the pure function
// Step; stores keep it and commit each step atomically (compare-and-set on
// Version), so any instance may apply any step.
type Session struct {
	MatchID      string    `json:"match_id"`
	Players      [2]string `json:"players"`
	QuestionID   string    `json:"question_id"`
	QuestionText string    `json:"question_text"`
	Status       string    `json:"status"`
	// Ready marks, by the index of the player in Players.
	Ready [2]bool `json:"ready"`
	// Owners names the gateway instance each player said ready through:
	// a requeued player's new ticket belongs to it.
	Owners    [2]string     `json:"owners"`
	Duration  time.Duration `json:"duration"`
	CreatedAt time.Time     `json:"created_at"`
	ReadyBy   time.Time     `json:"ready_by,omitzero"`   // end of the ready window, while waiting
	StartedAt time.Time     `json:"started_at,omitzero"` // when it became active
	EndsAt    time.Time     `json:"ends_at,omitzero"`    // when time is up, once active
	EndedAt   time.Time     `json:"ended_at,omitzero"`
	ExpiresAt time.Time     `json:"expires_at"` // the room's TTL: cleanup is due then
	Warned    int           `json:"warned"`     // how many of Warnings were sent
	Reason    string        `json:"reason,omitempty"`
	By        string        `json:"by,omitempty"` // the player who left, or the no-show
	// Settled is set once the matchmaker has been told of the end (the
	// ready player requeued, the room released). Until then the session
	// stays due (SettleRetry), so that another instance finishes the job
	// if this one dies.
	Settled bool `json:"settled,omitempty"`
	// Pending holds the events of the step that ended the session until
	// it is settled: a player told "requeued" or "match_cancelled" must
	// find themselves queued or free to join, so those frames go out
	// with the settling commit.
	Pending []RoomEvent `json:"pending,omitempty"`
	// Version counts committed changes; a store commits a step only if the
	// stored version is still the one the step was computed from.
	Version uint64 `json:"version"`
}

// SessionConfig holds the lifecycle's timings.
type SessionConfig struct {
	// ReadyTimeout is the ready window; 0 starts sessions active at once.
	ReadyTimeout time.Duration
	// RoomTTL is how long a session is kept after it opens, ended or not.
	RoomTTL time.Duration
}

// NewSession returns the session of room, opened at now.
func NewSession(room Room, cfg SessionConfig, now time.Time) Session {
	d := time.Duration(room.DurationMinutes) * time.Minute
	if d <= 0 {
		d = DefaultSessionDuration
	}
	s := Session{
		MatchID:      room.MatchID,
		Players:      room.Players(),
		QuestionID:   room.QuestionID,
		QuestionText: room.QuestionText,
		Duration:     d,
		CreatedAt:    now,
		ExpiresAt:    now.Add(cfg.RoomTTL),
		Version:      1,
	}
	if cfg.ReadyTimeout > 0 {
		s.Status = StatusWaiting
		s.ReadyBy = now.Add(cfg.ReadyTimeout)
	} else {
		s.start(now)
	}
	return s
}

func (s *Session) start(now time.Time) {
	s.Status = StatusActive
	s.ReadyBy = time.Time{}
	s.StartedAt = now
	s.EndsAt = now.Add(s.Duration)
	// Warnings that would come at or before the start are skipped.
	s.Warned = 0
	for s.Warned < len(Warnings) && Warnings[s.Warned] >= s.Duration {
		s.Warned++
	}
}

// Ended reports whether the session is over.
func (s Session) Ended() bool { return s.Status == StatusCompleted || s.Status == StatusAbandoned }

// Index returns player's index in Players, or -1.
func (s Session) Index(player string) int {
	switch player {
	case s.Players[0]:
		return 0
	case s.Players[1]:
		return 1
	}
	return -1
}

// Partner returns the other player.
func (s Session) Partner(player string) string {
	if player == s.Players[0] {
		return s.Players[1]
	}
	return s.Players[0]
}

// Requeued returns the player the end of the session puts back in the
// queue (the ready partner of a no-show), or "".
func (s Session) Requeued() string {
	if s.Reason != EndNoShow {
		return ""
	}
	return s.Partner(s.By)
}

// SettleRetry is how long after its end an unsettled session is due
// again. The instance that ended it settles it at once; the timer only
// matters when that failed (the matchmaker was unreachable, the instance
// died), and then a retry every few seconds is plenty.
const SettleRetry = 5 * time.Second

// Due returns when the session next needs a Tick: the end of the ready
// window, the next warning, the end, SettleRetry after the end while an
// ended session is not settled, and its expiry (cleanup) after that.
func (s Session) Due() time.Time {
	var due time.Time
	switch {
	case s.Ended() && !s.Settled:
		return s.EndedAt.Add(SettleRetry)
	case s.Ended():
		return s.ExpiresAt
	case s.Status == StatusWaiting:
		due = s.ReadyBy
	default:
		due = s.EndsAt
		if s.Warned < len(Warnings) {
			due = s.EndsAt.Add(-Warnings[s.Warned])
		}
	}
	if s.ExpiresAt.Before(due) {
		return s.ExpiresAt
	}
	return due
}

// Room event types: what the lifecycle and the players' sockets tell a
// player. Each is a server frame of the wire contract.
const (
	RoomStarted        = "room_started"
	RoomRequeued       = "requeued"
	RoomCancelled      = "match_cancelled"
	RoomTimeWarning    = "time_warning"
	RoomTimeUp         = "time_up"
	RoomPartnerLeft    = "partner_left"
	RoomChat           = "chat"
	RoomPartnerOnline  = "partner_connected"
	RoomPartnerOffline = "partner_disconnected"
	// RoomState tells a player that their session changed in a way no
	// other frame tells (their partner said ready): the gateway sends them
	// room_state.
	RoomState           = "room_state"
	reasonPartnerNoShow = "partner_no_show"
)

// A RoomEvent is something to tell one player of a room. Events travel on
// the stores' room-event stream, so they reach the player on whichever
// instance holds their socket.
type RoomEvent struct {
	Type    string `json:"type"`
	MatchID string `json:"match_id"`
	To      string `json:"to"`
	// Per type: match_cancelled and requeued give Reason; time_warning
	// SecondsLeft; room_started the question and EndsAt; chat From and
	// Text; requeued the Owner of the player's new ticket.
	Reason       string    `json:"reason,omitempty"`
	SecondsLeft  int       `json:"seconds_left,omitempty"`
	QuestionID   string    `json:"question_id,omitempty"`
	QuestionText string    `json:"question_text,omitempty"`
	EndsAt       time.Time `json:"ends_at,omitzero"`
	From         string    `json:"from,omitempty"`
	Text         string    `json:"text,omitempty"`
	Owner        string    `json:"owner,omitempty"`
}

// Session event kinds: the inputs of Step.
const (
	StepReady = "ready" // Player says ready, through the gateway instance Owner
	StepLeave = "leave" // Player leaves the room
	StepTick  = "tick"  // a deadline may have passed
)

// A Step is one input to a session.
type Step struct {
	Kind   string
	Player string
	Owner  string
}

// Apply computes the session after step at now and what to tell whom. It
// is pure. changed is false when the step changes nothing (a second ready,
// a tick before anything is due), and then nothing must be committed. A
// step by someone who is not a player, or on an ended session, is an
// error.
func (s Session) Apply(step Step, now time.Time) (next Session, events []RoomEvent, changed bool, err error) {
	next = s
	switch step.Kind {
	case StepReady:
		i := s.Index(step.Player)
		if i < 0 {
			return s, nil, false, Errorf(EForbidden, "you are not a player of this match")
		}
		if s.Ended() {
			return s, nil, false, Errorf(EInvalid, "this session has ended")
		}
		if s.Status != StatusWaiting || s.Ready[i] {
			return s, nil, false, nil // already ready, or already started
		}
		if !now.Before(s.ReadyBy) {
			// The window has closed; the tick decides, as if it ran now.
			return s.Apply(Step{Kind: StepTick}, now)
		}
		next.Ready[i] = true
		next.Owners[i] = step.Owner
		if next.Ready[0] && next.Ready[1] {
			next.start(now)
			for _, p := range s.Players {
				events = append(events, RoomEvent{Type: RoomStarted, MatchID: s.MatchID, To: p, QuestionID: s.QuestionID, QuestionText: s.QuestionText, EndsAt: next.EndsAt})
			}
		} else {
			events = append(events, RoomEvent{Type: RoomState, MatchID: s.MatchID, To: s.Players[1-i]})
		}
	case StepLeave:
		if s.Index(step.Player) < 0 {
			return s, nil, false, Errorf(EForbidden, "you are not a player of this match")
		}
		if s.Ended() {
			return s, nil, false, nil
		}
		status := StatusCompleted // it took place, if briefly: feedback is welcome
		if s.Status == StatusWaiting {
			status = StatusAbandoned
		}
		next.end(status, EndLeft, step.Player, now)
		events = append(events, RoomEvent{Type: RoomPartnerLeft, MatchID: s.MatchID, To: s.Partner(step.Player)})
	case StepTick:
		return s.tick(now)
	default:
		return s, nil, false, Errorf(EInvalid, "unknown session step %q", step.Kind)
	}
	next.Version++
	return next, events, true, nil
}

// tick applies the deadlines that passed by now.
func (s Session) tick(now time.Time) (Session, []RoomEvent, bool, error) {
	next := s
	var events []RoomEvent
	switch {
	case s.Ended():
		return s, nil, false, nil // settling and cleanup are the caller's
	case !now.Before(s.ExpiresAt):
		next.end(StatusAbandoned, EndExpired, "", now)
		if s.Status == StatusActive {
			next.Status = StatusCompleted
		}
		for _, p := range s.Players {
			events = append(events, RoomEvent{Type: RoomCancelled, MatchID: s.MatchID, To: p, Reason: EndExpired})
		}
	case s.Status == StatusWaiting && !now.Before(s.ReadyBy):
		switch {
		case s.Ready[0] != s.Ready[1]:
			ready := 0
			if s.Ready[1] {
				ready = 1
			}
			present, absent := s.Players[ready], s.Players[1-ready]
			next.end(StatusAbandoned, EndNoShow, absent, now)
			events = append(events,
				RoomEvent{Type: RoomRequeued, MatchID: s.MatchID, To: present, Reason: reasonPartnerNoShow, Owner: s.Owners[ready]},
				RoomEvent{Type: RoomCancelled, MatchID: s.MatchID, To: absent, Reason: EndNotReady})
		default:
			next.end(StatusAbandoned, EndNotReady, "", now)
			for _, p := range s.Players {
				events = append(events, RoomEvent{Type: RoomCancelled, MatchID: s.MatchID, To: p, Reason: EndNotReady})
			}
		}
	case s.Status == StatusActive && !now.Before(s.EndsAt):
		next.end(StatusCompleted, EndTimeUp, "", now)
		for _, p := range s.Players {
			events = append(events, RoomEvent{Type: RoomTimeUp, MatchID: s.MatchID, To: p})
		}
	case s.Status == StatusActive && s.Warned < len(Warnings) && !now.Before(s.EndsAt.Add(-Warnings[s.Warned])):
		// A late tick sends only the latest warning that is due.
		for next.Warned < len(Warnings) && !now.Before(s.EndsAt.Add(-Warnings[next.Warned])) {
			next.Warned++
		}
		left := int(s.EndsAt.Sub(now).Round(time.Second) / time.Second)
		for _, p := range s.Players {
			events = append(events, RoomEvent{Type: RoomTimeWarning, MatchID: s.MatchID, To: p, SecondsLeft: left})
		}
	default:
		return s, nil, false, nil
	}
	next.Version++
	return next, events, true, nil
}

func (s *Session) end(status, reason, by string, now time.Time) {
	s.Status, s.Reason, s.By, s.EndedAt = status, reason, by, now
	s.ReadyBy = time.Time{}
}

// HistoryEntry is one past session as a player's history lists it.
type HistoryEntry struct {
	MatchID      string    `json:"match_id"`
	PartnerID    string    `json:"partner_id"`
	Status       string    `json:"status"`
	Reason       string    `json:"reason"`
	QuestionID   string    `json:"question_id"`
	QuestionText string    `json:"question_text"`
	CreatedAt    time.Time `json:"created_at"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	EndedAt      time.Time `json:"ended_at"`
}

// History returns the history entry of an ended session for player.
func (s Session) History(player string) HistoryEntry {
	return HistoryEntry{
		MatchID: s.MatchID, PartnerID: s.Partner(player), Status: s.Status, Reason: s.Reason,
		QuestionID: s.QuestionID, QuestionText: s.QuestionText,
		CreatedAt: s.CreatedAt, StartedAt: s.StartedAt, EndedAt: s.EndedAt,
	}
}
