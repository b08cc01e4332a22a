package web

import (
	"testing"

	"github.com/matchd/matchd"
)

// TestStandingJoinAfterDelivery: a join whose backend call returned "queued"
// while a match reached the player (a partner's join right after it) must
// not leave a standing join behind; a resync after that match's release
// would otherwise queue the player again unasked.
func TestStandingJoinAfterDelivery(t *testing.T) {
	s := New(Config{})
	c := &conn{h: s.hub, player: "a", closed: true} // closed: frames are dropped, not written
	s.hub.register(c)

	before := s.hub.deliveries(c.entry)
	s.hub.deliver(&matchd.Room{MatchID: "m1", Player1: "a", Player2: "b"})
	s.hub.standingJoin(c.entry, c, before)
	if c.joined {
		t.Fatal("the join stands although a match was delivered while it was in flight")
	}

	before = s.hub.deliveries(c.entry)
	s.hub.deliver(&matchd.Room{MatchID: "m2", Player1: "x", Player2: "y"}) // someone else's match
	s.hub.standingJoin(c.entry, c, before)
	if !c.joined {
		t.Fatal("the join does not stand, though no match reached its player")
	}
}
