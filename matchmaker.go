package matchd

import (
	"context"
	"time"
)

// Matchmaker is the matchmaking service: the operations of the original
// design (enqueue, dequeue, matching, listen_for_match, queue size) made
// idempotent and atomic. The embedded backend (package memory) and the
// Redis backend implement it, and one conformance suite holds both to the
// same behaviour.
//
// Matching is event-driven: a Join that completes a pair forms the match
// before it returns; nothing waits for a polling tick.
type Matchmaker interface {
	// Join puts the player of t in the queue, or matches them at once with
	// the best waiting partner the policy allows. Only t's PlayerID,
	// Rating, Priority, Prefs and Owner are read; the backend assigns Seq
	// and JoinedAt. A queued player who joins again keeps the preferences
	// of their first join.
	// Joining is idempotent: a queued player keeps their ticket and place,
	// and the ticket passes to t.Owner. A player who holds a match gets
	// that match back instead of a new ticket.
	Join(ctx context.Context, t Ticket) (JoinResult, error)

	// Leave takes the player out of the queue. It is safe when the player
	// is not queued. A player who was already matched stays matched: the
	// result then carries the room.
	Leave(ctx context.Context, player string) (LeaveResult, error)

	// Drop is Leave for a socket that closed: it removes the player's
	// ticket only while owner still owns it, so a socket closing on one
	// instance cannot take away a ticket the player re-joined elsewhere.
	Drop(ctx context.Context, player, owner string) (LeaveResult, error)

	// QueueSize returns the number of waiting tickets.
	QueueSize(ctx context.Context) (int, error)

	// PoolSize returns the number of waiting tickets in the pool of a
	// player with preferences p: those whose must-equal preferences fit
	// p's (equal, or unstated on either side). Rating, region and history
	// are not considered. With empty p it is QueueSize.
	PoolSize(ctx context.Context, p Preferences) (int, error)

	// Requeue puts player back in the queue after the match matchID fell
	// through (their partner did not show up), with the ticket they were
	// matched by: its place (Seq, JoinedAt), preferences and rating, its
	// priority raised by boost, owned by owner. The player's assignment to
	// matchID goes in the same step, so they are never both matched and
	// queued. While the player's assignment is not matchID (released
	// already, or matched elsewhere) Requeue changes nothing and reports
	// the player's state as Join would, so it is idempotent. It fails with
	// ENotFound when matchID is not a live room of player's.
	Requeue(ctx context.Context, matchID, player, owner string, boost int) (JoinResult, error)

	// Release ends the match matchID for its players: their assignments to
	// it are removed, so that joining queues them again. The room itself
	// is kept until its TTL. Release is idempotent; it fails with
	// ENotFound when there is no such live room.
	Release(ctx context.Context, matchID string) error

	// Room returns the room with the given match id, or an ENotFound error.
	Room(ctx context.Context, matchID string) (Room, error)

	// Assignment returns the room the player is matched into, or nil.
	Assignment(ctx context.Context, player string) (*Room, error)

	// Assignments is Assignment for many players at once (a resync after
	// a reconnect re-reads every connected player's): rooms[i] is the
	// room of players[i], or nil.
	Assignments(ctx context.Context, players []string) ([]*Room, error)

	// Subscribe returns the stream of match events (the original
	// listen_for_match). The channel is closed when ctx ends or when the
	// subscriber falls behind or loses its connection; events sent in
	// between are not replayed, so a subscriber that resubscribes must
	// re-read the assignments of the players it serves.
	Subscribe(ctx context.Context) (<-chan Event, error)

	// Ping reports whether the backend can serve requests.
	Ping(ctx context.Context) error
}

// Inspector lists what waits in the queue, for operators. Both backends
// implement it.
type Inspector interface {
	// Waiting returns up to limit waiting tickets, oldest first.
	Waiting(ctx context.Context, limit int) ([]Ticket, error)
	// ActiveRooms returns how many rooms are live (not expired): the
	// concurrent matches.
	ActiveRooms(ctx context.Context) (int, error)
}

// Sweeper re-evaluates the waiting tickets whose rules have widened (the
// rating tolerance grew, the region rule lapsed) and matches those that now
// fit. Backends sweep on their own as rules widen; Sweep runs one pass at
// once, for tests on a fake clock. It returns the matches it formed.
type Sweeper interface {
	Sweep(ctx context.Context) (int, error)
}

// Ratings is where matchd keeps players' skill ratings, updated from
// completed sessions. The gateway reads a player's rating from it when
// their token carries no rating claim.
type Ratings interface {
	// Rating returns player's stored rating; ok is false when there is none.
	Rating(ctx context.Context, player string) (rating float64, ok bool, err error)
}

// JoinResult is the outcome of a Join.
type JoinResult struct {
	// Room is set when the player is matched: already before this join, or
	// by this join completing a pair.
	Room *Room
	// Added is true when the join created a new ticket; false when the
	// player was already queued or already matched.
	Added bool
	// QueueSize is the number of waiting tickets after the join.
	QueueSize int
}

// LeaveResult is the outcome of a Leave.
type LeaveResult struct {
	// Room is set when the player had been matched: the leave came too late
	// and the match stands.
	Room *Room
	// Removed is true when a waiting ticket was removed.
	Removed bool
}

// Event is a match event: the original {"players":[a,b],"match_id":…}
// message, with the room so that receivers need no lookup.
type Event struct {
	Players [2]string `json:"players"`
	MatchID string    `json:"match_id"`
	Room    Room      `json:"room"`
}

// NewEvent returns the event announcing room.
func NewEvent(room Room) Event {
	return Event{Players: room.Players(), MatchID: room.MatchID, Room: room}
}

// Observer is told what a backend's matcher does, for metrics. Only the
// instance that forms a match reports it, so counts add up across
// instances.
type Observer interface {
	// Matched is called once per match with how long each player waited.
	Matched(room Room, waits [2]time.Duration)
	// RoomFailed is called when room creation failed and the pair was left
	// in the queue.
	RoomFailed(err error)
	// Swept is called after each sweep for ghost tickets, with how long it
	// took and how many tickets it removed.
	Swept(d time.Duration, removed int)
}

// NopObserver is an Observer that ignores everything.
type NopObserver struct{}

// Matched implements Observer.
func (NopObserver) Matched(Room, [2]time.Duration) {}

// RoomFailed implements Observer.
func (NopObserver) RoomFailed(error) {}

// Swept implements Observer.
func (NopObserver) Swept(time.Duration, int) {}
