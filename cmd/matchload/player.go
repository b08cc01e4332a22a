package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/matchd/matchd/auth"
)

// leaveFrame is the leave_queue message.
var leaveFrame = []byte(`{"type":"leave_queue"}`)

// plan is what one player will do, drawn before it starts.
type plan struct {
	rating    float64
	url       int  // index of its first URL in config.urls
	leave     bool // sends leave_queue after `after`
	drop      bool // drops its socket after `after`
	after     time.Duration
	joinFrame []byte // join_queue, with preferences when -prefs is given
}

// phase is where a player is in its life. Timers (leave, drop, -timeout)
// and the read loop both move it, under player.mu.
type phase uint8

const (
	phaseIdle     phase = iota // not joined yet (connecting, or pre-connected and waiting for its arrival)
	phaseJoining               // join_queue sent, not answered yet
	phaseWaiting               // queued
	phaseLeaving               // a leaver's leave_queue sent
	phaseGivingUp              // leave_queue sent because -timeout passed
	phaseDropped               // socket dropped on purpose
	phaseDone                  // finished
)

// outcome is how a player's run ended.
type outcome uint8

const (
	outPending    outcome = iota
	outMatched            // received match_found
	outLeft               // left the queue (a leaver)
	outDropped            // dropped its socket
	outTimedOut           // no match within -timeout
	outFailed             // could not log in, connect or join, or lost its socket
	outUnfinished         // still waiting when the run stopped
)

// String names an outcome for test messages.
func (o outcome) String() string {
	return [...]string{"pending", "matched", "left", "dropped", "timed out", "failed", "unfinished"}[o]
}

// player is one simulated player. One goroutine (run) owns it and reads
// its socket; its timers and the scheduler's join write to the socket from
// their own goroutines, which coder/websocket allows alongside one reader.
// Lock order: player.mu, then checker.mu or counters.mu; never the reverse.
type player struct {
	r            *runner
	id           string
	plan         plan
	preconnected bool   // set before its goroutine starts, then only read
	token        string // used by run's goroutine only

	mu         sync.Mutex
	conn       *websocket.Conn
	url        int  // index of conn's URL
	sockOpen   bool // conn is open as far as the checker knows
	phase      phase
	out        outcome
	joinedAt   time.Time // the first join_queue; time-to-match counts from it
	reconnect  bool      // the server sent {"type":"reconnect"}
	abandoned  bool      // closed because a leave_queue went unanswered
	reconnects int
	timers     []*time.Timer
	// lastWrite is closed when the frame decided last has been written
	// (see writeLocked); nil before the first.
	lastWrite chan struct{}
}

// run connects the player and reads its socket until it is done. dialCtx
// bounds the login and dial (the pre-connect phase has its own deadline);
// ctx bounds everything, and ending it closes the socket. joinNow sends
// join_queue at once; pre-connected players wait for the scheduler's join.
// onReady, when not nil, is called once the socket is open or has failed.
func (p *player) run(ctx, dialCtx context.Context, joinNow bool, onReady func()) {
	defer p.stop()
	conn, err := p.connect(dialCtx, p.plan.url)
	if onReady != nil {
		onReady()
	}
	if err != nil {
		if ctx.Err() != nil {
			p.finish(outUnfinished)
		} else {
			p.finish(outFailed)
		}
		return
	}
	p.setConn(conn, p.plan.url)
	if joinNow {
		p.join(ctx)
	}
	for {
		p.mu.Lock()
		conn := p.conn
		p.mu.Unlock()
		_, data, err := conn.Read(ctx)
		if err != nil {
			if p.readFailed(ctx, conn, err) {
				continue
			}
			return
		}
		if p.handle(conn, data) {
			return
		}
	}
}

// join sends join_queue, once, and arms the player's timers.
func (p *player) join(ctx context.Context) {
	p.mu.Lock()
	if p.phase != phaseIdle || p.conn == nil || p.out != outPending {
		p.mu.Unlock()
		return
	}
	p.phase = phaseJoining
	now := time.Now()
	p.joinedAt = now
	conn := p.conn
	if p.plan.leave {
		p.timers = append(p.timers, time.AfterFunc(p.plan.after, func() { p.leave(ctx) }))
	}
	if p.plan.drop {
		p.timers = append(p.timers, time.AfterFunc(p.plan.after, p.drop))
	}
	p.timers = append(p.timers, time.AfterFunc(p.r.cfg.timeout, func() { p.giveUp(ctx) }))
	write := p.writeLocked(ctx, conn, p.plan.joinFrame)
	p.mu.Unlock()
	p.r.c.joinedAt(now)
	write()
}

// leave is a leaver's timer: leave_queue, if still waiting.
func (p *player) leave(ctx context.Context) {
	p.sendLeave(ctx, phaseLeaving)
}

// giveUp is the -timeout timer: a player still waiting leaves the queue.
// It says goodbye with leave_queue rather than by closing, so the answer
// tells whether a match raced the timeout (then it is match_found).
func (p *player) giveUp(ctx context.Context) {
	p.sendLeave(ctx, phaseGivingUp)
}

// sendLeave moves a waiting player to next and sends leave_queue, with a
// timer that closes the socket if no answer comes.
func (p *player) sendLeave(ctx context.Context, next phase) {
	p.mu.Lock()
	if p.phase != phaseJoining && p.phase != phaseWaiting {
		p.mu.Unlock()
		return
	}
	p.phase = next
	conn := p.conn
	p.timers = append(p.timers, time.AfterFunc(leaveAnswerWait, p.abandon))
	write := p.writeLocked(ctx, conn, leaveFrame)
	p.mu.Unlock()
	write()
}

// abandon closes the socket of a player whose leave_queue went
// unanswered; the close takes it out of the queue all the same.
func (p *player) abandon() {
	p.mu.Lock()
	if p.phase != phaseLeaving && p.phase != phaseGivingUp {
		p.mu.Unlock()
		return
	}
	p.abandoned = true
	conn := p.conn
	p.markClosedLocked(conn)
	p.mu.Unlock()
	p.r.c.fail("leave_unanswered", fmt.Sprintf("no answer to leave_queue within %v", leaveAnswerWait))
	conn.CloseNow()
}

// drop is a dropper's timer: close the socket without a close frame, the
// way a crashed client or a lost network goes.
func (p *player) drop() {
	p.mu.Lock()
	if p.phase != phaseJoining && p.phase != phaseWaiting {
		p.mu.Unlock()
		return
	}
	p.phase = phaseDropped
	conn := p.conn
	p.markClosedLocked(conn)
	p.mu.Unlock()
	conn.CloseNow()
}

// frame is any server frame, decoded loosely: matchload reads what it
// needs and ignores what later versions add.
type frame struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	MatchID   string `json:"match_id"`
	PartnerID string `json:"partner_id"`
	Room      *struct {
		MatchID string `json:"match_id"`
		Player1 string `json:"player1"`
		Player2 string `json:"player2"`
	} `json:"room"`
}

// handle acts on one frame from the server and reports whether the player
// is done.
func (p *player) handle(conn *websocket.Conn, data []byte) bool {
	now := time.Now()
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		p.r.c.fail("bad_frame", truncate(string(data)))
		return false
	}
	switch f.Type {
	case "queued":
		p.mu.Lock()
		if p.phase == phaseJoining {
			p.phase = phaseWaiting
		}
		p.mu.Unlock()
	case "match_found":
		s := sighting{MatchID: f.MatchID, Partner: f.PartnerID, At: now}
		if f.Room != nil {
			s.RoomID, s.Player1, s.Player2 = f.Room.MatchID, f.Room.Player1, f.Room.Player2
		}
		p.r.check.matched(p.id, s)
		p.mu.Lock()
		joined := p.joinedAt
		p.mu.Unlock()
		if !joined.IsZero() {
			p.r.c.sample(now.Sub(joined), now)
		}
		p.finish(outMatched)
		p.goodbye(conn)
		return true
	case "left_queue":
		p.r.check.left(p.id, now)
		p.mu.Lock()
		ph := p.phase
		p.mu.Unlock()
		o := outLeft
		switch ph {
		case phaseGivingUp:
			o = outTimedOut
		case phaseLeaving:
		default:
			p.r.c.fail("unexpected_left_queue", "left_queue without leave_queue")
		}
		p.finish(o)
		p.goodbye(conn)
		return true
	case "error":
		code := f.Code
		if code == "" {
			code = "error"
		}
		p.r.c.fail(code, f.Message)
		p.mu.Lock()
		ph := p.phase
		p.mu.Unlock()
		switch ph {
		case phaseJoining:
			// The answer to join_queue (the server answers in order):
			// the join changed nothing, so the player gives up.
			p.finish(outFailed)
		case phaseLeaving:
			// A refused leave_queue; closing the socket takes the player
			// out of the queue all the same.
			p.finish(outLeft)
		case phaseGivingUp:
			p.finish(outTimedOut)
		default:
			return false
		}
		p.goodbye(conn)
		return true
	case "reconnect":
		// The instance is going away and will close the socket; go now
		// rather than wait for the close, and let readFailed reconnect.
		p.mu.Lock()
		p.reconnect = true
		p.markClosedLocked(conn)
		p.mu.Unlock()
		conn.CloseNow()
	case "pong":
	default:
		p.r.c.fail("unexpected_frame", truncate(string(data)))
	}
	return false
}

// readFailed handles the end of a socket and reports whether the player
// goes on with a new one.
func (p *player) readFailed(ctx context.Context, conn *websocket.Conn, err error) bool {
	p.mu.Lock()
	p.markClosedLocked(conn)
	ph, out, asked, abandoned := p.phase, p.out, p.reconnect, p.abandoned
	p.reconnect = false
	p.mu.Unlock()
	switch {
	case out != outPending:
		return false
	case ph == phaseDropped:
		p.finish(outDropped)
		return false
	case ctx.Err() != nil:
		p.finish(outUnfinished)
		return false
	case abandoned && ph == phaseGivingUp:
		p.finish(outTimedOut)
		return false
	case abandoned:
		p.finish(outLeft)
		return false
	}
	status := websocket.CloseStatus(err)
	if asked || status == websocket.StatusServiceRestart || status == websocket.StatusGoingAway {
		return p.reconnectAfter(ctx)
	}
	switch ph {
	case phaseGivingUp:
		p.finish(outTimedOut) // the close took it out of the queue
	case phaseLeaving:
		p.finish(outLeft)
	default:
		p.r.c.fail("connection_lost", truncate(err.Error()))
		p.finish(outFailed)
	}
	return false
}

// reconnectAfter opens a socket to the next URL after the server asked
// (reconnect message, 1012) or went away (1001), and picks up where the
// player was: it joins again if it was queued, leaves again if it was
// leaving. It reports whether the player goes on.
func (p *player) reconnectAfter(ctx context.Context) bool {
	p.mu.Lock()
	if p.reconnects >= maxReconnects {
		p.mu.Unlock()
		p.r.c.fail("reconnect_limit", fmt.Sprintf("asked to reconnect more than %d times", maxReconnects))
		p.finish(outFailed)
		return false
	}
	p.reconnects++
	next := (p.url + 1) % len(p.r.cfg.urls)
	p.mu.Unlock()
	p.r.c.reconnects.Add(1)
	conn, err := p.connect(ctx, next)
	if err != nil {
		if ctx.Err() != nil {
			p.finish(outUnfinished)
		} else {
			p.finish(outFailed)
		}
		return false
	}
	p.setConn(conn, next)
	p.mu.Lock()
	ph := p.phase
	if ph == phaseWaiting {
		p.phase = phaseJoining
	}
	write := func() {}
	switch ph {
	case phaseJoining, phaseWaiting:
		write = p.writeLocked(ctx, conn, p.plan.joinFrame)
	case phaseLeaving, phaseGivingUp:
		write = p.writeLocked(ctx, conn, leaveFrame)
	case phaseDropped:
		p.markClosedLocked(conn)
	}
	p.mu.Unlock()
	if ph == phaseDropped {
		// Its drop timer fired while it reconnected: drop this one too.
		conn.CloseNow()
	}
	write()
	return true
}

// connect logs in (once) and opens a socket to URL number u. Failures are
// counted here; an ended ctx is not a failure of the server.
func (p *player) connect(ctx context.Context, u int) (*websocket.Conn, error) {
	r := p.r
	if p.token == "" {
		token, err := r.token(ctx, p, u)
		if err != nil {
			if ctx.Err() == nil {
				r.c.fail("login_failed", truncate(err.Error()))
			}
			return nil, err
		}
		p.token = token
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, r.cfg.urls[u]+"/ws", &websocket.DialOptions{
		HTTPClient: r.client,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + p.token}},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		r.c.dialFailed.Add(1)
		code, msg := "dial_failed", err.Error()
		if resp != nil && resp.Body != nil {
			// A refused handshake carries matchd's error body, e.g.
			// rate_limited for a player's sixth socket.
			if c, m := errorBody(resp.Body); c != "" {
				code, msg = c, fmt.Sprintf("%d %s", resp.StatusCode, m)
			}
		}
		r.c.fail(code, truncate(msg))
		return nil, err
	}
	// match_found carries the room with its question; 64 KiB is ample
	// and still bounds a misbehaving server.
	conn.SetReadLimit(64 << 10)
	return conn, nil
}

// setConn makes conn the player's socket.
func (p *player) setConn(conn *websocket.Conn, u int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conn, p.url, p.sockOpen = conn, u, true
	p.r.check.opened(p.id, time.Now())
	p.r.c.socketOpened()
}

// markClosedLocked records, once, that conn (the player's socket) closed
// now. Called with p.mu held, so the checker sees opens and closes in
// order.
func (p *player) markClosedLocked(conn *websocket.Conn) {
	if !p.sockOpen || p.conn != conn {
		return
	}
	p.sockOpen = false
	p.r.check.closed(p.id, time.Now())
	p.r.c.socketClosed()
}

// goodbye closes conn with a normal close handshake.
func (p *player) goodbye(conn *websocket.Conn) {
	p.mu.Lock()
	p.markClosedLocked(conn)
	p.mu.Unlock()
	conn.Close(websocket.StatusNormalClosure, "")
}

// writeLocked takes msg's turn among the player's frames and returns the
// write, to be called once p.mu is released. Frames are written in the
// order their writes were taken under p.mu, whichever goroutine writes
// them: a leave_queue whose timer fires while join_queue is still being
// sent must not overtake it, or the server rightly answers left_queue
// first and then queues the player (a race this tool once blamed on the
// server). A failed write closes the socket (coder/websocket does so on a
// timeout), and the read loop reports it; nothing else to do.
func (p *player) writeLocked(ctx context.Context, conn *websocket.Conn, msg []byte) func() {
	prev, done := p.lastWrite, make(chan struct{})
	p.lastWrite = done
	return func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		conn.Write(wctx, websocket.MessageText, msg)
	}
}

// finish records the player's outcome, once.
func (p *player) finish(o outcome) {
	p.mu.Lock()
	if p.out != outPending {
		p.mu.Unlock()
		return
	}
	p.out = o
	p.phase = phaseDone
	joined := !p.joinedAt.IsZero()
	p.mu.Unlock()
	c := p.r.c
	if joined {
		c.waiting.Add(-1)
	}
	switch o {
	case outMatched:
		c.matched.Add(1)
	case outLeft:
		c.left.Add(1)
	case outDropped:
		c.dropped.Add(1)
	case outTimedOut:
		c.timedOut.Add(1)
	case outFailed:
		c.failed.Add(1)
	case outUnfinished:
		c.unfinished.Add(1)
	}
}

// stop ends the player: its timers stop, its socket closes, and an
// outcome is recorded if none was.
func (p *player) stop() {
	p.finish(outUnfinished)
	p.mu.Lock()
	for _, t := range p.timers {
		t.Stop()
	}
	p.timers = nil
	conn := p.conn
	if conn != nil {
		p.markClosedLocked(conn)
	}
	p.mu.Unlock()
	if conn != nil {
		conn.CloseNow()
	}
}

// outcome returns how the player's run ended.
func (p *player) outcome() outcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out
}

// token returns a session token for p: minted with the shared secret, or
// from URL number u's dev login.
func (r *runner) token(ctx context.Context, p *player, u int) (string, error) {
	rating := p.plan.rating
	if r.minter != nil {
		return r.minter.Issue(auth.Claims{UserID: p.id, Rating: &rating}, tokenTTL)
	}
	body, _ := json.Marshal(map[string]any{"user_id": p.id, "rating": rating})
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.urls[u]+"/api/dev/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		code, msg := errorBody(resp.Body)
		return "", fmt.Errorf("dev login: %d %s: %s", resp.StatusCode, code, msg)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<10)).Decode(&out); err != nil || out.Token == "" {
		return "", errors.New("dev login: no token in the answer")
	}
	return out.Token, nil
}

// errorBody reads matchd's JSON error body, {"error":{"code","message"}}.
func errorBody(body io.Reader) (code, message string) {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	json.NewDecoder(io.LimitReader(body, 1024)).Decode(&e)
	return e.Error.Code, e.Error.Message
}

// truncate shortens s for an error example.
func truncate(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}
