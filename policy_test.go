package matchd_test

import (
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/matchd/matchd"
)

var bankTopics = []string{"algorithms", "behavioral", "concurrency", "data_structures", "databases", "system_design"}

func TestPreferencesValidate(t *testing.T) {
	tests := []struct {
		name  string
		prefs matchd.Preferences
		field string // in the error message; empty = valid
	}{
		{"empty_is_any", matchd.Preferences{}, ""},
		{"all_fields", matchd.Preferences{Difficulty: "hard", Topics: []string{"algorithms", "system_design"}, Duration: 45, Language: "pt-BR", Region: "eu-west"}, ""},
		{"unknown_difficulty", matchd.Preferences{Difficulty: "insane"}, "preferences.difficulty"},
		{"unknown_topic", matchd.Preferences{Topics: []string{"cooking"}}, "preferences.topics[0]"},
		{"duplicate_topic", matchd.Preferences{Topics: []string{"algorithms", "algorithms"}}, "preferences.topics[1]"},
		{"too_many_topics", matchd.Preferences{Topics: make([]string, 11)}, "preferences.topics"},
		{"bad_duration", matchd.Preferences{Duration: 20}, "preferences.duration"},
		{"bad_language", matchd.Preferences{Language: "english!"}, "preferences.language"},
		{"long_language", matchd.Preferences{Language: "en-" + strings.Repeat("a", 40)}, "preferences.language"},
		{"bad_region", matchd.Preferences{Region: "EU West"}, "preferences.region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.prefs.Validate(bankTopics)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if matchd.ErrorCode(err) != matchd.EInvalid || !strings.Contains(matchd.ErrorMessage(err), tt.field) {
				t.Errorf("Validate error = %v, want invalid_message naming %s", err, tt.field)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	good := `{"must_equal":["difficulty","duration","language"],"must_intersect":["topics"],
	  "rating":{"tolerance":100,"widen_by":50,"every":"5s","max":400},"region":{"same_until":"20s"},"no_rematch_within":"24h","no_repeat_question_within":"24h"}`
	p, err := matchd.ParsePolicy([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	d := matchd.DefaultPolicy()
	if p.Rating != d.Rating || p.SameRegionFor != d.SameRegionFor || p.NoRematch != d.NoRematch || p.NoRepeat != d.NoRepeat || len(p.MustEqual) != 3 {
		t.Errorf("the documented default file parses to %+v, want DefaultPolicy %+v", p, d)
	}
	bad := []struct{ name, data, want string }{
		{"unknown_setting", `{"must_equals":["difficulty"]}`, "unknown field"},
		{"unknown_equal_field", `{"must_equal":["mood"]}`, "must_equal"},
		{"unknown_intersect_field", `{"must_intersect":["difficulty"]}`, "must_intersect"},
		{"rating_incomplete", `{"rating":{"tolerance":100}}`, "rating needs"},
		{"rating_bad_every", `{"rating":{"tolerance":100,"widen_by":50,"every":"soon","max":400}}`, "rating.every"},
		{"rating_max_below_start", `{"rating":{"tolerance":100,"widen_by":50,"every":"5s","max":50}}`, "rating.max"},
		{"rating_negative", `{"rating":{"tolerance":-1,"widen_by":50,"every":"5s","max":50}}`, "rating.tolerance"},
		{"region_bad", `{"region":{"same_until":"0s"}}`, "region.same_until"},
		{"rematch_bad", `{"no_rematch_within":"a day"}`, "no_rematch_within"},
		{"repeat_bad", `{"no_repeat_question_within":"-1h"}`, "no_repeat_question_within"},
		{"not_json", `must_equal: difficulty`, "policy"},
		{"trailing", `{} {}`, "trailing"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := matchd.ParsePolicy([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePolicy error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestDefaultPolicyFits(t *testing.T) {
	p := matchd.DefaultPolicy()
	t0 := time.Unix(1_000_000, 0)
	ticket := func(id string, rating float64, waited time.Duration, prefs matchd.Preferences) *matchd.Ticket {
		return &matchd.Ticket{PlayerID: id, Rating: rating, JoinedAt: t0.Add(-waited), Prefs: prefs}
	}
	easy, hard := matchd.Preferences{Difficulty: "easy"}, matchd.Preferences{Difficulty: "hard"}
	tests := []struct {
		name   string
		a, b   *matchd.Ticket
		recent bool
		want   bool
	}{
		{"same_player", ticket("a", 1500, 0, easy), ticket("a", 1500, 0, easy), false, false},
		{"both_any", ticket("a", 1500, 0, matchd.Preferences{}), ticket("b", 1500, 0, matchd.Preferences{}), false, true},
		{"difficulty_differs", ticket("a", 1500, 0, easy), ticket("b", 1500, 0, hard), false, false},
		{"difficulty_stated_by_one", ticket("a", 1500, 0, easy), ticket("b", 1500, 0, matchd.Preferences{}), false, true},
		{"topics_disjoint", ticket("a", 1500, 0, matchd.Preferences{Topics: []string{"algorithms"}}), ticket("b", 1500, 0, matchd.Preferences{Topics: []string{"behavioral"}}), false, false},
		{"topics_shared", ticket("a", 1500, 0, matchd.Preferences{Topics: []string{"algorithms", "databases"}}), ticket("b", 1500, 0, matchd.Preferences{Topics: []string{"databases"}}), false, true},
		{"duration_differs", ticket("a", 1500, 0, matchd.Preferences{Duration: 30}), ticket("b", 1500, 0, matchd.Preferences{Duration: 45}), false, false},
		{"language_differs", ticket("a", 1500, 0, matchd.Preferences{Language: "en"}), ticket("b", 1500, 0, matchd.Preferences{Language: "de"}), false, false},
		{"rating_within_100", ticket("a", 1500, 0, easy), ticket("b", 1600, 0, easy), false, true},
		{"rating_150_fresh", ticket("a", 1500, 0, easy), ticket("b", 1650, 0, easy), false, false},
		{"rating_150_after_5s", ticket("a", 1500, 5*time.Second, easy), ticket("b", 1650, 0, easy), false, true},
		{"rating_400_after_30s", ticket("a", 1500, 0, easy), ticket("b", 1900, 30*time.Second, easy), false, true},
		{"rating_401_ever", ticket("a", 1500, time.Hour, easy), ticket("b", 1901, time.Hour, easy), false, false},
		{"other_region_fresh", ticket("a", 1500, 0, matchd.Preferences{Region: "eu"}), ticket("b", 1500, 19*time.Second, matchd.Preferences{Region: "us"}), false, false},
		{"other_region_after_20s", ticket("a", 1500, 0, matchd.Preferences{Region: "eu"}), ticket("b", 1500, 20*time.Second, matchd.Preferences{Region: "us"}), false, true},
		{"no_region_fits_any", ticket("a", 1500, 0, matchd.Preferences{}), ticket("b", 1500, 0, matchd.Preferences{Region: "us"}), false, true},
		{"recent_partners", ticket("a", 1500, time.Hour, easy), ticket("b", 1500, time.Hour, easy), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Fits(tt.a, tt.b, t0, tt.recent); got != tt.want {
				t.Errorf("Fits = %v, want %v", got, tt.want)
			}
		})
	}
}

// Properties of any policy the file format can express: Fits is
// symmetric, a fitting pair keeps fitting as time passes, and Widens names
// the moment a non-fitting pair may start to fit.
func TestPolicyProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := matchd.Policy{
			MustEqual:     rapid.SliceOfDistinct(rapid.SampledFrom([]string{"difficulty", "duration", "language", "region"}), rapid.ID[string]).Draw(t, "equal"),
			MustIntersect: rapid.SliceOfN(rapid.Just("topics"), 0, 1).Draw(t, "intersect"),
			Rating: matchd.RatingRule{
				Start:   float64(rapid.IntRange(0, 300).Draw(t, "start")),
				WidenBy: float64(rapid.IntRange(0, 100).Draw(t, "widen")),
				Every:   time.Duration(rapid.IntRange(1, 10).Draw(t, "every")) * time.Second,
			},
			SameRegionFor: time.Duration(rapid.IntRange(0, 30).Draw(t, "region")) * time.Second,
		}
		p.Rating.Max = p.Rating.Start + float64(rapid.IntRange(0, 500).Draw(t, "above"))
		t0 := time.Unix(1_000_000, 0)
		gen := func(label string) *matchd.Ticket {
			return &matchd.Ticket{
				PlayerID: label,
				Rating:   float64(rapid.IntRange(1000, 2000).Draw(t, label+".rating")),
				JoinedAt: t0.Add(-time.Duration(rapid.IntRange(0, 60).Draw(t, label+".waited")) * time.Second),
				Prefs: matchd.Preferences{
					Difficulty: rapid.SampledFrom([]string{"", "easy", "hard"}).Draw(t, label+".difficulty"),
					Duration:   rapid.SampledFrom([]int{0, 30, 45}).Draw(t, label+".duration"),
					Language:   rapid.SampledFrom([]string{"", "en", "de"}).Draw(t, label+".language"),
					Region:     rapid.SampledFrom([]string{"", "eu", "us"}).Draw(t, label+".region"),
					Topics:     rapid.SliceOfDistinct(rapid.SampledFrom(bankTopics[:3]), rapid.ID[string]).Draw(t, label+".topics"),
				},
			}
		}
		a, b := gen("a"), gen("b")
		now := t0
		later := t0.Add(time.Duration(rapid.IntRange(0, 120).Draw(t, "later")) * time.Second)
		fits := p.Fits(a, b, now, false)
		if fits != p.Fits(b, a, now, false) {
			t.Fatal("Fits is not symmetric")
		}
		if fits && !p.Fits(a, b, later, false) {
			t.Fatalf("a pair that fits at %v no longer fits %v later", now, later.Sub(now))
		}
		if !fits && p.Fits(a, b, later, false) {
			// It started to fit in between: at a widening of a or b.
			wa, wb := p.Widens(a, now), p.Widens(b, now)
			if (wa.IsZero() || wa.After(later)) && (wb.IsZero() || wb.After(later)) {
				t.Fatalf("the pair started to fit by %v but neither ticket widens before then (%v, %v)", later, wa, wb)
			}
		}
	})
}
