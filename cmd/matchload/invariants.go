package main

import (
	"fmt"
	"sync"
	"time"
)

// Kinds of Violation.
const (
	// kindMatchedTwice: a player appears in two different matches, by its
	// own match_found frames or by a partner's.
	kindMatchedTwice = "matched_twice"
	// kindTwoPartners: one player's match_found frames for one match name
	// different partners.
	kindTwoPartners = "two_partners"
	// kindAsymmetric: the two sides of a match disagree (partner ids, a
	// third player claiming the match), or one side never heard of a match
	// while its socket was open.
	kindAsymmetric = "asymmetric"
	// kindAfterLeave: a player that received left_queue was matched
	// afterwards (seen by itself or by its partner).
	kindAfterLeave = "matched_after_leaving"
	// kindSelf: a match pairs a player with itself.
	kindSelf = "matched_with_self"
	// kindLeftAfterMatch: left_queue after match_found; the protocol says a
	// leave after a match is answered with the match, never left_queue.
	kindLeftAfterMatch = "left_after_match"
	// kindRoom: match_found's room does not name the match and its two
	// players.
	kindRoom = "room_mismatch"
)

// maxKeptViolations bounds the violations kept with their details; the
// count goes on past it. One bug tends to repeat itself thousands of times.
const maxKeptViolations = 1000

// Violation is one broken matchmaking invariant and what showed it.
type Violation struct {
	Kind    string `json:"kind"`
	Player  string `json:"player"`
	MatchID string `json:"match_id,omitempty"`
	Detail  string `json:"detail"`
}

// sighting is one match_found as a player received it.
type sighting struct {
	MatchID string
	Partner string
	// Player1 and Player2 are the room's players; empty when the frame
	// carried no room.
	Player1, Player2 string
	RoomID           string
	At               time.Time
}

// checker checks, as frames arrive, that nobody is matched twice, with
// themselves, or after leaving, and that both sides of a match agree. It
// assumes what matchload's players do: a player never joins again after
// left_queue or match_found. Safe for concurrent use; the lock is held only
// for map updates, never for I/O.
type checker struct {
	// grace is how long a partner's socket must have stayed open after a
	// match was seen for the partner's silence to be a violation: a socket
	// closing as the match forms legitimately misses the frame.
	grace time.Duration

	mu         sync.Mutex
	players    map[string]*record // the players of this run
	matches    map[string]*matchSides
	violations []Violation
	count      int // violations, including those past maxKeptViolations
	outsiders  int // matches whose partner is not a player of this run
}

// record is what the checker knows about one player.
type record struct {
	in      []string // distinct match ids naming the player, by itself or a partner
	left    bool     // received left_queue
	sockets []span
}

// span is the life of one of a player's sockets; close is zero while open.
type span struct{ open, close time.Time }

// matchSides holds the (at most two) players that saw one match.
type matchSides struct {
	sides   []side
	outside bool // the partner named is not a player of this run
}

// side is one player's view of a match.
type side struct {
	player, partner string
	at              time.Time
}

// newChecker returns a checker; see checker.grace.
func newChecker(grace time.Duration) *checker {
	return &checker{grace: grace, players: map[string]*record{}, matches: map[string]*matchSides{}}
}

// add registers a player of this run. Partners that were never added are
// outsiders (someone else's players on the same server) and are counted,
// not checked.
func (c *checker) add(player string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.players[player] == nil {
		c.players[player] = &record{}
	}
}

// opened records that a socket of player opened at t.
func (c *checker) opened(player string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.players[player]; r != nil {
		r.sockets = append(r.sockets, span{open: t})
	}
}

// closed records that player's latest socket closed at t.
func (c *checker) closed(player string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.players[player]; r != nil && len(r.sockets) > 0 && r.sockets[len(r.sockets)-1].close.IsZero() {
		r.sockets[len(r.sockets)-1].close = t
	}
}

// left records that player received left_queue at t.
func (c *checker) left(player string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.players[player]
	if r == nil {
		return
	}
	r.left = true
	if len(r.in) > 0 {
		c.violate(kindLeftAfterMatch, player, r.in[0], "left_queue after match_found")
	}
}

// matched checks one match_found that player received.
func (c *checker) matched(player string, s sighting) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.Partner == player {
		c.violate(kindSelf, player, s.MatchID, "match_found names the player as its own partner")
	}
	if s.RoomID != "" || s.Player1 != "" || s.Player2 != "" {
		pairOK := (s.Player1 == player && s.Player2 == s.Partner) || (s.Player2 == player && s.Player1 == s.Partner)
		if s.RoomID != s.MatchID || !pairOK {
			c.violate(kindRoom, player, s.MatchID, fmt.Sprintf("match_found for %s with partner %s carries room %s of %s and %s", s.MatchID, s.Partner, s.RoomID, s.Player1, s.Player2))
		}
	}
	m := c.matches[s.MatchID]
	if m == nil {
		m = &matchSides{}
		c.matches[s.MatchID] = m
	}
	for _, sd := range m.sides {
		if sd.player == player {
			// A repeat (the answer to a late leave_queue, or a resync
			// after a reconnect) must name the same partner.
			if sd.partner != s.Partner {
				c.violate(kindTwoPartners, player, s.MatchID, fmt.Sprintf("match_found frames name partner %s, then %s", sd.partner, s.Partner))
			}
			return
		}
	}
	r := c.players[player]
	if r != nil && r.left {
		c.violate(kindAfterLeave, player, s.MatchID, "match_found after left_queue")
	}
	if len(m.sides) == 2 {
		c.violate(kindAsymmetric, player, s.MatchID, fmt.Sprintf("a third player sees the match of %s and %s", m.sides[0].player, m.sides[1].player))
	} else {
		m.sides = append(m.sides, side{player: player, partner: s.Partner, at: s.At})
		if len(m.sides) == 2 {
			a, b := m.sides[0], m.sides[1]
			if a.partner != b.player || b.partner != a.player {
				c.violate(kindAsymmetric, player, s.MatchID, fmt.Sprintf("%s sees partner %s, %s sees partner %s", a.player, a.partner, b.player, b.partner))
			}
		}
	}
	c.include(player, s.MatchID)
	if s.Partner != player {
		if c.players[s.Partner] == nil {
			if !m.outside {
				m.outside = true
				c.outsiders++
			}
		} else {
			c.include(s.Partner, s.MatchID)
		}
	}
}

// include notes that match id names player, which must be the only match
// naming them.
func (c *checker) include(player, id string) {
	r := c.players[player]
	if r == nil {
		return
	}
	for _, have := range r.in {
		if have == id {
			return
		}
	}
	r.in = append(r.in, id)
	if len(r.in) > 1 {
		c.violate(kindMatchedTwice, player, id, fmt.Sprintf("in match %s and in match %s", r.in[0], id))
	}
}

// finish runs the checks that need the whole run, once every player has
// stopped at end: matches that only one side saw. It returns every
// violation of the run (at most maxKeptViolations) and their count.
func (c *checker) finish(end time.Time) ([]Violation, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, m := range c.matches {
		if len(m.sides) != 1 {
			continue
		}
		s := m.sides[0]
		p := c.players[s.partner]
		if p == nil || s.partner == s.player {
			continue
		}
		switch {
		case p.left:
			// left_queue means out of the queue and not matched: a match
			// the partner never saw came after its leave.
			c.violate(kindAfterLeave, s.partner, id, fmt.Sprintf("%s saw this match with %s, who had received left_queue and never saw it", s.player, s.partner))
		case connectedFor(p.sockets, s.at, end) >= c.grace:
			// match_found goes to every open socket of both players.
			c.violate(kindAsymmetric, s.partner, id, fmt.Sprintf("%s saw this match; %s had a socket open for %v after that and never received match_found", s.player, s.partner, connectedFor(p.sockets, s.at, end).Round(time.Millisecond)))
		}
	}
	return c.violations, c.count
}

// connectedFor returns the longest time one of sockets was open after t
// (sockets still open count until end).
func connectedFor(sockets []span, t, end time.Time) time.Duration {
	var best time.Duration
	for _, s := range sockets {
		from, to := s.open, s.close
		if to.IsZero() {
			to = end
		}
		if from.Before(t) {
			from = t
		}
		if d := to.Sub(from); d > best {
			best = d
		}
	}
	return best
}

// pairs returns the two sides of every match that two of this run's
// players saw, with when each received match_found.
func (c *checker) pairs() [][2]side {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][2]side
	for _, m := range c.matches {
		if len(m.sides) == 2 && !m.outside {
			out = append(out, [2]side{m.sides[0], m.sides[1]})
		}
	}
	return out
}

// stats returns the number of violations so far and of distinct matches
// and outsider matches seen.
func (c *checker) stats() (violations, matches, outsiders int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count, len(c.matches), c.outsiders
}

// violate records a violation; c.mu is held.
func (c *checker) violate(kind, player, matchID, detail string) {
	c.count++
	if len(c.violations) < maxKeptViolations {
		c.violations = append(c.violations, Violation{Kind: kind, Player: player, MatchID: matchID, Detail: detail})
	}
}
