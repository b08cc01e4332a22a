package web

import (
	"testing"

	"github.com/matchd/matchd"
)

func TestDecodeRoomFrame(t *testing.T) {
	tests := []struct {
		name string
		data string
		want frame
		code string
		msg  string // the error message, when code is set
	}{
		{"ready", `{"type":"ready","match_id":"m1"}`, frame{Type: msgReady, MatchID: "m1"}, "", ""},
		{"ready_without_match", `{"type":"ready"}`, frame{Type: msgReady}, "", ""},
		{"ready_unknown_field", `{"type":"ready","now":true}`, frame{}, matchd.EInvalid, `json: unknown field "now"`},
		{"ready_user_id", `{"type":"ready","user_id":"alice"}`, frame{}, matchd.EInvalid, `json: unknown field "user_id"`},
		{"ready_match_number", `{"type":"ready","match_id":5}`, frame{}, matchd.EInvalid, `field "match_id" must be a string`},
		{"chat", `{"type":"chat","match_id":"m1","text":"hi"}`, frame{Type: msgChat, MatchID: "m1", Text: "hi"}, "", ""},
		{"chat_without_text", `{"type":"chat"}`, frame{}, matchd.EInvalid, `chat needs "text"`},
		{"chat_text_number", `{"type":"chat","text":1}`, frame{}, matchd.EInvalid, `field "text" must be a string`},
		{"chat_trailing", `{"type":"chat","text":"a"} {}`, frame{}, matchd.EInvalid, "message is not valid JSON"},
		{"leave_room", `{"type":"leave_room"}`, frame{Type: msgLeaveRoom}, "", ""},
		{"leave_room_text", `{"type":"leave_room","text":"bye"}`, frame{}, matchd.EInvalid, `json: unknown field "text"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFrame([]byte(tt.data))
			if code := matchd.ErrorCode(err); code != tt.code {
				t.Fatalf("decodeFrame error = %v, want code %q", err, tt.code)
			}
			if tt.code != "" {
				if msg := matchd.ErrorMessage(err); msg != tt.msg {
					t.Errorf("message = %q, want %q", msg, tt.msg)
				}
				return
			}
			if got.Type != tt.want.Type || got.MatchID != tt.want.MatchID || got.Text != tt.want.Text {
				t.Errorf("decodeFrame = %+v, want %+v", got, tt.want)
			}
		})
	}
}
