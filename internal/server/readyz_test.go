package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
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
