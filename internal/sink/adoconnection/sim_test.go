package adoconnection

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

func newApp(tenant string) domain.Application {
	return domain.Application{Org: domain.DefaultOrg, TenantID: tenant, ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: "App " + uuid.NewString()[:8]}
}

func delivery(app domain.Application, keyID, value string) sink.Delivery {
	now := time.Now().UTC()
	return sink.Delivery{Org: app.Org, RunID: "run-" + keyID, App: app, TenantID: app.TenantID, ClientID: app.AppID, KeyID: keyID,
		Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(value)), Start: now, End: now.Add(24 * time.Hour)}
}

func (b bundle) build(t *testing.T, app domain.Application, endpoint string, auth map[string]any, conn string) *Sink {
	t.Helper()
	sk, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: b.spec(endpoint, auth), Connection: conn, App: app})
	require.NoError(t, err)
	return sk.(*Sink)
}

func (b bundle) getEndpoint(t *testing.T, id string) map[string]any {
	t.Helper()
	st, m := b.s.Do(t, http.MethodGet, fmt.Sprintf("%s/%s/_apis/serviceendpoint/endpoints/%s?api-version=7.1", b.ado.URL, b.ado.Project, id), nil, b.basic())
	require.Equal(t, http.StatusOK, st)
	return m
}

// A delivery PUTs back every field of the connection as it read it, the
// ones rotor knows nothing of included, and keeps the id.
func TestDeliverKeepsEveryFieldOfTheConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := newApp(b.ado.TenantID)
	id := b.newConnection(t, "keeps-fields", app.AppID)
	// Someone's tool added fields rotor does not know.
	ep := b.getEndpoint(t, id)
	ep["someFutureField"] = map[string]any{"nested": []any{1.5, "two", nil, true}}
	ep["data"].(map[string]any)["azureSpnRoleAssignmentId"] = "ra-123"
	ep["authorization"].(map[string]any)["parameters"].(map[string]any)["scope"] = "/subscriptions/x"
	st, _ := b.s.Do(t, http.MethodPut, fmt.Sprintf("%s/_apis/serviceendpoint/endpoints/%s?api-version=7.1", b.ado.URL, id), ep, b.basic())
	require.Equal(t, http.StatusOK, st)
	before := b.getEndpoint(t, id)

	res, err := b.build(t, app, id, pat(envPAT), connSim).Deliver(context.Background(), delivery(app, "k1", "value-one"))
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, before, b.getEndpoint(t, id), "every field is as it was, as JSON values")
	require.Equal(t, "value-one", b.control(t, http.MethodGet, "endpoints/"+id, nil)["key"])
}

// Both ways in work: a PAT, and an Entra token of a member of the
// organization.
func TestPATAndEntraBothDeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name string
		auth map[string]any
	}{
		{"pat", pat(envPAT)},
		{"entra", map[string]any{"entra": true}},
		{"connection", map[string]any{"connection": connSim}},
	} {
		app := newApp(b.ado.TenantID)
		id := b.newConnection(t, "auth-"+tc.name, app.AppID)
		sk := b.build(t, app, id, tc.auth, connSim)
		v := sk.Validate(context.Background())
		require.Equal(t, sink.StatusReady, v.Status, "%s: %s", tc.name, v.Reason)
		_, err := sk.Deliver(context.Background(), delivery(app, "k-"+tc.name, "value-"+tc.name))
		require.NoError(t, err, tc.name)
		require.Equal(t, "value-"+tc.name, b.control(t, http.MethodGet, "endpoints/"+id, nil)["key"], tc.name)
	}
}

// A PAT Azure DevOps does not know (203 sign-in page) and an Entra
// identity that is not a member fail Validate with a reason that says so,
// and Deliver permanently.
func TestRefusedIdentitiesFailWithAReason(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := newApp(b.ado.TenantID)
	id := b.newConnection(t, "refused", app.AppID)
	for _, tc := range []struct {
		name string
		auth map[string]any
		want string
	}{
		{"unknown PAT", pat(envBogus), "sign-in page (203)"},
		{"non-member", map[string]any{"connection": connOther}, "TF400813"},
		{"no access PAT", pat(envNoAccess), "not authorized"},
	} {
		sk := b.build(t, app, id, tc.auth, connSim)
		v := sk.Validate(context.Background())
		require.Equal(t, sink.StatusFailed, v.Status, tc.name)
		require.Contains(t, v.Reason, tc.want, tc.name)
		require.Contains(t, v.Reason, "refused", tc.name)
		_, err := sk.Deliver(context.Background(), delivery(app, "k", "never-written"))
		require.Error(t, err)
		require.True(t, sink.IsPermanent(err), "%s: %v", tc.name, err)
		sinktest.NoSecret(t, err, "never-written")
	}
	require.Equal(t, "", b.control(t, http.MethodGet, "endpoints/"+id, nil)["key"], "nothing was written")
}

// A read-only PAT passes Validate (Azure DevOps has no dry run) and the
// delivery is refused permanently.
func TestReadOnlyPATIsRefusedAtTheWrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := newApp(b.ado.TenantID)
	id := b.newConnection(t, "read-only", app.AppID)
	sk := b.build(t, app, id, pat(envReadOnly), connSim)
	v := sk.Validate(context.Background())
	require.Equal(t, sink.StatusReady, v.Status, v.Reason)
	require.Contains(t, v.Reason, "no dry run")
	_, err := sk.Deliver(context.Background(), delivery(app, "k", "never-written"))
	require.True(t, sink.IsPermanent(err), "%v", err)
	require.Contains(t, err.Error(), "403")
	sinktest.NoSecret(t, err, "never-written")
}

// Connections that hold no client secret are refused whatever adopt says.
func TestWrongKindOfConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := newApp(b.ado.TenantID)
	id := b.newConnection(t, "federated", app.AppID)
	ep := b.getEndpoint(t, id)
	ep["authorization"] = map[string]any{"scheme": "WorkloadIdentityFederation", "parameters": map[string]any{"serviceprincipalid": app.AppID, "tenantid": app.TenantID}}
	st, _ := b.s.Do(t, http.MethodPut, fmt.Sprintf("%s/_apis/serviceendpoint/endpoints/%s?api-version=7.1", b.ado.URL, id), ep, b.basic())
	require.Equal(t, http.StatusOK, st)
	spec := b.spec(id, pat(envPAT))
	spec.Settings["adopt"] = true
	sk, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: spec, App: app})
	require.NoError(t, err)
	v := sk.(*Sink).Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "WorkloadIdentityFederation")
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	base := func() map[string]any {
		return map[string]any{"organization_url": "https://dev.azure.com/contoso", "project": "payments", "endpoint": "{{ .App.DisplayName | slug }}", "pat": map[string]any{"env": "ADO_PAT"}}
	}
	for _, tc := range []struct {
		name  string
		tweak func(m map[string]any)
		want  []string
	}{
		{"valid", func(map[string]any) {}, nil},
		{"entra", func(m map[string]any) { delete(m, "pat"); m["entra"] = true }, nil},
		{"unknown key and missing project", func(m map[string]any) { m["colour"] = "red"; delete(m, "project") },
			[]string{"unknown setting(s) colour", "project: is required"}},
		{"literal PAT", func(m map[string]any) { m["pat"] = "abc" }, []string{"not the secret itself"}},
		{"no auth", func(m map[string]any) { delete(m, "pat") }, []string{"say how to sign in"}},
		{"both auths", func(m map[string]any) { m["entra"] = true }, []string{"not both"}},
		{"bad url", func(m map[string]any) { m["organization_url"] = "http://dev.azure.com/a/b" }, []string{"organization_url"}},
	} {
		m := base()
		tc.tweak(m)
		err := Kind{}.CheckSpec(domain.SinkSpec{Type: Type, Settings: m})
		if tc.want == nil {
			require.NoError(t, err, tc.name)
			continue
		}
		require.Error(t, err, tc.name)
		for _, w := range tc.want {
			require.Contains(t, err.Error(), w, tc.name)
		}
		require.NotContains(t, err.Error(), "abc")
	}
	require.True(t, Kind{}.SharesTarget(domain.SinkSpec{Type: Type, Settings: map[string]any{"organization_url": "https://dev.azure.com/contoso",
		"project": "p", "endpoint": "7c4b0e5e-0000-4000-8000-000000000001", "entra": true}}), "a fixed id is one target for every application")
	require.False(t, Kind{}.SharesTarget(domain.SinkSpec{Type: Type, Settings: base()}))
}

func TestDiscoverListsAzureRMConnections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := newApp(b.ado.TenantID)
	id := b.newConnection(t, "listed", app.AppID)
	choices, err := b.builder.(sink.Discoverer).Discover(context.Background(), sink.DiscoverQuery{Org: domain.DefaultOrg, Connection: connSim,
		Spec: b.spec("", pat(envPAT)), Key: KeyEndpoint})
	require.NoError(t, err)
	var found bool
	for _, c := range choices {
		if c.Value == id {
			found = true
			require.Equal(t, "listed", c.Label)
			require.Contains(t, c.Detail, app.AppID)
		}
	}
	require.True(t, found, "%v", choices)
}
