package logicapp

import (
	"context"
	"fmt"
	"maps"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/arm"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/sinktest"
)

const (
	connSim         = "sim"
	connDenied      = "denied"      // the consumer identity: no role on rg-logic
	connUnreachable = "unreachable" // ARM on a closed port
	connLinked      = "linked"      // the rotation identity with the second tenant as auxiliary
)

type simCredentials struct{ ids map[string]sink.AzureIdentity }

func (c *simCredentials) TokenCredential(_ domain.OrgID, connection string) (sink.AzureIdentity, error) {
	id, ok := c.ids[connection]
	if !ok {
		return sink.AzureIdentity{}, fmt.Errorf("unknown connection %q", connection)
	}
	return id, nil
}

type bundle struct {
	sim     *simtest.Sim
	arm     *arm.Service
	tenant  *simfile.Tenant
	other   *simfile.Tenant
	builder sink.Builder
}

func armOptions(s *simtest.Sim, armURL string) azcore.ClientOptions {
	co := s.ClientOptions
	co.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: s.Info.AuthorityHost, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
		cloud.ResourceManager: {Endpoint: armURL, Audience: s.Info.ARMAudience},
	}}
	co.Retry = policy.RetryOptions{MaxRetries: 1, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}
	return co
}

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "apps=3,tenants=2,expiring=1h", Clock: &clock.Offset{}})
	tn, other := &s.Info.Tenants[0], &s.Info.Tenants[1]
	svc := arm.Of(s.Server.Core)
	require.NotNil(t, svc)
	// Any tenant: the linked connection's auxiliary token is the second
	// tenant's (azidentity refuses other tenants unless allowed).
	rot, err := azidentity.NewClientSecretCredential(tn.ID, tn.Rotation.ClientID, tn.Rotation.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: s.ClientOptions, DisableInstanceDiscovery: true, AdditionallyAllowedTenants: []string{"*"}})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	co := armOptions(s, s.Info.ARMURL)
	creds := &simCredentials{ids: map[string]sink.AzureIdentity{
		connSim:         {Credential: rot, ClientOptions: co, Simulator: true},
		connDenied:      {Credential: s.ConsumerCredential(t, tn.ID), ClientOptions: co, Simulator: true},
		connUnreachable: {Credential: rot, ClientOptions: armOptions(s, "https://"+closed+"/arm/"), Simulator: true},
		connLinked:      {Credential: rot, ClientOptions: co, Simulator: true, AuxiliaryTenants: []string{other.ID}},
	}}
	b, err := Kind{}.NewBuilder(sink.Deps{Credentials: creds})
	require.NoError(t, err)
	return bundle{sim: s, arm: svc, tenant: tn, other: other, builder: b}
}

func (b bundle) spec(extra map[string]any) domain.SinkSpec {
	st := map[string]any{KeySubscriptionID: b.tenant.Subscriptions[0].ID, KeyResourceGroup: arm.DemoConnectionResourceGroup}
	maps.Copy(st, extra)
	return domain.SinkSpec{Type: Type, Settings: st}
}

func (b bundle) connID(name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/connections/%s", b.tenant.Subscriptions[0].ID, arm.DemoConnectionResourceGroup, name)
}

// shell puts an API connection with no credential in it, as someone
// creating it in the portal for rotor to fill would.
func (b bundle) shell(name, api string) {
	b.arm.PutConnection(arm.APIConnection{TenantID: b.tenant.ID, SubscriptionID: b.tenant.Subscriptions[0].ID,
		ResourceGroup: arm.DemoConnectionResourceGroup, Name: name, API: api})
}

func delivery(app domain.Application, run, key, value string) sink.Delivery {
	now := time.Now().UTC()
	return sink.Delivery{Org: app.Org, RunID: run, App: app, TenantID: app.TenantID, ClientID: app.AppID, KeyID: key,
		Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(value)), Start: now, End: now.Add(24 * time.Hour)}
}

func app(b bundle, n int) domain.Application {
	return domain.Application{Org: domain.DefaultOrg, TenantID: b.tenant.ID, ObjectID: fmt.Sprintf("obj-%d", n), AppID: fmt.Sprintf("app-%d", n),
		DisplayName: fmt.Sprintf("Conformance App %d", n)}
}

// TestConformance runs the sink suite against the simulator's API
// connections over HTTPS, through azcore's ARM pipeline.
func TestConformance(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &harness{b: setup(t)})
}

type harness struct {
	b bundle
	n atomic.Int64
}

var (
	_ sinktest.Harness  = (*harness)(nil)
	_ sinktest.Tamperer = (*harness)(nil)
)

func (h *harness) Builder(*testing.T) sink.Builder { return h.b.builder }

// Request makes an empty Key Vault connection named after a fresh
// application (the target exists as a resource but holds no credential).
func (h *harness) Request(*testing.T) sink.BuildRequest {
	a := app(h.b, int(h.n.Add(1)))
	h.b.shell(Slug(a.DisplayName)+"-kv", "keyvault")
	return sink.BuildRequest{Spec: h.b.spec(map[string]any{KeyConnectionName: "{{ .App.DisplayName | slug }}-kv"}), Connection: connSim, App: a}
}

func (h *harness) names(t *testing.T, target sink.TargetID) []string {
	_, _, names, err := ParseTarget(target)
	require.NoError(t, err)
	require.Len(t, names, 1)
	return names
}

// Foreign sets another client's credentials, untagged.
func (h *harness) Foreign(t *testing.T, target sink.TargetID) {
	id := h.b.connID(h.names(t, target)[0])
	c, ok := h.b.arm.Connection(id)
	require.True(t, ok)
	c.ParameterValues = map[string]string{ParamClientID: "someone-elses-client", ParamClientSecret: "someone-elses-secret",
		ParamTenantID: h.b.tenant.ID, ParamGrantType: GrantClientCreds}
	c.Tags = map[string]string{"owner": "team-x"}
	h.b.arm.PutConnection(c)
}

func (h *harness) Read(t *testing.T, target sink.TargetID) sinktest.Held {
	c, ok := h.b.arm.Connection(h.b.connID(h.names(t, target)[0]))
	if !ok || c.ParameterValues[ParamClientSecret] == "" {
		return sinktest.Held{}
	}
	return sinktest.Held{Exists: true, Version: c.ETag, Secret: secret.New(c.ParameterValues[ParamClientSecret])}
}

func (h *harness) Denied(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Connection = connDenied
	return req
}

func (h *harness) Unreachable(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Connection = connUnreachable
	return req
}

// Tamper pastes another secret by hand, keeping rotor's tags.
func (h *harness) Tamper(t *testing.T, target sink.TargetID) {
	c, ok := h.b.arm.Connection(h.b.connID(h.names(t, target)[0]))
	require.True(t, ok)
	c.ParameterValues[ParamClientSecret] = "pasted-by-hand"
	h.b.arm.PutConnection(c)
}

func TestDeliversToSeveralConnectionsAndKeepsTheDefinition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := app(b, 1)
	req := sink.BuildRequest{Spec: b.spec(map[string]any{KeyConnections: []any{arm.DemoConnection, arm.DemoConnectionBlob}}), Connection: connSim, App: a}
	sk, err := b.builder.Build(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, sink.StatusReady, sk.(sink.Validator).Validate(context.Background()).Status)
	d := delivery(a, "run-1", "key-1", "value-for-two")
	res, err := sk.Deliver(context.Background(), d)
	require.NoError(t, err)
	require.True(t, res.Changed)
	for _, n := range []string{arm.DemoConnection, arm.DemoConnectionBlob} {
		c, ok := b.arm.Connection(b.connID(n))
		require.True(t, ok)
		require.Equal(t, map[string]string{ParamClientID: a.AppID, ParamClientSecret: "value-for-two", ParamTenantID: a.TenantID, ParamGrantType: GrantClientCreds}, c.ParameterValues)
		require.Equal(t, "demo", c.Tags["env"], "the connection's own tags are kept")
		require.Equal(t, map[string]string{"env": "demo", TagManagedBy: ManagedByRotor, TagAppID: a.AppID, TagKeyID: "key-1"}, c.Tags)
	}
	again, err := sk.Deliver(context.Background(), d)
	require.NoError(t, err)
	require.False(t, again.Changed)
	require.Equal(t, res.Version, again.Version)

	// The secret is write-only: Resource Manager's GET does not return it.
	code, body := b.sim.Do(t, "GET", b.sim.Info.ARMURL+b.connID(arm.DemoConnection)[1:]+"?api-version=2016-06-01", nil,
		map[string]string{"Authorization": "Bearer " + mint(t, b, b.tenant.ID)})
	require.Equal(t, 200, code)
	pv := body["properties"].(map[string]any)["parameterValues"].(map[string]any)
	require.Equal(t, a.AppID, pv[ParamClientID])
	require.NotContains(t, pv, ParamClientSecret)
}

func mint(t *testing.T, b bundle, tenant string) string {
	tn := b.sim.Tenant(t, tenant)
	tok, err := b.sim.Server.MintToken(tn.ID, tn.Rotation.ClientID, b.sim.Info.ARMAudience)
	require.NoError(t, err)
	return tok
}

func TestUserSignInConnectionFailsValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := app(b, 1)
	sk, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: b.spec(map[string]any{KeyConnections: []any{arm.DemoConnectionOffice}}), Connection: connSim, App: a})
	require.NoError(t, err)
	v := sk.(sink.Validator).Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, `managed API "office365"`)
	_, err = sk.Deliver(context.Background(), delivery(a, "r", "k", "v-x"))
	require.True(t, sink.IsPermanent(err))
}

func TestAnotherApplicationsConnectionIsForeign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(map[string]any{KeyConnections: []any{arm.DemoConnection}})
	first, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: spec, Connection: connSim, App: app(b, 1)})
	require.NoError(t, err)
	_, err = first.Deliver(context.Background(), delivery(app(b, 1), "r1", "k1", "value-one"))
	require.NoError(t, err)
	second, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: spec, Connection: connSim, App: app(b, 2)})
	require.NoError(t, err)
	_, err = second.Deliver(context.Background(), delivery(app(b, 2), "r2", "k2", "value-two"))
	require.Error(t, err)
	require.True(t, sink.IsPermanent(err))
	require.Contains(t, err.Error(), "rotor's for another application")
	sinktest.NoSecret(t, err, "value-two")
}

// TestLinkedTenantNeedsTheAuxiliaryToken: the first tenant's kv-partner is
// linked to the second tenant; only a connection with that tenant as
// auxiliary (azcore then sends x-ms-authorization-auxiliary) can write it.
func TestLinkedTenantNeedsTheAuxiliaryToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.arm.RegisterInTenant(b.tenant.Rotation.ClientID, b.tenant.ID, b.other.ID))
	a := app(b, 1)
	spec := b.spec(map[string]any{KeyConnections: []any{arm.DemoConnectionLinked}})

	plain, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: spec, Connection: connSim, App: a})
	require.NoError(t, err)
	v := plain.(sink.Validator).Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "LinkedAuthorizationFailed")
	_, err = plain.Deliver(context.Background(), delivery(a, "r", "k", "linked-value"))
	require.True(t, sink.IsPermanent(err), "%v", err)

	linked, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: spec, Connection: connLinked, App: a})
	require.NoError(t, err)
	require.Equal(t, sink.StatusReady, linked.(sink.Validator).Validate(context.Background()).Status)
	res, err := linked.Deliver(context.Background(), delivery(a, "r", "k", "linked-value"))
	require.NoError(t, err)
	require.True(t, res.Changed)
	c, _ := b.arm.Connection(b.connID(arm.DemoConnectionLinked))
	require.Equal(t, "linked-value", c.ParameterValues[ParamClientSecret])
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got, err := b.builder.(sink.Discoverer).Discover(context.Background(), sink.DiscoverQuery{Org: domain.DefaultOrg, Connection: connSim, Spec: b.spec(nil), Key: KeyConnections})
	require.NoError(t, err)
	byName := map[string]string{}
	for _, c := range got {
		byName[c.Value] = c.Detail
	}
	require.Equal(t, "keyvault: takes client credentials", byName[arm.DemoConnection])
	require.Equal(t, "office365: signs in as a user, not usable", byName[arm.DemoConnectionOffice])
}

// A certificate policy's Logic Apps sink says at Validate, and again at
// delivery, that an API connection cannot take a certificate, and writes
// nothing.
func TestACertificateIsRefusedWithAReason(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := app(b, 1)
	sk, err := b.builder.Build(context.Background(), sink.BuildRequest{Spec: b.spec(map[string]any{KeyConnections: []any{arm.DemoConnection}}),
		Connection: connSim, App: a, Kind: domain.KindCertificate})
	require.NoError(t, err)
	v := sk.(sink.Validator).Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "cannot take a certificate")
	before, ok := b.arm.Connection(b.connID(arm.DemoConnection))
	require.True(t, ok)
	d := delivery(a, "r", "k", "unused")
	d.Kind, d.Material = domain.KindCertificate, sink.Material{Certificate: sinktest.NewCertificate(t, "la")}
	_, err = sk.Deliver(context.Background(), d)
	require.True(t, sink.IsPermanent(err))
	after, _ := b.arm.Connection(b.connID(arm.DemoConnection))
	require.Equal(t, before.ParameterValues, after.ParameterValues, "nothing was written")
}
