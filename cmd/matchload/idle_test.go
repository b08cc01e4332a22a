package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIdleConfig(t *testing.T) {
	cfg := mustConfig(t, "-idle", "100", "-secret", "s")
	if cfg.mode() != "idle" || cfg.total() != 100 || cfg.duration != 0 {
		t.Errorf("idle config: mode %q, total %d, duration %v", cfg.mode(), cfg.total(), cfg.duration)
	}
	for _, args := range [][]string{
		{"-idle", "-1"},
		{"-idle", "10", "-players", "10"},
		{"-idle", "10", "-rate", "10", "-duration", "1s"},
		{"-idle", "10", "-preconnect", "5"},
		{"-idle", "10", "-drop-share", "0.1"},
		{"-idle", "10", "-chart", "x.svg"},
		{"-idle", "10", "-duration", "-1s"},
	} {
		if _, err := parseConfig(args, io.Discard); err == nil {
			t.Errorf("parseConfig(%q) accepted", args)
		}
	}
}

// TestIdleHoldsSockets opens idle sockets with minted tokens, holds them
// for -duration and reports them, without a single join.
func TestIdleHoldsSockets(t *testing.T) {
	s := startServer(t)
	cfg := mustConfig(t, "-url", s.url, "-idle", "30", "-secret", testSecret, "-duration", "300ms")
	var progress bytes.Buffer
	res := run(context.Background(), cfg, &progress, false)
	rep := &res.report
	want := IdleSummary{Sockets: 30, Opened: 30, OpenAtEnd: 30}
	got := *rep.Idle
	got.OpenS, got.HeldS = 0, 0
	if got != want {
		t.Errorf("idle summary %+v, want %+v", got, want)
	}
	if rep.Idle.HeldS < 0.3 {
		t.Errorf("held %.3fs, want at least the 300ms of -duration", rep.Idle.HeldS)
	}
	if rep.Players.Joined != 0 || rep.Matches != 0 || len(rep.Errors) != 0 || rep.TokenSource != "minted" {
		t.Errorf("report %+v: want no joins, matches or errors, minted tokens", rep)
	}
	if !strings.Contains(progress.String(), "matchload: idle: 30 of 30 sockets open") {
		t.Errorf("progress lacks the idle line:\n%s", progress.String())
	}
	if rep.Connections.Peak != 30 {
		t.Errorf("peak %d, want 30", rep.Connections.Peak)
	}

	var out, text bytes.Buffer
	if !writeReport(cfg, rep, &out, &text) {
		t.Error("writeReport failed")
	}
	if status := idleStatus(rep, &text); status != 0 {
		t.Errorf("status %d, want 0", status)
	}
	if !strings.Contains(out.String(), "opened 30 in") {
		t.Errorf("text report:\n%s", out.String())
	}
	cfg.jsonOut = true
	out.Reset()
	writeReport(cfg, rep, &out, &text)
	var decoded struct {
		Mode string       `json:"mode"`
		Idle *IdleSummary `json:"idle"`
	}
	if err := json.Unmarshal(out.Bytes(), &decoded); err != nil || decoded.Mode != "idle" || decoded.Idle == nil || decoded.Idle.Opened != 30 {
		t.Errorf("JSON report %s: %v", out.String(), err)
	}
}

// TestIdleUntilInterruptedCountsLosses holds sockets until the context
// ends; sockets the server closes meanwhile are counted as lost.
func TestIdleUntilInterruptedCountsLosses(t *testing.T) {
	s := startServer(t)
	cfg := mustConfig(t, "-url", s.url, "-idle", "10")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *result)
	progress := &syncBuffer{}
	go func() { done <- run(ctx, cfg, progress, false) }()
	eventually(t, 10*time.Second, func() bool { return strings.Contains(progress.String(), "matchload: idle:") }, "all sockets open")
	s.stop() // closes every socket with 1001
	time.Sleep(200 * time.Millisecond)
	cancel()
	res := <-done
	i := res.report.Idle
	if i.Opened != 10 || i.Lost != 10 || !res.report.Interrupted {
		t.Errorf("idle summary %+v, interrupted %v; want 10 opened and lost, interrupted", i, res.report.Interrupted)
	}
	if status := idleStatus(&res.report, io.Discard); status != 0 {
		t.Errorf("status %d, want 0: every socket opened", status)
	}
}

func TestNotificationTimes(t *testing.T) {
	r := newRunner(mustConfig(t, "-players", "4"))
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ps := make([]*player, 4)
	for i := range ps {
		ps[i] = r.newPlayer(i)
	}
	// a joins at 0, b at 10: b completes the pair; a hears at 12, b at 13.
	ps[0].joinedAt, ps[1].joinedAt = at(0), at(10)
	r.check.matched(ps[0].id, sighting{MatchID: "M1", Partner: ps[1].id, At: at(12)})
	r.check.matched(ps[1].id, sighting{MatchID: "M1", Partner: ps[0].id, At: at(13)})
	// Only one side of M2 saw it: no pair time.
	ps[2].joinedAt, ps[3].joinedAt = at(0), at(1)
	r.check.matched(ps[2].id, sighting{MatchID: "M2", Partner: ps[3].id, At: at(5)})
	got := r.notificationTimes()
	if len(got) != 1 || got[0] != 3*time.Millisecond {
		t.Errorf("notification times %v, want [3ms]", got)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
