package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/matchd/matchd"
)

// JWKS fetching limits. The cache is refreshed lazily, when a token needs
// it, never by a background goroutine.
const (
	// JWKSCacheTTL is how long fetched keys are used before a token
	// triggers a refresh.
	JWKSCacheTTL = 10 * time.Minute
	// JWKSMinRefetch is the least time between two fetch attempts, so a
	// flood of tokens naming unknown kids cannot make matchd hammer the
	// identity provider.
	JWKSMinRefetch = 30 * time.Second
	// JWKSTimeout bounds one fetch, however the HTTP client is set up.
	JWKSTimeout = 10 * time.Second
	// MaxJWKSSize bounds the JWKS response body.
	MaxJWKSSize = 1 << 20
)

// minRSABits is the smallest RSA modulus accepted from a JWKS.
const minRSABits = 2048

// CheckJWKSURL reports whether raw is usable as a JWKS URL: an absolute
// http or https URL with a host.
func CheckJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("JWKS URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("JWKS URL %q is not an http(s) URL", raw)
	}
	return nil
}

// publicKey is one usable JWKS key and the one algorithm it may verify.
type publicKey struct {
	alg string // "RS256" or "ES256"
	key crypto.PublicKey
}

// keySet is a lazily fetched, cached JWKS.
//
// Fetch policy: a lookup fetches when the cache is older than JWKSCacheTTL
// or lacks the kid, but at most one attempt starts per JWKSMinRefetch, and
// only one is in flight at a time (lookups for an unknown kid wait for it;
// lookups for a known kid use the cached key meanwhile). A failed fetch
// keeps the cached keys. mu is never held during the HTTP request.
type keySet struct {
	url    string
	client *http.Client
	clock  matchd.Clock
	logger *slog.Logger

	mu        sync.Mutex
	keys      map[string]publicKey
	fetched   time.Time     // last successful fetch; zero before
	attempted time.Time     // last fetch attempt; zero before
	inflight  chan struct{} // closed when the running fetch ends; nil when none runs
}

func newKeySet(url string, client *http.Client, clock matchd.Clock, logger *slog.Logger) *keySet {
	if client == nil {
		client = &http.Client{Timeout: JWKSTimeout}
	}
	return &keySet{url: url, client: client, clock: clock, logger: logger}
}

// key returns the key named kid, fetching the JWKS first if the policy
// above allows and calls for it.
func (s *keySet) key(kid string) (publicKey, bool) {
	s.mu.Lock()
	k, ok := s.keys[kid]
	now := s.clock.Now()
	fresh := !s.fetched.IsZero() && now.Sub(s.fetched) < JWKSCacheTTL
	if ok && (fresh || s.inflight != nil) {
		s.mu.Unlock()
		return k, true
	}
	if wait := s.inflight; wait != nil {
		s.mu.Unlock()
		<-wait
		s.mu.Lock()
		k, ok = s.keys[kid]
		s.mu.Unlock()
		return k, ok
	}
	if !s.attempted.IsZero() && now.Sub(s.attempted) < JWKSMinRefetch {
		s.mu.Unlock()
		return k, ok
	}
	s.attempted = now
	done := make(chan struct{})
	s.inflight = done
	s.mu.Unlock()

	keys, err := s.fetch()

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.logger.Warn("JWKS fetch failed; keeping the cached keys", "url", s.url, "cached_keys", len(s.keys), "err", err)
	} else {
		s.keys, s.fetched = keys, now
	}
	s.inflight = nil
	close(done)
	k, ok = s.keys[kid]
	return k, ok
}

// jwk is the JSON form of one key (RFC 7517, RFC 7518 section 6).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// fetch downloads and parses the JWKS. Keys matchd cannot use (other
// types, curves or algorithms, encryption keys, keys without a kid,
// malformed or weak keys) are skipped; a set with no usable key is an
// error, so a broken response never replaces good cached keys.
func (s *keySet) fetch() (map[string]publicKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), JWKSTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS: status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxJWKSSize {
		return nil, fmt.Errorf("JWKS is larger than %d bytes", MaxJWKSSize)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := make(map[string]publicKey, len(set.Keys))
	var skipped []string
	for _, j := range set.Keys {
		k, err := j.publicKey()
		if err == nil && j.Kid == "" {
			err = errors.New("no kid")
		}
		if err == nil && keys[j.Kid].key != nil {
			err = errors.New("duplicate kid")
		}
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%q: %v", j.Kid, err))
			continue
		}
		keys[j.Kid] = k
	}
	if len(skipped) > 0 {
		s.logger.Debug("JWKS keys skipped", "url", s.url, "skipped", skipped)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS has no usable key (%d keys, %d skipped)", len(set.Keys), len(skipped))
	}
	return keys, nil
}

// publicKey returns j as an RS256 or ES256 verification key.
func (j jwk) publicKey() (publicKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return publicKey{}, fmt.Errorf("use %q", j.Use)
	}
	switch j.Kty {
	case "RSA":
		if j.Alg != "" && j.Alg != "RS256" {
			return publicKey{}, fmt.Errorf("alg %q", j.Alg)
		}
		n, err := b64(j.N)
		if err != nil {
			return publicKey{}, fmt.Errorf("n: %w", err)
		}
		e, err := b64(j.E)
		if err != nil {
			return publicKey{}, fmt.Errorf("e: %w", err)
		}
		modulus := new(big.Int).SetBytes(n)
		if modulus.BitLen() < minRSABits {
			return publicKey{}, fmt.Errorf("RSA key of %d bits", modulus.BitLen())
		}
		exp := new(big.Int).SetBytes(e)
		if exp.Cmp(big.NewInt(3)) < 0 || exp.Bit(0) == 0 || exp.BitLen() > 31 {
			return publicKey{}, errors.New("bad RSA exponent")
		}
		return publicKey{alg: "RS256", key: &rsa.PublicKey{N: modulus, E: int(exp.Int64())}}, nil
	case "EC":
		if j.Alg != "" && j.Alg != "ES256" {
			return publicKey{}, fmt.Errorf("alg %q", j.Alg)
		}
		if j.Crv != "P-256" {
			return publicKey{}, fmt.Errorf("curve %q", j.Crv)
		}
		x, err := b64(j.X)
		if err != nil {
			return publicKey{}, fmt.Errorf("x: %w", err)
		}
		y, err := b64(j.Y)
		if err != nil {
			return publicKey{}, fmt.Errorf("y: %w", err)
		}
		if len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("P-256 coordinates must be 32 bytes")
		}
		// Rejects points off the curve (invalid-curve attacks).
		key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, err
		}
		return publicKey{alg: "ES256", key: key}, nil
	}
	return publicKey{}, fmt.Errorf("kty %q", j.Kty)
}

// b64 decodes base64url, which RFC 7515 says comes without padding;
// padding is tolerated.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
