package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// stepTimeout bounds every single wait on a page; the whole test has
// browserTimeout.
const (
	browserTimeout = 60 * time.Second
	stepTimeout    = 15 * time.Second
)

// The lobby and room pages end to end: two real browsers choose their
// preferences and join from the lobby, get matched over the WebSocket and
// both open the same room, whose question honours the preferences.
func TestBrowserLobbyToRoom(t *testing.T) {
	chrome := chromiumPath(t)
	h := start(t)

	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel) // registered before the browsers, so it runs after they are gone
	alice := newBrowserPage(t, ctx, chrome, "alice")
	bob := newBrowserPage(t, ctx, chrome, "bob")
	startBrowsers(t, alice, bob)

	began := time.Now()
	alice.join(h.url, choosePreferences...)
	alice.waitState("waiting")
	// Alice's "queued" message shows her in the queue, so bob's join is the
	// one that completes the pair.
	alice.poll(`document.getElementById('queue-size').textContent === '1'`)
	waiting, err := h.backend.Waiting(ctx, 1)
	if err != nil || len(waiting) != 1 {
		t.Fatalf("waiting = %v, %v; want alice", waiting, err)
	}
	if p := waiting[0].Prefs; p.Difficulty != "hard" || p.Duration != 45 || !slices.Equal(p.Topics, []string{"concurrency", "system_design"}) || p.Language != "" {
		t.Errorf("alice waits with preferences %+v, want hard, 45 min, concurrency and system_design", p)
	}
	bob.join(h.url, choosePreferences...)

	// Both pages go to the room on their own; wait for them side by side.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*browserPage{alice, bob} {
		wg.Go(func() { errs[i] = p.tryWaitState("loaded") })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("waiting for both room pages: %v", err)
	}
	t.Logf("lobby to loaded room on both pages in %v", time.Since(began).Round(time.Millisecond))

	pathA, pathB := alice.eval(`location.pathname`), bob.eval(`location.pathname`)
	if pathA != pathB || !strings.HasPrefix(pathA, "/match/") || len(pathA) == len("/match/") {
		t.Fatalf("alice is at %q, bob at %q: want the same /match/{id}", pathA, pathB)
	}
	id, err := url.PathUnescape(strings.TrimPrefix(pathA, "/match/"))
	if err != nil {
		t.Fatalf("room path %q: %v", pathA, err)
	}
	if got := alice.text("#match-id"); got != id {
		t.Errorf("alice's #match-id = %q, want %q", got, id)
	}
	if got := alice.text("#partner"); got != "bob" {
		t.Errorf("alice's #partner = %q, want %q", got, "bob")
	}
	if got := bob.text("#partner"); got != "alice" {
		t.Errorf("bob's #partner = %q, want %q", got, "alice")
	}
	qa, qb := alice.text("#question"), bob.text("#question")
	if qa == "" || qa != qb {
		t.Errorf("#question: alice %q, bob %q: want the same non-empty question", qa, qb)
	}

	room, err := h.backend.Room(ctx, id)
	if err != nil {
		t.Fatalf("backend room %q: %v", id, err)
	}
	if !room.Has("alice") || !room.Has("bob") {
		t.Errorf("backend room %q has players %q and %q, want alice and bob", id, room.Player1, room.Player2)
	}
	if room.QuestionText != qa {
		t.Errorf("backend question = %q, the pages show %q", room.QuestionText, qa)
	}
	if room.Difficulty != "hard" || room.DurationMinutes != 45 || room.Topic != "concurrency" && room.Topic != "system_design" {
		t.Errorf("room question is %s/%s for %d min, want hard, concurrency or system_design, 45 min", room.Topic, room.Difficulty, room.DurationMinutes)
	}

	alice.screenshot("room")
	bob.screenshot("room")
	alice.checkConsole()
	bob.checkConsole()
}

// chromiumPath finds Chromium. Without one the test is skipped, except on
// CI, where a missing browser must not pass unnoticed.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: install it (apt-get install chromium) to run the browser tests")
	}
	t.Skip("no chromium on PATH; skipping the browser test")
	return ""
}

// browserPage is one tab in a browser process of its own, so two pages
// share no cookies or storage.
type browserPage struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu       sync.Mutex
	problems []string // JS exceptions, console.error calls, browser log errors
}

func newBrowserPage(t *testing.T, parent context.Context, execPath, name string) *browserPage {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent,
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	// Both cancel funcs wait: the tab's until the browser it started has
	// stopped, the allocator's until its goroutines are done. So nothing is
	// left for goleak, and the profile directory (removed by t.TempDir's
	// cleanup, which runs after this one) is no longer in use.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	return &browserPage{t: t, name: name, ctx: ctx}
}

// startBrowsers starts the pages' browsers side by side (each takes
// seconds) and starts recording their console.
func startBrowsers(t *testing.T, pages ...*browserPage) {
	t.Helper()
	errs := make([]error, len(pages))
	var wg sync.WaitGroup
	for i, p := range pages {
		// Listen starts the browser and opens the tab with p.ctx, which
		// lives until the cleanup. It keeps listening across navigations.
		wg.Go(func() {
			if err := chromedp.Listen(p.ctx, p.onEvent); err != nil {
				errs[i] = fmt.Errorf("%s: starting chromium: %w", p.name, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// onEvent runs on the browser's read loop: it must only record.
func (p *browserPage) onEvent(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		// The protocol counts lines and columns from 0.
		msg = fmt.Sprintf("exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, d.Text)
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		var args []string
		for _, a := range ev.Args {
			var str string
			switch {
			case a.Type == runtime.RemoteObjectTypeString && json.Unmarshal(a.Value, &str) == nil:
				args = append(args, str)
			case a.Value != nil:
				args = append(args, string(a.Value))
			default:
				args = append(args, a.Description)
			}
		}
		msg = "console.error: " + strings.Join(args, " ")
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	p.mu.Lock()
	p.problems = append(p.problems, msg)
	p.mu.Unlock()
}

// checkConsole fails the test if the page threw or logged an error.
func (p *browserPage) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("%s's page: %s", p.name, m)
	}
}

// run runs actions on the page, each run bounded by stepTimeout.
func (p *browserPage) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := p.tryRun(actions...); err != nil {
		p.t.Fatalf("%s: %s: %v%s", p.name, what, err, p.problemSummary())
	}
}

func (p *browserPage) tryRun(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

func (p *browserPage) problemSummary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.problems) == 0 {
		return ""
	}
	return "\nconsole:\n\t" + strings.Join(p.problems, "\n\t")
}

// join opens the lobby and submits the form with the page's name, after
// running choose (e.g. choosePreferences).
func (p *browserPage) join(base string, choose ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	actions := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + "/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-state="form"] #name`)),
		chromedp.SendKeys(chromedp.CSS("#name"), p.name),
	}
	actions = append(actions, choose...)
	actions = append(actions, chromedp.Click(chromedp.CSS("#join")))
	p.run("joining from the lobby", actions...)
}

// choosePreferences opens the lobby's preferences and asks for a hard,
// 45-minute session on concurrency or system design.
var choosePreferences = []chromedp.Action[chromedp.Void]{
	chromedp.Click(chromedp.CSS("#prefs summary")),
	chromedp.WaitVisible(chromedp.CSS("#difficulty")),
	chromedp.SetValue(chromedp.CSS("#difficulty"), "hard"),
	chromedp.SetValue(chromedp.CSS("#duration"), "45"),
	chromedp.Click(chromedp.CSS(`input[name="topics"][value="concurrency"]`)),
	chromedp.Click(chromedp.CSS(`input[name="topics"][value="system_design"]`)),
}

func stateSelector(state string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`body[data-state=%q]`, state))
}

func (p *browserPage) waitState(state string) {
	p.t.Helper()
	if err := p.tryWaitState(state); err != nil {
		p.t.Fatal(err)
	}
}

// tryWaitState is waitState for other goroutines than the test's.
func (p *browserPage) tryWaitState(state string) error {
	if err := p.tryRun(chromedp.WaitReady(stateSelector(state))); err != nil {
		got, _ := p.tryEval(`document.body ? document.body.dataset.state + ' at ' + location.pathname : 'no body'`)
		return fmt.Errorf("%s: waiting for state %q: %v (page is %q)%s", p.name, state, err, got, p.problemSummary())
	}
	return nil
}

// poll waits until the JavaScript expression is true.
func (p *browserPage) poll(expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(stepTimeout))); err != nil {
		p.t.Fatalf("%s: waiting for %s: %v%s", p.name, expr, err, p.problemSummary())
	}
}

func (p *browserPage) tryEval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// eval returns the string value of a JavaScript expression.
func (p *browserPage) eval(expr string) string {
	p.t.Helper()
	v, err := p.tryEval(expr)
	if err != nil {
		p.t.Fatalf("%s: evaluating %s: %v", p.name, expr, err)
	}
	return v
}

// text returns the text of the visible element sel.
func (p *browserPage) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("%s: reading %s: %v", p.name, sel, err)
	}
	return strings.TrimSpace(v)
}

// screenshot saves a full-page PNG in the test's temporary directory and,
// if MATCHD_SCREENSHOTS names a directory, there too.
func (p *browserPage) screenshot(label string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	file := fmt.Sprintf("%s-%s-%s.png", p.t.Name(), p.name, label)
	dirs := []string{p.t.TempDir()}
	if d := os.Getenv("MATCHD_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		path := filepath.Join(d, file)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			p.t.Fatalf("%s: writing screenshot: %v", p.name, err)
		}
		p.t.Logf("%s's %s page: %s", p.name, label, path)
	}
}
