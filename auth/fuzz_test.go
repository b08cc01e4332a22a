package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/matchd/matchd"
	"github.com/matchd/matchd/auth"
)

// The fuzzed Authority's configuration. The clock never moves, so the valid
// seed tokens (here and in testdata/fuzz/FuzzVerify) stay valid for good.
var (
	fuzzSecret         = []byte("fuzz-secret-0123456789abcdef")
	fuzzPreviousSecret = []byte("fuzz-previous-secret-0123456789")
	fuzzNow            = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

const (
	fuzzIssuer   = "matchd-fuzz"
	fuzzAudience = "matchd-fuzz-clients"
)

type fuzzClock struct{}

func (fuzzClock) Now() time.Time { return fuzzNow }

func fuzzAuthority(t testing.TB) *auth.Authority {
	a, err := auth.NewFromConfig(auth.Config{
		Secret:         fuzzSecret,
		PreviousSecret: fuzzPreviousSecret,
		Issuer:         fuzzIssuer,
		Audience:       fuzzAudience,
		Clock:          fuzzClock{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fuzzClaims returns claims that the fuzzed Authority accepts, with extra
// overriding or (when nil) deleting fields.
func fuzzClaims(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice",
		"iss": fuzzIssuer,
		"aud": fuzzAudience,
		"iat": fuzzNow.Unix(),
		"exp": fuzzNow.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func fuzzSign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fuzzB64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// fuzzSeeds returns the in-code seed tokens: those Verify must accept,
// those it must refuse, and odd ones that our secret signed, which it may
// do either with (a check on the seeds themselves).
func fuzzSeeds(t testing.TB) (accept, refuse, either []string) {
	hs := func(extra jwt.MapClaims) string {
		return fuzzSign(t, jwt.SigningMethodHS256, fuzzSecret, fuzzClaims(extra))
	}
	good := hs(nil)
	previous := fuzzSign(t, jwt.SigningMethodHS256, fuzzPreviousSecret, fuzzClaims(jwt.MapClaims{"sub": "bob", "rating": 1500.5, "priority": 2}))
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, fuzzClaims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	payload := fuzzB64(`{"sub":"alice","iss":"matchd-fuzz","aud":"matchd-fuzz-clients","iat":1767323045,"exp":1767326645}`)
	// Signs header.payload with the current secret, whatever the header says.
	hmacWith := func(header string) string {
		in := fuzzB64(header) + "." + payload
		sig, err := jwt.SigningMethodHS256.Sign(in, fuzzSecret)
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	accept = []string{good, previous}
	either = []string{
		hmacWith(`{"alg":"none","alg":"HS256"}`),       // duplicate alg, the last one counts
		hmacWith(`{"alg":"HS256","crit":["exp"]}`),     // crit header (jwt/v5 ignores crit)
		hmacWith(`{"alg":"HS256","typ":"JWT"}` + "\n"), // odd header bytes
	}
	refuse = []string{
		hs(jwt.MapClaims{"exp": fuzzNow.Add(-time.Hour).Unix()}),                       // expired
		hs(jwt.MapClaims{"nbf": fuzzNow.Add(time.Hour).Unix()}),                        // not yet valid
		hs(jwt.MapClaims{"iat": fuzzNow.Add(time.Hour).Unix()}),                        // issued in the future
		hs(jwt.MapClaims{"exp": nil}),                                                  // no expiry
		hs(jwt.MapClaims{"exp": "tomorrow"}),                                           // expiry not a number
		hs(jwt.MapClaims{"exp": 1e300}),                                                // absurd expiry
		hs(jwt.MapClaims{"sub": "alice bob"}),                                          // sub not a player id
		hs(jwt.MapClaims{"sub": strings.Repeat("a", matchd.MaxPlayerIDLen+1)}),         // sub too long
		hs(jwt.MapClaims{"sub": nil}),                                                  // no sub
		hs(jwt.MapClaims{"sub": 42}),                                                   // sub not a string
		hs(jwt.MapClaims{"iss": "someone-else"}),                                       // wrong issuer
		hs(jwt.MapClaims{"aud": []string{"x", "y"}}),                                   // wrong audience
		hs(jwt.MapClaims{"pad": strings.Repeat("x", auth.MaxTokenLen)}),                // oversized
		fuzzSign(t, jwt.SigningMethodHS256, []byte("not-the-secret"), fuzzClaims(nil)), // forged
		fuzzSign(t, jwt.SigningMethodHS512, fuzzSecret, fuzzClaims(nil)),               // algorithm not configured
		none, // alg none
		fuzzB64(`{"alg":"RS256","typ":"JWT","kid":"k1"}`) + "." + payload + "." + fuzzB64(strings.Repeat("\x01", 256)), // RS256 without a JWKS
		hmacWith(`{"alg":"none","typ":"JWT"}`),    // HMAC-signed but claims none
		hmacWith(`{"alg":"HS256","alg":"none"}`),  // duplicate alg, the last one counts
		good[:len(good)/2],                        // truncated
		good[:strings.LastIndexByte(good, '.')+1], // signature stripped
		good + "=",                                                       // padded
		"Bearer " + good,                                                 // header value, not a token
		good + "." + good,                                                // too many segments
		"", ".", "..", "a.b.c", "\x00", "eyJ", "not a token", "e30.e30.", // garbage
		strings.Repeat("A", auth.MaxTokenLen+1), // oversized garbage
	}
	return accept, refuse, either
}

// FuzzVerify checks that no token panics Verify, that every refusal is
// the same unauthorized error (telling a forger which check failed helps
// them), and that every accepted token names a valid player and really is
// signed with one of the test's secrets. The fuzzer cannot forge an HMAC,
// so a token it mutated and Verify accepted would be a real bug.
func FuzzVerify(f *testing.F) {
	a := fuzzAuthority(f)
	accept, refuse, either := fuzzSeeds(f)
	for _, s := range accept {
		if _, err := a.Verify(s); err != nil {
			f.Fatalf("valid seed %.60q: Verify error = %v", s, err)
		}
	}
	for _, s := range refuse {
		if _, err := a.Verify(s); err == nil {
			f.Fatalf("invalid seed %.60q: Verify accepted it", s)
		}
	}
	for _, s := range slices.Concat(accept, refuse, either) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := a.Verify(token)
		if err != nil {
			var e *matchd.Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify(%q) error %T %v is not a *matchd.Error", token, err, err)
			}
			if e.Code != matchd.EUnauthorized || e.Message != "missing or invalid session token" {
				t.Fatalf("Verify(%q) error = {%q, %q}, want {%q, %q}", token, e.Code, e.Message, matchd.EUnauthorized, "missing or invalid session token")
			}
			return
		}
		if !matchd.ValidPlayerID(c.UserID) {
			t.Fatalf("Verify(%q) accepted invalid sub %q", token, c.UserID)
		}
		if len(token) > auth.MaxTokenLen {
			t.Fatalf("Verify accepted a %d-byte token", len(token))
		}
		if !c.ExpiresAt.Add(auth.Leeway).After(fuzzNow) {
			t.Fatalf("Verify(%q) accepted a token that expired at %v", token, c.ExpiresAt)
		}
		// Check the signature independently of Verify's parser: the token
		// must be header.payload.signature with an HS256 header and an
		// HMAC made with a test secret.
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("Verify accepted %q: not three segments", token)
		}
		var header map[string]any
		raw, err := jwt.NewParser().DecodeSegment(parts[0])
		if err == nil {
			err = json.Unmarshal(raw, &header)
		}
		if err != nil {
			t.Fatalf("Verify accepted %q: header %v", token, err)
		}
		if header["alg"] != "HS256" {
			t.Fatalf("Verify accepted %q: alg %v", token, header["alg"])
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatalf("Verify accepted %q: signature %v", token, err)
		}
		signed := parts[0] + "." + parts[1]
		ok := false
		for _, key := range [][]byte{fuzzSecret, fuzzPreviousSecret} {
			if jwt.SigningMethodHS256.Verify(signed, sig, key) == nil {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("Verify accepted %q, which no test secret signed", token)
		}
	})
}
