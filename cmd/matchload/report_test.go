package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tt := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one sample", ms(7), 50, 7 * time.Millisecond},
		{"median of four is the second (nearest rank)", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p90 of 1..100", ms(hundred...), 90, 90 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummariseRoundsToMicroseconds(t *testing.T) {
	l := summarise([]time.Duration{1234567 * time.Nanosecond, 2 * time.Millisecond, 500 * time.Microsecond})
	if l.Count != 3 || l.P50 != 1.235 || l.Max != 2 || l.Mean != 1.245 {
		t.Errorf("summary = %+v, want count 3, p50 1.235, max 2, mean 1.245", l)
	}
}

func TestTextReportListsViolations(t *testing.T) {
	r := Report{Mode: "players", PlannedPlayers: 2, ViolationCount: 1, Violations: []Violation{{Kind: kindMatchedTwice, Player: "a", MatchID: "M2", Detail: "in match M1 and in match M2"}}, Errors: map[string]int{"rate_limited": 3}}
	var b bytes.Buffer
	r.writeText(&b)
	for _, want := range []string{"1 VIOLATIONS", "matched_twice: player a, match M2", "rate_limited 3"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
}
