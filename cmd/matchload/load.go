package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/matchd/matchd/auth"
)

const (
	// loginTimeout and dialTimeout bound one dev login and one WebSocket
	// handshake.
	loginTimeout = 10 * time.Second
	dialTimeout  = 10 * time.Second
	// writeTimeout bounds one frame write; coder/websocket closes the
	// socket when it passes, which the read loop then reports.
	writeTimeout = 5 * time.Second
	// leaveAnswerWait is how long a player that sent leave_queue waits for
	// the answer before closing its socket anyway.
	leaveAnswerWait = 5 * time.Second
	// maxReconnects bounds the reconnects of one player.
	maxReconnects = 3
	// halfSeenGrace: see checker.grace. Generous, because a loaded client
	// reads its frames late.
	halfSeenGrace = 2 * time.Second
	// tokenTTL is the lifetime of minted tokens: longer than any run.
	tokenTTL = 24 * time.Hour
	// queueEvery is the queue-size sampling period.
	queueEvery = 250 * time.Millisecond
	// preconnectWorkers bounds the concurrent logins and dials of the
	// pre-connect phase, so it does not become a connection storm of its
	// own.
	preconnectWorkers = 64
	// nonceLen is the length of the run nonce in player ids.
	nonceLen = 8
)

// playerID is the id of player n of a run. The nonce makes ids fresh per
// run: matchd keeps a player's match for hours and limits joins per player,
// so reusing ids would replay old matches and hit the limits.
func playerID(prefix, nonce string, n int) string {
	return fmt.Sprintf("%s-%s-%d", prefix, nonce, n)
}

// newNonce returns a random run nonce of nonceLen characters, independent
// of -seed on purpose (see playerID).
func newNonce() string {
	b := make([]byte, 5)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))[:nonceLen]
}

// queuePoint is one sample of the queue size.
type queuePoint struct {
	At   time.Duration // since the start of the measured phase
	Size int
}

// counters are the run's live figures, shared by every player.
type counters struct {
	started, joined, waiting                             atomic.Int64
	matched, left, dropped, timedOut, failed, unfinished atomic.Int64
	opened, dialFailed, open, peak, reconnects           atomic.Int64

	mu         sync.Mutex
	errors     map[string]int
	examples   map[string]string // first message seen per error code
	samples    []time.Duration   // time-to-match of every matched player
	firstJoin  time.Time
	lastMatch  time.Time
	queue      []queuePoint
	queueFails int
}

// fail counts an error by code, keeping the first message as an example.
func (c *counters) fail(code, example string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors[code]++
	if _, ok := c.examples[code]; !ok && example != "" {
		c.examples[code] = example
	}
}

// joinedAt notes a first join_queue sent at t.
func (c *counters) joinedAt(t time.Time) {
	c.joined.Add(1)
	c.waiting.Add(1)
	c.mu.Lock()
	if c.firstJoin.IsZero() || t.Before(c.firstJoin) {
		c.firstJoin = t
	}
	c.mu.Unlock()
}

// sample records one time-to-match, received at t.
func (c *counters) sample(d time.Duration, t time.Time) {
	c.mu.Lock()
	c.samples = append(c.samples, d)
	if t.After(c.lastMatch) {
		c.lastMatch = t
	}
	c.mu.Unlock()
}

// socketOpened and socketClosed keep the gauge of open sockets and its
// peak.
func (c *counters) socketOpened() {
	c.opened.Add(1)
	n := c.open.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (c *counters) socketClosed() { c.open.Add(-1) }

// p99 returns the exact p99 of the samples so far, for the progress line.
func (c *counters) p99() (time.Duration, int) {
	c.mu.Lock()
	s := slices.Clone(c.samples)
	c.mu.Unlock()
	slices.Sort(s)
	return percentile(s, 99), len(s)
}

// errorTotal sums the errors so far.
func (c *counters) errorTotal() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.errors {
		n += v
	}
	return n
}

// runner is one run: the settings, the shared client and the figures.
type runner struct {
	cfg    config
	client *http.Client    // shared by logins, dials and queue samples
	minter *auth.Authority // nil: tokens come from dev login
	nonce  string
	check  *checker
	c      *counters
	start  time.Time // start of the measured phase

	// rng draws the players' plans. Only run's goroutine uses it (the
	// pre-connect phase, then the scheduler), in player order.
	rng *mrand.Rand

	wg      sync.WaitGroup // every player goroutine and join sender
	players []*player      // every player of the run, in arrival order
}

// result is a finished run: the report plus, for tests and the chart, the
// raw material.
type result struct {
	report  Report
	players []*player
	samples []time.Duration // sorted
	queue   []queuePoint
}

// run runs the load described by cfg and returns what it found; see
// runner.run.
func run(ctx context.Context, cfg config, progress io.Writer, tty bool) *result {
	r := newRunner(cfg)
	if cfg.idle > 0 {
		return r.idleRun(ctx, progress, tty)
	}
	return r.run(ctx, progress, tty)
}

// newRunner prepares a run of cfg.
func newRunner(cfg config) *runner {
	r := &runner{
		cfg:   cfg,
		nonce: newNonce(),
		check: newChecker(halfSeenGrace),
		c:     &counters{errors: map[string]int{}, examples: map[string]string{}},
		rng:   mrand.New(mrand.NewPCG(cfg.seed, 0x6d617463686c6f61)), // "matchloa"
		client: &http.Client{Transport: &http.Transport{
			// Many logins to few hosts: keep enough idle connections that
			// they are reused rather than left in TIME_WAIT by the
			// thousand.
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		}},
	}
	if cfg.secret != "" {
		r.minter = auth.New([]byte(cfg.secret), nil)
	}
	return r
}

// run runs the load and returns what it found. It stops at the hard cap
// (see config.limit) or when ctx ends (Ctrl-C), returning the figures so
// far. progress receives the progress line every second; tty says whether
// it is a terminal (the line is then rewritten in place). A runner runs
// once.
func (r *runner) run(ctx context.Context, progress io.Writer, tty bool) *result {
	cfg := r.cfg
	defer r.client.CloseIdleConnections()
	total := cfg.total()
	r.players = make([]*player, 0, total)

	// The players' reads use this context: ending it closes every socket,
	// which is how the hard cap and Ctrl-C stop the run.
	playCtx, stopPlay := context.WithCancel(ctx)
	defer stopPlay()

	r.preconnectPhase(playCtx)
	r.start = time.Now()
	capTimer := time.AfterFunc(cfg.limit(), stopPlay)
	defer capTimer.Stop()

	// The watchers (queue sampler, progress line) live until the players
	// are done.
	watchCtx, stopWatch := context.WithCancel(playCtx)
	var watchers sync.WaitGroup
	watchers.Add(1)
	go func() {
		defer watchers.Done()
		r.sampleQueue(watchCtx)
	}()
	if cfg.progress && progress != nil {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			r.showProgress(watchCtx, progress, tty)
		}()
	}

	r.schedule(playCtx, total)
	r.wg.Wait()
	end := time.Now()
	capped := !capTimer.Stop() // it fired
	stopWatch()
	watchers.Wait()

	res := r.result(end)
	res.report.Interrupted = ctx.Err() != nil
	res.report.Capped = capped && !res.report.Interrupted && res.report.Players.Unfinished > 0
	return res
}

// preconnectPhase logs in and connects the first cfg.preconnect players
// before the measured phase, at most preconnectWorkers at a time, and
// returns once each is connected or has failed. Players it had no time to
// start (the phase is bounded too) connect on arrival like the others.
func (r *runner) preconnectPhase(ctx context.Context) {
	k := r.cfg.preconnect
	if k == 0 {
		return
	}
	deadline, cancel := context.WithTimeout(ctx, loginTimeout+dialTimeout+time.Duration(k/preconnectWorkers+1)*time.Second)
	defer cancel()
	sem := make(chan struct{}, preconnectWorkers)
	var ready sync.WaitGroup
	for i := range k {
		p := r.newPlayer(i)
		select {
		case sem <- struct{}{}:
		case <-deadline.Done():
			ready.Wait()
			return
		}
		p.preconnected = true
		r.c.started.Add(1)
		ready.Add(1)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			p.run(ctx, deadline, false, func() {
				<-sem
				ready.Done()
			})
		}()
	}
	ready.Wait()
}

// schedule starts the players on their arrival times, from the start of
// the measured phase. It never waits for a player: a server that falls
// behind gets the arrivals it was due, all at once.
func (r *runner) schedule(ctx context.Context, total int) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i := range total {
		if wait := time.Until(r.start.Add(r.cfg.arrival(i))); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		} else if ctx.Err() != nil {
			return
		}
		var p *player
		if i < len(r.players) {
			p = r.players[i]
		} else {
			p = r.newPlayer(i)
		}
		r.wg.Add(1)
		if p.preconnected {
			go func() {
				defer r.wg.Done()
				p.join(ctx)
			}()
			continue
		}
		r.c.started.Add(1)
		go func() {
			defer r.wg.Done()
			p.run(ctx, ctx, true, nil)
		}()
	}
}

// newPlayer draws player i's plan (from the seeded generator, in player
// order, so a seed gives the same plans every run) and registers it.
func (r *runner) newPlayer(i int) *player {
	pl := plan{
		rating: math.Min(10000, math.Max(0, r.cfg.ratingMean+r.rng.NormFloat64()*r.cfg.ratingSD)),
		url:    i % len(r.cfg.urls),
	}
	switch x := r.rng.Float64(); {
	case x < r.cfg.leaveShare:
		pl.leave = true
	case x < r.cfg.leaveShare+r.cfg.dropShare:
		pl.drop = true
	}
	if r.cfg.leaveWithin > 0 {
		pl.after = time.Duration(r.rng.Int64N(int64(r.cfg.leaveWithin)))
	}
	var prefs map[string]any
	if r.cfg.prefs != nil {
		prefs = r.cfg.prefs.draw(r.rng)
	}
	pl.joinFrame = []byte(`{"type":"join_queue"}`)
	if prefs != nil {
		b, _ := json.Marshal(struct {
			Type        string         `json:"type"`
			Preferences map[string]any `json:"preferences"`
		}{"join_queue", prefs})
		pl.joinFrame = b
	}
	p := &player{r: r, id: playerID(r.cfg.idPrefix, r.nonce, i), plan: pl}
	r.check.add(p.id)
	r.players = append(r.players, p)
	return p
}

// sampleQueue polls the first URL's queue status every queueEvery until
// ctx ends. Samples are for the chart and the report; failures are only
// counted.
func (r *runner) sampleQueue(ctx context.Context) {
	t := time.NewTicker(queueEvery)
	defer t.Stop()
	url := r.cfg.urls[0] + "/api/matchmaking/queue-status"
	for {
		size, err := r.queueSize(ctx, url)
		r.c.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				r.c.queueFails++
			}
		} else {
			r.c.queue = append(r.c.queue, queuePoint{At: time.Since(r.start), Size: size})
		}
		r.c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// queueSize asks url for the queue size.
func (r *runner) queueSize(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		QueueSize *int `json:"queue_size"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body); err != nil || body.QueueSize == nil {
		return 0, fmt.Errorf("queue-status: status %d, no queue_size", resp.StatusCode)
	}
	return *body.QueueSize, nil
}

// showProgress prints the progress line every second until ctx ends. On a
// terminal the line is rewritten in place; elsewhere (a log, CI) each
// update is its own line.
func (r *runner) showProgress(ctx context.Context, w io.Writer, tty bool) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(w)
			}
			return
		case <-t.C:
		}
		line := r.progressLine()
		if tty {
			fmt.Fprintf(w, "\r%-100s", line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

// progressLine is the one-line summary of the run so far.
func (r *runner) progressLine() string {
	p99, n := r.c.p99()
	v, _, _ := r.check.stats()
	line := fmt.Sprintf("%5.1fs  started %d  waiting %d  matched %d  left %d  dropped %d  timed out %d  errors %d  p99 %.3f ms (%d)",
		time.Since(r.start).Seconds(), r.c.started.Load(), r.c.waiting.Load(), r.c.matched.Load(), r.c.left.Load(),
		r.c.dropped.Load(), r.c.timedOut.Load(), r.c.errorTotal(), ms(p99), n)
	if v > 0 {
		line += fmt.Sprintf("  VIOLATIONS %d", v)
	}
	return line
}

// result assembles the report once every player has stopped.
func (r *runner) result(end time.Time) *result {
	violations, count := r.check.finish(end)
	_, matches, outsiders := r.check.stats()
	notify := r.notificationTimes()
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	samples := slices.Clone(r.c.samples)
	rep := Report{
		URLs:           r.cfg.urls,
		Mode:           r.cfg.mode(),
		Seed:           r.cfg.seed,
		TokenSource:    "dev-login",
		PlannedPlayers: r.cfg.total(),
		Players: Outcomes{
			Started:    int(r.c.started.Load()),
			Joined:     int(r.c.joined.Load()),
			Matched:    int(r.c.matched.Load()),
			Left:       int(r.c.left.Load()),
			Dropped:    int(r.c.dropped.Load()),
			TimedOut:   int(r.c.timedOut.Load()),
			Failed:     int(r.c.failed.Load()),
			Unfinished: int(r.c.unfinished.Load()),
		},
		Matches:         matches,
		OutsidePartners: outsiders,
		TimeToMatch:     summarise(samples),
		Notification:    summarise(notify),
		Errors:          maps(r.c.errors),
		ErrorExamples:   maps(r.c.examples),
		Connections: Connections{
			Opened:     int(r.c.opened.Load()),
			Failed:     int(r.c.dialFailed.Load()),
			Peak:       int(r.c.peak.Load()),
			Reconnects: int(r.c.reconnects.Load()),
		},
		Queue:          QueueSummary{Samples: len(r.c.queue), Failed: r.c.queueFails},
		ViolationCount: count,
		Violations:     slices.Clone(violations),
		ElapsedS:       math.Round(end.Sub(r.start).Seconds()*1000) / 1000,
	}
	if rep.Violations == nil {
		rep.Violations = []Violation{}
	}
	if r.minter != nil {
		rep.TokenSource = "minted"
	}
	if r.cfg.rate > 0 {
		rep.Rate = r.cfg.rate
		rep.DurationS = r.cfg.duration.Seconds()
	}
	for _, q := range r.c.queue {
		rep.Queue.Max = max(rep.Queue.Max, q.Size)
	}
	if !r.c.firstJoin.IsZero() && r.c.lastMatch.After(r.c.firstJoin) {
		window := r.c.lastMatch.Sub(r.c.firstJoin)
		rep.WindowS = math.Round(window.Seconds()*1e6) / 1e6
		rep.Throughput = math.Round(float64(matches)/window.Seconds()*10) / 10
	}
	return &result{report: rep, players: r.players, samples: samples, queue: slices.Clone(r.c.queue)}
}

// notificationTimes returns, for every match both of whose players are
// this run's and saw it, the time from the later of their first
// join_queue frames to the later of their match_found frames: the time the
// server takes once the pair exists, without the first player's wait for
// a partner. Call it once every player has stopped.
func (r *runner) notificationTimes() []time.Duration {
	joined := make(map[string]time.Time, len(r.players))
	for _, p := range r.players {
		p.mu.Lock()
		if !p.joinedAt.IsZero() {
			joined[p.id] = p.joinedAt
		}
		p.mu.Unlock()
	}
	var out []time.Duration
	for _, pr := range r.check.pairs() {
		ja, oka := joined[pr[0].player]
		jb, okb := joined[pr[1].player]
		if !oka || !okb {
			continue
		}
		lastJoin, lastFound := ja, pr[0].at
		if jb.After(lastJoin) {
			lastJoin = jb
		}
		if pr[1].at.After(lastFound) {
			lastFound = pr[1].at
		}
		out = append(out, max(lastFound.Sub(lastJoin), 0))
	}
	return out
}

// maps copies m, never returning nil (JSON shows {} rather than null).
func maps[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// execute runs cfg, writes the report (and chart) and returns the exit
// status: 1 when an invariant was violated or no socket could be opened.
func execute(ctx context.Context, cfg config, stdout, stderr io.Writer, tty bool) int {
	res := run(ctx, cfg, stderr, tty)
	rep := &res.report
	if !writeReport(cfg, rep, stdout, stderr) {
		return 1
	}
	if rep.Idle != nil {
		return idleStatus(rep, stderr)
	}
	status := 0
	if cfg.chart != "" {
		if err := writeChart(cfg.chart, res.samples, res.queue, chartTitle(rep)); err != nil {
			fmt.Fprintln(stderr, "matchload: chart:", err)
			status = 1
		} else {
			fmt.Fprintln(stderr, "matchload: chart written to", cfg.chart)
		}
	}
	if rep.ViolationCount > 0 {
		fmt.Fprintf(stderr, "matchload: %d invariant violations\n", rep.ViolationCount)
		status = 1
	}
	if rep.Connections.Opened == 0 && rep.Players.Started > 0 {
		fmt.Fprintln(stderr, "matchload: no WebSocket could be opened")
		status = 1
	}
	return status
}

// idleStatus is the exit status of an idle run: 1 unless every socket
// opened.
func idleStatus(rep *Report, stderr io.Writer) int {
	if rep.Idle.Opened < rep.Idle.Sockets {
		fmt.Fprintf(stderr, "matchload: only %d of %d sockets opened\n", rep.Idle.Opened, rep.Idle.Sockets)
		return 1
	}
	return 0
}

// writeReport writes the report: as JSON on stdout and text on stderr
// with -json, else text on stdout. It reports false when the JSON could
// not be written.
func writeReport(cfg config, rep *Report, stdout, stderr io.Writer) bool {
	text := stdout
	if cfg.jsonOut {
		if err := rep.writeJSON(stdout); err != nil {
			fmt.Fprintln(stderr, "matchload:", err)
			return false
		}
		text = stderr
	}
	rep.writeText(text)
	return true
}
