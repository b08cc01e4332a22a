package redis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/matchd/matchd"
)

// wakeAt is when a sweep should look at a ticket again; zero: never.
type wakeAt struct {
	t  matchd.Ticket
	at time.Time
}

// rewake sets the wake times of tickets, each only while its player still
// waits with that ticket. A failure is logged, not returned: the claim's
// lease makes the ticket due again anyway.
func (b *Backend) rewake(ctx context.Context, times []wakeAt) {
	if len(times) == 0 {
		return
	}
	args := make([]any, 0, 3*len(times))
	for _, w := range times {
		at := int64(-1)
		if !w.at.IsZero() {
			at = w.at.UnixMilli()
		}
		args = append(args, w.t.PlayerID, strconv.FormatUint(w.t.Seq, 10), at)
	}
	if err := rewakeScript.Run(ctx, b.c, []string{b.k.queue, b.k.wake}, args...).Err(); err != nil && b.ctx.Err() == nil {
		b.cfg.Logger.Warn("setting wake times failed", "err", err)
	}
}

// maxSweepRounds bounds the claims of one Sweep call: a sweep goes on
// while its rounds make progress, and the bound keeps one instance from
// sweeping forever while others keep the pool busy.
const maxSweepRounds = 1000

// deepPages bounds the pages of exhaustive search one Sweep call reads
// (search.lua, each page one script call of at most Candidates tickets, so
// 64·128 tickets with the defaults). A claimed ticket none of whose
// bounded candidates fits, while its search left tickets unread, is
// searched page by page through every band that can hold its partner
// (searchDeep); a search the budget cuts leaves the ticket due, and this
// instance's next sweep that claims it goes on from where it stopped.
const deepPages = 64

// Sweep implements matchd.Sweeper: it claims the tickets due by now
// (their rules widened, a no-rematch ban of theirs ended, or a bounded
// search left tickets unread without finding them a partner), matches
// each with a partner that fits, searching past the candidate bound where
// needed (within deepPages), and schedules their next wake. Sweeps of one
// instance run one at a time; those of
// several instances claim disjoint tickets (claim.lua), and every match is
// committed conditionally, so concurrent sweeps never match a player
// twice.
func (b *Backend) Sweep(ctx context.Context) (int, error) {
	b.sweepMu.Lock()
	defer b.sweepMu.Unlock()
	total, pages := 0, deepPages
	for range maxSweepRounds {
		n, again, err := b.sweepRound(ctx, &pages)
		total += n
		if err != nil || !again {
			return total, err
		}
	}
	return total, nil
}

// sweepRound claims up to 2·Batch due tickets and matches what it can in
// one match.lua call, reading up to *pages pages of exhaustive search
// (and counting them off). again reports whether another round is worth
// it: this one matched someone or claimed as many as it could (more may
// be due than one claim takes), or left tickets due because a partner was
// taken within the round or a commit was lost, which the next round looks
// at from a fresh read. Tickets left due by the page budget are not a
// reason: the next sweep goes on with them.
func (b *Backend) sweepRound(ctx context.Context, pages *int) (matched int, again bool, err error) {
	k := b.k
	lease := max(5*b.cfg.MatchEvery, 5*time.Second)
	claim := 2 * b.cfg.Batch
	reply, err := claimScript.Run(ctx, b.c, []string{k.queue, k.tickets, k.wake},
		k.prefix, b.nowArg(), claim, lease.Milliseconds(), b.reach, b.cfg.PerBand, b.cfg.Candidates).Slice()
	if err != nil {
		return 0, false, unavailable(err)
	}
	now := time.UnixMilli(toInt(reply[0]))
	players, _ := reply[1].([]any)
	if len(players) == 0 {
		return 0, false, nil
	}
	candIDs, _ := reply[2].([]any)
	flat, _ := reply[3].([]any)
	mores, _ := reply[4].([]any)
	if len(candIDs) != len(players) || len(mores) != len(players) {
		return 0, false, fmt.Errorf("claim.lua: %d candidate lists and %d flags for %d tickets", len(candIDs), len(mores), len(players))
	}
	named, err := b.decodeWaiters(flat, now)
	if err != nil {
		return 0, false, err
	}
	byID := make(map[string]waiter, len(named))
	for _, w := range named {
		byID[w.PlayerID] = w
	}
	type claimed struct {
		me    waiter
		cands []waiter
		more  bool // the claim's search left tickets unread
	}
	due := make([]claimed, 0, len(players))
	for i, v := range players {
		player, _ := v.(string)
		me, ok := byID[player]
		if !ok {
			continue
		}
		ids, _ := candIDs[i].([]any)
		cands := make([]waiter, 0, len(ids))
		for _, id := range ids {
			if c, ok := byID[toString(id)]; ok {
				cands = append(cands, c)
			}
		}
		due = append(due, claimed{me, cands, toInt(mores[i]) == 1})
	}
	// The best tickets choose first, as they would have at their joins.
	slices.SortFunc(due, func(x, y claimed) int {
		return cmp.Or(cmp.Compare(y.me.Priority, x.me.Priority), cmp.Compare(x.me.Seq, y.me.Seq))
	})

	// Each due ticket may also pair with the others claimed with it: they
	// wait too, and the index may not have offered them (its bound).
	others := make([]waiter, len(due))
	for i, d := range due {
		others[i] = d.me
	}

	var pairs [][2]matchd.Ticket
	var rooms []matchd.Room
	var later []wakeAt
	retry := false
	soon := func(t matchd.Ticket) { later, retry = append(later, wakeAt{t, now}), true }
	var flights []chan struct{}
	defer func() {
		for i, done := range flights {
			b.unreserve(done, pairs[i][0].PlayerID, pairs[i][1].PlayerID)
		}
	}()
	failed := false
	for _, d := range due {
		if failed || len(pairs) == b.cfg.Batch {
			soon(d.me.Ticket) // left for the next round (or the retry)
			continue
		}
		b.mu.Lock()
		if b.inFlightLocked(d.me.PlayerID) {
			b.mu.Unlock()
			if !slices.ContainsFunc(pairs, func(p [2]matchd.Ticket) bool { return p[0].PlayerID == d.me.PlayerID || p[1].PlayerID == d.me.PlayerID }) {
				soon(d.me.Ticket) // a join of this instance is matching it
			}
			continue
		}
		cands := slices.Concat(d.cands, others)
		i, skipped := b.best(&d.me, cands, now, b.inFlightLocked)
		var p [2]matchd.Ticket
		var done chan struct{}
		if i >= 0 {
			p = pairOf(d.me.Ticket, cands[i].Ticket)
			done = b.reserveLocked(p[0].PlayerID, p[1].PlayerID)
		}
		b.mu.Unlock()
		if i < 0 {
			end := deepNone
			if skipped != "" {
				end = deepSkipped
			} else if d.more {
				end, p, done = b.searchDeep(ctx, &d.me, now, pages)
			}
			switch end {
			case deepNone:
				later = append(later, wakeAt{d.me.Ticket, b.wakeOf(&d.me, now)})
				continue
			case deepSkipped:
				soon(d.me.Ticket)
				continue
			case deepCut:
				later = append(later, wakeAt{d.me.Ticket, now}) // due for the next sweep
				continue
			case deepGone:
				continue
			}
		}
		room, err := b.cfg.Rooms.MakeRoom(ctx, p[0], p[1])
		if err != nil {
			// No later pair overtakes this one: the rest wait for the
			// retry, which the failure schedules.
			b.unreserve(done, p[0].PlayerID, p[1].PlayerID)
			b.roomFailed(ctx, err, p[:])
			failed = true
			continue
		}
		pairs = append(pairs, p)
		rooms = append(rooms, room)
		flights = append(flights, done)
	}
	if len(pairs) > 0 {
		nows := make([]time.Time, len(pairs))
		for i := range nows {
			nows[i] = now
		}
		ok, _, err := b.commit(ctx, pairs, rooms, nows)
		if err != nil {
			return 0, false, err
		}
		for i, p := range pairs {
			if ok[i] {
				matched++
				continue
			}
			for _, t := range p {
				if slices.ContainsFunc(due, func(d claimed) bool { return d.me.PlayerID == t.PlayerID }) {
					soon(t)
				}
			}
		}
	}
	b.rewake(ctx, later)
	// Go on while rounds make progress or leave tickets due: more may
	// be due than one claim takes.
	again = !failed && (matched > 0 || retry || len(players) == claim && *pages > 0)
	return matched, again, nil
}

// How a deep search (searchDeep) ended.
type deepEnd int

const (
	deepNone    deepEnd = iota // no waiting ticket fits: wait for the next wake
	deepFound                  // a partner fits: the pair is reserved
	deepSkipped                // the player, or a partner who fits, is in flight: due again now
	deepCut                    // the page budget ran out (or Redis failed): due again, resumed later
	deepGone                   // the player no longer waits with this ticket
)

// deepCursor is where a deep search cut by the page budget stopped, kept
// for the instance's next sweep that claims the same ticket. It is valid
// until the ticket's wake as of the cut: until then, none of the tickets
// it has read can start to fit it by a change of its own (widening, a
// ban's end), and each of them is searched again at its own wake.
type deepCursor struct {
	seq    uint64
	until  time.Time // zero: no wake ahead
	cursor string
}

// maxDeepCursors bounds the cursors an instance keeps; when full it
// starts again empty (a search then starts over).
const maxDeepCursors = 4096

// searchDeep searches every band that can hold a partner of me, a claimed
// ticket whose bounded candidates were not all that wait, one page
// (search.lua, at most Candidates tickets) at a time, until a partner
// fits, no band holds more, or *pages (the sweep's budget) runs out. A
// fitting partner is reserved, like the sweep's other pairs, and
// returned with the reservation. Call it with sweepMu held (b.deep).
func (b *Backend) searchDeep(ctx context.Context, me *waiter, now time.Time, pages *int) (deepEnd, [2]matchd.Ticket, chan struct{}) {
	cursor := "{}"
	if c, ok := b.deep[me.PlayerID]; ok {
		delete(b.deep, me.PlayerID)
		if c.seq == me.Seq && (c.until.IsZero() || now.Before(c.until)) {
			cursor = c.cursor
		}
	}
	cut := func() (deepEnd, [2]matchd.Ticket, chan struct{}) {
		if len(b.deep) >= maxDeepCursors {
			clear(b.deep)
		}
		b.deep[me.PlayerID] = deepCursor{me.Seq, b.wakeOf(me, now), cursor}
		return deepCut, [2]matchd.Ticket{}, nil
	}
	for {
		if *pages <= 0 {
			return cut()
		}
		*pages--
		readAt := time.Now()
		reply, err := searchScript.Run(ctx, b.c, []string{b.k.queue, b.k.tickets, b.k.assign(me.PlayerID)},
			me.PlayerID, b.k.prefix, b.nowArg(), b.reach, b.cfg.PerBand, b.cfg.Candidates, cursor).Slice()
		if err != nil {
			b.cfg.Logger.Debug("deep search failed", "player", me.PlayerID, "err", err)
			return cut()
		}
		if status(reply) != "queued" {
			return deepGone, [2]matchd.Ticket{}, nil // matched by another, or left
		}
		if w, err := b.decodeWaiter(me.PlayerID, toString(reply[3]), now); err != nil || w.Seq != me.Seq {
			return deepGone, [2]matchd.Ticket{}, nil // left and joined again: that ticket's own search
		}
		more := toInt(reply[4]) == 1
		cands, err := b.decodeWaiters(reply[6:], now)
		if err != nil {
			b.cfg.Logger.Debug("deep search failed", "player", me.PlayerID, "err", err)
			return cut()
		}
		cursor = toString(reply[5])
		b.mu.Lock()
		if b.inFlightLocked(me.PlayerID) {
			b.mu.Unlock()
			return deepSkipped, [2]matchd.Ticket{}, nil // a join of this instance is matching it
		}
		cands, _ = b.goneLocked(cands, readAt)
		i, skipped := b.best(me, cands, now, b.inFlightLocked)
		if i >= 0 {
			p := pairOf(me.Ticket, cands[i].Ticket)
			done := b.reserveLocked(p[0].PlayerID, p[1].PlayerID)
			b.mu.Unlock()
			return deepFound, p, done
		}
		b.mu.Unlock()
		switch {
		case skipped != "":
			return deepSkipped, [2]matchd.Ticket{}, nil
		case !more:
			return deepNone, [2]matchd.Ticket{}, nil
		}
	}
}

// sweeper runs Sweep every MatchEvery, and at once when poked (a retry
// after a failed room is due, or a join could not finish matching). It
// waits while a retry is scheduled, so that the retry keeps its backoff.
func (b *Backend) sweeper() {
	tick := time.NewTicker(b.cfg.MatchEvery)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
			if b.retrying() {
				continue
			}
		case <-b.kick:
		}
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		if _, err := b.Sweep(ctx); err != nil && b.ctx.Err() == nil {
			b.cfg.Logger.Debug("sweep failed", "err", err)
		}
		cancel()
	}
}
