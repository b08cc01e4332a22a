// Package web is matchd's edge: the WebSocket gateway, the REST API and the
// embedded lobby and room pages. It turns requests into calls on a
// matchd.Matchmaker and maps domain error codes to HTTP statuses and wire
// errors in one place (writeError, errorFrame).
package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/metrics"
	"github.com/matchd/matchd/questions"
)

// Config configures a Server. Matchmaker and Auth are required.
type Config struct {
	Matchmaker matchd.Matchmaker
	Auth       *auth.Authority
	Metrics    *metrics.Metrics
	// MetricsHandler serves GET /metrics; nil serves 404.
	MetricsHandler http.Handler
	Logger         *slog.Logger
	Clock          matchd.Clock
	// Topics are the question bank's topics: the names join_queue's
	// preferences.topics may use. Default: the embedded bank's.
	Topics []string
	// Ratings supplies the rating of a player whose token has no rating
	// claim; nil, or no stored rating, means matchd.DefaultRating.
	Ratings matchd.Ratings
	// DevLogin enables POST /api/dev/login.
	DevLogin bool
	// TokenTTL is the lifetime of dev-login tokens. Default 24 h.
	TokenTTL time.Duration
	// Instance names this gateway as the owner of the tickets its sockets
	// join. Default: a random id per Server.
	Instance string
	// JoinLimiter limits join_queue per player (the design's 10 a minute);
	// nil means no limit. Use a Redis limiter when instances share Redis,
	// so the limit holds across them.
	JoinLimiter matchd.Limiter
	// MessageRate and MessageBurst limit the frames one socket may send
	// (default 10/s, burst 20). Past the limit a frame is answered with
	// rate_limited; a socket that keeps going is closed (1008).
	MessageRate  float64
	MessageBurst int
	// MaxSockets caps the sockets one player may hold open on this
	// instance (default 5); another is refused with 429.
	MaxSockets int
	// PingInterval is how often the server pings each socket; a peer that
	// does not answer within PingTimeout is closed and its ticket released,
	// so a dead peer is gone within their sum (default 20 s + 10 s).
	PingInterval, PingTimeout time.Duration
	// AdminToken enables the admin API for requests bearing it; empty
	// turns the API off.
	AdminToken string
	// ShutdownTimeout bounds how long Run waits, once draining, for the
	// sockets' handlers to finish. Default 10 s.
	ShutdownTimeout time.Duration
	// Lifecycle runs match sessions: ready checks, timers, chat, leaving,
	// feedback and history (room.go, session_api.go). nil turns the room
	// lifecycle off: rooms are then only what the matchmaker made.
	Lifecycle *matchd.Lifecycle
	// TickEvery is how often this instance applies due session timers.
	// Default 1 s.
	TickEvery time.Duration
	// ChatRate and ChatBurst limit the chat messages of one socket
	// (default 1 a second, bursts of 5).
	ChatRate  float64
	ChatBurst int
	// OriginPatterns are extra origins allowed to open WebSockets (host
	// patterns as in github.com/coder/websocket's AcceptOptions); the
	// page's own origin is always allowed.
	OriginPatterns []string
}

// Server serves matchd over HTTP. Create it with New, mount Handler, and
// run Run for as long as it serves: Run delivers match events to sockets.
type Server struct {
	cfg       Config
	log       *slog.Logger
	mm        matchd.Matchmaker
	estimator *matchd.WaitEstimator
	hub       *hub
	rooms     *rooms // nil without a Lifecycle
	mux       *http.ServeMux
	// sockets counts running WebSocket handlers, which http.Server's
	// Shutdown does not wait for; Run does, so that the tickets of closing
	// sockets are dropped before the process exits.
	sockets sync.WaitGroup
	// draining is set when Run's context ends: the instance is going away,
	// takes no new sockets and tells its clients to reconnect elsewhere.
	draining atomic.Bool
	// socketsMu orders counting a socket (sockets.Add) before the drain
	// starts, or not at all; see handleWebSocket.
	socketsMu sync.Mutex
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(prometheus.NewRegistry()) // counted, not exposed
	}
	if cfg.Clock == nil {
		cfg.Clock = matchd.SystemClock{}
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 24 * time.Hour
	}
	if cfg.MessageRate <= 0 {
		cfg.MessageRate = 10
	}
	if cfg.MessageBurst <= 0 {
		cfg.MessageBurst = 20
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 20 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 10 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.MaxSockets <= 0 {
		cfg.MaxSockets = 5
	}
	if cfg.Topics == nil {
		if bank, err := questions.Load(); err == nil { // the embedded bank is checked by its tests
			cfg.Topics = bank.Topics()
		}
	}
	if cfg.Instance == "" {
		cfg.Instance = matchd.NewMatchID()[:12]
	}
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = time.Second
	}
	if cfg.ChatRate <= 0 {
		cfg.ChatRate = 1
	}
	if cfg.ChatBurst <= 0 {
		cfg.ChatBurst = 5
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		mm:        cfg.Matchmaker,
		estimator: matchd.NewWaitEstimator(),
	}
	s.hub = newHub(s)
	if cfg.Lifecycle != nil {
		s.rooms = newRooms(s)
	}
	s.routes()
	return s
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP serves a request, turning a panic in a handler into a plain
// 500 error: the stack goes to the log, never to the client.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			s.writeError(w, r, matchd.Errorf(matchd.EInternal, "internal error"))
		}
	}()
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/dev/login", s.handleDevLogin)
	m.HandleFunc("GET /api/matchmaking/queue-status", s.handleQueueStatus)
	m.HandleFunc("GET /api/matches/{match_id}", s.handleRoom)
	s.sessionRoutes(m)
	// Anything no route takes: a JSON error like every other.
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, matchd.Errorf(matchd.ENotFound, "no such endpoint: %s %s", r.Method, truncate(r.URL.Path, 100)))
	})
	s.adminRoutes(m)
	m.HandleFunc("GET /healthz", s.handleHealth)
	m.HandleFunc("GET /readyz", s.handleReady)
	m.HandleFunc("GET /livez", s.handleLive)
	m.HandleFunc("GET /ws", s.handleWebSocket)
	if s.cfg.MetricsHandler != nil {
		m.Handle("GET /metrics", s.cfg.MetricsHandler)
	}
	s.pageRoutes(m)
	s.mux = m
}

// Run delivers match events to this instance's sockets until ctx ends.
// It resubscribes when the event stream breaks.
//
// When ctx ends the instance drains, for a restart that loses nobody:
// /readyz turns 503 and new sockets are refused; every client is sent
// {"type":"reconnect"} and closed with 1012 (service restart); their
// tickets stay in place, so a player who reconnects to another instance
// keeps their place (with Redis; the embedded backend's state goes with
// the process anyway). Run returns when the sockets' handlers are done, or
// after ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	if s.rooms != nil {
		var wg sync.WaitGroup
		defer wg.Wait() // after draining, so rooms stop with the sockets
		wg.Go(func() { s.rooms.run(ctx) })
	}
	err := s.hub.run(ctx)
	if s.rooms != nil {
		// The hub has stopped delivering, so no session is opened after
		// this: wait for those being opened.
		defer s.rooms.opening.Wait()
	}
	s.socketsMu.Lock()
	s.draining.Store(true)
	s.socketsMu.Unlock()
	s.cfg.Metrics.Draining.Set(1)
	s.hub.drainAll()
	done := make(chan struct{})
	go func() {
		s.sockets.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("socket handlers still running when the shutdown timeout passed", "timeout", s.cfg.ShutdownTimeout)
	}
	return err
}

// Draining reports whether the instance is shutting down.
func (s *Server) Draining() bool { return s.draining.Load() }

// statusOf maps a domain error code to an HTTP status: the one place the
// REST API decides statuses.
func statusOf(code string) int {
	switch code {
	case matchd.EInvalid:
		return http.StatusBadRequest
	case matchd.EUnauthorized:
		return http.StatusUnauthorized
	case matchd.EForbidden:
		return http.StatusForbidden
	case matchd.ENotFound:
		return http.StatusNotFound
	case matchd.EConflict:
		return http.StatusConflict
	case matchd.ERateLimited:
		return http.StatusTooManyRequests
	case matchd.EUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// writeError answers with {"error":{"code","message"}}. Unclassified errors
// are logged here, once, and shown to the client only as "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := matchd.ErrorCode(err)
	if code == matchd.EInternal || code == matchd.EUnavailable {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if d := matchd.ErrorRetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(d)))
	}
	writeJSON(w, statusOf(code), map[string]any{
		"error": map[string]string{"code": code, "message": matchd.ErrorMessage(err)},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// errTooLarge is the answer to a request body over the limit.
var errTooLarge = matchd.Errorf(matchd.EInvalid, "request body too large")

// decodeBody decodes a JSON object body of at most limit bytes into v,
// refusing unknown fields and trailing data.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errTooLarge
		}
		return invalidJSON(err)
	}
	if d.More() {
		return matchd.Errorf(matchd.EInvalid, "trailing data after the JSON object")
	}
	return nil
}
