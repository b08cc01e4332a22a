package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/metrics"
	"github.com/matchd/matchd/questions"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/web"
)

func TestMain(m *testing.M) {
	goredis.SetLogger(redis.LogAdapter{Logger: slog.New(slog.DiscardHandler)})
	goleak.VerifyTestMain(m)
}

const (
	pool    = "e2e"
	channel = "match_channel"
	secret  = "e2e-shared-secret"
	// leaseTTL is short so that ghosts of a crashed instance go quickly.
	leaseTTL = time.Second
)

// instance is one in-process matchd: gateway plus Redis backend, with its
// own Redis client.
type instance struct {
	name    string
	url     string
	client  goredis.UniversalClient
	backend *redis.Backend
	metrics *metrics.Metrics
	ts      *httptest.Server
	conns   *trackingListener
	stop    func()
	stopped bool
}

// newClient returns a client of one redis-server (one addr) or of a
// cluster (several), with timeouts short enough that an outage is noticed
// in a test's time.
func newClient(addrs []string) goredis.UniversalClient {
	return goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:        addrs,
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		MaxRetries:   1,
	})
}

// startInstance starts a matchd instance on addrs. opts adjust its Redis
// backend's configuration.
func startInstance(t *testing.T, name string, addrs []string, opts ...func(*redis.Config)) *instance {
	t.Helper()
	return startInstanceWith(t, name, addrs, nil, opts...)
}

// startInstanceWith is startInstance with webOpt, when not nil, adjusting
// the gateway's configuration (its Matchmaker and Instance are set).
func startInstanceWith(t *testing.T, name string, addrs []string, webOpt func(*web.Config, goredis.UniversalClient), opts ...func(*redis.Config)) *instance {
	t.Helper()
	bank, err := questions.Load()
	if err != nil {
		t.Fatal(err)
	}
	client := newClient(addrs)
	id := name + "-" + matchd.NewMatchID()[:6]
	m := metrics.New(prometheus.NewRegistry())
	cfg := redis.Config{
		Client:     client,
		Rooms:      matchd.QuestionRooms{Bank: bank, Clock: matchd.SystemClock{}},
		Pool:       pool,
		Channel:    channel,
		Instance:   id,
		Observer:   m,
		LeaseTTL:   leaseTTL,
		MatchEvery: 50 * time.Millisecond,
		RetryMin:   10 * time.Millisecond,
		RetryMax:   50 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	backend := redis.New(cfg)
	m.WatchQueue("default", backend.QueueSize)
	m.WatchRooms("default", backend.ActiveRooms)
	webCfg := web.Config{
		Matchmaker:  backend,
		JoinLimiter: redis.NewLimiter(client, "join", matchd.Window{Max: 10, Per: time.Minute}),
		Auth:        auth.New([]byte(secret), nil),
		Metrics:     m,
		DevLogin:    true,
		Instance:    id,
	}
	if webOpt != nil {
		webOpt(&webCfg, client)
	}
	srv := web.New(webCfg)
	ts := httptest.NewUnstartedServer(srv.Handler())
	conns := &trackingListener{Listener: ts.Listener, conns: map[net.Conn]struct{}{}}
	ts.Listener = conns
	ts.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(ctx)
	}()
	in := &instance{name: name, url: ts.URL, client: client, backend: backend, metrics: m, ts: ts, conns: conns}
	in.stop = func() {
		if in.stopped {
			return
		}
		in.stopped = true
		cancel()
		<-done
		ts.Close()
		backend.Close()
		client.Close()
	}
	t.Cleanup(in.stop)
	return in
}

// crash stops the instance the way a killed process stops: its Redis
// connections go first, so nothing it would do on the way down (dropping
// the tickets of its closing sockets, renewing its lease) reaches Redis;
// then its sockets are cut without a close handshake.
func (in *instance) crash() {
	in.client.Close()
	in.backend.Close()
	in.conns.cut()
	in.stop()
}

// trackingListener remembers every connection it accepts, so that a crash
// can cut them all: httptest forgets a connection once a WebSocket
// hijacks it.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
	}
	return c, err
}

// cut closes every accepted connection without a goodbye.
func (l *trackingListener) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

// player is a WebSocket client with a session valid on every instance.
type player struct {
	t     testing.TB
	id    string
	token string
	// done is set by a goroutine driving the player when it is finished
	// with it, so the test knows whom to tell to leave.
	done atomic.Bool

	mu sync.Mutex // guards ws, which a reconnect replaces
	ws *websocket.Conn
}

// conn returns the player's current socket.
func (p *player) conn() *websocket.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ws
}

func newPlayer(t testing.TB, id string) *player {
	t.Helper()
	a := auth.New([]byte(secret), nil)
	token, err := a.Issue(auth.Claims{UserID: id}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &player{t: t, id: id, token: token}
}

// connect opens a socket to in, closing any previous one.
func (p *player) connect(in *instance) {
	p.t.Helper()
	if err := p.dial(in); err != nil {
		p.t.Fatal(err)
	}
}

// dial is connect for goroutines other than the test's.
func (p *player) dial(in *instance) error {
	if old := p.conn(); old != nil {
		old.CloseNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(in.url, "http")+"/ws?token="+p.token, nil)
	if err != nil {
		return fmt.Errorf("%s: dial %s: %w", p.id, in.name, err)
	}
	p.mu.Lock()
	p.ws = ws
	p.mu.Unlock()
	p.t.Cleanup(func() { ws.CloseNow() })
	return nil
}

func (p *player) send(typ string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.conn().Write(ctx, websocket.MessageText, []byte(`{"type":"`+typ+`"}`))
}

// read returns the next message; ok is false when the socket failed.
func (p *player) read(within time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_, data, err := p.conn().Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("bad JSON %q: %w", data, err)
	}
	return m, nil
}

// expect reads the next message and fails unless it has type typ.
func (p *player) expect(typ string) map[string]any {
	p.t.Helper()
	m, err := p.read(5 * time.Second)
	if err != nil {
		p.t.Fatalf("%s: read: %v", p.id, err)
	}
	if m["type"] != typ {
		p.t.Fatalf("%s: got %v, want %q", p.id, m, typ)
	}
	return m
}

// pairUp has first join and wait, then second join and be matched with
// first. It returns first's and second's match_found frames, after
// checking that they name one match and each other.
func pairUp(t *testing.T, first, second *player) (a, b map[string]any) {
	t.Helper()
	first.send("join_queue")
	first.expect("queued")
	second.send("join_queue")
	b = second.matched()
	a = first.expect("match_found")
	if a["match_id"] != b["match_id"] || a["partner_id"] != second.id || b["partner_id"] != first.id {
		t.Fatalf("%s got %v and %s got %v: want one match naming each other", first.id, a, second.id, b)
	}
	return a, b
}

// matched reads queued (if it comes first) and then match_found.
func (p *player) matched() map[string]any {
	p.t.Helper()
	m, err := p.read(5 * time.Second)
	if err == nil && m["type"] == "queued" {
		m, err = p.read(5 * time.Second)
	}
	if err != nil || m["type"] != "match_found" {
		p.t.Fatalf("%s: got %v (%v), want match_found", p.id, m, err)
	}
	return m
}

// quiet checks nothing but a pong is waiting.
func (p *player) quiet() {
	p.t.Helper()
	if err := p.send("ping"); err != nil {
		p.t.Fatal(err)
	}
	p.expect("pong")
}

func queueSize(t testing.TB, c goredis.UniversalClient) int {
	t.Helper()
	n, err := c.ZCard(context.Background(), "matchd:{"+pool+"}:queue").Result()
	if err != nil {
		t.Fatalf("ZCARD: %v", err)
	}
	return int(n)
}

func health(t testing.TB, in *instance) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(in.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}
