// Package redis is matchd's Redis backend (github.com/redis/go-redis/v9):
// any number of stateless matchd instances share one queue in Redis or a
// Redis Cluster, with no distributed lock and no double or lost match.
//
// Every state change that touches more than one key is one Lua script
// (join.lua, match.lua, leave.lua, lease.lua, sweep.lua; each file's header
// says why it is safe). Pairs are chosen in Go, by the same core code as
// the embedded backend, from a read of the oldest tickets; match.lua then
// commits the pair only if both tickets are still exactly the ones read,
// and writes the room and both assignments and publishes the event in the
// same atomic step. A room that cannot be made is never committed, so the
// pair keeps its places.
//
// Pub/sub is a wake-up, not the record: assignments stay in Redis for the
// room's lifetime, and a subscription that may have missed a message (a
// reconnect, a lost lease) is ended so that its owner re-reads them.
//
// Ghosts: each instance holds a lease in Redis, renewed every LeaseTTL/3.
// Tickets record their owning instance; once an instance's lease expires,
// sweep.lua removes the tickets it still owns. docs/redis.md has the
// details and the key layout.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/matchd/matchd"
)

// Config configures a Backend. Client and Rooms are required.
type Config struct {
	Client goredis.UniversalClient // a *goredis.Client or *goredis.ClusterClient
	Rooms  matchd.RoomMaker

	Pool     string // matching pool; default "default"
	Channel  string // pub/sub channel of match events; default "match_channel"
	Instance string // this instance's lease name; default random. Use the gateway's instance id.

	Observer matchd.Observer
	Logger   *slog.Logger

	RoomTTL    time.Duration // rooms and assignments; default 2 h
	LeaseTTL   time.Duration // instance lease; default 10 s (ghosts go within LeaseTTL plus one sweep)
	MatchEvery time.Duration // periodic matching pass, for pairs no join woke; default 1 s
	RetryMin   time.Duration // first retry after a failed room; default 100 ms
	RetryMax   time.Duration // default 5 s
	// Peek is how many of the oldest tickets a matching pass reads. Default 2.
	Peek        int
	EventBuffer int // per subscriber; default 1024
}

// Backend is the Redis Matchmaker. Create it with New and Close it when
// done; Close does not close the client.
type Backend struct {
	cfg Config
	c   goredis.UniversalClient
	k   keys

	passMu sync.Mutex // one matching pass at a time per instance

	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	subs    map[*subscription]struct{}
	backoff time.Duration
	retry   *time.Timer
}

type subscription struct{ cancel context.CancelFunc }

var _ matchd.Matchmaker = (*Backend)(nil)

// New returns a Backend and starts its background work: the periodic
// matching pass, the lease heartbeat and the ghost sweep.
func New(cfg Config) *Backend {
	if cfg.Pool == "" {
		cfg.Pool = "default"
	}
	if cfg.Channel == "" {
		cfg.Channel = "match_channel"
	}
	if cfg.Instance == "" {
		cfg.Instance = matchd.NewMatchID()[:12]
	}
	if cfg.Observer == nil {
		cfg.Observer = matchd.NopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RoomTTL <= 0 {
		cfg.RoomTTL = 2 * time.Hour
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.MatchEvery <= 0 {
		cfg.MatchEvery = time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(5*time.Second, cfg.RetryMin)
	}
	if cfg.Peek < 2 {
		cfg.Peek = 2
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 1024
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{
		cfg:    cfg,
		c:      cfg.Client,
		k:      newKeys(cfg.Pool),
		kick:   make(chan struct{}, 1),
		ctx:    ctx,
		cancel: cancel,
		subs:   make(map[*subscription]struct{}),
	}
	b.wg.Go(b.matcher)
	b.wg.Go(b.keeper)
	return b
}

// Close stops the background work and ends all subscriptions. Tickets stay
// in Redis: a player whose socket moves to another instance keeps their
// place, and the others go when this instance's lease expires.
func (b *Backend) Close() error {
	b.cancel()
	b.mu.Lock()
	if b.retry != nil {
		b.retry.Stop()
	}
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

// ticketRecord is the JSON of a ticket in the tickets hash; join.lua
// writes it around the attrs that Go encodes.
type ticketRecord struct {
	Seq      uint64      `json:"seq"`
	JoinedAt int64       `json:"joined_at"` // ms, Redis server time
	Attrs    ticketAttrs `json:"attrs"`
}

type ticketAttrs struct {
	Rating   float64 `json:"rating"`
	Priority int     `json:"priority"`
}

// Join implements matchd.Matchmaker.
func (b *Backend) Join(ctx context.Context, t matchd.Ticket) (matchd.JoinResult, error) {
	if t.Owner == "" {
		t.Owner = b.cfg.Instance
	}
	attrs, err := json.Marshal(ticketAttrs{Rating: t.Rating, Priority: t.Priority})
	if err != nil {
		return matchd.JoinResult{}, err
	}
	k := b.k
	reply, err := joinScript.Run(ctx, b.c,
		[]string{k.queue, k.seq, k.tickets, k.owners, k.assign(t.PlayerID), k.owned(t.Owner)},
		t.PlayerID, t.Owner, attrs, k.prefix, b.cfg.Peek).Slice()
	if err != nil {
		return matchd.JoinResult{}, unavailable(err)
	}
	switch status(reply) {
	case "matched":
		room, err := decodeRoom(reply[1])
		return matchd.JoinResult{Room: room}, err
	case "queued":
		return matchd.JoinResult{QueueSize: int(toInt(reply[1]))}, nil
	case "added":
		size := int(toInt(reply[1]))
		head, err := parseHead(reply[3:])
		if err != nil {
			return matchd.JoinResult{}, err
		}
		res := matchd.JoinResult{Added: true, QueueSize: size}
		if len(head) >= 2 {
			rooms, size, err := b.pass(ctx, head)
			if err != nil {
				// The ticket is in; the periodic pass will match it.
				b.cfg.Logger.Warn("matching after join failed", "err", err)
				b.poke()
			} else {
				res.QueueSize = size
			}
			for i := range rooms {
				if rooms[i].Has(t.PlayerID) {
					res.Room = &rooms[i]
				}
			}
		}
		return res, nil
	default:
		return matchd.JoinResult{}, fmt.Errorf("join.lua: unexpected reply %v", reply)
	}
}

// Leave implements matchd.Matchmaker.
func (b *Backend) Leave(ctx context.Context, player string) (matchd.LeaveResult, error) {
	return b.leave(ctx, player, "")
}

// Drop implements matchd.Matchmaker.
func (b *Backend) Drop(ctx context.Context, player, owner string) (matchd.LeaveResult, error) {
	if owner == "" {
		owner = b.cfg.Instance
	}
	return b.leave(ctx, player, owner)
}

func (b *Backend) leave(ctx context.Context, player, owner string) (matchd.LeaveResult, error) {
	k := b.k
	reply, err := leaveScript.Run(ctx, b.c,
		[]string{k.queue, k.tickets, k.owners, k.assign(player)},
		player, owner, k.prefix).Slice()
	if err != nil {
		return matchd.LeaveResult{}, unavailable(err)
	}
	switch status(reply) {
	case "matched":
		room, err := decodeRoom(reply[1])
		return matchd.LeaveResult{Room: room}, err
	case "removed":
		return matchd.LeaveResult{Removed: true}, nil
	default:
		return matchd.LeaveResult{}, nil
	}
}

// QueueSize implements matchd.Matchmaker.
func (b *Backend) QueueSize(ctx context.Context) (int, error) {
	n, err := b.c.ZCard(ctx, b.k.queue).Result()
	return int(n), unavailable(err)
}

// Room implements matchd.Matchmaker.
func (b *Backend) Room(ctx context.Context, matchID string) (matchd.Room, error) {
	s, err := b.c.Get(ctx, b.k.room(matchID)).Result()
	if errors.Is(err, goredis.Nil) {
		return matchd.Room{}, matchd.Errorf(matchd.ENotFound, "no such match")
	}
	if err != nil {
		return matchd.Room{}, unavailable(err)
	}
	room, err := decodeRoom(s)
	if err != nil {
		return matchd.Room{}, err
	}
	return *room, nil
}

// Assignment implements matchd.Matchmaker.
func (b *Backend) Assignment(ctx context.Context, player string) (*matchd.Room, error) {
	s, err := b.c.Get(ctx, b.k.assign(player)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return decodeRoom(s)
}

// Ping implements matchd.Matchmaker.
func (b *Backend) Ping(ctx context.Context) error {
	return unavailable(b.c.Ping(ctx).Err())
}

// Subscribe implements matchd.Matchmaker. The subscription is confirmed by
// Redis before Subscribe returns, so no event published afterwards is
// missed unless the channel is closed.
func (b *Backend) Subscribe(ctx context.Context) (<-chan matchd.Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	ps := b.c.Subscribe(ctx, b.cfg.Channel)
	if _, err := ps.Receive(ctx); err != nil {
		cancel()
		ps.Close()
		return nil, unavailable(err)
	}
	sub := &subscription{cancel: cancel}
	b.mu.Lock()
	b.subs[sub] = struct{}{}
	b.mu.Unlock()

	ch := make(chan matchd.Event, b.cfg.EventBuffer)
	// Receive does not return when ctx ends while it waits on the socket;
	// closing the PubSub makes it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	go func() {
		defer func() {
			stop()
			b.mu.Lock()
			delete(b.subs, sub)
			b.mu.Unlock()
			cancel()
			ps.Close()
			close(ch)
		}()
		for {
			msg, err := ps.Receive(ctx)
			if err != nil {
				if ctx.Err() == nil {
					b.cfg.Logger.Warn("match event subscription lost", "err", err)
				}
				return
			}
			switch m := msg.(type) {
			case *goredis.Subscription:
				// go-redis re-subscribed after a reconnect: messages sent
				// in the gap are gone, so end here and let the owner
				// re-read assignments.
				return
			case *goredis.Message:
				var ev matchd.Event
				if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil {
					b.cfg.Logger.Warn("undecodable match event", "err", err)
					continue
				}
				select {
				case ch <- ev:
				default:
					b.cfg.Logger.Warn("dropping slow match-event subscriber")
					return
				}
			}
		}
	}()
	return ch, nil
}

// endSubscriptions closes every subscription, so that their owners
// resubscribe and re-read what they may have missed.
func (b *Backend) endSubscriptions() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.cancel()
	}
}

// pass forms matches from head (the oldest tickets, oldest first) until
// no pair remains, and returns the rooms made and the last queue size seen.
func (b *Backend) pass(ctx context.Context, head []matchd.Ticket) ([]matchd.Room, int, error) {
	b.passMu.Lock()
	defer b.passMu.Unlock()
	var rooms []matchd.Room
	size := len(head)
	for len(head) >= 2 {
		q := matchd.NewQueue()
		for _, t := range head {
			q.Add(t)
		}
		p1, p2, ok := q.Pair(matchd.AnyPair)
		if !ok {
			break
		}
		room, err := b.cfg.Rooms.MakeRoom(ctx, p1, p2)
		if err != nil {
			b.cfg.Observer.RoomFailed(err)
			b.cfg.Logger.Warn("room creation failed; pair stays queued", "err", err)
			b.scheduleRetry()
			return rooms, size, nil
		}
		ok, now, n, next, err := b.commit(ctx, p1, p2, room)
		if err != nil {
			return rooms, size, err
		}
		if ok {
			b.resetBackoff()
			b.cfg.Observer.Matched(room, [2]time.Duration{now.Sub(p1.JoinedAt), now.Sub(p2.JoinedAt)})
			rooms = append(rooms, room)
		}
		head, size = next, n
	}
	return rooms, size, nil
}

// commit runs match.lua for p1 and p2 in room. ok is false when either
// ticket changed since it was read; next is the queue's head either way.
func (b *Backend) commit(ctx context.Context, p1, p2 matchd.Ticket, room matchd.Room) (ok bool, now time.Time, size int, next []matchd.Ticket, err error) {
	roomJSON, err := json.Marshal(room)
	if err != nil {
		return false, now, 0, nil, err
	}
	event, err := json.Marshal(matchd.NewEvent(room))
	if err != nil {
		return false, now, 0, nil, err
	}
	k := b.k
	reply, err := matchScript.Run(ctx, b.c,
		[]string{k.queue, k.tickets, k.owners, k.assign(p1.PlayerID), k.assign(p2.PlayerID), k.room(room.MatchID)},
		p1.PlayerID, strconv.FormatUint(p1.Seq, 10), p2.PlayerID, strconv.FormatUint(p2.Seq, 10),
		roomJSON, b.cfg.RoomTTL.Milliseconds(), b.cfg.Channel, event, k.prefix, b.cfg.Peek).Slice()
	if err != nil {
		return false, now, 0, nil, unavailable(err)
	}
	now = time.UnixMilli(toInt(reply[1]))
	next, err = parseHead(reply[3:])
	return status(reply) == "ok", now, int(toInt(reply[2])), next, err
}

// matchQueued runs a pass from a fresh read of the queue's head.
func (b *Backend) matchQueued(ctx context.Context) error {
	ids, err := b.c.ZRange(ctx, b.k.queue, 0, int64(b.cfg.Peek-1)).Result()
	if err != nil || len(ids) < 2 {
		return unavailable(err)
	}
	records, err := b.c.HMGet(ctx, b.k.tickets, ids...).Result()
	if err != nil {
		return unavailable(err)
	}
	flat := make([]any, 0, 2*len(ids))
	for i, id := range ids {
		flat = append(flat, id, records[i])
	}
	head, err := parseHead(flat)
	if err != nil {
		return err
	}
	_, _, err = b.pass(ctx, head)
	return err
}

// matcher runs matching passes that no join triggered: periodically (for
// tickets that arrived through Redis while this instance could not match,
// e.g. after an outage) and when a retry after a failed room is due.
func (b *Backend) matcher() {
	tick := time.NewTicker(b.cfg.MatchEvery)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
		case <-b.kick:
		}
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		if err := b.matchQueued(ctx); err != nil && b.ctx.Err() == nil {
			b.cfg.Logger.Debug("matching pass failed", "err", err)
		}
		cancel()
	}
}

// poke asks the matcher for a pass now.
func (b *Backend) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *Backend) scheduleRetry() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.retry != nil || b.ctx.Err() != nil {
		return
	}
	b.backoff = min(max(2*b.backoff, b.cfg.RetryMin), b.cfg.RetryMax)
	b.retry = time.AfterFunc(b.backoff, func() {
		b.mu.Lock()
		b.retry = nil
		b.mu.Unlock()
		b.poke()
	})
}

func (b *Backend) resetBackoff() {
	b.mu.Lock()
	b.backoff = 0
	b.mu.Unlock()
}

// keeper renews this instance's lease and sweeps the tickets of dead
// instances. It sweeps only after holding its own lease for a full
// LeaseTTL without a gap: after an outage every live instance then has had
// the time to renew its lease before anyone judges it dead.
func (b *Backend) keeper() {
	renew := time.NewTicker(b.cfg.LeaseTTL / 3)
	defer renew.Stop()
	var healthySince time.Time
	first := true
	for {
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.LeaseTTL/3)
		missing, err := leaseScript.Run(ctx, b.c, []string{b.k.leases}, b.cfg.Instance, b.cfg.LeaseTTL.Milliseconds()).Int()
		switch {
		case err != nil:
			if b.ctx.Err() == nil {
				b.cfg.Logger.Warn("renewing the instance lease failed", "err", err)
			}
			healthySince = time.Time{}
		case missing == 1 && !first:
			// Our lease had expired and our tickets may have been swept:
			// subscribers resync, and the gateway re-joins its players.
			b.cfg.Logger.Error("instance lease had expired; resyncing players")
			b.endSubscriptions()
			fallthrough
		default:
			first = false
			if healthySince.IsZero() {
				healthySince = time.Now()
			}
		}
		if !healthySince.IsZero() && time.Since(healthySince) >= b.cfg.LeaseTTL {
			n, err := sweepScript.Run(ctx, b.c, []string{b.k.leases, b.k.queue, b.k.tickets, b.k.owners}, b.k.prefix, 100).Int()
			if err != nil && b.ctx.Err() == nil {
				b.cfg.Logger.Warn("ghost sweep failed", "err", err)
			} else if n > 0 {
				b.cfg.Logger.Info("removed tickets of dead instances", "tickets", n)
			}
		}
		cancel()
		select {
		case <-b.ctx.Done():
			return
		case <-renew.C:
		}
	}
}

// parseHead decodes the (player, ticket JSON) pairs a script returns.
func parseHead(flat []any) ([]matchd.Ticket, error) {
	out := make([]matchd.Ticket, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		player, _ := flat[i].(string)
		raw, ok := flat[i+1].(string)
		if !ok {
			continue // removed between ZRANGE and HMGET (matchQueued's two reads)
		}
		var rec ticketRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return nil, fmt.Errorf("ticket of %s: %w", player, err)
		}
		out = append(out, matchd.Ticket{
			PlayerID: player,
			Seq:      rec.Seq,
			JoinedAt: time.UnixMilli(rec.JoinedAt),
			Rating:   rec.Attrs.Rating,
			Priority: rec.Attrs.Priority,
		})
	}
	return out, nil
}

func decodeRoom(v any) (*matchd.Room, error) {
	s, _ := v.(string)
	var r matchd.Room
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, fmt.Errorf("stored room: %w", err)
	}
	return &r, nil
}

func status(reply []any) string {
	if len(reply) == 0 {
		return ""
	}
	s, _ := reply[0].(string)
	return s
}

func toInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

// unavailable classifies a Redis error: to players, Redis being down or
// slow means matchmaking is unavailable for now.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &matchd.Error{Code: matchd.EUnavailable, Message: "matchmaking is temporarily unavailable", Err: err}
}
