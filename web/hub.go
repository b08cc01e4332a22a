package web

import (
	"context"
	"sync"
	"time"

	"github.com/matchd/matchd"
)

// hub tracks this instance's sockets by player and delivers match events
// to them.
//
// Lock order: playerEntry.op, then hub.mu, then conn.mu. hub.mu and conn.mu
// guard only in-memory maps and slices and are never held across I/O;
// playerEntry.op is held across the backend calls of one player (join,
// leave, and the leave of a closing socket) so that this instance never
// races itself on one player's ticket.
type hub struct {
	s *Server

	mu      sync.Mutex
	players map[string]*playerEntry
	// undropped holds players whose socket closed while their join stood
	// but whose Drop failed (the store was unreachable). Resync drops them
	// once it can, so a disconnect during an outage leaves no ghost.
	undropped map[string]struct{}
	// sockets counts each player's sockets here, including those still
	// being upgraded, for the per-player cap.
	sockets map[string]int
}

// playerEntry is one player's sockets on this instance. It lives while the
// player has a socket here or an operation in flight.
type playerEntry struct {
	op    sync.Mutex         // serializes this player's backend calls
	conns map[*conn]struct{} // guarded by hub.mu
	// delivered counts the matches delivered to the player here (guarded
	// by hub.mu), so that a join can tell whether a match reached the
	// player while its backend call was in flight (see standingJoin).
	delivered uint64
}

func newHub(s *Server) *hub {
	return &hub{s: s, players: make(map[string]*playerEntry), undropped: make(map[string]struct{}), sockets: make(map[string]int)}
}

// reserve takes one of player's socket slots, or reports that all
// MaxSockets are in use. Every successful reserve is paired with release.
func (h *hub) reserve(player string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sockets[player] >= h.s.cfg.MaxSockets {
		return false
	}
	h.sockets[player]++
	return true
}

func (h *hub) release(player string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sockets[player]--; h.sockets[player] <= 0 {
		delete(h.sockets, player)
	}
}

// register adds c under its player.
func (h *hub) register(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.players[c.player]
	if e == nil {
		e = &playerEntry{conns: make(map[*conn]struct{})}
		h.players[c.player] = e
	}
	e.conns[c] = struct{}{}
	c.entry = e
}

// unregister removes a closed socket. If it was the last socket here whose
// join stands, the player leaves the queue: a player who walks away must
// not be matched with someone who then waits for nobody. The entry stays
// in the map until that leave is done, so a socket the player opens
// meanwhile queues behind it on the same op lock.
func (h *hub) unregister(c *conn) {
	e := c.entry
	e.op.Lock()
	defer e.op.Unlock()

	h.mu.Lock()
	wasJoined := c.joined
	c.joined = false
	delete(e.conns, c)
	othersJoined := false
	for o := range e.conns {
		othersJoined = othersJoined || o.joined
	}
	h.mu.Unlock()

	// A draining instance leaves the ticket in place for the instance the
	// player reconnects to; if they never do, it goes with this instance's
	// lease.
	if wasJoined && !othersJoined && !h.s.draining.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := h.s.mm.Drop(ctx, c.player, h.s.cfg.Instance)
		cancel()
		switch {
		case err != nil:
			h.s.log.Warn("leave on disconnect failed; retrying when the store is back", "player", c.player, "err", err)
			h.mu.Lock()
			h.undropped[c.player] = struct{}{}
			h.s.cfg.Metrics.PendingDrops.Set(float64(len(h.undropped)))
			h.mu.Unlock()
		case res.Removed:
			h.s.cfg.Metrics.Leaves.Inc()
		}
	}

	h.mu.Lock()
	if len(e.conns) == 0 && h.players[c.player] == e {
		delete(h.players, c.player)
	}
	h.mu.Unlock()
}

// deliveries returns how many matches have been delivered to e's player
// here; a join reads it before its backend call, for standingJoin.
func (h *hub) deliveries(e *playerEntry) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return e.delivered
}

// standingJoin records that c's join stands (the backend queued the
// player), unless a match was delivered to the player since deliveries
// returned before: then the match may be this very join's, formed by a
// partner's join just after it, and its event has already cleared the
// player's joins. Recording the join after that event would leave a stale
// standing join, which a resync after the match's release would turn into
// a ticket the player never asked for.
func (h *hub) standingJoin(e *playerEntry, c *conn, before uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for o := range e.conns {
		o.joined = false
	}
	if e.delivered == before {
		c.joined = true
	}
}

// setJoined records which of a player's sockets hold a standing join:
// only c (c non-nil), or none (c nil) once the player left or was matched.
func (h *hub) setJoined(e *playerEntry, c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for o := range e.conns {
		o.joined = false
	}
	if c != nil {
		c.joined = true
	}
}

// deliver sends match_found for room to every socket of both players here.
func (h *hub) deliver(room *matchd.Room) {
	var shown *matchd.Room // the room with its session's first status
	for _, p := range room.Players() {
		h.mu.Lock()
		var conns []*conn
		if e := h.players[p]; e != nil {
			e.delivered++
			for c := range e.conns {
				c.joined = false
				conns = append(conns, c)
			}
		}
		h.mu.Unlock()
		if len(conns) == 0 {
			continue
		}
		if shown == nil {
			shown = h.s.announcedRoom(room)
		}
		f := matchFoundFrame(shown, p)
		for _, c := range conns {
			c.sendMatch(room.MatchID, f)
		}
	}
}

// run delivers match events until ctx ends. The stream is a wake-up, not
// the record: whenever it (re)starts, the assignments of every player
// connected here are read again, so a match formed while no subscription
// was open still reaches its players.
func (h *hub) run(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for {
		events, err := h.s.mm.Subscribe(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.s.log.Warn("subscribing to match events failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		h.resync(ctx)
		for ev := range events {
			h.s.estimator.Matched(h.s.cfg.Clock.Now())
			h.deliver(&ev.Room)
		}
		if ctx.Err() != nil {
			return nil
		}
		h.s.log.Warn("match event stream ended; resubscribing")
	}
}

// resync re-reads the assignments of every player connected here, and
// joins again for those whose socket's join stands but who hold neither a
// match nor, it may be, a ticket: after a Redis restart without
// persistence, or after this instance's lease lapsed and its tickets were
// swept. Joining is idempotent, so a ticket that survived keeps its place.
func (h *hub) resync(ctx context.Context) {
	h.dropPending(ctx)
	h.mu.Lock()
	entries := make(map[string]*playerEntry, len(h.players))
	for p, e := range h.players {
		entries[p] = e
	}
	h.mu.Unlock()
	players := make([]string, 0, len(entries))
	for p := range entries {
		players = append(players, p)
	}
	// The subscription is up, so the store answers; a failure here is
	// brief. Retry a few times: once events flow, nothing else re-reads.
	var rooms []*matchd.Room
	var err error
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		if rooms, err = h.s.mm.Assignments(ctx, players); err == nil {
			break
		}
		if wait > 2*time.Second {
			h.s.log.Error("resync: reading assignments failed; matches made meanwhile reach their players when they reconnect", "players", len(players), "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	for i, p := range players {
		room := rooms[i]
		if room == nil {
			room = h.rejoin(ctx, p, entries[p])
		}
		if room != nil {
			h.deliver(room)
		}
	}
}

// dropPending retries the drops that failed. A player who has a socket
// here again is skipped: their new socket decides.
func (h *hub) dropPending(ctx context.Context) {
	h.mu.Lock()
	var players []string
	for p := range h.undropped {
		if _, back := h.players[p]; back {
			delete(h.undropped, p)
			continue
		}
		players = append(players, p)
	}
	h.s.cfg.Metrics.PendingDrops.Set(float64(len(h.undropped)))
	h.mu.Unlock()
	for _, p := range players {
		res, err := h.s.mm.Drop(ctx, p, h.s.cfg.Instance)
		if err != nil {
			h.s.log.Warn("resync: dropping a disconnected player failed", "player", p, "err", err)
			continue
		}
		if res.Removed {
			h.s.cfg.Metrics.Leaves.Inc()
		}
		h.mu.Lock()
		delete(h.undropped, p)
		h.s.cfg.Metrics.PendingDrops.Set(float64(len(h.undropped)))
		h.mu.Unlock()
	}
}

// rejoin joins p again if one of its sockets here holds a standing join,
// and returns the room when that join completed a pair.
func (h *hub) rejoin(ctx context.Context, p string, e *playerEntry) *matchd.Room {
	e.op.Lock()
	defer e.op.Unlock()
	h.mu.Lock()
	var joined *conn
	for c := range e.conns {
		if c.joined {
			joined = c
		}
	}
	h.mu.Unlock()
	if joined == nil {
		return nil
	}
	t, err := joined.ticket(ctx, joined.prefs)
	var res matchd.JoinResult
	if err == nil {
		res, err = h.s.mm.Join(ctx, t)
	}
	if err != nil {
		h.s.log.Warn("resync: re-joining failed", "player", p, "err", err)
		return nil
	}
	return res.Room
}

// drainAll tells every socket to reconnect and closes it, as the server
// stops.
func (h *hub) drainAll() {
	h.mu.Lock()
	var conns []*conn
	for _, e := range h.players {
		for c := range e.conns {
			conns = append(conns, c)
		}
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(c.drain)
	}
	wg.Wait()
}
