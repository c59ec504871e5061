package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/store"
)

const day = 24 * time.Hour

// dashRig is rotor on a one-application simulator whose inventory the
// test writes into the store itself (as a sync would), at a fake now.
type dashRig struct {
	srv    *server.Server
	st     store.Store
	org    domain.OrgID
	tenant string
	now    time.Time
	scope  app.Scope
	n      int
}

func dashSetup(t *testing.T) *dashRig {
	t.Helper()
	sim := simtest.Start(t, simtest.Options{Seed: "apps=1,tenants=1,replication=0s"})
	tn := sim.Info.Tenants[0]
	dir := t.TempDir()
	cfg := fmt.Sprintf(`organization: dash
data_dir: %q
connections:
  - name: conn
    cloud: sim
    sim_file: %q
    tenant_id: %q
    client_id: %q
    client_secret: {env: SECRET}
policies:
  - name: owned
    connection: conn
    applications: {all_owned: true}
    lifetime: 30d
    renew_before: 10d
    overlap: 1h
`, filepath.Join(dir, "data"), sim.File, tn.ID, tn.Rotation.ClientID)
	path := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	srv, err := server.Open(context.Background(), path, server.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Process: "dash-test", Clock: clock.NewFake(now),
		Getenv: func(k string) string {
			if k == "SECRET" {
				return tn.Rotation.ClientSecret
			}
			return ""
		}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	org := srv.Config().Organization
	return &dashRig{srv: srv, st: srv.Store(), org: org, tenant: tn.ID, now: now, scope: app.Scope{Org: org, Actor: app.CLI}}
}

// app is an application named name with one secret per (display name,
// end) pair; manageable says whether the connection may change it.
func (r *dashRig) app(name string, manageable bool, creds ...domain.Credential) domain.Application {
	r.n++
	for i := range creds {
		creds[i].KeyID = fmt.Sprintf("4e400000-%04d-4000-8000-%012d", i, r.n)
		creds[i].Kind, creds[i].Hint = domain.KindSecret, "abc"
		creds[i].Start = creds[i].End.Add(-30 * day)
	}
	return domain.Application{Org: r.org, TenantID: r.tenant, ObjectID: fmt.Sprintf("0bec0000-0000-4000-8000-%012d", r.n),
		AppID: fmt.Sprintf("a9900000-0000-4000-8000-%012d", r.n), DisplayName: name, SignInAudience: "AzureADMyOrg",
		Manageable: manageable, Credentials: creds}
}

func cred(name string, end time.Time) domain.Credential {
	return domain.Credential{DisplayName: name, End: end}
}

func (r *dashRig) sync(t *testing.T, org domain.OrgID, apps ...domain.Application) {
	t.Helper()
	for i := range apps {
		apps[i].Org = org
	}
	_, err := r.st.SyncApplications(context.Background(), store.SyncApplicationsParams{Org: org, Connection: "conn", SyncStarted: r.now.Add(-time.Minute), Applications: apps})
	require.NoError(t, err)
}

// run journals a run of a in org and moves it to state (failed with
// class f).
func (r *dashRig) run(t *testing.T, org domain.OrgID, a domain.Application, state domain.RunState, f domain.FailureClass, at time.Time) string {
	t.Helper()
	r.n++
	ctx := context.Background()
	run := &domain.Run{Org: org, ID: fmt.Sprintf("run-%d", r.n), Connection: "conn", TenantID: a.TenantID, AppObjectID: a.ObjectID, AppID: a.AppID,
		AppName: a.DisplayName, Policy: "owned", Kind: domain.KindSecret, Trigger: domain.TriggerDue, CreatedAt: at, UpdatedAt: at}
	require.NoError(t, r.st.CreateRun(ctx, run))
	p := store.TransitionRunParams{Org: org, RunID: run.ID, From: []domain.RunState{domain.RunPlanned}, To: state,
		Event: domain.RunEvent{At: at.Add(time.Minute), Message: "test"}}
	if state == domain.RunFailed {
		p.Error, p.Failure = "graph said no", f
	}
	require.NoError(t, r.st.TransitionRun(ctx, p))
	return run.ID
}

// TestDashboardCountsExpiryAtTheBoundaries: expired includes a credential
// that ended a second ago; "within 7 days" includes one ending exactly 7
// days from now and not one a second later; the counts are cumulative;
// the timeline's weeks are disjoint and end-inclusive; another
// organization's credentials are never counted.
func TestDashboardCountsExpiryAtTheBoundaries(t *testing.T) {
	t.Parallel()
	r := dashSetup(t)
	now := r.now
	r.sync(t, r.org,
		r.app("a", false, cred("ci", now.Add(-time.Second)), cred("ci", now.Add(7*day))),
		r.app("b", false, cred("ci", now.Add(7*day+time.Second)), cred("ci", now.Add(30*day))),
		r.app("c", false, cred("ci", now.Add(89*day)), cred("ci", now.Add(91*day+time.Second))),
	)
	require.NoError(t, r.st.EnsureOrg(context.Background(), "other", "Other"))
	r.sync(t, "other", r.app("x", false, cred("ci", now.Add(-day)), cred("ci", now.Add(day)), cred("ci", now.Add(20*day))))

	d, err := r.srv.App().Dashboard(context.Background(), r.scope)
	require.NoError(t, err)
	require.Equal(t, now, d.At)
	require.Equal(t, 1, d.Expired, "ended 1s ago")
	require.Equal(t, []app.WindowCount{{Days: 7, Count: 1}, {Days: 30, Count: 3}, {Days: 90, Count: 4}}, d.Expiring)
	require.Len(t, d.Weeks, app.TimelineWeeks)
	require.Equal(t, now, d.Weeks[0].From)
	require.Equal(t, now.Add(7*day), d.Weeks[0].To)
	require.Equal(t, 1, d.Weeks[0].Count, "exactly 7 days is in the first week")
	require.Equal(t, 1, d.Weeks[1].Count, "7 days and a second is in the second")
	require.Equal(t, 1, d.Weeks[4].Count, "30 days: (28, 35]")
	require.Equal(t, 1, d.Weeks[12].Count, "89 days: (84, 91]; 91 days and a second is past the timeline")
	total := 0
	for _, w := range d.Weeks {
		total += w.Count
	}
	require.Equal(t, 4, total, "the timeline is disjoint: each valid credential within 91 days once")

	other, err := r.srv.App().Dashboard(context.Background(), app.Scope{Org: "other", Actor: app.CLI})
	require.NoError(t, err)
	require.Equal(t, 1, other.Expired)
	require.Equal(t, []app.WindowCount{{Days: 7, Count: 1}, {Days: 30, Count: 2}, {Days: 90, Count: 2}}, other.Expiring)
}

// TestDashboardPlanOrdersByDueTime: the plan lists what the planner will
// rotate, soonest first (overdue, then adoption now, then later renewal
// times), splits it at 24 hours and 7 days, and leaves out what is not
// rotor's to rotate or falls beyond the horizon.
func TestDashboardPlanOrdersByDueTime(t *testing.T) {
	t.Parallel()
	r := dashSetup(t)
	now := r.now
	r.sync(t, r.org,
		r.app("in-2-days", true, cred("rotor:r1", now.Add(12*day))),              // renew_before 10d: due in 2 days
		r.app("in-2-hours", true, cred("rotor:r2", now.Add(10*day+2*time.Hour))), // due in 2 hours
		r.app("adopt", true, cred("ci", now.Add(300*day))),                       // no rotor credential: due now
		r.app("overdue", true, cred("rotor:r4", now.Add(5*day))),                 // renewal time 5 days ago
		r.app("in-30-days", true, cred("rotor:r5", now.Add(40*day))),             // beyond the week
		r.app("not-owned", false, cred("rotor:r6", now.Add(day))),                // rotor may not change it
	)
	d, err := r.srv.App().Dashboard(context.Background(), r.scope)
	require.NoError(t, err)
	names := func(p app.Plan) []string {
		var out []string
		for _, it := range p.Items {
			out = append(out, it.Application.Name)
		}
		return out
	}
	require.Equal(t, []string{"overdue", "adopt", "in-2-hours", "in-2-days"}, names(d.Next7d))
	require.Equal(t, 4, d.Next7d.Total)
	require.Equal(t, []string{"overdue", "adopt", "in-2-hours"}, names(d.Next24h))
	require.Equal(t, 3, d.Next24h.Total)
	require.False(t, d.Next7d.Partial)
	it := d.Next7d.Items
	require.Equal(t, now.Add(-5*day), it[0].DueAt)
	require.Equal(t, "RenewalTimeReached", it[0].Reason)
	require.Equal(t, now, it[1].DueAt)
	require.Equal(t, domain.TriggerAdoption, it[1].Trigger)
	require.Equal(t, now.Add(2*time.Hour), it[2].DueAt)
	require.Equal(t, "NotYetDue", it[2].Reason)
	require.Equal(t, "owned", it[2].Policy)

	p, err := r.srv.App().Plan(context.Background(), r.scope, 40*day)
	require.NoError(t, err)
	require.Equal(t, []string{"overdue", "adopt", "in-2-hours", "in-2-days", "in-30-days"}, names(*p))
	_, err = r.srv.App().Plan(context.Background(), r.scope, 0)
	require.ErrorAs(t, err, new(*app.InvalidError))
}

// TestDashboardFailingRuns: an application whose newest failed run no
// later success superseded is listed (a permanent failure needs a human,
// a transient one not); one that succeeded afterwards is not; another
// organization's failures never show.
func TestDashboardFailingRuns(t *testing.T) {
	t.Parallel()
	r := dashSetup(t)
	now := r.now
	stuck := r.app("stuck", false, cred("ci", now.Add(100*day)))
	flaky := r.app("flaky", false, cred("ci", now.Add(100*day)))
	mended := r.app("mended", false, cred("ci", now.Add(100*day)))
	r.sync(t, r.org, stuck, flaky, mended)
	r.run(t, r.org, stuck, domain.RunDone, "", now.Add(-3*time.Hour))
	stuckRun := r.run(t, r.org, stuck, domain.RunFailed, domain.FailurePermanent, now.Add(-2*time.Hour))
	flakyRun := r.run(t, r.org, flaky, domain.RunFailed, domain.FailureTransient, now.Add(-time.Hour))
	r.run(t, r.org, mended, domain.RunFailed, domain.FailurePermanent, now.Add(-2*time.Hour))
	r.run(t, r.org, mended, domain.RunDone, "", now.Add(-time.Hour))
	require.NoError(t, r.st.EnsureOrg(context.Background(), "other", "Other"))
	ghost := r.app("ghost", false, cred("ci", now.Add(100*day)))
	r.sync(t, "other", ghost)
	r.run(t, "other", ghost, domain.RunFailed, domain.FailurePermanent, now.Add(-time.Minute))

	d, err := r.srv.App().Dashboard(context.Background(), r.scope)
	require.NoError(t, err)
	require.Len(t, d.Failing, 2, "%+v", d.Failing)
	require.Equal(t, flakyRun, d.Failing[0].Run.ID, "newest first")
	require.False(t, d.Failing[0].NeedsHuman)
	require.Equal(t, stuckRun, d.Failing[1].Run.ID)
	require.True(t, d.Failing[1].NeedsHuman)
	require.Equal(t, "graph said no", d.Failing[1].Run.Error)
	require.Zero(t, d.FailingMore)
}
