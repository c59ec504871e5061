package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

const source = "/etc/rotor/rotor.yaml"

// newConn builds a connection of org from one valid base.
func newConn(org domain.OrgID, name string, tweaks ...func(*store.Connection)) store.Connection {
	c := store.Connection{
		Org: org, Name: name, TenantID: tenant1, Cloud: "public", Purpose: "rotation",
		Identity: store.ConnectionIdentity{
			Method: "client_secret", ClientID: appID(1),
			ClientSecret: &store.SecretRef{Kind: store.SecretEnv, Env: "CONTOSO_SECRET"},
		},
		AuxiliaryTenants: []string{tenant2},
	}
	for _, tw := range tweaks {
		tw(&c)
	}
	return c
}

// newPolicy builds a policy rotating through connection from one valid
// base.
func newPolicy(name, connection string, tweaks ...func(*domain.Policy)) domain.Policy {
	p := domain.Policy{
		Name: name, Connection: connection, Selector: domain.Selector{NamePrefix: "web-"},
		Enabled: true, Kind: domain.KindSecret, Lifetime: 90 * 24 * time.Hour, RenewBefore: 30 * 24 * time.Hour,
		Overlap: 24 * time.Hour, NotifyBefore: 14 * 24 * time.Hour, Verify: true,
		Sinks: []domain.SinkSpec{
			{Type: "keyvault", Settings: map[string]any{"vault_url": "https://kv.vault.azure.net", "secret": "{{.AppName}}"}},
			{Type: "webhook", Settings: map[string]any{"url": "https://hooks.example", "key": map[string]any{"env": "HOOK_KEY"}}},
		},
	}
	for _, tw := range tweaks {
		tw(&p)
	}
	return p
}

// sameConn compares a stored connection with what was written, ignoring
// the store's own stamps.
func sameConn(t *testing.T, want store.Connection, got store.Connection) {
	t.Helper()
	require.False(t, got.CreatedAt.IsZero())
	require.False(t, got.UpdatedAt.IsZero())
	got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

func testConnectionRoundTrip(t *testing.T, b *bundle) {
	for _, tc := range []struct {
		name string
		c    store.Connection
	}{
		{"ClientSecretFromEnv", newConn(b.org, "env")},
		{"ClientSecretFromFile", newConn(b.org, "file", func(c *store.Connection) {
			c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretFile, File: "/run/secrets/contoso"}
		})},
		{"ClientSecretInKeyVault", newConn(b.org, "kv", func(c *store.Connection) {
			c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretKeyVault, VaultURL: "https://kv.vault.azure.net", Secret: "contoso"}
		})},
		{"ClientSecretInlineMarker", newConn(b.org, "inline", func(c *store.Connection) {
			c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretInline}
		})},
		{"Certificate", newConn(b.org, "cert", func(c *store.Connection) {
			c.Identity = store.ConnectionIdentity{Method: "certificate", ClientID: appID(2), CertificateFile: "/certs/c.pem",
				SendCertificateChain: true, CertificatePassword: &store.SecretRef{Kind: store.SecretEnv, Env: "PW"}}
		})},
		{"ManagedIdentity", newConn(b.org, "mi", func(c *store.Connection) {
			c.Identity = store.ConnectionIdentity{Method: "managed_identity", ManagedIdentityClientID: appID(3)}
			c.AuxiliaryTenants = nil
			c.Purpose = "read"
		})},
		{"WorkloadIdentityOnTheSimulator", newConn(b.org, "wi", func(c *store.Connection) {
			c.Identity = store.ConnectionIdentity{Method: "workload_identity", ClientID: appID(4), FederatedTokenFile: "/var/run/token"}
			c.Cloud, c.SimFile = "sim", "/tmp/sim/sim.json"
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: tc.c}))
			got, err := b.s.GetConnection(b.ctx, b.org, tc.c.Name)
			require.NoError(t, err)
			sameConn(t, tc.c, *got)
		})
	}
	list, err := b.s.ListConnections(b.ctx, b.org)
	require.NoError(t, err)
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"cert", "env", "file", "inline", "kv", "mi", "wi"}, names)
}

func testConnectionRejectsBadReferences(t *testing.T, b *bundle) {
	for _, tc := range []struct {
		name  string
		tweak func(*store.Connection)
	}{
		{"NoSecretForClientSecret", func(c *store.Connection) { c.Identity.ClientSecret = nil }},
		{"UnknownKind", func(c *store.Connection) { c.Identity.ClientSecret = &store.SecretRef{Kind: "value"} }},
		{"EnvWithAFileToo", func(c *store.Connection) {
			c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretEnv, Env: "X", File: "/y"}
		}},
		{"InlineCarryingSomething", func(c *store.Connection) {
			c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretInline, Secret: "looks-like-a-value"}
		}},
		{"KeyVaultOverHTTP", func(c *store.Connection) {
			c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretKeyVault, VaultURL: "http://kv", Secret: "s"}
		}},
		{"SecretOnAManagedIdentity", func(c *store.Connection) { c.Identity.Method = "managed_identity" }},
		{"UnknownMethod", func(c *store.Connection) { c.Identity.Method = "password" }},
		{"NoTenant", func(c *store.Connection) { c.TenantID = "" }},
		{"UnknownCloud", func(c *store.Connection) { c.Cloud = "mars" }},
		{"SimulatorWithoutItsFile", func(c *store.Connection) { c.Cloud = "sim" }},
		{"SimFileOffTheSimulator", func(c *store.Connection) { c.SimFile = "/tmp/sim.json" }},
		{"UnknownPurpose", func(c *store.Connection) { c.Purpose = "admin" }},
		{"RelativeSecretFile", func(c *store.Connection) {
			c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretFile, File: "secrets/contoso"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, "bad", tc.tweak)})
			require.Error(t, err)
			_, err = b.s.GetConnection(b.ctx, b.org, "bad")
			require.ErrorIs(t, err, store.ErrNotFound)
		})
	}
}

func testConnectionUpdateAndDelete(t *testing.T, b *bundle) {
	c := newConn(b.org, "contoso")
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: c}))
	c.TenantID = tenant2
	c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretFile, File: "/s"}
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: c}))
	got, err := b.s.GetConnection(b.ctx, b.org, "contoso")
	require.NoError(t, err)
	sameConn(t, c, *got)

	require.NoError(t, b.s.RecordConnectionHealth(b.ctx, store.ConnectionHealth{Org: b.org, Connection: "contoso", Success: true, At: b.t0, Roles: []string{"Application.ReadWrite.OwnedBy"}}))
	require.NoError(t, b.s.RecordConnectionHealth(b.ctx, store.ConnectionHealth{Org: b.other, Connection: "contoso", Success: true, At: b.t0}))
	require.NoError(t, b.s.DeleteConnection(b.ctx, store.DeleteParams{Org: b.org, Name: "contoso"}))
	_, err = b.s.GetConnection(b.ctx, b.org, "contoso")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, b.s.DeleteConnection(b.ctx, store.DeleteParams{Org: b.org, Name: "contoso"}), store.ErrNotFound)
	// Its health goes with it: a connection made again under the name (another
	// tenant, another identity) must not show the old one's sign-ins and roles.
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, "contoso")}))
	hs, err := b.s.ListConnectionHealth(b.ctx, b.org)
	require.NoError(t, err)
	require.Empty(t, hs, "the deleted connection's health outlived it")
	hs, err = b.s.ListConnectionHealth(b.ctx, b.other)
	require.NoError(t, err)
	require.Len(t, hs, 1, "another org's connection of the same name keeps its health")
}

// testCatalogOrgsAreIsolated writes objects of the same names into two
// orgs and checks that no read, write or delete of one reaches the other.
func testCatalogOrgsAreIsolated(t *testing.T, b *bundle) {
	a := newConn(b.org, "shared")
	o := newConn(b.other, "shared", func(c *store.Connection) {
		c.TenantID = tenant2
		c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretEnv, Env: "OTHER_SECRET"}
	})
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: a}))
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: o}))
	require.NoError(t, b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.org, Policy: newPolicy("web", "shared")}))
	require.NoError(t, b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.other, Policy: newPolicy("web", "shared", func(p *domain.Policy) {
		p.Selector = domain.Selector{AllOwned: true}
	})}))

	gotA, err := b.s.GetConnection(b.ctx, b.org, "shared")
	require.NoError(t, err)
	require.Equal(t, tenant1, gotA.TenantID)
	gotO, err := b.s.GetConnection(b.ctx, b.other, "shared")
	require.NoError(t, err)
	require.Equal(t, tenant2, gotO.TenantID)
	require.Equal(t, "OTHER_SECRET", gotO.Identity.ClientSecret.Env)

	pa, err := b.s.GetPolicy(b.ctx, b.org, "web")
	require.NoError(t, err)
	require.Equal(t, "web-", pa.Policy.Selector.NamePrefix)
	po, err := b.s.GetPolicy(b.ctx, b.other, "web")
	require.NoError(t, err)
	require.True(t, po.Policy.Selector.AllOwned)

	// A policy cannot name another org's connection.
	err = b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.other, Policy: newPolicy("sneaky", "only-in-a")})
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, "only-in-a")}))
	err = b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.other, Policy: newPolicy("sneaky", "only-in-a")})
	require.ErrorIs(t, err, store.ErrNotFound, "org B's policy must not reach org A's connection")
	_, err = b.s.GetConnection(b.ctx, b.other, "only-in-a")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Provisioning one org's set leaves the other's identical names alone.
	res, err := b.s.Provision(b.ctx, store.ProvisionParams{Org: b.other, Source: source})
	require.NoError(t, err)
	require.Empty(t, res.ConnectionsDeleted, "org B's shared connection was not provisioned")

	// Deleting in one org leaves the other's.
	require.NoError(t, b.s.DeletePolicy(b.ctx, store.DeleteParams{Org: b.other, Name: "web"}))
	require.NoError(t, b.s.DeleteConnection(b.ctx, store.DeleteParams{Org: b.other, Name: "shared"}))
	_, err = b.s.GetPolicy(b.ctx, b.org, "web")
	require.NoError(t, err)
	_, err = b.s.GetConnection(b.ctx, b.org, "shared")
	require.NoError(t, err)
	list, err := b.s.ListConnections(b.ctx, b.other)
	require.NoError(t, err)
	require.Empty(t, list)
	pols, err := b.s.ListPolicies(b.ctx, b.other)
	require.NoError(t, err)
	require.Empty(t, pols)

	// An org that does not exist owns nothing and accepts nothing.
	err = b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn("nobody", "shared")})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testPolicyRoundTripAndOrder(t *testing.T, b *bundle) {
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, "c")}))
	// UI-made policies, out of name order.
	require.NoError(t, b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.org, Policy: newPolicy("z-first", "c"), Position: 0}))
	require.NoError(t, b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.org, Policy: newPolicy("a-second", "c"), Position: 1}))
	require.NoError(t, b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.org, Policy: newPolicy("b-third", "c"), Position: 1}))
	// Provisioned policies come first, in file order, whatever their names.
	_, err := b.s.Provision(b.ctx, store.ProvisionParams{
		Org: b.org, Source: source,
		Connections: []store.Connection{newConn(b.org, "p")},
		Policies: []domain.Policy{
			newPolicy("yaml-narrow", "p", func(p *domain.Policy) { p.Selector = domain.Selector{IDs: []string{appID(1), objectID(2)}} }),
			newPolicy("yaml-broad", "p", func(p *domain.Policy) {
				p.Selector = domain.Selector{AllOwned: true}
				p.Enabled, p.Verify, p.RetireUnmanaged = false, false, true
				p.Sinks = nil
			}),
		},
	})
	require.NoError(t, err)
	pols, err := b.s.ListPolicies(b.ctx, b.org)
	require.NoError(t, err)
	var names []string
	for _, p := range pols {
		names = append(names, p.Policy.Name)
	}
	require.Equal(t, []string{"yaml-narrow", "yaml-broad", "z-first", "a-second", "b-third"}, names)

	got, err := b.s.GetPolicy(b.ctx, b.org, "z-first")
	require.NoError(t, err)
	want := newPolicy("z-first", "c")
	require.Equal(t, want.Sinks[0].Type, got.Policy.Sinks[0].Type)
	require.Equal(t, "{{.AppName}}", got.Policy.Sinks[0].Settings["secret"])
	require.Equal(t, map[string]any{"env": "HOOK_KEY"}, got.Policy.Sinks[1].Settings["key"])
	got.Policy.Sinks, want.Sinks = nil, nil
	require.Equal(t, want, got.Policy)
	require.False(t, got.Provisioned)

	broad, err := b.s.GetPolicy(b.ctx, b.org, "yaml-broad")
	require.NoError(t, err)
	require.True(t, broad.Provisioned)
	require.Equal(t, source, broad.Source)
	require.Equal(t, 1, broad.Position)
	require.False(t, broad.Policy.Enabled)
	require.False(t, broad.Policy.Verify)
	require.True(t, broad.Policy.RetireUnmanaged)
	require.Empty(t, broad.Policy.Sinks)
	narrow, err := b.s.GetPolicy(b.ctx, b.org, "yaml-narrow")
	require.NoError(t, err)
	require.Equal(t, []string{appID(1), objectID(2)}, narrow.Policy.Selector.IDs)
	require.True(t, narrow.Policy.Certificate.IsZero())

	// A certificate policy keeps its certificate settings (the bootstrap
	// as a reference), and a change to them alone is an update.
	spec := domain.CertificateSpec{KeyType: "rsa-3072", Subject: "CN=payroll, O=Contoso", DNSNames: []string{"payroll.example.com"},
		Bootstrap: map[string]any{"file": "/run/secrets/boot.pem"}}
	certPol := newPolicy("certs", "c", func(p *domain.Policy) { p.Kind, p.Certificate = domain.KindCertificate, spec })
	require.NoError(t, b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.org, Policy: certPol, Position: 3}))
	gotCert, err := b.s.GetPolicy(b.ctx, b.org, "certs")
	require.NoError(t, err)
	require.Equal(t, domain.KindCertificate, gotCert.Policy.Kind)
	require.Equal(t, spec, gotCert.Policy.Certificate)
	certPol.Certificate.KeyType = "rsa-4096"
	require.NoError(t, b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.org, Policy: certPol, Position: 3}))
	gotCert, err = b.s.GetPolicy(b.ctx, b.org, "certs")
	require.NoError(t, err)
	require.Equal(t, "rsa-4096", gotCert.Policy.Certificate.KeyType)

	// An invalid policy is refused.
	err = b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.org, Policy: newPolicy("bad", "c", func(p *domain.Policy) { p.RenewBefore = p.Lifetime })})
	require.Error(t, err)
}

// testProvisionedAreReadOnlyElsewhere: the UI and the API (writes without
// ProvisionedBy) cannot change or delete what provisioning wrote, and
// provisioning cannot take over what they made.
func testProvisionedAreReadOnlyElsewhere(t *testing.T, b *bundle) {
	_, err := b.s.Provision(b.ctx, store.ProvisionParams{
		Org: b.org, Source: source,
		Connections: []store.Connection{newConn(b.org, "yaml-conn")},
		Policies:    []domain.Policy{newPolicy("yaml-pol", "yaml-conn")},
	})
	require.NoError(t, err)

	var pe *store.ProvisionedError
	err = b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, "yaml-conn", func(c *store.Connection) { c.TenantID = tenant2 })})
	require.ErrorIs(t, err, store.ErrProvisioned)
	require.True(t, errors.As(err, &pe))
	require.Equal(t, "connection", pe.Kind)
	require.Equal(t, source, pe.Source)
	require.ErrorIs(t, b.s.DeleteConnection(b.ctx, store.DeleteParams{Org: b.org, Name: "yaml-conn"}), store.ErrProvisioned)
	require.ErrorIs(t, b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.org, Policy: newPolicy("yaml-pol", "yaml-conn")}), store.ErrProvisioned)
	require.ErrorIs(t, b.s.DeletePolicy(b.ctx, store.DeleteParams{Org: b.org, Name: "yaml-pol"}), store.ErrProvisioned)
	got, err := b.s.GetConnection(b.ctx, b.org, "yaml-conn")
	require.NoError(t, err)
	require.Equal(t, tenant1, got.TenantID, "the refused write changed nothing")
	require.True(t, got.Provisioned)

	// The other org's object of the same name is not provisioned: it is
	// editable there.
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.other, "yaml-conn")}))
	require.NoError(t, b.s.DeleteConnection(b.ctx, store.DeleteParams{Org: b.other, Name: "yaml-conn"}))

	// Provisioning does not take over a UI-made object of the same name.
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, "ui-conn")}))
	_, err = b.s.Provision(b.ctx, store.ProvisionParams{
		Org: b.org, Source: source,
		Connections: []store.Connection{newConn(b.org, "yaml-conn"), newConn(b.org, "ui-conn")},
	})
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = b.s.GetPolicy(b.ctx, b.org, "yaml-pol")
	require.NoError(t, err, "the failed provisioning rolled back entirely (it would have deleted yaml-pol)")
	ui, err := b.s.GetConnection(b.ctx, b.org, "ui-conn")
	require.NoError(t, err)
	require.False(t, ui.Provisioned)
}

func testProvisionIsDeclarativeAndIdempotent(t *testing.T, b *bundle) {
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, "ui")}))
	require.NoError(t, b.s.UpsertPolicy(b.ctx, store.UpsertPolicyParams{Org: b.org, Policy: newPolicy("ui-pol", "ui")}))
	first := store.ProvisionParams{
		Org: b.org, Source: source,
		Connections: []store.Connection{newConn(b.org, "a"), newConn(b.org, "b")},
		Policies:    []domain.Policy{newPolicy("p1", "a"), newPolicy("p2", "b")},
	}
	res, err := b.s.Provision(b.ctx, first)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, res.ConnectionsCreated)
	require.Equal(t, []string{"p1", "p2"}, res.PoliciesCreated)
	require.True(t, res.Changed())
	before, err := b.s.GetConnection(b.ctx, b.org, "a")
	require.NoError(t, err)

	res, err = b.s.Provision(b.ctx, first)
	require.NoError(t, err)
	require.False(t, res.Changed(), "a second start changes nothing: %+v", res)
	require.Equal(t, []string{"a", "b"}, res.ConnectionsUnchanged)
	after, err := b.s.GetConnection(b.ctx, b.org, "a")
	require.NoError(t, err)
	require.Equal(t, before.UpdatedAt, after.UpdatedAt, "an unchanged row is not rewritten")

	// b and p2 leave the file, a changes, c arrives.
	second := store.ProvisionParams{
		Org: b.org, Source: source,
		Connections: []store.Connection{newConn(b.org, "a", func(c *store.Connection) { c.Purpose = "read" }), newConn(b.org, "c")},
		Policies:    []domain.Policy{newPolicy("p3", "c"), newPolicy("p1", "c")},
	}
	res, err = b.s.Provision(b.ctx, second)
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, res.ConnectionsCreated)
	require.Equal(t, []string{"a"}, res.ConnectionsUpdated)
	require.Equal(t, []string{"b"}, res.ConnectionsDeleted)
	require.Equal(t, []string{"p3"}, res.PoliciesCreated)
	require.Equal(t, []string{"p1"}, res.PoliciesUpdated, "p1 moved (connection and position)")
	require.Equal(t, []string{"p2"}, res.PoliciesDeleted)

	conns, err := b.s.ListConnections(b.ctx, b.org)
	require.NoError(t, err)
	var names []string
	for _, c := range conns {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"a", "c", "ui"}, names, "the UI's connection is never touched")
	pols, err := b.s.ListPolicies(b.ctx, b.org)
	require.NoError(t, err)
	names = nil
	for _, p := range pols {
		names = append(names, p.Policy.Name)
	}
	require.Equal(t, []string{"p3", "p1", "ui-pol"}, names)

	// An empty file removes every provisioned object, and only those.
	res, err = b.s.Provision(b.ctx, store.ProvisionParams{Org: b.org, Source: source})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a", "c"}, res.ConnectionsDeleted)
	require.ElementsMatch(t, []string{"p3", "p1"}, res.PoliciesDeleted)
	pols, err = b.s.ListPolicies(b.ctx, b.org)
	require.NoError(t, err)
	require.Len(t, pols, 1)
	require.Equal(t, "ui-pol", pols[0].Policy.Name)
}

func testProvisionCreatesTheOrg(t *testing.T, b *bundle) {
	res, err := b.s.Provision(b.ctx, store.ProvisionParams{
		Org: "org-new", Name: "New", Source: source,
		Connections: []store.Connection{newConn("ignored", "a")},
		Policies:    []domain.Policy{newPolicy("p", "a")},
	})
	require.NoError(t, err)
	require.Equal(t, domain.OrgID("org-new"), res.Org)
	orgs, err := b.s.ListOrgs(b.ctx)
	require.NoError(t, err)
	var ids []domain.OrgID
	for _, o := range orgs {
		ids = append(ids, o.ID)
		require.False(t, o.CreatedAt.IsZero())
	}
	require.Equal(t, []domain.OrgID{b.org, b.other, "org-new"}, ids)
	c, err := b.s.GetConnection(b.ctx, "org-new", "a")
	require.NoError(t, err)
	require.Equal(t, domain.OrgID("org-new"), c.Org, "provisioning writes into its org whatever the rows say")
	_, err = b.s.GetConnection(b.ctx, "ignored", "a")
	require.ErrorIs(t, err, store.ErrNotFound)
}
