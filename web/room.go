package web

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/matchd/matchd"
)

// Room lifecycle on the wire: the ready, chat and leave_room frames, the
// room events the lifecycle and the players' sockets send, and room_state
// for a socket that (re)joins a room. The Lifecycle (package matchd) holds
// the rules; this file only carries them.

// MaxChatLength caps one chat message, in characters.
const MaxChatLength = 500

// rooms is the gateway's side of the room lifecycle. It exists only when
// Config.Lifecycle is set. Its goroutines (timers, room events) belong to
// Server.Run. rooms.mu is a leaf lock: nothing else is taken while it is
// held, and it is never held across I/O; the requeue take-over follows the
// hub's order (playerEntry.op, then hub.mu).
type rooms struct {
	s  *Server
	lc *matchd.Lifecycle

	mu sync.Mutex
	// chat limits each socket's chat messages. Guarded by mu.
	chat map[*conn]*rate.Limiter
	// in records the room each socket was last shown, so that a resync
	// (after the event stream broke) can send room_state to exactly those.
	in map[*conn]string

	// opens bounds the sessions being opened in the background at once;
	// opening tracks them, so that Run returns only after they are done.
	opens   chan struct{}
	opening sync.WaitGroup
}

// maxOpens bounds the store calls opening sessions in the background.
const maxOpens = 64

func newRooms(s *Server) *rooms {
	return &rooms{s: s, lc: s.cfg.Lifecycle, chat: make(map[*conn]*rate.Limiter), in: make(map[*conn]string), opens: make(chan struct{}, maxOpens)}
}

// run applies due timers and delivers room events until ctx ends.
func (r *rooms) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.tick(ctx) })
	wg.Go(func() { r.deliverEvents(ctx) })
	wg.Wait()
}

// tick applies the sessions' due timers every TickEvery. Every instance
// ticks; the store makes each transition happen once.
func (r *rooms) tick(ctx context.Context) {
	t := time.NewTicker(r.s.cfg.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tctx, cancel := context.WithTimeout(ctx, opTimeout)
		if _, err := r.lc.Tick(tctx); err != nil && ctx.Err() == nil {
			r.s.log.Warn("applying session timers failed", "err", err)
		}
		cancel()
	}
}

// deliverEvents delivers room events to this instance's sockets. Like
// match events, the stream is a wake-up: after each (re)subscribe, every
// socket shown a room gets room_state again.
func (r *rooms) deliverEvents(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		events, err := r.lc.Store().Subscribe(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.s.log.Warn("subscribing to room events failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		r.resync(ctx)
		for ev := range events {
			r.deliver(ctx, ev)
		}
		if ctx.Err() != nil {
			return
		}
		r.s.log.Warn("room event stream ended; resubscribing")
	}
}

// conns returns player's sockets on this instance.
func (r *rooms) conns(player string) []*conn {
	h := r.s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*conn
	if e := h.players[player]; e != nil {
		for c := range e.conns {
			out = append(out, c)
		}
	}
	return out
}

// deliver sends ev to its player's sockets here.
func (r *rooms) deliver(ctx context.Context, ev matchd.RoomEvent) {
	conns := r.conns(ev.To)
	if ev.Type == matchd.RoomRequeued {
		r.requeued(ctx, ev, conns)
	}
	if len(conns) == 0 {
		return
	}
	if ev.Type == matchd.RoomPartnerOnline && ev.Reason != presenceReply && r.showing(conns, ev.MatchID) {
		// The player who just connected learns that their partner is
		// here too. A reply is not replied to.
		r.publish(ctx, matchd.RoomEvent{Type: matchd.RoomPartnerOnline, MatchID: ev.MatchID, To: ev.From, Reason: presenceReply})
	}
	var f []byte
	if ev.Type == matchd.RoomState {
		sctx, cancel := context.WithTimeout(ctx, opTimeout)
		sess, err := r.lc.Store().Session(sctx, ev.MatchID)
		cancel()
		if err != nil {
			return // gone, or unreachable: the next frame or resync tells
		}
		f = roomStateFrame(sess, ev.To, r.now())
		for _, c := range conns {
			r.shown(c, ev.MatchID)
		}
	} else {
		f = roomEventFrame(ev)
	}
	for _, c := range conns {
		c.send(f)
	}
}

// presenceReply marks a partner_connected that answers one: it is not
// answered again, and the frame does not show it.
const presenceReply = "reply"

// showing reports whether one of conns shows the room matchID (a room
// page, not a lobby that is about to leave for it).
func (r *rooms) showing(conns []*conn, matchID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range conns {
		if r.in[c] == matchID {
			return true
		}
	}
	return false
}

// requeued makes a socket of the requeued player here the holder of their
// new ticket, so that it leaves the queue when that socket closes. If the
// ticket went to another instance (the player said ready there), a join
// from here takes it over, keeping its place.
//
// A player who has no socket here although their new ticket is ours has
// left since they said ready: the ticket is dropped, as their socket's
// close would have dropped it, so that nobody is matched with a ghost. If
// they are connected to another instance, that one's take-over wins: a
// drop by a former owner removes nothing.
func (r *rooms) requeued(ctx context.Context, ev matchd.RoomEvent, conns []*conn) {
	jctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if len(conns) == 0 {
		if ev.Owner == r.s.cfg.Instance {
			if _, err := r.s.mm.Drop(jctx, ev.To, r.s.cfg.Instance); err != nil {
				r.s.log.Warn("dropping the requeued ticket of a player who left failed", "player", ev.To, "err", err)
			}
		}
		return
	}
	c := conns[0]
	c.entry.op.Lock()
	defer c.entry.op.Unlock()
	// The join stands from now on; if the requeued ticket has already
	// been matched (the backend matches it at once when it can), the
	// match's event may have come and gone, so the backend is asked, and
	// a match it reports ends the standing join. A match formed after
	// this call ends it by its own event.
	r.s.hub.setJoined(c.entry, c)
	var room *matchd.Room
	var err error
	if ev.Owner == r.s.cfg.Instance {
		room, err = r.s.mm.Assignment(jctx, ev.To)
	} else {
		var t matchd.Ticket
		if t, err = c.ticket(jctx, c.prefs); err == nil {
			var res matchd.JoinResult
			res, err = r.s.mm.Join(jctx, t)
			room = res.Room
		}
	}
	switch {
	case err != nil:
		r.s.log.Warn("taking over a requeued ticket failed", "player", ev.To, "err", err)
	case room != nil:
		r.s.hub.setJoined(c.entry, nil)
	}
}

// resync sends room_state to every socket here that was shown a room.
func (r *rooms) resync(ctx context.Context) {
	r.mu.Lock()
	shown := make(map[*conn]string, len(r.in))
	for c, id := range r.in {
		shown[c] = id
	}
	r.mu.Unlock()
	for c, id := range shown {
		sctx, cancel := context.WithTimeout(ctx, opTimeout)
		sess, err := r.lc.Store().Session(sctx, id)
		cancel()
		if err != nil {
			continue // gone (cleaned up) or unreachable: nothing to resume
		}
		c.send(roomStateFrame(sess, c.player, r.now()))
	}
}

func (r *rooms) now() time.Time { return r.lc.Config().Clock.Now() }

// shown records that c was shown the room matchID.
func (r *rooms) shown(c *conn, matchID string) {
	r.mu.Lock()
	r.in[c] = matchID
	r.mu.Unlock()
}

// forget drops what is kept for a closed socket.
func (r *rooms) forget(c *conn) {
	r.mu.Lock()
	delete(r.in, c)
	delete(r.chat, c)
	r.mu.Unlock()
}

// opened opens room's session (the first instance to do so wins) and
// returns the room with the session's status, for match_found.
func (r *rooms) opened(ctx context.Context, room *matchd.Room) *matchd.Room {
	sess, err := r.lc.Open(ctx, *room)
	if err != nil {
		r.s.log.Warn("opening a session failed", "match", room.MatchID, "err", err)
		return room
	}
	shown := *room
	shown.Status = sess.Status
	return &shown
}

// connected runs when c opens while its player holds room: it is sent
// match_found with the session's status, then room_state, and the partner
// learns that the player is here.
func (r *rooms) connected(ctx context.Context, c *conn, room *matchd.Room) {
	sess, err := r.lc.Open(ctx, *room)
	if err != nil {
		c.sendMatch(room.MatchID, matchFoundFrame(room, c.player))
		c.send(errorFrame(err))
		return
	}
	shown := *room
	shown.Status = sess.Status
	c.sendMatch(room.MatchID, matchFoundFrame(&shown, c.player))
	r.shown(c, room.MatchID)
	c.send(roomStateFrame(sess, c.player, r.now()))
	if !sess.Ended() {
		r.publish(ctx, matchd.RoomEvent{Type: matchd.RoomPartnerOnline, MatchID: sess.MatchID, To: sess.Partner(c.player), From: c.player})
	}
}

// disconnected runs when c has closed: if it was the player's last socket
// here and they are in a session that is not over, the partner learns it.
func (r *rooms) disconnected(c *conn) {
	r.mu.Lock()
	id, ok := r.in[c]
	r.mu.Unlock()
	r.forget(c)
	if !ok || len(r.conns(c.player)) > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	sess, err := r.lc.Store().Session(ctx, id)
	if err != nil || sess.Ended() {
		return
	}
	r.publish(ctx, matchd.RoomEvent{Type: matchd.RoomPartnerOffline, MatchID: id, To: sess.Partner(c.player)})
}

func (r *rooms) publish(ctx context.Context, ev matchd.RoomEvent) {
	if err := r.lc.Store().Publish(ctx, ev); err != nil {
		r.s.log.Warn("publishing a room event failed", "type", ev.Type, "err", err)
	}
}

// room returns the room matchID for c's player: the player's current room
// when matchID is empty. The room must be the player's.
func (r *rooms) room(ctx context.Context, c *conn, matchID string) (matchd.Room, error) {
	if matchID == "" {
		room, err := r.s.mm.Assignment(ctx, c.player)
		if err != nil {
			return matchd.Room{}, err
		}
		if room == nil {
			return matchd.Room{}, matchd.Errorf(matchd.ENotFound, "you are not in a match")
		}
		return *room, nil
	}
	if !matchd.ValidMatchID(matchID) {
		return matchd.Room{}, matchd.Errorf(matchd.ENotFound, "no such match")
	}
	room, err := r.s.mm.Room(ctx, matchID)
	if err != nil {
		return matchd.Room{}, err
	}
	if !room.Has(c.player) {
		return matchd.Room{}, matchd.Errorf(matchd.EForbidden, "you are not a player of this match")
	}
	return room, nil
}

// handle answers a ready, chat or leave_room frame.
func (r *rooms) handle(ctx context.Context, c *conn, f frame) {
	room, err := r.room(ctx, c, f.MatchID)
	if err != nil {
		c.send(errorFrame(err))
		return
	}
	var sess matchd.Session
	switch f.Type {
	case msgReady:
		sess, err = r.lc.Ready(ctx, room, c.player, r.s.cfg.Instance)
	case msgLeaveRoom:
		sess, err = r.lc.Leave(ctx, room, c.player)
	case msgChat:
		err = r.chatMessage(ctx, c, room, f.Text)
		if err == nil {
			return // relayed; the sender shows their own message
		}
	}
	if err != nil {
		c.send(errorFrame(err))
		return
	}
	r.shown(c, room.MatchID)
	c.send(roomStateFrame(sess, c.player, r.now()))
}

// chatMessage relays a chat message to the partner, if the socket's chat
// rate and the message's size allow it and the session is not over.
// Messages are relayed, never stored.
func (r *rooms) chatMessage(ctx context.Context, c *conn, room matchd.Room, text string) error {
	if strings.TrimSpace(text) == "" {
		return matchd.Errorf(matchd.EInvalid, "chat text is empty")
	}
	if n := utf8.RuneCountInString(text); n > MaxChatLength {
		return matchd.Errorf(matchd.EInvalid, "chat text is %d characters; at most %d are allowed", n, MaxChatLength)
	}
	r.mu.Lock()
	l := r.chat[c]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(r.s.cfg.ChatRate), r.s.cfg.ChatBurst)
		r.chat[c] = l
	}
	now := r.s.cfg.Clock.Now()
	res := l.ReserveN(now, 1)
	wait := res.DelayFrom(now)
	if wait > 0 {
		res.CancelAt(now)
	}
	r.mu.Unlock()
	if wait > 0 {
		r.s.cfg.Metrics.RateLimited.WithLabelValues("chat").Inc()
		return &matchd.Error{Code: matchd.ERateLimited, Message: "too many chat messages; slow down", RetryAfter: wait}
	}
	sess, err := r.lc.Open(ctx, room)
	if err != nil {
		return err
	}
	if sess.Ended() {
		return matchd.Errorf(matchd.EInvalid, "this session has ended")
	}
	r.shown(c, room.MatchID)
	return r.lc.Store().Publish(ctx, matchd.RoomEvent{Type: matchd.RoomChat, MatchID: room.MatchID, To: room.Partner(c.player), From: c.player, Text: text})
}

// cooldown returns a rate_limited error while player may not join after
// failing to show up for a match.
func (r *rooms) cooldown(ctx context.Context, player string) error {
	d, err := r.lc.Store().Cooldown(ctx, player, r.lc.Config().Clock.Now())
	if err != nil || d <= 0 {
		return err
	}
	return &matchd.Error{Code: matchd.ERateLimited, Message: "you missed your last match's ready check; wait before joining again", RetryAfter: d}
}

// Room frames.

type roomEventMsg struct {
	Type         string     `json:"type"`
	MatchID      string     `json:"match_id"`
	Reason       string     `json:"reason,omitempty"`
	SecondsLeft  int        `json:"seconds_left,omitempty"`
	QuestionID   string     `json:"question_id,omitempty"`
	QuestionText string     `json:"question_text,omitempty"`
	EndsAt       *time.Time `json:"ends_at,omitempty"`
	From         string     `json:"from,omitempty"`
	Text         string     `json:"text,omitempty"`
}

// roomEventFrame is the frame of a room event: its type, match id and the
// fields of that type (docs/protocol.md).
func roomEventFrame(ev matchd.RoomEvent) []byte {
	m := roomEventMsg{Type: ev.Type, MatchID: ev.MatchID, Reason: ev.Reason, SecondsLeft: ev.SecondsLeft, From: ev.From, Text: ev.Text}
	if ev.Type == matchd.RoomPartnerOnline || ev.Type == matchd.RoomPartnerOffline {
		m.Reason, m.From = "", "" // presence frames carry only the match
	}
	if ev.Type == matchd.RoomStarted {
		m.QuestionID, m.QuestionText = ev.QuestionID, ev.QuestionText
		ends := ev.EndsAt.UTC()
		m.EndsAt = &ends
	}
	return mustJSON(m)
}

type roomStateMsg struct {
	Type         string     `json:"type"`
	MatchID      string     `json:"match_id"`
	Status       string     `json:"status"`
	PartnerID    string     `json:"partner_id"`
	YouReady     bool       `json:"you_ready"`
	PartnerReady bool       `json:"partner_ready"`
	ReadyBy      *time.Time `json:"ready_by,omitempty"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	EndsAt       *time.Time `json:"ends_at,omitempty"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
	SecondsLeft  *int       `json:"seconds_left,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	QuestionID   string     `json:"question_id"`
	QuestionText string     `json:"question_text"`
	Duration     int        `json:"duration_minutes"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// roomStateFrame is everything a socket needs to show (or resume) the
// session, from player's side, at now: seconds_left counts to the end of
// the ready window while waiting and to the end while active, so that a
// client's countdown does not depend on its clock.
func roomStateFrame(s matchd.Session, player string, now time.Time) []byte {
	i := s.Index(player)
	m := roomStateMsg{
		Type: "room_state", MatchID: s.MatchID, Status: s.Status, PartnerID: s.Partner(player),
		YouReady: i >= 0 && s.Ready[i], PartnerReady: i >= 0 && s.Ready[1-i],
		ReadyBy: timePtr(s.ReadyBy), StartedAt: timePtr(s.StartedAt), EndsAt: timePtr(s.EndsAt), EndedAt: timePtr(s.EndedAt),
		Reason: s.Reason, QuestionID: s.QuestionID, QuestionText: s.QuestionText, Duration: int(s.Duration / time.Minute),
	}
	var until time.Time
	switch s.Status {
	case matchd.StatusWaiting:
		until = s.ReadyBy
	case matchd.StatusActive:
		until = s.EndsAt
	}
	if !until.IsZero() {
		left := max(int(until.Sub(now).Round(time.Second)/time.Second), 0)
		m.SecondsLeft = &left
	}
	return mustJSON(m)
}

// Hooks of the gateway (ws.go, hub.go) into the room lifecycle; each does
// what the gateway did before when the lifecycle is off.

// shownRoom returns room as players are shown it in match_found: with its
// session's status (opening the session, which starts its timers).
func (s *Server) shownRoom(ctx context.Context, room *matchd.Room) *matchd.Room {
	if s.rooms == nil {
		return room
	}
	return s.rooms.opened(ctx, room)
}

// announcedRoom is room as match_found shows it when its match event
// arrives: with the status a new session starts in, which the lifecycle's
// configuration decides, so no store call is needed. The session itself
// is opened in the background. The hub delivers events one after another,
// and a store call per event there would hold every later match_found
// behind it: under load the event stream fell behind, its subscription
// was dropped, and the resyncs that followed added to the load.
func (s *Server) announcedRoom(room *matchd.Room) *matchd.Room {
	if s.rooms == nil {
		return room
	}
	shown := *room
	shown.Status = matchd.NewSession(*room, s.rooms.lc.Config().SessionConfig, time.Time{}).Status
	s.rooms.openLater(*room)
	return &shown
}

// openLater opens room's session in the background, at most maxOpens at
// once. Opening is idempotent: the first open wins, and every later step
// of the session opens it too if this one failed.
func (r *rooms) openLater(room matchd.Room) {
	r.opening.Add(1)
	go func() {
		defer r.opening.Done()
		r.opens <- struct{}{}
		defer func() { <-r.opens }()
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if _, err := r.lc.Open(ctx, room); err != nil {
			r.s.log.Warn("opening a session failed", "match", room.MatchID, "err", err)
		}
	}()
}

// connectedToRoom tells a socket that opened while its player holds room:
// match_found, then room_state to resume the session.
func (c *conn) connectedToRoom(ctx context.Context, room *matchd.Room) {
	if c.h.s.rooms == nil {
		c.sendMatch(room.MatchID, matchFoundFrame(room, c.player))
		return
	}
	c.h.s.rooms.connected(ctx, c, room)
}

// roomFrame handles ready, chat and leave_room.
func (c *conn) roomFrame(ctx context.Context, f frame) {
	if c.h.s.rooms == nil {
		c.send(errorFrame(matchd.Errorf(matchd.EInvalid, "%s: the room lifecycle is off on this server", f.Type)))
		return
	}
	c.h.s.rooms.handle(ctx, c, f)
}

// cooldown reports whether c's player may join now.
func (c *conn) cooldown(ctx context.Context) error {
	if c.h.s.rooms == nil {
		return nil
	}
	return c.h.s.rooms.cooldown(ctx, c.player)
}
