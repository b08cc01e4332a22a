package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/matchd/matchd"
)

// PoolSize implements matchd.Matchmaker: the waiting tickets of the
// buckets that fit p's, summed from the bucket counts in one script.
func (b *Backend) PoolSize(ctx context.Context, p matchd.Preferences) (int, error) {
	n, err := poolSizeScript.Run(ctx, b.c, []string{b.k.buckets}, b.bucket(p)).Int()
	return n, unavailable(err)
}

// Release implements matchd.Matchmaker.
func (b *Backend) Release(ctx context.Context, matchID string) error {
	n, err := releaseScript.Run(ctx, b.c, []string{b.k.room(matchID)}, b.k.prefix, matchID).Int()
	if err != nil {
		return unavailable(err)
	}
	if n == 0 {
		return matchd.Errorf(matchd.ENotFound, "no such match")
	}
	return nil
}

// Requeue implements matchd.Matchmaker. It reads the ticket the player
// was matched by (kept with the room), raises its priority and hands it to
// requeue.lua, which restores it only if it is still the one read and the
// player's assignment is still matchID; then it matches the player as a
// join would.
func (b *Backend) Requeue(ctx context.Context, matchID, player, owner string, boost int) (matchd.JoinResult, error) {
	if owner == "" {
		owner = b.cfg.Instance
	}
	k := b.k
	for range 3 {
		raw, err := b.c.HGet(ctx, k.matched(matchID), player).Result()
		if errors.Is(err, goredis.Nil) {
			return matchd.JoinResult{}, matchd.Errorf(matchd.ENotFound, "no such match")
		}
		if err != nil {
			return matchd.JoinResult{}, unavailable(err)
		}
		var rec ticketRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return matchd.JoinResult{}, fmt.Errorf("matched ticket of %s: %w", player, err)
		}
		attrs := rec.Attrs
		attrs.Priority += boost
		attrsJSON, err := json.Marshal(attrs)
		if err != nil {
			return matchd.JoinResult{}, err
		}
		readAt := time.Now()
		reply, err := requeueScript.Run(ctx, b.c,
			[]string{k.queue, k.tickets, k.owners, k.assign(player), k.owned(owner), k.room(matchID), k.matched(matchID)},
			player, owner, attrsJSON, k.prefix, b.nowArg(), b.bucket(attrs.Prefs), bandOf(attrs.Rating), rankOf(attrs.Priority),
			matchID, raw, b.reach, b.cfg.PerBand, b.cfg.Candidates, b.policy.History().Milliseconds()).Slice()
		if err != nil {
			return matchd.JoinResult{}, unavailable(err)
		}
		switch status(reply) {
		case "notfound":
			return matchd.JoinResult{}, matchd.Errorf(matchd.ENotFound, "no such match")
		case "matched":
			room, err := decodeRoom(reply[1])
			return matchd.JoinResult{Room: room}, err
		case "queued", "absent":
			return matchd.JoinResult{QueueSize: int(toInt(reply[1]))}, nil
		case "stale":
			continue
		case "added":
			return b.added(ctx, player, reply, readAt)
		default:
			return matchd.JoinResult{}, fmt.Errorf("requeue.lua: unexpected reply %v", reply)
		}
	}
	return matchd.JoinResult{}, fmt.Errorf("requeue of %s: the matched ticket keeps changing", player)
}

// added finishes a join or requeue whose script, sent at readAt, replied
// {"added", size, now, seq, record, more, candidates…}: it matches the new
// ticket with its best candidate at once.
func (b *Backend) added(ctx context.Context, player string, reply []any, readAt time.Time) (matchd.JoinResult, error) {
	size, now := int(toInt(reply[1])), time.UnixMilli(toInt(reply[2]))
	raw, _ := reply[4].(string)
	me, err := b.decodeWaiter(player, raw, now)
	if err != nil {
		return matchd.JoinResult{}, err
	}
	more := toInt(reply[5]) == 1
	cands, err := b.decodeWaiters(reply[6:], now)
	if err != nil {
		return matchd.JoinResult{}, err
	}
	res := matchd.JoinResult{Added: true, QueueSize: size}
	select {
	case b.settlers <- struct{}{}:
		defer func() { <-b.settlers }()
	default:
		// As many joins as Settlers are being matched already: this
		// ticket is left to the sweep, poked now, which matches waiting
		// tickets in batches.
		b.rewake(ctx, []wakeAt{{me.Ticket, now}})
		b.poke()
		return res, nil
	}
	room, size, err := b.settle(ctx, me, now, cands, more, readAt, size)
	if err != nil {
		// The ticket is in. Make it due, so that the next sweep looks
		// at it; if Redis cannot take that either, its next widening or
		// the next join that fits it will.
		b.cfg.Logger.Warn("matching after join failed", "err", err)
		wctx, cancel := context.WithTimeout(b.ctx, time.Second)
		b.rewake(wctx, []wakeAt{{me.Ticket, now}})
		cancel()
		b.poke()
		return res, nil
	}
	res.Room, res.QueueSize = room, size
	return res, nil
}
