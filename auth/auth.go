// Package auth issues and verifies matchd's session tokens: JWTs signed
// HS256 with the auth secret (github.com/golang-jwt/jwt/v5). A player's
// identity comes only from a verified token, never from what the client
// writes in a message.
package auth

import (
	"crypto/rand"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/matchd/matchd"
)

// MaxTokenLen caps the size of a token before any parsing is attempted.
const MaxTokenLen = 4096

// Claims is what a token says about its holder.
type Claims struct {
	UserID    string   // the "sub" claim
	Rating    *float64 // optional "rating"
	Priority  int      // optional "priority"; 0 when absent
	ExpiresAt time.Time
}

// Authority issues and verifies tokens with one HS256 secret.
type Authority struct {
	secret []byte
	clock  matchd.Clock
	parser *jwt.Parser
}

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// New returns an Authority for secret. An empty secret is replaced by 32
// random bytes, so tokens then last only as long as the process.
func New(secret []byte, clock matchd.Clock) *Authority {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	if clock == nil {
		clock = matchd.SystemClock{}
	}
	return &Authority{
		secret: secret,
		clock:  clock,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(Leeway),
			jwt.WithTimeFunc(clock.Now),
		),
	}
}

// tokenClaims is the JSON form of a token's claims.
type tokenClaims struct {
	jwt.RegisteredClaims
	Rating   *float64 `json:"rating,omitempty"`
	Priority *int     `json:"priority,omitempty"`
}

// Issue returns a signed token for c, valid for ttl.
func (a *Authority) Issue(c Claims, ttl time.Duration) (string, error) {
	if !matchd.ValidPlayerID(c.UserID) {
		return "", matchd.Errorf(matchd.EInvalid, "user_id must be 1 to 64 characters of A-Z a-z 0-9 _ . -")
	}
	now := a.clock.Now()
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.UserID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Rating: c.Rating,
	}
	if c.Priority != 0 {
		tc.Priority = &c.Priority
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(a.secret)
}

// ErrInvalidToken is returned (wrapped in a *matchd.Error with code
// EUnauthorized) for every token that does not verify. The reason is kept
// for logs only: telling a forger which check failed helps them.
var ErrInvalidToken = errors.New("invalid token")

// Verify checks token's signature, algorithm, expiry and claims and
// returns its claims.
func (a *Authority) Verify(token string) (Claims, error) {
	if len(token) == 0 || len(token) > MaxTokenLen {
		return Claims{}, unauthorized(ErrInvalidToken)
	}
	var tc tokenClaims
	_, err := a.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return a.secret, nil })
	if err != nil {
		return Claims{}, unauthorized(err)
	}
	if !matchd.ValidPlayerID(tc.Subject) {
		return Claims{}, unauthorized(errors.New("sub is not a valid user id"))
	}
	c := Claims{UserID: tc.Subject, Rating: tc.Rating, ExpiresAt: tc.ExpiresAt.Time}
	if tc.Priority != nil {
		c.Priority = *tc.Priority
	}
	return c, nil
}

func unauthorized(cause error) error {
	return &matchd.Error{Code: matchd.EUnauthorized, Message: "missing or invalid session token", Err: cause}
}
