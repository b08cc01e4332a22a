package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/matchd/matchd/auth"
	"github.com/matchd/matchd/matchdtest"
)

// idp is an identity provider's JWKS endpoint served by the test.
type idp struct {
	srv      *httptest.Server
	requests atomic.Int32

	mu   sync.Mutex
	body string // the JWKS document
	down bool   // answer 503
}

func newIDP(t *testing.T, keys ...map[string]any) *idp {
	t.Helper()
	p := &idp{}
	p.publish(t, keys...)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		fmt.Fprint(w, p.body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// publish replaces the JWKS with keys.
func (p *idp) publish(t *testing.T, keys ...map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	p.serve(string(b))
}

// serve replaces the JWKS with a raw document.
func (p *idp) serve(body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.body = body
}

func (p *idp) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// authority returns an Authority that trusts p's JWKS.
func (p *idp) authority(t *testing.T, clock *matchdtest.Clock) *auth.Authority {
	t.Helper()
	a, err := auth.NewFromConfig(auth.Config{Secret: secret, JWKSURL: p.srv.URL + "/jwks.json", HTTPClient: p.srv.Client(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PrivateKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(t *testing.T, kid string, k *ecdsa.PrivateKey) map[string]any {
	t.Helper()
	point, err := k.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])}
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signKid returns a token with claims signed by key with method, naming
// kid in its header (none when kid is empty).
func signKid(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyJWKS(t *testing.T) {
	clock := matchdtest.NewClock()
	rsaKey, ecKey, unpublished := newRSAKey(t), newECKey(t), newRSAKey(t)
	p := newIDP(t, rsaJWK("rsa-1", rsaKey), ecJWK(t, "ec-1", ecKey))
	a := p.authority(t, clock)
	alice := jwt.MapClaims{"sub": "alice", "exp": clock.Now().Add(time.Hour).Unix()}

	pkix, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pkcs1 := x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)
	issued, err := a.Issue(auth.Claims{UserID: "alice"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		token  string
		wantOK bool
	}{
		{"rs256_valid", signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", alice), true},
		{"es256_valid", signKid(t, jwt.SigningMethodES256, ecKey, "ec-1", alice), true},
		{"hs256_issued_still_valid", issued, true},
		{"rs256_key_not_published", signKid(t, jwt.SigningMethodRS256, unpublished, "rsa-1", alice), false},
		{"rs256_without_kid", signKid(t, jwt.SigningMethodRS256, rsaKey, "", alice), false},
		{"rs256_naming_ec_key", signKid(t, jwt.SigningMethodRS256, rsaKey, "ec-1", alice), false},
		{"es256_naming_rsa_key", signKid(t, jwt.SigningMethodES256, ecKey, "rsa-1", alice), false},
		{"rs384_not_configured", signKid(t, jwt.SigningMethodRS384, rsaKey, "rsa-1", alice), false},
		{"ps256_not_configured", signKid(t, jwt.SigningMethodPS256, rsaKey, "rsa-1", alice), false},
		{"es384_not_configured", signKid(t, jwt.SigningMethodES384, newECKeyP384(t), "ec-1", alice), false},
		// Algorithm confusion: an HS256 token whose HMAC key is the RSA
		// public key, which anyone can read from the JWKS.
		{"alg_confusion_pem_public_key", signKid(t, jwt.SigningMethodHS256, pemKey, "rsa-1", alice), false},
		{"alg_confusion_der_public_key", signKid(t, jwt.SigningMethodHS256, pkix, "rsa-1", alice), false},
		{"alg_confusion_pkcs1_public_key", signKid(t, jwt.SigningMethodHS256, pkcs1, "rsa-1", alice), false},
		{"alg_confusion_modulus", signKid(t, jwt.SigningMethodHS256, rsaKey.N.Bytes(), "rsa-1", alice), false},
		{"alg_none", signKid(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", alice), false},
		{"rs256_expired", signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", jwt.MapClaims{"sub": "alice", "exp": clock.Now().Add(-time.Minute).Unix()}), false},
		{"rs256_bad_sub", signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", jwt.MapClaims{"sub": "al ice", "exp": clock.Now().Add(time.Hour).Unix()}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantOK {
				wantAccepted(t, a, tt.token, "alice")
			} else {
				wantRejected(t, a, tt.token)
			}
		})
	}
	if got := p.requests.Load(); got != 1 {
		t.Errorf("JWKS requests = %d, want 1: the keys are cached", got)
	}
}

func ecJWKP384(t *testing.T, kid string, k *ecdsa.PrivateKey) map[string]any {
	t.Helper()
	point, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-384", "x": b64(point[1:49]), "y": b64(point[49:])}
}

func newECKeyP384(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyWithoutJWKSRefusesPublicKeyTokens(t *testing.T) {
	clock := matchdtest.NewClock()
	a := auth.New(secret, clock)
	alice := jwt.MapClaims{"sub": "alice", "exp": clock.Now().Add(time.Hour).Unix()}
	tests := []struct {
		name  string
		token string
	}{
		{"rs256", signKid(t, jwt.SigningMethodRS256, newRSAKey(t), "rsa-1", alice)},
		{"es256", signKid(t, jwt.SigningMethodES256, newECKey(t), "ec-1", alice)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRejected(t, a, tt.token) })
	}
}

// TestJWKSKeyRotation follows an identity provider that starts signing
// with a new key before matchd has seen it.
func TestJWKSKeyRotation(t *testing.T) {
	clock := matchdtest.NewClock()
	oldKey, newKey := newRSAKey(t), newRSAKey(t)
	p := newIDP(t, rsaJWK("old", oldKey))
	a := p.authority(t, clock)
	alice := jwt.MapClaims{"sub": "alice", "exp": clock.Now().Add(time.Hour).Unix()}
	signedOld := signKid(t, jwt.SigningMethodRS256, oldKey, "old", alice)
	signedNew := signKid(t, jwt.SigningMethodRS256, newKey, "new", alice)

	steps := []struct {
		name         string
		advance      time.Duration
		publish      []map[string]any // replaces the JWKS before the step when set
		token        string
		wantOK       bool
		wantRequests int32
	}{
		{"first_token_fetches", 0, nil, signedOld, true, 1},
		{"unknown_kid_before_publication", JWKSMinRefetchPlus, nil, signedNew, false, 2},
		{"published_but_refetch_too_soon", 0, []map[string]any{rsaJWK("old", oldKey), rsaJWK("new", newKey)}, signedNew, false, 2},
		{"old_key_still_cached", 0, nil, signedOld, true, 2},
		{"accepted_after_refetch", JWKSMinRefetchPlus, nil, signedNew, true, 3},
		{"new_key_cached", 0, nil, signedNew, true, 3},
		{"old_key_dropped_at_ttl", auth.JWKSCacheTTL, []map[string]any{rsaJWK("new", newKey)}, signedOld, false, 4},
		{"new_key_after_ttl_refresh", 0, nil, signedNew, true, 4},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if s.publish != nil {
			p.publish(t, s.publish...)
		}
		t.Run(s.name, func(t *testing.T) {
			if s.wantOK {
				wantAccepted(t, a, s.token, "alice")
			} else {
				wantRejected(t, a, s.token)
			}
			if got := p.requests.Load(); got != s.wantRequests {
				t.Errorf("JWKS requests = %d, want %d", got, s.wantRequests)
			}
		})
	}
}

// JWKSMinRefetchPlus is just past the refetch rate limit.
const JWKSMinRefetchPlus = auth.JWKSMinRefetch + time.Second

// TestJWKSRefetchRateLimited floods matchd with tokens naming random kids,
// in parallel: the identity provider sees at most one request per
// JWKSMinRefetch.
func TestJWKSRefetchRateLimited(t *testing.T) {
	clock := matchdtest.NewClock()
	key := newRSAKey(t)
	p := newIDP(t, rsaJWK("rsa-1", key))
	a := p.authority(t, clock)
	exp := clock.Now().Add(2 * time.Hour).Unix()
	flood := func() {
		tokens := make([]string, 50)
		for i := range tokens {
			tokens[i] = signKid(t, jwt.SigningMethodRS256, key, fmt.Sprintf("random-%d-%d", i, clock.Now().Unix()), jwt.MapClaims{"sub": "mallory", "exp": exp})
		}
		var wg sync.WaitGroup
		for _, token := range tokens {
			wg.Go(func() {
				if _, err := a.Verify(token); err == nil {
					t.Error("a token naming an unknown kid verified")
				}
			})
		}
		wg.Wait()
	}

	steps := []struct {
		name         string
		advance      time.Duration
		wantRequests int32
	}{
		{"first_flood_one_fetch", 0, 1},
		{"second_flood_within_interval", auth.JWKSMinRefetch / 2, 1},
		{"just_before_interval", auth.JWKSMinRefetch/2 - time.Second, 1},
		{"after_interval_one_more", 2 * time.Second, 2},
		{"again_within_interval", time.Second, 2},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		t.Run(s.name, func(t *testing.T) {
			flood()
			if got := p.requests.Load(); got != s.wantRequests {
				t.Errorf("JWKS requests = %d, want %d", got, s.wantRequests)
			}
		})
	}
	wantAccepted(t, a, signKid(t, jwt.SigningMethodRS256, key, "rsa-1", jwt.MapClaims{"sub": "alice", "exp": exp}), "alice")
}

// TestJWKSOutage: once fetched, keys keep working while the identity
// provider is unreachable, even past the cache TTL.
func TestJWKSOutage(t *testing.T) {
	tests := []struct {
		name string
		fail func(p *idp)
	}{
		{"status_503", func(p *idp) { p.setDown(true) }},
		{"garbage_document", func(p *idp) { p.serve("<html>maintenance</html>") }},
		{"no_usable_keys", func(p *idp) { p.serve(`{"keys":[]}`) }},
		{"server_gone", func(p *idp) { p.srv.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := matchdtest.NewClock()
			key := newRSAKey(t)
			p := newIDP(t, rsaJWK("rsa-1", key))
			a := p.authority(t, clock)
			token := signKid(t, jwt.SigningMethodRS256, key, "rsa-1", jwt.MapClaims{"sub": "alice", "exp": clock.Now().Add(2 * time.Hour).Unix()})
			wantAccepted(t, a, token, "alice")

			tt.fail(p)
			clock.Advance(auth.JWKSCacheTTL + time.Minute)
			before := p.requests.Load()
			wantAccepted(t, a, token, "alice")
			if tt.name != "server_gone" && p.requests.Load() != before+1 {
				t.Errorf("JWKS requests = %d, want %d: a stale cache is refreshed", p.requests.Load(), before+1)
			}
			clock.Advance(JWKSMinRefetchPlus)
			wantAccepted(t, a, token, "alice")
		})
	}
}

// TestJWKSDocument checks which keys of a JWKS matchd is willing to use.
func TestJWKSDocument(t *testing.T) {
	clock := matchdtest.NewClock()
	rsaKey, ecKey := newRSAKey(t), newECKey(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384 := newECKeyP384(t)
	alice := jwt.MapClaims{"sub": "alice", "exp": clock.Now().Add(time.Hour).Unix()}
	offCurve := ecJWK(t, "ec", ecKey)
	offCurve["y"] = b64(make([]byte, 32))
	with := func(m map[string]any, k string, v any) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		c[k] = v
		return c
	}
	good := rsaJWK("good", rsaKey) // every document below carries it, so only the key under test is judged

	tests := []struct {
		name   string
		key    map[string]any // published beside good under kid "k"
		token  string
		wantOK bool
	}{
		{"rsa_without_alg_or_use", map[string]any{"kty": "RSA", "kid": "k", "n": b64(rsaKey.N.Bytes()), "e": "AQAB"}, signKid(t, jwt.SigningMethodRS256, rsaKey, "k", alice), true},
		{"padded_base64", with(rsaJWK("k", rsaKey), "n", base64.URLEncoding.EncodeToString(rsaKey.N.Bytes())), signKid(t, jwt.SigningMethodRS256, rsaKey, "k", alice), true},
		{"ec_with_alg", with(ecJWK(t, "k", ecKey), "alg", "ES256"), signKid(t, jwt.SigningMethodES256, ecKey, "k", alice), true},
		{"rsa_1024_bits", rsaJWK("k", weak), signKid(t, jwt.SigningMethodRS256, weak, "k", alice), false},
		{"rsa_for_encryption", with(rsaJWK("k", rsaKey), "use", "enc"), signKid(t, jwt.SigningMethodRS256, rsaKey, "k", alice), false},
		{"rsa_for_another_alg", with(rsaJWK("k", rsaKey), "alg", "RS512"), signKid(t, jwt.SigningMethodRS256, rsaKey, "k", alice), false},
		{"rsa_even_exponent", with(rsaJWK("k", rsaKey), "e", b64([]byte{2})), signKid(t, jwt.SigningMethodRS256, rsaKey, "k", alice), false},
		{"ec_point_off_curve", with(offCurve, "kid", "k"), signKid(t, jwt.SigningMethodES256, ecKey, "k", alice), false},
		{"ec_p384", ecJWKP384(t, "k", p384), signKid(t, jwt.SigningMethodES384, p384, "k", alice), false},
		{"ec_p256_point_labelled_p384", with(ecJWK(t, "k", ecKey), "crv", "P-384"), signKid(t, jwt.SigningMethodES256, ecKey, "k", alice), false},
		{"ec_for_another_alg", with(ecJWK(t, "k", ecKey), "alg", "ES384"), signKid(t, jwt.SigningMethodES256, ecKey, "k", alice), false},
		{"symmetric_key", map[string]any{"kty": "oct", "kid": "k", "k": b64(secret)}, signKid(t, jwt.SigningMethodHS256, []byte("x"), "k", alice), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIDP(t, good, tt.key)
			a := p.authority(t, clock)
			if tt.wantOK {
				wantAccepted(t, a, tt.token, "alice")
			} else {
				wantRejected(t, a, tt.token)
			}
			wantAccepted(t, a, signKid(t, jwt.SigningMethodRS256, rsaKey, "good", alice), "alice")
		})
	}
}

// TestJWKSResponseBounded: a JWKS larger than MaxJWKSSize is refused,
// whatever keys it holds.
func TestJWKSResponseBounded(t *testing.T) {
	clock := matchdtest.NewClock()
	key := newRSAKey(t)
	jwk, err := json.Marshal(rsaJWK("rsa-1", key))
	if err != nil {
		t.Fatal(err)
	}
	token := signKid(t, jwt.SigningMethodRS256, key, "rsa-1", jwt.MapClaims{"sub": "alice", "exp": clock.Now().Add(time.Hour).Unix()})
	tests := []struct {
		name   string
		size   int
		wantOK bool
	}{
		{"just_under_limit", auth.MaxJWKSSize - 1024, true},
		{"over_limit", auth.MaxJWKSSize + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIDP(t)
			doc := `{"keys":[` + string(jwk) + `],"pad":"`
			p.serve(doc + strings.Repeat("x", tt.size-len(doc)-2) + `"}`)
			a := p.authority(t, clock)
			if tt.wantOK {
				wantAccepted(t, a, token, "alice")
			} else {
				wantRejected(t, a, token)
			}
		})
	}
}

// TestOversizedTokenNeverFetches: a token over MaxTokenLen is refused
// before it is parsed, so even one naming an unknown kid costs nothing.
func TestOversizedTokenNeverFetches(t *testing.T) {
	clock := matchdtest.NewClock()
	key := newRSAKey(t)
	p := newIDP(t, rsaJWK("rsa-1", key))
	a := p.authority(t, clock)
	claims := jwt.MapClaims{"sub": "alice", "exp": clock.Now().Add(time.Hour).Unix(), "pad": strings.Repeat("x", auth.MaxTokenLen)}
	tests := []struct {
		name  string
		token string
	}{
		{"known_kid", signKid(t, jwt.SigningMethodRS256, key, "rsa-1", claims)},
		{"unknown_kid", signKid(t, jwt.SigningMethodRS256, key, "unknown", claims)},
		{"hs256", sign(t, claims, secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRejected(t, a, tt.token)
			if got := p.requests.Load(); got != 0 {
				t.Errorf("JWKS requests = %d, want 0: the token was parsed", got)
			}
		})
	}
}
