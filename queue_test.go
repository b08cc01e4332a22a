package matchd_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/matchd/matchd"
)

func players(ts []matchd.Ticket) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.PlayerID
	}
	return out
}

func TestQueue(t *testing.T) {
	t.Run("add_is_idempotent_and_keeps_the_first_place", func(t *testing.T) {
		q := matchd.NewQueue()
		if !q.Add(matchd.Ticket{PlayerID: "a", Seq: 1}) {
			t.Fatal("first Add of a = false, want true")
		}
		q.Add(matchd.Ticket{PlayerID: "b", Seq: 2})
		if q.Add(matchd.Ticket{PlayerID: "a", Seq: 3}) {
			t.Fatal("second Add of a = true, want false")
		}
		if diff := cmp.Diff([]string{"a", "b"}, players(q.All())); diff != "" {
			t.Errorf("queue order (-want +got):\n%s", diff)
		}
		if got, _ := q.Get("a"); got.Seq != 1 {
			t.Errorf("a.Seq = %d, want 1 (the first ticket)", got.Seq)
		}
	})
	t.Run("add_with_an_old_seq_returns_to_its_place", func(t *testing.T) {
		q := matchd.NewQueue()
		for i, p := range []string{"a", "c", "e"} {
			q.Add(matchd.Ticket{PlayerID: p, Seq: uint64(2*i + 1)})
		}
		q.Add(matchd.Ticket{PlayerID: "d", Seq: 4})
		q.Add(matchd.Ticket{PlayerID: "b", Seq: 2})
		q.Add(matchd.Ticket{PlayerID: "z", Seq: 0})
		if diff := cmp.Diff([]string{"z", "a", "b", "c", "d", "e"}, players(q.All())); diff != "" {
			t.Errorf("queue order (-want +got):\n%s", diff)
		}
	})
	t.Run("remove_is_safe_when_absent", func(t *testing.T) {
		q := matchd.NewQueue()
		if q.Remove("nobody") {
			t.Error("Remove(nobody) = true, want false")
		}
	})
	t.Run("pair_takes_the_two_oldest_compatible", func(t *testing.T) {
		q := matchd.NewQueue()
		for i, p := range []string{"a", "b", "c", "d"} {
			q.Add(matchd.Ticket{PlayerID: p, Seq: uint64(i)})
		}
		// a fits nobody; b and d fit each other only.
		fits := func(x, y *matchd.Ticket) bool { return x.PlayerID == "b" && y.PlayerID == "d" }
		a, b, ok := q.Pair(fits)
		if !ok || a.PlayerID != "b" || b.PlayerID != "d" {
			t.Errorf("Pair = %s,%s,%v, want b,d,true", a.PlayerID, b.PlayerID, ok)
		}
		if q.Len() != 4 {
			t.Errorf("Len after Pair = %d, want 4: Pair must not remove", q.Len())
		}
	})
	t.Run("pair_of_fewer_than_two_is_none", func(t *testing.T) {
		q := matchd.NewQueue()
		q.Add(matchd.Ticket{PlayerID: "a"})
		if _, _, ok := q.Pair(matchd.AnyPair); ok {
			t.Error("Pair on one ticket = ok, want none")
		}
	})
}

// TestQueueModel checks the queue against a plain slice kept in Seq order,
// over random sequences of adds and removes.
func TestQueueModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		q := matchd.NewQueue()
		var model []matchd.Ticket
		ids := rapid.SampledFrom([]string{"a", "b", "c", "d", "e", "f"})
		for range rapid.IntRange(0, 60).Draw(t, "ops") {
			p := ids.Draw(t, "player")
			if rapid.Bool().Draw(t, "add") {
				tk := matchd.Ticket{PlayerID: p, Seq: rapid.Uint64Range(0, 50).Draw(t, "seq")}
				present := slices.ContainsFunc(model, func(x matchd.Ticket) bool { return x.PlayerID == p })
				if got := q.Add(tk); got == present {
					t.Fatalf("Add(%s) = %v with present=%v", p, got, present)
				}
				if !present {
					i := len(model)
					for i > 0 && model[i-1].Seq > tk.Seq {
						i--
					}
					model = slices.Insert(model, i, tk)
				}
			} else {
				i := slices.IndexFunc(model, func(x matchd.Ticket) bool { return x.PlayerID == p })
				if got := q.Remove(p); got != (i >= 0) {
					t.Fatalf("Remove(%s) = %v, want %v", p, got, i >= 0)
				}
				if i >= 0 {
					model = slices.Delete(model, i, i+1)
				}
			}
			if diff := cmp.Diff(players(model), players(q.All())); diff != "" {
				t.Fatalf("queue differs from model (-want +got):\n%s", diff)
			}
			if q.Len() != len(model) {
				t.Fatalf("Len = %d, want %d", q.Len(), len(model))
			}
			a, b, ok := q.Pair(matchd.AnyPair)
			if ok != (len(model) >= 2) || ok && (a.PlayerID != model[0].PlayerID || b.PlayerID != model[1].PlayerID) {
				t.Fatalf("Pair = %s,%s,%v; want the two oldest of %v", a.PlayerID, b.PlayerID, ok, players(model))
			}
		}
	})
}

func TestValidPlayerID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"simple", "alice", true},
		{"all_allowed_characters", "A-z_0.9", true},
		{"max_length", string(make64('x')), true},
		{"empty", "", false},
		{"too_long", string(make64('x')) + "x", false},
		{"space", "al ice", false},
		{"colon_would_break_redis_keys", "a:b", false},
		{"braces_would_break_hash_tags", "{a}", false},
		{"non_ascii", "ålice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchd.ValidPlayerID(tt.id); got != tt.want {
				t.Errorf("ValidPlayerID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func make64(c byte) []byte { return slices.Repeat([]byte{c}, 64) }

func TestNewMatchID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := matchd.NewMatchID()
		if !matchd.ValidMatchID(id) || len(id) != 22 {
			t.Fatalf("NewMatchID() = %q: not a 22-character match id", id)
		}
		if seen[id] {
			t.Fatalf("NewMatchID() repeated %q", id)
		}
		seen[id] = true
	}
}
