package main

import (
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string // substring; "" = valid
		check   func(t *testing.T, c config)
	}{
		{name: "players mode with defaults", args: []string{"-players", "10"}, check: func(t *testing.T, c config) {
			if diff := cmp.Diff([]string{"http://127.0.0.1:8080"}, c.urls); diff != "" {
				t.Errorf("urls (-want +got):\n%s", diff)
			}
			if c.total() != 10 || c.arrival(9) != 0 || c.timeout != time.Minute || c.prefs != nil {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "urls repeated and comma-separated, trailing slash dropped", args: []string{"-players", "1", "-url", "http://a:1/,http://b:2", "-url", "https://c"}, check: func(t *testing.T, c config) {
			if diff := cmp.Diff([]string{"http://a:1", "http://b:2", "https://c"}, c.urls); diff != "" {
				t.Errorf("urls (-want +got):\n%s", diff)
			}
		}},
		{name: "rate mode schedule", args: []string{"-rate", "200", "-duration", "10s"}, check: func(t *testing.T, c config) {
			if c.total() != 2000 || c.arrival(1) != 5*time.Millisecond || c.arrival(1999) != 9995*time.Millisecond || c.limit() != 15*time.Second {
				t.Errorf("total %d, arrival(1) %v, arrival(1999) %v, limit %v", c.total(), c.arrival(1), c.arrival(1999), c.limit())
			}
		}},
		{name: "ramp spreads the players", args: []string{"-players", "100", "-ramp", "10s"}, check: func(t *testing.T, c config) {
			if c.arrival(50) != 5*time.Second {
				t.Errorf("arrival(50) = %v, want 5s", c.arrival(50))
			}
		}},
		{name: "players with a hard cap", args: []string{"-players", "5", "-duration", "3s"}, check: func(t *testing.T, c config) {
			if c.limit() != 3*time.Second {
				t.Errorf("limit %v, want 3s", c.limit())
			}
		}},
		{name: "prefs parsed", args: []string{"-players", "1", "-prefs", "difficulty=easy:0.3,medium:0.5,hard:0.2;topics=algorithms:0.5,system_design:0.5"}, check: func(t *testing.T, c config) {
			if c.prefs == nil || len(c.prefs.fields) != 2 {
				t.Errorf("prefs %+v", c.prefs)
			}
		}},
		{name: "neither mode", args: nil, wantErr: "give -players"},
		{name: "both modes", args: []string{"-players", "1", "-rate", "5", "-duration", "1s"}, wantErr: "not both"},
		{name: "rate without duration", args: []string{"-rate", "5"}, wantErr: "-duration"},
		{name: "shares over 1", args: []string{"-players", "1", "-leave-share", "0.7", "-drop-share", "0.5"}, wantErr: "share"},
		{name: "negative share", args: []string{"-players", "1", "-drop-share", "-0.1"}, wantErr: "share"},
		{name: "preconnect beyond the run", args: []string{"-players", "3", "-preconnect", "4"}, wantErr: "preconnect"},
		{name: "chart extension", args: []string{"-players", "1", "-chart", "out.jpg"}, wantErr: ".svg or .png"},
		{name: "url with a path", args: []string{"-players", "1", "-url", "http://a/ws"}, wantErr: "base URL"},
		{name: "url not http", args: []string{"-players", "1", "-url", "ws://a"}, wantErr: "base URL"},
		{name: "id prefix too long", args: []string{"-players", "1", "-id-prefix", strings.Repeat("x", 60)}, wantErr: "id-prefix"},
		{name: "id prefix with bad characters", args: []string{"-players", "1", "-id-prefix", "a b"}, wantErr: "id-prefix"},
		{name: "too many players", args: []string{"-rate", "100000", "-duration", "1h"}, wantErr: "at most"},
		{name: "bad prefs", args: []string{"-players", "1", "-prefs", "colour=red"}, wantErr: "unknown preference field"},
		{name: "positional argument", args: []string{"-players", "1", "extra"}, wantErr: "unexpected argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
	if _, err := parseConfig([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v, want flag.ErrHelp", err)
	}
}

func TestPrefs(t *testing.T) {
	m, err := parsePrefs("difficulty=easy:1,hard:3;topics=algorithms;duration=30:1,any:1")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	for range 4000 {
		p := m.draw(rng)
		counts["difficulty="+p["difficulty"].(string)]++
		if diff := cmp.Diff([]string{"algorithms"}, p["topics"]); diff != "" {
			t.Fatalf("topics (-want +got):\n%s", diff)
		}
		if d, ok := p["duration"]; ok {
			if d != 30 {
				t.Fatalf("duration %v, want the number 30", d)
			}
			counts["duration"]++
		}
	}
	// Weights 1:3 and 1:1, within a generous margin.
	if e := counts["difficulty=easy"]; e < 800 || e > 1200 {
		t.Errorf("easy drawn %d times of 4000, want about 1000", e)
	}
	if d := counts["duration"]; d < 1700 || d > 2300 {
		t.Errorf("duration present %d times of 4000, want about 2000", d)
	}
	for _, bad := range []string{"", "difficulty", "difficulty=", "difficulty=easy:-1", "difficulty=easy:0", "duration=long", "difficulty=easy;difficulty=hard", "difficulty=easy:x"} {
		if _, err := parsePrefs(bad); err == nil {
			t.Errorf("parsePrefs(%q) accepted", bad)
		}
	}
}
