package main

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// event is one thing a player saw, fed to the checker.
type event struct {
	kind    string // "open", "close", "match", "left"
	player  string
	match   string
	partner string
	at      time.Duration // since t0
	room    [3]string     // match id, player1, player2; empty: derived from the match
}

func TestChecker(t *testing.T) {
	match := func(player, id, partner string, at time.Duration) event {
		return event{kind: "match", player: player, match: id, partner: partner, at: at}
	}
	left := func(player string, at time.Duration) event { return event{kind: "left", player: player, at: at} }
	open := func(player string, at time.Duration) event { return event{kind: "open", player: player, at: at} }
	closed := func(player string, at time.Duration) event { return event{kind: "close", player: player, at: at} }
	tests := []struct {
		name      string
		events    []event
		end       time.Duration
		want      []string // violation kinds, sorted
		outsiders int
	}{
		{
			name:   "symmetric pair is clean",
			events: []event{match("a", "M", "b", 0), match("b", "M", "a", time.Millisecond)},
		},
		{
			name:   "repeated match_found for the same match is clean",
			events: []event{match("a", "M", "b", 0), match("a", "M", "b", time.Millisecond), match("b", "M", "a", time.Millisecond)},
		},
		{
			name:   "player in two matches",
			events: []event{match("a", "M1", "b", 0), match("b", "M1", "a", 0), match("a", "M2", "c", 0), match("c", "M2", "a", 0)},
			want:   []string{kindMatchedTwice},
		},
		{
			name:   "partner's view puts a player in a second match",
			events: []event{match("a", "M1", "b", 0), match("b", "M1", "a", 0), match("c", "M2", "a", 0)},
			want:   []string{kindMatchedTwice},
		},
		{
			name:   "one match naming two partners",
			events: []event{match("a", "M", "b", 0), match("a", "M", "c", 0), match("b", "M", "a", 0)},
			want:   []string{kindTwoPartners},
		},
		{
			name:   "asymmetric partners",
			events: []event{match("a", "M", "b", 0), match("b", "M", "c", 0)},
			want:   []string{kindAsymmetric},
		},
		{
			name:   "a third player claims the match",
			events: []event{match("a", "M", "b", 0), match("b", "M", "a", 0), match("c", "M", "a", 0)},
			want:   []string{kindAsymmetric},
		},
		{
			name:   "matched after leaving",
			events: []event{left("a", 0), match("a", "M", "b", time.Millisecond), match("b", "M", "a", time.Millisecond)},
			want:   []string{kindAfterLeave},
		},
		{
			name:   "partner matched after leaving, seen only by the partner",
			events: []event{open("b", 0), left("b", time.Millisecond), closed("b", 2*time.Millisecond), match("a", "M", "b", 3*time.Millisecond)},
			end:    time.Second,
			want:   []string{kindAfterLeave},
		},
		{
			name:   "left_queue after match_found",
			events: []event{match("a", "M", "b", 0), match("b", "M", "a", 0), left("a", time.Millisecond)},
			want:   []string{kindLeftAfterMatch},
		},
		{
			name:   "matched with self",
			events: []event{match("a", "M", "a", 0)},
			want:   []string{kindSelf},
		},
		{
			name:   "half-seen match while the partner stayed connected",
			events: []event{open("b", 0), match("a", "M", "b", time.Second)},
			end:    10 * time.Second,
			want:   []string{kindAsymmetric},
		},
		{
			name:   "half-seen match of a partner that had just dropped is clean",
			events: []event{open("b", 0), closed("b", time.Second), match("a", "M", "b", time.Second+time.Millisecond)},
			end:    10 * time.Second,
		},
		{
			name:   "half-seen match of a partner whose socket closed within the grace is clean",
			events: []event{open("b", 0), match("a", "M", "b", time.Second), closed("b", time.Second+100*time.Millisecond)},
			end:    10 * time.Second,
		},
		{
			name: "room naming other players",
			events: []event{
				{kind: "match", player: "a", match: "M", partner: "b", room: [3]string{"M", "a", "c"}},
				match("b", "M", "a", 0),
			},
			want: []string{kindRoom},
		},
		{
			name:      "partner from outside the run is counted, not checked",
			events:    []event{match("a", "M", "stranger", 0)},
			outsiders: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChecker(500 * time.Millisecond)
			for _, p := range []string{"a", "b", "c"} {
				c.add(p)
			}
			t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			for _, e := range tt.events {
				at := t0.Add(e.at)
				switch e.kind {
				case "open":
					c.opened(e.player, at)
				case "close":
					c.closed(e.player, at)
				case "left":
					c.left(e.player, at)
				case "match":
					s := sighting{MatchID: e.match, Partner: e.partner, At: at, RoomID: e.room[0], Player1: e.room[1], Player2: e.room[2]}
					if e.room[0] == "" {
						s.RoomID, s.Player1, s.Player2 = e.match, e.player, e.partner
					}
					c.matched(e.player, s)
				}
			}
			vs, n := c.finish(t0.Add(tt.end))
			var got []string
			for _, v := range vs {
				got = append(got, v.Kind)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violation kinds (-want +got):\n%s\nviolations: %+v", diff, vs)
			}
			if n != len(vs) {
				t.Errorf("count %d, listed %d", n, len(vs))
			}
			if _, _, out := c.stats(); out != tt.outsiders {
				t.Errorf("outsiders = %d, want %d", out, tt.outsiders)
			}
		})
	}
}

// TestCheckerKeepsCountPastTheList: a bug that repeats itself is counted
// in full but listed only up to maxKeptViolations.
func TestCheckerKeepsCountPastTheList(t *testing.T) {
	c := newChecker(time.Second)
	c.add("a")
	for i := range maxKeptViolations + 5 {
		c.matched("a", sighting{MatchID: "M" + string(rune('A'+i%26)) + time.Duration(i).String(), Partner: "a"})
	}
	vs, n := c.finish(time.Now())
	if len(vs) != maxKeptViolations || n <= maxKeptViolations {
		t.Errorf("listed %d, counted %d: want %d listed and more counted", len(vs), n, maxKeptViolations)
	}
}
