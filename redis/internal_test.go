package redis

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/matchd/matchd"
)

func TestEventJSONIsTheEvent(t *testing.T) {
	room := matchd.Room{
		MatchID: matchd.NewMatchID(), Player1: "alice.b-1", Player2: "Bob_2", CreatedAt: time.Unix(1_800_000_000, 0).UTC(),
		Status: matchd.StatusActive, QuestionID: "q-1", QuestionText: `Say "hi" <b>\\n`, Topic: "algorithms", Difficulty: "easy", DurationMinutes: 30,
	}
	roomJSON, _ := json.Marshal(room)
	var got, want matchd.Event
	if err := json.Unmarshal(eventJSON(room, roomJSON), &got); err != nil {
		t.Fatalf("eventJSON is not valid JSON: %v", err)
	}
	wantJSON, _ := json.Marshal(matchd.NewEvent(room))
	json.Unmarshal(wantJSON, &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("eventJSON differs from the event (-want +got):\\n%s", diff)
	}
}
