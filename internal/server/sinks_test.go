package server

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/keyvault"
)

func TestSinkKindsBindToConnections(t *testing.T) {
	t.Parallel()
	r := sink.NewRegistry(sinkKinds()...)
	require.Equal(t, []string{keyvault.Type}, r.Types())
	conns, err := NewConns(nil)
	require.NoError(t, err)
	_, err = r.Bind(newSinkDeps(sinkDepsParams{conns: conns}))
	require.NoError(t, err, "every kind finds what it needs in the one Deps")

	_, err = conns.TokenCredential("nope")
	require.ErrorContains(t, err, `unknown connection "nope"`)
}

func TestSinkSecretResolver(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pat"), []byte("  pat-from-file\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600))
	r := &secretResolver{baseDir: dir, getenv: envMap{"ADO_PAT": "pat-from-env"}.get}
	ctx := context.Background()

	v, err := r.Resolve(ctx, sink.SecretRef{Env: "ADO_PAT"})
	require.NoError(t, err)
	require.Equal(t, "pat-from-env", v.Reveal())
	v, err = r.Resolve(ctx, sink.SecretRef{File: "pat"})
	require.NoError(t, err)
	require.Equal(t, "pat-from-file", v.Reveal(), "relative to rotor.yaml, trimmed")

	for _, tc := range []struct {
		ref       sink.SecretRef
		want      string
		permanent bool
	}{
		{sink.SecretRef{Env: "MISSING"}, "environment variable MISSING is not set", true},
		{sink.SecretRef{File: "empty"}, "is empty", true},
		{sink.SecretRef{File: "absent"}, "no such file", false},
		{sink.SecretRef{KeyVault: &sink.KeyVaultRef{VaultURL: "https://kv/", Secret: "x"}}, "not resolved yet", true},
		{sink.SecretRef{}, "empty secret reference", true},
	} {
		_, err := r.Resolve(ctx, tc.ref)
		require.ErrorContains(t, err, tc.want)
		require.Equal(t, tc.permanent, sink.IsPermanent(err), "%v", err)
	}
}

type envMap map[string]string

func (m envMap) get(k string) string { return m[k] }

func TestSinkHTTPClient(t *testing.T) {
	t.Parallel()
	simClient := &http.Client{}
	sim := azure.Endpoints{Cloud: azure.Sim, HTTPClient: simClient}
	public := azure.Endpoints{Cloud: azure.Public}
	require.Same(t, simClient, sinkHTTPClient([]azure.Endpoints{sim, sim}), "all on the simulator: its CA, no proxy")
	require.NotSame(t, simClient, sinkHTTPClient([]azure.Endpoints{sim, public}), "mixed: the system's roots")
	require.NotSame(t, simClient, sinkHTTPClient([]azure.Endpoints{public, sim}))
	require.NotNil(t, sinkHTTPClient(nil))
}
