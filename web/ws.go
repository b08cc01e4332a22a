package web

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
)

const (
	// readLimit caps a client frame; larger ones close the socket (1009).
	readLimit = 4 << 10
	// maxOutbox is how many frames may wait for a slow reader before its
	// socket is dropped; nobody else waits for it.
	maxOutbox = 64
	// writeTimeout bounds one frame write.
	writeTimeout = 10 * time.Second
	// strikesToClose is how many frames over the message rate a socket may
	// send (each answered rate_limited) before it is closed with 1008;
	// strikes are forgotten after strikeMemory without one.
	strikesToClose = 20
	strikeMemory   = 10 * time.Second
	// opTimeout bounds one backend call made for a client message, so a
	// hung store is answered "unavailable" instead of leaving the socket
	// waiting.
	opTimeout = 5 * time.Second
)

// conn is one client WebSocket.
//
// It costs one goroutine while idle (the read loop). Writes go through an
// outbox drained by a writer goroutine that exists only while frames are
// waiting, so a socket that nobody writes to holds no writer.
type conn struct {
	h      *hub
	ws     *websocket.Conn
	player string
	claims auth.Claims
	entry  *playerEntry // set by hub.register

	joined bool // this socket's join is the player's standing ticket; guarded by hub.mu
	// prefs are the preferences of this socket's standing join, for
	// re-joining after a resync; guarded by entry.op.
	prefs matchd.Preferences

	mu        sync.Mutex
	outbox    [][]byte
	writing   bool
	closed    bool
	holding   bool        // an operation is in flight; match frames wait in held
	held      []heldFrame // match frames that arrived while holding
	lastMatch string      // the last match_found sent, to send each once
	pinger    *time.Timer
	pongWait  *time.Timer     // closes the socket when a ping's pong is late
	drained   []chan struct{} // closed when the writer has emptied the outbox

	// Read-loop state: the socket's message rate and its strikes.
	rate       *rate.Limiter
	strikes    int
	lastStrike time.Time
}

type heldFrame struct {
	matchID string // set on match_found frames
	data    []byte
}

func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	claims, err := s.authenticate(r, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.draining.Load() {
		s.writeError(w, r, matchd.Errorf(matchd.EUnavailable, "this instance is restarting; connect again"))
		return
	}
	if !s.hub.reserve(claims.UserID) {
		s.cfg.Metrics.RateLimited.WithLabelValues("sockets").Inc()
		s.writeError(w, r, matchd.Errorf(matchd.ERateLimited, "too many open sockets for this player (at most %d)", s.cfg.MaxSockets))
		return
	}
	ws, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{
		OriginPatterns: s.cfg.OriginPatterns,
		// Frames are small JSON; per-socket compression state would cost
		// more memory than it saves bandwidth.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		s.hub.release(claims.UserID)
		return // Accept has answered the client
	}
	// Counting the socket and seeing the drain start are ordered by
	// socketsMu: Run waits for the sockets only once draining is set, so
	// no socket is counted after its Wait began (sync.WaitGroup forbids
	// that), and a socket accepted as the drain starts is sent away.
	s.socketsMu.Lock()
	if s.draining.Load() {
		s.socketsMu.Unlock()
		s.hub.release(claims.UserID)
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		ws.Write(ctx, websocket.MessageText, reconnectFrame)
		cancel()
		ws.Close(websocket.StatusServiceRestart, "instance restarting; reconnect")
		return
	}
	s.sockets.Add(1)
	s.socketsMu.Unlock()
	// The socket is served on a goroutine of its own and the handler
	// returns: net/http's goroutine, whose stack the handshake has grown
	// to 8 KiB, and the upgrade request are then freed, a third of an idle
	// socket's memory. Its context never ends (net/http would end the
	// request's when the handler returns, and nothing else did), which
	// also spares the library a context.AfterFunc per frame read.
	go s.serveSocket(context.WithoutCancel(r.Context()), ws, claims)
}

// serveSocket runs an accepted socket until it closes.
func (s *Server) serveSocket(ctx context.Context, ws *websocket.Conn, claims auth.Claims) {
	defer s.hub.release(claims.UserID)
	defer s.sockets.Done()
	ws.SetReadLimit(readLimit)
	c := &conn{h: s.hub, ws: ws, player: claims.UserID, claims: claims, rate: rate.NewLimiter(rate.Limit(s.cfg.MessageRate), s.cfg.MessageBurst)}
	s.cfg.Metrics.Connections.Inc()
	defer s.cfg.Metrics.Connections.Dec()
	if s.rooms != nil {
		defer s.rooms.disconnected(c) // after unregister, which the next defer does
	}
	s.hub.register(c)
	defer s.hub.unregister(c)
	if s.draining.Load() {
		// Draining began after the check above but before drainAll could
		// see this socket: it is this socket's own job to go.
		c.drain()
		return
	}
	c.schedulePing()
	defer c.stopPing()

	// A player who already holds a match learns of it at once, whichever
	// instance formed it and whether or not its event was seen.
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	room, err := s.mm.Assignment(opCtx, c.player)
	if err != nil {
		c.send(errorFrame(err))
	} else if room != nil {
		c.connectedToRoom(opCtx, room)
	}
	cancel()
	c.readLoop(ctx)
}

func (c *conn) readLoop(ctx context.Context) {
	s := c.h.s
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		if !c.admit() {
			s.cfg.Metrics.RateLimited.WithLabelValues("message").Inc()
			if c.strikes >= strikesToClose {
				c.h.s.log.Warn("closing a socket that keeps flooding", "player", c.player)
				c.flush(time.Second) // the rate_limited answers go out first
				c.ws.Close(websocket.StatusPolicyViolation, "message rate exceeded")
				return
			}
			c.send(errorFrame(&matchd.Error{Code: matchd.ERateLimited, Message: "too many messages; slow down", RetryAfter: time.Second}))
			continue
		}
		if typ != websocket.MessageText {
			s.cfg.Metrics.Messages.WithLabelValues("invalid").Inc()
			c.send(errorFrame(matchd.Errorf(matchd.EInvalid, "frames must be JSON text")))
			continue
		}
		f, err := decodeFrame(data)
		if err != nil {
			s.cfg.Metrics.Messages.WithLabelValues("invalid").Inc()
			c.send(errorFrame(err))
			continue
		}
		s.cfg.Metrics.Messages.WithLabelValues(f.Type).Inc()
		if f.UserID != nil && *f.UserID != c.player {
			c.send(errorFrame(matchd.Errorf(matchd.EForbidden, "user_id does not match your session")))
			continue
		}
		switch f.Type {
		case msgPing:
			c.send(pongFrame)
		case msgJoinQueue:
			opCtx, cancel := context.WithTimeout(ctx, opTimeout)
			c.join(opCtx, f.Prefs)
			cancel()
		case msgLeaveQueue:
			opCtx, cancel := context.WithTimeout(ctx, opTimeout)
			c.leave(opCtx)
			cancel()
		case msgReady, msgChat, msgLeaveRoom:
			opCtx, cancel := context.WithTimeout(ctx, opTimeout)
			c.roomFrame(opCtx, f)
			cancel()
		}
	}
}

// admit applies the socket's message rate, counting a strike for each
// frame over it.
func (c *conn) admit() bool {
	now := c.h.s.cfg.Clock.Now()
	if c.rate.AllowN(now, 1) {
		return true
	}
	if now.Sub(c.lastStrike) > strikeMemory {
		c.strikes = 0
	}
	c.strikes++
	c.lastStrike = now
	return false
}

// join handles join_queue. Its answer is queued, then match_found when the
// player is (or becomes) matched; match_found alone when the player was
// matched before this join.
func (c *conn) join(ctx context.Context, prefs matchd.Preferences) {
	s := c.h.s
	if err := prefs.Validate(s.cfg.Topics); err != nil {
		c.send(errorFrame(err))
		return
	}
	// The join limit, the no-show cooldown and the stored rating are
	// independent store round trips: made at once, they cost one. The
	// limit is checked first in effect: its refusal is the one answered.
	var limitErr, coolErr error
	var wg sync.WaitGroup
	if s.cfg.JoinLimiter != nil {
		wg.Go(func() { limitErr = c.allowJoin(ctx) })
	}
	if s.rooms != nil {
		wg.Go(func() { coolErr = c.cooldown(ctx) })
	}
	t, ticketErr := c.ticket(ctx, prefs)
	wg.Wait()
	for _, err := range []error{limitErr, coolErr, ticketErr} {
		if err != nil {
			c.send(errorFrame(err))
			return
		}
	}
	c.entry.op.Lock()
	c.hold()
	delivered := c.h.deliveries(c.entry)
	res, err := s.mm.Join(ctx, t)
	if err == nil {
		if res.Added {
			c.prefs = prefs
		}
		if res.Room == nil {
			c.h.standingJoin(c.entry, c, delivered)
		} else {
			c.h.setJoined(c.entry, nil)
		}
	}
	c.entry.op.Unlock()

	if err != nil {
		c.release(heldFrame{data: errorFrame(err)})
		return
	}
	s.cfg.Metrics.Joins.Inc()
	var out []heldFrame
	if res.Added {
		s.estimator.Arrived(s.cfg.Clock.Now())
	}
	switch {
	case res.Room == nil:
		wait := s.estimator.Estimate(res.QueueSize, true)
		out = append(out, heldFrame{data: mustJSON(queuedMsg{Type: "queued", QueueSize: res.QueueSize, EstimatedWaitSeconds: seconds(wait)})})
	case res.Added:
		// This join completed a pair: queued, with no wait, then the match.
		out = append(out, heldFrame{data: mustJSON(queuedMsg{Type: "queued", QueueSize: res.QueueSize})})
	}
	if res.Room != nil {
		out = append(out, heldFrame{matchID: res.Room.MatchID, data: matchFoundFrame(s.shownRoom(ctx, res.Room), c.player)})
	}
	c.release(out...)
}

// allowJoin applies the join limit (JoinLimiter) to this socket's player.
func (c *conn) allowJoin(ctx context.Context) error {
	s := c.h.s
	l := s.cfg.JoinLimiter
	if l == nil {
		return nil
	}
	retry, ok, err := l.Allow(ctx, c.player)
	if err != nil {
		return err
	}
	if !ok {
		s.cfg.Metrics.RateLimited.WithLabelValues("join").Inc()
		return &matchd.Error{Code: matchd.ERateLimited, Message: "too many joins; wait before joining again", RetryAfter: retry}
	}
	return nil
}

// ticket is the ticket this socket's player joins with: identity and
// priority from the verified token, never from the client's message; the
// rating from the token's claim, else the rating matchd stores for the
// player, else matchd.DefaultRating.
func (c *conn) ticket(ctx context.Context, prefs matchd.Preferences) (matchd.Ticket, error) {
	t := matchd.Ticket{PlayerID: c.player, Rating: matchd.DefaultRating, Priority: c.claims.Priority, Prefs: prefs, Owner: c.h.s.cfg.Instance}
	switch r := c.h.s.cfg.Ratings; {
	case c.claims.Rating != nil:
		t.Rating = *c.claims.Rating
	case r != nil:
		stored, ok, err := r.Rating(ctx, c.player)
		if err != nil {
			return t, err
		}
		if ok {
			t.Rating = stored
		}
	}
	return t, nil
}

// leave handles leave_queue. A leave that comes after the match does not
// undo it: the answer is that match again.
func (c *conn) leave(ctx context.Context) {
	s := c.h.s
	c.entry.op.Lock()
	c.hold()
	res, err := s.mm.Leave(ctx, c.player)
	if err == nil {
		c.h.setJoined(c.entry, nil)
	}
	c.entry.op.Unlock()

	switch {
	case err != nil:
		c.release(heldFrame{data: errorFrame(err)})
	case res.Room != nil:
		c.release(heldFrame{matchID: res.Room.MatchID, data: matchFoundFrame(s.shownRoom(ctx, res.Room), c.player)})
	default:
		if res.Removed {
			s.cfg.Metrics.Leaves.Inc()
		}
		c.release(heldFrame{data: leftQueueFrame})
	}
}

// hold makes match frames from other goroutines wait until release, so the
// answer to the operation in flight goes out before them.
func (c *conn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// release sends the answer to the operation in flight, then whatever was
// held, and stops holding. An answer always goes out, even a match_found
// this socket has had before: the client asked.
func (c *conn) release(answer ...heldFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range answer {
		if f.matchID != "" {
			c.lastMatch = f.matchID
		}
		c.enqueueLocked("", f.data)
	}
	for _, f := range c.held {
		c.enqueueLocked(f.matchID, f.data)
	}
	c.held, c.holding = nil, false
}

// send queues a frame for the client.
func (c *conn) send(data []byte) { c.sendMatch("", data) }

// sendMatch queues a frame; a non-empty matchID marks it as that match's
// match_found, which each socket is sent once unprompted (the event and
// the resync after a reconnect may both deliver it).
func (c *conn) sendMatch(matchID string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding && matchID != "" {
		c.held = append(c.held, heldFrame{matchID, data})
		return
	}
	c.enqueueLocked(matchID, data)
}

func (c *conn) enqueueLocked(matchID string, data []byte) {
	if c.closed {
		return
	}
	if matchID != "" {
		if matchID == c.lastMatch {
			return
		}
		c.lastMatch = matchID
	}
	if len(c.outbox) >= maxOutbox {
		c.h.s.log.Warn("dropping slow websocket reader", "player", c.player)
		c.closed = true
		go c.ws.CloseNow()
		return
	}
	c.h.s.cfg.Metrics.Sent.WithLabelValues(frameType(data)).Inc()
	c.outbox = append(c.outbox, data)
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// flush waits, at most timeout, until the frames queued so far are
// written.
func (c *conn) flush(timeout time.Duration) {
	c.mu.Lock()
	if !c.writing {
		c.mu.Unlock()
		return
	}
	done := make(chan struct{})
	c.drained = append(c.drained, done)
	c.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// writeLoop drains the outbox and exits when it is empty.
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		if c.closed || len(c.outbox) == 0 {
			c.writing = false
			c.outbox = nil
			for _, d := range c.drained {
				close(d)
			}
			c.drained = nil
			c.mu.Unlock()
			return
		}
		batch := c.outbox
		c.outbox = nil
		c.mu.Unlock()
		for _, data := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, data)
			cancel()
			if err != nil {
				c.mu.Lock()
				c.closed, c.writing, c.outbox = true, false, nil
				for _, d := range c.drained {
					close(d)
				}
				c.drained = nil
				c.mu.Unlock()
				c.ws.CloseNow()
				return
			}
		}
	}
}

// schedulePing starts the keepalive pings. Each ping runs on the timer's
// goroutine, which exists only while it waits for the pong.
func (c *conn) schedulePing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	cfg := c.h.s.cfg
	// Two timers per socket, made once and re-armed (the ping interval
	// after each pong, the pong's deadline for each ping): an idle socket
	// then makes no garbage of its own.
	c.pongWait = time.AfterFunc(cfg.PingTimeout, func() { c.ws.CloseNow() })
	c.pongWait.Stop()
	c.pinger = time.AfterFunc(cfg.PingInterval, c.ping)
}

// ping runs on the timer: it pings the peer, closes the socket when no
// pong comes within PingTimeout, and otherwise re-arms the timer.
func (c *conn) ping() {
	cfg := c.h.s.cfg
	// The pong's deadline is a timer made once, not a context per ping:
	// on 10,000 idle sockets a context, its timer and the library's
	// contexts registered under it were most of the idle garbage.
	c.pongWait.Reset(cfg.PingTimeout)
	err := c.ws.Ping(context.Background())
	c.pongWait.Stop()
	if err != nil {
		c.ws.CloseNow()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.pinger.Reset(cfg.PingInterval)
	}
}

func (c *conn) stopPing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.pinger != nil {
		c.pinger.Stop()
		c.pongWait.Stop()
	}
}

// drain tells the client to reconnect elsewhere and closes the socket with
// 1012 (service restart).
func (c *conn) drain() {
	c.send(reconnectFrame)
	c.flush(time.Second)
	c.ws.Close(websocket.StatusServiceRestart, "instance restarting; reconnect")
}
