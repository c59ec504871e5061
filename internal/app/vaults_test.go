package app_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
)

// The vault picker's rules (role, organization, the vault URL must be one
// the connection sees, the cache) are the application layer's, so they
// are tested here with a finder that counts calls; the finder the server
// provides is tested against the simulator below.

type nopStore struct{ app.Store }
type nopEngine struct{ app.Engine }
type nopPolicies struct{ app.PolicySource }

// orgConns lists each organization's connection names.
type orgConns struct {
	app.ConnectionSource
	names map[domain.OrgID][]string
}

func (c orgConns) OrgConnections(_ context.Context, org domain.OrgID) ([]app.Connection, error) {
	var out []app.Connection
	for _, n := range c.names[org] {
		out = append(out, app.Connection{Name: n})
	}
	return out, nil
}

// countingFinder answers from maps and records every call.
type countingFinder struct {
	mu      sync.Mutex
	calls   []string
	vaults  map[string][]app.Vault       // by org/connection
	secrets map[string][]app.VaultSecret // by vault URL
	err     error
}

func (f *countingFinder) Vaults(_ context.Context, org domain.OrgID, conn string) ([]app.Vault, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "vaults "+string(org)+"/"+conn)
	if f.err != nil {
		return nil, f.err
	}
	return f.vaults[string(org)+"/"+conn], nil
}

func (f *countingFinder) VaultSecrets(_ context.Context, org domain.OrgID, conn, vaultURL string) ([]app.VaultSecret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "secrets "+string(org)+"/"+conn+" "+vaultURL)
	return f.secrets[vaultURL], nil
}

func (f *countingFinder) taken() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

type vaultBundle struct {
	svc    *app.Service
	finder *countingFinder
	clock  *clock.Fake
	// operator, viewer and other act in org "a"; other's org is "b".
	operator, viewer, other app.Scope
}

const kvA = "https://kv-a.vault.azure.net/"

func setupVaults(t *testing.T) vaultBundle {
	t.Helper()
	f := &countingFinder{
		vaults: map[string][]app.Vault{
			"a/prod": {{Name: "kv-z", URL: "https://kv-z.vault.azure.net/"}, {Name: "kv-a", URL: kvA, Subscription: "sub", ResourceGroup: "rg"}},
			"b/prod": {{Name: "kv-b", URL: "https://kv-b.vault.azure.net/"}},
		},
		secrets: map[string][]app.VaultSecret{kvA: {{Name: "web-secret", ManagedByRotor: true}, {Name: "db", ManagedByRotor: false}}},
	}
	roles := map[string]app.Role{"op": app.RoleOperator, "viewer": app.RoleViewer, "other": app.RoleAdmin}
	orgOf := map[string]domain.OrgID{"op": "a", "viewer": "a", "other": "b"}
	authz := app.AuthorizerFunc(func(_ context.Context, sc app.Scope, a app.Action, o string) error {
		if orgOf[sc.Actor.ID] != sc.Org || !roles[sc.Actor.ID].Permits(a) {
			return &app.DeniedError{Actor: sc.Actor, Action: a, Object: o, Reason: "role"}
		}
		return nil
	})
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	svc := app.New(app.Deps{
		Store: nopStore{}, Engine: nopEngine{}, Policies: nopPolicies{},
		Connections: orgConns{names: map[domain.OrgID][]string{"a": {"prod"}, "b": {"prod", "b-only"}}},
		Vaults:      f, Clock: clk, Authorizer: authz,
	})
	user := func(id string) app.Scope {
		return app.Scope{Org: orgOf[id], Actor: app.Actor{Kind: app.ActorUser, ID: id}}
	}
	return vaultBundle{svc: svc, finder: f, clock: clk, operator: user("op"), viewer: user("viewer"), other: user("other")}
}

func TestListVaultsNeedsOperator(t *testing.T) {
	t.Parallel()
	b := setupVaults(t)
	_, err := b.svc.ListVaults(t.Context(), b.viewer, "prod")
	var denied *app.DeniedError
	require.ErrorAs(t, err, &denied)
	_, err = b.svc.ListVaultSecrets(t.Context(), b.viewer, "prod", kvA)
	require.ErrorAs(t, err, &denied)
	require.Empty(t, b.finder.taken(), "a refused call asks Azure nothing")

	vaults, err := b.svc.ListVaults(t.Context(), b.operator, "prod")
	require.NoError(t, err)
	require.Equal(t, []string{"kv-a", "kv-z"}, vaultNames(vaults), "by name")
}

func TestListVaultsStaysInItsOrganization(t *testing.T) {
	t.Parallel()
	b := setupVaults(t)
	// b-only is org b's connection: from org a it does not exist.
	_, err := b.svc.ListVaults(t.Context(), b.operator, "b-only")
	var nf *app.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.Equal(t, http.StatusNotFound, app.HTTPStatus(err))
	// Both orgs have a "prod": each sees its own vaults, and org b's vault
	// URL is no vault of org a's connection.
	va, err := b.svc.ListVaults(t.Context(), b.operator, "prod")
	require.NoError(t, err)
	vb, err := b.svc.ListVaults(t.Context(), b.other, "prod")
	require.NoError(t, err)
	require.Equal(t, []string{"kv-b"}, vaultNames(vb))
	require.NotEqual(t, va, vb)
	_, err = b.svc.ListVaultSecrets(t.Context(), b.operator, "prod", "https://kv-b.vault.azure.net/")
	require.ErrorAs(t, err, &nf)
}

func TestListVaultSecretsOnlyForAListedVault(t *testing.T) {
	t.Parallel()
	b := setupVaults(t)
	for _, typed := range []string{
		"https://evil.example/",
		"https://kv-a.vault.azure.net.evil.example/",
		"https://127.0.0.1:8443/",
		"https://kv-a.vault.azure.net/secrets/x",
	} {
		_, err := b.svc.ListVaultSecrets(t.Context(), b.operator, "prod", typed)
		var nf *app.NotFoundError
		require.ErrorAs(t, err, &nf, typed)
	}
	for _, c := range b.finder.taken() {
		require.NotContains(t, c, "secrets", "no secrets listing was made for a URL the identity does not see")
	}
	_, err := b.svc.ListVaultSecrets(t.Context(), b.operator, "prod", "")
	var inv *app.InvalidError
	require.ErrorAs(t, err, &inv)

	// Case and the trailing slash do not matter; the call goes to the
	// URL Azure listed.
	secrets, err := b.svc.ListVaultSecrets(t.Context(), b.operator, "prod", "HTTPS://KV-A.vault.azure.net")
	require.NoError(t, err)
	require.Equal(t, []app.VaultSecret{{Name: "db"}, {Name: "web-secret", ManagedByRotor: true}}, secrets)
	require.Equal(t, []string{"secrets a/prod " + kvA}, b.finder.taken())
}

func TestVaultListingsAreCachedForAMinute(t *testing.T) {
	t.Parallel()
	b := setupVaults(t)
	ctx := t.Context()
	for range 3 {
		_, err := b.svc.ListVaults(ctx, b.operator, "prod")
		require.NoError(t, err)
		_, err = b.svc.ListVaultSecrets(ctx, b.operator, "prod", kvA)
		require.NoError(t, err)
	}
	require.Equal(t, []string{"vaults a/prod", "secrets a/prod " + kvA}, b.finder.taken())

	// Another organization's connection of the same name has its own entry.
	_, err := b.svc.ListVaults(ctx, b.other, "prod")
	require.NoError(t, err)
	require.Equal(t, []string{"vaults b/prod"}, b.finder.taken())

	b.clock.Advance(app.VaultCacheTTL - time.Second)
	_, err = b.svc.ListVaults(ctx, b.operator, "prod")
	require.NoError(t, err)
	require.Empty(t, b.finder.taken())

	b.clock.Advance(time.Second)
	_, err = b.svc.ListVaults(ctx, b.operator, "prod")
	require.NoError(t, err)
	require.Equal(t, []string{"vaults a/prod"}, b.finder.taken())
}

func TestListVaultsClassifiesAzureRefusals(t *testing.T) {
	t.Parallel()
	b := setupVaults(t)
	b.finder.err = &app.AzureError{Service: "Resource Manager", Status: http.StatusForbidden, Code: "AuthorizationFailed", Message: "no",
		Err: errors.New("sdk")}
	_, err := b.svc.ListVaults(t.Context(), b.operator, "prod")
	var ae *app.AzureError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "prod", ae.Connection)
	require.Equal(t, http.StatusFailedDependency, app.HTTPStatus(err))
	require.Contains(t, err.Error(), `the identity of connection "prod" cannot list vaults: give it Reader on the subscription`)
	require.Contains(t, err.Error(), "AuthorizationFailed")

	// A failure is not cached.
	b.finder.err = nil
	_, err = b.svc.ListVaults(t.Context(), b.operator, "prod")
	require.NoError(t, err)
	require.Len(t, b.finder.taken(), 2)

	kv := &app.AzureError{Connection: "prod", Service: "Key Vault", What: "secrets of " + kvA, Status: http.StatusForbidden}
	require.Contains(t, kv.Error(), "grant it the secrets list permission")
}

func TestListVaultsUnavailableWithoutFinder(t *testing.T) {
	t.Parallel()
	svc := app.New(app.Deps{Store: nopStore{}, Engine: nopEngine{}, Policies: nopPolicies{}})
	_, err := svc.ListVaults(t.Context(), app.Scope{Org: "a", Actor: app.CLI}, "prod")
	var un *app.UnavailableError
	require.ErrorAs(t, err, &un)
}

func vaultNames(vs []app.Vault) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

// TestListVaultsThroughTheSimulator is the whole path: the server's
// finder lists, as the contoso connection's identity, what the
// simulator's Resource Manager shows it.
func TestListVaultsThroughTheSimulator(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tn, ok := b.info.Tenant("contoso")
	require.True(t, ok)
	vaults, err := b.app.ListVaults(t.Context(), b.cli, "contoso")
	require.NoError(t, err)
	require.Equal(t, []app.Vault{{Name: "kv-contoso", URL: tn.KeyVaults[0].URL, Subscription: tn.Subscriptions[0].DisplayName,
		SubscriptionID: tn.Subscriptions[0].ID, ResourceGroup: "rg-rotor", Location: "westeurope"}}, vaults)

	secrets, err := b.app.ListVaultSecrets(t.Context(), b.cli, "contoso", tn.KeyVaults[0].URL)
	require.NoError(t, err)
	require.NotNil(t, secrets)

	// kv-contoso-finance exists, in the same subscription, but the
	// identity has no role on it.
	_, err = b.app.ListVaultSecrets(t.Context(), b.cli, "contoso", tn.KeyVaults[1].URL)
	var nf *app.NotFoundError
	require.ErrorAs(t, err, &nf)
}
