package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/matchd/matchd"
)

// How the Redis backend applies the matching policy. The policy itself is
// Go (matchd.Policy.Fits and Widens); Redis keeps indexes and commits:
//
//   - A script that adds a ticket (join.lua, requeue.lua) files it in its
//     bucket's rating band and, in the same atomic step, gathers the
//     candidates for a partner: a bounded number of the best-ranked tickets
//     of each band within the policy's widest rating reach, in every bucket
//     whose stated values can fit, and says whether it left any unread. Of
//     two players joining at once, the later one's script sees the
//     earlier, so no pair is missed.
//   - Go keeps the candidates that satisfy Policy.Fits (with the history
//     the tickets carry) and takes the best: highest priority, then the
//     oldest. It makes the room (with both players' recent questions in
//     Ticket.Seen) and commits with match.lua, which writes only if both
//     tickets are unchanged. A lost commit means another instance made
//     progress; the ticket is searched again (search.lua).
//   - Each ticket has a wake time, when its rules widen next
//     (Policy.Widens) or one of its player's no-rematch bans ends,
//     whichever is first (wakeOf). A sweep claims due tickets with claim.lua, which
//     moves their wake past a lease so concurrent sweeps of other
//     instances skip them, matches them in batches, and sets their next
//     wake with rewake.lua.
//   - A search that finds no fitting candidate but left tickets unread
//     makes its ticket due at once; the sweep that claims it searches
//     every reachable band, page by page (searchDeep), within a budget
//     of pages per sweep (deepPages). Joins stay bounded; the sweep pays.

// bandWidth is the rating span of one band of the index (as in matchd.Pool).
const bandWidth = 50

// rankPriority bounds the priority that orders a band (the index's rank
// is -priority·2⁴⁰ + seq, exact in a float64 within these bounds). The
// ticket keeps its real priority; only the index's order saturates.
const rankPriority = 4096

// ticketRecord is the JSON of a ticket in the tickets hash; the scripts
// write it around the attrs that Go encodes, with the player's history as
// of the ticket's creation.
type ticketRecord struct {
	Seq      uint64      `json:"seq"`
	JoinedAt int64       `json:"joined_at"` // ms, policy clock
	Attrs    ticketAttrs `json:"attrs"`
	Hist     []any       `json:"hist"` // partner, ms, partner, ms, …
	Seen     []any       `json:"seen"` // question id, ms, …
}

type ticketAttrs struct {
	Rating   float64            `json:"rating"`
	Priority int                `json:"priority"`
	Prefs    matchd.Preferences `json:"prefs"`
}

// waiter is a waiting ticket as a script returned it, with the partners
// its player had within the no-rematch window and when they were matched.
type waiter struct {
	matchd.Ticket
	partners map[string]time.Time
}

// decodeWaiter decodes a ticket record. Ticket.Seen gets the questions the
// player had within the no-repeat window before now.
func (b *Backend) decodeWaiter(player, raw string, now time.Time) (waiter, error) {
	rec, err := b.records.decode(player, raw)
	if err != nil {
		return waiter{}, err
	}
	w := waiter{Ticket: matchd.Ticket{
		PlayerID: player,
		Seq:      rec.Seq,
		JoinedAt: time.UnixMilli(rec.JoinedAt),
		Rating:   rec.Attrs.Rating,
		Priority: rec.Attrs.Priority,
		Prefs:    rec.Attrs.Prefs,
	}}
	within := func(entries []any, window time.Duration, add func(id string, at time.Time)) {
		for i := 0; i+1 < len(entries); i += 2 {
			id, _ := entries[i].(string)
			ms, _ := entries[i+1].(float64)
			if at := time.UnixMilli(int64(ms)); now.Sub(at) < window {
				add(id, at)
			}
		}
	}
	within(rec.Hist, b.policy.NoRematch, func(id string, at time.Time) {
		if w.partners == nil {
			w.partners = make(map[string]time.Time)
		}
		if at.After(w.partners[id]) {
			w.partners[id] = at
		}
	})
	within(rec.Seen, b.policy.NoRepeat, func(id string, _ time.Time) { w.Seen = append(w.Seen, id) })
	return w, nil
}

// recordCache keeps the tickets it decoded recently, by player: the same
// waiting tickets come back as candidates to many joins, and decoding is
// most of what this process spends on a join. A cached record is used
// only if the stored JSON is byte for byte the same.
type recordCache struct {
	mu   sync.Mutex
	byID map[string]cachedRecord
}

type cachedRecord struct {
	raw string
	rec ticketRecord
}

// recordCacheSize bounds the cache; when full it starts again empty.
const recordCacheSize = 4096

func (c *recordCache) decode(player, raw string) (ticketRecord, error) {
	c.mu.Lock()
	e, ok := c.byID[player]
	c.mu.Unlock()
	if ok && e.raw == raw {
		return e.rec, nil
	}
	var rec ticketRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return rec, fmt.Errorf("ticket of %s: %w", player, err)
	}
	c.mu.Lock()
	if c.byID == nil || len(c.byID) >= recordCacheSize {
		c.byID = make(map[string]cachedRecord)
	}
	c.byID[player] = cachedRecord{raw, rec}
	c.mu.Unlock()
	return rec, nil
}

// decodeWaiters decodes the (player, ticket JSON) pairs a script returns.
func (b *Backend) decodeWaiters(flat []any, now time.Time) ([]waiter, error) {
	out := make([]waiter, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		player, _ := flat[i].(string)
		raw, _ := flat[i+1].(string)
		w, err := b.decodeWaiter(player, raw, now)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// bucket is the index bucket of preferences p: the policy's must-equal
// fields, in a fixed order, joined by "|"; a field the policy does not
// compare is empty, as is one the player did not state. lib.lua treats an
// empty field as fitting any value.
func (b *Backend) bucket(p matchd.Preferences) string {
	var f [4]string
	for _, field := range b.policy.MustEqual {
		switch field {
		case "difficulty":
			f[0] = p.Difficulty
		case "duration":
			if p.Duration != 0 {
				f[1] = strconv.Itoa(p.Duration)
			}
		case "language":
			f[2] = p.Language
		case "region":
			f[3] = p.Region
		}
	}
	for i := range f {
		f[i] = bucketUnsafe.Replace(f[i])
	}
	return strings.Join(f[:], "|")
}

// bucketUnsafe drops the characters that separate a bucket's fields and
// its band in the index; valid preferences never contain them.
var bucketUnsafe = strings.NewReplacer("|", "", "#", "")

// bandOf is the rating band of the index.
func bandOf(rating float64) int { return int(math.Floor(rating / bandWidth)) }

// reach is how many bands either side of a ticket's band can hold a
// partner: |Δrating| ≤ max tolerance puts the partner within
// ceil(max/50) bands. -1: every band (no rating rule).
func reach(p matchd.Policy) int {
	if math.IsInf(p.Rating.Max, 1) || p.Rating.Max > 1e9 {
		return -1
	}
	return int(math.Ceil(p.Rating.Max / bandWidth))
}

func rankOf(priority int) int { return min(max(priority, -rankPriority), rankPriority) }

// firstWiden is how long after joining a ticket's rules first widen
// (Policy.Widens of a fresh ticket), in ms; -1 when they never do.
func firstWiden(p matchd.Policy) int64 {
	t0 := time.UnixMilli(0)
	w := p.Widens(&matchd.Ticket{JoinedAt: t0}, t0)
	if w.IsZero() {
		return -1
	}
	return w.Sub(t0).Milliseconds()
}

// nowArg is the policy's time for a script: the configured clock's, or ""
// for the Redis server's TIME.
func (b *Backend) nowArg() string {
	if b.cfg.Clock == nil {
		return ""
	}
	return strconv.FormatInt(b.cfg.Clock.Now().UnixMilli(), 10)
}

// recent reports whether a and b were matched with each other within the
// no-rematch window; either ticket's history tells.
func recent(a, b *waiter) bool {
	_, ab := a.partners[b.PlayerID]
	_, ba := b.partners[a.PlayerID]
	return ab || ba
}

// wakeOf is when a sweep must look at w again after now: the earlier of
// the next widening of its rules (Policy.Widens) and the end of its
// earliest no-rematch ban, when that partner may fit it again (nobody
// else would notice: neither of the two joins again); zero: never. w's
// partners are those within the window at now, so each ban ends after now.
func (b *Backend) wakeOf(w *waiter, now time.Time) time.Time {
	next := b.policy.Widens(&w.Ticket, now)
	for _, at := range w.partners {
		if end := at.Add(b.policy.NoRematch); end.After(now) && (next.IsZero() || end.Before(next)) {
			next = end
		}
	}
	return next
}

// best returns the index in cands of me's best partner at now: of those
// the policy lets me pair with, the highest priority, then the oldest
// ticket; -1 if none. Players for which skip is true are passed over;
// skipped is the first of them that would have fitted, or "".
func (b *Backend) best(me *waiter, cands []waiter, now time.Time, skip func(player string) bool) (i int, skipped string) {
	i = -1
	for j := range cands {
		c := &cands[j]
		if c.PlayerID == me.PlayerID || !b.policy.Fits(&me.Ticket, &c.Ticket, now, recent(me, c)) {
			continue
		}
		if skip != nil && skip(c.PlayerID) {
			if skipped == "" {
				skipped = c.PlayerID
			}
			continue
		}
		if i < 0 || better(&c.Ticket, &cands[i].Ticket) {
			i = j
		}
	}
	return i, skipped
}

// inFlightLocked reports whether this instance is committing a match for
// player. Call it with mu held.
func (b *Backend) inFlightLocked(player string) bool { return b.inflight[player] != nil }

// recentCommits bounds how many committed tickets an instance remembers
// (seconds' worth at full speed; a candidate list is a few round trips
// old at most).
const recentCommits = 8192

// recentTickets is a bounded set of the tickets (player, seq) this
// instance committed, with when, the oldest forgotten first. Its times are
// the local monotonic clock: they order this instance's own reads and
// commits, not the policy's time.
type recentTickets struct {
	seq  map[string]recentTicket
	ring []string
	next int
}

type recentTicket struct {
	seq uint64
	at  time.Time // when the commit's reply arrived
}

func (r *recentTickets) add(t matchd.Ticket, at time.Time) {
	if old := r.ring[r.next]; old != "" {
		delete(r.seq, old)
	}
	r.ring[r.next] = t.PlayerID
	r.seq[t.PlayerID] = recentTicket{t.Seq, at}
	r.next = (r.next + 1) % len(r.ring)
}

// goneLocked drops from cands, read by a script sent at readAt, the
// tickets this instance committed after that: choosing one could only
// lose the conditional commit. A ticket committed before the read and
// offered by it anyway was requeued (with its seq) and is kept. It reports
// whether it dropped any. Call it with mu held.
func (b *Backend) goneLocked(cands []waiter, readAt time.Time) ([]waiter, bool) {
	n := len(cands)
	cands = slices.DeleteFunc(cands, func(c waiter) bool {
		e, ok := b.done.seq[c.PlayerID]
		return ok && e.seq == c.Seq && e.at.After(readAt)
	})
	return cands, len(cands) < n
}

// reserveLocked marks players in flight and returns the channel that
// unreserve closes. Call it with mu held.
func (b *Backend) reserveLocked(players ...string) chan struct{} {
	done := make(chan struct{})
	for _, p := range players {
		b.inflight[p] = done
	}
	return done
}

// unreserve ends the flight of players (reserved with done) and wakes
// whoever waits for it.
func (b *Backend) unreserve(done chan struct{}, players ...string) {
	b.mu.Lock()
	for _, p := range players {
		if b.inflight[p] == done {
			delete(b.inflight, p)
		}
	}
	b.mu.Unlock()
	close(done)
}

// better orders partners: higher priority first, then the older ticket.
func better(a, b *matchd.Ticket) bool {
	return a.Priority > b.Priority || a.Priority == b.Priority && a.Seq < b.Seq
}

// pairOf orders a pair as rooms name it: the older ticket is player 1.
func pairOf(a, b matchd.Ticket) [2]matchd.Ticket {
	if b.Seq < a.Seq {
		a, b = b, a
	}
	return [2]matchd.Ticket{a, b}
}

// maxSettle bounds how often one join searches again after losing a
// commit or waiting for one. Each loss means another instance matched
// someone, so the bound is only a guard; a ticket that reaches it is left
// to the sweep.
const maxSettle = 4

// settle matches me, a ticket that was just added or requeued, with its
// best candidate, and returns the room (nil if it still waits) and the
// queue size last seen. more reports whether the search that read cands
// left tickets unread; if none of cands fits, one of those may, so the
// ticket is made due at once and the next sweep searches them all
// (searchDeep): a join's own search stays bounded however many wait.
//
// Concurrent settles and sweeps of this instance do not race for one
// partner: the pair being committed is in flight, and others choose among
// the rest. A settle whose own player is in flight (another join chose
// it), or whose only fitting candidates are, waits for that commit and
// searches again: it has either been matched, or its partner is free.
// That others choose around a pair in flight is the one way in which
// concurrency can give a player its second-best partner: only if that
// commit then loses to another instance.
func (b *Backend) settle(ctx context.Context, me waiter, now time.Time, cands []waiter, more bool, readAt time.Time, size int) (*matchd.Room, int, error) {
	for attempt := 0; ; attempt++ {
		var pair [2]matchd.Ticket
		var done, wait chan struct{}
		stale := false
		b.mu.Lock()
		if wait = b.inflight[me.PlayerID]; wait == nil {
			cands, stale = b.goneLocked(cands, readAt)
			i, skipped := b.best(&me, cands, now, b.inFlightLocked)
			switch {
			case i >= 0:
				pair = pairOf(me.Ticket, cands[i].Ticket)
				done = b.reserveLocked(me.PlayerID, cands[i].PlayerID)
			case skipped != "":
				wait = b.inflight[skipped]
			}
		}
		b.mu.Unlock()
		switch {
		case done != nil:
			room, ok, n, err := b.tryPair(ctx, pair, now)
			b.unreserve(done, pair[0].PlayerID, pair[1].PlayerID)
			if err != nil || ok {
				return room, n, err
			}
			if n >= 0 {
				size = n
			} else {
				return nil, size, nil // the room failed; the retry takes over
			}
		case wait != nil:
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, size, ctx.Err()
			}
		case !stale:
			if more {
				b.rewake(ctx, []wakeAt{{me.Ticket, now}}) // the next sweep, of any instance, claims it
			}
			return nil, size, nil // nobody fits
		}
		// Else some candidates were matched since the read: search again.
		if attempt >= maxSettle {
			b.rewake(ctx, []wakeAt{{me.Ticket, now}})
			b.poke()
			return nil, size, nil
		}
		readAt = time.Now()
		reply, err := searchScript.Run(ctx, b.c, []string{b.k.queue, b.k.tickets, b.k.assign(me.PlayerID)},
			me.PlayerID, b.k.prefix, b.nowArg(), b.reach, b.cfg.PerBand, b.cfg.Candidates, "").Slice()
		if err != nil {
			return nil, size, unavailable(err)
		}
		switch status(reply) {
		case "matched":
			room, err := decodeRoom(reply[1])
			return room, size, err
		case "queued":
			size, now = int(toInt(reply[1])), time.UnixMilli(toInt(reply[2]))
			raw, _ := reply[3].(string)
			if me, err = b.decodeWaiter(me.PlayerID, raw, now); err != nil {
				return nil, size, err
			}
			more = toInt(reply[4]) == 1
			if cands, err = b.decodeWaiters(reply[6:], now); err != nil {
				return nil, size, err
			}
		default: // left meanwhile
			return nil, size, nil
		}
	}
}

// tryPair makes the room of pair and commits it. ok reports the commit;
// size is the queue size after it, or -1 when the room could not be made
// (nothing was written; a retry is scheduled).
func (b *Backend) tryPair(ctx context.Context, pair [2]matchd.Ticket, now time.Time) (room *matchd.Room, ok bool, size int, err error) {
	r, err := b.cfg.Rooms.MakeRoom(ctx, pair[0], pair[1])
	if err != nil {
		b.roomFailed(ctx, err, pair[:])
		return nil, false, -1, nil
	}
	res := make(chan commitResult, 1)
	select {
	case b.commits <- commitRequest{pair: pair, room: r, now: now, res: res}:
	case <-ctx.Done():
		return nil, false, 0, ctx.Err()
	}
	select {
	case c := <-res:
		return &r, c.ok, c.size, c.err
	case <-ctx.Done():
		// The commit may still happen; the player then learns of the
		// match from the event or the assignment.
		return nil, false, 0, ctx.Err()
	}
}

// commitRequest asks the committer to commit one pair and its room.
type commitRequest struct {
	pair [2]matchd.Ticket
	room matchd.Room
	now  time.Time
	res  chan commitResult // buffered: the committer never waits on it
}

type commitResult struct {
	ok   bool
	size int
	err  error
}

// committer commits the pairs of this instance's joins, batching those
// that are ready at the same moment into one match.lua call: while one
// batch is in Redis, the next gathers. The pairs of a batch are disjoint
// because each was reserved (in flight) by its join before it was sent;
// should a join give up waiting (its context ended) and its players be
// chosen again, the overlap is harmless: match.lua checks each pair in
// turn, and the later one finds a ticket gone. One goroutine, owned by
// the Backend, ends with it.
func (b *Backend) committer() {
	for {
		var batch []commitRequest
		select {
		case <-b.ctx.Done():
			b.failCommits()
			return
		case r := <-b.commits:
			batch = append(batch, r)
		}
	more:
		for len(batch) < b.cfg.Batch {
			select {
			case r := <-b.commits:
				batch = append(batch, r)
			default:
				break more
			}
		}
		pairs := make([][2]matchd.Ticket, len(batch))
		rooms := make([]matchd.Room, len(batch))
		nows := make([]time.Time, len(batch))
		for i, r := range batch {
			pairs[i], rooms[i], nows[i] = r.pair, r.room, r.now
		}
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, size, err := b.commit(ctx, pairs, rooms, nows)
		cancel()
		for i, r := range batch {
			c := commitResult{size: size, err: err}
			if err == nil {
				c.ok = ok[i]
			}
			r.res <- c
		}
	}
}

// failCommits answers the requests left when the Backend closes.
func (b *Backend) failCommits() {
	for {
		select {
		case r := <-b.commits:
			r.res <- commitResult{err: errClosed}
		default:
			return
		}
	}
}

// errClosed answers what a closing Backend can no longer do.
var errClosed = matchd.Errorf(matchd.EUnavailable, "matchmaker is shutting down")

// commit runs match.lua for pairs (each with its room) and reports which
// were committed and the queue size after. A pair whose ticket changed
// since it was read (another instance matched it, or the player left) is
// not committed and nothing is written for it.
func (b *Backend) commit(ctx context.Context, pairs [][2]matchd.Ticket, rooms []matchd.Room, nows []time.Time) ([]bool, int, error) {
	k := b.k
	keys := make([]string, 0, 4+3*len(pairs))
	keys = append(keys, k.queue, k.tickets, k.owners, k.rooms)
	args := make([]any, 0, 5+8*len(pairs))
	args = append(args, b.cfg.RoomTTL.Milliseconds(), b.cfg.Channel, k.prefix, b.nowArg(), b.policy.History().Milliseconds())
	for i, p := range pairs {
		roomJSON, err := json.Marshal(rooms[i])
		if err != nil {
			return nil, 0, err
		}
		keys = append(keys, k.assign(p[0].PlayerID), k.assign(p[1].PlayerID), k.room(rooms[i].MatchID))
		args = append(args, p[0].PlayerID, strconv.FormatUint(p[0].Seq, 10), p[1].PlayerID, strconv.FormatUint(p[1].Seq, 10),
			roomJSON, eventJSON(rooms[i], roomJSON), rooms[i].MatchID, rooms[i].QuestionID)
	}
	reply, err := matchScript.Run(ctx, b.c, keys, args...).Slice()
	if err != nil {
		return nil, 0, unavailable(err)
	}
	at := time.Now()
	committed, _ := reply[1].([]any)
	if len(committed) != len(pairs) {
		return nil, 0, fmt.Errorf("match.lua: %d results for %d pairs", len(committed), len(pairs))
	}
	ok := make([]bool, len(pairs))
	for i, c := range committed {
		ok[i] = toInt(c) == 1
		if ok[i] {
			p := pairs[i]
			b.mu.Lock()
			b.done.add(p[0], at)
			b.done.add(p[1], at)
			b.mu.Unlock()
			now := nows[i]
			b.cfg.Observer.Matched(rooms[i], [2]time.Duration{now.Sub(p[0].JoinedAt), now.Sub(p[1].JoinedAt)})
			b.resetBackoff()
		}
	}
	return ok, int(toInt(reply[0])), nil
}

// roomFailed handles a room that could not be made: nothing was
// committed, so both players keep their tickets and places. The tickets
// that were looking are made due at once and a retry is scheduled, which
// wakes the sweeper after a backoff.
func (b *Backend) roomFailed(ctx context.Context, err error, looking []matchd.Ticket) {
	b.cfg.Observer.RoomFailed(err)
	b.cfg.Logger.Warn("room creation failed; pair stays queued", "err", err)
	due := make([]wakeAt, len(looking))
	for i, t := range looking {
		due[i] = wakeAt{t, t.JoinedAt.Add(-time.Millisecond)} // long due
	}
	b.rewake(ctx, due)
	b.scheduleRetry()
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}
