package sim_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

func TestControlAPINeedsAdminToken(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	for name, hdr := range map[string]map[string]string{
		"none":  nil,
		"wrong": {"Authorization": "Bearer nope"},
		"basic": {"Authorization": "Basic " + e.Server.AdminToken()},
	} {
		status, _ := e.Do(t, http.MethodGet, e.Info.ControlURL+"stats", nil, hdr)
		require.Equal(t, http.StatusUnauthorized, status, name)
	}
	status, _ := e.Do(t, http.MethodGet, e.Info.ControlURL+"stats", nil, e.AdminHeader())
	require.Equal(t, http.StatusOK, status)
}

func TestInjectedErrorsUseEachServiceShape(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	status, _ := e.Do(t, http.MethodPut, e.Info.ControlURL+"faults", map[string]any{"error_rate": 1, "latency": "1ms"}, e.AdminHeader())
	require.Equal(t, http.StatusOK, status)
	status, got := e.Do(t, http.MethodGet, e.Info.ControlURL+"faults", nil, e.AdminHeader())
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "1ms", got["latency"])
	require.Equal(t, 1.0, got["error_rate"])
	require.Equal(t, sim.FaultConfig{ErrorRate: 1, Latency: time.Millisecond}, e.Server.Faults())

	status, body := e.TokenRequest(t, tn.ID, simtest.SecretForm(tn, "https://graph.microsoft.com/.default"))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "temporarily_unavailable", body["error"])
	require.NotEmpty(t, body["error_codes"])

	status, body = e.Do(t, http.MethodGet, e.Info.GraphURL+"/applications", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	gErr := body["error"].(map[string]any)
	require.Equal(t, "ServiceUnavailable", gErr["code"])
	require.NotEmpty(t, gErr["innerError"])

	status, body = e.Do(t, http.MethodGet, tn.KeyVaults[0].URL+"secrets?api-version=7.5", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "ServiceUnavailable", body["error"].(map[string]any)["code"])

	// The managed identity endpoint and the control API are spared.
	status, _ = e.Do(t, http.MethodGet, e.Info.ManagedIdentityEndpoint+"?api-version=2019-08-01&resource=https://graph.microsoft.com", nil,
		map[string]string{"X-IDENTITY-HEADER": e.Info.ManagedIdentityHeader})
	require.Equal(t, http.StatusOK, status)
	status, stats := e.Do(t, http.MethodGet, e.Info.ControlURL+"stats", nil, e.AdminHeader())
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 3.0, stats["injected_errors"])
	require.Equal(t, 1.0, stats["managed_identity_tokens"])
	require.Equal(t, 1.0, stats["vault"])
	require.Equal(t, 1.0, stats["graph_requests"])

	status, _ = e.Do(t, http.MethodPut, e.Info.ControlURL+"faults", map[string]any{"error_rate": 7}, e.AdminHeader())
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = e.Do(t, http.MethodPut, e.Info.ControlURL+"faults", map[string]any{}, e.AdminHeader())
	require.Equal(t, http.StatusOK, status)
	status, _ = e.TokenRequest(t, tn.ID, simtest.SecretForm(tn, "https://graph.microsoft.com/.default"))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, int64(1), e.Server.Stats().TokensIssued)
}

func TestDroppedConnections(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	require.NoError(t, e.Server.SetFaults(sim.FaultConfig{DropRate: 1}))
	// HTTP/1.1 connections are hijacked and closed; HTTP/2 streams are reset.
	h1 := e.Client
	h2 := &http.Client{Transport: e.Client.Transport.(*http.Transport).Clone()}
	h2.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	for i, c := range []*http.Client{h1, h2} {
		resp, err := c.PostForm(e.Info.AuthorityHost+tn.ID+"/oauth2/v2.0/token", simtest.SecretForm(tn, "https://graph.microsoft.com/.default"))
		if err == nil {
			resp.Body.Close()
		}
		require.Error(t, err, "client %d got an answer", i)
	}
	require.Equal(t, int64(2), e.Server.Stats().DroppedConnections)
}

func TestInjectedLatency(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	require.NoError(t, e.Server.SetFaults(sim.FaultConfig{Latency: 150 * time.Millisecond}))
	start := time.Now()
	status, _ := e.TokenRequest(t, tn.ID, simtest.SecretForm(tn, "https://graph.microsoft.com/.default"))
	require.Equal(t, http.StatusOK, status)
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
}

func TestClockAdvanceExpiresCredentials(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "fabrikam")
	app := e.AppNamed(t, "fabrikam", "svc-notifications")
	const secret = "day8Q~expiresinadaysecret-abcdefghijklmn"
	e.AddSecret(app, secret, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), time.Now().Add(-time.Hour))
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.AppID}, "client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"}}
	status, _ := e.TokenRequest(t, tn.ID, form)
	require.Equal(t, http.StatusOK, status)

	status, body := e.Do(t, http.MethodPost, e.Info.ControlURL+"clock/advance", map[string]string{"by": "25h"}, e.AdminHeader())
	require.Equal(t, http.StatusOK, status)
	now, err := time.Parse(time.RFC3339Nano, body["now"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(25*time.Hour), now, time.Minute)

	status, body = e.TokenRequest(t, tn.ID, form)
	require.Equal(t, http.StatusBadRequest, status)
	simtest.RequireAADSTS(t, body, 7000222)

	status, _ = e.Do(t, http.MethodPost, e.Info.ControlURL+"clock/advance", map[string]string{"by": "-1h"}, e.AdminHeader())
	require.Equal(t, http.StatusBadRequest, status)
}
