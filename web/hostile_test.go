package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/matchdtest"
	"github.com/matchd/matchd/memory"
	"github.com/matchd/matchd/web"
)

// Every bad frame is answered with an error and changes nothing; the
// socket stays usable and other players are unaffected.
func TestBadFrames(t *testing.T) {
	h := start(t, withoutMessageLimit)
	mallory, alice := h.player("mallory"), h.player("alice")
	alice.join()
	alice.expect("queued")

	tests := []struct {
		name string
		data string
		code string
	}{
		{"broken_json", `{"type":"join_queue"`, "invalid_message"},
		{"array", `[{"type":"join_queue"}]`, "invalid_message"},
		{"number", `42`, "invalid_message"},
		{"string", `"join_queue"`, "invalid_message"},
		{"null", `null`, "invalid_message"},
		{"no_type", `{"user_id":"mallory"}`, "invalid_message"},
		{"type_not_string", `{"type":7}`, "invalid_message"},
		{"unknown_type", `{"type":"steal_match"}`, "invalid_message"},
		{"unknown_field", `{"type":"join_queue","rating":3000}`, "invalid_message"},
		{"user_id_not_string", `{"type":"join_queue","user_id":5}`, "invalid_message"},
		{"trailing_data", `{"type":"ping"}{"type":"ping"}`, "invalid_message"},
		{"spoofed_user_id_join", `{"type":"join_queue","user_id":"alice"}`, "forbidden"},
		{"spoofed_user_id_leave", `{"type":"leave_queue","user_id":"alice"}`, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mallory.sendRaw(websocket.MessageText, []byte(tt.data))
			e := mallory.expect("error")
			if e["code"] != tt.code || e["message"] == "" {
				t.Errorf("error = %v, want code %q with a message", e, tt.code)
			}
			mallory.quiet()
		})
	}
	t.Run("binary_frame", func(t *testing.T) {
		mallory.sendRaw(websocket.MessageBinary, []byte(`{"type":"join_queue"}`))
		if e := mallory.expect("error"); e["code"] != "invalid_message" {
			t.Errorf("error = %v, want invalid_message", e)
		}
		mallory.quiet()
	})
	// None of it queued mallory or touched alice's ticket.
	if n := h.queueSize(); n != 1 {
		t.Errorf("queue size = %d, want 1 (alice alone)", n)
	}
	alice.quiet()
	// A user_id equal to the token's user is accepted.
	mallory.send(map[string]string{"type": "join_queue", "user_id": "mallory"})
	mallory.expect("queued")
	mallory.expect("match_found")
}

func TestOversizedFrameClosesSocket(t *testing.T) {
	h := start(t)
	big := h.player("big")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	payload := `{"type":"ping","x":"` + strings.Repeat("a", 1<<20) + `"}`
	big.ws.Write(ctx, websocket.MessageText, []byte(payload)) // may fail once the server closes
	_, _, err := big.ws.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
		t.Errorf("close status = %v (%v), want 1009", got, err)
	}
	// The server is fine and serves others.
	other := h.player("other")
	other.quiet()
}

func TestWebSocketNeedsToken(t *testing.T) {
	h := start(t)
	for _, tc := range []struct{ name, query string }{
		{"none", ""},
		{"garbage", "?token=xyz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/ws"+tc.query, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("dial without a valid token: err %v, response %v; want 401 before the upgrade", err, resp)
			}
		})
	}
	// A cookie is accepted too.
	token := h.login("carol")
	hdr := http.Header{}
	hdr.Set("Cookie", "matchd_session="+token)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial with the session cookie: %v", err)
	}
	ws.CloseNow()
}

func TestCrossOriginSocketRefused(t *testing.T) {
	h := start(t)
	hdr := http.Header{}
	hdr.Set("Origin", "https://evil.example")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/ws?token="+h.login("alice"), &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin dial: err %v, response %v; want 403", err, resp)
	}
}

func TestDevLogin(t *testing.T) {
	h := start(t)
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"valid", `{"user_id":"alice"}`, 200},
		{"with_rating_and_priority", `{"user_id":"alice","rating":1800,"priority":2}`, 200},
		{"empty_user", `{"user_id":""}`, 400},
		{"bad_user", `{"user_id":"a b"}`, 400},
		{"long_user", `{"user_id":"` + strings.Repeat("a", 65) + `"}`, 400},
		{"missing_user", `{}`, 400},
		{"user_not_string", `{"user_id":1}`, 400},
		{"unknown_field", `{"user_id":"alice","admin":true}`, 400},
		{"fractional_priority", `{"user_id":"alice","priority":1.5}`, 400},
		{"negative_rating", `{"user_id":"alice","rating":-1}`, 400},
		{"not_json", `user_id=alice`, 400},
		{"array", `[]`, 400},
		{"too_large", `{"user_id":"alice","x":"` + strings.Repeat("a", 8<<10) + `"}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(h.url+"/api/dev/login", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != 200 {
				if !bytes.Contains(body, []byte(`"code":"invalid_message"`)) {
					t.Errorf("body = %s, want an invalid_message error", body)
				}
				return
			}
			var cookie *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == "matchd_session" {
					cookie = c
				}
			}
			if cookie == nil || !cookie.HttpOnly || cookie.Value == "" {
				t.Errorf("cookie = %+v, want an HttpOnly matchd_session", cookie)
			}
		})
	}
}

func TestDevLoginOff(t *testing.T) {
	h := start(t, withoutDevLogin)
	status, body := h.do("POST", "/api/dev/login", "", map[string]string{"user_id": "alice"})
	if status != http.StatusNotFound || body["error"] == nil {
		t.Errorf("dev login when off: %d %v, want 404 with an error", status, body)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	h := start(t)
	alice := h.player("alice")
	alice.join()
	alice.expect("queued")
	status, body := h.do("GET", "/healthz", "", nil)
	if status != 200 || body["status"] != "healthy" || body["queue_size"] != 1.0 {
		t.Errorf("healthz = %d %v, want healthy with queue_size 1", status, body)
	}
	bob := h.player("bob")
	bob.join()
	bob.matched()
	alice.matched()

	// A frame is counted once written, which may be just after its reader
	// has it: poll until both match_found frames are counted.
	var text []byte
	matchdtest.Eventually(t, 5*time.Second, func() bool {
		resp, err := http.Get(h.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		text, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return bytes.Contains(text, []byte(`matchd_websocket_messages_sent_total{type="match_found"} 2`+"\n"))
	}, "both match_found frames never counted")
	for _, want := range []string{
		`matchd_queue_size{pool="default"} 0`,
		`matchd_active_rooms{pool="default"} 1`,
		`matchd_websocket_messages_sent_total{type="match_found"} 2`,
		`matchd_rate_limited_total{limit="join"} 0`,
		"matchd_joins_total 2",
		"matchd_matches_total 1",
		"matchd_time_to_match_seconds_count 2",
		"matchd_room_creation_failures_total 0",
		"matchd_websocket_connections 2",
		`matchd_websocket_messages_received_total{type="join_queue"} 2`,
	} {
		if !bytes.Contains(text, []byte(want+"\n")) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if bytes.Contains(text, []byte("alice")) {
		t.Error("a player id appears in the metrics")
	}

	h.backend.Close()
	status, body = h.do("GET", "/healthz", "", nil)
	if status != http.StatusServiceUnavailable || body["status"] != "unhealthy" || body["error"] == "" {
		t.Errorf("healthz with the backend closed = %d %v, want 503 unhealthy", status, body)
	}
	if status, body := h.do("GET", "/readyz", "", nil); status != http.StatusServiceUnavailable {
		t.Errorf("readyz with the backend closed = %d %v, want 503", status, body)
	}
	if status, body := h.do("GET", "/livez", "", nil); status != http.StatusOK || body["status"] != "alive" {
		t.Errorf("livez with the backend closed = %d %v, want 200 alive: liveness must not depend on the backend", status, body)
	}
}

// A socket that floods is answered rate_limited and, when it keeps going,
// closed with 1008; other players are unaffected.
func TestMessageFlood(t *testing.T) {
	h := start(t)
	flood, calm := h.player("flood"), h.player("calm")
	limited := 0
	// 100 frames at once: the burst (20) passes, the rest are over the
	// rate, and after 20 strikes the server closes the socket.
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := flood.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`))
		cancel()
		if err != nil {
			break // already closed by the server
		}
	}
	// Read what the server sent before closing: pongs, then rate_limited
	// errors with a retry hint, then the close.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, data, err := flood.ws.Read(ctx)
		cancel()
		if err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
				t.Errorf("close status = %v (%v), want 1008", got, err)
			}
			break
		}
		if bytes.Contains(data, []byte(`"code":"rate_limited"`)) {
			limited++
			if !bytes.Contains(data, []byte(`"retry_after_seconds":1`)) {
				t.Errorf("rate_limited without retry_after_seconds: %s", data)
			}
		}
	}
	if limited == 0 {
		t.Error("no rate_limited error before the close")
	}
	calm.quiet()
	calm.join()
	calm.expect("queued")
}

// At most five sockets per player; the sixth is refused before the upgrade.
func TestSixthSocketRefused(t *testing.T) {
	h := start(t)
	token := h.login("alice")
	var socks []*client
	for range 5 {
		socks = append(socks, h.dial(token))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/ws?token="+token, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("sixth socket: err %v, response %v; want 429", err, resp)
	}
	// Another player is not affected, and a slot frees when one closes.
	h.player("bob").quiet()
	socks[0].ws.Close(websocket.StatusNormalClosure, "")
	matchdtest.Eventually(t, 5*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/ws?token="+token, nil)
		if err == nil {
			ws.CloseNow()
		}
		return err == nil
	}, "no socket slot freed after one closed")
}

// The original design's join limit: 10 a minute. Of 15 joins in a few
// seconds the last five, from either socket, are refused with
// retry_after_seconds.
func TestJoinRateLimit(t *testing.T) {
	h := start(t, withJoinLimit(matchd.Window{Max: 10, Per: time.Minute}))
	token := h.login("alice")
	first := h.dial(token)
	for i := range 10 {
		first.join()
		if m := first.read(); m["type"] != "queued" {
			t.Fatalf("join %d: %v, want queued", i+1, m)
		}
	}
	check := func(c *client) {
		t.Helper()
		c.join()
		e := c.expect("error")
		if e["code"] != "rate_limited" {
			t.Fatalf("11th join: %v, want rate_limited", e)
		}
		if s, _ := e["retry_after_seconds"].(float64); s < 1 || s > 60 {
			t.Errorf("retry_after_seconds = %v, want 1 to 60", e["retry_after_seconds"])
		}
	}
	// Joins 11 to 15: three more on the first socket, two from a new one
	// (a new socket does not reset the limit).
	for range 3 {
		check(first)
	}
	second := h.dial(token)
	for range 2 {
		check(second)
	}
	// The refused joins changed nothing: alice still holds her one ticket,
	// and others can join.
	if n := h.queueSize(); n != 1 {
		t.Errorf("queue size = %d, want 1", n)
	}
	bob := h.player("bob")
	bob.join()
	bob.matched()
}

// panickingBackend is a Matchmaker whose QueueSize panics, to prove that a
// panic becomes a plain 500 with no internals in the response.
type panickingBackend struct{ *memory.Backend }

func (panickingBackend) QueueSize(context.Context) (int, error) {
	panic("secret internal detail at /src/matchd/backend.go:42")
}

func TestPanicIsAPlain500(t *testing.T) {
	h := start(t, func(c *web.Config) { c.Matchmaker = panickingBackend{c.Matchmaker.(*memory.Backend)} })
	resp, err := http.Get(h.url + "/api/matchmaking/queue-status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !bytes.Contains(body, []byte(`"code":"internal"`)) {
		t.Errorf("got %d %s, want 500 with code internal", resp.StatusCode, body)
	}
	if bytes.Contains(body, []byte("secret")) || bytes.Contains(body, []byte(".go")) || bytes.Contains(body, []byte("goroutine")) {
		t.Errorf("response leaks internals: %s", body)
	}
	// The server is still up.
	h.player("alice").quiet()
}

func TestUnknownPathsAnswerJSON(t *testing.T) {
	h := start(t)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope"}, {"POST", "/healthz"}, {"DELETE", "/api/matches/x"}, {"GET", "/api/"},
	} {
		status, body := h.do(tc.method, tc.path, "", nil)
		e, _ := body["error"].(map[string]any)
		if status != http.StatusNotFound || e == nil || e["code"] != "not_found" {
			t.Errorf("%s %s: %d %v, want 404 with a not_found error", tc.method, tc.path, status, body)
		}
	}
}

// Every kind of bad token is refused, on the socket upgrade and on the
// REST API, with the same 401 and no hint of which check failed; the
// server stays healthy and other players are unaffected.
func TestHostileTokens(t *testing.T) {
	h := start(t)
	bystander := h.player("bystander")
	bystander.join()
	bystander.expect("queued")
	now := time.Now()
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ok := jwt.MapClaims{"sub": "mallory", "exp": now.Add(time.Hour).Unix()}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tokens := map[string]string{
		"forged_signature": sign(jwt.SigningMethodHS256, []byte("not-the-secret"), ok),
		"expired":          sign(jwt.SigningMethodHS256, []byte("harness-secret"), jwt.MapClaims{"sub": "mallory", "exp": now.Add(-time.Hour).Unix()}),
		"alg_none":         sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, ok),
		"wrong_algorithm":  sign(jwt.SigningMethodRS256, rsaKey, ok),
		"oversized":        sign(jwt.SigningMethodHS256, []byte("harness-secret"), jwt.MapClaims{"sub": "mallory", "exp": now.Add(time.Hour).Unix(), "pad": strings.Repeat("x", 8<<10)}),
	}
	for name, token := range tokens {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+"/ws?token="+token, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("socket: err %v, response %v; want 401", err, resp)
			}
			status, body := h.do("GET", "/api/matches/AAAAAAAAAAAAAAAAAAAAAA", token, nil)
			e, _ := body["error"].(map[string]any)
			if status != http.StatusUnauthorized || e == nil || e["message"] != "missing or invalid session token" {
				t.Errorf("REST: %d %v; want 401 saying only that the token is invalid", status, body)
			}
		})
	}
	if status, body := h.do("GET", "/healthz", "", nil); status != http.StatusOK {
		t.Errorf("healthz after hostile tokens: %d %v", status, body)
	}
	bystander.quiet()
	other := h.player("other")
	other.join()
	if m := other.matched(); m["partner_id"] != "bystander" {
		t.Errorf("other matched with %v, want bystander", m["partner_id"])
	}
}

func TestAdminAPI(t *testing.T) {
	h := start(t, func(c *web.Config) { c.AdminToken = "admin-secret" })
	alice := h.player("alice")
	alice.join()
	alice.expect("queued")

	// Without the token, or with a player's token: 401, nothing leaks.
	for _, token := range []string{"", "wrong", h.login("mallory")} {
		if status, _ := h.do("GET", "/api/admin/pools/default/tickets", token, nil); status != http.StatusUnauthorized {
			t.Errorf("tickets with token %.8q: %d, want 401", token, status)
		}
	}
	status, body := h.do("GET", "/api/admin/pools/default/tickets?limit=10", "admin-secret", nil)
	tickets, _ := body["tickets"].([]any)
	if status != 200 || body["queue_size"] != 1.0 || len(tickets) != 1 || tickets[0].(map[string]any)["player_id"] != "alice" {
		t.Fatalf("tickets: %d %v, want alice's ticket", status, body)
	}
	if status, _ := h.do("GET", "/api/admin/pools/elsewhere/tickets", "admin-secret", nil); status != 404 {
		t.Errorf("unknown pool: %d, want 404", status)
	}
	if status, _ := h.do("GET", "/api/admin/pools/default/tickets?limit=0", "admin-secret", nil); status != 400 {
		t.Errorf("limit=0: %d, want 400", status)
	}

	// Removing the ticket takes alice out of the queue.
	status, body = h.do("DELETE", "/api/admin/tickets/alice", "admin-secret", nil)
	if status != 200 || body["removed"] != true {
		t.Fatalf("remove: %d %v", status, body)
	}
	if n := h.queueSize(); n != 0 {
		t.Errorf("queue size after removal = %d", n)
	}

	// Any room can be viewed with the admin token.
	bob, carol := h.player("bob"), h.player("carol")
	bob.join()
	carol.join()
	id := carol.matched()["match_id"].(string)
	status, body = h.do("GET", "/api/admin/matches/"+id, "admin-secret", nil)
	if status != 200 || body["match_id"] != id {
		t.Errorf("room: %d %v", status, body)
	}
}

func TestAdminAPIOff(t *testing.T) {
	h := start(t)
	if status, body := h.do("GET", "/api/admin/pools/default/tickets", "anything", nil); status != 404 {
		t.Errorf("admin API without a token configured: %d %v, want 404", status, body)
	}
}
