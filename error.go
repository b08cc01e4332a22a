package matchd

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are part of the public wire contract: the WebSocket
// gateway sends them verbatim in {"type":"error","code":…} frames and the
// REST API in {"error":{"code":…}} bodies, so never rename one.
const (
	EInvalid      = "invalid_message" // the request is malformed or breaks a rule
	EForbidden    = "forbidden"       // the caller may not do this
	EUnauthorized = "unauthorized"    // no valid identity
	ENotFound     = "not_found"       // no such room or player
	EConflict     = "conflict"        // already done, and it may be done only once (e.g. feedback)
	ERateLimited  = "rate_limited"    // too many requests; try later
	EUnavailable  = "unavailable"     // a dependency (e.g. Redis) is down; try later
	EInternal     = "internal"        // a bug or an unexpected failure
)

// Error is a domain error with a code from the list above and a message
// that is safe to show to the player. Internal details stay out of Message;
// wrap the cause in Err instead.
type Error struct {
	Code    string
	Message string
	Err     error // the cause, for logs; never sent to clients
	// RetryAfter, on an ERateLimited error, is how long until the request
	// would be admitted.
	RetryAfter time.Duration
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of the first *Error in err's chain, or
// EInternal when there is none: an error nobody classified is a bug.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EInternal
}

// ErrorRetryAfter returns the RetryAfter of the first *Error in err's
// chain, or 0.
func ErrorRetryAfter(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}

// ErrorMessage returns the player-safe message of err: the Message of the
// first *Error in its chain, or a generic text for unclassified errors so
// that no internals leak to clients.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}
