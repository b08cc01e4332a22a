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

	reg prometheus.Registerer
}

var _ matchd.Observer = (*Metrics)(nil)

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
	reg.MustRegister(m.Joins, m.Leaves, m.Matches, m.RoomFailures, m.TimeToMatch, m.Connections, m.Messages, m.PendingDrops, m.Draining)
	return m
}

// WatchQueue registers the queue-size gauge, which calls queueSize at every
// scrape. It is separate from New because the backend that answers it
// takes the Metrics as its Observer.
func (m *Metrics) WatchQueue(queueSize func(context.Context) (int, error)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "matchd_queue_size", Help: "Tickets waiting in the queue.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := queueSize(ctx)
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
