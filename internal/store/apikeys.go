package store

import (
	"context"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// APIKeyStore keeps rotor-issued API keys: never a key, only its hash
// (internal/apikey), with the organization and role it grants and when it
// stops working.
type APIKeyStore interface {
	// CreateAPIKey stores a new key. ErrConflict when the org already has
	// a key with that id, ErrNotFound when the org does not exist.
	CreateAPIKey(ctx context.Context, key APIKey) error
	// GetAPIKey returns one key of an org (revoked and expired ones
	// too); ErrNotFound when there is none.
	GetAPIKey(ctx context.Context, org domain.OrgID, id string) (*APIKey, error)
	// ListAPIKeys lists an org's keys, oldest first (then by id).
	ListAPIKeys(ctx context.Context, org domain.OrgID) ([]APIKey, error)
	// RevokeAPIKey marks a key revoked at p.At. Revoking a revoked key
	// keeps the first time and succeeds; ErrNotFound when there is none.
	RevokeAPIKey(ctx context.Context, p RevokeAPIKeyParams) error
}

// APIKey is a stored API key.
type APIKey struct {
	Org domain.OrgID
	// ID is the key's id: part of the key, so a presented key is found
	// without scanning.
	ID   string
	Name string
	// Role is the rotor role the key grants in Org (admin, operator,
	// viewer).
	Role string
	// Hash is the SHA-256 of the key (apikey.Hash), 32 bytes.
	Hash      []byte
	CreatedAt time.Time
	// CreatedBy is who made it ("kind:id" of the actor).
	CreatedBy string
	// ExpiresAt is when it stops working; zero: never.
	ExpiresAt time.Time
	// RevokedAt is when it was revoked; zero: it was not.
	RevokedAt time.Time
}

// RevokeAPIKeyParams names the key to revoke and when.
type RevokeAPIKeyParams struct {
	Org domain.OrgID
	ID  string
	At  time.Time
}
