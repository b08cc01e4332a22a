package matchd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// A Policy decides who may be paired with whom: a small rule set, as data,
// whose rating and region rules widen as players wait. It is loaded from a
// JSON file (-policy) and validated before matchd starts; DefaultPolicy is
// the documented default. The same Policy value drives both backends.
//
//	{
//	  "must_equal":        ["difficulty", "duration", "language"],
//	  "must_intersect":    ["topics"],
//	  "rating":            {"tolerance": 100, "widen_by": 50, "every": "5s", "max": 400},
//	  "region":            {"same_until": "20s"},
//	  "no_rematch_within": "24h",
//	  "no_repeat_question_within": "24h"
//	}
//
// must_equal fields must be equal when both players state them;
// must_intersect fields must share a value when both state them; the
// rating tolerance starts at tolerance and grows by widen_by every
// `every` of waiting, up to max; players of different regions may pair
// once one of them has waited same_until; two players matched with each
// other within no_rematch_within are not paired again; a room's question is
// one neither player had within no_repeat_question_within, when the bank
// allows. For the rating and
// region rules the longer wait of the two counts.
type Policy struct {
	MustEqual     []string
	MustIntersect []string
	Rating        RatingRule
	SameRegionFor time.Duration // 0: region is ignored
	NoRematch     time.Duration // 0: rematches allowed
	NoRepeat      time.Duration // 0: questions may repeat
}

// History is how long a backend must remember whom a player met and which
// questions they had: the longer of the policy's two history windows.
func (p Policy) History() time.Duration { return max(p.NoRematch, p.NoRepeat) }

// RatingRule is the rating tolerance and how it widens with waiting time.
type RatingRule struct {
	Start   float64 // tolerance when nobody has waited
	WidenBy float64
	Every   time.Duration
	Max     float64
}

// DefaultPolicy is the policy matchd uses without a policy file.
func DefaultPolicy() Policy {
	return Policy{
		MustEqual:     []string{"difficulty", "duration", "language"},
		MustIntersect: []string{"topics"},
		Rating:        RatingRule{Start: 100, WidenBy: 50, Every: 5 * time.Second, Max: 400},
		SameRegionFor: 20 * time.Second,
		NoRematch:     24 * time.Hour,
		NoRepeat:      24 * time.Hour,
	}
}

// policyFile is the JSON form of a Policy.
type policyFile struct {
	MustEqual     []string `json:"must_equal"`
	MustIntersect []string `json:"must_intersect"`
	Rating        *struct {
		Tolerance *float64 `json:"tolerance"`
		WidenBy   *float64 `json:"widen_by"`
		Every     string   `json:"every"`
		Max       *float64 `json:"max"`
	} `json:"rating"`
	Region *struct {
		SameUntil string `json:"same_until"`
	} `json:"region"`
	NoRematchWithin string `json:"no_rematch_within"`
	NoRepeatWithin  string `json:"no_repeat_question_within"`
}

// ParsePolicy reads a policy file. Every problem is an error that names the
// setting; unknown settings are errors too, so a typo is not silently a
// different policy.
func ParsePolicy(data []byte) (Policy, error) {
	var f policyFile
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return Policy{}, fmt.Errorf("policy: %w", err)
	}
	if d.More() {
		return Policy{}, fmt.Errorf("policy: trailing data after the JSON object")
	}
	p := Policy{MustEqual: f.MustEqual, MustIntersect: f.MustIntersect}
	for _, field := range p.MustEqual {
		if !slices.Contains([]string{"difficulty", "duration", "language", "region"}, field) {
			return Policy{}, fmt.Errorf("policy: must_equal: %q is not difficulty, duration, language or region", field)
		}
	}
	for _, field := range p.MustIntersect {
		if field != "topics" {
			return Policy{}, fmt.Errorf("policy: must_intersect: %q is not topics", field)
		}
	}
	if r := f.Rating; r != nil {
		if r.Tolerance == nil || r.WidenBy == nil || r.Max == nil || r.Every == "" {
			return Policy{}, fmt.Errorf("policy: rating needs tolerance, widen_by, every and max")
		}
		every, err := time.ParseDuration(r.Every)
		if err != nil || every <= 0 {
			return Policy{}, fmt.Errorf("policy: rating.every: %q is not a positive duration", r.Every)
		}
		p.Rating = RatingRule{Start: *r.Tolerance, WidenBy: *r.WidenBy, Every: every, Max: *r.Max}
		switch {
		case p.Rating.Start < 0 || math.IsNaN(p.Rating.Start):
			return Policy{}, fmt.Errorf("policy: rating.tolerance must be 0 or more")
		case p.Rating.WidenBy < 0:
			return Policy{}, fmt.Errorf("policy: rating.widen_by must be 0 or more")
		case p.Rating.Max < p.Rating.Start:
			return Policy{}, fmt.Errorf("policy: rating.max must be at least rating.tolerance")
		}
	} else {
		p.Rating = RatingRule{Start: math.Inf(1), Max: math.Inf(1)} // no rating rule
	}
	if r := f.Region; r != nil {
		d, err := time.ParseDuration(r.SameUntil)
		if err != nil || d <= 0 {
			return Policy{}, fmt.Errorf("policy: region.same_until: %q is not a positive duration", r.SameUntil)
		}
		p.SameRegionFor = d
	}
	if f.NoRematchWithin != "" {
		d, err := time.ParseDuration(f.NoRematchWithin)
		if err != nil || d < 0 {
			return Policy{}, fmt.Errorf("policy: no_rematch_within: %q is not a duration", f.NoRematchWithin)
		}
		p.NoRematch = d
	}
	if f.NoRepeatWithin != "" {
		d, err := time.ParseDuration(f.NoRepeatWithin)
		if err != nil || d < 0 {
			return Policy{}, fmt.Errorf("policy: no_repeat_question_within: %q is not a duration", f.NoRepeatWithin)
		}
		p.NoRepeat = d
	}
	return p, nil
}

// At returns the rating tolerance after waiting wait.
func (r RatingRule) At(wait time.Duration) float64 {
	if r.Every <= 0 || wait <= 0 {
		return min(r.Start, r.Max)
	}
	steps := float64(wait / r.Every)
	return min(r.Start+steps*r.WidenBy, r.Max)
}

// Fits reports whether a and b may be paired at now, given whether they
// were matched with each other recently. It is symmetric, and a pair that
// fits keeps fitting as both wait longer (rules only widen).
func (p Policy) Fits(a, b *Ticket, now time.Time, recent bool) bool {
	if a.PlayerID == b.PlayerID || recent && p.NoRematch > 0 {
		return false
	}
	for _, field := range p.MustEqual {
		if !equalIfBoth(a.Prefs, b.Prefs, field) {
			return false
		}
	}
	for range p.MustIntersect { // only "topics"
		if len(a.Prefs.Topics) > 0 && len(b.Prefs.Topics) > 0 && !intersects(a.Prefs.Topics, b.Prefs.Topics) {
			return false
		}
	}
	wait := max(a.Waited(now), b.Waited(now))
	if math.Abs(a.Rating-b.Rating) > p.Rating.At(wait) {
		return false
	}
	if p.SameRegionFor > 0 && wait < p.SameRegionFor && !equalIfBoth(a.Prefs, b.Prefs, "region") {
		return false
	}
	return true
}

// Widens returns the next time after now at which a rule of t's widens
// (its rating tolerance grows, or it may leave its region), or the zero
// time when none will. A sweep looks at t again then.
func (p Policy) Widens(t *Ticket, now time.Time) time.Time {
	wait := t.Waited(now)
	var next time.Time
	if r := p.Rating; r.Every > 0 && r.WidenBy > 0 && r.At(wait) < r.Max {
		next = t.JoinedAt.Add((wait/r.Every + 1) * r.Every)
	}
	if p.SameRegionFor > 0 && wait < p.SameRegionFor {
		if at := t.JoinedAt.Add(p.SameRegionFor); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

func equalIfBoth(a, b Preferences, field string) bool {
	switch field {
	case "difficulty":
		return a.Difficulty == "" || b.Difficulty == "" || a.Difficulty == b.Difficulty
	case "duration":
		return a.Duration == 0 || b.Duration == 0 || a.Duration == b.Duration
	case "language":
		return a.Language == "" || b.Language == "" || a.Language == b.Language
	case "region":
		return a.Region == "" || b.Region == "" || a.Region == b.Region
	}
	return true
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
