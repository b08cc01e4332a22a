package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/memory"
	"github.com/matchd/matchd/metrics"
	"github.com/matchd/matchd/web"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is a real matchd HTTP server on a free port with the embedded
// backend.
type harness struct {
	t       testing.TB
	url     string
	backend *memory.Backend
	rooms   *matchdtest.FlakyRooms
	// stopRun ends the server's Run (it drains) and waits for it.
	stopRun func()
}

type option func(*web.Config)

func withoutDevLogin(c *web.Config) { c.DevLogin = false }

// withoutMessageLimit lifts the per-socket message rate, for tests that
// send many frames quickly on purpose.
func withoutMessageLimit(c *web.Config) { c.MessageRate, c.MessageBurst = 1e6, 1e6 }

// withJoinLimit limits joins per player with an in-process limiter.
func withJoinLimit(w matchd.Window) option {
	return func(c *web.Config) { c.JoinLimiter = memory.NewLimiter(w, nil) }
}

func start(t testing.TB, opts ...option) *harness {
	t.Helper()
	rooms := matchdtest.NewFlakyRooms(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	backend := memory.New(memory.Config{Rooms: rooms, Observer: m, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	m.WatchQueue("default", backend.QueueSize)
	m.WatchRooms("default", backend.ActiveRooms)
	cfg := web.Config{
		Matchmaker:     backend,
		Auth:           auth.New([]byte("harness-secret"), nil),
		Metrics:        m,
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		DevLogin:       true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	ts, stopRun := serve(cfg)
	t.Cleanup(func() {
		stopRun()
		ts.Close()
		backend.Close()
	})
	return &harness{t: t, url: ts.URL, backend: backend, rooms: rooms, stopRun: stopRun}
}

// serve runs a server built from cfg on a free port: ts serves its
// routes, and stopRun ends its Run (it drains) and waits for it. Close ts
// after stopRun.
func serve(cfg web.Config) (ts *httptest.Server, stopRun func()) {
	srv := web.New(cfg)
	ts = httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(ctx)
	}()
	return ts, func() {
		cancel()
		<-done
	}
}

// do sends an HTTP request and returns the status and decoded JSON body.
func (h *harness) do(method, path, token string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			h.t.Fatalf("%s %s: decoding body: %v", method, path, err)
		}
	}
	return resp.StatusCode, out
}

// login returns a dev-login token for user.
func (h *harness) login(user string) string {
	h.t.Helper()
	status, body := h.do("POST", "/api/dev/login", "", map[string]any{"user_id": user})
	if status != http.StatusOK {
		h.t.Fatalf("dev login %s: status %d %v", user, status, body)
	}
	return body["token"].(string)
}

func (h *harness) queueSize() int {
	h.t.Helper()
	_, body := h.do("GET", "/api/matchmaking/queue-status", "", nil)
	return int(body["queue_size"].(float64))
}

// client is a WebSocket client of the harness.
type client struct {
	t    testing.TB
	ws   *websocket.Conn
	user string
}

func (h *harness) dial(token string) *client {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/ws?token="+token, nil)
	if err != nil {
		h.t.Fatalf("dial: %v (response %v)", err, resp)
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: h.t, ws: ws}
	h.t.Cleanup(func() { ws.CloseNow() })
	return c
}

// player logs user in and connects one socket.
func (h *harness) player(user string) *client {
	c := h.dial(h.login(user))
	c.user = user
	return c
}

func (c *client) sendRaw(typ websocket.MessageType, data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, data); err != nil {
		c.t.Fatalf("%s: write: %v", c.user, err)
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.sendRaw(websocket.MessageText, b)
}

// read returns the next message, failing the test after 5 s.
func (c *client) read() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, data, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("%s: read: %v", c.user, err)
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("%s: got a binary frame", c.user)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("%s: bad JSON from server %q: %v", c.user, data, err)
	}
	return m
}

// expect reads the next message and fails unless it has type typ.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	m := c.read()
	if m["type"] != typ {
		c.t.Fatalf("%s: got %v, want a %q message", c.user, m, typ)
	}
	return m
}

// quiet checks that nothing but the pong to a ping is waiting: the server
// answers in order, so anything sent before the pong arrives first.
func (c *client) quiet() {
	c.t.Helper()
	c.send(map[string]string{"type": "ping"})
	c.expect("pong")
}

func (c *client) join()  { c.send(map[string]string{"type": "join_queue"}) }
func (c *client) leave() { c.send(map[string]string{"type": "leave_queue"}) }

// matched reads the answer to a join that is to end in a match: queued,
// then match_found (or match_found alone, for a socket that did not join).
func (c *client) matched() map[string]any {
	c.t.Helper()
	m := c.read()
	if m["type"] == "queued" {
		m = c.read()
	}
	if m["type"] != "match_found" {
		c.t.Fatalf("%s: got %v, want match_found", c.user, m)
	}
	return m
}
