package github

import (
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	simgithub "github.com/rotor-dev/rotor/internal/sim/github"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

var demoApp = domain.Application{Org: domain.DefaultOrg, TenantID: "tenant-1", ObjectID: "obj-1", AppID: "app-1", DisplayName: "Storefront Web"}

func delivery(keyID, value string) sink.Delivery {
	now := time.Now().UTC()
	return sink.Delivery{Org: domain.DefaultOrg, RunID: "run-" + keyID, App: demoApp, KeyID: keyID, Kind: domain.KindSecret,
		Material: sink.SecretMaterial(secret.New(value)), Start: now, End: now.Add(24 * time.Hour)}
}

func (b bundle) build(t *testing.T, spec domain.SinkSpec, last *sink.Delivered) sink.Sink {
	t.Helper()
	sk, err := b.builder.Build(b.ctx, sink.BuildRequest{Spec: spec, App: demoApp, Last: last})
	require.NoError(t, err)
	return sk
}

func withToken(spec domain.SinkSpec, env string) domain.SinkSpec {
	spec.Settings = maps.Clone(spec.Settings)
	spec.Settings[KeyToken] = map[string]any{"env": env}
	return spec
}

// TestCreatedThenUpdated: the first delivery creates (201), the next
// updates (204) and the journal's note says which.
func TestCreatedThenUpdated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sk := b.build(t, b.spec(ScopeRepository, "{{ .App.DisplayName | slug }}_CLIENT_SECRET"), nil)
	require.Equal(t, "github:"+b.sim.Info.GitHub.URL+"repos/contoso/storefront/actions/secrets/STOREFRONT_WEB_CLIENT_SECRET", sk.Target().String())

	res, err := sk.Deliver(b.ctx, delivery("k1", "value-one"))
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, "created the secret", res.Note)
	b.sim.AdvanceClock(2 * time.Second)
	res2, err := sk.Deliver(b.ctx, delivery("k2", "value-two"))
	require.NoError(t, err, "a sink that wrote the secret treats it as its own")
	require.True(t, res2.Changed)
	require.Empty(t, res2.Note, "an update (204) is just a write")
	require.NotEqual(t, res.Version, res2.Version)

	held, _ := sk.(sink.Holder).Holds(b.ctx, "k1")
	require.False(t, held, "k1 was replaced")
	held, _ = sk.(sink.Holder).Holds(b.ctx, "k2")
	require.True(t, held)

	found := false
	for _, c := range b.sim.Server.Consumers() {
		if c.Service == simgithub.ServiceName && c.Target == "contoso/storefront/STOREFRONT_WEB_CLIENT_SECRET" {
			found = true
		}
	}
	require.True(t, found, "the simulator lists the consumer")
}

// TestReadOnlyTokenFailsValidate: the reason says what permission to give.
func TestReadOnlyTokenFailsValidate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, scope := range []Scope{ScopeRepository, ScopeEnvironment, ScopeOrganization} {
		sk := b.build(t, withToken(b.spec(scope, "X_SECRET"), envReadOnly), nil)
		v := sk.(sink.Validator).Validate(b.ctx)
		require.Equal(t, sink.StatusFailed, v.Status, "%s: %s", scope, v.Reason)
		require.Contains(t, v.Reason, "Secrets permission", scope)
		require.Contains(t, v.Reason, "repo scope", scope)
	}
	sk := b.build(t, withToken(b.spec(ScopeRepository, "X_SECRET"), "GH_UNSET"), nil)
	v := sk.(sink.Validator).Validate(b.ctx)
	require.Equal(t, sink.StatusFailed, v.Status, "a token that is not configured: %s", v.Reason)
	require.Contains(t, v.Reason, "GH_UNSET")
}

// TestBadToken: GitHub's 401 fails validation and delivery permanently.
func TestBadToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sk := b.build(t, withToken(b.spec(ScopeRepository, "X_SECRET"), envBad), nil)
	v := sk.(sink.Validator).Validate(b.ctx)
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "GitHub refused the token (environment variable GH_BAD)")
	_, err := sk.Deliver(b.ctx, delivery("k1", "v"))
	require.True(t, sink.IsPermanent(err), "%v", err)
	sinktest.NoSecret(t, err, "ghp_not_a_token")
}

// TestMissingTargets: a missing environment or repository (404) fails
// validation with a reason and delivery permanently.
func TestMissingTargets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(ScopeEnvironment, "X_SECRET")
	spec.Settings[KeyEnvironment] = "no-such-env"
	v := b.build(t, spec, nil).(sink.Validator).Validate(b.ctx)
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, `environment "no-such-env" does not exist`)

	spec = b.spec(ScopeRepository, "X_SECRET")
	spec.Settings[KeyRepo] = "no-such-repo"
	sk := b.build(t, spec, nil)
	v = sk.(sink.Validator).Validate(b.ctx)
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "was not found")
	_, err := sk.Deliver(b.ctx, delivery("k1", "v"))
	require.Error(t, err)
	require.True(t, sink.IsPermanent(err), "%v", err)
}

// TestSecondaryRateLimitIsRetryable: GitHub's 403 secondary limit is not a
// denial; the error carries Retry-After.
func TestSecondaryRateLimitIsRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sk := b.build(t, withToken(b.spec(ScopeRepository, "THROTTLED_SECRET"), envThrottled), nil)
	_, err := sk.Deliver(b.ctx, delivery("k1", "throttled-value"))
	require.Error(t, err)
	require.False(t, sink.IsPermanent(err), "a rate limit passes: %v", err)
	var api *APIError
	require.ErrorAs(t, err, &api)
	require.True(t, api.RateLimited)
	require.Equal(t, http.StatusForbidden, api.Status)
	require.Equal(t, simgithub.RetryAfterSeconds*time.Second, api.RetryAfter)
	sinktest.NoSecret(t, err, "throttled-value", b.sim.Info.GitHub.ThrottledToken)

	v := sk.(sink.Validator).Validate(b.ctx)
	require.Equal(t, sink.StatusUnknown, v.Status, "throttled is not failed: %s", v.Reason)
}

// TestSeededForeignSecretRefused: the demo's DEPLOY_KEY is someone else's.
func TestSeededForeignSecretRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sk := b.build(t, b.spec(ScopeRepository, simgithub.DemoForeignSecret), nil)
	v := sk.(sink.Validator).Validate(b.ctx)
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "adopt: true")
	_, err := sk.Deliver(b.ctx, delivery("k1", "v"))
	var fe *ForeignError
	require.ErrorAs(t, err, &fe)

	sk = b.build(t, b.spec(ScopeOrganization, simgithub.DemoOrgSecret), nil)
	_, err = sk.Deliver(b.ctx, delivery("k1", "v"))
	require.ErrorAs(t, err, &fe)
}

// TestHoldsAfterLostAnswer: a claim recorded without a version (the write's
// answer was lost) counts as held when the secret changed after the claim.
func TestHoldsAfterLostAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(ScopeRepository, "LOST_ANSWER")
	_, err := b.build(t, spec, nil).Deliver(b.ctx, delivery("k1", "v1"))
	require.NoError(t, err)
	claim := &sink.Delivered{KeyID: "k1", At: b.sim.Now().Add(-time.Minute)}
	held, err := b.build(t, spec, claim).(sink.Holder).Holds(b.ctx, "k1")
	require.NoError(t, err)
	require.True(t, held)
	claim.At = b.sim.Now().Add(time.Hour)
	held, err = b.build(t, spec, claim).(sink.Holder).Holds(b.ctx, "k1")
	require.NoError(t, err)
	require.False(t, held, "not updated since the claim")
}

// TestSelectedRepositories: an organization secret for chosen repositories.
func TestSelectedRepositories(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(ScopeOrganization, "SHARED_SECRET")
	spec.Settings[KeyVisibility] = "selected"
	spec.Settings[KeySelectedRepositories] = []any{"storefront", "payroll"}
	sk := b.build(t, spec, nil)
	require.Equal(t, sink.StatusReady, sk.(sink.Validator).Validate(b.ctx).Status)
	_, err := sk.Deliver(b.ctx, delivery("k1", "v1"))
	require.NoError(t, err)
	sec, _, err := b.admin.Actions.GetOrgSecret(b.ctx, "contoso", "SHARED_SECRET")
	require.NoError(t, err)
	require.Equal(t, "selected", sec.Visibility)

	spec.Settings[KeySelectedRepositories] = []any{"storefront", "nope"}
	v := b.build(t, spec, nil).(sink.Validator).Validate(b.ctx)
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "selected repositories")
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.builder.(sink.Discoverer)
	require.Equal(t, []string{KeyRepo, KeyEnvironment}, d.DiscoverKeys())
	spec := b.spec(ScopeEnvironment, "X")
	got, err := d.Discover(b.ctx, sink.DiscoverQuery{Org: domain.DefaultOrg, Spec: spec, Key: KeyRepo})
	require.NoError(t, err)
	require.Equal(t, []sink.Choice{
		{Value: "payroll", Label: "contoso/payroll", Detail: "private"},
		{Value: "storefront", Label: "contoso/storefront", Detail: "private"},
	}, got)
	got, err = d.Discover(b.ctx, sink.DiscoverQuery{Org: domain.DefaultOrg, Spec: spec, Key: KeyEnvironment})
	require.NoError(t, err)
	require.Equal(t, []sink.Choice{{Value: "production", Label: "production"}, {Value: "staging", Label: "staging"}}, got)

	spec.Settings[KeyOwner] = simgithub.DemoUser
	got, err = d.Discover(b.ctx, sink.DiscoverQuery{Org: domain.DefaultOrg, Spec: spec, Key: KeyRepo})
	require.NoError(t, err)
	require.Equal(t, []sink.Choice{{Value: "dotfiles", Label: "octo-dev/dotfiles", Detail: "public"}}, got, "a user's repositories")

	_, err = d.Discover(b.ctx, sink.DiscoverQuery{Org: domain.DefaultOrg, Spec: withToken(spec, envReadOnly), Key: KeyName})
	require.Error(t, err)
}
