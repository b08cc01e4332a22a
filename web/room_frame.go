package web

import "github.com/matchd/matchd"

// Client-to-server message types of the room lifecycle.
const (
	msgReady     = "ready"
	msgChat      = "chat"
	msgLeaveRoom = "leave_room"
)

// decodeRoomFrame decodes a room frame of type t, as strictly as
// decodeFrame does the others; ok is false when t is not a room frame.
// match_id is optional (default: the player's current match); chat needs
// a string text.
func decodeRoomFrame(t string, data []byte) (f frame, ok bool, err error) {
	switch t {
	case msgReady, msgLeaveRoom:
		var m struct {
			Type    string `json:"type"`
			MatchID string `json:"match_id"`
		}
		if err := strictUnmarshal(data, &m); err != nil {
			return frame{}, true, err
		}
		return frame{Type: t, MatchID: m.MatchID}, true, nil
	case msgChat:
		var m struct {
			Type    string  `json:"type"`
			MatchID string  `json:"match_id"`
			Text    *string `json:"text"`
		}
		if err := strictUnmarshal(data, &m); err != nil {
			return frame{}, true, err
		}
		if m.Text == nil {
			return frame{}, true, matchd.Errorf(matchd.EInvalid, `chat needs "text"`)
		}
		return frame{Type: t, MatchID: m.MatchID, Text: *m.Text}, true, nil
	}
	return frame{}, false, nil
}
