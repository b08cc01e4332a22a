package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/memory"
	"github.com/matchd/matchd/metrics"
	"github.com/matchd/matchd/questions"
	"github.com/matchd/matchd/web"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSecret is the auth secret of every test server, so that tokens
// minted with -secret (and reconnects to another server) are accepted.
const testSecret = "matchload-test-secret"

// server is an in-process matchd: the gateway on the embedded backend,
// with production limits (10 joins a minute per player, 5 sockets).
type server struct {
	url  string
	stop func() // closes its sockets (1001) and stops it; idempotent
}

// startServer starts a server on a free port, stopped at the end of the
// test.
func startServer(t *testing.T) *server {
	t.Helper()
	bank, err := questions.Load()
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	backend := memory.New(memory.Config{Rooms: matchd.QuestionRooms{Bank: bank, Clock: matchd.SystemClock{}}, Observer: m})
	srv := web.New(web.Config{
		Matchmaker:  backend,
		Metrics:     m,
		Auth:        auth.New([]byte(testSecret), nil),
		DevLogin:    true,
		JoinLimiter: memory.NewLimiter(matchd.Window{Max: 10, Per: time.Minute}, nil),
	})
	ts := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(ctx)
	}()
	var once sync.Once
	s := &server{url: ts.URL}
	// stopSockets ends Run, which closes every socket with 1001, the way
	// a stopping instance does; the HTTP server stays up until cleanup.
	s.stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(func() {
		s.stop()
		ts.Close()
		backend.Close()
	})
	return s
}

// queueSize reads the server's queue size.
func (s *server) queueSize(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(s.url + "/api/matchmaking/queue-status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		QueueSize int `json:"queue_size"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.QueueSize
}

// mustConfig parses matchload flags, failing the test on an error.
func mustConfig(t *testing.T, args ...string) config {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-progress=false"}, args...), io.Discard)
	if err != nil {
		t.Fatalf("parseConfig(%q): %v", args, err)
	}
	return cfg
}

// eventually polls cond until it holds, failing the test after within.
func eventually(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
