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

// backends returns a constructor of backends on client, each on a pool
// and channel of its own (named after kind) so that tests sharing one
// Redis do not see each other, retrying failed rooms within milliseconds.
func backends(client goredis.UniversalClient, kind string) func(t *testing.T, cfg redis.Config) *redis.Backend {
	n := 0
	return func(t *testing.T, cfg redis.Config) *redis.Backend {
		n++
		cfg.Client = client
		cfg.Pool = fmt.Sprintf("%s%d", kind, n)
		cfg.Channel = "match_channel:" + cfg.Pool
		cfg.RetryMin, cfg.RetryMax = 5*time.Millisecond, 20*time.Millisecond
		cfg.MatchEvery = 50 * time.Millisecond
		b := redis.New(cfg)
		t.Cleanup(func() { b.Close() })
		return b
	}
}

// factory returns conformance backends on client.
func factory(client goredis.UniversalClient) matchdtest.Factory {
	newBackend := backends(client, "conf")
	return func(t *testing.T, rooms matchd.RoomMaker) matchd.Matchmaker {
		return newBackend(t, redis.Config{Rooms: rooms})
	}
}

// policyFactory returns policy backends on client, on the suite's clock.
func policyFactory(client goredis.UniversalClient) matchdtest.PolicyFactory {
	newBackend := backends(client, "policy")
	return func(t *testing.T, cfg matchdtest.PolicyConfig) matchd.Matchmaker {
		return newBackend(t, redis.Config{Rooms: cfg.Rooms, Policy: &cfg.Policy, Clock: cfg.Clock})
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

// sessionFactory returns instances of one fresh session store on client,
// each on a pool and channel of its own.
func sessionFactory(client goredis.UniversalClient) matchdtest.SessionStoreFactory {
	n := 0
	return func(t *testing.T) func() matchd.SessionStore {
		n++
		pool := fmt.Sprintf("sess%d", n)
		return func() matchd.SessionStore {
			return redis.NewSessions(redis.SessionsConfig{Client: client, Pool: pool, Channel: "rooms:" + pool})
		}
	}
}

func TestSessionStoreConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	matchdtest.RunSessionStore(t, sessionFactory(srv.Client(t)))
}

func TestSessionStoreConformanceCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	matchdtest.RunSessionStore(t, sessionFactory(cluster.Client(t)))
}

func TestPolicy(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	matchdtest.RunPolicy(t, policyFactory(srv.Client(t)))
}

func TestPolicyCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	matchdtest.RunPolicy(t, policyFactory(cluster.Client(t)))
}
