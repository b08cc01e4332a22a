package matchd_test

import (
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
