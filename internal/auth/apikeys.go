package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/apikey"
	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// APIKeyLookup finds a stored API key: what APIKeys needs of the store.
type APIKeyLookup interface {
	GetAPIKey(ctx context.Context, org domain.OrgID, id string) (*store.APIKey, error)
}

var _ APIKeyLookup = store.Store(nil)

// APIKeys authenticates rotor-issued API keys. It is safe for concurrent
// use.
type APIKeys struct {
	store APIKeyLookup
	clock clock.Clock
}

// NewAPIKeys authenticates keys kept in s.
func NewAPIKeys(s APIKeyLookup, opts ...Option) *APIKeys {
	o := buildOptions(opts)
	return &APIKeys{store: s, clock: o.clock}
}

// Authenticate checks a presented key: its shape, the stored key its
// organization and id name, the hash (in constant time), revocation and
// expiry. The principal holds the key's role in the key's organization
// only.
func (k *APIKeys) Authenticate(ctx context.Context, text string) (*Principal, error) {
	ref, err := apikey.Parse(text)
	if err != nil {
		return nil, refuse(ReasonMalformed, err)
	}
	row, err := k.store.GetAPIKey(ctx, ref.Org, ref.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Indistinguishable, to the caller, from a wrong secret.
		return nil, refuse(ReasonSignature, errors.New("no such key"))
	case err != nil:
		return nil, refuse(ReasonUnavailable, fmt.Errorf("look the key up: %w", err))
	}
	if !apikey.Matches(text, row.Hash) {
		return nil, refuse(ReasonSignature, errors.New("the key does not match"))
	}
	if !row.RevokedAt.IsZero() {
		return nil, refuse(ReasonRevoked, nil)
	}
	if !row.ExpiresAt.IsZero() && !k.clock.Now().Before(row.ExpiresAt) {
		return nil, refuse(ReasonExpired, nil)
	}
	role, err := app.ParseRole(row.Role)
	if err != nil {
		return nil, refuse(ReasonNoRole, err)
	}
	return &Principal{
		Actor:     app.Actor{Kind: app.ActorToken, ID: "apikey:" + row.ID, Name: row.Name},
		Method:    MethodAPIKey,
		Roles:     map[domain.OrgID]app.Role{row.Org: role},
		RateKey:   "apikey:" + string(row.Org) + "/" + row.ID,
		ExpiresAt: row.ExpiresAt,
	}, nil
}
