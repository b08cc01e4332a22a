package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// refuses reports whether nothing accepts connections on addr.
func refuses(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	return err != nil
}

func TestStart(t *testing.T) {
	ctx := context.Background()
	s := Start(t, Options{})

	if s.Addr == fmt.Sprintf("127.0.0.1:%d", sharedPort) || !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want 127.0.0.1 on a port of its own", s.Addr)
	}
	if got, err := s.Client(t).Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG", got, err)
	}

	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", s.URL(), err)
	}
	if opt.Addr != s.Addr || opt.DB != 0 {
		t.Errorf("URL %q parses to addr %q db %d, want %q db 0", s.URL(), opt.Addr, opt.DB, s.Addr)
	}

	// `--save ""` took effect: no snapshots, so Stop leaves nothing behind.
	save, err := s.Client(t).ConfigGet(ctx, "save").Result()
	if err != nil || save["save"] != "" {
		t.Errorf(`CONFIG GET save = %v, %v; want ""`, save, err)
	}

	s.Stop()
	if !refuses(s.Addr) {
		t.Errorf("%s still accepts connections after Stop", s.Addr)
	}
	s.Stop() // idempotent
	s.Kill() // and so is Kill
}

func TestRestart(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		down     func(*Server)
		wantKept bool
	}{
		{name: "aof_stop_keeps_data", opts: Options{AOF: true}, down: (*Server).Stop, wantKept: true},
		{name: "aof_kill_keeps_data", opts: Options{AOF: true}, down: (*Server).Kill, wantKept: true},
		{name: "kill_without_aof_loses_data", opts: Options{}, down: (*Server).Kill, wantKept: false},
		{name: "stop_without_aof_loses_data", opts: Options{}, down: (*Server).Stop, wantKept: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := Start(t, tt.opts)
			client := s.Client(t)
			if err := client.Set(ctx, "ticket:1", "alice", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}

			tt.down(s)
			if !refuses(s.Addr) {
				t.Fatalf("%s still accepts connections while down", s.Addr)
			}
			s.Restart()

			got, err := client.Get(ctx, "ticket:1").Result()
			switch {
			case tt.wantKept && (err != nil || got != "alice"):
				t.Errorf("GET after restart = %q, %v; want %q", got, err, "alice")
			case !tt.wantKept && !errors.Is(err, redis.Nil):
				t.Errorf("GET after restart = %q, %v; want redis.Nil", got, err)
			}
		})
	}
}

func TestRestartWhileRunning(t *testing.T) {
	s := Start(t, Options{AOF: true})
	client := s.Client(t)
	ctx := context.Background()
	if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Restart()
	s.Restart()
	if got, err := client.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET after two restarts = %q, %v; want %q", got, err, "v")
	}
}

// TestLaunchReportsLog checks that a redis-server that dies before it is
// ready is reported with its log, and as errAddrInUse when the port was
// taken, which is what makes Start retry.
func TestLaunchReportsLog(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	s := &Server{t: t, Addr: l.Addr().String(), dir: t.TempDir()}
	s.mu.Lock()
	err = s.launchLocked()
	s.mu.Unlock()
	if !errors.Is(err, errAddrInUse) {
		t.Fatalf("launch on a taken port: err = %v, want errAddrInUse", err)
	}
	if !strings.Contains(err.Error(), "Address already in use") || !strings.Contains(err.Error(), "redis.log") {
		t.Errorf("launch error does not quote the log:\n%v", err)
	}
	if s.proc != nil {
		t.Errorf("failed launch left a process behind")
	}
}

func TestCluster(t *testing.T) {
	ctx := context.Background()
	began := time.Now()
	c := StartCluster(t, 3)
	t.Logf("StartCluster(3) took %v", time.Since(began))

	if got := len(c.Addrs()); got != 3 {
		t.Fatalf("len(Addrs()) = %d, want 3", got)
	}
	cc := c.Client(t)

	// Keys until every master owns one, so the SETs below really go to
	// different slots on different nodes.
	owner := map[string]string{} // key -> node address
	nodes := map[string]bool{}
	for i := 0; len(nodes) < len(c.Nodes); i++ {
		if i == 1000 {
			t.Fatalf("1000 keys all map to %d of %d nodes", len(nodes), len(c.Nodes))
		}
		key := fmt.Sprintf("player:%d", i)
		master, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatalf("MasterForKey(%q): %v", key, err)
		}
		if !nodes[master.Options().Addr] {
			nodes[master.Options().Addr] = true
			owner[key] = master.Options().Addr
		}
	}
	for key, addr := range owner {
		if err := cc.Set(ctx, key, "v-"+key, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if got, err := cc.Get(ctx, key).Result(); err != nil || got != "v-"+key {
			t.Errorf("GET %s = %q, %v; want %q", key, got, err, "v-"+key)
		}
		// The key is stored on the node that owns its slot.
		direct := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
		got, err := direct.Get(ctx, key).Result()
		direct.Close()
		if err != nil || got != "v-"+key {
			t.Errorf("GET %s on its owner %s = %q, %v; want %q", key, addr, got, err, "v-"+key)
		}
	}

	// A script may touch several keys only if they share a slot, which a
	// hash tag guarantees.
	script := `redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return redis.call('MGET', KEYS[1], KEYS[2])`
	got, err := cc.Eval(ctx, script, []string{"{room:7}:a", "{room:7}:b"}, "alice", "bob").StringSlice()
	if err != nil || len(got) != 2 || got[0] != "alice" || got[1] != "bob" {
		t.Errorf("EVAL on hash-tagged keys = %q, %v; want [alice bob]", got, err)
	}
	if err := cc.Eval(ctx, script, []string{"player:0", "player:1"}, "x", "y").Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("EVAL on keys in different slots: err = %v, want CROSSSLOT", err)
	}
}

func TestStartClusterRejectsTooFewNodes(t *testing.T) {
	r := &recorder{TB: t}
	r.run(func() { StartCluster(r, 2) })
	if !strings.Contains(r.fatal, "at least 3") {
		t.Errorf("StartCluster(2) fatal = %q, want it to ask for at least 3 nodes", r.fatal)
	}
}

func TestRequire(t *testing.T) {
	tests := []struct {
		name      string
		ci        string
		wantFatal bool
	}{
		{name: "ci_fails", ci: "true", wantFatal: true},
		{name: "elsewhere_skips", ci: "", wantFatal: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir()) // no redis-server, no redis-cli
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			r.run(func() { Require(r) })

			if tt.wantFatal {
				if !strings.Contains(r.fatal, "install redis-server") || r.skip != "" {
					t.Errorf("fatal = %q, skip = %q; want a fatal saying install redis-server", r.fatal, r.skip)
				}
			} else if r.skip == "" || r.fatal != "" {
				t.Errorf("fatal = %q, skip = %q; want a skip", r.fatal, r.skip)
			}
		})
	}
}

// recorder is a testing.TB that records Fatal and Skip instead of ending
// the real test, so tests can check that a helper gives up.
type recorder struct {
	testing.TB
	fatal, skip string
}

// run calls f the way a test runs, on a goroutine Fatal and Skip can end.
func (r *recorder) run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fatal(args ...any)         { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...); runtime.Goexit() }
func (r *recorder) Skip(args ...any)          { r.skip = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Skipf(f string, a ...any)  { r.skip = fmt.Sprintf(f, a...); runtime.Goexit() }
