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
	e := setup(t)
	for name, hdr := range map[string]map[string]string{
		"none":  nil,
		"wrong": {"Authorization": "Bearer nope"},
		"basic": {"Authorization": "Basic " + e.srv.AdminToken()},
	} {
		status, _ := e.do(t, http.MethodGet, e.info.ControlURL+"stats", nil, hdr)
		require.Equal(t, http.StatusUnauthorized, status, name)
	}
	status, _ := e.do(t, http.MethodGet, e.info.ControlURL+"stats", nil, e.admin())
	require.Equal(t, http.StatusOK, status)
}

func TestInjectedErrorsUseEachServiceShape(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tn := e.tenant(t, "contoso")
	status, _ := e.do(t, http.MethodPut, e.info.ControlURL+"faults", map[string]any{"error_rate": 1, "latency": "1ms"}, e.admin())
	require.Equal(t, http.StatusOK, status)
	status, got := e.do(t, http.MethodGet, e.info.ControlURL+"faults", nil, e.admin())
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "1ms", got["latency"])
	require.Equal(t, 1.0, got["error_rate"])
	require.Equal(t, sim.FaultConfig{ErrorRate: 1, Latency: time.Millisecond}, e.srv.Faults())

	status, body := e.tokenRequest(t, tn.ID, secretForm(tn, "https://graph.microsoft.com/.default"))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "temporarily_unavailable", body["error"])
	require.NotEmpty(t, body["error_codes"])

	status, body = e.do(t, http.MethodGet, e.info.GraphURL+"/applications", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	gErr := body["error"].(map[string]any)
	require.Equal(t, "ServiceUnavailable", gErr["code"])
	require.NotEmpty(t, gErr["innerError"])

	status, body = e.do(t, http.MethodGet, tn.KeyVaults[0].URL+"secrets?api-version=7.5", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "ServiceUnavailable", body["error"].(map[string]any)["code"])

	// The managed identity endpoint and the control API are spared.
	status, _ = e.do(t, http.MethodGet, e.info.ManagedIdentityEndpoint+"?api-version=2019-08-01&resource=https://graph.microsoft.com", nil,
		map[string]string{"X-IDENTITY-HEADER": e.info.ManagedIdentityHeader})
	require.Equal(t, http.StatusOK, status)
	status, stats := e.do(t, http.MethodGet, e.info.ControlURL+"stats", nil, e.admin())
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 3.0, stats["injected_errors"])
	require.Equal(t, 1.0, stats["managed_identity_tokens"])
	require.Equal(t, 1.0, stats["vault"])
	require.Equal(t, 1.0, stats["graph_requests"])

	status, _ = e.do(t, http.MethodPut, e.info.ControlURL+"faults", map[string]any{"error_rate": 7}, e.admin())
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = e.do(t, http.MethodPut, e.info.ControlURL+"faults", map[string]any{}, e.admin())
	require.Equal(t, http.StatusOK, status)
	status, _ = e.tokenRequest(t, tn.ID, secretForm(tn, "https://graph.microsoft.com/.default"))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, int64(1), e.srv.Stats().TokensIssued)
}

func TestDroppedConnections(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tn := e.tenant(t, "contoso")
	require.NoError(t, e.srv.SetFaults(sim.FaultConfig{DropRate: 1}))
	// HTTP/1.1 connections are hijacked and closed; HTTP/2 streams are reset.
	h1 := e.http
	h2 := &http.Client{Transport: e.http.Transport.(*http.Transport).Clone()}
	h2.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	for i, c := range []*http.Client{h1, h2} {
		resp, err := c.PostForm(e.info.AuthorityHost+tn.ID+"/oauth2/v2.0/token", secretForm(tn, "https://graph.microsoft.com/.default"))
		if err == nil {
			resp.Body.Close()
		}
		require.Error(t, err, "client %d got an answer", i)
	}
	require.Equal(t, int64(2), e.srv.Stats().DroppedConnections)
}

func TestInjectedLatency(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tn := e.tenant(t, "contoso")
	require.NoError(t, e.srv.SetFaults(sim.FaultConfig{Latency: 150 * time.Millisecond}))
	start := time.Now()
	status, _ := e.tokenRequest(t, tn.ID, secretForm(tn, "https://graph.microsoft.com/.default"))
	require.Equal(t, http.StatusOK, status)
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
}

func TestClockAdvanceExpiresCredentials(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tn := e.tenant(t, "fabrikam")
	app := e.sim.AppNamed(t, "fabrikam", "svc-notifications")
	const secret = "day8Q~expiresinadaysecret-abcdefghijklmn"
	e.sim.AddSecret(app, secret, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), time.Now().Add(-time.Hour))
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.AppID}, "client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"}}
	status, _ := e.tokenRequest(t, tn.ID, form)
	require.Equal(t, http.StatusOK, status)

	status, body := e.do(t, http.MethodPost, e.info.ControlURL+"clock/advance", map[string]string{"by": "25h"}, e.admin())
	require.Equal(t, http.StatusOK, status)
	now, err := time.Parse(time.RFC3339Nano, body["now"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(25*time.Hour), now, time.Minute)

	status, body = e.tokenRequest(t, tn.ID, form)
	require.Equal(t, http.StatusBadRequest, status)
	simtest.RequireAADSTS(t, body, 7000222)

	status, _ = e.do(t, http.MethodPost, e.info.ControlURL+"clock/advance", map[string]string{"by": "-1h"}, e.admin())
	require.Equal(t, http.StatusBadRequest, status)
}
