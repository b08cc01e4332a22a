package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/matchdtest"
)

// TestMain fails the package if a test leaves a goroutine running: the
// JWKS cache must fetch on demand, never in the background.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("test-secret-0123456789abcdef")

func TestIssueAndVerify(t *testing.T) {
	clock := matchdtest.NewClock()
	a := auth.New(secret, clock)
	rating := 1720.5
	token, err := a.Issue(auth.Claims{UserID: "alice", Rating: &rating, Priority: 3}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Verify(token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.UserID != "alice" || c.Rating == nil || *c.Rating != rating || c.Priority != 3 || !c.ExpiresAt.Equal(clock.Now().Add(time.Hour)) {
		t.Errorf("claims = %+v, want alice, rating %v, priority 3, exp in 1h", c, rating)
	}
	if _, err := a.Issue(auth.Claims{UserID: "bad id"}, time.Hour); matchd.ErrorCode(err) != matchd.EInvalid {
		t.Errorf("Issue(bad id) error = %v, want invalid", err)
	}
}

// sign returns a token with the given claims signed HS256 with key.
func sign(t *testing.T, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRejects(t *testing.T) {
	clock := matchdtest.NewClock()
	a := auth.New(secret, clock)
	now := clock.Now()
	exp := now.Add(time.Hour).Unix()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs256, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "alice", "exp": exp}).SignedString(rsaKey)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "exp": exp}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "alice", "exp": exp}).SignedString(secret)
	valid := sign(t, jwt.MapClaims{"sub": "alice", "exp": exp}, secret)

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not.a.token"},
		{"forged_signature", sign(t, jwt.MapClaims{"sub": "alice", "exp": exp}, []byte("another-secret"))},
		{"tampered_payload", tamper(valid)},
		{"expired", sign(t, jwt.MapClaims{"sub": "alice", "exp": now.Add(-time.Minute).Unix()}, secret)},
		{"no_exp", sign(t, jwt.MapClaims{"sub": "alice"}, secret)},
		{"not_yet_valid", sign(t, jwt.MapClaims{"sub": "alice", "exp": exp, "nbf": now.Add(time.Hour).Unix()}, secret)},
		{"issued_in_the_future", sign(t, jwt.MapClaims{"sub": "alice", "exp": exp, "iat": now.Add(time.Hour).Unix()}, secret)},
		{"alg_none", none},
		{"alg_rs256", rs256},
		{"alg_hs512", hs512},
		{"no_sub", sign(t, jwt.MapClaims{"exp": exp}, secret)},
		{"bad_sub", sign(t, jwt.MapClaims{"sub": "al ice", "exp": exp}, secret)},
		{"long_sub", sign(t, jwt.MapClaims{"sub": strings.Repeat("a", 65), "exp": exp}, secret)},
		{"fractional_priority", sign(t, jwt.MapClaims{"sub": "alice", "exp": exp, "priority": 1.5}, secret)},
		{"string_rating", sign(t, jwt.MapClaims{"sub": "alice", "exp": exp, "rating": "high"}, secret)},
		{"oversized", sign(t, jwt.MapClaims{"sub": "alice", "exp": exp, "pad": strings.Repeat("x", auth.MaxTokenLen)}, secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRejected(t, a, tt.token)
		})
	}
	// Within the leeway a just-expired token still passes.
	skewed := sign(t, jwt.MapClaims{"sub": "alice", "exp": now.Add(-10 * time.Second).Unix()}, secret)
	if _, err := a.Verify(skewed); err != nil {
		t.Errorf("token expired 10s ago (within the 30s leeway): %v", err)
	}
}

// tamper changes the payload of a token without re-signing it.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	payload := []byte(parts[1])
	payload[len(payload)/2] ^= 1
	parts[1] = string(payload)
	return strings.Join(parts, ".")
}

func TestRandomSecretWhenEmpty(t *testing.T) {
	a, b := auth.New(nil, nil), auth.New(nil, nil)
	token, err := a.Issue(auth.Claims{UserID: "alice"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(token); err == nil {
		t.Error("two authorities without a secret accept each other's tokens: the secrets are not random")
	}
}

// wantRejected fails t unless a refuses token with the one error every
// refusal gets: unauthorized, a message that says nothing about why, and
// the reason kept as the cause for logs.
func wantRejected(t *testing.T, a *auth.Authority, token string) {
	t.Helper()
	c, err := a.Verify(token)
	if matchd.ErrorCode(err) != matchd.EUnauthorized {
		t.Fatalf("Verify = %+v, %v; want an unauthorized error", c, err)
	}
	if msg := matchd.ErrorMessage(err); msg != "missing or invalid session token" {
		t.Errorf("message %q tells the caller more than that the token is invalid", msg)
	}
	if errors.Unwrap(err) == nil {
		t.Errorf("error %v keeps no cause for the logs", err)
	}
}

// wantAccepted fails t unless a verifies token as user's.
func wantAccepted(t *testing.T, a *auth.Authority, token, user string) {
	t.Helper()
	c, err := a.Verify(token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.UserID != user {
		t.Errorf("UserID = %q, want %q", c.UserID, user)
	}
}

func TestPreviousSecret(t *testing.T) {
	clock := matchdtest.NewClock()
	current, previous := []byte("current-secret-0123456789"), []byte("previous-secret-0123456789")
	rotated, err := auth.NewFromConfig(auth.Config{Secret: current, PreviousSecret: previous, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	exp := clock.Now().Add(time.Hour).Unix()
	issued, err := rotated.Issue(auth.Claims{UserID: "alice"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		verify *auth.Authority
		token  string
		wantOK bool
	}{
		{"signed_with_current_accepted", rotated, sign(t, jwt.MapClaims{"sub": "alice", "exp": exp}, current), true},
		{"signed_with_previous_accepted", rotated, sign(t, jwt.MapClaims{"sub": "alice", "exp": exp}, previous), true},
		{"signed_with_neither_rejected", rotated, sign(t, jwt.MapClaims{"sub": "alice", "exp": exp}, []byte("some-other-secret-0123456")), false},
		{"issued_with_current", auth.New(current, clock), issued, true},
		{"never_issued_with_previous", auth.New(previous, clock), issued, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantOK {
				wantAccepted(t, tt.verify, tt.token, "alice")
			} else {
				wantRejected(t, tt.verify, tt.token)
			}
		})
	}
}

func TestIssuerAndAudience(t *testing.T) {
	clock := matchdtest.NewClock()
	exp := clock.Now().Add(time.Hour).Unix()
	claims := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "alice", "exp": exp}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name     string
		issuer   string
		audience string
		claims   jwt.MapClaims
		wantOK   bool
	}{
		{"unchecked_when_not_configured", "", "", claims(jwt.MapClaims{"iss": "anyone", "aud": "anything"}), true},
		{"matching_iss", "https://idp.example", "", claims(jwt.MapClaims{"iss": "https://idp.example"}), true},
		{"wrong_iss", "https://idp.example", "", claims(jwt.MapClaims{"iss": "https://evil.example"}), false},
		{"missing_iss", "https://idp.example", "", claims(nil), false},
		{"matching_aud_string", "", "matchd", claims(jwt.MapClaims{"aud": "matchd"}), true},
		{"matching_aud_in_list", "", "matchd", claims(jwt.MapClaims{"aud": []string{"chat", "matchd"}}), true},
		{"wrong_aud", "", "matchd", claims(jwt.MapClaims{"aud": []string{"chat"}}), false},
		{"missing_aud", "", "matchd", claims(nil), false},
		{"both_matching", "https://idp.example", "matchd", claims(jwt.MapClaims{"iss": "https://idp.example", "aud": "matchd"}), true},
		{"both_configured_aud_missing", "https://idp.example", "matchd", claims(jwt.MapClaims{"iss": "https://idp.example"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := auth.NewFromConfig(auth.Config{Secret: secret, Issuer: tt.issuer, Audience: tt.audience, Clock: clock})
			if err != nil {
				t.Fatal(err)
			}
			token := sign(t, tt.claims, secret)
			if tt.wantOK {
				wantAccepted(t, a, token, "alice")
			} else {
				wantRejected(t, a, token)
			}
			// The tokens it issues itself (dev login) carry iss and aud, so
			// they verify under the same checks.
			issued, err := a.Issue(auth.Claims{UserID: "bob"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			wantAccepted(t, a, issued, "bob")
		})
	}
}

func TestNewFromConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  auth.Config
		want string
	}{
		{"previous_without_current", auth.Config{PreviousSecret: []byte("old")}, "previous secret"},
		{"jwks_url_not_http", auth.Config{JWKSURL: "ftp://idp.example/jwks.json"}, "http(s)"},
		{"jwks_url_relative", auth.Config{JWKSURL: "/jwks.json"}, "http(s)"},
		{"jwks_url_no_host", auth.Config{JWKSURL: "https://"}, "http(s)"},
		{"jwks_url_unparsable", auth.Config{JWKSURL: "http://[::1"}, "JWKS URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := auth.NewFromConfig(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewFromConfig = %v, %v; want an error mentioning %q", a, err, tt.want)
			}
		})
	}
}
