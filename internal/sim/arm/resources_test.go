package arm_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/arm"
)

func (b bundle) accountURL(rest string) string {
	return fmt.Sprintf("%ssubscriptions/%s/resourceGroups/%s/providers/Microsoft.Automation/automationAccounts/%s%s?api-version=2023-11-01",
		b.e.Info.ARMURL, b.tn.Subscriptions[0].ID, arm.DemoAutomationResourceGroup, arm.DemoAutomationAccount, rest)
}

func (b bundle) connectionURL(name string) string {
	return fmt.Sprintf("%ssubscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/connections/%s?api-version=2016-06-01",
		b.e.Info.ARMURL, b.tn.Subscriptions[0].ID, arm.DemoConnectionResourceGroup, name)
}

func status(body map[string]any) string {
	p, _ := body["properties"].(map[string]any)
	s, _ := p["status"].(string)
	return s
}

// TestJobAdvancesOnEveryRead: 201 New, then Activating, Running and
// Completed, one step per GET; the runbook is recorded as a consumer.
func TestJobAdvancesOnEveryRead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.e.Do(t, http.MethodGet, b.accountURL("/runbooks/"+arm.DemoRunbook), nil, b.rotation)
	require.Equal(t, http.StatusOK, code)
	params := body["properties"].(map[string]any)["parameters"].(map[string]any)
	require.Equal(t, true, params[arm.ParamClientSecret].(map[string]any)["isMandatory"])

	job := map[string]any{"properties": map[string]any{"runbook": map[string]string{"name": arm.DemoRunbook},
		"parameters": map[string]string{arm.ParamClientSecret: "job-value"}, "runOn": arm.DemoWorkerGroup}}
	code, body = b.e.Do(t, http.MethodPut, b.accountURL("/jobs/job-1"), job, b.rotation)
	require.Equal(t, http.StatusCreated, code, "%v", body)
	require.Equal(t, arm.JobNew, status(body))
	for _, want := range []string{arm.JobActivating, arm.JobRunning, arm.JobCompleted, arm.JobCompleted} {
		code, body = b.e.Do(t, http.MethodGet, b.accountURL("/jobs/job-1"), nil, b.rotation)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, want, status(body))
	}
	code, body = b.e.Do(t, http.MethodPut, b.accountURL("/jobs/job-1"), job, b.rotation)
	require.Equal(t, http.StatusConflict, code, "a job name is used once")

	code, body = b.e.Do(t, http.MethodGet, b.accountURL("/jobs"), nil, b.rotation)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, fmt.Sprint(body), "job-value", "the job list carries no parameters")

	found := false
	for _, c := range b.e.Server.Consumers() {
		found = found || (c.Service == "automation" && c.Target == arm.DemoAutomationAccount+"/"+arm.DemoRunbook && c.Field == arm.ParamClientSecret)
	}
	require.True(t, found)

	// Undeclared parameters and unknown worker groups are refused.
	bad := map[string]any{"properties": map[string]any{"runbook": map[string]string{"name": "Cleanup-Logs"},
		"parameters": map[string]string{arm.ParamClientSecret: "x"}}}
	code, _ = b.e.Do(t, http.MethodPut, b.accountURL("/jobs/job-2"), bad, b.rotation)
	require.Equal(t, http.StatusBadRequest, code)
}

func TestNoRoleIsAuthorizationFailed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, u := range []string{b.accountURL("/runbooks"), b.accountURL("/jobs"), b.connectionURL(arm.DemoConnection)} {
		code, body := b.e.Do(t, http.MethodGet, u, nil, b.consumer)
		require.Equal(t, http.StatusForbidden, code, u)
		require.Equal(t, "AuthorizationFailed", errCode(body))
	}
}

func TestConnectionSecretsAreWriteOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, body := b.e.Do(t, http.MethodGet, b.connectionURL(arm.DemoConnection), nil, b.rotation)
	require.Equal(t, http.StatusOK, code)
	etag := body["etag"]
	props := body["properties"].(map[string]any)
	props["parameterValues"] = map[string]string{"token:clientId": "cid", "token:clientSecret": "write-only-value", "token:TenantId": b.tn.ID, "token:grantType": "client_credentials"}
	put := map[string]any{"location": body["location"], "tags": body["tags"], "properties": map[string]any{
		"displayName": props["displayName"], "api": map[string]any{"id": props["api"].(map[string]any)["id"]}, "parameterValues": props["parameterValues"]}}
	code, out := b.e.Do(t, http.MethodPut, b.connectionURL(arm.DemoConnection), put, b.rotation)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.NotEqual(t, etag, out["etag"], "every write changes the etag")
	code, body = b.e.Do(t, http.MethodGet, b.connectionURL(arm.DemoConnection), nil, b.rotation)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, fmt.Sprint(body), "write-only-value")
	require.Equal(t, "cid", body["properties"].(map[string]any)["parameterValues"].(map[string]any)["token:clientId"])
}

// TestLinkedConnectionNeedsAuxiliaryToken: missing → 403, more than three
// → 400, expired → 401, a valid one of the same client for the linked
// tenant → 200.
func TestLinkedConnectionNeedsAuxiliaryToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	svc := arm.Of(b.e.Server.Core)
	require.NoError(t, svc.RegisterInTenant(b.tn.Rotation.ClientID, b.tn.ID, b.fab.ID))
	u := b.connectionURL(arm.DemoConnectionLinked)

	code, body := b.e.Do(t, http.MethodGet, u, nil, b.rotation)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "LinkedAuthorizationFailed", errCode(body))

	old, err := b.e.Server.MintToken(b.fab.ID, b.tn.Rotation.ClientID, b.e.Info.ARMAudience)
	require.NoError(t, err)
	b.e.AdvanceClock(3 * time.Hour)
	primary, err := b.e.Server.MintToken(b.tn.ID, b.tn.Rotation.ClientID, b.e.Info.ARMAudience)
	require.NoError(t, err)
	aux, err := b.e.Server.MintToken(b.fab.ID, b.tn.Rotation.ClientID, b.e.Info.ARMAudience)
	require.NoError(t, err)
	hdr := func(auxs ...string) map[string]string {
		var parts []string
		for _, a := range auxs {
			parts = append(parts, "Bearer "+a)
		}
		return map[string]string{"Authorization": "Bearer " + primary, "x-ms-authorization-auxiliary": strings.Join(parts, ", ")}
	}
	code, _ = b.e.Do(t, http.MethodGet, u, nil, hdr(old))
	require.Equal(t, http.StatusUnauthorized, code, "an expired auxiliary token")
	code, _ = b.e.Do(t, http.MethodGet, u, nil, hdr(aux, aux, aux, aux))
	require.Equal(t, http.StatusBadRequest, code, "at most three auxiliary tokens")
	fabOnly, err := b.e.Server.MintToken(b.fab.ID, b.fab.Rotation.ClientID, b.e.Info.ARMAudience)
	require.NoError(t, err)
	code, _ = b.e.Do(t, http.MethodGet, u, nil, hdr(fabOnly))
	require.Equal(t, http.StatusForbidden, code, "another client's token for the linked tenant")
	code, body = b.e.Do(t, http.MethodGet, u, nil, hdr(aux))
	require.Equal(t, http.StatusOK, code, "%v", body)
}
