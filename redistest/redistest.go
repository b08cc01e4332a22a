// Package redistest starts real redis-server processes for tests, so the
// Redis backend is tested against Redis itself rather than a fake. Each
// Server gets its own free port on 127.0.0.1 and its own data directory in
// t.TempDir(), and is killed when the test ends, pass or fail; nothing here
// ever touches a shared Redis such as the one on 127.0.0.1:6379.
//
// A Server can be stopped, killed and restarted on the same port and data
// directory, which is how tests prove what survives a crash (with
// Options.AOF, every acknowledged write). StartCluster builds a small Redis
// Cluster of such servers for code that must work with hash slots.
//
// redis-server and redis-cli must be on PATH (Redis 7 or later); see Require.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// readyTimeout bounds how long a starting redis-server may take to
	// answer PING. It normally takes a few milliseconds.
	readyTimeout = 10 * time.Second
	// stopTimeout bounds how long Stop waits for a graceful exit before
	// it gives up, kills the process and fails the test.
	stopTimeout = 10 * time.Second
	// clusterTimeout bounds redis-cli --cluster create plus the wait for
	// every node to report a healthy cluster.
	clusterTimeout = 30 * time.Second
	// startAttempts is how often Start picks a new port when the one it
	// picked was taken between probing and redis-server binding it.
	startAttempts = 3
	// logTailLines is how much of redis.log a failure message shows.
	logTailLines = 20
	// sharedPort is the machine's shared Redis, which tests must never use.
	sharedPort = 6379
	// clusterSlots is the number of hash slots in a Redis Cluster.
	clusterSlots = 16384
)

// errAddrInUse marks a start that failed because another process held the
// port; Start retries those on a fresh port.
var errAddrInUse = errors.New("address already in use")

// Options configures a Server.
type Options struct {
	// AOF turns on the append-only file with appendfsync always, so every
	// acknowledged write survives Stop, Kill and Restart.
	AOF bool
	// Cluster starts the server with cluster-enabled yes. Use StartCluster
	// rather than setting it directly: a lone cluster node owns no slots.
	Cluster bool
}

// Server is one redis-server process started for a test.
type Server struct {
	// Addr is where the server listens, "127.0.0.1:PORT". It stays the same
	// across Restart.
	Addr string

	t       testing.TB
	opts    Options
	dir     string // data directory: AOF files, nodes.conf, redis.log
	busPort int    // cluster bus port, 0 unless opts.Cluster

	// mu serialises Stop, Kill and Restart, so when one returns the
	// process it acted on has exited and been reaped.
	mu   sync.Mutex
	proc *process // nil while not running
}

// process is one run of redis-server. Its goroutine owns cmd.Wait and
// exits when the process does; every path that ends a process waits on
// done, so no goroutine outlives the Server's cleanup.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result; read only after done is closed
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *process) kill() {
	_ = p.cmd.Process.Kill() // fails only if the process has already exited
	<-p.done
}

// Start picks a free port, starts redis-server on it and waits until it
// answers PING. The server is killed when the test ends; Start fails the
// test if redis-server cannot be started or does not become ready.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	s := &Server{t: t, opts: opts}
	base := t.TempDir()
	// Registered after TempDir, so it runs before the directory is
	// removed: a live redis-server would keep writing into it.
	t.Cleanup(s.Kill)

	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for attempt := 0; attempt < startAttempts; attempt++ {
		if err = s.pickPorts(); err != nil {
			break
		}
		// A fresh directory per attempt: a failed cluster node may already
		// have written a nodes.conf naming the ports it could not bind.
		if s.dir, err = os.MkdirTemp(base, "redis-"); err != nil {
			break
		}
		if err = s.launchLocked(); !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: start redis-server: %v", err)
	}
	return s
}

// pickPorts chooses the server's port, and for a cluster node its bus
// port, by letting the kernel assign free ones. Another process may take
// them before redis-server binds; Start retries when that happens.
func (s *Server) pickPorts() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if s.opts.Cluster {
		// The default bus port, port+10000, can exceed 65535 or be taken;
		// Redis 7's --cluster-port lets us pick it too.
		if s.busPort, err = freePort(); err != nil {
			return err
		}
	}
	return nil
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != sharedPort {
			return port, nil
		}
	}
}

// args returns redis-server's command line.
func (s *Server) args() []string {
	_, port, _ := net.SplitHostPort(s.Addr)
	args := []string{
		"--port", port,
		"--bind", "127.0.0.1",
		"--save", "", // Redis 7 form: no RDB snapshots at all
		"--dir", s.dir,
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}
	if s.opts.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	if s.opts.Cluster {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
			"--cluster-port", strconv.Itoa(s.busPort),
		)
	}
	return args
}

// launchLocked starts redis-server and waits until it is ready. On error
// the process has been killed and reaped. s.mu must be held.
func (s *Server) launchLocked() error {
	// Errors before the log file is open, such as a bad argument, go to
	// stdout; an *os.File is handed to the child without a copy goroutine.
	out, err := os.OpenFile(s.outPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("redis-server", s.args()...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Start()
	out.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("run redis-server: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := s.waitReady(p); err != nil {
		p.kill()
		return err
	}
	s.proc = p
	return nil
}

// waitReady polls until p answers PING on s.Addr, and checks that the
// answer came from p and not from some other server that took the port.
func (s *Server) waitReady(p *process) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var client *redis.Client
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	for {
		select {
		case <-p.done:
			return s.exitedEarly(p)
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s did not answer PING within %v\n%s", s.Addr, readyTimeout, s.logTail())
		default:
		}
		// Until the port accepts connections, dial it ourselves: go-redis
		// logs every refused dial and backs off after a few.
		if client == nil {
			if conn, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
				conn.Close()
				client = redis.NewClient(&redis.Options{
					Addr:            s.Addr,
					DisableIdentity: true,
					MaxRetries:      -1,
					DialerRetries:   1,
					DialTimeout:     time.Second,
					// Redis answers PING (or LOADING) at once; a short
					// timeout means a port held by something else that
					// accepts but never answers delays the next check of
					// p.done only briefly.
					ReadTimeout: 250 * time.Millisecond,
				})
			}
		}
		if client != nil {
			if pid, err := serverPID(ctx, client); err == nil {
				if pid != p.cmd.Process.Pid {
					return fmt.Errorf("%w: %s is answered by pid %d, not by our redis-server (pid %d)", errAddrInUse, s.Addr, pid, p.cmd.Process.Pid)
				}
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serverPID sends PING and then reads process_id from INFO server.
func serverPID(ctx context.Context, client *redis.Client) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return 0, err // includes LOADING while an AOF is replayed
	}
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

// exitedEarly describes a process that exited before it was ready.
func (s *Server) exitedEarly(p *process) error {
	tail := s.logTail()
	err := fmt.Errorf("redis-server on %s exited before it was ready (%v)\n%s", s.Addr, p.err, tail)
	if strings.Contains(tail, "Address already in use") {
		err = fmt.Errorf("%w: %w", errAddrInUse, err)
	}
	return err
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "redis.log") }
func (s *Server) outPath() string { return filepath.Join(s.dir, "redis.out") }

// logTail returns redis-server's console output, if any, and the last
// lines of its log file, for failure messages.
func (s *Server) logTail() string {
	var b strings.Builder
	if out, err := os.ReadFile(s.outPath()); err == nil && len(bytes.TrimSpace(out)) > 0 {
		fmt.Fprintf(&b, "--- %s:\n%s\n", s.outPath(), bytes.TrimSpace(out))
	}
	f, err := os.Open(s.logPath())
	if err != nil {
		fmt.Fprintf(&b, "--- %s: %v", s.logPath(), err)
		return b.String()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > logTailLines {
			lines = lines[1:]
		}
	}
	fmt.Fprintf(&b, "--- last %d lines of %s:\n%s", len(lines), s.logPath(), strings.Join(lines, "\n"))
	return b.String()
}

// URL returns a redis:// URL for the server's database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stop shuts the server down gracefully and waits for it to exit: with
// SHUTDOWN NOSAVE, or with SIGTERM when AOF is on so Redis closes the AOF
// cleanly. Stopping a server that is not running does nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	s.t.Helper()
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	if s.opts.AOF || s.shutdownNoSave() != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.kill()
		s.t.Errorf("redistest: redis-server on %s did not exit within %v of being stopped; killed it\n%s", s.Addr, stopTimeout, s.logTail())
	}
}

// shutdownNoSave sends SHUTDOWN NOSAVE. go-redis reports the connection
// closing under it as success.
func (s *Server) shutdownNoSave() error {
	client := redis.NewClient(&redis.Options{
		Addr:            s.Addr,
		DisableIdentity: true,
		MaxRetries:      -1, // a retry would dial a server that is gone
	})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.ShutdownNoSave(ctx).Err()
}

// Kill ends the server abruptly with SIGKILL, as a crash would, and waits
// for it to exit. Killing a server that is not running does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// Restart stops the server if it is running, starts it again on the same
// port with the same data directory, and waits until it answers PING.
// Clients made by Client reconnect on their own.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	if err := s.launchLocked(); err != nil {
		s.t.Fatalf("redistest: restart redis-server: %v", err)
	}
}

// Client returns a client of the server, closed when t ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// Cluster is a Redis Cluster of masters without replicas, started for a
// test.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n cluster-enabled servers, joins them into one
// cluster with the hash slots spread evenly, and waits until every node
// reports the cluster healthy. n must be at least 3, Redis's minimum.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	Require(t)
	if n < 3 {
		t.Fatalf("redistest: a Redis Cluster needs at least 3 masters, asked for %d", n)
	}
	c := &Cluster{}
	for range n {
		c.Nodes = append(c.Nodes, Start(t, Options{Cluster: true}))
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitHealthy(ctx, t)
	return c
}

// waitHealthy polls CLUSTER INFO on every node until each one reports
// cluster_state:ok, all slots assigned and every node known.
func (c *Cluster) waitHealthy(ctx context.Context, t testing.TB) {
	t.Helper()
	clients := make([]*redis.Client, len(c.Nodes))
	for i, node := range c.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: node.Addr, DisableIdentity: true, MaxRetries: -1})
		defer clients[i].Close()
	}
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": strconv.Itoa(clusterSlots),
		"cluster_known_nodes":    strconv.Itoa(len(c.Nodes)),
	}
	var last string // the last complaint, for the failure message
	for {
		last = ""
		for i, client := range clients {
			if problem := clusterProblem(ctx, client, want); problem != "" {
				last = fmt.Sprintf("node %s: %s", c.Nodes[i].Addr, problem)
				break
			}
		}
		if last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("redistest: cluster not healthy within %v: %s", clusterTimeout, last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// clusterProblem returns what in one node's CLUSTER INFO differs from
// want, or "" if nothing does.
func clusterProblem(ctx context.Context, client *redis.Client, want map[string]string) string {
	info, err := client.ClusterInfo(ctx).Result()
	if err != nil {
		return err.Error()
	}
	got := map[string]string{}
	for _, line := range strings.Split(info, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			got[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Sprintf("%s is %q, want %q", k, got[k], v)
		}
	}
	return ""
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, node := range c.Nodes {
		addrs[i] = node.Addr
	}
	return addrs
}

// Client returns a cluster client, closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DisableIdentity: true})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// Require skips the test when redis-server or redis-cli is not on PATH,
// or fails it when the CI environment variable is "true", so a CI image
// without Redis cannot pass by skipping every Redis test.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("redistest: %s not found on PATH; install redis-server (Redis 7 or later, e.g. apt-get install redis-server, which includes redis-cli)", strings.Join(missing, " and "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
