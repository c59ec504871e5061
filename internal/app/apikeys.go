package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rotor-dev/rotor/internal/apikey"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/store"
)

// APIKeyStore is where the API key use cases keep keys: only their
// hashes.
type APIKeyStore interface {
	CreateAPIKey(ctx context.Context, key store.APIKey) error
	ListAPIKeys(ctx context.Context, org domain.OrgID) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, p store.RevokeAPIKeyParams) error
}

var _ APIKeyStore = store.Store(nil)

// API key lifetimes: a key without an expiry is a credential nobody
// remembers to rotate, exactly what rotor exists to prevent.
const (
	DefaultAPIKeyLifetime = 90 * 24 * time.Hour
	MaxAPIKeyLifetime     = 2 * 365 * 24 * time.Hour
	maxAPIKeyName         = 100
)

// NewAPIKey is what CreateAPIKey makes.
type NewAPIKey struct {
	// Name says what the key is for ("ci-deploy").
	Name string
	// Role is what the key may do in the scope's organization.
	Role Role
	// Lifetime is how long it works; 0 means DefaultAPIKeyLifetime, and
	// more than MaxAPIKeyLifetime is refused.
	Lifetime time.Duration
}

// APIKeyRow is an API key as the interfaces show it: never the key.
type APIKeyRow struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Status is active, expired or revoked.
	Status string `json:"status"`
}

// CreatedAPIKey is a key just made: its row, and the key itself, which is
// shown this once and kept nowhere. Key never prints, logs or marshals
// (secret.Value); Reveal it only to show it to whoever asked for it.
type CreatedAPIKey struct {
	APIKeyRow
	Key secret.Value `json:"-"`
}

// CreateAPIKey makes an API key for the scope's organization with the
// given role, keeps its hash and returns the key once.
func (s *Service) CreateAPIKey(ctx context.Context, scope Scope, req NewAPIKey) (_ *CreatedAPIKey, err error) {
	object := ObjectAPIKeys
	defer func() { s.record(ctx, scope, ActionManageAPIKeys, object, err, nil) }()
	if err := s.begin(ctx, scope, ActionManageAPIKeys, ObjectAPIKeys); err != nil {
		return nil, err
	}
	if s.apiKeys == nil {
		return nil, &UnavailableError{What: "API keys"}
	}
	name := strings.TrimSpace(req.Name)
	switch {
	case name == "":
		return nil, &InvalidError{Field: "name", Message: "is required: say what the key is for"}
	case utf8.RuneCountInString(name) > maxAPIKeyName || strings.ContainsFunc(name, isControl):
		return nil, &InvalidError{Field: "name", Message: fmt.Sprintf("must be at most %d printable characters", maxAPIKeyName)}
	}
	if _, err := ParseRole(string(req.Role)); err != nil {
		return nil, err
	}
	life := req.Lifetime
	switch {
	case life == 0:
		life = DefaultAPIKeyLifetime
	case life < time.Hour || life > MaxAPIKeyLifetime:
		return nil, &InvalidError{Field: "expires", Message: fmt.Sprintf("must be between 1h and %s", domain.FormatDuration(MaxAPIKeyLifetime))}
	}
	key, err := apikey.New(scope.Org)
	if err != nil {
		return nil, fmt.Errorf("make api key: %w", err)
	}
	object = APIKeyObject(key.ID)
	now := s.clock.Now().UTC()
	row := store.APIKey{
		Org: scope.Org, ID: key.ID, Name: name, Role: string(req.Role), Hash: apikey.Hash(key.Text),
		CreatedAt: now, CreatedBy: scope.Actor.String(), ExpiresAt: now.Add(life),
	}
	if err := s.apiKeys.CreateAPIKey(ctx, row); err != nil {
		return nil, fmt.Errorf("keep api key %s: %w", key.ID, err)
	}
	return &CreatedAPIKey{APIKeyRow: keyRow(row, now), Key: secret.New(key.Text)}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// ListAPIKeys lists the organization's API keys, oldest first, with their
// status now. The keys themselves are not kept, so never shown.
func (s *Service) ListAPIKeys(ctx context.Context, scope Scope) ([]APIKeyRow, error) {
	if err := s.begin(ctx, scope, ActionManageAPIKeys, ObjectAPIKeys); err != nil {
		return nil, err
	}
	if s.apiKeys == nil {
		return nil, &UnavailableError{What: "API keys"}
	}
	list, err := s.apiKeys.ListAPIKeys(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	now := s.clock.Now()
	rows := make([]APIKeyRow, 0, len(list))
	for _, k := range list {
		rows = append(rows, keyRow(k, now))
	}
	return rows, nil
}

// RevokeAPIKey revokes one of the organization's keys at once. Revoking
// a revoked key succeeds.
func (s *Service) RevokeAPIKey(ctx context.Context, scope Scope, id string) (err error) {
	object := APIKeyObject(id)
	defer func() { s.record(ctx, scope, ActionManageAPIKeys, object, err, nil) }()
	if err := s.begin(ctx, scope, ActionManageAPIKeys, object); err != nil {
		return err
	}
	if s.apiKeys == nil {
		return &UnavailableError{What: "API keys"}
	}
	if !apikey.IsID(id) {
		return &InvalidError{Field: "id", Message: fmt.Sprintf("must be a key id (%d characters a-z, 2-7), as 'rotor apikey list' shows", apikey.IDLen)}
	}
	err = s.apiKeys.RevokeAPIKey(ctx, store.RevokeAPIKeyParams{Org: scope.Org, ID: id, At: s.clock.Now().UTC()})
	if errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{Kind: "api key", Ref: id, Err: err}
	}
	return err
}

// keyRow shows a stored key as of now.
func keyRow(k store.APIKey, now time.Time) APIKeyRow {
	r := APIKeyRow{ID: k.ID, Name: k.Name, Role: Role(k.Role), CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, Status: "active"}
	switch {
	case !k.RevokedAt.IsZero():
		r.Status = "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		r.Status = "expired"
	}
	return r
}
