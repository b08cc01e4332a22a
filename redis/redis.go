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
	"strings"
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
	// Batch is how many disjoint pairs a pass commits in one match.lua
	// call. Default 16.
	Batch int
	// Peek is how many of the oldest tickets a matching pass reads.
	// Default 4*Batch: enough for two batches, one in flight while the
	// next is chosen.
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
	// seen is the ticket counter of the newest head a finished pass of
	// this instance looked at: every ticket with seq <= seen that was
	// queued then has been considered for pairing. Guarded by passMu.
	seen uint64
	// known holds the tickets of the last head a pass decoded, so that a
	// ticket seen again in the next head is not decoded again. Guarded by
	// passMu.
	known map[string]matchd.Ticket

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
	if cfg.Batch <= 0 {
		cfg.Batch = 16
	}
	if cfg.Peek < 2 {
		cfg.Peek = 4 * cfg.Batch
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

// joinPeek is how many of the oldest tickets join.lua returns. Two are
// enough to start a pass: if more wait, the first commit's reply brings a
// full head. Returning Peek tickets to every join would cost Redis dearly
// whenever a backlog builds up.
const joinPeek = 2

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
		t.PlayerID, t.Owner, attrs, k.prefix, joinPeek).Slice()
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
		size, seq := int(toInt(reply[1])), uint64(toInt(reply[3]))
		head, err := parseHead(reply[4:])
		if err != nil {
			return matchd.JoinResult{}, err
		}
		res := matchd.JoinResult{Added: true, QueueSize: size}
		if len(head) >= 2 {
			rooms, size, err := b.pass(ctx, head, seq, seq)
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

// errPolicyPending is returned by the operations the matching policy and
// the room lifecycle add until the Redis backend implements them.
var errPolicyPending = matchd.Errorf(matchd.EUnavailable, "not supported by the Redis backend yet")

// PoolSize implements matchd.Matchmaker. Not yet implemented: see
// errPolicyPending.
func (b *Backend) PoolSize(context.Context, matchd.Preferences) (int, error) {
	return 0, errPolicyPending
}

// Requeue implements matchd.Matchmaker. Not yet implemented: see
// errPolicyPending.
func (b *Backend) Requeue(context.Context, string, string, string, int) (matchd.JoinResult, error) {
	return matchd.JoinResult{}, errPolicyPending
}

// Release implements matchd.Matchmaker. Not yet implemented: see
// errPolicyPending.
func (b *Backend) Release(context.Context, string) error { return errPolicyPending }

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
	flat := make([]any, 0, 2*len(ids))
	for i, id := range ids {
		flat = append(flat, id, records[i])
	}
	ownerOf := make(map[string]string, len(ids))
	for i, id := range ids {
		ownerOf[id], _ = owners[i].(string)
	}
	tickets, err := parseHead(flat)
	for i := range tickets {
		tickets[i].Owner = ownerOf[tickets[i].PlayerID]
	}
	return tickets, err
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

// pass forms matches from head (the oldest tickets, oldest first, read
// when the ticket counter was headSeq) until no pair remains, and returns
// the rooms made and the last queue size seen.
//
// Passes of one instance run one at a time. A pass for a new ticket (mine,
// its seq) is skipped when a pass that finished meanwhile had already
// looked at a head that included it: that pass matched whatever could be
// matched, and repeating it from an older read would only lose the
// commit-if-unchanged check to it.
//
// Within a pass, batches are double-buffered: while one batch's commits
// run in Redis, the next is chosen from the tickets not in flight and
// sent, so Redis and this process work at the same time instead of taking
// turns. Batches are disjoint, so they cannot conflict with each other.
func (b *Backend) pass(ctx context.Context, head []matchd.Ticket, headSeq, mine uint64) ([]matchd.Room, int, error) {
	b.passMu.Lock()
	defer b.passMu.Unlock()
	if mine != 0 && b.seen >= mine {
		return nil, len(head), nil
	}
	var rooms []matchd.Room
	size := len(head)
	var inflight *flight
	stopped := false // a room failed: finish what is in flight, start nothing
	for {
		var next *flight
		if !stopped {
			pairs, made, failed := b.choose(ctx, head, inflight)
			stopped = failed
			if len(pairs) > 0 {
				next = b.send(ctx, pairs, made)
			}
		}
		if inflight == nil && next == nil {
			break
		}
		if inflight != nil {
			if err := inflight.wait(); err != nil {
				if next != nil && next.wait() == nil {
					rooms = append(rooms, b.record(next)...)
				}
				return rooms, size, err
			}
			rooms = append(rooms, b.record(inflight)...)
			var err error
			if head, err = b.decodeHead(inflight.raw); err != nil {
				return rooms, size, err
			}
			headSeq, size = inflight.seq, inflight.size
		}
		inflight = next
	}
	b.seen = max(b.seen, headSeq)
	return rooms, size, nil
}

// choose picks up to Batch disjoint pairs by the core's rule from the
// tickets of head that are not in flight, in the order the rule gives,
// and makes their rooms. It stops at the first room that cannot be made
// (failed), so that no later pair overtakes that one; the failed pair
// keeps its place and a retry is scheduled.
func (b *Backend) choose(ctx context.Context, head []matchd.Ticket, inflight *flight) (pairs [][2]matchd.Ticket, rooms []matchd.Room, failed bool) {
	q := matchd.NewQueue()
	for _, t := range head {
		if !inflight.has(t.PlayerID) {
			q.Add(t)
		}
	}
	for len(pairs) < b.cfg.Batch {
		p1, p2, ok := q.Pair(matchd.AnyPair)
		if !ok {
			break
		}
		room, err := b.cfg.Rooms.MakeRoom(ctx, p1, p2)
		if err != nil {
			b.cfg.Observer.RoomFailed(err)
			b.cfg.Logger.Warn("room creation failed; pair stays queued", "err", err)
			b.scheduleRetry()
			return pairs, rooms, true
		}
		q.Remove(p1.PlayerID)
		q.Remove(p2.PlayerID)
		pairs = append(pairs, [2]matchd.Ticket{p1, p2})
		rooms = append(rooms, room)
	}
	return pairs, rooms, false
}

// flight is a batch of match commits on its way through Redis.
type flight struct {
	pairs [][2]matchd.Ticket
	rooms []matchd.Room
	done  chan struct{}

	// Set when done is closed.
	err  error
	ok   []bool    // ok[i]: pair i was committed
	now  time.Time // Redis time of the commit
	size int       // queue size after the batch
	seq  uint64    // the ticket counter when the head was read
	raw  []any     // the head (player, ticket JSON, …), decoded by the pass
}

func (f *flight) has(player string) bool {
	if f == nil {
		return false
	}
	for _, p := range f.pairs {
		if p[0].PlayerID == player || p[1].PlayerID == player {
			return true
		}
	}
	return false
}

func (f *flight) wait() error {
	<-f.done
	return f.err
}

// record reports the committed matches of a finished flight and returns
// their rooms.
func (b *Backend) record(f *flight) []matchd.Room {
	var rooms []matchd.Room
	for i, p := range f.pairs {
		if f.ok[i] {
			b.cfg.Observer.Matched(f.rooms[i], [2]time.Duration{f.now.Sub(p[0].JoinedAt), f.now.Sub(p[1].JoinedAt)})
			rooms = append(rooms, f.rooms[i])
		}
	}
	if len(rooms) > 0 {
		b.resetBackoff()
	}
	return rooms
}

// send starts committing pairs (with their rooms) in one match.lua call
// and returns at once. A pair whose ticket changed since it was read
// (another instance matched it, or the player left) is not committed.
func (b *Backend) send(ctx context.Context, pairs [][2]matchd.Ticket, rooms []matchd.Room) *flight {
	f := &flight{pairs: pairs, rooms: rooms, done: make(chan struct{})}
	k := b.k
	keys := make([]string, 0, 5+3*len(pairs))
	keys = append(keys, k.queue, k.tickets, k.owners, k.seq, k.rooms)
	args := make([]any, 0, 4+6*len(pairs))
	args = append(args, b.cfg.RoomTTL.Milliseconds(), b.cfg.Channel, k.prefix, b.cfg.Peek)
	for i, p := range pairs {
		roomJSON, err := json.Marshal(rooms[i])
		if err != nil {
			f.err = err
			close(f.done)
			return f
		}
		event := eventJSON(rooms[i], roomJSON)
		keys = append(keys, k.assign(p[0].PlayerID), k.assign(p[1].PlayerID), k.room(rooms[i].MatchID))
		args = append(args, p[0].PlayerID, strconv.FormatUint(p[0].Seq, 10), p[1].PlayerID, strconv.FormatUint(p[1].Seq, 10), roomJSON, event)
	}
	go func() {
		defer close(f.done)
		reply, err := matchScript.Run(ctx, b.c, keys, args...).Slice()
		if err != nil {
			f.err = unavailable(err)
			return
		}
		committed, _ := reply[3].([]any)
		if len(committed) != len(pairs) {
			f.err = fmt.Errorf("match.lua: %d results for %d pairs", len(committed), len(pairs))
			return
		}
		f.ok = make([]bool, len(pairs))
		for i, c := range committed {
			f.ok[i] = toInt(c) == 1
		}
		f.now, f.size, f.seq = time.UnixMilli(toInt(reply[0])), int(toInt(reply[1])), uint64(toInt(reply[2]))
		f.raw = reply[4:]
	}()
	return f
}

// matchQueued runs a pass from a fresh read of the queue's head.
func (b *Backend) matchQueued(ctx context.Context) error {
	k := b.k
	reply, err := peekScript.Run(ctx, b.c, []string{k.queue, k.tickets, k.seq}, b.cfg.Peek).Slice()
	if err != nil {
		return unavailable(err)
	}
	if toInt(reply[0]) < 2 {
		return nil
	}
	head, err := parseHead(reply[2:])
	if err != nil {
		return err
	}
	_, _, err = b.pass(ctx, head, uint64(toInt(reply[1])), 0)
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
			if b.retrying() {
				continue // a failed room's retry is due later; keep its backoff
			}
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

// parseHead decodes the (player, ticket JSON) pairs a script returns.
func parseHead(flat []any) ([]matchd.Ticket, error) {
	return decodeTickets(flat, nil)
}

// decodeHead is parseHead for a pass: tickets it decoded in the previous
// head are reused when their seq is unchanged. Call it with passMu held.
func (b *Backend) decodeHead(flat []any) ([]matchd.Ticket, error) {
	head, err := decodeTickets(flat, func(player, raw string) (matchd.Ticket, bool) {
		t, ok := b.known[player]
		return t, ok && t.Seq == leadingSeq(raw)
	})
	known := make(map[string]matchd.Ticket, len(head))
	for _, t := range head {
		known[t.PlayerID] = t
	}
	b.known = known
	return head, err
}

// decodeTickets decodes (player, ticket JSON) pairs, taking a ticket from
// reuse when it has it.
func decodeTickets(flat []any, reuse func(player, raw string) (matchd.Ticket, bool)) ([]matchd.Ticket, error) {
	out := make([]matchd.Ticket, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		player, _ := flat[i].(string)
		raw, ok := flat[i+1].(string)
		if !ok {
			continue // the ticket went between two reads
		}
		if reuse != nil {
			if t, ok := reuse(player, raw); ok {
				out = append(out, t)
				continue
			}
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

// leadingSeq reads the seq from the front of a ticket record, which
// join.lua writes as {"seq":N,…}; 0 if it is not there.
func leadingSeq(raw string) uint64 {
	rest, ok := strings.CutPrefix(raw, `{"seq":`)
	if !ok {
		return 0
	}
	end := strings.IndexByte(rest, ',')
	if end < 0 {
		return 0
	}
	n, _ := strconv.ParseUint(rest[:end], 10, 64)
	return n
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
