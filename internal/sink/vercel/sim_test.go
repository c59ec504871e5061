package vercel

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

var testApp = domain.Application{Org: domain.DefaultOrg, TenantID: "tenant-x", ObjectID: "obj-redeploy", AppID: "app-redeploy", DisplayName: "Storefront"}

// issued makes value a password Entra issued to some seeded application,
// so that /_sim/consumers names its key id wherever the value went.
func (b bundle) issued(t *testing.T, keyID, value string) {
	t.Helper()
	tn := b.sim.Server.World().Tenant(b.sim.Info.Tenants[0].ID)
	require.NotNil(t, tn)
	now := b.sim.Now()
	b.sim.Server.World().Update(func() {
		for _, a := range tn.Apps {
			a.Passwords = append(a.Passwords, &sim.Password{KeyID: keyID, Start: now.Add(-time.Minute), End: now.Add(time.Hour), AddedAt: now.Add(-time.Hour), SecretHash: sim.HashSecret(value)})
			return
		}
	})
}

// consumer is what /_sim/consumers says a Vercel consumer holds.
func (b bundle) consumer(target, field string) (keyID string, found bool) {
	for _, c := range b.sim.Server.Consumers() {
		if c.Service == "vercel" && c.Target == target && c.Field == field {
			return c.KeyID, true
		}
	}
	return "", false
}

func delivery(app domain.Application, keyID, value string) sink.Delivery {
	now := time.Now()
	return sink.Delivery{Org: app.Org, RunID: "run-" + keyID, App: app, TenantID: app.TenantID, ClientID: app.AppID, KeyID: keyID,
		Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(value)), Start: now, End: now.Add(time.Hour)}
}

func (b bundle) build(t *testing.T, spec domain.SinkSpec, app domain.Application) *Sink {
	t.Helper()
	sk, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: spec, App: app})
	require.NoError(t, err)
	return sk.(*Sink)
}

func (b bundle) productionDeployments(t *testing.T) []map[string]any {
	t.Helper()
	code, body := b.api(t, http.MethodGet, "/v6/deployments?projectId="+b.v.ProjectID+"&target=production", nil)
	require.Equal(t, http.StatusOK, code, body)
	var out []map[string]any
	for _, d := range body["deployments"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// TestRedeploy: after delivery, AfterAll redeploys production; the new
// deployment is built with the new value (what a running deployment
// holds), and a retried AfterAll — on the same sink or a fresh build, as a
// recovered run — starts no second deployment.
func TestRedeploy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	spec := b.spec("REDEPLOY_CLIENT_SECRET", map[string]any{KeyRedeploy: true, KeyTargets: []any{"production"}})
	sk := b.build(t, spec, testApp)
	require.Equal(t, sink.StatusReady, sk.Validate(ctx).Status)
	before := b.productionDeployments(t)

	const value = "redeploy-value-1"
	b.issued(t, "key-redeploy-1", value)
	d := delivery(testApp, "key-redeploy-1", value)
	res, err := sk.Deliver(ctx, d)
	require.NoError(t, err)
	require.True(t, res.Changed)
	keyID, _ := b.consumer("rotor-demo/storefront/REDEPLOY_CLIENT_SECRET", "production")
	require.Equal(t, "key-redeploy-1", keyID, "the variable holds the new credential")
	_, running := b.consumer("rotor-demo/storefront/deployment", "REDEPLOY_CLIENT_SECRET")
	require.False(t, running, "no deployment runs with it before the redeploy")

	start := time.Now()
	require.NoError(t, sk.AfterAll(ctx, d))
	require.Less(t, time.Since(start), 30*time.Second)
	after := b.productionDeployments(t)
	require.Len(t, after, len(before)+1, "one new production deployment")
	newest := after[0]
	require.Equal(t, "READY", newest["readyState"])
	require.Equal(t, "key-redeploy-1", newest["meta"].(map[string]any)[MetaKeyID])
	keyID, _ = b.consumer("rotor-demo/storefront/deployment", "REDEPLOY_CLIENT_SECRET")
	require.Equal(t, "key-redeploy-1", keyID, "the new deployment was built with the new value")

	require.NoError(t, sk.AfterAll(ctx, d), "a retry on the same sink")
	require.NoError(t, b.build(t, spec, testApp).AfterAll(ctx, d), "a retry by a recovered run")
	require.Len(t, b.productionDeployments(t), len(before)+1, "no second deployment")

	// The next credential redeploys again, from the newest READY one.
	const value2 = "redeploy-value-2"
	b.issued(t, "key-redeploy-2", value2)
	d2 := delivery(testApp, "key-redeploy-2", value2)
	_, err = sk.Deliver(ctx, d2)
	require.NoError(t, err)
	require.NoError(t, sk.AfterAll(ctx, d2))
	require.Len(t, b.productionDeployments(t), len(before)+2)
	keyID, _ = b.consumer("rotor-demo/storefront/deployment", "REDEPLOY_CLIENT_SECRET")
	require.Equal(t, "key-redeploy-2", keyID)
}

// TestRedeployOff: without redeploy, AfterAll deploys nothing.
func TestRedeployOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sk := b.build(t, b.spec("NO_REDEPLOY_SECRET", nil), testApp)
	before := len(b.productionDeployments(t))
	require.NoError(t, sk.AfterAll(context.Background(), delivery(testApp, "k1", "v1")))
	require.Len(t, b.productionDeployments(t), before)
}

// TestSensitiveTargets: a sensitive variable on chosen targets is written
// once per credential, cannot be read back by anyone, and reports each
// target as a consumer.
func TestSensitiveTargets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	spec := b.spec("SENSITIVE_SECRET", map[string]any{KeyType: TypeSensitive, KeyTargets: []any{"production", "preview"}})
	sk := b.build(t, spec, testApp)
	b.issued(t, "key-sensitive", "sensitive-value")
	res, err := sk.Deliver(ctx, delivery(testApp, "key-sensitive", "sensitive-value"))
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.NotContains(t, res.Location, "sensitive-value")

	loc, err := ParseTarget(sk.Target())
	require.NoError(t, err)
	require.Equal(t, []string{"preview", "production"}, loc.Targets)
	e := b.find(t, loc)
	require.NotNil(t, e)
	require.Equal(t, TypeSensitive, e["type"])
	require.Equal(t, "managed by rotor; app app-redeploy; key key-sensitive", e["comment"])
	code, full := b.api(t, http.MethodGet, "/v1/projects/"+b.v.Project+"/env/"+e["id"].(string)+"?decrypt=true", nil)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, full, "value", "a sensitive value cannot be read back")
	require.Equal(t, false, full["decrypted"])
	for _, target := range []string{"production", "preview"} {
		keyID, _ := b.consumer("rotor-demo/storefront/SENSITIVE_SECRET", target)
		require.Equal(t, "key-sensitive", keyID, target)
	}
	_, dev := b.consumer("rotor-demo/storefront/SENSITIVE_SECRET", "development")
	require.False(t, dev)

	again, err := b.build(t, spec, testApp).Deliver(ctx, delivery(testApp, "key-sensitive", "sensitive-value"))
	require.NoError(t, err)
	require.False(t, again.Changed, "the comment names the credential: nothing to write")

	// The same key on another target is another variable, and another target id.
	dev2 := b.build(t, b.spec("SENSITIVE_SECRET", map[string]any{KeyTargets: []any{"development"}}), testApp)
	require.NotEqual(t, sk.Target(), dev2.Target())
	_, err = dev2.Deliver(ctx, delivery(testApp, "key-sensitive", "sensitive-value"))
	require.NoError(t, err)
	held, err := sk.Holds(ctx, "key-sensitive")
	require.NoError(t, err)
	require.True(t, held)

	// A spec that would turn it into an encrypted one is refused by Validate.
	enc := b.build(t, b.spec("SENSITIVE_SECRET", map[string]any{KeyTargets: []any{"production", "preview"}}), testApp)
	v := enc.Validate(ctx)
	require.Equal(t, sink.StatusFailed, v.Status, v.Reason)
	require.Contains(t, v.Reason, "sensitive")
}

// TestGitBranch: a preview variable for one branch is its own variable.
func TestGitBranch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	spec := b.spec("BRANCH_SECRET", map[string]any{KeyTargets: []any{"preview"}, KeyGitBranch: "feature/login"})
	sk := b.build(t, spec, testApp)
	require.Contains(t, sk.Target().String(), "/preview/feature%2Flogin")
	_, err := sk.Deliver(ctx, delivery(testApp, "key-branch", "branch-value"))
	require.NoError(t, err)
	loc, err := ParseTarget(sk.Target())
	require.NoError(t, err)
	e := b.find(t, loc)
	require.NotNil(t, e)
	require.Equal(t, "feature/login", e["gitBranch"])
	other := b.build(t, b.spec("BRANCH_SECRET", map[string]any{KeyTargets: []any{"preview"}}), testApp)
	ver, err := other.Version(ctx)
	require.NoError(t, err)
	require.Empty(t, ver, "the branch-less preview variable is another one, still absent")
}

// TestTeamScoping: a team the token may not act for, and a project the
// team does not have, fail Validate with a reason naming the fix; the
// personal scope (no team_id) does not see the team's project.
func TestTeamScoping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		tweak map[string]any
		want  string
	}{
		"another team":      {map[string]any{KeyTeamID: b.v.OtherTeamID}, "may not act for team " + b.v.OtherTeamID},
		"no such project":   {map[string]any{KeyProject: "no-such-project"}, "project no-such-project was not found in team " + b.v.TeamID},
		"no team":           {map[string]any{KeyTeamID: nil}, "personal account"},
		"a rejected token":  {map[string]any{KeyToken: map[string]any{"env": "UNSET"}}, "UNSET"},
		"the denied user's": {map[string]any{KeyToken: map[string]any{"env": "VERCEL_DENIED_TOKEN"}}, "may not act for team " + b.v.TeamID},
	} {
		t.Run(name, func(t *testing.T) {
			sk := b.build(t, b.spec("SCOPED_SECRET", tc.tweak), testApp)
			v := sk.Validate(ctx)
			require.Equal(t, sink.StatusFailed, v.Status, v.Reason)
			require.Contains(t, v.Reason, tc.want)
			require.Error(t, v.Err)
			_, err := sk.Deliver(ctx, delivery(testApp, "key-scoped", "scoped-value"))
			require.Error(t, err)
			require.True(t, sink.IsPermanent(err), "%v", err)
			sinktest.NoSecret(t, err, "scoped-value")
		})
	}
}

// TestBadToken: a token Vercel does not know is a permanent refusal that
// says to replace the token.
func TestBadToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bl, err := Kind{}.NewBuilder(sink.Deps{HTTPClient: b.sim.HTTP, Secrets: envSecrets{"VERCEL_TOKEN": "not-a-token"}})
	require.NoError(t, err)
	sk, err := bl.Build(context.Background(), sink.BuildRequest{Spec: b.spec("BAD_TOKEN_SECRET", nil), App: testApp})
	require.NoError(t, err)
	v := sk.(*Sink).Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "does not accept the sink's token")
	require.NotContains(t, v.Reason, "not-a-token")
}

// TestAnotherAppsVariable: rotor's variable for another application is
// refused, adopt or not.
func TestAnotherAppsVariable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	mine := b.build(t, b.spec("SHARED_NAME", nil), testApp)
	_, err := mine.Deliver(ctx, delivery(testApp, "k-a", "value-a"))
	require.NoError(t, err)
	other := testApp
	other.AppID, other.ObjectID = "app-other", "obj-other"
	for _, adopt := range []bool{false, true} {
		sk := b.build(t, b.spec("SHARED_NAME", map[string]any{KeyAdopt: adopt}), other)
		_, err := sk.Deliver(ctx, delivery(other, "k-b", "value-b"))
		var no *NotOwnedError
		require.ErrorAs(t, err, &no)
		require.Equal(t, testApp.AppID, no.OwnerAppID)
		require.True(t, strings.Contains(err.Error(), "make the key template unique"))
	}
}

// TestDiscover lists the token's teams and the team's projects.
func TestDiscover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.builder.(sink.Discoverer)
	require.Equal(t, []string{KeyTeamID, KeyProject}, d.DiscoverKeys())
	spec := b.spec("X", nil)
	teams, err := d.Discover(context.Background(), sink.DiscoverQuery{Spec: spec, Key: KeyTeamID})
	require.NoError(t, err)
	require.Equal(t, []sink.Choice{{Value: b.v.TeamID, Label: "Rotor Demo", Detail: b.v.TeamSlug}}, teams)
	projects, err := d.Discover(context.Background(), sink.DiscoverQuery{Spec: spec, Key: KeyProject})
	require.NoError(t, err)
	require.Equal(t, []sink.Choice{{Value: b.v.Project, Label: b.v.Project, Detail: b.v.ProjectID}}, projects)
	_, err = d.Discover(context.Background(), sink.DiscoverQuery{Spec: domain.SinkSpec{Type: Type, Settings: map[string]any{}}, Key: KeyProject})
	require.ErrorContains(t, err, "token")
}
