package simfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteLoadRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := &Info{
		AuthorityHost: "https://127.0.0.1:8443/", GraphURL: "https://127.0.0.1:8443/graph/v1.0", CAFile: filepath.Join(dir, "ca.pem"),
		Tenants: []Tenant{{ID: "t-1", Name: "contoso", Rotation: Identity{ClientID: "c-1", ClientSecret: "s", ObjectID: "o-1"}, KeyVaults: []KeyVault{{Name: "kv-contoso", URL: "https://127.0.0.1:9000/"}}}},
	}
	require.NoError(t, Write(dir, in))
	fi, err := os.Stat(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "sim.json holds a client secret")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temp file is left behind")

	out, err := Load(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.Equal(t, in, out)
	tn, ok := out.Tenant("contoso")
	require.True(t, ok)
	require.Equal(t, "t-1", tn.ID)
	_, ok = out.Tenant("t-1")
	require.True(t, ok)
	_, ok = out.Tenant("nope")
	require.False(t, ok)
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.json"))
	require.ErrorContains(t, err, "read simulator file")

	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte("{"), 0o600))
	_, err = Load(bad)
	require.ErrorContains(t, err, "parse simulator file")

	partial := filepath.Join(dir, "partial.json")
	require.NoError(t, os.WriteFile(partial, []byte(`{"graph_url":"x"}`), 0o600))
	_, err = Load(partial)
	require.ErrorContains(t, err, "incomplete")
}

// TestConsumerAndPermissionsAreOptional checks the contract stays
// backward compatible: a file from a simulator without the consumer
// identity or vault permissions still loads, and a newer one round-trips
// them.
func TestConsumerAndPermissionsAreOptional(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := filepath.Join(dir, "old.json")
	require.NoError(t, os.WriteFile(old, []byte(`{"authority_host":"https://127.0.0.1:1/","graph_url":"g","ca_file":"c",
		"tenants":[{"id":"t","name":"n","rotation":{"client_id":"c","client_secret":"s","object_id":"o"},"key_vaults":[{"name":"kv","url":"u"}]}]}`), 0o600))
	info, err := Load(old)
	require.NoError(t, err)
	require.Nil(t, info.Tenants[0].Consumer)
	require.Nil(t, info.Tenants[0].KeyVaults[0].SecretPermissions)

	info.Tenants[0].Consumer = &ManagedIdentity{ClientID: "cc", PrincipalID: "cp"}
	info.Tenants[0].KeyVaults[0].SecretPermissions = map[string][]string{"o": {"list", "set"}, "cp": {"get", "list"}}
	require.NoError(t, Write(dir, info))
	out, err := Load(filepath.Join(dir, FileName))
	require.NoError(t, err)
	require.Equal(t, info, out)
}
