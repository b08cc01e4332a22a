package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/matchd/matchd"
)

// Client-to-server message types.
const (
	msgJoinQueue  = "join_queue"
	msgLeaveQueue = "leave_queue"
	msgPing       = "ping"
)

// frame is a decoded client message.
type frame struct {
	Type   string
	UserID *string // join_queue/leave_queue may name the player; it must be the token's
	// Room frames (room_frame.go).
	MatchID string
	Text    string
	// Prefs are join_queue's "preferences", decoded strictly but not yet
	// checked against the question bank (see matchd.Preferences.Validate).
	Prefs matchd.Preferences
}

// decodeFrame parses one client text frame. It accepts only a JSON object
// with a known "type" and the fields that type allows; anything else is an
// EInvalid error whose message says what is wrong, and nothing is done.
func decodeFrame(data []byte) (frame, error) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return frame{}, invalidJSON(err)
	}
	if head.Type == nil {
		return frame{}, matchd.Errorf(matchd.EInvalid, `message has no "type"`)
	}
	switch t := *head.Type; t {
	case msgJoinQueue:
		var m struct {
			Type        string          `json:"type"`
			UserID      *string         `json:"user_id"`
			Preferences json.RawMessage `json:"preferences"`
		}
		if err := strictUnmarshal(data, &m); err != nil {
			return frame{}, err
		}
		f := frame{Type: t, UserID: m.UserID}
		if len(m.Preferences) > 0 && string(m.Preferences) != "null" {
			if err := strictUnmarshal(m.Preferences, &f.Prefs); err != nil {
				return frame{}, inField("preferences", err)
			}
		}
		return f, nil
	case msgLeaveQueue:
		var m struct {
			Type   string  `json:"type"`
			UserID *string `json:"user_id"`
		}
		if err := strictUnmarshal(data, &m); err != nil {
			return frame{}, err
		}
		return frame{Type: t, UserID: m.UserID}, nil
	case msgPing:
		var m struct {
			Type string `json:"type"`
		}
		if err := strictUnmarshal(data, &m); err != nil {
			return frame{}, err
		}
		return frame{Type: t}, nil
	default:
		if f, ok, err := decodeRoomFrame(t, data); ok {
			return f, err
		}
		return frame{}, matchd.Errorf(matchd.EInvalid, "unknown message type %q", truncate(t, 40)) // %q can quadruple it: stays under 200 bytes
	}
}

// strictUnmarshal decodes data into v, refusing unknown fields and
// trailing data.
func strictUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return invalidJSON(err)
	}
	if d.More() {
		return matchd.Errorf(matchd.EInvalid, "trailing data after the JSON object")
	}
	return nil
}

// inField prefixes a decoding error of a nested object with the object's
// field, so that the message names the whole path ("preferences.topics").
func inField(field string, err error) error {
	e, ok := err.(*matchd.Error)
	if !ok {
		return err
	}
	msg := e.Message
	switch {
	case strings.HasPrefix(msg, "field "):
		msg = `field "` + field + "." + strings.TrimPrefix(msg, `field "`)
	case msg == "message must be a JSON object":
		msg = fmt.Sprintf("field %q must be an object", field)
	default:
		msg = field + ": " + strings.TrimPrefix(msg, "json: ")
	}
	return &matchd.Error{Code: e.Code, Message: msg, Err: e.Err}
}

// invalidJSON turns a decoding error into a player-safe EInvalid error.
func invalidJSON(err error) error {
	var msg string
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		if e.Field == "" {
			msg = "message must be a JSON object"
		} else {
			t := e.Type
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			msg = fmt.Sprintf("field %q must be a %s", e.Field, jsonKind(t.Kind()))
		}
	case *json.SyntaxError:
		msg = "message is not valid JSON"
	default:
		msg = truncate(err.Error(), 120) // e.g. `json: unknown field "x"`
	}
	return &matchd.Error{Code: matchd.EInvalid, Message: msg, Err: err}
}

// jsonKind names the JSON kind a Go kind decodes from.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Bool:
		return "boolean"
	default:
		return "number"
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Server-to-client messages.

type queuedMsg struct {
	Type                 string `json:"type"`
	QueueSize            int    `json:"queue_size"`
	EstimatedWaitSeconds int    `json:"estimated_wait_seconds"`
}

type matchFoundMsg struct {
	Type      string      `json:"type"`
	MatchID   string      `json:"match_id"`
	PartnerID string      `json:"partner_id"`
	Room      matchd.Room `json:"room"`
}

type errorMsg struct {
	Type              string `json:"type"`
	Code              string `json:"code"`
	Message           string `json:"message"`
	RetryAfterSeconds int    `json:"retry_after_seconds,omitempty"`
}

type typeOnly struct {
	Type string `json:"type"`
}

var (
	pongFrame      = mustJSON(typeOnly{Type: "pong"})
	reconnectFrame = mustJSON(typeOnly{Type: "reconnect"})
	leftQueueFrame = mustJSON(typeOnly{Type: "left_queue"})
)

// frameType reads the type of a server frame, which every server message
// has as its first field, for metrics.
func frameType(data []byte) string {
	rest, ok := bytes.CutPrefix(data, []byte(`{"type":"`))
	if !ok {
		return "unknown"
	}
	if i := bytes.IndexByte(rest, '"'); i > 0 {
		return string(rest[:i])
	}
	return "unknown"
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only for fixed, known-good values
	}
	return b
}

func matchFoundFrame(room *matchd.Room, player string) []byte {
	return mustJSON(matchFoundMsg{Type: "match_found", MatchID: room.MatchID, PartnerID: room.Partner(player), Room: *room})
}

func errorFrame(err error) []byte {
	return mustJSON(errorMsg{
		Type:              "error",
		Code:              matchd.ErrorCode(err),
		Message:           matchd.ErrorMessage(err),
		RetryAfterSeconds: ceilSeconds(matchd.ErrorRetryAfter(err)),
	})
}

// ceilSeconds rounds d up to whole seconds: a client that waits that long
// is admitted.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
