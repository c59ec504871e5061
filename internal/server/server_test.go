package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// TestSyncWithManagedIdentity: a connection that signs in as the host's
// system-assigned managed identity has no client id in the configuration;
// rotor learns its service principal from its token and syncs. (Not
// parallel: azidentity reads IDENTITY_ENDPOINT from the environment.)
func TestSyncWithManagedIdentity(t *testing.T) {
	t.Setenv("IDENTITY_ENDPOINT", "")
	t.Setenv("IDENTITY_HEADER", "")
	os.Unsetenv("IDENTITY_ENDPOINT")
	os.Unsetenv("IDENTITY_HEADER")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	info := simtest.Start(t, simtest.Options{Seed: "apps=30,tenants=1,expiring=1h"}).Info
	tn := info.Tenants[0]

	dir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %q
connections:
  - name: mi
    cloud: sim
    sim_file: %q
    tenant_id: %q
    purpose: read
    managed_identity: true
`, filepath.Join(dir, "data"), filepath.Join(filepath.Dir(info.CAFile), simfile.FileName), tn.ID)
	path := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))

	srv, err := Open(ctx, path, Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer srv.Close()
	oid, err := srv.Conns().RotationSPObjectID(ctx, srv.Config().Organization, "mi")
	require.NoError(t, err)
	require.Equal(t, tn.ManagedIdentity.PrincipalID, oid, "the identity's object id comes from its token")

	require.NoError(t, srv.Sync(ctx, nil))
	n, err := srv.Store().CountApplications(ctx, srv.Config().Organization, "mi")
	require.NoError(t, err)
	require.Equal(t, 31, n, "30 seeded applications and rotor's own")
}

func TestStatusPageAnswersOnlyLoopbackHosts(t *testing.T) {
	t.Parallel()
	for host, ok := range map[string]bool{
		"localhost": true, "localhost:8080": true, "127.0.0.1:8080": true, "[::1]:8080": true, "127.0.0.2": true,
		"evil.example:8080": false, "10.0.0.5:8080": false, "": false,
	} {
		h := loopbackHostOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ok {
			require.Equal(t, http.StatusOK, rec.Code, host)
		} else {
			require.Equal(t, http.StatusMisdirectedRequest, rec.Code, host)
		}
	}
	s := &Server{}
	mux := s.handler(false)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusNotFound, rec.Code, "no status page beyond loopback")
}
