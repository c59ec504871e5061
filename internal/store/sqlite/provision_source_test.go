package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// Regression (review of issue 6): Provision from any other file (a stale copy of rotor.yaml given
// to a read-only `rotor runs list --config`) rewrites and deletes objects
// another file provisioned; guard() never compares Source. Every CLI
// command, readers included, provisions at server.Open.
func TestProvisionFromAnotherFileIsRefused(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "r.db"))
	require.NoError(t, err)
	defer st.Close()
	conn := store.Connection{Name: "main", TenantID: "11111111-1111-1111-1111-111111111111", Cloud: "public", Purpose: "rotation",
		Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: "22222222-2222-2222-2222-222222222222",
			ClientSecret: &store.SecretRef{Kind: store.SecretEnv, Env: "S"}}}
	pol := func(n string) domain.Policy {
		return domain.Policy{Name: n, Connection: "main", Selector: domain.Selector{NamePrefix: "web-"}, Enabled: true, Kind: domain.KindSecret,
			Lifetime: 90 * 24 * time.Hour, RenewBefore: 30 * 24 * time.Hour, Overlap: 24 * time.Hour, Verify: true}
	}
	_, err = st.Provision(ctx, store.ProvisionParams{Org: "acme", Source: "/etc/rotor/rotor.yaml",
		Connections: []store.Connection{conn}, Policies: []domain.Policy{pol("prod"), pol("web")}})
	require.NoError(t, err)
	_, err = st.Provision(ctx, store.ProvisionParams{Org: "acme", Source: "/home/bob/old-rotor.yaml",
		Connections: []store.Connection{conn}, Policies: []domain.Policy{pol("prod")}})
	require.ErrorIs(t, err, store.ErrConflict)
	require.ErrorContains(t, err, "organization acme is provisioned from /etc/rotor/rotor.yaml, not /home/bob/old-rotor.yaml")
	pols, err := st.ListPolicies(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, pols, 2, "the other file changed nothing")
	_, err = st.Provision(ctx, store.ProvisionParams{Org: "acme", Source: "/etc/rotor/rotor.yaml",
		Connections: []store.Connection{conn}, Policies: []domain.Policy{pol("prod")}})
	require.NoError(t, err, "the organization's own file still provisions it")
}
