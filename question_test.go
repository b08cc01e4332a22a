package matchd_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/matchd/matchd"
)

func TestParseQuestionBank(t *testing.T) {
	const good = `{"id":"algo-e-01","topic":"algorithms","difficulty":"easy","duration_minutes":30,"text":"Reverse a list."}`
	tests := []struct {
		name    string
		data    string
		wantErr string // substring; empty = valid
	}{
		{"valid", `{"questions":[` + good + `]}`, ""},
		{"not_json", `{`, "question bank"},
		{"empty", `{"questions":[]}`, "no questions"},
		{"bad_id", `{"questions":[{"id":"A B","topic":"algorithms","difficulty":"easy","duration_minutes":30,"text":"x"}]}`, "bad id"},
		{"duplicate_id", `{"questions":[` + good + `,` + good + `]}`, "duplicate id"},
		{"bad_topic", `{"questions":[{"id":"q-1","topic":"Algo Rithms","difficulty":"easy","duration_minutes":30,"text":"x"}]}`, "bad topic"},
		{"bad_difficulty", `{"questions":[{"id":"q-1","topic":"algorithms","difficulty":"trivial","duration_minutes":30,"text":"x"}]}`, "bad difficulty"},
		{"bad_duration", `{"questions":[{"id":"q-1","topic":"algorithms","difficulty":"easy","duration_minutes":20,"text":"x"}]}`, "duration_minutes"},
		{"empty_text", `{"questions":[{"id":"q-1","topic":"algorithms","difficulty":"easy","duration_minutes":30,"text":""}]}`, "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bank, err := matchd.ParseQuestionBank([]byte(tt.data))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseQuestionBank: %v", err)
				}
				if bank.Len() != 1 || bank.Random().ID != "algo-e-01" {
					t.Errorf("bank = %v, want the one question", bank.Questions())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseQuestionBank error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWaitText(t *testing.T) {
	tests := []struct {
		secs float64
		want string
	}{
		{0, "under a second"}, {0.4, "under a second"}, {10, "about 10 s"}, {59.4, "about 59 s"},
		{90, "about 2 min"}, {3599, "about 60 min"}, {7200, "over an hour"},
	}
	for _, tt := range tests {
		if got := matchd.WaitText(seconds(tt.secs)); got != tt.want {
			t.Errorf("WaitText(%vs) = %q, want %q", tt.secs, got, tt.want)
		}
	}
}

func TestQuestionRoomsAgree(t *testing.T) {
	bank, err := matchd.ParseQuestionBank([]byte(`{"questions":[
	  {"id":"a-easy","topic":"algorithms","difficulty":"easy","duration_minutes":30,"text":"A"},
	  {"id":"a-hard","topic":"algorithms","difficulty":"hard","duration_minutes":45,"text":"B"},
	  {"id":"s-hard","topic":"system_design","difficulty":"hard","duration_minutes":60,"text":"C"},
	  {"id":"s-hard-2","topic":"system_design","difficulty":"hard","duration_minutes":60,"text":"D"},
	  {"id":"b-easy","topic":"behavioral","difficulty":"easy","duration_minutes":15,"text":"E"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rooms := matchd.QuestionRooms{Bank: bank}
	ticket := func(id string, p matchd.Preferences, seen ...string) matchd.Ticket {
		return matchd.Ticket{PlayerID: id, Prefs: p, Seen: seen}
	}
	tests := []struct {
		name       string
		a, b       matchd.Ticket
		want       []string // acceptable question ids
		wantMinute int
	}{
		{"shared_topic_and_difficulty",
			ticket("a", matchd.Preferences{Difficulty: "hard", Topics: []string{"algorithms", "system_design"}}),
			ticket("b", matchd.Preferences{Difficulty: "hard", Topics: []string{"system_design", "behavioral"}}),
			[]string{"s-hard", "s-hard-2"}, 60},
		{"one_states_topics",
			ticket("a", matchd.Preferences{}),
			ticket("b", matchd.Preferences{Topics: []string{"behavioral"}, Duration: 30}),
			[]string{"b-easy"}, 30},
		{"not_seen_by_either",
			ticket("a", matchd.Preferences{Topics: []string{"system_design"}}, "s-hard"),
			ticket("b", matchd.Preferences{Topics: []string{"system_design"}}),
			[]string{"s-hard-2"}, 60},
		{"all_seen_still_gets_a_question_on_topic",
			ticket("a", matchd.Preferences{Topics: []string{"system_design"}}, "s-hard"),
			ticket("b", matchd.Preferences{}, "s-hard-2"),
			[]string{"s-hard", "s-hard-2"}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 { // random draws: every one must be acceptable
				r, err := rooms.MakeRoom(t.Context(), tt.a, tt.b)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(tt.want, r.QuestionID) || r.DurationMinutes != tt.wantMinute {
					t.Fatalf("room question %s, %d min; want one of %v, %d min", r.QuestionID, r.DurationMinutes, tt.want, tt.wantMinute)
				}
			}
		})
	}
}
