package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestWrongRotationSecretMakesReadyzFail (issue 7, item 4): rotor started
// with a wrong client secret for its rotation identity answers /readyz
// with 503 naming the connection and Entra's AADSTS code within seconds,
// logs one ERROR line saying so (not one per retry), and /healthz stays
// 200. The secret given never appears in the answer or the log.
func TestWrongRotationSecretMakesReadyzFail(t *testing.T) {
	t.Parallel()
	st := simtest.Start(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=1h"})
	dir := t.TempDir()
	const wrong = "definitely-not-the-secret-0123456789"
	yaml, err := config.SimulatorYAML(st.Info, config.SimulatorConfig{
		SimFile: filepath.Join(filepath.Dir(st.Info.CAFile), simfile.FileName), DataDir: filepath.Join(dir, "data"),
		Secret: func(simfile.Tenant) string { return "{env: S}" },
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))
	logs := &lockedBuf{}
	srv, err := Open(context.Background(), cfgPath, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Getenv: envMap{"S": wrong}.get})
	require.NoError(t, err)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, func(a string) { addrc <- a }) }()
	addr := <-addrc
	defer func() { cancel(); <-done }()

	var body struct {
		Status  string `json:"status"`
		Failing []struct {
			Part       string `json:"part"`
			Connection string `json:"connection"`
			AADSTS     int    `json:"aadsts"`
			Error      string `json:"error"`
		} `json:"failing"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		require.NoError(t, err)
		code := resp.StatusCode
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		resp.Body.Close()
		if code == http.StatusServiceUnavailable {
			break
		}
		require.True(t, time.Now().Before(deadline), "/readyz still says %d %s", code, body.Status)
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, "unready", body.Status)
	require.Len(t, body.Failing, 1)
	require.Equal(t, "connection", body.Failing[0].Part)
	require.Equal(t, st.Info.Tenants[0].Name, body.Failing[0].Connection)
	require.Equal(t, 7000215, body.Failing[0].AADSTS)

	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "liveness is not readiness")

	// Let the first sync fail too: still one ERROR line for the connection.
	time.Sleep(2 * time.Second)
	out := logs.String()
	require.Equal(t, 1, strings.Count(out, "connection failing"), out)
	require.Contains(t, out, "aadsts=7000215")
	require.NotContains(t, out, wrong)
}

// TestUnbuildableConnectionMakesReadyzFail: a connection made outside
// rotor.yaml (as the UI would) that cannot be built — here it asks for
// rotor's own environment — is left out of syncing and rotation, so it is
// a failing part of /readyz (and of `rotor connections list`), not
// absent from it.
func TestUnbuildableConnectionMakesReadyzFail(t *testing.T) {
	t.Parallel()
	b := setupOrgs(t)
	srv, err := b.open(t, b.yaml("{env: ROTATION_SECRET}", false))
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, srv.Store().UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: store.Connection{
		Org: domain.DefaultOrg, Name: "greedy", TenantID: b.tn.ID, Cloud: "sim", SimFile: b.simFile, Purpose: "read",
		Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: b.tn.Rotation.ClientID,
			ClientSecret: &store.SecretRef{Kind: store.SecretEnv, Env: "HOST_SECRET"}},
	}}))
	require.ErrorContains(t, srv.Sync(b.ctx, nil), `connection "greedy"`)

	rec := httptest.NewRecorder()
	srv.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	var body struct {
		Failing []struct {
			Part       string `json:"part"`
			Connection string `json:"connection"`
			Error      string `json:"error"`
		} `json:"failing"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Len(t, body.Failing, 1, rec.Body.String())
	require.Equal(t, "connection", body.Failing[0].Part)
	require.Equal(t, "greedy", body.Failing[0].Connection)
	require.NotContains(t, rec.Body.String(), b.tn.Rotation.ClientSecret)

	conns, err := srv.App().ListConnections(b.ctx, app.Scope{Org: domain.DefaultOrg, Actor: app.CLI})
	require.NoError(t, err)
	for _, c := range conns {
		require.Equal(t, c.Name == "greedy", c.Failing, "%s", c.Name)
	}

	// Deleted, it is no failing part any more.
	require.NoError(t, srv.Store().DeleteConnection(b.ctx, store.DeleteParams{Org: domain.DefaultOrg, Name: "greedy"}))
	require.NoError(t, srv.Sync(b.ctx, nil))
	rec = httptest.NewRecorder()
	srv.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}
