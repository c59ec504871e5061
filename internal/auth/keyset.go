package auth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rotor-dev/rotor/internal/clock"
)

// Key set defaults.
const (
	// DefaultKeyRefreshInterval is the shortest time between two fetches
	// of a JWKS caused by tokens naming a key rotor does not know: a
	// rolled-over key is picked up within it, and no stream of forged
	// tokens makes rotor fetch more often.
	DefaultKeyRefreshInterval = time.Minute
	// DefaultKeyMaxAge is how long fetched keys are trusted before they
	// are fetched again even for a known kid, so a key Entra stopped
	// publishing (a compromised one) stops validating within a day.
	DefaultKeyMaxAge = 24 * time.Hour
	// maxJWKSBytes bounds a JWKS document (Entra's are a few KB).
	maxJWKSBytes  = 1 << 20
	fetchTimeout  = 10 * time.Second
	minRSAKeyBits = 2048
)

// keySet is a JWKS with rotor's refresh rules, as go-oidc's KeySet: it
// verifies a JWT's signature with the published key its header names
// (kid), fetching the JWKS again when the kid is unknown (at most once per
// refreshInterval) or the keys are older than maxAge. A known kid whose
// signature fails never causes a fetch. go-oidc's RemoteKeySet fetches on
// every failed signature and keeps keys forever (docs/adr/0021).
type keySet struct {
	url             string
	client          *http.Client
	clock           clock.Clock
	log             *slog.Logger
	refreshInterval time.Duration
	maxAge          time.Duration

	// fetchMu serializes fetches: callers that wait on it find the keys
	// the first one fetched.
	fetchMu sync.Mutex

	mu        sync.RWMutex
	keys      map[string]*rsa.PublicKey
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt, successful or not
}

// sigNote is how a keySet tells the Validator, through go-oidc (which
// flattens its errors to text), why a signature was refused.
type sigNote struct{ reason Reason }

type sigNoteKey struct{}

func noteReason(ctx context.Context, r Reason) {
	if n, ok := ctx.Value(sigNoteKey{}).(*sigNote); ok {
		n.reason = r
	}
}

// VerifySignature implements oidc.KeySet. The verifier calling it has
// already refused every algorithm but RS256.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		noteReason(ctx, ReasonMalformed)
		return nil, errors.New("not a JWS with one RS256 signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	pub, err := k.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		noteReason(ctx, ReasonSignature)
		return nil, errors.New("signature does not verify with the key its kid names")
	}
	return payload, nil
}

// key returns the published key named kid. The JWKS is fetched when kid
// is unknown or the keys are older than maxAge, at most once per
// refreshInterval; when a fetch fails, the keys fetched before go on
// validating (Entra being unreachable does not lock callers out).
func (k *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if kid == "" {
		noteReason(ctx, ReasonUnknownKey)
		return nil, errors.New("token names no key")
	}
	pub, fresh, mayRefresh := k.cached(kid)
	if pub != nil && fresh {
		return pub, nil
	}
	var fetchErr error
	if mayRefresh {
		fetchErr = k.refresh(ctx, kid)
		pub, _, _ = k.cached(kid)
	}
	if pub != nil {
		return pub, nil
	}
	k.mu.RLock()
	none := k.keys == nil
	k.mu.RUnlock()
	if none {
		noteReason(ctx, ReasonUnavailable)
		return nil, fmt.Errorf("no signing keys: %w", cmpErr(fetchErr))
	}
	noteReason(ctx, ReasonUnknownKey)
	return nil, errors.New("no published key has the token's kid")
}

func cmpErr(err error) error {
	if err == nil {
		return errors.New("not fetched yet")
	}
	return err
}

// cached looks kid up: the key (nil when unknown), whether the keys are
// younger than maxAge, and whether an unknown kid may cause a fetch now.
func (k *keySet) cached(kid string) (pub *rsa.PublicKey, fresh, mayRefresh bool) {
	now := k.clock.Now()
	k.mu.RLock()
	defer k.mu.RUnlock()
	fresh = k.keys != nil && now.Sub(k.fetchedAt) < k.maxAge
	mayRefresh = k.triedAt.IsZero() || now.Sub(k.triedAt) >= k.refreshInterval
	return k.keys[kid], fresh, mayRefresh
}

// refresh fetches the JWKS, unless another caller did while this one
// waited (and now knows kid, or tried within refreshInterval).
func (k *keySet) refresh(ctx context.Context, kid string) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	if pub, fresh, may := k.cached(kid); (pub != nil && fresh) || !may {
		return nil
	}
	now := k.clock.Now()
	keys, err := k.fetch(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.triedAt = now
	if err != nil {
		k.log.Warn("fetching token signing keys failed; keeping the keys fetched before", "jwks_uri", k.url, "err", err)
		return err
	}
	k.keys, k.fetchedAt = keys, now
	k.log.Debug("token signing keys fetched", "jwks_uri", k.url, "keys", len(keys))
	return nil
}

// fetch reads the JWKS and keeps its RSA signing keys of at least 2048
// bits that have a kid.
func (k *keySet) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", k.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", k.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", k.url, maxJWKSBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.url, err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			continue // a key type go-jose does not know: not one rotor uses
		}
		pub, ok := jwk.Key.(*rsa.PublicKey)
		if !ok || jwk.KeyID == "" || (jwk.Use != "" && jwk.Use != "sig") ||
			(jwk.Algorithm != "" && jwk.Algorithm != string(jose.RS256)) || pub.N.BitLen() < minRSAKeyBits {
			continue
		}
		keys[jwk.KeyID] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s lists no RSA signing key", k.url)
	}
	return keys, nil
}
