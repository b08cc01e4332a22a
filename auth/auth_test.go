package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/matchdtest"
)

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
			c, err := a.Verify(tt.token)
			if matchd.ErrorCode(err) != matchd.EUnauthorized {
				t.Fatalf("Verify = %+v, %v; want an unauthorized error", c, err)
			}
			if msg := matchd.ErrorMessage(err); msg != "missing or invalid session token" {
				t.Errorf("message %q tells the caller more than that the token is invalid", msg)
			}
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
