// Package metrics defines matchd's Prometheus metrics
// (github.com/prometheus/client_golang) on a registry the caller owns. No
// metric has a player id as a label: ids are unbounded and private.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/matchd/matchd"
)

// Metrics holds matchd's instruments. It implements matchd.Observer for the
// matcher's events; the gateway updates the rest directly.
type Metrics struct {
	Joins        prometheus.Counter
	Leaves       prometheus.Counter
	Matches      prometheus.Counter
	RoomFailures prometheus.Counter
	TimeToMatch  prometheus.Histogram
	Connections  prometheus.Gauge
	Messages     *prometheus.CounterVec // by message type, client to server
	PendingDrops prometheus.Gauge       // disconnected players not yet dropped (store unreachable)
	Draining     prometheus.Gauge       // 1 while this instance shuts down
	Sent         *prometheus.CounterVec // by message type, server to client
	RateLimited  *prometheus.CounterVec // by limit: join, message, sockets
	Sweeps       prometheus.Histogram
	SweptTickets prometheus.Counter
	Redis        *prometheus.HistogramVec // by command (script file or command name)
	RedisErrors  *prometheus.CounterVec   // by command
	// Sessions: the room lifecycle.
	SessionsStarted prometheus.Counter
	SessionsEnded   *prometheus.CounterVec // by reason

	reg prometheus.Registerer
}

var (
	_ matchd.Observer        = (*Metrics)(nil)
	_ matchd.SessionObserver = (*Metrics)(nil)
)

// SessionStarted implements matchd.SessionObserver.
func (m *Metrics) SessionStarted(matchd.Session) { m.SessionsStarted.Inc() }

// SessionEnded implements matchd.SessionObserver.
func (m *Metrics) SessionEnded(s matchd.Session) { m.SessionsEnded.WithLabelValues(s.Reason).Inc() }

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		Joins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "matchd_joins_total", Help: "join_queue requests accepted (including repeated joins).",
		}),
		Leaves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "matchd_leaves_total", Help: "Tickets removed from the queue by leave_queue or a closed socket.",
		}),
		Matches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "matchd_matches_total", Help: "Matches formed by this instance.",
		}),
		RoomFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "matchd_room_creation_failures_total", Help: "Room creations that failed; the pair stayed queued.",
		}),
		TimeToMatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "matchd_time_to_match_seconds",
			Help:    "Time from a player's join to their match.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "matchd_websocket_connections", Help: "Open WebSocket connections on this instance.",
		}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "matchd_websocket_messages_received_total", Help: "WebSocket messages received, by type (\"invalid\" for undecodable frames).",
		}, []string{"type"}),
	}
	m.PendingDrops = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "matchd_pending_drops", Help: "Players whose socket closed while queued but whose ticket could not be removed yet (store unreachable); retried when it is back.",
	})
	m.Draining = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "matchd_draining", Help: "1 while this instance is shutting down and telling its clients to reconnect elsewhere.",
	})
	m.Sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "matchd_websocket_messages_sent_total", Help: "WebSocket messages sent, by type.",
	}, []string{"type"})
	m.RateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "matchd_rate_limited_total", Help: "Requests refused by a limit: join (joins per player), message (frames per socket), sockets (sockets per player).",
	}, []string{"limit"})
	m.Sweeps = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "matchd_sweep_duration_seconds", Help: "Duration of the sweeps that remove the tickets of dead instances.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	m.SweptTickets = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "matchd_swept_tickets_total", Help: "Tickets of dead instances removed by sweeps.",
	})
	m.Redis = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "matchd_redis_command_duration_seconds", Help: "Duration of Redis commands and scripts, by command (a script by its file).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"command"})
	m.RedisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "matchd_redis_errors_total", Help: "Redis commands that failed, by command.",
	}, []string{"command"})
	m.SessionsStarted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "matchd_sessions_started_total", Help: "Match sessions that started after both players were ready.",
	})
	m.SessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "matchd_sessions_ended_total", Help: "Match sessions that ended, by reason: time_up, left, no_show (one player not ready), not_ready (neither), expired.",
	}, []string{"reason"})
	// Make the label values known up front, so the series exist at 0.
	for _, l := range []string{"join", "message", "sockets"} {
		m.RateLimited.WithLabelValues(l)
	}
	for _, r := range []string{matchd.EndTimeUp, matchd.EndLeft, matchd.EndNoShow, matchd.EndNotReady, matchd.EndExpired} {
		m.SessionsEnded.WithLabelValues(r)
	}
	reg.MustRegister(m.Joins, m.Leaves, m.Matches, m.RoomFailures, m.TimeToMatch, m.Connections, m.Messages, m.PendingDrops, m.Draining,
		m.Sent, m.RateLimited, m.Sweeps, m.SweptTickets, m.Redis, m.RedisErrors, m.SessionsStarted, m.SessionsEnded)
	return m
}

// WatchQueue registers the queue-size gauge of pool, which calls queueSize
// at every scrape. It is separate from New because the backend that
// answers it takes the Metrics as its Observer.
func (m *Metrics) WatchQueue(pool string, queueSize func(context.Context) (int, error)) {
	m.watch("matchd_queue_size", "Tickets waiting in the pool's queue (shared by all instances on one Redis: do not sum).", pool, queueSize)
}

// WatchRooms registers the gauge of live rooms (concurrent matches).
func (m *Metrics) WatchRooms(pool string, activeRooms func(context.Context) (int, error)) {
	m.watch("matchd_active_rooms", "Live match rooms: concurrent matches (shared by all instances on one Redis: do not sum).", pool, activeRooms)
}

// watch registers a gauge read from the backend at each scrape; -1 when
// the backend cannot be reached.
func (m *Metrics) watch(name, help, pool string, read func(context.Context) (int, error)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: name, Help: help, ConstLabels: prometheus.Labels{"pool": pool},
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := read(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
}

// Matched implements matchd.Observer.
func (m *Metrics) Matched(_ matchd.Room, waits [2]time.Duration) {
	m.Matches.Inc()
	for _, w := range waits {
		m.TimeToMatch.Observe(w.Seconds())
	}
}

// RoomFailed implements matchd.Observer.
func (m *Metrics) RoomFailed(error) { m.RoomFailures.Inc() }

// Swept implements matchd.Observer.
func (m *Metrics) Swept(d time.Duration, removed int) {
	m.Sweeps.Observe(d.Seconds())
	m.SweptTickets.Add(float64(removed))
}

// RedisCommand records one Redis command; it fits redis.CommandObserver.
func (m *Metrics) RedisCommand(command string, d time.Duration, err error) {
	m.Redis.WithLabelValues(command).Observe(d.Seconds())
	if err != nil {
		m.RedisErrors.WithLabelValues(command).Inc()
	}
}
