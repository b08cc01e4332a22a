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
