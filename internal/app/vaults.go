package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// The vault picker: which Key Vaults a connection's identity can see (as
// Resource Manager lists them to it) and the names of a chosen vault's
// secrets, so a person choosing where an application's secret goes picks
// from what exists instead of typing a URL. Only names, tags and dates
// are read; a secret's value never is.
//
// A vault's secrets are listed only for a vault ListVaults returned for
// the same connection: the URL comes from the person, and rotor must not
// call whatever address it is given with an organization's identity.

// VaultCacheTTL is how long a connection's vault list (and a vault's
// secret list) is reused: the picker asks on every focus of the input,
// and Resource Manager's listings are slow and throttled.
const VaultCacheTTL = 60 * time.Second

// Vault is a Key Vault a connection's identity can see.
type Vault struct {
	Name string `json:"name"`
	// URL is the vault's address, https://…/ with a trailing slash.
	URL            string `json:"url"`
	Subscription   string `json:"subscription"`
	SubscriptionID string `json:"subscription_id"`
	ResourceGroup  string `json:"resource_group"`
	Location       string `json:"location"`
}

// VaultSecret is one secret of a vault, never with its value.
type VaultSecret struct {
	Name string `json:"name"`
	// ManagedByRotor is true when it carries rotor's managed-by tag: the
	// Key Vault sink writes new versions of it; any other secret it
	// refuses to overwrite unless the sink says adopt: true.
	ManagedByRotor bool `json:"managed_by_rotor"`
	// AppID is the application rotor manages it for (its rotor-app-id
	// tag), when it is rotor's.
	AppID   string    `json:"app_id,omitempty"`
	Enabled bool      `json:"enabled"`
	Updated time.Time `json:"updated,omitzero"`
}

// VaultFinder lists what a connection's identity sees in Azure. The
// composition root provides it (Resource Manager and Key Vault through
// Microsoft's SDK); errors Azure answered are *AzureError.
type VaultFinder interface {
	Vaults(ctx context.Context, org domain.OrgID, connection string) ([]Vault, error)
	VaultSecrets(ctx context.Context, org domain.OrgID, connection, vaultURL string) ([]VaultSecret, error)
}

// AzureError is Azure refusing, or failing, a listing made as a
// connection's identity. Its text tells the person what right the
// identity lacks.
type AzureError struct {
	Connection string
	// Service is "Resource Manager" or "Key Vault".
	Service string
	// What was being listed: "vaults" or "secrets of https://…/".
	What    string
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *AzureError) Error() string {
	var msg string
	switch {
	case e.Status == http.StatusForbidden && e.Service == "Key Vault":
		msg = fmt.Sprintf("the identity of connection %q cannot list %s: grant it the secrets list permission on the vault "+
			"(an access policy, or the Key Vault Reader role on an RBAC vault)", e.Connection, e.What)
	case e.Status == http.StatusForbidden:
		msg = fmt.Sprintf("the identity of connection %q cannot list %s: give it Reader on the subscription (or on the vault)", e.Connection, e.What)
	case e.Status == http.StatusUnauthorized:
		msg = fmt.Sprintf("%s refused the token of connection %q listing %s", e.Service, e.Connection, e.What)
	default:
		msg = fmt.Sprintf("connection %q: %s could not list %s", e.Connection, e.Service, e.What)
	}
	if e.Code != "" || e.Message != "" {
		msg += fmt.Sprintf(" (%s said %d %s: %s)", e.Service, e.Status, e.Code, e.Message)
	}
	return msg
}

// Unwrap returns the client's error.
func (e *AzureError) Unwrap() error { return e.Err }

// HTTPStatus is 424 when Azure refused the identity (401, 403) or did not
// find what was listed (404): the request depends on a right or an object
// the person can fix, and the message says which. Anything else Azure
// answered is 502.
func (e *AzureError) HTTPStatus() int {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return http.StatusFailedDependency
	}
	return http.StatusBadGateway
}

// ListVaults lists the Key Vaults the named connection's identity can see,
// by name. Operators choose where secrets go, so it takes the operator
// role, though it changes nothing.
func (s *Service) ListVaults(ctx context.Context, scope Scope, connection string) ([]Vault, error) {
	if err := s.begin(ctx, scope, ActionListVaults, VaultsObject(connection)); err != nil {
		return nil, err
	}
	return s.vaultsOf(ctx, scope.Org, connection)
}

// ListVaultSecrets lists the secrets of a vault the named connection's
// identity can see. vaultURL must be one ListVaults returns for that
// connection (compared without regard to case or a trailing slash), or
// the answer is a NotFoundError and nothing is called.
func (s *Service) ListVaultSecrets(ctx context.Context, scope Scope, connection, vaultURL string) ([]VaultSecret, error) {
	if err := s.begin(ctx, scope, ActionListVaults, VaultsObject(connection)); err != nil {
		return nil, err
	}
	if strings.TrimSpace(vaultURL) == "" {
		return nil, &InvalidError{Field: "vault", Message: "a vault URL is required"}
	}
	vaults, err := s.vaultsOf(ctx, scope.Org, connection)
	if err != nil {
		return nil, err
	}
	want := normalVaultURL(vaultURL)
	i := slices.IndexFunc(vaults, func(v Vault) bool { return normalVaultURL(v.URL) == want })
	if i < 0 {
		return nil, &NotFoundError{Kind: "vault visible to connection " + connection, Ref: vaultURL}
	}
	target := vaults[i].URL // the address Azure gave, not the one typed
	key := vaultKey{org: scope.Org, connection: connection, vault: want}
	if list, ok := s.vaultCache.secrets(key, s.clock.Now()); ok {
		return list, nil
	}
	list, err := s.vaultFinder.VaultSecrets(ctx, scope.Org, connection, target)
	if err != nil {
		return nil, s.azureError(connection, "secrets of "+target, err)
	}
	list = append([]VaultSecret{}, list...)
	slices.SortFunc(list, func(a, b VaultSecret) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	s.vaultCache.putSecrets(key, list, s.clock.Now())
	return slices.Clone(list), nil
}

// vaultsOf is the connection's vault list, from the cache when fresh.
func (s *Service) vaultsOf(ctx context.Context, org domain.OrgID, connection string) ([]Vault, error) {
	if s.vaultFinder == nil {
		return nil, &UnavailableError{What: "Key Vault discovery"}
	}
	if err := s.connectionExists(ctx, org, connection); err != nil {
		return nil, err
	}
	key := vaultKey{org: org, connection: connection}
	if list, ok := s.vaultCache.vaults(key, s.clock.Now()); ok {
		return list, nil
	}
	list, err := s.vaultFinder.Vaults(ctx, org, connection)
	if err != nil {
		return nil, s.azureError(connection, "vaults", err)
	}
	list = append([]Vault{}, list...)
	slices.SortFunc(list, func(a, b Vault) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	s.vaultCache.putVaults(key, list, s.clock.Now())
	return slices.Clone(list), nil
}

// connectionExists answers NotFoundError for a name that is no connection
// of the organization (another organization's included).
func (s *Service) connectionExists(ctx context.Context, org domain.OrgID, name string) error {
	if s.conns == nil {
		return &NotFoundError{Kind: "connection", Ref: name}
	}
	list, err := s.conns.OrgConnections(ctx, org)
	if err != nil {
		return fmt.Errorf("list connections: %w", err)
	}
	if !slices.ContainsFunc(list, func(c Connection) bool { return c.Name == name }) {
		return &NotFoundError{Kind: "connection", Ref: name}
	}
	return nil
}

// azureError names the connection and what was listed in an *AzureError,
// and wraps anything else with the same context.
func (s *Service) azureError(connection, what string, err error) error {
	var ae *AzureError
	if errors.As(err, &ae) {
		c := *ae
		c.Connection, c.What = connection, what
		return &c
	}
	return fmt.Errorf("connection %q: list %s: %w", connection, what, err)
}

// normalVaultURL is a vault URL compared: scheme and host in lower case,
// no trailing slash, nothing after the host's path.
func normalVaultURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(raw), "/"))
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimSuffix(u.EscapedPath(), "/")
}

// VaultsObject names a connection's vaults as an object.
func VaultsObject(connection string) string { return "vaults:" + connection }

// vaultKey is a cache entry's key: a connection's vault list (vault
// empty) or one vault's secrets.
type vaultKey struct {
	org        domain.OrgID
	connection string
	vault      string
}

type vaultEntry struct {
	at      time.Time
	vaults  []Vault
	secrets []VaultSecret
}

// vaultCache keeps listings for VaultCacheTTL. The zero value is ready.
type vaultCache struct {
	mu sync.Mutex
	m  map[vaultKey]vaultEntry
}

func (c *vaultCache) get(k vaultKey, now time.Time) (vaultEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || now.Sub(e.at) >= VaultCacheTTL || now.Before(e.at) {
		delete(c.m, k)
		return vaultEntry{}, false
	}
	return e, true
}

func (c *vaultCache) put(k vaultKey, e vaultEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[vaultKey]vaultEntry{}
	}
	// Entries of connections nobody asks about again are dropped here,
	// so the map holds at most what was asked within one TTL.
	for key, old := range c.m {
		if e.at.Sub(old.at) >= VaultCacheTTL {
			delete(c.m, key)
		}
	}
	c.m[k] = e
}

func (c *vaultCache) vaults(k vaultKey, now time.Time) ([]Vault, bool) {
	e, ok := c.get(k, now)
	return slices.Clone(e.vaults), ok
}

func (c *vaultCache) secrets(k vaultKey, now time.Time) ([]VaultSecret, bool) {
	e, ok := c.get(k, now)
	return slices.Clone(e.secrets), ok
}

func (c *vaultCache) putVaults(k vaultKey, v []Vault, now time.Time) {
	c.put(k, vaultEntry{at: now, vaults: v})
}

func (c *vaultCache) putSecrets(k vaultKey, s []VaultSecret, now time.Time) {
	c.put(k, vaultEntry{at: now, secrets: s})
}
