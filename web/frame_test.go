package web

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/matchd/matchd"
)

func TestDecodeFrame(t *testing.T) {
	alice := "alice"
	tests := []struct {
		name string
		data string
		want frame
		code string
	}{
		{"join", `{"type":"join_queue"}`, frame{Type: msgJoinQueue}, ""},
		{"join_with_user", `{"type":"join_queue","user_id":"alice"}`, frame{Type: msgJoinQueue, UserID: &alice}, ""},
		{"leave", `{"type":"leave_queue"}`, frame{Type: msgLeaveQueue}, ""},
		{"ping", ` {"type":"ping"} `, frame{Type: msgPing}, ""},
		{"ping_with_user", `{"type":"ping","user_id":"alice"}`, frame{}, matchd.EInvalid},
		{"empty", ``, frame{}, matchd.EInvalid},
		{"type_null", `{"type":null}`, frame{}, matchd.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFrame([]byte(tt.data))
			if code := matchd.ErrorCode(err); code != tt.code {
				t.Fatalf("decodeFrame error = %v, want code %q", err, tt.code)
			}
			if got.Type != tt.want.Type || (got.UserID == nil) != (tt.want.UserID == nil) || got.UserID != nil && *got.UserID != *tt.want.UserID {
				t.Errorf("decodeFrame = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodePreferences(t *testing.T) {
	got, err := decodeFrame([]byte(`{"type":"join_queue","preferences":{"difficulty":"hard","topics":["algorithms","system_design"],"duration":45,"language":"pt-BR","region":"eu-west"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := matchd.Preferences{Difficulty: "hard", Topics: []string{"algorithms", "system_design"}, Duration: 45, Language: "pt-BR", Region: "eu-west"}
	if !reflect.DeepEqual(got.Prefs, want) {
		t.Errorf("preferences = %+v, want %+v", got.Prefs, want)
	}
	if got, err := decodeFrame([]byte(`{"type":"join_queue","preferences":null}`)); err != nil || !reflect.DeepEqual(got.Prefs, matchd.Preferences{}) {
		t.Errorf("null preferences = %+v, %v; want none, no error", got.Prefs, err)
	}
	bad := []struct{ name, data, want string }{
		{"topics_not_a_list", `{"type":"join_queue","preferences":{"topics":"algorithms"}}`, `"preferences.topics" must be a list`},
		{"duration_string", `{"type":"join_queue","preferences":{"duration":"30"}}`, `"preferences.duration" must be a number`},
		{"difficulty_number", `{"type":"join_queue","preferences":{"difficulty":3}}`, `"preferences.difficulty" must be a string`},
		{"unknown_field", `{"type":"join_queue","preferences":{"rating":3000}}`, `preferences: unknown field "rating"`},
		{"not_an_object", `{"type":"join_queue","preferences":["easy"]}`, `"preferences" must be an object`},
		{"on_leave", `{"type":"leave_queue","preferences":{}}`, `unknown field "preferences"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeFrame([]byte(tt.data))
			if matchd.ErrorCode(err) != matchd.EInvalid || !strings.Contains(matchd.ErrorMessage(err), tt.want) {
				t.Errorf("error = %v, want invalid_message containing %s", err, tt.want)
			}
		})
	}
}

// FuzzDecodeFrame checks that no input panics the decoder, that every
// failure is a classified invalid_message error with a short message, and
// that every accepted frame is one of the known types.
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"join_queue"}`, `{"type":"leave_queue","user_id":"bob"}`, `{"type":"ping"}`,
		`{"type":"join_queue","preferences":{"difficulty":"easy","topics":["algorithms"],"duration":30,"language":"en","region":"eu-west"}}`,
		`{"type":"join_queue","preferences":{"topics":"algorithms"}}`, `{"type":"join_queue","preferences":{"mood":1}}`, `{"type":"join_queue","preferences":[]}`,
		`{"type":"join_queue","user_id":5}`, `[1,2]`, `{"type":"x"}`, `{"type":"ping"}{}`, "\x00", `{"type":"join_queue","user_id":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			if matchd.ErrorCode(err) != matchd.EInvalid {
				t.Fatalf("error %v is not invalid_message", err)
			}
			if msg := matchd.ErrorMessage(err); msg == "" || len(msg) > 200 {
				t.Fatalf("error message %q: want 1 to 200 bytes", msg)
			}
			return
		}
		switch fr.Type {
		case msgJoinQueue, msgLeaveQueue, msgPing, msgReady, msgChat, msgLeaveRoom:
		default:
			t.Fatalf("accepted unknown type %q", fr.Type)
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}
