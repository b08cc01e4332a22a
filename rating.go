package matchd

import (
	"math"
	"time"
	"unicode/utf8"
)

// Feedback limits.
const (
	MinStars       = 1
	MaxStars       = 5
	MaxNotesLength = 1000 // characters (Unicode code points)
)

// Feedback is one player's rating of their partner after a session.
type Feedback struct {
	MatchID string    `json:"match_id"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Stars   int       `json:"rating"`
	Notes   string    `json:"notes,omitempty"`
	At      time.Time `json:"at"`
}

// ValidateFeedback checks a rating and its notes: an integer of 1 to 5
// stars, notes of at most MaxNotesLength characters of valid UTF-8.
func ValidateFeedback(stars int, notes string) error {
	if stars < MinStars || stars > MaxStars {
		return Errorf(EInvalid, "rating must be an integer from %d to %d", MinStars, MaxStars)
	}
	if !utf8.ValidString(notes) {
		return Errorf(EInvalid, "notes must be valid UTF-8")
	}
	if utf8.RuneCountInString(notes) > MaxNotesLength {
		return Errorf(EInvalid, "notes must be at most %d characters", MaxNotesLength)
	}
	return nil
}

// EloK is the Elo K-factor: the most one rating can move a rating.
const EloK = 32

// Elo returns the new rating of a player rated stars (1–5) by a partner
// rated partner. It is the Elo update with the stars as the score:
// 1 star scores 0, 5 stars 1, 3 stars ½, and the expected score is the
// Elo expectation against the partner's rating. So a player who impresses
// a stronger partner gains more than one who impresses a weaker one, and
// ratings of players who keep getting 3 stars from equals stay put.
func Elo(rating, partner float64, stars int) float64 {
	score := float64(stars-MinStars) / float64(MaxStars-MinStars)
	expected := 1 / (1 + math.Pow(10, (partner-rating)/400))
	return rating + EloK*(score-expected)
}
