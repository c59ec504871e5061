package adovariables

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

func newApp(tenant, name string) domain.Application {
	return domain.Application{Org: domain.DefaultOrg, TenantID: tenant, ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: name}
}

func delivery(app domain.Application, keyID, value string) sink.Delivery {
	now := time.Now().UTC()
	return sink.Delivery{Org: app.Org, RunID: "run-" + keyID, App: app, TenantID: app.TenantID, ClientID: app.AppID, KeyID: keyID,
		Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(value)), Start: now, End: now.Add(24 * time.Hour)}
}

func (b bundle) build(t *testing.T, req sink.BuildRequest) *Sink {
	t.Helper()
	sk, err := b.builder.Build(context.Background(), req)
	require.NoError(t, err)
	return sk.(*Sink)
}

// Two rotations and a retried one leave every other variable of the group
// as it was: plain values, secret values, and their other fields.
func TestOtherVariablesSurviveRotations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	app := newApp(b.ado.TenantID, "Payments API")
	others := func() map[string]map[string]any {
		vars := b.groupVars(t, b.ado.VariableGroupID)
		delete(vars, b.ado.Variable)
		for _, v := range vars {
			delete(v, "rev")
		}
		return vars
	}
	before := others()
	require.Len(t, before, 4, "the demo group's other variables")
	// The demo group is found by name, as the demo's rotor.yaml names it.
	req := sink.BuildRequest{Spec: b.spec(b.ado.VariableGroupName, b.ado.Variable, pat(envPAT)), Connection: connSim, App: app}

	r1, err := b.build(t, req).Deliver(ctx, delivery(app, "k1", "first-value"))
	require.NoError(t, err)
	require.True(t, r1.Changed)
	require.Equal(t, "added the variable to the group", r1.Note)
	req.Last = &sink.Delivered{KeyID: "k1", Version: r1.Version}
	r2, err := b.build(t, req).Deliver(ctx, delivery(app, "k2", "second-value"))
	require.NoError(t, err)
	require.True(t, r2.Changed)
	// The answer to a retried delivery was lost: the rotation had only
	// claimed the target, and tries again on a fresh build.
	req.Last = &sink.Delivered{KeyID: "k2"}
	r3, err := b.build(t, req).Deliver(ctx, delivery(app, "k2", "second-value"))
	require.NoError(t, err)
	req.Last = &sink.Delivered{KeyID: "k2", Version: r3.Version}
	r4, err := b.build(t, req).Deliver(ctx, delivery(app, "k2", "second-value"))
	require.NoError(t, err)
	require.False(t, r4.Changed, "delivered and recorded: nothing to do")

	require.Equal(t, before, others(), "every other variable is as it was")
	mine := b.groupVars(t, b.ado.VariableGroupID)[b.ado.Variable]
	require.Equal(t, "second-value", mine["value"])
	require.Equal(t, true, mine["isSecret"])
}

// A variable someone else put in the group is refused, and left alone.
func TestForeignVariableIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := newApp(b.ado.TenantID, "Payments API")
	sk := b.build(t, sink.BuildRequest{Spec: b.spec(fmt.Sprint(b.ado.VariableGroupID), "SQL_PASSWORD", pat(envPAT)), App: app})
	v := sk.Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "someone else's")
	_, err := sk.Deliver(context.Background(), delivery(app, "k", "never-written"))
	require.True(t, sink.IsPermanent(err))
	require.Equal(t, "someone-elses-sql-password", b.groupVars(t, b.ado.VariableGroupID)["SQL_PASSWORD"]["value"])
}

func TestPATAndEntraBothDeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i, auth := range []map[string]any{pat(envPAT), {"entra": true}} {
		app := newApp(b.ado.TenantID, fmt.Sprintf("Auth App %d", i))
		gid := b.newGroup(t, fmt.Sprintf("auth-%d", i))
		sk := b.build(t, sink.BuildRequest{Spec: b.spec(gid, "CLIENT_SECRET", auth), Connection: connSim, App: app})
		v := sk.Validate(context.Background())
		require.Equal(t, sink.StatusReady, v.Status, v.Reason)
		_, err := sk.Deliver(context.Background(), delivery(app, "k", fmt.Sprintf("value-%d", i)))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("value-%d", i), b.groupVars(t, gid)["CLIENT_SECRET"]["value"])
	}
}

func TestRefusedIdentitiesFailWithAReason(t *testing.T) {
	t.Parallel()
	b := setup(t)
	app := newApp(b.ado.TenantID, "Refused App")
	for _, tc := range []struct {
		name string
		auth map[string]any
		want string
	}{
		{"unknown PAT", pat(envBogus), "sign-in page (203)"},
		{"non-member", map[string]any{"connection": connOther}, "TF400813"},
	} {
		sk := b.build(t, sink.BuildRequest{Spec: b.spec(b.ado.VariableGroupID, "CLIENT_SECRET", tc.auth), Connection: connSim, App: app})
		v := sk.Validate(context.Background())
		require.Equal(t, sink.StatusFailed, v.Status, tc.name)
		require.Contains(t, v.Reason, tc.want, tc.name)
		_, err := sk.Deliver(context.Background(), delivery(app, "k", "never-written"))
		require.True(t, sink.IsPermanent(err), "%s: %v", tc.name, err)
		sinktest.NoSecret(t, err, "never-written")
	}
}

func TestDiscoverListsGroups(t *testing.T) {
	t.Parallel()
	b := setup(t)
	choices, err := b.builder.(sink.Discoverer).Discover(context.Background(), sink.DiscoverQuery{Org: domain.DefaultOrg,
		Spec: b.spec(nil, "", pat(envPAT)), Key: KeyGroup})
	require.NoError(t, err)
	require.NotEmpty(t, choices)
	require.Equal(t, fmt.Sprint(b.ado.VariableGroupID), choices[0].Value)
	require.Equal(t, b.ado.VariableGroupName, choices[0].Label)
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	ok := map[string]any{"organization_url": "https://dev.azure.com/contoso", "project": "p", "group": 7, "variable": "{{ .App.DisplayName | snake | upper }}_SECRET", "entra": true}
	require.NoError(t, Kind{}.CheckSpec(domain.SinkSpec{Type: Type, Settings: ok}))
	bad := map[string]any{"organization_url": "https://dev.azure.com/contoso", "project": "p", "group": "g", "variable": "has space {{ .App.DisplayName }}", "entra": true, "value": "x"}
	err := Kind{}.CheckSpec(domain.SinkSpec{Type: Type, Settings: bad})
	require.ErrorContains(t, err, "unknown setting(s) value")
	require.ErrorContains(t, err, "variable: template")
	require.True(t, Kind{}.SharesTarget(domain.SinkSpec{Type: Type, Settings: map[string]any{"organization_url": "https://dev.azure.com/contoso", "project": "p", "group": 7, "variable": "FIXED", "entra": true}}))
	require.False(t, Kind{}.SharesTarget(domain.SinkSpec{Type: Type, Settings: ok}))
}
