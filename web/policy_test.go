package web_test

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/questions"
	"github.com/matchd/matchd/web"
)

// TestPreferencesOverTheWire: join_queue's preferences decide who is
// paired, the room's question honours them, bad preferences are refused
// with an error naming the field and change nothing, and queue-status
// answers per pool.
func TestPreferencesOverTheWire(t *testing.T) {
	h := start(t)
	join := func(c *client, prefs map[string]any) {
		c.send(map[string]any{"type": "join_queue", "preferences": prefs})
	}

	easy, hard := h.player("easy"), h.player("hard")
	join(easy, map[string]any{"difficulty": "easy", "topics": []string{"algorithms"}})
	easy.expect("queued")
	join(hard, map[string]any{"difficulty": "hard"})
	if q := hard.expect("queued"); q["queue_size"] != 2.0 {
		t.Fatalf("hard queued = %v, want queue_size 2: easy and hard do not fit", q)
	}

	for _, tt := range []struct{ name, prefs, want string }{
		{"unknown_difficulty", `{"difficulty":"extreme"}`, "preferences.difficulty"},
		{"unknown_topic", `{"topics":["cooking"]}`, "preferences.topics[0]"},
		{"topics_not_a_list", `{"topics":"algorithms"}`, "preferences.topics"},
		{"bad_duration", `{"duration":20}`, "preferences.duration"},
		{"bad_language", `{"language":"english please"}`, "preferences.language"},
		{"unknown_field", `{"rating":3000}`, `unknown field "rating"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := h.player("bad-" + tt.name)
			c.sendRaw(1, []byte(`{"type":"join_queue","preferences":`+tt.prefs+`}`))
			e := c.expect("error")
			if e["code"] != matchd.EInvalid || !strings.Contains(e["message"].(string), tt.want) {
				t.Errorf("error = %v, want invalid_message naming %s", e, tt.want)
			}
			if n := h.queueSize(); n != 2 {
				t.Errorf("queue size = %d after a refused join, want 2", n)
			}
		})
	}

	for _, tt := range []struct {
		query string
		want  float64
	}{
		{"", 2},
		{"?difficulty=easy", 1},
		{"?difficulty=hard&topics=algorithms", 1}, // topics are not a pool key
		{"?difficulty=medium", 0},
		{"?language=en", 2}, // nobody stated a language
	} {
		status, body := h.do("GET", "/api/matchmaking/queue-status"+tt.query, "", nil)
		if status != http.StatusOK || body["queue_size"] != tt.want {
			t.Errorf("queue-status%s = %d %v, want queue_size %v", tt.query, status, body, tt.want)
		}
	}
	for q, want := range map[string]string{
		"?difficulty=extreme":              "difficulty must be one of",
		"?topics=algorithms,cooking":       `topics[1]: unknown topic "cooking"`,
		"?mood=happy":                      `unknown query parameter "mood"`,
		"?duration=x":                      "duration must be a whole number",
		"?difficulty=easy&difficulty=hard": `"difficulty" given more than once`,
	} {
		status, body := h.do("GET", "/api/matchmaking/queue-status"+q, "", nil)
		e, _ := body["error"].(map[string]any)
		if msg, _ := e["message"].(string); status != http.StatusBadRequest || e["code"] != matchd.EInvalid || !strings.Contains(msg, want) || strings.Contains(msg, "preferences.") {
			t.Errorf("queue-status%s = %d %v, want 400 invalid_message containing %s", q, status, body, want)
		}
	}

	// A player who asks for hard system design meets hard; the question
	// is hard.
	other := h.player("other")
	join(other, map[string]any{"difficulty": "hard", "duration": 45})
	other.expect("queued")
	m := other.matched()
	room := m["room"].(map[string]any)
	if m["partner_id"] != "hard" || room["difficulty"] != "hard" || room["duration_minutes"] != 45.0 {
		t.Errorf("match = %v, want partner hard, a hard question, 45 minutes", m)
	}
	if n := h.queueSize(); n != 1 {
		t.Errorf("queue size = %d, want 1 (easy still waits)", n)
	}
}

// TestRatingSources: the rating comes from the token's claim, else the
// stored rating, else 1500, never from the client.
func TestRatingSources(t *testing.T) {
	stored := storedRatings{"veteran": 2400}
	h := start(t, func(c *web.Config) { c.Ratings = stored })
	for _, tt := range []struct {
		user string
		body map[string]any
		want float64
	}{
		{"claimed", map[string]any{"user_id": "claimed", "rating": 1900.0}, 1900},
		{"veteran", map[string]any{"user_id": "veteran"}, 2400},
		{"newcomer", map[string]any{"user_id": "newcomer"}, matchd.DefaultRating},
	} {
		_, login := h.do("POST", "/api/dev/login", "", tt.body)
		c := h.dial(login["token"].(string))
		c.join()
		c.expect("queued")
		waiting, err := h.backend.Waiting(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		var got float64 = -1
		for _, w := range waiting {
			if w.PlayerID == tt.user {
				got = w.Rating
			}
		}
		if got != tt.want {
			t.Errorf("%s waits with rating %v, want %v", tt.user, got, tt.want)
		}
		c.leave()
		c.expect("left_queue")
	}
}

type storedRatings map[string]float64

func (s storedRatings) Rating(_ context.Context, player string) (float64, bool, error) {
	r, ok := s[player]
	return r, ok, nil
}

// TestLobbyTopicsAreTheBanks: the lobby's topic checkboxes offer exactly
// the question bank's topics, so a player can pick every topic and no
// choice is refused.
func TestLobbyTopicsAreTheBanks(t *testing.T) {
	page, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	var offered []string
	for _, m := range regexp.MustCompile(`name="topics" value="([a-z_]+)"`).FindAllSubmatch(page, -1) {
		offered = append(offered, string(m[1]))
	}
	bank, err := questions.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(offered, bank.Topics()) {
		t.Errorf("lobby offers topics %v, the bank has %v", offered, bank.Topics())
	}
}
