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

// hostVault is the operator's vault, readable by rotor's host identity. It
// holds org acme's rotation secret (referenced by acme's provisioned conn).
type hostVault map[string]string

func (v hostVault) KeyVaultSecret(_ context.Context, url, name string) (secret.Value, error) {
	return secret.New(v[url+"|"+name]), nil
}

// Regression (review of issue 6): a connection made outside rotor.yaml by org "evil" may name ANY
// Key Vault secret; rotor reads it with its host identity and uses it as
// evil's client secret. Evil thus signs in as acme's rotation app in acme's
// tenant (confused deputy across organizations).
func TestAnotherOrganizationsKeyVaultRefIsNotReadByTheHost(t *testing.T) {
	c := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	v := hostVault{"https://ops.vault.azure.net|acme-rotation": "acme-super-secret"}
	s := newSecrets(&config.Config{Organization: "acme"}, func(string) string { return "" }, v, c)
	evil := store.Connection{Org: "evil", Name: "stolen", TenantID: "acme-tenant", Cloud: "public", Purpose: "rotation",
		Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: "acme-rotation-app-id",
			ClientSecret: &store.SecretRef{Kind: store.SecretKeyVault, VaultURL: "https://ops.vault.azure.net", Secret: "acme-rotation"}}}
	spec, err := s.connSpec(t.Context(), evil)
	if err == nil {
		t.Logf("evil's connection was built with client secret %q read by rotor's host identity", spec.Conn.Identity.ClientSecret.Reveal())
	}
	require.Error(t, err, "a non-provisioned connection of another org must not read the host's vaults with the host identity")
}
