package memory_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newBackend(t *testing.T, rooms matchd.RoomMaker) matchd.Matchmaker {
	b := memory.New(memory.Config{Rooms: rooms, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) { matchdtest.Run(t, newBackend) }

func TestRoomExpiry(t *testing.T) {
	clock := matchdtest.NewClock()
	b := memory.New(memory.Config{Rooms: matchdtest.NewFlakyRooms(t), Clock: clock, RoomTTL: time.Hour})
	defer b.Close()
	ctx := t.Context()
	b.Join(ctx, matchd.Ticket{PlayerID: "alice"})
	res, _ := b.Join(ctx, matchd.Ticket{PlayerID: "bob"})
	id := res.Room.MatchID

	clock.Advance(time.Hour - time.Second)
	if _, err := b.Room(ctx, id); err != nil {
		t.Fatalf("Room before expiry: %v", err)
	}
	if again, _ := b.Join(ctx, matchd.Ticket{PlayerID: "alice"}); again.Room == nil || again.Room.MatchID != id {
		t.Fatalf("Join before expiry = %+v, want the match", again)
	}

	clock.Advance(time.Second)
	if _, err := b.Room(ctx, id); matchd.ErrorCode(err) != matchd.ENotFound {
		t.Errorf("Room after expiry: err = %v, want not found", err)
	}
	if r, _ := b.Assignment(ctx, "alice"); r != nil {
		t.Errorf("Assignment after expiry = %+v, want none", r)
	}
	// With the room gone, alice can queue again.
	if again, _ := b.Join(ctx, matchd.Ticket{PlayerID: "alice"}); !again.Added || again.Room != nil {
		t.Errorf("Join after expiry = %+v, want a new ticket", again)
	}
}

// recorder is an Observer that keeps what it is told.
type recorder struct {
	waits    [][2]time.Duration
	failures int
}

func (r *recorder) Matched(_ matchd.Room, w [2]time.Duration) { r.waits = append(r.waits, w) }
func (r *recorder) RoomFailed(error)                          { r.failures++ }
func (r *recorder) Swept(time.Duration, int)                  {}

func TestBackendStampsTickets(t *testing.T) {
	clock := matchdtest.NewClock()
	obs := &recorder{}
	b := memory.New(memory.Config{Rooms: matchdtest.NewFlakyRooms(t), Clock: clock, Observer: obs})
	defer b.Close()
	// The caller's Seq and JoinedAt are ignored: the backend orders.
	b.Join(t.Context(), matchd.Ticket{PlayerID: "alice", Seq: 99, JoinedAt: time.Unix(1, 0)})
	got, _ := b.Waiting(t.Context(), 10)
	if len(got) != 1 || got[0].Seq != 1 || !got[0].JoinedAt.Equal(clock.Now()) {
		t.Fatalf("waiting = %+v, want alice with Seq 1 joined now", got)
	}
	clock.Advance(1500 * time.Millisecond)
	b.Join(t.Context(), matchd.Ticket{PlayerID: "carol"})
	want := [][2]time.Duration{{1500 * time.Millisecond, 0}}
	if len(obs.waits) != 1 || obs.waits[0] != want[0] {
		t.Errorf("observed waits = %v, want %v", obs.waits, want)
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	b := memory.New(memory.Config{Rooms: matchdtest.NewFlakyRooms(t), EventBuffer: 2})
	defer b.Close()
	ctx := t.Context()
	slow, _ := b.Subscribe(ctx) // never read
	for i := range 4 {
		b.Join(ctx, matchd.Ticket{PlayerID: string(rune('a'+2*i)) + "1"})
		if res, _ := b.Join(ctx, matchd.Ticket{PlayerID: string(rune('a'+2*i)) + "2"}); res.Room == nil {
			t.Fatal("no match; a slow subscriber must not stall matching")
		}
	}
	n := 0
	for range slow {
		n++
	}
	if n != 2 {
		t.Errorf("slow subscriber got %d events before being dropped, want its buffer of 2", n)
	}
}

func TestLimiterConformance(t *testing.T) {
	matchdtest.RunLimiter(t, func(t *testing.T, w matchd.Window) matchd.Limiter { return memory.NewLimiter(w, nil) })
}

func TestPolicyConformance(t *testing.T) {
	matchdtest.RunPolicy(t, func(t *testing.T, cfg matchdtest.PolicyConfig) matchd.Matchmaker {
		b := memory.New(memory.Config{Rooms: cfg.Rooms, Policy: &cfg.Policy, Clock: cfg.Clock, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
		t.Cleanup(func() { b.Close() })
		return b
	})
}
