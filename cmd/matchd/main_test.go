package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/matchd/matchd/redistest"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(config) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c config) bool { return c.addr == ":8080" && c.devLogin && c.roomTTL == 2*time.Hour }, ""},
		{"env_used_when_flag_absent", nil, map[string]string{"MATCHD_ADDR": ":9000"}, func(c config) bool { return c.addr == ":9000" }, ""},
		{"flag_wins_over_env", []string{"-addr", ":7000"}, map[string]string{"MATCHD_ADDR": ":9000"}, func(c config) bool { return c.addr == ":7000" }, ""},
		{"secret_turns_dev_login_off", nil, map[string]string{"MATCHD_AUTH_SECRET": "s3cret"}, func(c config) bool { return !c.devLogin }, ""},
		{"dev_login_forced_on", []string{"-auth-secret", "s", "-dev-login", "true"}, nil, func(c config) bool { return c.devLogin }, ""},
		{"dev_login_off", nil, map[string]string{"MATCHD_DEV_LOGIN": "false"}, func(c config) bool { return !c.devLogin }, ""},
		{"bad_dev_login", []string{"-dev-login", "maybe"}, nil, nil, "-dev-login"},
		{"bad_env_duration", nil, map[string]string{"MATCHD_ROOM_TTL": "soon"}, nil, "MATCHD_ROOM_TTL"},
		{"short_room_ttl", []string{"-room-ttl", "1s"}, nil, nil, "-room-ttl"},
		{"bad_log_level", []string{"-log-level", "loud"}, nil, nil, "-log-level"},
		{"join_limit_default", nil, nil, func(c config) bool { return c.joinLimit == 10 }, ""},
		{"join_limit_off", nil, map[string]string{"MATCHD_JOIN_LIMIT": "0"}, func(c config) bool { return c.joinLimit == 0 }, ""},
		{"negative_join_limit", []string{"-join-limit", "-1"}, nil, nil, "-join-limit"},
		{"allowed_origins", []string{"-allowed-origins", "app.example.com, *.example.org"}, nil, func(c config) bool {
			return len(c.origins) == 2 && c.origins[0] == "app.example.com" && c.origins[1] == "*.example.org"
		}, ""},
		{"origin_with_scheme", []string{"-allowed-origins", "https://app.example.com"}, nil, nil, "-allowed-origins"},
		{"shutdown_timeout", []string{"-shutdown-timeout", "30s"}, nil, func(c config) bool { return c.shutdown == 30*time.Second }, ""},
		{"bad_shutdown_timeout", []string{"-shutdown-timeout", "0s"}, nil, nil, "-shutdown-timeout"},
		{"admin_token", nil, map[string]string{"MATCHD_ADMIN_TOKEN": "adm"}, func(c config) bool { return c.adminToken == "adm" }, ""},
		{"unknown_flag", []string{"-bogus"}, nil, nil, "bogus"},
		{"stray_argument", []string{"extra"}, nil, nil, "unexpected argument"},
		{"redis_url", nil, map[string]string{"MATCHD_REDIS_URL": "redis://127.0.0.1:6390/2"}, func(c config) bool { return c.redisURL != "" && !c.redisCluster && c.redisChannel == "match_channel" }, ""},
		{"redis_cluster", []string{"-redis-url", "redis://127.0.0.1:7000?addr=127.0.0.1:7001", "-redis-cluster"}, nil, func(c config) bool { return c.redisCluster }, ""},
		{"redis_channel", []string{"-redis-channel", "matches"}, map[string]string{"MATCHD_REDIS_CHANNEL": "x"}, func(c config) bool { return c.redisChannel == "matches" }, ""},
		{"bad_redis_url", []string{"-redis-url", "http://nope"}, nil, nil, "-redis-url"},
		{"redis_url_options", []string{"-redis-url", "redis://127.0.0.1:6390/0?dial_timeout=1s&pool_size=20"}, nil, func(c config) bool { return c.redisURL != "" }, ""},
		{"bad_redis_url_option", []string{"-redis-url", "redis://127.0.0.1:6390/0?dial_timeout=soon"}, nil, nil, "-redis-url"},
		{"cluster_without_url", []string{"-redis-cluster"}, nil, nil, "-redis-cluster needs"},
		{"empty_channel", []string{"-redis-channel", ""}, nil, nil, "-redis-channel"},
		{"auth_options", []string{"-auth-secret", "new", "-auth-secret-previous", "old", "-auth-issuer", "https://idp.example", "-auth-audience", "matchd", "-jwks-url", "https://idp.example/.well-known/jwks.json"}, nil,
			func(c config) bool {
				return c.authSecret == "new" && c.authPrevious == "old" && c.authIssuer == "https://idp.example" && c.authAudience == "matchd" && c.jwksURL == "https://idp.example/.well-known/jwks.json"
			}, ""},
		{"auth_options_from_env", nil, map[string]string{"MATCHD_AUTH_SECRET": "new", "MATCHD_AUTH_SECRET_PREVIOUS": "old", "MATCHD_AUTH_ISSUER": "iss", "MATCHD_AUTH_AUDIENCE": "aud", "MATCHD_JWKS_URL": "http://127.0.0.1:9999/jwks"},
			func(c config) bool {
				return c.authPrevious == "old" && c.authIssuer == "iss" && c.authAudience == "aud" && c.jwksURL == "http://127.0.0.1:9999/jwks"
			}, ""},
		{"jwks_url_turns_dev_login_off", []string{"-jwks-url", "https://idp.example/jwks"}, nil, func(c config) bool { return !c.devLogin }, ""},
		{"jwks_url_dev_login_forced_on", []string{"-jwks-url", "https://idp.example/jwks", "-dev-login", "true"}, nil, func(c config) bool { return c.devLogin }, ""},
		{"previous_secret_without_secret", nil, map[string]string{"MATCHD_AUTH_SECRET_PREVIOUS": "old"}, nil, "-auth-secret-previous needs -auth-secret"},
		{"jwks_url_not_http", []string{"-jwks-url", "file:///etc/jwks.json"}, nil, nil, "-jwks-url"},
		{"jwks_url_no_scheme", nil, map[string]string{"MATCHD_JWKS_URL": "idp.example/jwks"}, nil, "-jwks-url"},
		{"jwks_url_unparsable", []string{"-jwks-url", "https://[::1"}, nil, nil, "-jwks-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ok := parseCase(t, tt.args, tt.env, tt.wantErr)
			if !ok {
				return
			}
			if !tt.check(cfg) {
				t.Errorf("config = %+v", cfg)
			}
		})
	}
}

// parseCase parses args and env as matchd does. With wantErr it checks
// that parsing fails with an error mentioning it and reports false;
// otherwise parsing must succeed, and it returns the config.
func parseCase(t *testing.T, args []string, env map[string]string, wantErr string) (config, bool) {
	t.Helper()
	cfg, err := parseConfig(args, func(k string) string { return env[k] }, io.Discard)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want one mentioning %q", err, wantErr)
		}
		return cfg, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return cfg, true
}

func TestConfigFile(t *testing.T) {
	write := func(t *testing.T, body string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "matchd.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("file_sets_what_flags_and_env_do_not", func(t *testing.T) {
		p := write(t, `{"addr":":9100","join-limit":3,"redis-cluster":false,"room-ttl":"30m","log-level":"debug"}`)
		cfg, err := parseConfig([]string{"-config", p, "-room-ttl", "1h"}, func(k string) string {
			return map[string]string{"MATCHD_JOIN_LIMIT": "7"}[k]
		}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.addr != ":9100" || cfg.joinLimit != 7 || cfg.roomTTL != time.Hour {
			t.Errorf("config = addr %q, join-limit %d, room-ttl %v; want :9100 from the file, 7 from the environment, 1h from the flag", cfg.addr, cfg.joinLimit, cfg.roomTTL)
		}
	})
	for _, tc := range []struct{ name, body, want string }{
		{"unknown_key", `{"adress":":1"}`, "unknown setting"},
		{"bad_value", `{"join-limit":"many"}`, "join-limit"},
		{"not_an_object", `[1,2]`, "not a JSON object"},
		{"nested_value", `{"addr":{"host":"x"}}`, "must be a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]string{"-config", write(t, tc.body)}, func(string) string { return "" }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := parseConfig([]string{"-config", "/nonexistent/matchd.json"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("a missing config file is not an error")
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	var out strings.Builder
	parseConfig([]string{"-h"}, func(string) string { return "" }, &out)
	for _, f := range []string{"-admin-token", "-shutdown-timeout", "-config", "-join-limit", "-allowed-origins", "-addr", "-redis-url", "-redis-cluster", "-redis-channel", "-auth-secret", "-auth-secret-previous", "-auth-issuer", "-auth-audience", "-jwks-url", "-dev-login", "-room-ttl", "-log-level", "MATCHD_"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("-h output lacks %s", f)
		}
	}
}

// startRun runs the real service with args on a free port and returns
// its address and a function that stops it as a signal would.
func startRun(t *testing.T, args ...string) (addr string, stop func()) {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run after cancel: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return addr, stop
}

// TestRun starts the real service on a free port, checks that it serves,
// and stops it as a signal would.
func TestRun(t *testing.T) {
	addr, stop := startRun(t)
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["status"] != "healthy" {
		t.Errorf("healthz = %d %v", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(text), `matchd_queue_size{pool="default"} 0`) || !strings.Contains(string(text), "go_goroutines") {
		t.Errorf("metrics lack matchd_queue_size or the Go collector")
	}
	stop()
}

// TestRunAuthIssuerAudience: with -auth-issuer and -auth-audience set, the
// dev login's tokens carry both, so its players can still connect.
func TestRunAuthIssuerAudience(t *testing.T) {
	addr, _ := startRun(t, "-auth-secret", "s3cret", "-auth-issuer", "https://matchd.example", "-auth-audience", "matchd", "-dev-login", "true")
	dialAs(t, addr, "alice")
}

// TestRunRedis runs two instances of the real service on one real Redis
// and matches a player on each with the other.
func TestRunRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	args := []string{"-redis-url", srv.URL(), "-auth-secret", "shared", "-dev-login", "true"}
	a, _ := startRun(t, args...)
	b, _ := startRun(t, args...)
	alice, bob := dialAs(t, a, "alice"), dialAs(t, b, "bob")
	write := func(ws *websocket.Conn, msg string) {
		if err := ws.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	next := func(ws *websocket.Conn) map[string]any {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(data, &m)
		return m
	}
	write(alice, `{"type":"join_queue"}`)
	if m := next(alice); m["type"] != "queued" {
		t.Fatalf("alice got %v", m)
	}
	write(bob, `{"type":"join_queue"}`)
	next(bob) // queued
	mb, ma := next(bob), next(alice)
	if mb["type"] != "match_found" || ma["type"] != "match_found" || ma["match_id"] != mb["match_id"] {
		t.Fatalf("alice got %v, bob got %v: want one match across the two instances", ma, mb)
	}
	if n, _ := srv.Client(t).Exists(t.Context(), "matchd:{default}:room:"+ma["match_id"].(string)).Result(); n != 1 {
		t.Error("the room is not in Redis")
	}
	resp, err := http.Get("http://" + b + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`matchd_redis_command_duration_seconds_count{command="join.lua"}`,
		`matchd_redis_command_duration_seconds_count{command="match.lua"}`,
		`matchd_active_rooms{pool="default"} 1`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics of the Redis instance lack %s", want)
		}
	}
}

// dialAs logs user in on the instance at addr and opens a socket.
func dialAs(t *testing.T, addr, user string) *websocket.Conn {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/api/dev/login", "application/json", strings.NewReader(`{"user_id":"`+user+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	ws, _, err := websocket.Dial(t.Context(), "ws://"+addr+"/ws?token="+body["token"], nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// TestMetricsPassPromtool checks the exposed metrics against Prometheus's
// naming conventions with promtool (Debian package prometheus).
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (apt-get install prometheus); CI must run this check")
		}
		t.Skip("promtool not installed")
	}
	srv := redistest.Start(t, redistest.Options{})
	addr, _ := startRun(t, "-redis-url", srv.URL(), "-admin-token", "x")
	// Some traffic, so that the labelled series exist.
	alice, bob := dialAs(t, addr, "alice"), dialAs(t, addr, "bob")
	for _, ws := range []*websocket.Conn{alice, bob} {
		if err := ws.Write(t.Context(), websocket.MessageText, []byte(`{"type":"join_queue"}`)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = resp.Body
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestPolicyFlag(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"must_equal":["difficulty"],"rating":{"tolerance":50,"widen_by":25,"every":"10s","max":200}}`)
	cfg, err := parseConfig([]string{"-policy", good}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.policy.Rating.Start != 50 || len(cfg.policy.MustEqual) != 1 || cfg.policy.NoRematch != 0 {
		t.Errorf("policy = %+v, want the file's", cfg.policy)
	}
	cfg, err = parseConfig(nil, func(k string) string { return map[string]string{"MATCHD_POLICY": good}[k] }, io.Discard)
	if err != nil || cfg.policy.Rating.Start != 50 {
		t.Errorf("MATCHD_POLICY: policy %+v, err %v; want the file's", cfg.policy, err)
	}
	if cfg, err := parseConfig(nil, func(string) string { return "" }, io.Discard); err != nil || cfg.policy.Rating.Start != 100 || cfg.policy.NoRematch != 24*time.Hour {
		t.Errorf("no -policy: policy %+v, err %v; want the default", cfg.policy, err)
	}
	for name, args := range map[string][]string{
		"missing_file":    {"-policy", filepath.Join(dir, "nope.json")},
		"unknown_field":   {"-policy", write("typo.json", `{"must_equals":["difficulty"]}`)},
		"bad_rating":      {"-policy", write("rating.json", `{"rating":{"tolerance":100}}`)},
		"not_json_at_all": {"-policy", write("yaml.json", "must_equal: [difficulty]")},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseConfig(args, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "-policy") {
				t.Errorf("error = %v, want one naming -policy", err)
			}
		})
	}
}
