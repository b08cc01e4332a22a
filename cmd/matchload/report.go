package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is the result of a run, printed as text or, with -json, as JSON.
// Times are milliseconds rounded to the microsecond.
type Report struct {
	URLs           []string `json:"urls"`
	Mode           string   `json:"mode"` // "players" or "rate"
	Rate           float64  `json:"rate,omitempty"`
	DurationS      float64  `json:"duration_s,omitempty"`
	Seed           uint64   `json:"seed"`
	TokenSource    string   `json:"token_source"` // "dev-login" or "minted"
	PlannedPlayers int      `json:"planned_players"`
	Players        Outcomes `json:"players"`
	// Matches counts distinct match ids seen by the run's players.
	Matches int `json:"matches"`
	// OutsidePartners counts matches whose partner was not one of this
	// run's players (someone else was using the server).
	OutsidePartners int     `json:"outside_partners"`
	TimeToMatch     Latency `json:"time_to_match_ms"`
	// Notification is, per match between two of this run's players, the
	// time from the later of the two join_queue frames sent to the later
	// of the two match_found frames received: what the server takes once
	// the pair exists. TimeToMatch also counts the first player's wait
	// for a partner to arrive; this does not. Count is pairs.
	Notification Latency `json:"notification_ms"`
	// Throughput is Matches over the measured window: from the first
	// join_queue sent to the last match_found received.
	Throughput    float64           `json:"throughput_matches_per_s"`
	WindowS       float64           `json:"window_s"`
	Errors        map[string]int    `json:"errors"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`
	Connections   Connections       `json:"connections"`
	Queue         QueueSummary      `json:"queue"`
	// ViolationCount counts every violation; Violations lists the first
	// ones with details.
	ViolationCount int         `json:"violation_count"`
	Violations     []Violation `json:"violations"`
	ElapsedS       float64     `json:"elapsed_s"`
	// Interrupted: stopped by a signal. Capped: stopped by the hard cap
	// with players still unfinished.
	Interrupted bool `json:"interrupted"`
	Capped      bool `json:"capped"`
	// Idle is the result of idle mode (-idle); nil otherwise.
	Idle *IdleSummary `json:"idle,omitempty"`
}

// Outcomes counts players by how their run ended.
type Outcomes struct {
	Started    int `json:"started"`
	Joined     int `json:"joined"`
	Matched    int `json:"matched"`
	Left       int `json:"left"`
	Dropped    int `json:"dropped"`
	TimedOut   int `json:"timed_out"`
	Failed     int `json:"failed"`
	Unfinished int `json:"unfinished"`
}

// Latency summarises time-to-match samples, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// Connections counts WebSocket connections.
type Connections struct {
	Opened     int `json:"opened"`
	Failed     int `json:"failed"`
	Peak       int `json:"peak_concurrent"`
	Reconnects int `json:"reconnects"`
}

// QueueSummary summarises the sampled queue size of the first URL.
type QueueSummary struct {
	Samples int `json:"samples"`
	Max     int `json:"max"`
	Failed  int `json:"failed_samples"`
}

// percentile returns the exact p-th percentile (nearest rank) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// ms converts d to milliseconds rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// summarise returns the latency summary of samples, which it sorts.
func summarise(samples []time.Duration) Latency {
	slices.Sort(samples)
	l := Latency{Count: len(samples)}
	if len(samples) == 0 {
		return l
	}
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	l.P50 = ms(percentile(samples, 50))
	l.P90 = ms(percentile(samples, 90))
	l.P99 = ms(percentile(samples, 99))
	l.Max = ms(samples[len(samples)-1])
	l.Mean = ms(sum / time.Duration(len(samples)))
	return l
}

// writeJSON writes r as indented JSON.
func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText writes r for people.
func (r *Report) writeText(w io.Writer) error {
	var b strings.Builder
	if r.Idle != nil {
		return r.writeIdleText(w)
	}
	shape := fmt.Sprintf("%d players", r.PlannedPlayers)
	if r.Mode == "rate" {
		shape = fmt.Sprintf("%g arrivals/s for %gs (%d players)", r.Rate, r.DurationS, r.PlannedPlayers)
	}
	tokens := "tokens from dev login"
	if r.TokenSource == "minted" {
		tokens = "tokens minted with -secret"
	}
	fmt.Fprintf(&b, "matchload: %s against %s, %s, seed %d\n", shape, strings.Join(r.URLs, ", "), tokens, r.Seed)
	switch {
	case r.Interrupted:
		fmt.Fprintf(&b, "interrupted after %.1fs: figures so far\n", r.ElapsedS)
	case r.Capped:
		fmt.Fprintf(&b, "stopped by the hard cap after %.1fs; unfinished (still waiting or connecting): %d\n", r.ElapsedS, r.Players.Unfinished)
	}
	p := r.Players
	fmt.Fprintf(&b, "players:      started %d, joined %d, matched %d, left %d, dropped %d, timed out %d, failed %d, unfinished %d\n",
		p.Started, p.Joined, p.Matched, p.Left, p.Dropped, p.TimedOut, p.Failed, p.Unfinished)
	l := r.TimeToMatch
	fmt.Fprintf(&b, "time-to-match (%d samples): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms\n", l.Count, l.P50, l.P90, l.P99, l.Max, l.Mean)
	n := r.Notification
	fmt.Fprintf(&b, "notification (%d pairs, later join_queue to later match_found): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms\n", n.Count, n.P50, n.P90, n.P99, n.Max, n.Mean)
	fmt.Fprintf(&b, "throughput:   %d matches in %.3fs = %.1f matches/s", r.Matches, r.WindowS, r.Throughput)
	if r.OutsidePartners > 0 {
		fmt.Fprintf(&b, " (%d with partners from outside this run)", r.OutsidePartners)
	}
	b.WriteString("\n")
	c := r.Connections
	fmt.Fprintf(&b, "connections:  opened %d, failed %d, peak concurrent %d, reconnects %d\n", c.Opened, c.Failed, c.Peak, c.Reconnects)
	fmt.Fprintf(&b, "queue:        max %d waiting (%d samples of the first URL, %d failed)\n", r.Queue.Max, r.Queue.Samples, r.Queue.Failed)
	r.writeErrors(&b)
	if r.ViolationCount == 0 {
		b.WriteString("invariants:   ok (nobody matched twice, with themselves or after leaving; every match symmetric)\n")
	} else {
		fmt.Fprintf(&b, "invariants:   %d VIOLATIONS\n", r.ViolationCount)
		for i, v := range r.Violations {
			if i == 20 {
				fmt.Fprintf(&b, "  … and %d more (see -json)\n", r.ViolationCount-20)
				break
			}
			fmt.Fprintf(&b, "  %s: player %s, match %s: %s\n", v.Kind, v.Player, v.MatchID, v.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeIdleText writes the report of an idle run.
func (r *Report) writeIdleText(w io.Writer) error {
	var b strings.Builder
	i := r.Idle
	tokens := "tokens from dev login"
	if r.TokenSource == "minted" {
		tokens = "tokens minted with -secret"
	}
	fmt.Fprintf(&b, "matchload: idle, %d sockets (one player each) against %s, %s\n", i.Sockets, strings.Join(r.URLs, ", "), tokens)
	if r.Interrupted {
		b.WriteString("interrupted: figures so far\n")
	}
	fmt.Fprintf(&b, "sockets:      opened %d in %.3fs, failed %d, held %.3fs, lost while held %d, open at the end %d\n", i.Opened, i.OpenS, i.Failed, i.HeldS, i.Lost, i.OpenAtEnd)
	r.writeErrors(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeErrors writes the errors line.
func (r *Report) writeErrors(b *strings.Builder) {
	if len(r.Errors) == 0 {
		b.WriteString("errors:       none\n")
		return
	}
	codes := make([]string, 0, len(r.Errors))
	for code := range r.Errors {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	b.WriteString("errors:      ")
	for _, code := range codes {
		fmt.Fprintf(b, " %s %d", code, r.Errors[code])
		if ex := r.ErrorExamples[code]; ex != "" {
			fmt.Fprintf(b, " (e.g. %s)", ex)
		}
		b.WriteString(";")
	}
	b.WriteString("\n")
}
