package redis_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/redistest"
)

// TestModel runs the shared model of the matching policy on the Redis
// backend, each case on a pool of its own; a bounded run reads one ticket
// in all.
func TestModel(t *testing.T) {
	client := redistest.Start(t, redistest.Options{}).Client(t)
	pools := 0
	matchdtest.RunModel(t, func(t *testing.T, cfg matchdtest.ModelConfig) matchdtest.ModelBackend {
		pools++
		bound := 1
		if cfg.Exact {
			bound = 1 << 10
		}
		pool := fmt.Sprintf("model-%s%d", t.Name(), pools)
		return redis.New(redis.Config{
			Client:     client,
			Rooms:      cfg.Rooms,
			Policy:     &cfg.Policy,
			Clock:      cfg.Clock,
			Observer:   cfg.Observer,
			Pool:       pool,
			Channel:    "match_channel:" + pool,
			MatchEvery: time.Hour, // only the model's sweeps
			PerBand:    bound,
			Candidates: bound,
		})
	})
}
