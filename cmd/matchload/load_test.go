package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkClean fails the test on any invariant violation.
func checkClean(t *testing.T, rep *Report) {
	t.Helper()
	if rep.ViolationCount != 0 {
		t.Fatalf("%d violations: %+v", rep.ViolationCount, rep.Violations)
	}
}

// TestRunPlayers is the acceptance run: 200 players at once against a
// real matchd, 10 % leaving and 5 % dropping.
func TestRunPlayers(t *testing.T) {
	s := startServer(t)
	cfg := mustConfig(t, "-url", s.url, "-players", "200", "-leave-share", "0.1", "-drop-share", "0.05", "-timeout", "2s", "-seed", "7")
	res := run(context.Background(), cfg, io.Discard, false)
	rep := &res.report
	checkClean(t, rep)

	if got := len(res.players); got != 200 {
		t.Fatalf("players = %d, want 200", got)
	}
	leavers, droppers, timedOut := 0, 0, 0
	for _, p := range res.players {
		switch o := p.outcome(); {
		case p.plan.leave:
			leavers++
		case p.plan.drop:
			droppers++
		case o == outTimedOut:
			timedOut++ // waiting alone at the end
		case o != outMatched:
			t.Errorf("player %s (neither leaving nor dropping): %v, want matched", p.id, o)
		}
	}
	if timedOut > 1 {
		t.Errorf("%d players timed out; at most one can be left waiting alone", timedOut)
	}
	if leavers == 0 || droppers == 0 {
		t.Errorf("plans: %d leavers, %d droppers; want some of each with seed 7", leavers, droppers)
	}
	p := rep.Players
	if p.Started != 200 || p.Joined != 200 || p.Failed != 0 || p.Unfinished != 0 {
		t.Errorf("players = %+v, want 200 started and joined, none failed or unfinished", p)
	}
	if sum := p.Matched + p.Left + p.Dropped + p.TimedOut; sum != 200 {
		t.Errorf("outcomes %+v add up to %d, want 200", p, sum)
	}
	if rep.Connections.Opened != 200 || rep.Connections.Failed != 0 || rep.Connections.Peak < 1 {
		t.Errorf("connections = %+v, want 200 opened, none failed", rep.Connections)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors = %v, want none", rep.Errors)
	}

	// The JSON report: every field present, figures sane.
	var buf bytes.Buffer
	if err := rep.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	if err := json.Unmarshal(buf.Bytes(), &j); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, buf.Bytes())
	}
	for _, k := range []string{"urls", "mode", "players", "matches", "time_to_match_ms", "throughput_matches_per_s", "window_s", "errors", "connections", "queue", "violations", "violation_count"} {
		if _, ok := j[k]; !ok {
			t.Errorf("JSON report has no %q", k)
		}
	}
	ttm, _ := j["time_to_match_ms"].(map[string]any)
	p50, p90, p99, mx := ttm["p50"].(float64), ttm["p90"].(float64), ttm["p99"].(float64), ttm["max"].(float64)
	if !(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= mx) {
		t.Errorf("time_to_match_ms = %v, want 0 < p50 <= p90 <= p99 <= max", ttm)
	}
	if n := int(ttm["count"].(float64)); n != p.Matched {
		t.Errorf("time_to_match_ms.count = %d, want one per matched player (%d)", n, p.Matched)
	}
	if m := j["matches"].(float64); m <= 0 || int(m) > 100 || int(m) < p.Matched/2 {
		t.Errorf("matches = %v, want between matched/2 (%d) and 100", m, p.Matched/2)
	}
	if tp := j["throughput_matches_per_s"].(float64); tp <= 0 {
		t.Errorf("throughput = %v, want > 0", tp)
	}
	// Notification: one per pair both of whose players saw the match,
	// never longer than the longer time-to-match of the two.
	n := rep.Notification
	if n.Count == 0 || n.Count > rep.Matches || n.Max > rep.TimeToMatch.Max || n.P50 > n.P99 {
		t.Errorf("notification_ms = %+v with %d matches and time_to_match %+v", n, rep.Matches, rep.TimeToMatch)
	}
}

// TestLeaveAtOnce has half the players leave the moment they join: the
// leave timer fires while join_queue is still being written, and the two
// frames must still reach the server in that order. When the leave once
// overtook the join, the server answered left_queue and then queued the
// player, and the checker reported partners matched with players who had
// left.
func TestLeaveAtOnce(t *testing.T) {
	s := startServer(t)
	cfg := mustConfig(t, "-url", s.url, "-players", "200", "-leave-share", "0.5", "-leave-within", "0", "-timeout", "2s", "-seed", "3")
	res := run(context.Background(), cfg, io.Discard, false)
	rep := &res.report
	checkClean(t, rep)
	left := 0
	for _, p := range res.players {
		switch o := p.outcome(); {
		case p.plan.leave && o == outLeft:
			left++
		case o == outMatched, o == outTimedOut:
		default:
			t.Errorf("player %s (leaver %v): %v, want matched, left or timed out", p.id, p.plan.leave, o)
		}
	}
	if left == 0 || rep.Players.Failed != 0 {
		t.Errorf("%d left, %d failed: want some leaves and no failures", left, rep.Players.Failed)
	}
}

// TestRunRateTwoServers runs the open-loop arrival schedule with minted
// tokens and pre-connected players, spread over two servers.
func TestRunRateTwoServers(t *testing.T) {
	a, b := startServer(t), startServer(t)
	cfg := mustConfig(t, "-url", a.url+","+b.url, "-secret", testSecret,
		"-rate", "200", "-duration", "1s", "-drain", "1s", "-preconnect", "40",
		"-leave-share", "0.1", "-drop-share", "0.05")
	start := time.Now()
	res := run(context.Background(), cfg, io.Discard, false)
	rep := &res.report
	checkClean(t, rep)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run took %v; the hard cap is -duration + -drain", took)
	}
	if rep.TokenSource != "minted" || rep.Mode != "rate" || rep.PlannedPlayers != 200 {
		t.Errorf("report header = %s/%s/%d, want minted/rate/200", rep.TokenSource, rep.Mode, rep.PlannedPlayers)
	}
	matchedOn := [2]int{}
	waitingAlone := [2]int{}
	for _, p := range res.players {
		switch o := p.outcome(); {
		case o == outMatched:
			matchedOn[p.plan.url]++
		case p.plan.leave || p.plan.drop:
		case o == outUnfinished || o == outTimedOut:
			waitingAlone[p.plan.url]++
		default:
			t.Errorf("player %s: %v, want matched", p.id, o)
		}
	}
	if matchedOn[0] == 0 || matchedOn[1] == 0 || waitingAlone[0] > 1 || waitingAlone[1] > 1 {
		t.Errorf("matched per server %v, waiting alone %v: want matches on both, at most one alone each", matchedOn, waitingAlone)
	}
	if rep.Players.Failed != 0 || rep.Connections.Opened != 200 {
		t.Errorf("failed %d, opened %d: want 0 and 200", rep.Players.Failed, rep.Connections.Opened)
	}
	if rep.TimeToMatch.Count == 0 || rep.TimeToMatch.P50 > rep.TimeToMatch.P99 || rep.TimeToMatch.P99 > rep.TimeToMatch.Max {
		t.Errorf("time to match = %+v", rep.TimeToMatch)
	}
}

// TestReconnectAfterGoingAway stops the instance of a waiting player: it
// reconnects to the next URL, joins again and is matched there.
func TestReconnectAfterGoingAway(t *testing.T) {
	a, b := startServer(t), startServer(t)
	cfg := mustConfig(t, "-url", a.url, "-url", b.url, "-secret", testSecret, "-players", "2", "-timeout", "20s")
	done := make(chan *result)
	go func() { done <- run(context.Background(), cfg, io.Discard, false) }()
	// Player 0 waits on a, player 1 on b.
	eventually(t, 10*time.Second, func() bool { return a.queueSize(t) == 1 && b.queueSize(t) == 1 }, "one player waiting on each server")
	a.stop()
	var res *result
	select {
	case res = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("run did not end after the reconnect")
	}
	rep := &res.report
	checkClean(t, rep)
	if rep.Players.Matched != 2 || rep.Connections.Reconnects != 1 || rep.Matches != 1 {
		t.Errorf("matched %d, reconnects %d, matches %d: want 2, 1, 1", rep.Players.Matched, rep.Connections.Reconnects, rep.Matches)
	}
}

// TestInterrupt cancels a run, as Ctrl-C does: it stops at once and
// reports what it had.
func TestInterrupt(t *testing.T) {
	s := startServer(t)
	cfg := mustConfig(t, "-url", s.url, "-players", "3", "-timeout", "60s")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRunner(cfg)
	done := make(chan *result)
	go func() { done <- r.run(ctx, io.Discard, false) }()
	eventually(t, 10*time.Second, func() bool { return r.c.matched.Load() == 2 && r.c.waiting.Load() == 1 }, "two players matched, one waiting")
	cancel()
	var res *result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop when its context ended")
	}
	rep := &res.report
	checkClean(t, rep)
	if !rep.Interrupted || rep.Players.Matched != 2 || rep.Players.Unfinished != 1 {
		t.Errorf("interrupted %v, matched %d, unfinished %d: want true, 2, 1", rep.Interrupted, rep.Players.Matched, rep.Players.Unfinished)
	}
	var text bytes.Buffer
	rep.writeText(&text)
	if !strings.Contains(text.String(), "interrupted") {
		t.Errorf("text report does not say it was interrupted:\n%s", text.String())
	}
}

// TestPreferences sends preferences in join_queue: players who ask for
// the same are matched; a topic the server's bank does not have is
// answered invalid_message, counted by code, and those players give up.
func TestPreferences(t *testing.T) {
	s := startServer(t)
	cfg := mustConfig(t, "-url", s.url, "-players", "4", "-prefs", "difficulty=hard;topics=algorithms:0.5,system_design:0.5;duration=45")
	res := run(context.Background(), cfg, io.Discard, false)
	rep := &res.report
	checkClean(t, rep)
	if rep.Players.Failed != 0 || rep.Matches < 1 {
		t.Errorf("failed %d, matches %d, errors %v: want none failed, at least one match", rep.Players.Failed, rep.Matches, rep.Errors)
	}

	cfg = mustConfig(t, "-url", s.url, "-players", "4", "-prefs", "topics=cooking")
	res = run(context.Background(), cfg, io.Discard, false)
	rep = &res.report
	checkClean(t, rep)
	if rep.Players.Failed != 4 || rep.Errors["invalid_message"] != 4 {
		t.Errorf("failed %d, errors %v: want 4 players failed with invalid_message", rep.Players.Failed, rep.Errors)
	}
}

// TestExecute runs the command's whole path: JSON on stdout, the text
// report and chart notice on stderr, the chart file, exit status 0.
func TestExecute(t *testing.T) {
	s := startServer(t)
	chart := filepath.Join(t.TempDir(), "out.svg")
	cfg := mustConfig(t, "-url", s.url, "-players", "20", "-timeout", "2s", "-json", "-chart", chart)
	var stdout, stderr bytes.Buffer
	if code := execute(context.Background(), cfg, &stdout, &stderr, false); code != 0 {
		t.Fatalf("exit status %d, stderr:\n%s", code, stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
	if rep.Players.Matched != 20 {
		t.Errorf("matched %d, want 20", rep.Players.Matched)
	}
	if !strings.Contains(stderr.String(), "time-to-match") {
		t.Errorf("stderr lacks the text report:\n%s", stderr.String())
	}
	if _, err := os.Stat(chart); err != nil {
		t.Errorf("chart: %v", err)
	}
}

// TestExecuteWrongSecret: a run in which no socket opens is a failure,
// and the refusals are counted by the server's error code.
func TestExecuteWrongSecret(t *testing.T) {
	s := startServer(t)
	cfg := mustConfig(t, "-url", s.url, "-players", "2", "-secret", "not-the-servers-secret", "-timeout", "1s")
	var stdout, stderr bytes.Buffer
	if code := execute(context.Background(), cfg, &stdout, &stderr, false); code != 1 {
		t.Fatalf("exit status %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "unauthorized 2") {
		t.Errorf("report does not count the refused handshakes by code:\n%s", stdout.String())
	}
}
