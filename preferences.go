package matchd

import (
	"regexp"
	"slices"
)

// Preferences are what a player asks of a match. Every field is optional;
// an empty field means "any".
type Preferences struct {
	Difficulty string   `json:"difficulty,omitempty"` // easy, medium or hard
	Topics     []string `json:"topics,omitempty"`     // up to MaxTopics of the bank's topics
	Duration   int      `json:"duration,omitempty"`   // minutes: 15, 30, 45 or 60
	Language   string   `json:"language,omitempty"`   // a BCP 47 tag, e.g. "en", "pt-BR"
	Region     string   `json:"region,omitempty"`     // a short name, e.g. "eu-west"
}

// MaxTopics caps the topics one player may ask for.
const MaxTopics = 10

var (
	// languagePattern is the shape of a BCP 47 tag: a 2–3 letter language,
	// then subtags of 1–8 letters or digits (script, region, variant).
	languagePattern = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)
	regionPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
)

// Validate checks p against the bank's topics and the allowed values. Its
// error is an EInvalid naming the field, so a client learns what to fix.
func (p Preferences) Validate(topics []string) error {
	if p.Difficulty != "" && !slices.Contains(Difficulties, p.Difficulty) {
		return Errorf(EInvalid, "preferences.difficulty must be one of %v", Difficulties)
	}
	if len(p.Topics) > MaxTopics {
		return Errorf(EInvalid, "preferences.topics: at most %d topics", MaxTopics)
	}
	for i, t := range p.Topics {
		if !slices.Contains(topics, t) {
			return Errorf(EInvalid, "preferences.topics[%d]: unknown topic %q (known: %v)", i, truncateText(t, 40), topics)
		}
		if slices.Contains(p.Topics[:i], t) {
			return Errorf(EInvalid, "preferences.topics[%d]: %q is listed twice", i, t)
		}
	}
	if p.Duration != 0 && !slices.Contains(Durations, p.Duration) {
		return Errorf(EInvalid, "preferences.duration must be one of %v (minutes)", Durations)
	}
	if p.Language != "" && (len(p.Language) > 35 || !languagePattern.MatchString(p.Language)) {
		return Errorf(EInvalid, "preferences.language must be a BCP 47 tag such as \"en\" or \"pt-BR\"")
	}
	if p.Region != "" && !regionPattern.MatchString(p.Region) {
		return Errorf(EInvalid, "preferences.region must be 1 to 32 characters of a-z, 0-9 and -")
	}
	return nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
