package redis

import (
	"context"
	_ "embed"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/matchd/matchd"
)

//go:embed window.lua
var windowSrc string

var windowScript = goredis.NewScript(windowSrc)

// Limiter is the matchd.Limiter shared by all instances on one Redis: one
// window log per key, checked and recorded atomically by window.lua.
type Limiter struct {
	c    goredis.UniversalClient
	name string
	w    matchd.Window
}

var _ matchd.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter for w whose keys are
// matchd:limit:<name>:{<key>}; the hash tag spreads players over a
// cluster's nodes.
func NewLimiter(c goredis.UniversalClient, name string, w matchd.Window) *Limiter {
	return &Limiter{c: c, name: name, w: w}
}

// Allow implements matchd.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string) (time.Duration, bool, error) {
	ms, err := windowScript.Run(ctx, l.c, []string{"matchd:limit:" + l.name + ":{" + key + "}"}, l.w.Max, l.w.Per.Milliseconds()).Int64()
	if err != nil {
		return 0, false, unavailable(err)
	}
	if ms < 0 {
		return 0, true, nil
	}
	return time.Duration(ms) * time.Millisecond, false, nil
}
