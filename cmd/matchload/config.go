package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/matchd/matchd"
)

// maxPlayers bounds one run: every player's time-to-match is kept for an
// exact percentile, and every player's record for the end-of-run checks.
const maxPlayers = 1_000_000

// config is matchload's settings after the flags are read and checked.
type config struct {
	urls        []string      // matchd base URLs, http(s)://host[:port], no trailing slash
	secret      string        // HS256 secret to mint tokens with; empty = dev login
	players     int           // -players: a fixed number of players (players mode)
	idle        int           // -idle: sockets to open and hold without joining (idle mode)
	rate        float64       // -rate: arrivals per second (rate mode)
	duration    time.Duration // rate mode: the arrival window; players mode: hard cap (0 = derived)
	ramp        time.Duration // players mode: spread the arrivals over this long
	drain       time.Duration // rate mode: how long players may finish after the last arrival
	preconnect  int           // players whose sockets open before the measured phase
	leaveShare  float64       // share of players who send leave_queue
	dropShare   float64       // share of players who drop their socket without a goodbye
	leaveWithin time.Duration // leavers and droppers act after a uniform wait in [0, leaveWithin)
	ratingMean  float64
	ratingSD    float64
	prefs       *prefMix // nil: join_queue carries no preferences
	timeout     time.Duration
	seed        uint64
	jsonOut     bool
	chart       string // "" or a path ending in .svg or .png
	idPrefix    string
	progress    bool
}

// total is the number of players the run will start.
func (c config) total() int {
	if c.idle > 0 {
		return c.idle
	}
	if c.players > 0 {
		return c.players
	}
	// Arrival i is due at i/rate; those due before the window ends count.
	return int(math.Ceil(c.rate*c.duration.Seconds() - 1e-9))
}

// arrival is when player i is due, counted from the start of the measured
// phase. Arrivals follow this schedule whatever the server's latency (an
// open loop), so a slow server meets the load it was promised rather than
// a load that politely waits for it.
func (c config) arrival(i int) time.Duration {
	if c.players > 0 {
		if c.ramp <= 0 {
			return 0
		}
		return time.Duration(float64(c.ramp) * float64(i) / float64(c.players))
	}
	return time.Duration(float64(i) / c.rate * float64(time.Second))
}

// limit is the hard cap on the measured phase: nothing runs longer.
func (c config) limit() time.Duration {
	if c.players > 0 {
		if c.duration > 0 {
			return c.duration
		}
		// Every player is bounded by its dial, its join and -timeout, and a
		// little for the leave that ends a timed-out wait.
		return c.ramp + dialTimeout + loginTimeout + c.timeout + leaveAnswerWait + time.Second
	}
	return c.duration + c.drain
}

// mode names the load shape for the report.
func (c config) mode() string {
	if c.idle > 0 {
		return "idle"
	}
	if c.players > 0 {
		return "players"
	}
	return "rate"
}

// urlList is a flag.Value collecting -url, repeatable and comma-separated.
type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }

func (u *urlList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := url.Parse(s)
		if err != nil {
			return err
		}
		if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%q: give a base URL such as http://127.0.0.1:8080", s)
		}
		if p.RawQuery != "" || p.Fragment != "" || strings.Trim(p.Path, "/") != "" {
			return fmt.Errorf("%q: give the base URL only, without path or query", s)
		}
		*u = append(*u, p.Scheme+"://"+p.Host)
	}
	return nil
}

// parseConfig reads matchload's flags. Any invalid value is an error
// (exit status 2); flag.ErrHelp means -h was asked for.
func parseConfig(args []string, out io.Writer) (config, error) {
	var cfg config
	var urls urlList
	var prefs string
	fs := flag.NewFlagSet("matchload", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Var(&urls, "url", "matchd base URL (repeatable or comma-separated; players are spread round-robin); default http://127.0.0.1:8080")
	fs.StringVar(&cfg.secret, "secret", "", "matchd's -auth-secret: mint HS256 tokens locally instead of calling POST /api/dev/login for each player")
	fs.IntVar(&cfg.players, "players", 0, "players mode: start this many players at once (or over -ramp)")
	fs.IntVar(&cfg.idle, "idle", 0, "idle mode: open this many authenticated sockets (one player each), never join, and hold them until -duration passes (0 = until Ctrl-C or SIGTERM); for measuring memory per idle connection")
	fs.Float64Var(&cfg.rate, "rate", 0, "rate mode: player arrivals per second, on schedule whatever the latency (needs -duration)")
	fs.DurationVar(&cfg.duration, "duration", 0, "rate mode: how long arrivals go on (the run ends by -duration + -drain); players mode: hard cap on the run; idle mode: how long to hold the sockets once open (0 = until Ctrl-C or SIGTERM)")
	fs.DurationVar(&cfg.ramp, "ramp", 0, "players mode: spread the arrivals evenly over this long (0 = all at once)")
	fs.DurationVar(&cfg.drain, "drain", 5*time.Second, "rate mode: after the last arrival, how long players still waiting may finish")
	fs.IntVar(&cfg.preconnect, "preconnect", 0, "log in and open the sockets of the first K players before the measured phase; they join on schedule")
	fs.Float64Var(&cfg.leaveShare, "leave-share", 0, "share of players (0-1) who send leave_queue after a random wait in [0, -leave-within)")
	fs.Float64Var(&cfg.dropShare, "drop-share", 0, "share of players (0-1) who drop their socket without a goodbye after a random wait in [0, -leave-within)")
	fs.DurationVar(&cfg.leaveWithin, "leave-within", 50*time.Millisecond, "upper bound of the random wait after join_queue before leaving or dropping")
	fs.Float64Var(&cfg.ratingMean, "rating-mean", 1500, "mean of the players' ratings (normal distribution, clamped to 0-10000)")
	fs.Float64Var(&cfg.ratingSD, "rating-sd", 0, "standard deviation of the players' ratings (0: all equal. With a spread, the matching policy's rating rule makes players wait for partners near their rating, and time-to-match includes that wait)")
	fs.StringVar(&prefs, "prefs", "", `preference mix sent as "preferences" in join_queue, e.g. difficulty=easy:0.3,medium:0.5,hard:0.2;topics=algorithms:0.5,system_design:0.5 (value "any" omits the field); off by default`)
	fs.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "how long a player waits for match_found after join_queue before leaving")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed for ratings, preferences and who leaves or drops (player ids are fresh every run)")
	fs.BoolVar(&cfg.jsonOut, "json", false, "write the report as JSON to stdout (the text report then goes to stderr)")
	fs.StringVar(&cfg.chart, "chart", "", "write a chart of the time-to-match distribution and the queue size over time to this .svg or .png file")
	fs.StringVar(&cfg.idPrefix, "id-prefix", "ml", "player id prefix; ids are <prefix>-<run nonce>-<n>")
	fs.BoolVar(&cfg.progress, "progress", true, "print a progress line to stderr every second")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: matchload [flags]\n\nSimulates players over WebSocket against matchd, checks the matchmaking\ninvariants as it goes and reports time-to-match percentiles and throughput.\nWith -idle N it opens N sockets and holds them without joining instead.\nExit status: 0 ok, 1 an invariant was violated or no socket could be opened\n(with -idle: not every socket opened), 2 bad flags.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.urls = urls
	if len(cfg.urls) == 0 {
		cfg.urls = []string{"http://127.0.0.1:8080"}
	}
	if prefs != "" {
		m, err := parsePrefs(prefs)
		if err != nil {
			return cfg, fmt.Errorf("-prefs: %w", err)
		}
		cfg.prefs = m
	}
	return cfg, cfg.check()
}

// check rejects settings that contradict each other or cannot work.
func (c config) check() error {
	if c.idle != 0 {
		return c.checkIdle()
	}
	switch {
	case c.players < 0:
		return errors.New("-players must not be negative")
	case c.rate < 0 || math.IsNaN(c.rate) || math.IsInf(c.rate, 0):
		return errors.New("-rate must be a positive number")
	case c.players > 0 && c.rate > 0:
		return errors.New("give either -players or -rate, not both")
	case c.players == 0 && c.rate == 0:
		return errors.New("give -players N, -rate R with -duration D, or -idle N")
	case c.rate > 0 && c.duration <= 0:
		return errors.New("-rate needs a positive -duration")
	case c.duration < 0 || c.ramp < 0 || c.drain < 0 || c.leaveWithin < 0:
		return errors.New("durations must not be negative")
	case c.rate > 0 && c.ramp > 0:
		return errors.New("-ramp is for -players; with -rate the arrivals are spread by the rate")
	case c.timeout <= 0:
		return errors.New("-timeout must be positive")
	case c.total() > maxPlayers:
		return fmt.Errorf("the run would start %d players; at most %d", c.total(), maxPlayers)
	case c.preconnect < 0:
		return errors.New("-preconnect must not be negative")
	case c.preconnect > c.total():
		return fmt.Errorf("-preconnect %d is more than the %d players of the run", c.preconnect, c.total())
	case !share(c.leaveShare) || !share(c.dropShare) || c.leaveShare+c.dropShare > 1:
		return errors.New("-leave-share and -drop-share must be between 0 and 1, together at most 1")
	case c.ratingSD < 0 || c.ratingMean < 0 || c.ratingMean > 10000:
		return errors.New("-rating-mean must be 0-10000 and -rating-sd not negative")
	}
	if c.chart != "" {
		if ext := strings.ToLower(filepath.Ext(c.chart)); ext != ".svg" && ext != ".png" {
			return fmt.Errorf("-chart %q: the file name must end in .svg or .png", c.chart)
		}
	}
	// The longest id this run makes must still be a valid player id.
	if id := playerID(c.idPrefix, strings.Repeat("n", nonceLen), c.total()); !matchd.ValidPlayerID(id) {
		return fmt.Errorf("-id-prefix %q: ids such as %q are not valid player ids (1-64 of A-Z a-z 0-9 _ . -)", c.idPrefix, id)
	}
	return nil
}

// share reports whether v is a share between 0 and 1.
func share(v float64) bool { return v >= 0 && v <= 1 }

// checkIdle checks the settings of idle mode, which opens sockets and
// holds them: nobody joins, so the load settings do not apply.
func (c config) checkIdle() error {
	switch {
	case c.idle < 0:
		return errors.New("-idle must not be negative")
	case c.players > 0 || c.rate > 0:
		return errors.New("-idle holds sockets without joining: give it without -players or -rate")
	case c.idle > maxPlayers:
		return fmt.Errorf("-idle %d: at most %d sockets", c.idle, maxPlayers)
	case c.duration < 0:
		return errors.New("durations must not be negative")
	case c.preconnect != 0 || c.leaveShare != 0 || c.dropShare != 0 || c.prefs != nil || c.chart != "":
		return errors.New("-idle does not take -preconnect, -leave-share, -drop-share, -prefs or -chart")
	}
	if id := playerID(c.idPrefix, strings.Repeat("n", nonceLen), c.total()); !matchd.ValidPlayerID(id) {
		return fmt.Errorf("-id-prefix %q: ids such as %q are not valid player ids (1-64 of A-Z a-z 0-9 _ . -)", c.idPrefix, id)
	}
	return nil
}
