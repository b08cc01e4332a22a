// Package auth issues and verifies matchd's session tokens (JWTs, with
// github.com/golang-jwt/jwt/v5). matchd issues HS256 tokens signed with its
// auth secret; it can also accept RS256 and ES256 tokens from an identity
// provider whose public keys it reads from a JWKS URL. A player's identity
// comes only from a verified token, never from what the client writes in a
// message.
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/matchd/matchd"
)

// MaxTokenLen caps the size of a token before any parsing is attempted.
const MaxTokenLen = 4096

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// Claims is what a token says about its holder.
type Claims struct {
	UserID    string   // the "sub" claim
	Rating    *float64 // optional "rating"
	Priority  int      // optional "priority"; 0 when absent
	ExpiresAt time.Time
}

// Config configures an Authority. Only Secret is used to sign; everything
// else narrows or widens what Verify accepts.
type Config struct {
	// Secret signs the tokens Issue returns and verifies HS256 tokens. An
	// empty Secret is replaced by 32 random bytes, so tokens then last
	// only as long as the process.
	Secret []byte
	// PreviousSecret, when set, also verifies HS256 tokens but never signs
	// one: rotate by moving the old secret here, and drop it once every
	// token it signed has expired.
	PreviousSecret []byte
	// Issuer, when set, must equal a token's "iss"; Issue sets it.
	Issuer string
	// Audience, when set, must be among a token's "aud"; Issue sets it.
	Audience string
	// JWKSURL, when set, is an identity provider's JWKS (RFC 7517): RS256
	// and ES256 tokens are then accepted when signed by the key their
	// "kid" names there. Without it only HS256 is accepted.
	JWKSURL string
	// HTTPClient fetches the JWKS; nil means a client with a JWKSTimeout
	// timeout.
	HTTPClient *http.Client
	Clock      matchd.Clock // nil means the system clock
	Logger     *slog.Logger // JWKS fetch failures; nil discards
}

// Authority issues and verifies tokens.
type Authority struct {
	secret   []byte
	hmacKeys jwt.VerificationKeySet // secret, then the previous secret
	issuer   string
	audience string
	jwks     *keySet // nil without a JWKS URL
	clock    matchd.Clock
	parser   *jwt.Parser
}

// New returns an Authority that issues and verifies HS256 tokens with
// secret alone; see Config for an empty secret.
func New(secret []byte, clock matchd.Clock) *Authority {
	a, err := NewFromConfig(Config{Secret: secret, Clock: clock})
	if err != nil {
		panic(err) // unreachable: only a JWKS URL or previous secret can be invalid
	}
	return a
}

// NewFromConfig returns an Authority for cfg. It fails only on an invalid
// configuration; it does not contact the JWKS URL (keys are fetched when
// the first token needs one).
func NewFromConfig(cfg Config) (*Authority, error) {
	if len(cfg.PreviousSecret) > 0 && len(cfg.Secret) == 0 {
		return nil, errors.New("a previous secret needs a current secret")
	}
	secret := cfg.Secret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = matchd.SystemClock{}
	}
	a := &Authority{
		secret:   secret,
		hmacKeys: jwt.VerificationKeySet{Keys: []jwt.VerificationKey{secret}},
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		clock:    clock,
	}
	if len(cfg.PreviousSecret) > 0 {
		a.hmacKeys.Keys = append(a.hmacKeys.Keys, cfg.PreviousSecret)
	}
	methods := []string{jwt.SigningMethodHS256.Alg()}
	if cfg.JWKSURL != "" {
		if err := CheckJWKSURL(cfg.JWKSURL); err != nil {
			return nil, err
		}
		logger := cfg.Logger
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		a.jwks = newKeySet(cfg.JWKSURL, cfg.HTTPClient, clock, logger)
		methods = append(methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(clock.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// tokenClaims is the JSON form of a token's claims.
type tokenClaims struct {
	jwt.RegisteredClaims
	Rating   *float64 `json:"rating,omitempty"`
	Priority *int     `json:"priority,omitempty"`
}

// Issue returns a token for c, valid for ttl, signed HS256 with the current
// secret and carrying the configured issuer and audience.
func (a *Authority) Issue(c Claims, ttl time.Duration) (string, error) {
	if !matchd.ValidPlayerID(c.UserID) {
		return "", matchd.Errorf(matchd.EInvalid, "user_id must be 1 to 64 characters of A-Z a-z 0-9 _ . -")
	}
	now := a.clock.Now()
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.issuer,
			Subject:   c.UserID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Rating: c.Rating,
	}
	if a.audience != "" {
		tc.Audience = jwt.ClaimStrings{a.audience}
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

// Verify checks token's size, algorithm, signature, expiry and claims and
// returns its claims. With a JWKS URL it may fetch the JWKS (see keySet),
// so it can block for up to JWKSTimeout.
func (a *Authority) Verify(token string) (Claims, error) {
	if len(token) == 0 || len(token) > MaxTokenLen {
		return Claims{}, unauthorized(ErrInvalidToken)
	}
	var tc tokenClaims
	if _, err := a.parser.ParseWithClaims(token, &tc, a.key); err != nil {
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

// key returns the keys that may verify t. The parser has already refused
// algorithms not configured; here each algorithm is tied to its own kind
// of key, so an HS256 token is only ever checked against the secrets (never
// against a public key: the classic algorithm-confusion forgery) and an
// RS256 or ES256 token only against the JWKS key of that type its kid names.
func (a *Authority) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch {
	case alg == jwt.SigningMethodHS256.Alg():
		return a.hmacKeys, nil
	case a.jwks != nil && (alg == jwt.SigningMethodRS256.Alg() || alg == jwt.SigningMethodES256.Alg()):
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		k, ok := a.jwks.key(kid)
		if !ok {
			return nil, fmt.Errorf("no key %q in the JWKS", kid)
		}
		if k.alg != alg {
			return nil, fmt.Errorf("key %q is for %s, not %s", kid, k.alg, alg)
		}
		return k.key, nil
	}
	return nil, fmt.Errorf("algorithm %q is not accepted", alg)
}

func unauthorized(cause error) error {
	return &matchd.Error{Code: matchd.EUnauthorized, Message: "missing or invalid session token", Err: cause}
}
