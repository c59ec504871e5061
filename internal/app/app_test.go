package app_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
)

// bundle is a simulator with the demo tenants, a rotor assembled on it
// (through the composition root, as the CLI does), the events its auditor
// recorded and the secrets the simulator issued.
type bundle struct {
	t    *testing.T
	sim  *sim.Server
	info *simfile.Info
	srv  *server.Server
	app  *app.Service
	cli  app.Scope

	mu     sync.Mutex
	issued []string
	events []app.Event
	// allEvents keeps every event, for the final check for secrets.
	allEvents []app.Event
	// deny, when set, is the authorizer's answer.
	deny func(app.Scope, app.Action, string) bool
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{t: t}
	dir := t.TempDir()
	zero := time.Duration(0)
	st := simtest.Start(t, simtest.Options{
		Seed: "demo", ReplicationDelay: &zero,
		OnSecretIssued: func(_, _, _, value string) {
			b.mu.Lock()
			b.issued = append(b.issued, value)
			b.mu.Unlock()
		},
	})
	b.sim, b.info = st.Server, st.Info
	simDir := st.Dir

	secrets := filepath.Join(dir, "secrets")
	require.NoError(t, os.MkdirAll(secrets, 0o700))
	for _, tn := range b.info.Tenants {
		require.NoError(t, os.WriteFile(filepath.Join(secrets, tn.Name), []byte(tn.Rotation.ClientSecret), 0o600))
	}
	cfg, err := config.SimulatorYAML(b.info, config.SimulatorConfig{
		SimFile: filepath.Join(simDir, simfile.FileName), DataDir: filepath.Join(dir, "data"),
		Secret:   func(tn simfile.Tenant) string { return "{file: " + filepath.Join(secrets, tn.Name) + "}" },
		Rotation: config.SimulatorRotation{Jitter: "1s", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m"},
		Policies: []config.SimulatorPolicy{
			{Name: "web", Applications: `{name_prefix: "web-"}`, Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"},
			{Name: "owned", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"},
		},
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, cfg, 0o600))

	b.srv, err = server.Open(context.Background(), cfgPath, server.Options{
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Process: "app-test",
		Authorizer: app.AuthorizerFunc(func(_ context.Context, sc app.Scope, a app.Action, o string) error {
			b.mu.Lock()
			deny := b.deny
			b.mu.Unlock()
			if deny != nil && deny(sc, a, o) {
				return &app.DeniedError{Actor: sc.Actor, Action: a, Object: o, Reason: "test says no"}
			}
			return nil
		}),
		Auditor: app.AuditorFunc(func(_ context.Context, e app.Event) {
			b.mu.Lock()
			b.events = append(b.events, e)
			b.allEvents = append(b.allEvents, e)
			b.mu.Unlock()
		}),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.srv.Close() })
	b.app = b.srv.App()
	b.cli = app.Scope{Org: b.srv.Config().Organization, Actor: app.CLI}
	return b
}

// takeEvents returns the events recorded since the last call.
func (b *bundle) takeEvents() []app.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.events
	b.events = nil
	return e
}

func (b *bundle) issuedCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.issued)
}

// simApp finds one simulated application by tenant and display name.
func (b *bundle) simApp(tenant, name string) *sim.Application {
	b.t.Helper()
	var found *sim.Application
	tn := b.sim.World().Tenant(tenant)
	b.sim.World().Update(func() {
		for _, a := range tn.Apps {
			if a.DisplayName == name {
				found = a
			}
		}
	})
	require.NotNil(b.t, found, "no %s in %s", name, tenant)
	return found
}

func (b *bundle) sync() {
	b.t.Helper()
	_, err := b.app.Sync(context.Background(), b.cli, nil)
	require.NoError(b.t, err)
}

func TestDeniedCallDoesNothingAndIsAudited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.sync()
	require.Len(t, b.takeEvents(), 1)
	storefront := b.simApp("contoso", "web-storefront")

	user := app.Scope{Org: b.cli.Org, Actor: app.Actor{Kind: app.ActorUser, ID: "u-1", Name: "ada@contoso.example"}, RequestID: "req-7"}
	b.mu.Lock()
	b.deny = func(sc app.Scope, _ app.Action, _ string) bool { return sc.Actor.Kind == app.ActorUser }
	b.mu.Unlock()

	cases := []struct {
		name   string
		call   func() error
		action app.Action
		object string
	}{
		{"rotate", func() error { _, err := b.app.Rotate(ctx, user, []string{storefront.ObjectID}, nil); return err }, app.ActionRotate, app.ApplicationObject(storefront.ObjectID)},
		{"enqueue", func() error { _, err := b.app.Enqueue(ctx, user, storefront.ObjectID); return err }, app.ActionRotate, app.ApplicationObject(storefront.ObjectID)},
		{"sync", func() error { _, err := b.app.Sync(ctx, user, nil); return err }, app.ActionSync, app.ObjectInventory},
		{"retire", func() error { return b.app.Retire(ctx, user, "some-run") }, app.ActionRetire, app.RunObject("some-run")},
	}
	for _, c := range cases {
		err := c.call()
		var denied *app.DeniedError
		require.ErrorAs(t, err, &denied, c.name)
		require.Equal(t, c.action, denied.Action, c.name)
		require.Equal(t, http.StatusForbidden, app.HTTPStatus(err), c.name)
		ev := b.takeEvents()
		require.Len(t, ev, 1, "%s: a denied mutating call is audited once", c.name)
		require.Equal(t, app.OutcomeDenied, ev[0].Outcome, c.name)
		require.Equal(t, app.ClassDenied, ev[0].Error, c.name)
		require.Equal(t, user.Actor, ev[0].Actor, c.name)
		require.Equal(t, c.action, ev[0].Action, c.name)
		require.Equal(t, c.object, ev[0].Object, c.name)
		require.Equal(t, "req-7", ev[0].RequestID, c.name)
		require.Equal(t, b.cli.Org, ev[0].Org, c.name)
	}
	require.Zero(t, b.issuedCount(), "a denied rotation creates no secret")
	runs, err := b.app.ListRuns(ctx, b.cli, app.RunFilter{})
	require.NoError(t, err)
	require.Empty(t, runs, "a denied rotation journals nothing")

	// A denied read returns the same error and records nothing.
	_, err = b.app.ListApplications(ctx, user, app.ApplicationFilter{})
	require.ErrorAs(t, err, new(*app.DeniedError))
	_, err = b.app.Explain(ctx, user, storefront.ObjectID)
	require.ErrorAs(t, err, new(*app.DeniedError))
	require.Empty(t, b.takeEvents())

	// The default authorizer lets rotor's own actors through and no one else.
	require.NoError(t, app.AllowSystem{}.Authorize(ctx, b.cli, app.ActionRotate, "x"))
	require.ErrorAs(t, app.AllowSystem{}.Authorize(ctx, user, app.ActionRead, "x"), new(*app.DeniedError))
}

func TestAuditOneEventPerMutatingCallWithoutSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	res, err := b.app.Sync(ctx, b.cli, nil)
	require.NoError(t, err)
	require.Greater(t, res.Applications, 80)
	ev := b.takeEvents()
	require.Len(t, ev, 1)
	require.Equal(t, app.Event{At: ev[0].At, Org: b.cli.Org, Actor: app.CLI, Action: app.ActionSync, Object: app.ObjectInventory, Outcome: app.OutcomeOK}, ev[0])
	require.WithinDuration(t, time.Now(), ev[0].At, time.Minute)

	storefront := b.simApp("contoso", "web-storefront")
	billing := b.simApp("contoso", "func-billing")

	// The plan has both before they are rotated.
	plan, err := b.app.DuePageOf(ctx, b.cli, app.DuePageRequest{Limit: app.MaxPageSize})
	require.NoError(t, err)
	require.Empty(t, plan.Next, "one page holds the whole plan")
	dueIDs := map[string]string{}
	for _, d := range plan.Rows {
		dueIDs[d.Application.ObjectID] = d.Policy
	}
	// Walked three at a time, the plan is the same applications, in name
	// order, none twice.
	var walked []app.DueApplication
	req := app.DuePageRequest{Limit: 3}
	for {
		page, err := b.app.DuePageOf(ctx, b.cli, req)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Rows), 3)
		walked = append(walked, page.Rows...)
		if page.Next == "" {
			break
		}
		req.Cursor = page.Next
	}
	refs := func(ds []app.DueApplication) (out []string) {
		for _, d := range ds {
			out = append(out, d.Application.ObjectID+" "+d.Policy)
		}
		return out
	}
	require.Equal(t, refs(plan.Rows), refs(walked))
	require.True(t, slices.IsSortedFunc(walked, func(x, y app.DueApplication) int {
		return cmp.Or(strings.Compare(x.Application.Name, y.Application.Name), strings.Compare(x.Application.ObjectID, y.Application.ObjectID))
	}))
	_, err = b.app.DuePageOf(ctx, b.cli, app.DuePageRequest{Cursor: "not-a-cursor"})
	var invalid *app.InvalidError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, "cursor", invalid.Field)
	require.Equal(t, "contoso-web", dueIDs[storefront.ObjectID])
	require.Equal(t, "contoso-owned", dueIDs[billing.ObjectID])

	// Two applications in one call: one event, naming both runs.
	var steps sync.Map
	obs := &recordingObserver{steps: &steps}
	results, err := b.app.Rotate(ctx, b.cli, []string{storefront.ObjectID, billing.ObjectID}, obs)
	require.NoError(t, err)
	require.Len(t, results, 2)
	require.Equal(t, 2, b.issuedCount())
	ev = b.takeEvents()
	require.Len(t, ev, 1, "one event per call, however many applications")
	require.Equal(t, app.OutcomeOK, ev[0].Outcome)
	require.Equal(t, app.ActionRotate, ev[0].Action)
	require.ElementsMatch(t, []string{results[0].RunID, results[1].RunID}, ev[0].Runs)
	for _, r := range results {
		require.Equal(t, domain.RunRetiring, r.State, r.Application.Name)
		n, _ := steps.Load(r.RunID)
		require.GreaterOrEqual(t, n, 6, "the observer saw %s's journal", r.Application.Name)
	}
	require.Equal(t, []string{"web-storefront", "func-billing"}, []string{results[0].Application.Name, results[1].Application.Name}, "results in the order asked")
	require.ElementsMatch(t, []string{"web-storefront", "func-billing"}, obs.started())

	// Refused before anything happens: one failed event, classified.
	portal := b.simApp("contoso", "web-partner-portal")
	_, err = b.app.Rotate(ctx, b.cli, []string{storefront.ObjectID, portal.ObjectID}, nil)
	var nm *app.NotManageableError
	require.ErrorAs(t, err, &nm)
	require.Equal(t, "contoso-web", nm.Policy)
	require.Equal(t, 2, b.issuedCount(), "a refused call rotates none of its applications")
	ev = b.takeEvents()
	require.Len(t, ev, 1)
	require.Equal(t, app.OutcomeFailed, ev[0].Outcome)
	require.Equal(t, app.ClassNotManageable, ev[0].Error)

	// Retiring before the overlap has passed fails, typed, and is audited.
	err = b.app.Retire(ctx, b.cli, results[0].RunID)
	var early *rotation.ErrTooEarly
	require.ErrorAs(t, err, &early)
	ev = b.takeEvents()
	require.Len(t, ev, 1)
	require.Equal(t, app.ClassTooEarly, ev[0].Error)
	require.Equal(t, []string{results[0].RunID}, ev[0].Runs)

	// Rotate later: enqueued for a server; one event.
	enq, err := b.app.Enqueue(ctx, b.cli, billing.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "contoso-owned", enq.Policy)
	require.Len(t, b.takeEvents(), 1)

	// Reads record nothing.
	_, err = b.app.ListApplications(ctx, b.cli, app.ApplicationFilter{})
	require.NoError(t, err)
	_, err = b.app.Explain(ctx, b.cli, storefront.ObjectID)
	require.NoError(t, err)
	_, err = b.app.ListRuns(ctx, b.cli, app.RunFilter{})
	require.NoError(t, err)
	_, err = b.app.GetRun(ctx, b.cli, results[0].RunID)
	require.NoError(t, err)
	_, err = b.app.ListPolicies(ctx, b.cli)
	require.NoError(t, err)
	_, err = b.app.ListConnections(ctx, b.cli)
	require.NoError(t, err)
	require.Empty(t, b.takeEvents())

	// Nothing rotor recorded, or returned, holds a secret value: neither
	// the rotated ones nor the connections' own.
	b.mu.Lock()
	secrets := append([]string(nil), b.issued...)
	b.mu.Unlock()
	for _, tn := range b.info.Tenants {
		secrets = append(secrets, tn.Rotation.ClientSecret)
	}
	conns, err := b.app.ListConnections(ctx, b.cli)
	require.NoError(t, err)
	pols, err := b.app.ListPolicies(ctx, b.cli)
	require.NoError(t, err)
	recorded := b.recordedText(t, ev, results, conns, pols)
	for _, s := range secrets {
		require.NotEmpty(t, s)
		require.NotContains(t, recorded, s, "a secret value reached an audit event or a result")
	}
}

// recordedText is everything given as JSON and as Go's %+v, for grepping.
func (b *bundle) recordedText(t *testing.T, vs ...any) string {
	var sb strings.Builder
	b.mu.Lock()
	vs = append(vs, append([]app.Event(nil), b.allEvents...))
	b.mu.Unlock()
	for _, v := range vs {
		j, err := json.Marshal(v)
		require.NoError(t, err)
		sb.Write(j)
		fmt.Fprintf(&sb, "%+v", v)
	}
	return sb.String()
}

type recordingObserver struct {
	mu    sync.Mutex
	names []string
	steps *sync.Map
}

func (o *recordingObserver) Starting(a app.ApplicationRef, _ string) {
	o.mu.Lock()
	o.names = append(o.names, a.Name)
	o.mu.Unlock()
}

func (o *recordingObserver) Step(r domain.Run, _ domain.Step) {
	for {
		v, _ := o.steps.LoadOrStore(r.ID, 0)
		if o.steps.CompareAndSwap(r.ID, v, v.(int)+1) {
			return
		}
	}
}

func (o *recordingObserver) Finished(app.RotateResult) {}

func (o *recordingObserver) started() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.names...)
}

func TestEveryCallStaysInItsOrganization(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.sync()
	storefront := b.simApp("contoso", "web-storefront")
	results, err := b.app.Rotate(ctx, b.cli, []string{storefront.ObjectID}, nil)
	require.NoError(t, err)
	runID := results[0].RunID
	issued := b.issuedCount()

	// Organization B asks for organization A's objects by their ids.
	other := app.Scope{Org: "other-org", Actor: app.CLI}
	_, err = b.app.Explain(ctx, other, storefront.ObjectID)
	var nf *app.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.Equal(t, "application", nf.Kind)
	require.Equal(t, http.StatusNotFound, app.HTTPStatus(err))

	_, err = b.app.GetRun(ctx, other, runID)
	require.ErrorAs(t, err, &nf)
	require.Equal(t, "run", nf.Kind)
	require.ErrorAs(t, b.app.Retire(ctx, other, runID), &nf)
	_, err = b.app.Rotate(ctx, other, []string{storefront.ObjectID}, nil)
	require.ErrorAs(t, err, &nf)
	_, err = b.app.Enqueue(ctx, other, storefront.ObjectID)
	require.ErrorAs(t, err, &nf)
	_, err = b.app.ListRuns(ctx, other, app.RunFilter{App: storefront.ObjectID})
	require.ErrorAs(t, err, &nf)
	require.Equal(t, issued, b.issuedCount())

	rows, err := b.app.ListApplications(ctx, other, app.ApplicationFilter{})
	require.NoError(t, err)
	require.Empty(t, rows)
	runs, err := b.app.ListRuns(ctx, other, app.RunFilter{})
	require.NoError(t, err)
	require.Empty(t, runs)
	due, err := b.app.DuePageOf(ctx, other, app.DuePageRequest{})
	require.NoError(t, err)
	require.Empty(t, due.Rows)
	pols, err := b.app.ListPolicies(ctx, other)
	require.NoError(t, err)
	require.Empty(t, pols)
	conns, err := b.app.ListConnections(ctx, other)
	require.NoError(t, err)
	require.Empty(t, conns)
	_, err = b.app.Sync(ctx, other, nil)
	require.NoError(t, err, "organization B has no connections: there is nothing to sync")
	rows, err = b.app.ListApplications(ctx, other, app.ApplicationFilter{})
	require.NoError(t, err)
	require.Empty(t, rows, "and syncing it read nothing of organization A's tenants")

	// A scope without an organization is a wiring mistake, refused.
	_, err = b.app.ListApplications(ctx, app.Scope{Actor: app.CLI}, app.ApplicationFilter{})
	require.ErrorContains(t, err, "no organization")
}

func TestTypedErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	// Before a sync nothing is known.
	_, err := b.app.Explain(ctx, b.cli, "web-storefront")
	require.ErrorAs(t, err, new(*app.NotFoundError))
	b.sync()

	// Both demo tenants have a web-storefront.
	_, err = b.app.Rotate(ctx, b.cli, []string{"web-storefront"}, nil)
	var amb *app.AmbiguousError
	require.ErrorAs(t, err, &amb)
	require.Len(t, amb.ObjectIDs, 2)
	require.Equal(t, "display name", amb.Field)
	require.Equal(t, http.StatusConflict, app.HTTPStatus(err))
	ex, err := b.app.Explain(ctx, b.cli, amb.ObjectIDs[0])
	require.NoError(t, err)
	require.Equal(t, amb.ObjectIDs[0], ex.Ref, "the name is ambiguous, so the way to name it is its object id")
	require.Empty(t, ex.Targets, "nothing delivered yet, nothing pinned")

	// A pinned target shows in the explanation, under the governing policy.
	require.NoError(t, b.srv.Store().PinTarget(ctx, store.PinTargetParams{Org: b.cli.Org, TenantID: ex.Application.TenantID, AppObjectID: ex.Application.ObjectID, Policy: ex.Policy,
		Target: store.PinnedTarget{SinkIndex: 0, SinkType: "keyvault", Target: "keyvault:https://kv.example/secrets/web", PinnedByRun: "r1"}}))
	ex, err = b.app.Explain(ctx, b.cli, amb.ObjectIDs[0])
	require.NoError(t, err)
	require.Len(t, ex.Targets, 1)
	require.Equal(t, "keyvault:https://kv.example/secrets/web", ex.Targets[0].Target)
	require.Equal(t, "r1", ex.Targets[0].PinnedByRun)

	orders := b.simApp("contoso", "api-orders")
	_, err = b.app.Rotate(ctx, b.cli, []string{orders.ObjectID}, nil)
	var np *app.NoPolicyError
	require.ErrorAs(t, err, &np)
	require.Equal(t, "api-orders", np.App.Name)
	require.Equal(t, http.StatusUnprocessableEntity, app.HTTPStatus(err))
	require.Equal(t, app.ClassNoPolicy, app.Classify(err))

	_, err = b.app.ListRuns(ctx, b.cli, app.RunFilter{States: []domain.RunState{"finished"}})
	var inv *app.InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "state", inv.Field)

	_, err = b.app.GetRun(ctx, b.cli, "nosuch")
	require.ErrorAs(t, err, new(*app.NotFoundError))
	require.Zero(t, b.issuedCount())

	// The listing says what rotor will do, as explain does.
	rows, err := b.app.ListApplications(ctx, b.cli, app.ApplicationFilter{NamePrefix: "web-partner-portal", Connection: "contoso"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, "not manageable", rows[0].Status)
	require.Equal(t, "NotManageable", rows[0].Reason)
	require.Equal(t, "contoso-web", rows[0].Policy)
}
