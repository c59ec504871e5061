package keyvault

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

func TestTargetFor(t *testing.T) {
	t.Parallel()
	got, err := TargetFor("https://Payroll-KV.vault.azure.net", "Payroll-Secret")
	require.NoError(t, err)
	require.Equal(t, "keyvault:https://payroll-kv.vault.azure.net/secrets/payroll-secret", got.String(),
		"Key Vault ignores case in hosts and names, so the id is lower case")
	same, err := TargetFor("https://payroll-kv.vault.azure.net/", "payroll-secret")
	require.NoError(t, err)
	require.Equal(t, got, same)

	_, err = TargetFor("http://kv/", "x")
	require.ErrorContains(t, err, "https")
	_, err = TargetFor("https://kv/", "a_b")
	require.ErrorContains(t, err, "not a Key Vault secret name")
}

func TestParseTarget(t *testing.T) {
	t.Parallel()
	mk := func(s string) sink.TargetID {
		id, err := sink.ParseTargetID(s)
		require.NoError(t, err)
		return id
	}
	vault, name, err := ParseTarget(mk("keyvault:https://kv.vault.azure.net/secrets/web-secret"))
	require.NoError(t, err)
	require.Equal(t, "https://kv.vault.azure.net/", vault)
	require.Equal(t, "web-secret", name)
	vault, _, err = ParseTarget(mk("keyvault:https://127.0.0.1:8444/secrets/x"))
	require.NoError(t, err)
	require.Equal(t, "https://127.0.0.1:8444/", vault)

	for _, bad := range []string{
		"webhook:https://kv.vault.azure.net/secrets/x",
		"keyvault:https://kv.vault.azure.net/x",
		"keyvault:https://kv.vault.azure.net/secrets/x/version",
		"keyvault:https://kv.vault.azure.net/secrets/",
		"keyvault:https://KV.vault.azure.net/secrets/x",
		"keyvault:https://kv.vault.azure.net/secrets/X",
		"keyvault:http://kv.vault.azure.net/secrets/x",
		"keyvault:https://kv.vault.azure.net/path/secrets/x",
		"keyvault:https://kv.vault.azure.net/secrets/a_b",
	} {
		_, _, err := ParseTarget(mk(bad))
		require.ErrorIs(t, err, sink.ErrBadTargetID, bad)
	}
	_, _, err = ParseTarget(sink.TargetID{})
	require.ErrorIs(t, err, sink.ErrBadTargetID)
}

// TestBuildPinned: a pinned target survives a rename (and a changed spec);
// Resolve says where the template points today.
func TestBuildPinned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var gotURL string
	b := newBuilder(nil, func(_ domain.OrgID, _, u string) (SecretsAPI, error) { gotURL = u; return newFakeVault(u), nil })
	app := domain.Application{AppID: "a1", DisplayName: "Payroll API"}
	req := sink.BuildRequest{Spec: validSpec(), Connection: "c", App: app}
	first, err := b.Build(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "keyvault:https://payroll-kv.vault.azure.net/secrets/payroll-api-secret", first.Target().String())

	req.App.DisplayName = "Payroll Service"
	now, err := b.Resolve(req)
	require.NoError(t, err)
	require.Equal(t, "keyvault:https://payroll-kv.vault.azure.net/secrets/payroll-service-secret", now.String())

	req.Pinned = first.Target()
	req.Spec = set(KeyVaultURL, "https://moved-kv.vault.azure.net/")(req.Spec)
	pinned, err := b.Build(ctx, req)
	require.NoError(t, err)
	require.Equal(t, first.Target(), pinned.Target())
	require.Equal(t, "payroll-api-secret", pinned.(*Sink).SecretName())
	require.Equal(t, "https://payroll-kv.vault.azure.net/", gotURL, "the pinned vault, not the spec's new one")
	resolved, err := b.Resolve(req)
	require.NoError(t, err)
	require.Equal(t, "keyvault:https://moved-kv.vault.azure.net/secrets/payroll-service-secret", resolved.String(), "Resolve ignores the pin")

	req.Pinned, err = sink.NewTargetID(Type, "https://kv/not-a-secret")
	require.NoError(t, err)
	_, err = b.Build(ctx, req)
	require.ErrorIs(t, err, sink.ErrBadTargetID)
}

// FuzzParseTarget: pinned targets are read back from the store; parsing
// never panics and what parses rebuilds the same id.
func FuzzParseTarget(f *testing.F) {
	f.Add("https://kv.vault.azure.net/secrets/x")
	f.Add("https://127.0.0.1:1/secrets/a-b")
	f.Add("https://kv/secrets/x/y")
	f.Fuzz(func(t *testing.T, ref string) {
		id, err := sink.NewTargetID(Type, ref)
		if err != nil {
			return
		}
		vault, name, err := ParseTarget(id)
		if err != nil {
			return
		}
		again, err := TargetFor(vault, name)
		require.NoError(t, err)
		require.Equal(t, id, again)
	})
}
