package ado_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

type env struct {
	s *simtest.Sim
	a *simfile.AzureDevOps
}

func setup(t *testing.T) env {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "demo"})
	require.NotNil(t, s.Info.AzureDevOps)
	return env{s: s, a: s.Info.AzureDevOps}
}

func basic(pat string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(":"+pat))}
}

func (e env) endpointURL(project bool) string {
	if project {
		return fmt.Sprintf("%s/%s/_apis/serviceendpoint/endpoints/%s?api-version=7.1", e.a.URL, e.a.Project, e.a.EndpointID)
	}
	return fmt.Sprintf("%s/_apis/serviceendpoint/endpoints/%s?api-version=7.1", e.a.URL, e.a.EndpointID)
}

func (e env) groupURL(project bool) string {
	if project {
		return fmt.Sprintf("%s/%s/_apis/distributedtask/variablegroups/%d?api-version=7.1", e.a.URL, e.a.Project, e.a.VariableGroupID)
	}
	return fmt.Sprintf("%s/_apis/distributedtask/variablegroups/%d?api-version=7.1", e.a.URL, e.a.VariableGroupID)
}

func (e env) control(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	u := strings.TrimSuffix(e.a.URL, "/"+e.a.Organization) + "/_sim/ado/" + path
	st, m := e.s.Do(t, method, u, body, e.s.AdminHeader())
	require.Less(t, st, 300, "%v", m)
	return m
}

func TestDemoSeed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	require.Equal(t, "contoso", e.a.Organization)
	require.Equal(t, "payments", e.a.Project)
	require.Equal(t, "api-payments", e.a.AppName)
	app := e.s.AppNamed(t, "contoso", "api-payments")
	require.Equal(t, app.AppID, e.a.AppID)
	st, ep := e.s.Do(t, http.MethodGet, e.endpointURL(true), nil, basic(e.a.PAT))
	require.Equal(t, http.StatusOK, st)
	auth := ep["authorization"].(map[string]any)
	params := auth["parameters"].(map[string]any)
	require.Equal(t, app.AppID, params["serviceprincipalid"])
	require.NotContains(t, params, "serviceprincipalkey", "the key never reads back")
	require.Equal(t, "azurerm", ep["type"])
}

func TestBadPATGetsTheSignInPage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	req, err := http.NewRequest(http.MethodGet, e.endpointURL(true), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", basic("not-a-pat")["Authorization"])
	resp, err := e.s.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusNonAuthoritativeInfo, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Contains(t, string(b), "Sign In")
}

func TestAccessByPATAndToken(t *testing.T) {
	t.Parallel()
	e := setup(t)
	st, body := e.s.Do(t, http.MethodGet, e.endpointURL(true), nil, basic(e.a.NoAccessPAT))
	require.Equal(t, http.StatusUnauthorized, st)
	require.Contains(t, body["message"], "TF400813")
	require.Equal(t, "UnauthorizedRequestException", body["typeKey"])

	st, _ = e.s.Do(t, http.MethodGet, e.endpointURL(true), nil, basic(e.a.ReadOnlyPAT))
	require.Equal(t, http.StatusOK, st, "a read-only PAT reads")
	st, body = e.s.Do(t, http.MethodPut, e.endpointURL(false), map[string]any{"id": e.a.EndpointID}, basic(e.a.ReadOnlyPAT))
	require.Equal(t, http.StatusForbidden, st, "but does not write: %v", body)

	// Entra: the rotation identity is a member; another identity of the
	// tenant is not.
	member, err := e.s.Server.MintToken(e.a.TenantID, e.s.Tenant(t, e.a.TenantID).Rotation.ClientID, e.a.Resource)
	require.NoError(t, err)
	st, _ = e.s.Do(t, http.MethodGet, e.endpointURL(true), nil, map[string]string{"Authorization": "Bearer " + member})
	require.Equal(t, http.StatusOK, st)
	other, err := e.s.Server.MintToken(e.a.TenantID, e.s.Tenant(t, e.a.TenantID).Consumer.ClientID, e.a.Resource)
	require.NoError(t, err)
	st, body = e.s.Do(t, http.MethodGet, e.endpointURL(true), nil, map[string]string{"Authorization": "Bearer " + other})
	require.Equal(t, http.StatusUnauthorized, st)
	require.Contains(t, body["message"], "not authorized")
	graph, err := e.s.Server.MintToken(e.a.TenantID, e.s.Tenant(t, e.a.TenantID).Rotation.ClientID, "https://graph.microsoft.com")
	require.NoError(t, err)
	st, _ = e.s.Do(t, http.MethodGet, e.endpointURL(true), nil, map[string]string{"Authorization": "Bearer " + graph})
	require.Equal(t, http.StatusUnauthorized, st, "a token for another resource is refused")

	// The token endpoint issues tokens for Azure DevOps' application id.
	tn := e.s.Tenant(t, e.a.TenantID)
	st, tok := e.s.TokenRequest(t, tn.ID, simtest.SecretForm(tn, e.a.Resource+"/.default"))
	require.Equal(t, http.StatusOK, st, "%v", tok)
}

func TestEndpointPUTKeepsUnknownFieldsAndRefusesPartialObjects(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := basic(e.a.PAT)
	_, ep := e.s.Do(t, http.MethodGet, e.endpointURL(true), nil, h)
	ep["someFutureField"] = map[string]any{"nested": []any{1.0, "two"}}
	ep["authorization"].(map[string]any)["parameters"].(map[string]any)["serviceprincipalkey"] = "new-key-1"
	st, body := e.s.Do(t, http.MethodPut, e.endpointURL(false), ep, h)
	require.Equal(t, http.StatusOK, st, "%v", body)
	require.NotContains(t, body["authorization"].(map[string]any)["parameters"], "serviceprincipalkey")
	_, got := e.s.Do(t, http.MethodGet, e.endpointURL(true), nil, h)
	require.Equal(t, ep["someFutureField"], got["someFutureField"])
	require.Equal(t, e.a.EndpointID, got["id"], "the id stays")
	require.Equal(t, "new-key-1", e.control(t, http.MethodGet, "endpoints/"+e.a.EndpointID, nil)["key"])

	// A PUT without a key keeps it.
	st, _ = e.s.Do(t, http.MethodPut, e.endpointURL(false), got, h)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "new-key-1", e.control(t, http.MethodGet, "endpoints/"+e.a.EndpointID, nil)["key"])

	for name, drop := range map[string]func(m map[string]any){
		"no project references": func(m map[string]any) { delete(m, "serviceEndpointProjectReferences") },
		"no scheme":             func(m map[string]any) { delete(m["authorization"].(map[string]any), "scheme") },
		"another id":            func(m map[string]any) { m["id"] = "00000000-0000-0000-0000-000000000000" },
	} {
		_, m := e.s.Do(t, http.MethodGet, e.endpointURL(true), nil, h)
		drop(m)
		st, body := e.s.Do(t, http.MethodPut, e.endpointURL(false), m, h)
		require.Equal(t, http.StatusBadRequest, st, name)
		require.Equal(t, "ArgumentException", body["typeKey"], name)
	}
	var found bool
	for _, c := range e.consumers(t) {
		if c["target"] == "contoso/payments/serviceendpoint/"+e.a.EndpointID {
			found = true
		}
	}
	require.True(t, found, "the endpoint's write is recorded as a consumer")
}

func (e env) consumers(t *testing.T) []map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.s.Info.ControlURL+"consumers", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.s.AdminToken)
	resp, err := e.s.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Value []map[string]any `json:"value"`
	}
	b, _ := io.ReadAll(resp.Body)
	require.NoError(t, jsonUnmarshal(b, &out), string(b))
	return out.Value
}

func TestVariableGroupPUTReplacesTheSet(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := basic(e.a.PAT)
	st, g := e.s.Do(t, http.MethodGet, e.groupURL(true), nil, h)
	require.Equal(t, http.StatusOK, st)
	vars := g["variables"].(map[string]any)
	require.Nil(t, vars["SQL_PASSWORD"].(map[string]any)["value"], "secret values read back as null")
	require.Equal(t, "westeurope", vars["PAYMENTS_REGION"].(map[string]any)["value"])
	before := g["modifiedOn"]

	// Send SQL_PASSWORD as null (kept), a new secret, drop PAYMENTS_TIMEOUT
	// and WEBHOOK_SIGNATURE (deleted).
	body := map[string]any{"name": g["name"], "type": "Vsts", "variableGroupProjectReferences": g["variableGroupProjectReferences"],
		"variables": map[string]any{
			"PAYMENTS_REGION": map[string]any{"value": "westeurope"},
			"SQL_PASSWORD":    map[string]any{"value": nil, "isSecret": true},
			e.a.Variable:      map[string]any{"value": "the-new-secret", "isSecret": true},
		}}
	st, after := e.s.Do(t, http.MethodPut, e.groupURL(false), body, h)
	require.Equal(t, http.StatusOK, st, "%v", after)
	require.NotEqual(t, before, after["modifiedOn"])
	got := e.control(t, http.MethodGet, fmt.Sprintf("variablegroups/%d", e.a.VariableGroupID), nil)["variables"].(map[string]any)
	require.Len(t, got, 3, "variables not sent are deleted")
	require.Equal(t, "someone-elses-sql-password", got["SQL_PASSWORD"].(map[string]any)["value"], "null keeps a secret")
	require.Equal(t, "the-new-secret", got[e.a.Variable].(map[string]any)["value"])
	require.NotContains(t, got, "WEBHOOK_SIGNATURE")

	delete(body, "variableGroupProjectReferences")
	st, _ = e.s.Do(t, http.MethodPut, e.groupURL(false), body, h)
	require.Equal(t, http.StatusUnauthorized, st, "no project references: 401, as reported of Azure DevOps")

	var found bool
	for _, c := range e.consumers(t) {
		if c["target"] == fmt.Sprintf("contoso/payments/variablegroup/%d", e.a.VariableGroupID) && c["field"] == e.a.Variable {
			found = true
		}
	}
	require.True(t, found)
}
