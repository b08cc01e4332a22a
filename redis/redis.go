// Package redis is matchd's Redis backend (github.com/redis/go-redis/v9):
// any number of stateless matchd instances share one queue in Redis or a
// Redis Cluster, with no distributed lock and no double or lost match.
//
// Every state change that touches more than one key is one Lua script
// (join.lua, match.lua, claim.lua, requeue.lua, …; each file's header says
// why it is safe). The matching policy is Go (matchd.Policy): a join's
// script files the ticket in the pool's indexes (bucket by must-equal
// preferences, 50-point rating bands ordered by priority and seq) and
// gathers a bounded set of candidates in the same step; Go picks the best
// that fits; match.lua then commits the pair only if both tickets are
// still exactly the ones read, and writes the room, both assignments and
// the players' history and publishes the event in the same atomic step.
// A room that cannot be made is never committed, so the pair keeps its
// places. Tickets whose rules widen with waiting are looked at again by a
// sweep (matching.go).
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

	// Policy decides who may pair with whom; nil: matchd.DefaultPolicy().
	// All instances on a pool must use the same policy.
	Policy *matchd.Policy
	// Clock, when set, is the policy's clock (join times, widening,
	// history), passed to the scripts; nil: the Redis server's TIME, one
	// clock for all instances. Tests set a fake clock. Room and lease
	// expiry always use Redis time.
	Clock matchd.Clock

	Observer matchd.Observer
	Logger   *slog.Logger

	RoomTTL    time.Duration // rooms and assignments; default 2 h
	LeaseTTL   time.Duration // instance lease; default 10 s (ghosts go within LeaseTTL plus one sweep)
	MatchEvery time.Duration // periodic sweep of tickets whose rules widened; default 1 s
	RetryMin   time.Duration // first retry after a failed room; default 100 ms
	RetryMax   time.Duration // default 5 s
	// Batch is how many disjoint pairs a sweep commits in one match.lua
	// call. Default 16.
	Batch int
	// PerBand bounds the candidates a join reads from one rating band of
	// one bucket (the best-ranked first); default 8. Candidates bounds
	// them in all, per search, and the tickets per page of a sweep's
	// exhaustive search; default 128. A join that finds no partner among
	// them while more wait leaves its ticket to that search.
	PerBand, Candidates int
	EventBuffer         int // per subscriber; default 1024
	// Settlers bounds the joins this instance matches at once, each with
	// its own search and commit; default 32. A join past the bound files
	// its ticket and leaves it to the sweep, which is poked at once and
	// matches the waiting tickets in batches: under a burst, matching
	// degrades to batches instead of piling up round trips.
	Settlers int
}

// Backend is the Redis Matchmaker. Create it with New and Close it when
// done; Close does not close the client.
type Backend struct {
	cfg    Config
	c      goredis.UniversalClient
	k      keys
	policy matchd.Policy
	reach  int   // rating bands either side that can hold a partner; -1: all
	widen  int64 // ms after joining when a ticket's rules first widen; -1: never

	sweepMu sync.Mutex // one sweep at a time per instance
	// deep holds where the deep searches that the page budget cut
	// stopped, by player (searchDeep). Guarded by sweepMu.
	deep    map[string]deepCursor
	records recordCache

	kick chan struct{}
	// settlers holds a token per join being matched (Config.Settlers).
	settlers chan struct{}
	commits  chan commitRequest // joins' pairs, to the committer
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	subs    map[*subscription]struct{}
	backoff time.Duration
	retry   *time.Timer
	// inflight holds the players this instance is committing a match
	// for, each with a channel closed when that commit is done. Joins
	// and sweeps of this instance choose around them instead of racing
	// for the same partner and losing the conditional commit to each
	// other (matching.go). Guarded by mu.
	inflight map[string]chan struct{}
	// done holds the tickets this instance committed recently, so that
	// a candidate list read before such a commit is not chosen from
	// again: see goneLocked. Guarded by mu.
	done recentTickets
}

type subscription struct{ cancel context.CancelFunc }

var (
	_ matchd.Matchmaker = (*Backend)(nil)
	_ matchd.Sweeper    = (*Backend)(nil)
	_ matchd.Inspector  = (*Backend)(nil)
)

// New returns a Backend and starts its background work: the periodic
// sweep of tickets whose rules widened, the lease heartbeat and the ghost
// sweep.
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
	if cfg.Batch <= 0 {
		cfg.Batch = 16
	}
	if cfg.PerBand <= 0 {
		cfg.PerBand = 8
	}
	if cfg.Candidates <= 0 {
		cfg.Candidates = 128
	}
	if cfg.Settlers <= 0 {
		cfg.Settlers = 32
	}
	policy := matchd.DefaultPolicy()
	if cfg.Policy != nil {
		policy = *cfg.Policy
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 1024
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{
		cfg:      cfg,
		c:        cfg.Client,
		k:        newKeys(cfg.Pool),
		policy:   policy,
		reach:    reach(policy),
		widen:    firstWiden(policy),
		kick:     make(chan struct{}, 1),
		settlers: make(chan struct{}, cfg.Settlers),
		ctx:      ctx,
		cancel:   cancel,
		subs:     make(map[*subscription]struct{}),

		deep:     make(map[string]deepCursor),
		inflight: make(map[string]chan struct{}),
		commits:  make(chan commitRequest, 256),
		done:     recentTickets{seq: make(map[string]recentTicket), ring: make([]string, recentCommits)},
	}
	b.wg.Go(b.sweeper)
	b.wg.Go(b.committer)
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

// Join implements matchd.Matchmaker. join.lua adds the ticket and
// gathers its candidates in one step; the best that fits is matched at
// once.
func (b *Backend) Join(ctx context.Context, t matchd.Ticket) (matchd.JoinResult, error) {
	if t.Owner == "" {
		t.Owner = b.cfg.Instance
	}
	attrs, err := json.Marshal(ticketAttrs{Rating: t.Rating, Priority: t.Priority, Prefs: t.Prefs})
	if err != nil {
		return matchd.JoinResult{}, err
	}
	k := b.k
	readAt := time.Now()
	reply, err := joinScript.Run(ctx, b.c,
		[]string{k.queue, k.seq, k.tickets, k.owners, k.assign(t.PlayerID), k.owned(t.Owner)},
		t.PlayerID, t.Owner, attrs, k.prefix, b.nowArg(), b.bucket(t.Prefs), bandOf(t.Rating), rankOf(t.Priority),
		b.widen, b.reach, b.cfg.PerBand, b.cfg.Candidates, b.policy.History().Milliseconds(), b.policy.NoRematch.Milliseconds()).Slice()
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
		return b.added(ctx, t.PlayerID, reply, readAt)
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

// Waiting implements matchd.Inspector.
func (b *Backend) Waiting(ctx context.Context, limit int) ([]matchd.Ticket, error) {
	ids, err := b.c.ZRange(ctx, b.k.queue, 0, int64(limit-1)).Result()
	if err != nil || len(ids) == 0 {
		return nil, unavailable(err)
	}
	records, err := b.c.HMGet(ctx, b.k.tickets, ids...).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	owners, err := b.c.HMGet(ctx, b.k.owners, ids...).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	now := time.Now()
	if b.cfg.Clock != nil {
		now = b.cfg.Clock.Now()
	}
	tickets := make([]matchd.Ticket, 0, len(ids))
	for i, id := range ids {
		raw, ok := records[i].(string)
		if !ok {
			continue // the ticket went between two reads
		}
		w, err := b.decodeWaiter(id, raw, now)
		if err != nil {
			return nil, err
		}
		w.Owner, _ = owners[i].(string)
		tickets = append(tickets, w.Ticket)
	}
	return tickets, nil
}

// ActiveRooms implements matchd.Inspector.
func (b *Backend) ActiveRooms(ctx context.Context) (int, error) {
	n, err := b.c.ZCount(ctx, b.k.rooms, strconv.FormatInt(time.Now().UnixMilli(), 10), "+inf").Result()
	return int(n), unavailable(err)
}

// assignmentsChunk bounds one MGET, so a resync of many thousands of
// players does not block Redis for long.
const assignmentsChunk = 500

// Assignments implements matchd.Matchmaker. All assignment keys of a pool
// share its hash tag, so one MGET reads a whole chunk, on a cluster too.
func (b *Backend) Assignments(ctx context.Context, players []string) ([]*matchd.Room, error) {
	rooms := make([]*matchd.Room, len(players))
	for start := 0; start < len(players); start += assignmentsChunk {
		chunk := players[start:min(start+assignmentsChunk, len(players))]
		keys := make([]string, len(chunk))
		for i, p := range chunk {
			keys[i] = b.k.assign(p)
		}
		values, err := b.c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, unavailable(err)
		}
		for i, v := range values {
			if v == nil {
				continue
			}
			room, err := decodeRoom(v)
			if err != nil {
				return nil, err
			}
			rooms[start+i] = room
		}
	}
	return rooms, nil
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
		relay(ctx, ps, ch, b.cfg.Logger, "match event")
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

// poke asks the sweeper for a sweep now.
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

// retrying reports whether a retry after a failed room is scheduled.
func (b *Backend) retrying() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.retry != nil
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
			start := time.Now()
			n, err := sweepScript.Run(ctx, b.c, []string{b.k.leases, b.k.queue, b.k.tickets, b.k.owners, b.k.rooms}, b.k.prefix, 100).Int()
			if err == nil {
				b.cfg.Observer.Swept(time.Since(start), n)
			}
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

// eventJSON is json.Marshal(matchd.NewEvent(room)) built around the room's
// JSON, which the caller has already encoded. Player and match ids are
// restricted to characters that need no escaping in JSON.
func eventJSON(room matchd.Room, roomJSON []byte) []byte {
	b := make([]byte, 0, len(roomJSON)+len(room.Player1)+len(room.Player2)+len(room.MatchID)+48)
	b = append(b, `{"players":["`...)
	b = append(b, room.Player1...)
	b = append(b, `","`...)
	b = append(b, room.Player2...)
	b = append(b, `"],"match_id":"`...)
	b = append(b, room.MatchID...)
	b = append(b, `","room":`...)
	b = append(b, roomJSON...)
	return append(b, '}')
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

// toInt reads an integer reply: Redis's integer, or the string that a
// script writes for a number too large for tostring's 14 digits.
func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	}
	return 0
}

// unavailable classifies a Redis error: to players, Redis being down or
// slow means matchmaking is unavailable for now.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &matchd.Error{Code: matchd.EUnavailable, Message: "matchmaking is temporarily unavailable", Err: err}
}
