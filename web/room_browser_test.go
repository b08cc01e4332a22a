package web_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/memory"
)

// A whole session in two real browsers: matched from the lobby, both
// ready, a chat message each way, the timer's warnings and end on a fake
// clock, then feedback from both.
func TestBrowserSession(t *testing.T) {
	chrome := chromiumPath(t)
	clock := matchdtest.NewClock()
	store := memory.NewSessions(0)
	t.Cleanup(func() { store.Close() })
	h := start(t, withLifecycle(lifecycleOpts{clock: clock, readyTimeout: 30 * time.Second, store: store}))

	ctx, cancel := context.WithTimeout(context.Background(), 2*browserTimeout)
	t.Cleanup(cancel)
	alice := newBrowserPage(t, ctx, chrome, "alice")
	bob := newBrowserPage(t, ctx, chrome, "bob")
	startBrowsers(t, alice, bob)

	alice.join(h.url)
	alice.waitState("waiting")
	alice.poll(`document.getElementById('queue-size').textContent === '1'`)
	bob.join(h.url)
	both := func(f func(p *browserPage) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, p := range []*browserPage{alice, bob} {
			wg.Go(func() { errs[i] = f(p) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	both(func(p *browserPage) error { return p.tryWaitState("loaded") })
	alice.poll(`document.body.dataset.session === 'waiting' && !document.getElementById('ready').hidden`)
	// Whichever page opened first learns of the other.
	alice.poll(`document.getElementById('presence').textContent === 'Partner online'`)
	bob.poll(`document.getElementById('presence').textContent === 'Partner online'`)
	bob.poll(`document.body.dataset.session === 'waiting' && !document.getElementById('ready').hidden`)
	alice.screenshot("ready-check")

	alice.run("saying ready", chromedp.Click(chromedp.CSS("#ready")))
	alice.poll(`document.getElementById('session-status').textContent.includes('Waiting for your partner')`)
	bob.poll(`document.getElementById('session-status').textContent.includes('Your partner is ready')`)
	bob.run("saying ready", chromedp.Click(chromedp.CSS("#ready")))
	for _, p := range []*browserPage{alice, bob} {
		p.poll(`document.body.dataset.session === 'active' && !document.getElementById('countdown-line').hidden`)
	}

	alice.run("chatting",
		chromedp.SendKeys(chromedp.CSS("#chat-text"), "Shall I start?"),
		chromedp.Click(chromedp.CSS("#chat-send")),
	)
	bob.poll(`[...document.querySelectorAll('#chat-log li')].some(li => li.textContent.includes('Shall I start?'))`)
	bob.run("chatting",
		chromedp.SendKeys(chromedp.CSS("#chat-text"), "<b>Go</b> ahead"),
		chromedp.Click(chromedp.CSS("#chat-send")),
	)
	alice.poll(`[...document.querySelectorAll('#chat-log li')].some(li => li.textContent.includes('<b>Go</b> ahead'))`)
	if n := alice.eval(`String(document.querySelectorAll('#chat-log b').length)`); n != "0" {
		t.Errorf("chat text became markup: %s <b> elements", n)
	}
	alice.screenshot("active")

	id := alice.eval(`document.getElementById('match-id').textContent`)
	room, err := h.backend.Room(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Duration(room.DurationMinutes)*time.Minute - 5*time.Minute)
	for _, p := range []*browserPage{alice, bob} {
		p.poll(`document.getElementById('notice').textContent.includes('5 minutes left')`)
	}
	clock.Advance(5 * time.Minute)
	for _, p := range []*browserPage{alice, bob} {
		p.poll(`document.body.dataset.session === 'completed' && !document.getElementById('feedback').hidden`)
	}

	for i, p := range []*browserPage{alice, bob} {
		stars := []string{"5", "4"}[i]
		p.run("giving feedback",
			chromedp.Click(chromedp.CSS(`#feedback input[name="rating"][value="`+stars+`"]`)),
			chromedp.SendKeys(chromedp.CSS("#notes"), "Thanks!"),
			chromedp.Click(chromedp.CSS("#feedback-submit")),
		)
		p.poll(`document.body.dataset.feedback === 'sent'`)
	}
	alice.screenshot("feedback")
	fbs, err := store.Feedback(ctx, id)
	if err != nil || len(fbs) != 2 {
		t.Fatalf("stored feedback = %+v, %v; want one from each player", fbs, err)
	}
	for _, fb := range fbs {
		want := map[string]int{"alice": 5, "bob": 4}[fb.From]
		if fb.Stars != want || fb.Notes != "Thanks!" {
			t.Errorf("feedback from %s = %+v, want %d stars with notes", fb.From, fb, want)
		}
	}
	alice.checkConsole()
	bob.checkConsole()
}
