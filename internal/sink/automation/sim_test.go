package automation

import (
	"context"
	"fmt"
	"net"
	"strings"
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

// Test connections.
const (
	connSim         = "sim"
	connDenied      = "denied"      // the consumer identity: no role on the account
	connUnreachable = "unreachable" // ARM on a closed port
)

// simCredentials hands the test's connections out, as the server's
// sink.TokenCredentials does.
type simCredentials struct {
	ids map[string]sink.AzureIdentity
}

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
	account string // resource id
	builder sink.Builder
}

// armOptions points azcore's ARM pipeline at armURL through the
// simulator's transport, retrying quickly.
func armOptions(s *simtest.Sim, armURL string) azcore.ClientOptions {
	co := s.ClientOptions
	co.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: s.Info.AuthorityHost, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
		cloud.ResourceManager: {Endpoint: armURL, Audience: s.Info.ARMAudience},
	}}
	co.Retry = policy.RetryOptions{MaxRetries: 1, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}
	return co
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func setup(t *testing.T) bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=1h", Clock: &clock.Offset{}})
	tn := &s.Info.Tenants[0]
	svc := arm.Of(s.Server.Core)
	require.NotNil(t, svc)
	require.NotEmpty(t, tn.Subscriptions)
	rot, err := azidentity.NewClientSecretCredential(tn.ID, tn.Rotation.ClientID, tn.Rotation.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: s.ClientOptions, DisableInstanceDiscovery: true})
	require.NoError(t, err)
	co := armOptions(s, s.Info.ARMURL)
	creds := &simCredentials{ids: map[string]sink.AzureIdentity{
		connSim:         {Credential: rot, ClientOptions: co, Simulator: true},
		connDenied:      {Credential: s.ConsumerCredential(t, tn.ID), ClientOptions: co, Simulator: true},
		connUnreachable: {Credential: rot, ClientOptions: armOptions(s, "https://"+closedPort(t)+"/arm/"), Simulator: true},
	}}
	b, err := Kind{}.NewBuilder(sink.Deps{Credentials: creds, Clock: clock.Real{}})
	require.NoError(t, err)
	account := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Automation/automationAccounts/%s",
		tn.Subscriptions[0].ID, arm.DemoAutomationResourceGroup, arm.DemoAutomationAccount)
	return bundle{sim: s, arm: svc, tenant: tn, account: account, builder: b}
}

func (b bundle) spec(runbook string, extra map[string]any) domain.SinkSpec {
	st := map[string]any{
		KeySubscriptionID: b.tenant.Subscriptions[0].ID, KeyResourceGroup: arm.DemoAutomationResourceGroup,
		KeyAccount: arm.DemoAutomationAccount, KeyRunbook: runbook,
	}
	for k, v := range extra {
		st[k] = v
	}
	return domain.SinkSpec{Type: Type, Settings: st}
}

func (b bundle) request(runbook string, extra map[string]any) sink.BuildRequest {
	app := domain.Application{Org: domain.DefaultOrg, TenantID: b.tenant.ID, ObjectID: "obj-1", AppID: "app-1", DisplayName: "Payroll"}
	return sink.BuildRequest{Spec: b.spec(runbook, extra), Connection: connSim, App: app}
}

func (b bundle) build(t *testing.T, req sink.BuildRequest) *Sink {
	t.Helper()
	sk, err := b.builder.Build(context.Background(), req)
	require.NoError(t, err)
	return sk.(*Sink)
}

func delivery(req sink.BuildRequest, run, key, value string) sink.Delivery {
	now := time.Now().UTC()
	return sink.Delivery{Org: req.App.Org, RunID: run, App: req.App, TenantID: req.App.TenantID, ClientID: req.App.AppID, KeyID: key,
		Kind: domain.KindSecret, Material: sink.SecretMaterial(secret.New(value)), Start: now, End: now.Add(24 * time.Hour)}
}

// TestConformance runs the sink suite against the simulator's Automation
// over HTTPS: each Request publishes a fresh runbook named after the
// application; a target "holds" the secret its last completed job got.
func TestConformance(t *testing.T) {
	t.Parallel()
	sinktest.Run(t, &harness{b: setup(t)})
}

type harness struct {
	b bundle
	n atomic.Int64
}

var (
	_ sinktest.Harness       = (*harness)(nil)
	_ sinktest.NotApplicable = (*harness)(nil)
)

func (h *harness) Builder(*testing.T) sink.Builder { return h.b.builder }

func (h *harness) Request(t *testing.T) sink.BuildRequest {
	n := h.n.Add(1)
	app := domain.Application{Org: domain.DefaultOrg, TenantID: h.b.tenant.ID, ObjectID: fmt.Sprintf("obj-%d", n), AppID: fmt.Sprintf("app-%d", n),
		DisplayName: fmt.Sprintf("Conformance App %d", n)}
	require.NoError(t, h.b.arm.AddRunbook(h.b.account, arm.Runbook{Name: "rb-" + Slug(app.DisplayName),
		Parameters: []arm.RunbookParameter{{Name: ParamClientSecret, Type: "System.String", Mandatory: true}}}))
	return sink.BuildRequest{Spec: h.b.spec("rb-{{ .App.DisplayName | slug }}", nil), Connection: connSim, App: app}
}

func (h *harness) Foreign(t *testing.T, _ sink.TargetID) { t.Fatal("foreign is not applicable") }

// Read is the secret of the runbook's last completed job.
func (h *harness) Read(t *testing.T, target sink.TargetID) sinktest.Held {
	_, _, _, rb, err := ParseTarget(target)
	require.NoError(t, err)
	var held sinktest.Held
	for _, j := range h.b.arm.Jobs(h.b.account, rb) {
		if j.Status == arm.JobCompleted {
			held = sinktest.Held{Exists: true, Version: j.Name, Secret: secret.New(j.Parameters[ParamClientSecret])}
		}
	}
	return held
}

func (h *harness) Denied(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Connection = connDenied
	return req
}

func (h *harness) Unreachable(_ *testing.T, req sink.BuildRequest) sink.BuildRequest {
	req.Connection = connUnreachable
	return req
}

func (h *harness) NotApplicable(subtest string) string {
	switch subtest {
	case sinktest.SubtestForeign, sinktest.SubtestAdopt:
		return "a job is started, not a stored target: nothing at a runbook can be someone else's, or be taken over"
	case sinktest.SubtestDrift:
		return "a job has no version that could change behind rotor's back"
	}
	return ""
}

func TestJobCarriesTheSecretAndRunsOnTheWorkerGroup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := b.request(arm.DemoRunbook, map[string]any{KeyRunOn: arm.DemoWorkerGroup, KeyParameters: map[string]any{"TargetName": "payroll"}})
	sk := b.build(t, req)
	require.Equal(t, sink.StatusReady, sk.Validate(context.Background()).Status)
	d := delivery(req, "run-1", "key-1", "the-secret-value-1")
	res, err := sk.Deliver(context.Background(), d)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.NotContains(t, res.Location+res.Note, "the-secret-value-1")
	jobs := b.arm.Jobs(b.account, arm.DemoRunbook)
	require.Len(t, jobs, 1)
	require.Equal(t, JobName(d), jobs[0].Name)
	require.Equal(t, arm.JobCompleted, jobs[0].Status)
	require.Equal(t, arm.DemoWorkerGroup, jobs[0].RunOn)
	require.Equal(t, map[string]string{ParamClientSecret: "the-secret-value-1", "TargetName": "payroll"}, jobs[0].Parameters)

	// A retried delivery of the same run, on a fresh sink, starts no job.
	again, err := b.build(t, req).Deliver(context.Background(), d)
	require.NoError(t, err)
	require.False(t, again.Changed)
	require.Len(t, b.arm.Jobs(b.account, arm.DemoRunbook), 1)
	held, err := sk.Holds(context.Background(), "key-1")
	require.NoError(t, err)
	require.True(t, held)
}

func TestFailedOrSuspendedJobFailsPermanently(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, rb := range []string{"Broken-AppSecret", "Approve-AppSecret"} {
		req := b.request(rb, nil)
		sk := b.build(t, req)
		_, err := sk.Deliver(context.Background(), delivery(req, "run-"+rb, "key-"+rb, "value-never-shown-"+rb))
		require.Error(t, err, rb)
		require.True(t, sink.IsPermanent(err), "%s: %v", rb, err)
		sinktest.NoSecret(t, err, "value-never-shown-"+rb)
		want := map[string]string{"Broken-AppSecret": "Failed", "Approve-AppSecret": "Suspended"}[rb]
		require.Contains(t, err.Error(), "ended "+want)
		held, herr := sk.Holds(context.Background(), "key-"+rb)
		require.NoError(t, herr)
		require.False(t, held)
		// The same run again reports the same job, without a second one.
		_, err = sk.Deliver(context.Background(), delivery(req, "run-"+rb, "key-"+rb, "value-never-shown-"+rb))
		require.True(t, sink.IsPermanent(err))
		require.Len(t, b.arm.Jobs(b.account, rb), 1)
	}
}

func TestRunbookWithoutClientSecretFailsValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := b.request("Cleanup-Logs", nil)
	sk := b.build(t, req)
	v := sk.Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, "declares no ClientSecret parameter")
	_, err := sk.Deliver(context.Background(), delivery(req, "r", "k", "v-secret-x"))
	require.True(t, sink.IsPermanent(err))
	require.Empty(t, b.arm.Jobs(b.account, "Cleanup-Logs"), "nothing was started")

	missing := b.build(t, b.request(arm.DemoRunbook, map[string]any{KeyRunOn: "hw-nowhere"}))
	v = missing.Validate(context.Background())
	require.Equal(t, sink.StatusFailed, v.Status)
	require.Contains(t, v.Reason, `hybrid worker group "hw-nowhere"`)
}

// TestConsumerGetsAWorkingCredential: the verify runbook signs in with
// what it was given; a secret Entra issued completes, one it never did
// fails the job, and so the delivery.
func TestConsumerGetsAWorkingCredential(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := b.request("Verify-AppSecret", nil)
	sk := b.build(t, req)
	app := b.sim.Server.World().Tenant(b.tenant.ID).Apps[0]
	now := b.sim.Now()
	b.sim.AddSecret(app, "issued-by-entra-value", now.Add(-time.Hour), now.Add(time.Hour), now.Add(-time.Hour))
	_, err := sk.Deliver(context.Background(), delivery(req, "run-ok", "key-ok", "issued-by-entra-value"))
	require.NoError(t, err)

	_, err = sk.Deliver(context.Background(), delivery(req, "run-bad", "key-bad", "never-issued-value"))
	require.Error(t, err)
	require.True(t, sink.IsPermanent(err))
	require.Contains(t, err.Error(), "AADSTS7000215")
	sinktest.NoSecret(t, err, "never-issued-value")

	var found bool
	for _, c := range b.sim.Server.Consumers() {
		if c.Service == "automation" && strings.HasSuffix(c.Target, "/Verify-AppSecret") {
			found = true
		}
	}
	require.True(t, found, "the simulator records the runbook as a consumer")
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.builder.(sink.Discoverer)
	q := sink.DiscoverQuery{Org: domain.DefaultOrg, Connection: connSim, Spec: b.spec("x", nil), Key: KeyRunbook}
	got, err := d.Discover(context.Background(), q)
	require.NoError(t, err)
	byName := map[string]string{}
	for _, c := range got {
		byName[c.Value] = c.Detail
	}
	require.Equal(t, "takes ClientSecret", byName[arm.DemoRunbook])
	require.Equal(t, "no ClientSecret parameter", byName["Cleanup-Logs"])
	q.Key = KeyRunOn
	got, err = d.Discover(context.Background(), q)
	require.NoError(t, err)
	require.Contains(t, got, sink.Choice{Value: arm.DemoWorkerGroup, Label: arm.DemoWorkerGroup, Detail: "hybrid worker group"})
}

// TestTimeoutIsRetryableAndTheRetryWaitsForTheSameJob: a job that does not
// end within the timeout is a retryable failure; the retry (a fresh sink,
// the same delivery) waits for that job rather than starting another.
func TestTimeoutIsRetryableAndTheRetryWaitsForTheSameJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := b.request("Wait-AppSecret", map[string]any{KeyTimeout: "1s"})
	d := delivery(req, "run-wait", "key-wait", "value-waiting")
	for range 2 {
		_, err := b.build(t, req).Deliver(context.Background(), d)
		require.Error(t, err)
		require.False(t, sink.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "is still Running after 1s")
		sinktest.NoSecret(t, err, "value-waiting")
	}
	jobs := b.arm.Jobs(b.account, "Wait-AppSecret")
	require.Len(t, jobs, 1, "the retry started no second job")
	require.Equal(t, JobName(d), jobs[0].Name)
}
