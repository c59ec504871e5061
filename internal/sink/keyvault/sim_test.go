package keyvault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/sink"
)

// simBundle is a running simulator, the test's own azsecrets client for
// one of its vaults, and the real Key Vault builder on connections to it,
// configured from sim.json alone.
type simBundle struct {
	srv *sim.Server
	// client is the test's own client, for arranging and reading back.
	client   *azsecrets.Client
	vaultURL string
	tenantID string
	// vaultName and rotationOID name the vault and the sinks' identity,
	// for changing its grants.
	vaultName, rotationOID string
	// co is the transport and authority every client of the test shares.
	co azcore.ClientOptions
	// clk is the simulator's clock (wall time plus an offset).
	clk *clock.Offset
	// builder is Kind{}.NewBuilder on creds: the sinks under test make
	// their own azsecrets clients, as in production.
	builder sink.Builder
	creds   *simCredentials
}

// noValueReads is a pipeline policy for the sinks' clients: it fails the
// test on any request that returns a secret value (GET /secrets/{name} or
// /secrets/{name}/{version}); the version list, GET
// /secrets/{name}/versions, carries none.
type noValueReads struct{ t testing.TB }

func (p noValueReads) Do(req *policy.Request) (*http.Response, error) {
	r := req.Raw()
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method == http.MethodGet && segs[0] == "secrets" && len(segs) >= 2 && !(len(segs) == 3 && segs[2] == "versions") {
		p.t.Errorf("the sink read a secret value: GET %s", r.URL.Path)
	}
	return req.Next()
}

// guarded returns co with noValueReads added.
func guarded(t testing.TB, co azcore.ClientOptions) azcore.ClientOptions {
	co.PerCallPolicies = append(append([]policy.Policy(nil), co.PerCallPolicies...), noValueReads{t})
	return co
}

// Test connections of simCredentials.
const (
	connSim = "sim"
	// connDenied is the rotation identity with a wrong client secret:
	// Entra refuses it before the vault is asked.
	connDenied = "denied"
)

// simCredentials is the server's sink.TokenCredentials, for the test's
// connections to the simulator: every client it configures fails the test
// on a value read, and retries quickly.
type simCredentials struct {
	t     testing.TB
	co    azcore.ClientOptions
	creds map[string]azcore.TokenCredential
}

var _ sink.TokenCredentials = (*simCredentials)(nil)

func (c *simCredentials) TokenCredential(_ domain.OrgID, connection string) (sink.AzureIdentity, error) {
	cred, ok := c.creds[connection]
	if !ok {
		return sink.AzureIdentity{}, fmt.Errorf("unknown connection %q", connection)
	}
	co := guarded(c.t, c.co)
	co.Retry = policy.RetryOptions{MaxRetries: 1, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}
	return sink.AzureIdentity{Credential: cred, ClientOptions: co, Simulator: true}, nil
}

// tick moves the simulator's clock past the current second: Key Vault
// stamps versions with whole seconds, and versions written in the same
// second cannot be ordered by their properties alone (see newer).
func (b simBundle) tick() { b.clk.Advance(time.Second) }

// setupSim starts a simulator. The sinks' clients use the rotation
// identity, which the seed lets list, set and recover only, as rotor is
// deployed.
// The test's own client plays everyone else with a hand in the vault (the
// team owning a foreign secret, an admin disabling or deleting a version,
// the application reading its value): it uses the consumer identity,
// granted every secret permission here.
func setupSim(t *testing.T) simBundle {
	t.Helper()
	clk := &clock.Offset{}
	s := simtest.Start(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=1h", Clock: clk})
	srv, info := s.Server, s.Info
	require.NotEmpty(t, info.Tenants)
	tenant := info.Tenants[0]
	require.NotEmpty(t, tenant.KeyVaults, "the seeded tenant has no vault")
	s.GrantSecrets(t, tenant.ID, tenant.KeyVaults[0].Name, tenant.Consumer.PrincipalID, sim.AllSecretPermissions...)

	co := s.ClientOptions
	vaultURL := tenant.KeyVaults[0].URL
	c, err := azsecrets.NewClient(vaultURL, s.ConsumerCredential(t, tenant.ID), &azsecrets.ClientOptions{ClientOptions: co, DisableChallengeResourceVerification: true})
	require.NoError(t, err)
	creds := &simCredentials{t: t, co: co, creds: map[string]azcore.TokenCredential{
		connSim:    s.RotationCredential(t, tenant.ID),
		connDenied: s.SecretCredential(t, tenant.ID, tenant.Rotation.ClientID, "wrong-secret"),
	}}
	builder, err := Kind{}.NewBuilder(sink.Deps{Credentials: creds})
	require.NoError(t, err)
	return simBundle{srv: srv, client: c, vaultURL: vaultURL, tenantID: tenant.ID, co: co, clk: clk, builder: builder, creds: creds,
		vaultName: tenant.KeyVaults[0].Name, rotationOID: tenant.Rotation.ObjectID}
}

// build makes a sink for app writing to secret name in the simulator's vault.
func (b simBundle) build(t *testing.T, name string, app domain.Application, adopt bool) *Sink {
	t.Helper()
	return b.buildConn(t, connSim, name, app, adopt)
}

func (b simBundle) buildConn(t *testing.T, connection, name string, app domain.Application, adopt bool) *Sink {
	t.Helper()
	s, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: b.spec(name, adopt), Connection: connection, App: app})
	require.NoError(t, err)
	return s.(*Sink)
}

func (b simBundle) spec(name string, adopt bool) domain.SinkSpec {
	return domain.SinkSpec{Type: Type, Settings: map[string]any{KeyVaultURL: b.vaultURL, KeySecret: name, KeyAdopt: adopt}}
}

func (b simBundle) app(id string) domain.Application {
	return domain.Application{TenantID: b.tenantID, ObjectID: "obj-" + id, AppID: id, DisplayName: "App " + id}
}

func simDelivery(app domain.Application, keyID, value string, end time.Time) sink.Delivery {
	d := delivery(app, keyID, value)
	d.End = end
	return d
}

// read gets the latest version straight through azsecrets.
func (b simBundle) read(t *testing.T, name string) azsecrets.Secret {
	t.Helper()
	resp, err := b.client.GetSecret(context.Background(), name, "", nil)
	require.NoError(t, err)
	return resp.Secret
}

func tagsOf(s azsecrets.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Tags {
		out[k] = *v
	}
	return out
}

func TestDeliverSim(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	ctx := context.Background()
	end := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)

	t.Run("creates a new secret", func(t *testing.T) {
		app := b.app("app-create")
		s := b.build(t, "create-secret", app, false)
		require.Equal(t, sink.StatusReady, s.Validate(ctx).Status, "absent secret validates")
		res, err := s.Deliver(ctx, simDelivery(app, "key-1", "created-value", end))
		require.NoError(t, err)
		require.True(t, res.Changed)

		got := b.read(t, "create-secret")
		require.Equal(t, "created-value", *got.Value)
		require.Equal(t, string(*got.ID), res.Location)
		require.NotEmpty(t, got.ID.Version(), "location carries the version")
		require.Equal(t, DefaultContentType, *got.ContentType)
		require.True(t, *got.Attributes.Enabled)
		require.NotNil(t, got.Attributes.Expires)
		require.True(t, end.Equal(*got.Attributes.Expires), "expiry %v, credential end %v", got.Attributes.Expires, end)
		require.Equal(t, map[string]string{
			TagManagedBy: ManagedByRotor, TagAppID: "app-create", TagObjectID: "obj-app-create",
			TagKeyID: "key-1", TagRunID: "run-key-1", TagTenantID: b.tenantID,
		}, tagsOf(got))
		require.Equal(t, sink.StatusReady, s.Validate(ctx).Status, "rotor's own secret validates")
	})

	t.Run("skips when the same key is already there", func(t *testing.T) {
		app := b.app("app-skip")
		s := b.build(t, "skip-secret", app, false)
		first, err := s.Deliver(ctx, simDelivery(app, "key-1", "v1", end))
		require.NoError(t, err)
		again, err := s.Deliver(ctx, simDelivery(app, "key-1", "v1", end))
		require.NoError(t, err)
		require.False(t, again.Changed)
		require.Equal(t, first.Location, again.Location)
		require.Equal(t, first.Location, string(*b.read(t, "skip-secret").ID), "no new version")
	})

	t.Run("overwrites its own secret with a new key", func(t *testing.T) {
		app := b.app("app-over")
		s := b.build(t, "over-secret", app, false)
		first, err := s.Deliver(ctx, simDelivery(app, "key-1", "old", end))
		require.NoError(t, err)
		b.tick()
		second, err := s.Deliver(ctx, simDelivery(app, "key-2", "new", end.Add(time.Hour)))
		require.NoError(t, err)
		require.True(t, second.Changed)
		require.NotEqual(t, first.Location, second.Location)
		got := b.read(t, "over-secret")
		require.Equal(t, "new", *got.Value)
		require.Equal(t, "key-2", tagsOf(got)[TagKeyID])
		require.True(t, end.Add(time.Hour).Equal(*got.Attributes.Expires))
		held, err := s.Holds(ctx, "key-2")
		require.NoError(t, err)
		require.True(t, held)
		held, err = s.Holds(ctx, "key-1")
		require.NoError(t, err)
		require.True(t, held, "an older version carried key-1: it reached the vault once")
		held, err = s.Holds(ctx, "key-0")
		require.NoError(t, err)
		require.False(t, held, "never written")
	})

	t.Run("refuses a foreign secret", func(t *testing.T) {
		_, err := b.client.SetSecret(ctx, "foreign-secret", azsecrets.SetSecretParameters{
			Value: to.Ptr("theirs"), Tags: map[string]*string{"owner": to.Ptr("team-x")}}, nil)
		require.NoError(t, err)
		app := b.app("app-foreign")
		s := b.build(t, "foreign-secret", app, false)
		var no *NotOwnedError
		v := s.Validate(ctx)
		require.Equal(t, sink.StatusFailed, v.Status)
		require.ErrorAs(t, v.Err, &no)
		_, err = s.Deliver(ctx, simDelivery(app, "key-1", "mine", end))
		require.ErrorAs(t, err, &no)
		require.True(t, sink.IsPermanent(err))
		require.NotContains(t, err.Error(), "mine")
		require.Equal(t, "theirs", *b.read(t, "foreign-secret").Value, "foreign secret untouched")
	})

	t.Run("adopt takes over a foreign secret", func(t *testing.T) {
		_, err := b.client.SetSecret(ctx, "adopt-secret", azsecrets.SetSecretParameters{
			Value: to.Ptr("theirs"), Tags: map[string]*string{"owner": to.Ptr("team-x")}}, nil)
		require.NoError(t, err)
		b.tick()
		app := b.app("app-adopt")
		s := b.build(t, "adopt-secret", app, true)
		require.Equal(t, sink.StatusReady, s.Validate(ctx).Status)
		res, err := s.Deliver(ctx, simDelivery(app, "key-1", "mine", end))
		require.NoError(t, err)
		require.True(t, res.Changed)
		got := b.read(t, "adopt-secret")
		require.Equal(t, "mine", *got.Value)
		tags := tagsOf(got)
		require.Equal(t, ManagedByRotor, tags[TagManagedBy])
		require.Equal(t, "team-x", tags["owner"], "other tags carried over")

		// Now rotor's: a plain sink (no adopt) may rotate it further.
		b.tick()
		plain := b.build(t, "adopt-secret", app, false)
		res, err = plain.Deliver(ctx, simDelivery(app, "key-2", "mine-2", end))
		require.NoError(t, err)
		require.True(t, res.Changed)
	})

	t.Run("disabled latest version stops delivery", func(t *testing.T) {
		app := b.app("app-disabled")
		s := b.build(t, "disabled-secret", app, false)
		res, err := s.Deliver(ctx, simDelivery(app, "key-1", "v1", end))
		require.NoError(t, err)
		id := azsecrets.ID(res.Location)
		_, err = b.client.UpdateSecretProperties(ctx, id.Name(), id.Version(), azsecrets.UpdateSecretPropertiesParameters{
			SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil)
		require.NoError(t, err)
		_, err = s.Deliver(ctx, simDelivery(app, "key-2", "v2", end))
		// The version list shows the disabled version's tags, so this is no
		// longer Key Vault's 403 SecretDisabled: rotor itself declines to
		// write a new enabled version over someone's disable.
		var de *DisabledError
		require.ErrorAs(t, err, &de)
		require.Equal(t, res.Location, de.ID)
		require.ErrorContains(t, err, "latest version is disabled")
		require.True(t, sink.IsPermanent(err))
		var pe *PermissionError
		require.False(t, errors.As(err, &pe), "a disabled secret is not a permission problem")
		v := s.Validate(ctx)
		require.Equal(t, sink.StatusFailed, v.Status)
		require.ErrorAs(t, v.Err, &de)
		held, err := s.Holds(ctx, "key-1")
		require.NoError(t, err)
		require.True(t, held, "the disabled version held key-1")
	})

	t.Run("latest version found across pages", func(t *testing.T) {
		app := b.app("app-paged")
		s := b.build(t, "paged-secret", app, false)
		const n = 27 // Key Vault pages 25 versions at most
		for i := 1; i <= n; i++ {
			res, err := s.Deliver(ctx, simDelivery(app, fmt.Sprintf("key-%d", i), fmt.Sprintf("paged-value-%d", i), end))
			require.NoError(t, err)
			require.True(t, res.Changed)
			b.tick()
		}
		held, err := s.Holds(ctx, fmt.Sprintf("key-%d", n))
		require.NoError(t, err)
		require.True(t, held, "the newest version is on the second page")
		res, err := s.Deliver(ctx, simDelivery(app, fmt.Sprintf("key-%d", n), fmt.Sprintf("paged-value-%d", n), end))
		require.NoError(t, err)
		require.False(t, res.Changed)
		require.Equal(t, string(*b.read(t, "paged-secret").ID), res.Location)
	})

	t.Run("a connection whose credential fails is a permission error", func(t *testing.T) {
		app := b.app("app-denied")
		s := b.buildConn(t, connDenied, "denied-secret", app, false)
		v := s.Validate(ctx)
		require.Equal(t, sink.StatusFailed, v.Status)
		err := v.Err
		var pe *PermissionError
		require.ErrorAs(t, err, &pe)
		require.True(t, sink.IsPermanent(err))
		require.NotContains(t, err.Error(), "wrong-secret")
		require.True(t, pe.TokenFailed)
		require.Equal(t, http.StatusUnauthorized, pe.StatusCode)
		require.ErrorContains(t, err, `no token for connection "denied": HTTP 401 invalid_client: AADSTS7000215`)
		_, err = s.Deliver(ctx, simDelivery(app, "key-1", "denied-value", end))
		require.ErrorAs(t, err, &pe)
		require.NotContains(t, err.Error(), "denied-value")
	})

	t.Run("503 after retries is retryable and carries no value", func(t *testing.T) {
		app := b.app("app-flaky")
		s := b.build(t, "flaky-secret", app, false)
		require.Equal(t, sink.StatusReady, s.Validate(ctx).Status, "token cached before faults start")

		require.NoError(t, b.srv.SetFaults(sim.FaultConfig{ErrorRate: 1}))
		t.Cleanup(func() { _ = b.srv.SetFaults(sim.FaultConfig{}) })
		v := s.Validate(ctx)
		require.Equal(t, sink.StatusUnknown, v.Status, "a failing vault is unknown, not failed: %s", v.Reason)
		_, err := s.Deliver(ctx, simDelivery(app, "key-1", "flaky-value", end))
		require.Error(t, err)
		require.False(t, sink.IsPermanent(err), "%v", err)
		var re *RequestError
		require.ErrorAs(t, err, &re)
		require.Equal(t, http.StatusServiceUnavailable, re.StatusCode)
		require.NotContains(t, fmtAll(err), "flaky-value")
		require.NoError(t, b.srv.SetFaults(sim.FaultConfig{}))

		res, err := s.Deliver(ctx, simDelivery(app, "key-1", "flaky-value", end))
		require.NoError(t, err, "the retry succeeds once the vault recovers")
		require.True(t, res.Changed)
	})
}
