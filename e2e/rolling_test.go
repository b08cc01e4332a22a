package e2e

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/redistest"
)

// fleet is the set of live instances that clients may connect to.
type fleet struct {
	mu   sync.Mutex
	live []*instance
}

func (f *fleet) pick(r *rand.Rand) *instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live[r.IntN(len(f.live))]
}

func (f *fleet) remove(old *instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, in := range f.live {
		if in == old {
			f.live = append(f.live[:i], f.live[i+1:]...)
			return
		}
	}
}

// TestRollingRestart restarts each of three instances in turn while players
// keep arriving. Rooms fail meanwhile, so many players wait on the
// instances being restarted: a draining instance tells its clients to
// reconnect, they join again through another instance and keep their
// tickets. When rooms work again, nobody is lost (all but at most one are
// matched) and nobody is matched twice.
func TestRollingRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	addrs := []string{srv.Addr}
	check := srv.Client(t)
	rooms := matchdtest.NewFlakyRooms(t)
	rooms.Failing.Store(true)
	// A lease long enough that a reconnecting player's ticket is not
	// swept before they re-join.
	withRooms := func(c *redis.Config) { c.Rooms, c.LeaseTTL = rooms, 10*time.Second }
	start := func(name string) *instance { return startInstance(t, name, addrs, withRooms) }
	f := &fleet{live: []*instance{start("a"), start("b"), start("c")}}

	const n = 240
	type outcome struct {
		matchID, partner string
		reconnects       int
	}
	results := make([]outcome, n)
	players := make([]*player, n)
	var wg sync.WaitGroup
	var finished, reconnects atomic.Int64
	for i := range n {
		players[i] = newPlayer(t, fmt.Sprintf("r%03d", i))
		p := players[i]
		wg.Go(func() {
			defer finished.Add(1)
			defer p.done.Store(true)
			r := rand.New(rand.NewPCG(uint64(i), 11))
			// Arrivals spread over about 1.5 s, across the restarts.
			time.Sleep(time.Duration(r.IntN(1500)) * time.Millisecond)
			join := func() error {
				for range 20 { // an instance may start draining as we dial
					if err := p.dial(f.pick(r)); err != nil {
						continue
					}
					if err := p.send("join_queue"); err == nil {
						return nil
					}
				}
				return fmt.Errorf("%s: no instance took the join", p.id)
			}
			if err := join(); err != nil {
				t.Error(err)
				return
			}
			for {
				m, err := p.read(20 * time.Second)
				if err != nil || m["type"] == "reconnect" || m["type"] == "error" && m["code"] == "unavailable" {
					// The instance is going away: move on, as a client must.
					results[i].reconnects++
					reconnects.Add(1)
					if err := join(); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				switch m["type"] {
				case "queued":
				case "match_found":
					results[i].matchID, results[i].partner = m["match_id"].(string), m["partner_id"].(string)
					p.conn().CloseNow() // off to the room page
					return
				default:
					t.Errorf("%s: unexpected %v", p.id, m)
					return
				}
			}
		})
	}

	// Restart a, b and c in turn, one every 400 ms.
	for k, name := range []string{"a2", "b2", "c2"} {
		time.Sleep(400 * time.Millisecond)
		f.mu.Lock()
		old := f.live[k]
		f.mu.Unlock()
		f.remove(old)
		t0 := time.Now()
		old.stop() // graceful: drain, reconnect, 1012
		t.Logf("restart %s: stop took %v", name, time.Since(t0))
		f.mu.Lock()
		f.live = append(f.live[:k], append([]*instance{start(name)}, f.live[k:]...)...)
		f.mu.Unlock()
	}
	waiting := queueSize(t, check)
	rooms.Failing.Store(false)

	matchdtest.Eventually(t, 30*time.Second, func() bool {
		return finished.Load() >= n-1 && queueSize(t, check) <= 1
	}, "players still waiting: %d finished, queue %d", finished.Load(), queueSize(t, check))
	if finished.Load() < n {
		// The one left alone: let them leave so the goroutine ends.
		for _, p := range players {
			if !p.done.Load() {
				p.send("leave_queue")
			}
		}
	}
	wg.Wait()

	matched := 0
	byMatch := map[string][]string{}
	for i, r := range results {
		if r.matchID == "" {
			continue
		}
		matched++
		byMatch[r.matchID] = append(byMatch[r.matchID], players[i].id)
	}
	for id, ps := range byMatch {
		if len(ps) != 2 {
			t.Errorf("match %s has players %v, want two", id, ps)
			continue
		}
		a, b := ps[0], ps[1]
		var ra, rb outcome
		for i := range players {
			switch players[i].id {
			case a:
				ra = results[i]
			case b:
				rb = results[i]
			}
		}
		if ra.partner != b || rb.partner != a {
			t.Errorf("match %s is not symmetric: %s sees %s, %s sees %s", id, a, ra.partner, b, rb.partner)
		}
	}
	if matched < n-1 {
		t.Errorf("%d of %d players matched: the restarts lost players", matched, n)
	}
	if reconnects.Load() == 0 {
		t.Error("no player had to reconnect: the restarts caught nobody")
	}
	t.Logf("%d players, %d waiting when rooms recovered, %d matched, %d reconnects over 3 restarts", n, waiting, matched, reconnects.Load())
}
