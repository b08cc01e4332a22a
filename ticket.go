package matchd

import "time"

// DefaultRating is the rating of a player whose token carries none.
const DefaultRating = 1500

// A Ticket is one player's place in the queue. A player holds at most one
// ticket at a time; joining again while queued keeps the existing ticket
// and with it the player's place.
type Ticket struct {
	PlayerID string
	// Seq orders the queue: a smaller Seq joined earlier. Backends assign
	// it when the ticket is created and never change it, which is what
	// lets a failed match put both players back at their original places.
	Seq      uint64
	JoinedAt time.Time
	Rating   float64 // from the token, never from the client's message
	Priority int     // from the token; used by the matching policy
	Prefs    Preferences
	// Seen holds the ids of the questions the player had within the
	// policy's history window. Backends fill it from their history before
	// they make a room, so that the question is new to both players;
	// nothing else reads it.
	Seen []string
	// Owner names the gateway instance holding the socket that joined last.
	// A join from another instance takes the ticket over; a closing socket
	// drops the ticket only if its instance still owns it (see
	// Matchmaker.Drop).
	Owner string
}

// Waited returns how long the ticket has waited at now.
func (t Ticket) Waited(now time.Time) time.Duration { return now.Sub(t.JoinedAt) }
