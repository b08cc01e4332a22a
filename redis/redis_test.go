package redis_test

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// factory returns backends on client, each on a pool and channel of its
// own so that tests sharing one Redis do not see each other.
func factory(client goredis.UniversalClient) matchdtest.Factory {
	n := 0
	return func(t *testing.T, rooms matchd.RoomMaker) matchd.Matchmaker {
		n++
		pool := fmt.Sprintf("conf%d", n)
		b := redis.New(redis.Config{
			Client:     client,
			Rooms:      rooms,
			Pool:       pool,
			Channel:    "match_channel:" + pool,
			RetryMin:   5 * time.Millisecond,
			RetryMax:   20 * time.Millisecond,
			MatchEvery: 50 * time.Millisecond,
		})
		t.Cleanup(func() { b.Close() })
		return b
	}
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	matchdtest.Run(t, factory(srv.Client(t)))
}

func TestConformanceCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	matchdtest.Run(t, factory(cluster.Client(t)))
}

// TestScriptsReloadAfterFlush: after Redis loses its script cache (as on a
// restart or failover), joins and the pipelined match commits load the
// scripts again by themselves.
func TestScriptsReloadAfterFlush(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client := srv.Client(t)
	b := factory(client)(t, matchdtest.NewFlakyRooms(t))
	ctx := t.Context()
	for round := range 3 {
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		p1, p2 := fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)
		if _, err := b.Join(ctx, matchd.Ticket{PlayerID: p1}); err != nil {
			t.Fatalf("join after SCRIPT FLUSH: %v", err)
		}
		client.ScriptFlush(ctx)
		res, err := b.Join(ctx, matchd.Ticket{PlayerID: p2})
		if err != nil {
			t.Fatalf("join after SCRIPT FLUSH: %v", err)
		}
		// The match may be committed by this join's pass or, if the
		// commit had to reload the script, still by it: either way p1
		// and p2 end up matched.
		matchdtest.Eventually(t, 5*time.Second, func() bool {
			r, _ := b.Assignment(ctx, p1)
			return r != nil && r.Has(p2)
		}, "round %d: %s and %s not matched after SCRIPT FLUSH (join result %+v)", round, p1, p2, res)
	}
}

func TestLimiterConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client := srv.Client(t)
	n := 0
	matchdtest.RunLimiter(t, func(t *testing.T, w matchd.Window) matchd.Limiter {
		n++
		return redis.NewLimiter(client, fmt.Sprintf("conf%d", n), w)
	})
}

// policyFactory returns policy backends on client, each on a pool and
// channel of its own.
func policyFactory(client goredis.UniversalClient) matchdtest.PolicyFactory {
	n := 0
	return func(t *testing.T, cfg matchdtest.PolicyConfig) matchd.Matchmaker {
		n++
		pool := fmt.Sprintf("policy%d", n)
		b := redis.New(redis.Config{
			Client:     client,
			Rooms:      cfg.Rooms,
			Policy:     &cfg.Policy,
			Clock:      cfg.Clock,
			Pool:       pool,
			Channel:    "match_channel:" + pool,
			RetryMin:   5 * time.Millisecond,
			RetryMax:   20 * time.Millisecond,
			MatchEvery: 50 * time.Millisecond,
		})
		t.Cleanup(func() { b.Close() })
		return b
	}
}

func TestPolicy(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	matchdtest.RunPolicy(t, policyFactory(srv.Client(t)))
}

func TestPolicyCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	matchdtest.RunPolicy(t, policyFactory(cluster.Client(t)))
}
