package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// TestServeMountsTheAPI: the REST API answers on the listener of /healthz,
// its document without credentials, everything else only with one (a
// problem with a Bearer challenge otherwise); an API key made through the
// application layer is let in. rotor does not start when api_auth.entra
// names a tenant whose discovery document cannot be read.
func TestServeMountsTheAPI(t *testing.T) {
	t.Parallel()
	st := simtest.Start(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=1h"})
	dir := t.TempDir()
	simFile := filepath.Join(filepath.Dir(st.Info.CAFile), simfile.FileName)
	tn := st.Info.Tenants[0]
	yaml, err := config.SimulatorYAML(st.Info, config.SimulatorConfig{
		SimFile: simFile, DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret: func(simfile.Tenant) string { return "{env: S}" },
	})
	require.NoError(t, err)
	open := func(extra string) *Server {
		t.Helper()
		path := filepath.Join(dir, "rotor.yaml")
		require.NoError(t, os.WriteFile(path, append(append([]byte{}, yaml...), extra...), 0o600))
		srv, err := Open(context.Background(), path, Options{Logger: slog.New(slog.DiscardHandler), Getenv: envMap{"S": tn.Rotation.ClientSecret}.get})
		require.NoError(t, err)
		return srv
	}

	t.Run("EntraTenantWithoutDiscoveryStopsServe", func(t *testing.T) {
		srv := open(fmt.Sprintf(`api_auth:
  entra:
    cloud: sim
    sim_file: %q
    tenants: [%q]
    app_id_uri: api://rotor
    roles: [{app_role: Rotor.Admin, organization: default, role: admin}]
`, simFile, uuid.NewString()))
		defer srv.Close()
		err := srv.Serve(context.Background(), nil)
		require.ErrorContains(t, err, "api_auth.entra")
	})

	srv := open("")
	defer srv.Close()
	org := srv.Config().Organization
	key, err := srv.App().CreateAPIKey(context.Background(), app.Scope{Org: org, Actor: app.CLI}, app.NewAPIKey{Name: "test", Role: app.RoleViewer})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, func(a string) { addrc <- a }) }()
	addr := <-addrc
	defer func() { cancel(); <-done }()

	get := func(path, cred string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		require.NoError(t, err)
		if cred != "" {
			req.Header.Set("Authorization", "Bearer "+cred)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	require.Equal(t, http.StatusOK, get("/healthz", "").StatusCode)
	require.Equal(t, http.StatusOK, get("/api/v1/openapi.json", "").StatusCode)

	resp := get("/api/v1/orgs/"+string(org)+"/applications", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Equal(t, `Bearer realm="rotor"`, resp.Header.Get("WWW-Authenticate"))

	resp = get("/api/v1/orgs/"+string(org)+"/applications", key.Key.Reveal())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var page struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	require.NotNil(t, page.Items, "a listing, empty or not (the first sync may still run)")
}
