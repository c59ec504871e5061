package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/store"
)

// TestConnectionsFromOutsideTheFile: a connection made in the UI or the
// API may not read rotor's environment or files, act as rotor's host, or
// point rotor at another simulator; rotor.yaml's may.
func TestConnectionsFromOutsideTheFile(t *testing.T) {
	t.Parallel()
	s := &secrets{simFiles: map[string]bool{"/sim/sim.json": true}}
	kv := &store.SecretRef{Kind: store.SecretKeyVault, VaultURL: "https://kv.vault.azure.net", Secret: "s"}
	base := func(tweaks ...func(*store.Connection)) store.Connection {
		c := store.Connection{Org: "o", Name: "c", TenantID: "t", Cloud: "public", Purpose: "rotation",
			Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: "id", ClientSecret: kv}}
		for _, tw := range tweaks {
			tw(&c)
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		c       store.Connection
		wantErr string
	}{
		{"KeyVaultSecret", base(), "only for connections provisioned by rotor.yaml"},
		{"KnownSimulator", base(func(c *store.Connection) { c.Cloud, c.SimFile = "sim", "/sim/sim.json" }), "only for connections provisioned by rotor.yaml"},
		{"WorkloadIdentityWithRotorsToken", base(func(c *store.Connection) {
			c.Identity = store.ConnectionIdentity{Method: "workload_identity", ClientID: "id"}
		}), "signs in with rotor's host token"},
		{"EnvSecret", base(func(c *store.Connection) {
			c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretEnv, Env: "ROTOR_HOST_IDENTITY_CLIENT_SECRET"}
		}), "only connections provisioned by rotor.yaml may read rotor's environment or files"},
		{"FileSecret", base(func(c *store.Connection) {
			c.Identity.ClientSecret = &store.SecretRef{Kind: store.SecretFile, File: "/var/run/secrets/token"}
		}), "only connections provisioned by rotor.yaml"},
		{"CertificateFile", base(func(c *store.Connection) {
			c.Identity = store.ConnectionIdentity{Method: "certificate", ClientID: "id", CertificateFile: "/etc/rotor/host.pem"}
		}), "files of rotor's host"},
		{"ManagedIdentity", base(func(c *store.Connection) {
			c.Identity = store.ConnectionIdentity{Method: "managed_identity"}
		}), "rotor's host's own"},
		{"OtherSimulator", base(func(c *store.Connection) { c.Cloud, c.SimFile = "sim", "/tmp/evil/sim.json" }), "is not a simulator rotor.yaml uses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := s.fromOutside(tc.c)
			if tc.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.wantErr)
			}
			c := tc.c
			c.Provisioned, c.Source = true, "/etc/rotor/rotor.yaml"
			require.NoError(t, s.fromOutside(c), "rotor.yaml may")
		})
	}
}

// countingVault counts reads and answers with its current value.
type countingVault struct {
	reads int
	value string
}

func (v *countingVault) KeyVaultSecret(context.Context, string, string) (secret.Value, error) {
	v.reads++
	return secret.New(v.value), nil
}

// TestKeyVaultSecretsAreCachedBriefly: a Key Vault secret is read once per
// TTL, and at once when the caller asks for a fresh one (Entra refused it).
func TestKeyVaultSecretsAreCachedBriefly(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	v := &countingVault{value: "one"}
	s := newSecrets(&config.Config{}, func(string) string { return "" }, v, c)
	ref := store.SecretRef{Kind: store.SecretKeyVault, VaultURL: "https://kv.vault.azure.net", Secret: "s"}
	src := s.source("o", "c", ref)

	got, err := src(t.Context(), false)
	require.NoError(t, err)
	require.Equal(t, "one", got.Reveal())
	v.value = "two"
	got, err = src(t.Context(), false)
	require.NoError(t, err)
	require.Equal(t, "one", got.Reveal(), "cached")
	require.Equal(t, 1, v.reads)

	got, err = src(t.Context(), true)
	require.NoError(t, err)
	require.Equal(t, "two", got.Reveal(), "fresh bypasses the cache")
	require.Equal(t, 2, v.reads)

	v.value = "three"
	c.Advance(keyVaultTTL)
	got, err = src(t.Context(), false)
	require.NoError(t, err)
	require.Equal(t, "three", got.Reveal(), "read again after the TTL")

	// Without a host identity a Key Vault reference says what to set.
	_, err = newSecrets(&config.Config{}, nil, nil, c).source("o", "c", ref)(t.Context(), false)
	require.ErrorContains(t, err, "set host_identity")
}
