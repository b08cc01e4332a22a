// Command matchd runs the matchd matchmaking service.
//
// With no configuration it listens on :8080 with the embedded in-memory
// backend; `matchd -h` lists every setting. Each flag has an environment
// variable (MATCHD_ plus the flag name in upper case, dashes as
// underscores) that is used when the flag is absent.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/memory"
	"github.com/matchd/matchd/metrics"
	"github.com/matchd/matchd/questions"
	"github.com/matchd/matchd/redis"
	"github.com/matchd/matchd/web"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "matchd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		defer keepHeapFloor(heapFloor)()
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if err := run(ctx, cfg, logger, nil); err != nil {
		logger.Error("matchd stopped", "err", err)
		os.Exit(1)
	}
}

// config is matchd's settings after flags and environment are read.
type config struct {
	addr         string
	redisURL     string
	redisCluster bool
	redisChannel string
	authSecret   string
	authPrevious string // -auth-secret-previous: verifies, never signs
	authIssuer   string
	authAudience string
	jwksURL      string
	devLogin     bool
	roomTTL      time.Duration
	logLevel     slog.Level
	joinLimit    int      // joins per player per minute; 0 = no limit
	origins      []string // -allowed-origins: extra origins for /ws
	adminToken   string   // -admin-token: empty = admin API off
	shutdown     time.Duration
	room         roomConfig    // the room lifecycle (rooms.go)
	policy       matchd.Policy // -policy: the matching policy file, else the default
}

// parseConfig reads flags from args and, for flags not given, the
// environment and then the optional -config file (a JSON object whose keys
// are flag names). Any invalid value is an error (exit status 2).
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("matchd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.addr, "addr", ":8080", "listen address")
	fs.StringVar(&cfg.redisURL, "redis-url", "", "Redis URL, e.g. redis://127.0.0.1:6379/0; empty = embedded in-memory backend")
	fs.BoolVar(&cfg.redisCluster, "redis-cluster", false, "treat -redis-url as a seed node of a Redis Cluster (more nodes: ?addr=host:port&addr=…)")
	fs.StringVar(&cfg.redisChannel, "redis-channel", "match_channel", "Redis pub/sub channel that carries match events")
	fs.StringVar(&cfg.authSecret, "auth-secret", "", "HS256 secret for session tokens; empty = a random one per start (tokens do not survive a restart)")
	fs.StringVar(&cfg.authPrevious, "auth-secret-previous", "", "previous HS256 secret, still accepted but never used to sign (key rotation); needs -auth-secret")
	fs.StringVar(&cfg.authIssuer, "auth-issuer", "", "when set, tokens must carry this iss (issued tokens do)")
	fs.StringVar(&cfg.authAudience, "auth-audience", "", "when set, tokens' aud must include this (issued tokens do)")
	fs.StringVar(&cfg.jwksURL, "jwks-url", "", "http(s) URL of an identity provider's JWKS; RS256/ES256 tokens signed by its keys are then accepted")
	devLogin := fs.String("dev-login", "", "enable POST /api/dev/login (true/false); default true without -auth-secret and -jwks-url, false with either")
	fs.DurationVar(&cfg.roomTTL, "room-ttl", 2*time.Hour, "how long a match room and its players' assignments are kept")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.IntVar(&cfg.joinLimit, "join-limit", 10, "join_queue messages a player may send per minute, across sockets (and instances, with Redis); 0 = no limit")
	origins := fs.String("allowed-origins", "", "comma-separated origins (host patterns, e.g. app.example.com,*.example.org) allowed to open WebSockets besides the page's own")
	fs.StringVar(&cfg.adminToken, "admin-token", "", "bearer token of the admin API (/api/admin/…); empty = admin API off")
	fs.DurationVar(&cfg.shutdown, "shutdown-timeout", 10*time.Second, "on SIGTERM, how long to wait for clients told to reconnect to go (their tickets stay for the instance they reconnect to)")
	cfg.room.flags(fs)
	policyFile := fs.String("policy", "", "matching policy file (JSON; see docs/policy.md); empty = the default policy")
	configFile := fs.String("config", "", "optional JSON config file: an object whose keys are flag names, e.g. {\"addr\":\":8080\",\"join-limit\":10}; flags and environment win over it")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: matchd [flags]\n\nEach flag can also be set with an environment variable: MATCHD_ and the flag\nname in upper case with dashes as underscores (e.g. -redis-url: MATCHD_REDIS_URL),\nor in the -config file. A flag given on the command line wins over its\nvariable, which wins over the file.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "MATCHD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && !given[f.Name] && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if *configFile != "" {
		if err := applyConfigFile(fs, *configFile, given, getenv); err != nil {
			return cfg, err
		}
	}
	cfg.policy = matchd.DefaultPolicy()
	if *policyFile != "" {
		data, err := os.ReadFile(*policyFile)
		if err != nil {
			return cfg, fmt.Errorf("-policy: %w", err)
		}
		if cfg.policy, err = matchd.ParsePolicy(data); err != nil {
			return cfg, fmt.Errorf("-policy %s: %w", *policyFile, err)
		}
	}
	if cfg.shutdown <= 0 {
		return cfg, fmt.Errorf("-shutdown-timeout: %v is not positive", cfg.shutdown)
	}
	switch strings.ToLower(*devLogin) {
	case "":
		// With real identities configured, a login that mints any
		// identity must be asked for explicitly.
		cfg.devLogin = cfg.authSecret == "" && cfg.jwksURL == ""
	case "true", "1", "yes":
		cfg.devLogin = true
	case "false", "0", "no":
		cfg.devLogin = false
	default:
		return cfg, fmt.Errorf("-dev-login: %q is not true or false", *devLogin)
	}
	if cfg.authPrevious != "" && cfg.authSecret == "" {
		return cfg, errors.New("-auth-secret-previous needs -auth-secret")
	}
	if cfg.jwksURL != "" {
		if err := auth.CheckJWKSURL(cfg.jwksURL); err != nil {
			return cfg, fmt.Errorf("-jwks-url: %w", err)
		}
	}
	if cfg.joinLimit < 0 {
		return cfg, fmt.Errorf("-join-limit: %d is negative", cfg.joinLimit)
	}
	for o := range strings.SplitSeq(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			if strings.Contains(o, "/") {
				return cfg, fmt.Errorf("-allowed-origins: %q: give host patterns, without scheme or path", o)
			}
			cfg.origins = append(cfg.origins, o)
		}
	}
	if err := cfg.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, fmt.Errorf("-log-level: %w", err)
	}
	if cfg.roomTTL < time.Minute {
		return cfg, fmt.Errorf("-room-ttl: %v is shorter than a minute", cfg.roomTTL)
	}
	if cfg.redisURL != "" {
		c, err := cfg.newRedisClient()
		if err != nil {
			return cfg, fmt.Errorf("-redis-url: %w", err)
		}
		c.Close() // only parsed here; run makes the one it uses
	} else if cfg.redisCluster {
		return cfg, errors.New("-redis-cluster needs -redis-url")
	}
	if cfg.redisChannel == "" {
		return cfg, errors.New("-redis-channel must not be empty")
	}
	if err := cfg.room.check(cfg.roomTTL); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// applyConfigFile sets, from the JSON object in path, every flag that was
// given neither on the command line nor in the environment.
func applyConfigFile(fs *flag.FlagSet, path string, given map[string]bool, getenv func(string) string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("-config: %w", err)
	}
	var values map[string]any
	if err := json.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("-config %s: not a JSON object: %w", path, err)
	}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("-config %s: unknown setting %q", path, name)
		}
		if given[name] || getenv("MATCHD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))) != "" {
			continue
		}
		var v string
		switch x := values[name].(type) {
		case string:
			v = x
		case bool, float64:
			v = fmt.Sprint(x)
		default:
			return fmt.Errorf("-config %s: %q must be a string, number or boolean", path, name)
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("-config %s: %q: %w", path, name, err)
		}
	}
	return nil
}

// newRedisClient returns a client of the configured Redis or, with
// -redis-cluster, Redis Cluster. Every option the URL carries (timeouts,
// pool size, TLS, …) is kept. It does not connect yet.
func (cfg config) newRedisClient() (goredis.UniversalClient, error) {
	if cfg.redisCluster {
		o, err := goredis.ParseClusterURL(cfg.redisURL)
		if err != nil {
			return nil, err
		}
		return goredis.NewClusterClient(o), nil
	}
	o, err := goredis.ParseURL(cfg.redisURL)
	if err != nil {
		return nil, err
	}
	return goredis.NewClient(o), nil
}

// run serves until ctx ends. ready, when not nil, receives the bound
// address once the server listens (tests use port 0).
func run(ctx context.Context, cfg config, logger *slog.Logger, ready chan<- string) error {
	bank, err := questions.Load()
	if err != nil {
		return err
	}
	clock := matchd.SystemClock{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m := metrics.New(reg)
	rooms := matchd.QuestionRooms{Bank: bank, Clock: clock}
	// One id names this instance to its gateway (as ticket owner) and to
	// the Redis backend (as lease holder).
	instance := matchd.NewMatchID()[:12]
	var backend interface {
		matchd.Matchmaker
		matchd.Inspector
		Close() error
	}
	backendName := "memory"
	joinWindow := matchd.Window{Max: cfg.joinLimit, Per: time.Minute}
	var joinLimiter matchd.Limiter // nil: no limit
	var sessions matchd.SessionStore
	if cfg.redisURL == "" {
		mem := memory.NewSessions(0)
		defer mem.Close()
		sessions = mem
		if cfg.joinLimit > 0 {
			joinLimiter = memory.NewLimiter(joinWindow, clock)
		}
		backend = memory.New(memory.Config{
			Rooms:    rooms,
			Policy:   &cfg.policy,
			Clock:    clock,
			Observer: m,
			Logger:   logger.With("component", "memory"),
			RoomTTL:  cfg.roomTTL,
		})
	} else {
		client, err := cfg.newRedisClient()
		if err != nil {
			return err
		}
		defer client.Close()
		goredis.SetLogger(redis.LogAdapter{Logger: logger})
		redis.Instrument(client, m.RedisCommand)
		backendName = "redis"
		if cfg.joinLimit > 0 {
			joinLimiter = redis.NewLimiter(client, "join", joinWindow)
		}
		if cfg.redisCluster {
			backendName = "redis-cluster"
		}
		sessions = redis.NewSessions(redis.SessionsConfig{
			Client:  client,
			Channel: cfg.redisChannel + ":rooms",
			Clock:   clock,
			Logger:  logger.With("component", "redis-sessions"),
		})
		backend = redis.New(redis.Config{
			Client:   client,
			Rooms:    rooms,
			Policy:   &cfg.policy,
			Channel:  cfg.redisChannel,
			Instance: instance,
			Observer: m,
			Logger:   logger.With("component", "redis"),
			RoomTTL:  cfg.roomTTL,
		})
	}
	defer backend.Close()
	m.WatchQueue("default", backend.QueueSize)
	m.WatchRooms("default", backend.ActiveRooms)

	authority, err := auth.NewFromConfig(auth.Config{
		Secret:         []byte(cfg.authSecret),
		PreviousSecret: []byte(cfg.authPrevious),
		Issuer:         cfg.authIssuer,
		Audience:       cfg.authAudience,
		JWKSURL:        cfg.jwksURL,
		Clock:          clock,
		Logger:         logger.With("component", "auth"),
	})
	if err != nil {
		return err
	}
	if cfg.devLogin {
		logger.Warn("dev login is on: anyone can get a token for any user id (POST /api/dev/login); set -auth-secret and leave -dev-login off in production")
	}
	srv := web.New(web.Config{
		Matchmaker:      backend,
		Topics:          bank.Topics(),
		Auth:            authority,
		Metrics:         m,
		MetricsHandler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Logger:          logger,
		Clock:           clock,
		DevLogin:        cfg.devLogin,
		Instance:        instance,
		JoinLimiter:     joinLimiter,
		OriginPatterns:  cfg.origins,
		ShutdownTimeout: cfg.shutdown,
		AdminToken:      cfg.adminToken,
		Lifecycle:       cfg.room.lifecycle(sessions, backend, clock, cfg.roomTTL, m),
		Ratings:         sessions, // ratings from session feedback (Elo)
	})

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("matchd is up", "url", "http://"+displayAddr(ln.Addr()), "backend", backendName, "instance", instance, "questions", bank.Len())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	events, stopEvents := context.WithCancel(context.Background())
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		srv.Run(events)
	}()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		logger.Info("shutting down")
	}
	// Stop accepting, close the sockets (Run closes them as it returns),
	// then wait for the HTTP handlers to finish.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopEvents()
	<-eventsDone
	if shutdownErr := httpSrv.Shutdown(shutdownCtx); err == nil || errors.Is(err, http.ErrServerClosed) {
		err = shutdownErr
	}
	return err
}

// displayAddr turns a listen address into one a person can open.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		port := 0
		if ok {
			port = tcp.Port
		}
		return fmt.Sprintf("localhost:%d", port)
	}
	return tcp.String()
}
