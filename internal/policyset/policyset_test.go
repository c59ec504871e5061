package policyset_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/policyset"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

const (
	tenantA = "aaaaaaaa-0000-4000-8000-000000000000"
	tenantB = "bbbbbbbb-0000-4000-8000-000000000000"
)

type bundle struct {
	st    *sqlite.Store
	clock *clock.Fake
	set   *policyset.Set
}

func setup(t *testing.T) *bundle {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	c := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	return &bundle{st: st, clock: c, set: policyset.New(st, c, nil, time.Minute)}
}

func policy(name, conn string, sel domain.Selector) domain.Policy {
	return domain.Policy{Name: name, Connection: conn, Selector: sel, Enabled: true, Kind: domain.KindSecret,
		Lifetime: domain.DefaultLifetime, RenewBefore: domain.DefaultRenewBefore(domain.DefaultLifetime), Overlap: domain.DefaultOverlap}
}

// provision gives org one connection "main" to tenant and the policies.
func (b *bundle) provision(t *testing.T, org domain.OrgID, tenant string, pols ...domain.Policy) {
	t.Helper()
	_, err := b.st.Provision(t.Context(), store.ProvisionParams{Org: org, Source: "rotor.yaml",
		Connections: []store.Connection{{Name: "main", TenantID: tenant, Cloud: "public", Purpose: "rotation",
			Identity: store.ConnectionIdentity{Method: "managed_identity"}}},
		Policies: pols})
	require.NoError(t, err)
}

func app(org domain.OrgID, tenant, name string) domain.Application {
	return domain.Application{Org: org, TenantID: tenant, ObjectID: "o-" + name, AppID: "a-" + name, DisplayName: name,
		Access: []domain.Access{{Connection: "main", CanChange: true}}}
}

func TestEachOrgIsGovernedByItsOwnPolicies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The same names in both organizations, and the same tenant.
	b.provision(t, "org-a", tenantA, policy("web", "main", domain.Selector{NamePrefix: "web-"}), policy("all", "main", domain.Selector{AllOwned: true}))
	b.provision(t, "org-b", tenantA, policy("web", "main", domain.Selector{NamePrefix: "nothing-"}))

	got := b.set.PolicyFor(app("org-a", tenantA, "web-1"))
	require.NotNil(t, got)
	require.Equal(t, "web", got.Name)
	require.Equal(t, "all", b.set.PolicyFor(app("org-a", tenantA, "api")).Name, "first match in order")
	require.Nil(t, b.set.PolicyFor(app("org-b", tenantA, "web-1")), "org B's web policy selects other names; org A's never applies")
	require.Nil(t, b.set.PolicyFor(app("org-a", tenantB, "web-1")), "a policy's connection must reach the app's tenant")
	require.Nil(t, b.set.PolicyFor(app("", tenantA, "web-1")), "an application without an organization has no policy")
	require.Nil(t, b.set.PolicyFor(app("org-c", tenantA, "web-1")), "an unknown organization has none")
}

func TestCachedUntilRefreshOrTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.provision(t, "org-a", tenantA, policy("web", "main", domain.Selector{NamePrefix: "web-"}))
	a := app("org-a", tenantA, "api")
	require.Nil(t, b.set.PolicyFor(a))

	b.provision(t, "org-a", tenantA, policy("all", "main", domain.Selector{AllOwned: true}))
	require.Nil(t, b.set.PolicyFor(a), "cached")
	require.NoError(t, b.set.Refresh(t.Context(), "org-a"))
	require.Equal(t, "all", b.set.PolicyFor(a).Name, "a plan's refresh sees the change")

	b.provision(t, "org-a", tenantA)
	require.NotNil(t, b.set.PolicyFor(a))
	b.clock.Advance(time.Minute)
	require.Nil(t, b.set.PolicyFor(a), "read again after the TTL")
}

func ptr[T any](v T) *T { return &v }

func TestApplicationSettingsAreLayeredOverThePolicy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	web := policy("web", "main", domain.Selector{NamePrefix: "web-"})
	web.Sinks = []domain.SinkSpec{{Type: "keyvault", Settings: map[string]any{"vault_url": "https://kv.vault.azure.net/", "secret": "{{ .App.DisplayName | slug }}"}}}
	b.provision(t, "org-a", tenantA, web)
	a := app("org-a", tenantA, "web-1")
	month := 30 * 24 * time.Hour
	require.NoError(t, b.st.PutApplicationSettings(t.Context(), store.ApplicationSettings{Org: "org-a", ObjectID: a.ObjectID,
		Settings: domain.AppSettings{Lifetime: &month, Enabled: ptr(false), KeyVaultSecret: ptr("web-1-override")}}))
	// Org B has settings for the same object id: they are B's alone.
	b.provision(t, "org-b", tenantA, web)
	require.NoError(t, b.st.PutApplicationSettings(t.Context(), store.ApplicationSettings{Org: "org-b", ObjectID: a.ObjectID,
		Settings: domain.AppSettings{Overlap: ptr(time.Hour)}}))

	got := b.set.PolicyFor(a)
	require.NotNil(t, got)
	require.Equal(t, "web", got.Name, "the name stays the policy's")
	require.Equal(t, month, got.Lifetime)
	require.False(t, got.Enabled)
	require.Equal(t, domain.DefaultOverlap, got.Overlap, "org B's setting does not reach org A")
	require.Equal(t, "web-1-override", got.Sinks[0].Settings["secret"])
	require.Equal(t, "https://kv.vault.azure.net/", got.Sinks[0].Settings["vault_url"], "an unset field is the policy's")
	o, ok := got.Overridden("lifetime")
	require.True(t, ok)
	require.Equal(t, "lifetime 30d (this application's setting; policy says 90d)", o.Message())

	base := b.set.GoverningPolicy(a)
	require.Equal(t, domain.DefaultLifetime, base.Lifetime, "the governing policy itself is untouched")
	require.Empty(t, base.Overrides)
	require.Equal(t, "{{ .App.DisplayName | slug }}", base.Sinks[0].Settings["secret"], "the cached policy's sink settings are not changed")
	other := app("org-a", tenantA, "web-2")
	require.Equal(t, domain.DefaultLifetime, b.set.PolicyFor(other).Lifetime, "another application of the policy is not changed")

	bApp := a
	bApp.Org = "org-b"
	require.Equal(t, time.Hour, b.set.PolicyFor(bApp).Overlap)
	require.Equal(t, domain.DefaultLifetime, b.set.PolicyFor(bApp).Lifetime)
}

func TestSettingsDoNotMakeAnApplicationGoverned(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.provision(t, "org-a", tenantA, policy("web", "main", domain.Selector{NamePrefix: "web-"}))
	a := app("org-a", tenantA, "api")
	require.NoError(t, b.st.PutApplicationSettings(t.Context(), store.ApplicationSettings{Org: "org-a", ObjectID: a.ObjectID,
		Settings: domain.AppSettings{Enabled: ptr(true), Lifetime: ptr(24 * time.Hour)}}))
	require.Nil(t, b.set.PolicyFor(a))
	require.Nil(t, b.set.GoverningPolicy(a))
}

func TestSettingsAreCachedWithThePolicies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.provision(t, "org-a", tenantA, policy("web", "main", domain.Selector{NamePrefix: "web-"}))
	a := app("org-a", tenantA, "web-1")
	require.Equal(t, domain.DefaultLifetime, b.set.PolicyFor(a).Lifetime)
	week := 7 * 24 * time.Hour
	require.NoError(t, b.st.PutApplicationSettings(t.Context(), store.ApplicationSettings{Org: "org-a", ObjectID: a.ObjectID,
		Settings: domain.AppSettings{Lifetime: &week}}))
	require.Equal(t, domain.DefaultLifetime, b.set.PolicyFor(a).Lifetime, "cached")
	b.clock.Advance(time.Minute)
	require.Equal(t, week, b.set.PolicyFor(a).Lifetime, "read again after the TTL")
}
