// Package deploy_test keeps the deployment examples in deploy/ true to
// matchd: it builds cmd/matchd, reads the flags `matchd -h` prints and the
// metrics `/metrics` exposes, and checks every file under deploy/ against
// them.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// The binary, its flags and its metrics (each computed once per run).

var (
	tmpDir string // removed by TestMain

	buildOnce sync.Once
	binPath   string
	buildErr  error

	helpOnce  sync.Once
	helpFlags map[string]string // flag name → default as printed ("" if none)
	helpErr   error

	metricsOnce sync.Once
	metricsText string
	metricsErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	os.Exit(code)
}

// moduleRoot is the directory of the go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// cleanEnv is the test's environment without MATCHD_ variables, so that
// the machine's settings cannot change what matchd prints or does.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MATCHD_") {
			env = append(env, kv)
		}
	}
	return env
}

// matchdBinary builds cmd/matchd once into a temporary directory.
func matchdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root := moduleRoot(t)
		tmpDir, buildErr = os.MkdirTemp("", "matchd-deploy-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(tmpDir, "matchd")
		if runtime.GOOS == "windows" {
			binPath += ".exe"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/matchd")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/matchd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

var (
	helpFlagLine = regexp.MustCompile(`^  -([a-z0-9][a-z0-9-]*)`)
	helpDefault  = regexp.MustCompile(`\(default "?([^"()]*)"?\)\s*$`)
)

// flags runs `matchd -h` and returns the flags it prints, with their
// defaults.
func flags(t *testing.T) map[string]string {
	t.Helper()
	bin := matchdBinary(t)
	helpOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-h")
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			helpErr = fmt.Errorf("matchd -h: %v (want exit status 0)\n%s", err, out)
			return
		}
		helpFlags = map[string]string{}
		cur := ""
		for line := range strings.SplitSeq(string(out), "\n") {
			if m := helpFlagLine.FindStringSubmatch(line); m != nil {
				cur = m[1]
				helpFlags[cur] = ""
			}
			if m := helpDefault.FindStringSubmatch(line); m != nil && cur != "" {
				helpFlags[cur] = m[1]
			}
		}
		if _, ok := helpFlags["addr"]; !ok {
			helpErr = fmt.Errorf("could not read the flags from matchd -h (no -addr):\n%s", out)
		}
	})
	if helpErr != nil {
		t.Fatal(helpErr)
	}
	return helpFlags
}

// envName is the environment variable of a flag.
func envName(flag string) string {
	return "MATCHD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envNames maps every flag's variable to the flag.
func envNames(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for f := range flags(t) {
		m[envName(f)] = f
	}
	return m
}

func isFlag(t *testing.T, name string) bool {
	t.Helper()
	if name == "h" || name == "help" {
		return true
	}
	_, ok := flags(t)[name]
	return ok
}

// scrapeMetrics starts matchd with no settings (embedded backend) and
// returns its /metrics, once per run.
func scrapeMetrics(t *testing.T) string {
	t.Helper()
	bin := matchdBinary(t)
	metricsOnce.Do(func() {
		metricsText, metricsErr = runMatchd(bin, nil, nil)
	})
	if metricsErr != nil {
		t.Fatal(metricsErr)
	}
	return metricsText
}

// runMatchd starts matchd on a free local port with the given extra
// arguments and environment, waits for GET /healthz to answer 200, and
// returns its /metrics.
func runMatchd(bin string, args, env []string) (string, error) {
	var text string
	err := withMatchd(bin, args, env, func(get getFunc) error {
		if err := poll(get, "/healthz", http.StatusOK, 15*time.Second); err != nil {
			return err
		}
		code, body, err := get("/metrics")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /metrics: %d, %v", code, err)
		}
		text = body
		return nil
	})
	return text, err
}

// getFunc GETs a path of the running matchd: status, body.
type getFunc func(path string) (int, string, error)

// poll GETs path until it answers want, for at most d.
func poll(get getFunc, path string, want int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		code, body, err := get(path)
		if err == nil && code == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s: not %d within %v (last: %d %q, %v)", path, want, d, code, strings.TrimSpace(body), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withMatchd runs matchd on a free local port, waits until it answers
// HTTP, calls fn, and stops it. A process that exits before it answers is
// retried on another port (the free port may have been taken meanwhile).
func withMatchd(bin string, args, env []string, fn func(getFunc) error) error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var early bool
		early, err = startOnce(bin, args, env, fn)
		if err == nil || !early {
			return err
		}
	}
	return err
}

// lastLines is the end of a process's output, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startOnce runs one matchd for fn. early reports that the process exited
// before it answered HTTP.
func startOnce(bin string, args, env []string, fn func(getFunc) error) (early bool, err error) {
	port, err := freePort()
	if err != nil {
		return false, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-addr", addr, "-log-level", "warn"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	var logs bytes.Buffer // read only after Wait
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return false, err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	// Always stop and reap the process before returning: no leaks.
	defer func() {
		cancel() // kills the process if it still runs
		<-exited
		if err != nil {
			err = fmt.Errorf("matchd %s: %w\noutput (last lines):\n%s", strings.Join(cmd.Args[1:], " "), err, lastLines(logs.String(), 10))
		}
	}()

	client := &http.Client{Timeout: 3 * time.Second}
	get := func(p string) (int, string, error) {
		resp, err := client.Get("http://" + addr + p)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return true, fmt.Errorf("exited (%v) before it answered HTTP", cmd.ProcessState)
		default:
		}
		if _, _, err := get("/healthz"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return false, errors.New("no HTTP answer within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false, fn(get)
}

// exposedMetrics are the metric families in a Prometheus text exposition.
func exposedMetrics(text string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.SplitSeq(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "#" && (f[1] == "HELP" || f[1] == "TYPE"):
			names[f[2]] = true
		case len(f) >= 1 && !strings.HasPrefix(line, "#"):
			name, _, _ := strings.Cut(f[0], "{")
			names[name] = true
		}
	}
	return names
}

var sourceMetric = regexp.MustCompile(`"(matchd_[a-z0-9_]+)"`)

// definedMetrics are the matchd_ names written in metrics/*.go: vectors
// that have no label values yet are not on /metrics.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(moduleRoot(t), "metrics", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sourceMetric.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
	}
	return names
}

// ---------------------------------------------------------------------------
// The files under deploy/.

type deployFile struct {
	rel  string // slash path relative to deploy/
	text string
}

// deployFiles returns every file under deploy/ but the Go sources.
func deployFiles(t *testing.T) []deployFile {
	t.Helper()
	dir := filepath.Join(moduleRoot(t), "deploy")
	var files []deployFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, deployFile{filepath.ToSlash(rel), string(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no files under deploy/")
	}
	return files
}

func fileNamed(t *testing.T, files []deployFile, rel string) deployFile {
	t.Helper()
	for _, f := range files {
		if f.rel == rel {
			return f
		}
	}
	t.Fatalf("deploy/%s is missing", rel)
	return deployFile{}
}

var envRef = regexp.MustCompile(`MATCHD_[A-Z0-9_]*[A-Z0-9]`)

type ref struct {
	name string
	at   string // file:line
}

// envRefs lists every MATCHD_ variable mentioned in the files.
func envRefs(files []deployFile) []ref {
	var refs []ref
	for _, f := range files {
		for i, line := range strings.Split(f.text, "\n") {
			for _, m := range envRef.FindAllString(line, -1) {
				refs = append(refs, ref{m, fmt.Sprintf("deploy/%s:%d", f.rel, i+1)})
			}
		}
	}
	return refs
}

// ---------------------------------------------------------------------------
// Finding matchd command lines.

// invocation is a matchd command line found in a file: its arguments.
type invocation struct {
	at   string
	args []string
}

var (
	assignment  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	flagToken   = regexp.MustCompile(`^--?([a-z][a-z0-9-]*)(=.*)?$`)
	backtickRun = regexp.MustCompile("`([^`]+)`")
	imageLine   = regexp.MustCompile(`(?m)^\s*(?:-\s+)?image:\s*["']?([^"'\s]+)`)
	listKey     = regexp.MustCompile(`^(\s*)(?:-\s+)?(command|args):\s*(.*)$`)
)

// tokens splits a command line into words, dropping quotes and the
// brackets and commas of JSON or YAML lists.
func tokens(s string) []string {
	var out []string
	for _, w := range strings.Fields(s) {
		w = strings.Trim(w, `"'[],`)
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

func isMatchdPath(w string) bool {
	return path.Base(w) == "matchd"
}

// matchdArgs recognises a matchd command line (an ExecStart=, ENTRYPOINT,
// shell or `go run ./cmd/matchd` line, or `docker run … <matchd image>`)
// and returns its arguments.
func matchdArgs(line string) ([]string, bool) {
	line = strings.TrimLeft(strings.TrimSpace(line), "#$> \t")
	for _, p := range []string{"ExecStart=", "ENTRYPOINT"} {
		line = strings.TrimPrefix(line, p)
	}
	w := tokens(line)
	i := 0
	for i < len(w) && (assignment.MatchString(w[i]) || w[i] == "sudo" || w[i] == "exec" || w[i] == "env") {
		i++
	}
	if i >= len(w) {
		return nil, false
	}
	start := -1
	switch {
	case w[i] == "go" && i+1 < len(w) && w[i+1] == "run":
		for j := i + 2; j < len(w); j++ {
			if !strings.HasPrefix(w[j], "-") {
				if isMatchdPath(w[j]) {
					start = j + 1
				}
				break
			}
		}
	case (w[i] == "docker" || w[i] == "podman") && i+1 < len(w) && w[i+1] == "run":
		for j := i + 2; j < len(w); j++ {
			name, _, _ := strings.Cut(path.Base(w[j]), ":")
			if name == "matchd" && (strings.Contains(w[j], ":") || !strings.HasPrefix(w[j-1], "-")) {
				start = j + 1
				break
			}
		}
	case isMatchdPath(w[i]):
		start = i + 1
	}
	if start < 0 {
		return nil, false
	}
	var args []string
	for _, a := range w[start:] {
		if a == "|" || a == "||" || a == "&&" || a == ";" || a == "&" || strings.HasPrefix(a, ">") || strings.HasPrefix(a, "2>") || strings.HasPrefix(a, "#") {
			break
		}
		args = append(args, a)
	}
	return args, true
}

// logicalLines joins lines continued with a trailing backslash; each
// result carries the number of its first line.
func logicalLines(text string) (lines []string, numbers []int) {
	var cur strings.Builder
	first := 0
	for i, l := range strings.Split(text, "\n") {
		if cur.Len() == 0 {
			first = i + 1
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(l, " \t"), `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		lines, numbers = append(lines, cur.String()), append(numbers, first)
		cur.Reset()
	}
	return lines, numbers
}

// yamlLists returns the items of the `command:` and `args:` lists of a
// YAML document, with the key and the line it starts on.
func yamlLists(doc string, firstLine int) (lists [][]string, keys []string, at []int) {
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		m := listKey.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, key, rest := len(m[1]), m[2], strings.TrimSpace(m[3])
		var items []string
		if rest != "" && !strings.HasPrefix(rest, "#") {
			// Inline list: [a, "b", …]
			for it := range strings.SplitSeq(strings.Trim(rest, "[]"), ",") {
				if it = strings.Trim(strings.TrimSpace(it), `"'`); it != "" {
					items = append(items, it)
				}
			}
		} else {
			for j := i + 1; j < len(lines); j++ {
				s := strings.TrimSpace(lines[j])
				if s == "" || strings.HasPrefix(s, "#") {
					continue
				}
				ind := len(lines[j]) - len(strings.TrimLeft(lines[j], " "))
				if !strings.HasPrefix(s, "- ") || ind < indent {
					break
				}
				items = append(items, strings.Trim(strings.TrimSpace(s[2:]), `"'`))
			}
		}
		lists, keys, at = append(lists, items), append(keys, key), append(at, firstLine+i)
	}
	return lists, keys, at
}

// invocations finds the matchd command lines of a file.
func invocations(f deployFile) []invocation {
	var out []invocation
	at := func(n int) string { return fmt.Sprintf("deploy/%s:%d", f.rel, n) }
	base := path.Base(f.rel)
	switch {
	case strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml"):
		// Only documents that run the matchd image: Redis has flags of its
		// own.
		line := 1
		for doc := range strings.SplitSeq(f.text, "\n---") {
			runsMatchd := false
			for _, m := range imageLine.FindAllStringSubmatch(doc, -1) {
				name, _, _ := strings.Cut(path.Base(m[1]), ":")
				runsMatchd = runsMatchd || name == "matchd"
			}
			if runsMatchd {
				lists, keys, lines := yamlLists(doc, line)
				for i, items := range lists {
					if keys[i] == "args" {
						out = append(out, invocation{at(lines[i]), items})
					} else if args, ok := matchdArgs(strings.Join(items, " ")); ok {
						out = append(out, invocation{at(lines[i]), args})
					}
				}
			}
			line += strings.Count(doc, "\n") + 1
		}
		return out
	}
	lines, numbers := logicalLines(f.text)
	for i, l := range lines {
		candidates := []string{l}
		if strings.HasSuffix(base, ".md") {
			for _, m := range backtickRun.FindAllStringSubmatch(l, -1) {
				candidates = append(candidates, m[1])
			}
		}
		if strings.HasPrefix(base, "Dockerfile") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "CMD"); ok {
				out = append(out, invocation{at(numbers[i]), tokens(rest)})
				continue
			}
		}
		for _, c := range candidates {
			if args, ok := matchdArgs(c); ok {
				out = append(out, invocation{at(numbers[i]), args})
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// The tests.

// TestEnvVariablesAreFlags: every MATCHD_ variable named anywhere under
// deploy/ is the variable of a flag of `matchd -h`.
func TestEnvVariablesAreFlags(t *testing.T) {
	vars := envNames(t)
	refs := envRefs(deployFiles(t))
	if len(refs) == 0 {
		t.Fatal("no MATCHD_ variables found under deploy/")
	}
	unknown := map[string][]string{}
	for _, r := range refs {
		if _, ok := vars[r.name]; !ok {
			unknown[r.name] = append(unknown[r.name], r.at)
		}
	}
	for _, name := range sortedKeys(unknown) {
		t.Errorf("%s is not the variable of any flag of matchd -h (used at %s)", name, strings.Join(unknown[name], ", "))
	}
}

// TestCommandLineFlags: every flag on a matchd command line under deploy/
// (ExecStart=, ENTRYPOINT/CMD, container command/args, shell examples) and
// every key of a JSON config example is a flag of `matchd -h`.
func TestCommandLineFlags(t *testing.T) {
	files := deployFiles(t)
	found := map[string]int{}
	for _, f := range files {
		for _, inv := range invocations(f) {
			found[f.rel]++
			for _, a := range inv.args {
				m := flagToken.FindStringSubmatch(a)
				if m == nil {
					continue // a flag's value
				}
				if !isFlag(t, m[1]) {
					t.Errorf("%s: matchd has no flag -%s", inv.at, m[1])
				}
			}
		}
	}
	// The scanner must see the command lines that certainly exist, or it
	// checks nothing.
	for _, rel := range []string{"systemd/matchd.service", "docker/Dockerfile"} {
		if found[rel] == 0 {
			t.Errorf("deploy/%s: no matchd command line recognised (ExecStart=/ENTRYPOINT)", rel)
		}
	}

	// JSON config examples (for -config): keys are flag names.
	for _, f := range files {
		base := path.Base(f.rel)
		if !strings.Contains(base, ".json") || strings.Contains(f.rel, "grafana/") {
			continue
		}
		var cfg map[string]any
		if err := json.Unmarshal([]byte(f.text), &cfg); err != nil {
			t.Errorf("deploy/%s: not a JSON object: %v", f.rel, err)
			continue
		}
		for k, v := range cfg {
			if !isFlag(t, k) || k == "h" || k == "help" || k == "config" {
				t.Errorf("deploy/%s: key %q is not a flag of matchd -h", f.rel, k)
			}
			switch v.(type) {
			case string, float64, bool:
			default:
				t.Errorf("deploy/%s: key %q: value %v is not a string, number or boolean", f.rel, k, v)
			}
		}
	}
}

var readmeRow = regexp.MustCompile("^\\|\\s*`(MATCHD_[A-Z0-9_]+)`\\s*\\|\\s*`-([a-z0-9-]+)`")

// TestReadmeListsVariables: deploy/README.md lists every MATCHD_ variable
// the examples use, and its table pairs each variable with its flag.
func TestReadmeListsVariables(t *testing.T) {
	files := deployFiles(t)
	readme := fileNamed(t, files, "README.md")
	listed := map[string]bool{}
	for _, r := range envRefs([]deployFile{readme}) {
		listed[r.name] = true
	}
	missing := map[string][]string{}
	for _, f := range files {
		if f.rel == "README.md" {
			continue
		}
		for _, r := range envRefs([]deployFile{f}) {
			if !listed[r.name] {
				missing[r.name] = append(missing[r.name], r.at)
			}
		}
	}
	for _, name := range sortedKeys(missing) {
		t.Errorf("deploy/README.md does not list %s (used at %s)", name, strings.Join(missing[name], ", "))
	}
	rows := 0
	for i, line := range strings.Split(readme.text, "\n") {
		if m := readmeRow.FindStringSubmatch(line); m != nil {
			rows++
			if envName(m[2]) != m[1] {
				t.Errorf("deploy/README.md:%d: %s is not the variable of -%s (that is %s)", i+1, m[1], m[2], envName(m[2]))
			}
		}
	}
	if rows == 0 {
		t.Error("deploy/README.md: no | `MATCHD_…` | `-flag` | table rows found")
	}
}

var (
	timeoutStopSec = regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)`)
	envShutdown    = regexp.MustCompile(`(?m)^\s*MATCHD_SHUTDOWN_TIMEOUT\s*[=:]\s*["']?([^"'\s]+)`)
	graceSeconds   = regexp.MustCompile(`(?m)^\s*terminationGracePeriodSeconds:\s*(\d+)`)
	preStopSleep   = regexp.MustCompile(`preStop:\s*\n\s*sleep:\s*\n\s*seconds:\s*(\d+)`)
)

// parseSeconds reads a duration as Go or systemd (bare seconds) writes it.
func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(strings.Replace(s, "min", "m", 1))
}

// TestStopTimeouts: whatever stops matchd waits longer than its shutdown
// timeout (drain), so that it is not killed mid-drain.
func TestStopTimeouts(t *testing.T) {
	files := deployFiles(t)
	def, ok := flags(t)["shutdown-timeout"]
	if !ok {
		t.Fatal("matchd -h has no -shutdown-timeout flag")
	}
	defShutdown, err := time.ParseDuration(def)
	if err != nil {
		t.Fatalf("-shutdown-timeout default %q: %v", def, err)
	}
	shutdownIn := func(dir string) time.Duration {
		d := defShutdown
		for _, f := range files {
			if !strings.HasPrefix(f.rel, dir) {
				continue
			}
			if m := envShutdown.FindStringSubmatch(f.text); m != nil {
				v, err := time.ParseDuration(m[1])
				if err != nil {
					t.Errorf("deploy/%s: MATCHD_SHUTDOWN_TIMEOUT=%s: %v", f.rel, m[1], err)
					continue
				}
				d = max(d, v)
			}
			if strings.HasSuffix(f.rel, ".json.example") || strings.HasSuffix(f.rel, ".json") {
				var cfg map[string]any
				if json.Unmarshal([]byte(f.text), &cfg) == nil {
					if s, ok := cfg["shutdown-timeout"].(string); ok {
						if v, err := time.ParseDuration(s); err == nil {
							d = max(d, v)
						}
					}
				}
			}
		}
		return d
	}

	unit := fileNamed(t, files, "systemd/matchd.service")
	m := timeoutStopSec.FindStringSubmatch(unit.text)
	if m == nil {
		t.Error("deploy/systemd/matchd.service: no TimeoutStopSec=")
	} else if stop, err := parseSeconds(m[1]); err != nil {
		t.Errorf("deploy/systemd/matchd.service: TimeoutStopSec=%s: %v", m[1], err)
	} else if sd := shutdownIn("systemd/"); stop <= sd {
		t.Errorf("deploy/systemd/matchd.service: TimeoutStopSec=%s is not above the shutdown timeout %v", m[1], sd)
	}

	sd := shutdownIn("kubernetes/")
	checked := false
	for _, f := range files {
		if !strings.HasPrefix(f.rel, "kubernetes/") {
			continue
		}
		for doc := range strings.SplitSeq(f.text, "\n---") {
			if !strings.Contains(doc, "kind: Deployment") || !slices.ContainsFunc(imageLine.FindAllStringSubmatch(doc, -1), func(m []string) bool {
				name, _, _ := strings.Cut(path.Base(m[1]), ":")
				return name == "matchd"
			}) {
				continue
			}
			checked = true
			grace := 30 * time.Second // Kubernetes' default
			if m := graceSeconds.FindStringSubmatch(doc); m != nil {
				n, _ := strconv.Atoi(m[1])
				grace = time.Duration(n) * time.Second
			}
			var sleep time.Duration
			if m := preStopSleep.FindStringSubmatch(doc); m != nil {
				n, _ := strconv.Atoi(m[1])
				sleep = time.Duration(n) * time.Second
			}
			if grace <= sleep+sd {
				t.Errorf("deploy/%s: terminationGracePeriodSeconds %v is not above preStop sleep %v + shutdown timeout %v", f.rel, grace, sleep, sd)
			}
		}
	}
	if !checked {
		t.Error("deploy/kubernetes: no Deployment running the matchd image found")
	}
}

var envAssignment = regexp.MustCompile(`^(MATCHD_[A-Z0-9_]+)=(.*)$`)

// TestExamplesStart: matchd starts with the settings of every environment
// file (*.env, *.env.example) and JSON config example (*.json.example)
// under deploy/, so every value in them is valid, not only every name.
// Settings that point at the deployment's machines (listen address, Redis,
// identity provider, config path) are overridden on the command line: the
// instance runs on a free local port with the embedded backend.
func TestExamplesStart(t *testing.T) {
	bin := matchdBinary(t)
	local := []string{"addr", "redis-url", "redis-cluster", "jwks-url", "config"}
	override := func(has func(flag string) bool) []string {
		var args []string
		for _, f := range local {
			if f != "addr" && has(f) {
				args = append(args, "-"+f+"=")
				if f == "redis-cluster" {
					args[len(args)-1] += "false"
				}
			}
		}
		return args
	}
	started := 0
	for _, f := range deployFiles(t) {
		base := path.Base(f.rel)
		switch {
		case strings.HasSuffix(base, ".env") || strings.HasSuffix(base, ".env.example"):
			t.Run(f.rel, func(t *testing.T) {
				var env []string
				set := map[string]bool{}
				for line := range strings.SplitSeq(f.text, "\n") {
					m := envAssignment.FindStringSubmatch(strings.TrimSpace(line))
					if m == nil {
						continue
					}
					v := strings.TrimSpace(m[2])
					if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
						v = v[1 : len(v)-1]
					}
					env = append(env, m[1]+"="+v)
					set[m[1]] = true
				}
				if len(env) == 0 {
					return // a file that sets no MATCHD_ variable has nothing to start matchd with
				}
				args := override(func(flag string) bool { return set[envName(flag)] })
				if _, err := runMatchd(bin, args, env); err != nil {
					t.Errorf("deploy/%s: %v", f.rel, err)
				}
			})
			started++
		case strings.HasSuffix(base, ".json.example"):
			t.Run(f.rel, func(t *testing.T) {
				var cfg map[string]any
				if err := json.Unmarshal([]byte(f.text), &cfg); err != nil {
					t.Fatalf("deploy/%s: %v", f.rel, err)
				}
				abs := filepath.Join(moduleRoot(t), "deploy", filepath.FromSlash(f.rel))
				args := append(override(func(flag string) bool { _, ok := cfg[flag]; return ok && flag != "config" }), "-config", abs)
				if _, err := runMatchd(bin, args, nil); err != nil {
					t.Errorf("deploy/%s: %v", f.rel, err)
				}
			})
			started++
		}
	}
	if started == 0 {
		t.Error("no environment or config examples found under deploy/")
	}
}

// TestProbes: the probes of the examples mean what they assume. With the
// backend unreachable, /readyz is 503 (the instance leaves the load
// balancer) but /livez, the liveness probe of kubernetes/matchd.yaml, is
// 200: a Redis outage must not make the orchestrator restart every
// instance and drop every socket.
func TestProbes(t *testing.T) {
	bin := matchdBinary(t)
	port, err := freePort() // closed again: nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	redisURL := fmt.Sprintf("redis://127.0.0.1:%d/0?dial_timeout=200ms", port)
	err = withMatchd(bin, []string{"-redis-url", redisURL}, nil, func(get getFunc) error {
		if err := poll(get, "/readyz", http.StatusServiceUnavailable, 10*time.Second); err != nil {
			return fmt.Errorf("Redis unreachable: %w", err)
		}
		if err := poll(get, "/livez", http.StatusOK, 3*time.Second); err != nil {
			return fmt.Errorf("Redis unreachable: /livez must stay 200 (liveness), /readyz carries readiness: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

var (
	matchdMetric  = regexp.MustCompile(`\bmatchd_[a-z0-9_]*[a-z0-9]`)
	runtimeMetric = regexp.MustCompile(`\b(?:go|process)_[a-z0-9_]*[a-z0-9]`)
)

// TestDashboard: the Grafana dashboard is valid JSON, queries the
// ${DS_PROMETHEUS} data source, and every metric it names is one matchd
// exposes on /metrics or defines in metrics/.
func TestDashboard(t *testing.T) {
	files := deployFiles(t)
	f := fileNamed(t, files, "grafana/matchd-dashboard.json")
	var dash map[string]any
	if err := json.Unmarshal([]byte(f.text), &dash); err != nil {
		t.Fatalf("deploy/%s: %v", f.rel, err)
	}

	// Template variables.
	vars := map[string]string{}
	if tl, ok := dash["templating"].(map[string]any); ok {
		list, _ := tl["list"].([]any)
		for _, v := range list {
			if v, ok := v.(map[string]any); ok {
				name, _ := v["name"].(string)
				typ, _ := v["type"].(string)
				vars[name] = typ
			}
		}
	}
	if vars["DS_PROMETHEUS"] != "datasource" {
		t.Errorf("deploy/%s: no datasource variable DS_PROMETHEUS", f.rel)
	}
	if _, ok := vars["instance"]; !ok {
		t.Errorf("deploy/%s: no instance variable", f.rel)
	}

	// Panels (rows may nest them) and their data sources.
	var exprs []string
	var panels func([]any)
	panels = func(list []any) {
		for _, p := range list {
			p, ok := p.(map[string]any)
			if !ok {
				continue
			}
			title, _ := p["title"].(string)
			if nested, ok := p["panels"].([]any); ok {
				panels(nested)
			}
			if p["type"] == "row" {
				continue
			}
			if uid := datasourceUID(p["datasource"]); uid != "${DS_PROMETHEUS}" {
				t.Errorf("deploy/%s: panel %q: datasource uid %q, want ${DS_PROMETHEUS}", f.rel, title, uid)
			}
			targets, _ := p["targets"].([]any)
			if len(targets) == 0 {
				t.Errorf("deploy/%s: panel %q has no queries", f.rel, title)
			}
			for _, tg := range targets {
				tg, _ := tg.(map[string]any)
				if ds, ok := tg["datasource"]; ok && datasourceUID(ds) != "${DS_PROMETHEUS}" {
					t.Errorf("deploy/%s: panel %q: a query's datasource is not ${DS_PROMETHEUS}", f.rel, title)
				}
				if e, _ := tg["expr"].(string); e != "" {
					exprs = append(exprs, e)
				} else {
					t.Errorf("deploy/%s: panel %q: a query has no expr", f.rel, title)
				}
			}
		}
	}
	list, _ := dash["panels"].([]any)
	panels(list)
	if len(exprs) == 0 {
		t.Fatalf("deploy/%s: no queries", f.rel)
	}

	exposed := exposedMetrics(scrapeMetrics(t))
	defined := definedMetrics(t)
	known := func(name string) bool {
		if exposed[name] || defined[name] {
			return true
		}
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && (exposed[b] || defined[b]) {
				return true
			}
		}
		return false
	}
	// Every matchd_ name anywhere in the file (queries, variables,
	// annotations, descriptions), and the Go runtime and process metrics
	// the queries use.
	unknown := map[string]bool{}
	for _, name := range matchdMetric.FindAllString(f.text, -1) {
		if !known(name) {
			unknown[name] = true
		}
	}
	for _, e := range exprs {
		for _, name := range runtimeMetric.FindAllString(e, -1) {
			if strings.HasPrefix(name, "process_") && runtime.GOOS != "linux" {
				continue // the process collector reports on Linux only
			}
			if !known(name) {
				unknown[name] = true
			}
		}
	}
	for _, name := range sortedKeys(unknown) {
		t.Errorf("deploy/%s queries %s, which matchd neither exposes on /metrics nor defines in metrics/", f.rel, name)
	}
}

func datasourceUID(ds any) string {
	m, ok := ds.(map[string]any)
	if !ok {
		s, _ := ds.(string)
		return s
	}
	uid, _ := m["uid"].(string)
	return uid
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
