package matchd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"time"
)

// Room statuses. The foundation creates rooms "active", as the original
// design does; the room lifecycle adds the others.
const (
	StatusActive = "active"
)

// A Room is the match room two paired players meet in. Its JSON form is the
// room object of the wire contract.
type Room struct {
	MatchID         string    `json:"match_id"`
	Player1         string    `json:"player1"`
	Player2         string    `json:"player2"`
	CreatedAt       time.Time `json:"created_at"`
	Status          string    `json:"status"`
	QuestionID      string    `json:"question_id"`
	QuestionText    string    `json:"question_text"`
	Topic           string    `json:"topic"`
	Difficulty      string    `json:"difficulty"`
	DurationMinutes int       `json:"duration_minutes"`
}

// Has reports whether player is one of the room's two players.
func (r Room) Has(player string) bool { return player == r.Player1 || player == r.Player2 }

// Partner returns the other player of the room.
func (r Room) Partner(player string) string {
	if player == r.Player1 {
		return r.Player2
	}
	return r.Player1
}

// Players returns both players, player1 first.
func (r Room) Players() [2]string { return [2]string{r.Player1, r.Player2} }

// NewMatchID returns a fresh match id: 128 random bits in URL-safe base64
// (22 characters of [A-Za-z0-9_-]). Unlike the original match_{p1}_{p2}_{ts}
// it leaks no player id and cannot collide within a second.
func NewMatchID() string {
	var b [16]byte
	rand.Read(b[:]) // never returns an error (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidMatchID reports whether id has the shape of a match id, so that
// lookups of garbage never reach a backend.
func ValidMatchID(id string) bool {
	if len(id) < 16 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// NewRoom returns the active room for players a and b (a joined first)
// working on question q.
func NewRoom(id string, a, b Ticket, q Question, now time.Time) Room {
	return Room{
		MatchID:         id,
		Player1:         a.PlayerID,
		Player2:         b.PlayerID,
		CreatedAt:       now.UTC().Truncate(time.Second),
		Status:          StatusActive,
		QuestionID:      q.ID,
		QuestionText:    q.Text,
		Topic:           q.Topic,
		Difficulty:      q.Difficulty,
		DurationMinutes: q.DurationMinutes,
	}
}

// RoomMaker creates the room for a pair that the matcher has chosen: the
// original design's create_match_room. When it fails, the backend commits
// nothing, so both players stay queued at their original places and
// neither is told of a match.
type RoomMaker interface {
	MakeRoom(ctx context.Context, a, b Ticket) (Room, error)
}

// QuestionRooms is the standard RoomMaker: a fresh match id and a question
// the pair agreed on: drawn from the topics both asked for (or either, when
// only one did), at the difficulty they asked for, and one neither had
// recently (Ticket.Seen) when the bank allows. The room lasts the agreed
// duration, else the question's suggested one.
type QuestionRooms struct {
	Bank  *QuestionBank
	Clock Clock // nil: the system clock
}

// MakeRoom implements RoomMaker.
func (r QuestionRooms) MakeRoom(_ context.Context, a, b Ticket) (Room, error) {
	var now time.Time
	if r.Clock != nil {
		now = r.Clock.Now()
	} else {
		now = time.Now()
	}
	avoid := func(id string) bool { return slices.Contains(a.Seen, id) || slices.Contains(b.Seen, id) }
	q := r.Bank.Pick(agreed(a.Prefs.Difficulty, b.Prefs.Difficulty), sharedTopics(a.Prefs.Topics, b.Prefs.Topics), avoid)
	room := NewRoom(NewMatchID(), a, b, q, now)
	if d := agreed(a.Prefs.Duration, b.Prefs.Duration); d != 0 {
		room.DurationMinutes = d
	}
	return room, nil
}

// agreed returns what two players asked for: the value both or either
// stated (a's when a policy let them differ), or the zero value.
func agreed[T comparable](a, b T) T {
	var zero T
	if a == zero {
		return b
	}
	return a
}

// sharedTopics returns the topics both players asked for, or, when one of
// them asked for none, the other's.
func sharedTopics(a, b []string) []string {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	var both []string
	for _, t := range a {
		if slices.Contains(b, t) {
			both = append(both, t)
		}
	}
	if len(both) == 0 { // a policy without must_intersect: either's will do
		return append(slices.Clone(a), b...)
	}
	return both
}
