package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// ownedRig is dashRig's inventory with a person who owns some of it.
type ownedRig struct {
	*dashRig
	alpha, bravo, charlie, dupMine, dupTheirs domain.Application
	alphaRun, charlieRun                      string
	// mine is the person's scope: restricted to alpha, bravo and one of
	// the two applications named "dup".
	mine app.Scope
}

func ownedSetup(t *testing.T) *ownedRig {
	t.Helper()
	r := &ownedRig{dashRig: dashSetup(t)}
	now := r.now
	r.alpha = r.app("alpha", true, cred("ci", now.Add(5*day)))
	r.bravo = r.app("bravo", true, cred("ci", now.Add(-day)))
	r.charlie = r.app("charlie", true, cred("ci", now.Add(3*day)), cred("ci", now.Add(-2*day)))
	r.dupMine = r.app("dup", true, cred("ci", now.Add(200*day)))
	r.dupTheirs = r.app("dup", true, cred("ci", now.Add(200*day)))
	r.sync(t, r.org, r.alpha, r.bravo, r.charlie, r.dupMine, r.dupTheirs)
	r.alphaRun = r.failedRun(t, r.alpha, now.Add(-2*time.Hour))
	r.charlieRun = r.failedRun(t, r.charlie, now.Add(-time.Hour))
	r.mine = r.scope
	// Graph's ids, in whatever case: the set compares them case-blind.
	r.mine.Owned = app.NewOwnedSet([]string{strings.ToUpper(r.alpha.ObjectID), r.bravo.ObjectID, r.dupMine.ObjectID})
	return r
}

// failedRun journals a run of a that failed permanently, with journal
// steps GetRun can read.
func (r *ownedRig) failedRun(t *testing.T, a domain.Application, at time.Time) string {
	t.Helper()
	r.n++
	ctx := context.Background()
	run := &domain.Run{Org: r.org, ID: fmt.Sprintf("run-%d", r.n), Connection: "conn", TenantID: a.TenantID, AppObjectID: a.ObjectID, AppID: a.AppID,
		AppName: a.DisplayName, Policy: "owned", Kind: domain.KindSecret, Trigger: domain.TriggerDue, CreatedAt: at, UpdatedAt: at,
		Events: []domain.RunEvent{{At: at, State: domain.RunPlanned, Step: domain.StepPlanned.Step()}}}
	require.NoError(t, r.st.CreateRun(ctx, run))
	require.NoError(t, r.st.TransitionRun(ctx, store.TransitionRunParams{Org: r.org, RunID: run.ID, From: []domain.RunState{domain.RunPlanned},
		To: domain.RunFailed, Error: "graph said no", Failure: domain.FailurePermanent,
		Event: domain.RunEvent{At: at.Add(time.Minute), Step: domain.StepFailed.Step(), Message: "test"}}))
	return run.ID
}

func names(rows []app.ApplicationRow) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, r.Name+"/"+r.ObjectID[len(r.ObjectID)-2:])
	}
	return out
}

// requireHidden: err is the 404 a missing application gets, not a 403.
func requireHidden(t *testing.T, err error, ref string) {
	t.Helper()
	var nf *app.NotFoundError
	require.True(t, errors.As(err, &nf), "%v", err)
	require.Equal(t, http.StatusNotFound, app.HTTPStatus(err))
	require.Equal(t, `no application "`+ref+`"`, err.Error(), "the words of a missing application")
}

// TestOwnedScopeListsOnlyOwnedApplications: a restricted scope lists only
// the applications it owns, in every listing; an unrestricted one lists
// all.
func TestOwnedScopeListsOnlyOwnedApplications(t *testing.T) {
	t.Parallel()
	r := ownedSetup(t)
	ctx := context.Background()
	s := r.srv.App()
	suffix := func(a domain.Application) string { return a.DisplayName + "/" + a.ObjectID[len(a.ObjectID)-2:] }

	all, err := s.ListApplications(ctx, r.scope, app.ApplicationFilter{})
	require.NoError(t, err)
	require.Len(t, all, 5)

	rows, err := s.ListApplications(ctx, r.mine, app.ApplicationFilter{})
	require.NoError(t, err)
	require.Equal(t, []string{suffix(r.alpha), suffix(r.bravo), suffix(r.dupMine)}, names(rows))

	page, err := s.ListApplicationsPage(ctx, r.mine, app.ApplicationFilter{ExpiringWithin: 7 * day}, app.ApplicationPageRequest{Sort: app.SortByExpiry, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []string{suffix(r.bravo)}, names(page.Rows))
	require.NotEmpty(t, page.Next)
	page, err = s.ListApplicationsPage(ctx, r.mine, app.ApplicationFilter{ExpiringWithin: 7 * day}, app.ApplicationPageRequest{Sort: app.SortByExpiry, Limit: 1, Cursor: page.Next})
	require.NoError(t, err)
	require.Equal(t, []string{suffix(r.alpha)}, names(page.Rows), "charlie expires sooner but is not theirs")
	require.Empty(t, page.Next)

	nothing := r.scope
	nothing.Owned = app.NewOwnedSet(nil)
	rows, err = s.ListApplications(ctx, nothing, app.ApplicationFilter{})
	require.NoError(t, err)
	require.Empty(t, rows, "owning nothing sees nothing (not everything)")
}

// TestOwnedScopeGetsNotFoundForOthers: every single-application use case
// answers another's application as it answers a missing one, and a name
// shared with another's application finds the person's own.
func TestOwnedScopeGetsNotFoundForOthers(t *testing.T) {
	t.Parallel()
	r := ownedSetup(t)
	ctx := context.Background()
	s := r.srv.App()

	got, err := s.GetApplication(ctx, r.mine, r.alpha.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "alpha", got.Name)
	got, err = s.GetApplication(ctx, r.mine, "dup")
	require.NoError(t, err, "the name is ambiguous only among applications they do not all own")
	require.Equal(t, r.dupMine.ObjectID, got.ObjectID)
	_, err = s.GetApplication(ctx, r.scope, "dup")
	var amb *app.AmbiguousError
	require.ErrorAs(t, err, &amb, "unrestricted, the name is ambiguous")

	for _, ref := range []string{r.charlie.ObjectID, "charlie", r.charlie.AppID} {
		_, err = s.GetApplication(ctx, r.mine, ref)
		requireHidden(t, err, ref)
		_, err = s.Explain(ctx, r.mine, ref)
		requireHidden(t, err, ref)
		_, err = s.GetApplicationSettings(ctx, r.mine, ref)
		requireHidden(t, err, ref)
		on := true
		_, err = s.UpdateApplicationSettings(ctx, r.mine, ref, app.ApplicationSettings{Notify: &on})
		requireHidden(t, err, ref)
		_, err = s.Targets(ctx, r.mine, ref)
		requireHidden(t, err, ref)
		_, err = s.TestSinks(ctx, r.mine, ref)
		requireHidden(t, err, ref)
		_, err = s.ListRuns(ctx, r.mine, app.RunFilter{App: ref})
		requireHidden(t, err, ref)
	}
	_, err = s.GetApplication(ctx, r.scope, r.charlie.ObjectID)
	require.NoError(t, err, "unrestricted, it is there")
}

// TestOwnedScopeCannotRotateOthers: Rotate and Enqueue of another's
// application fail as for a missing one, before anything runs.
func TestOwnedScopeCannotRotateOthers(t *testing.T) {
	t.Parallel()
	r := ownedSetup(t)
	ctx := context.Background()
	s := r.srv.App()
	before, err := s.ListRuns(ctx, r.scope, app.RunFilter{})
	require.NoError(t, err)

	_, err = s.Rotate(ctx, r.mine, []string{r.alpha.ObjectID, r.charlie.ObjectID}, nil)
	requireHidden(t, err, r.charlie.ObjectID)
	_, err = s.Enqueue(ctx, r.mine, r.charlie.ObjectID)
	if !errors.As(err, new(*app.UnavailableError)) { // a server without a job system says so first
		requireHidden(t, err, r.charlie.ObjectID)
	}
	after, err := s.ListRuns(ctx, r.scope, app.RunFilter{})
	require.NoError(t, err)
	require.Len(t, after, len(before), "no run started, not even alpha's")
}

// TestOwnedScopeRuns: only runs of owned applications are listed or read.
func TestOwnedScopeRuns(t *testing.T) {
	t.Parallel()
	r := ownedSetup(t)
	ctx := context.Background()
	s := r.srv.App()

	rows, err := s.ListRuns(ctx, r.mine, app.RunFilter{})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, r.alphaRun, rows[0].ID)
	page, err := s.ListRunsPage(ctx, r.mine, app.RunFilter{}, app.RunPageRequest{})
	require.NoError(t, err)
	require.Len(t, page.Rows, 1)
	all, err := s.ListRuns(ctx, r.scope, app.RunFilter{})
	require.NoError(t, err)
	require.Len(t, all, 2)

	_, err = s.GetRun(ctx, r.mine, r.alphaRun)
	require.NoError(t, err)
	_, err = s.GetRun(ctx, r.mine, r.charlieRun)
	var nf *app.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.Equal(t, `no run "`+r.charlieRun+`"`, err.Error())
	require.ErrorAs(t, s.Retire(ctx, r.mine, r.charlieRun), &nf)
}

// TestOwnedScopeDashboard: the counts, the failing runs and the plan are
// of owned applications only.
func TestOwnedScopeDashboard(t *testing.T) {
	t.Parallel()
	r := ownedSetup(t)
	ctx := context.Background()
	s := r.srv.App()

	everyone, err := s.Dashboard(ctx, r.scope)
	require.NoError(t, err)
	require.Equal(t, 2, everyone.Expired, "bravo's and charlie's expired secrets")
	require.Equal(t, 2, everyone.Expiring[0].Count, "alpha's and charlie's within 7 days")
	require.Len(t, everyone.Failing, 2)

	d, err := s.Dashboard(ctx, r.mine)
	require.NoError(t, err)
	require.Equal(t, 1, d.Expired, "bravo's only")
	require.Equal(t, 7, d.Expiring[0].Days)
	require.Equal(t, 1, d.Expiring[0].Count, "alpha's only")
	require.Len(t, d.Failing, 1)
	require.Equal(t, r.alphaRun, d.Failing[0].Run.ID)
	for _, pl := range []app.Plan{d.Next24h, d.Next7d} {
		for _, it := range pl.Items {
			require.True(t, r.mine.Owned.Has(it.Application.ObjectID), "plan item %s is not theirs", it.Application.Name)
		}
	}
	require.True(t, slices.ContainsFunc(everyone.Next7d.Items, func(it app.PlanItem) bool { return it.Application.ObjectID == r.charlie.ObjectID }),
		"charlie is in everyone's plan, so leaving it out of theirs means something")
	require.Less(t, d.Next7d.Total, everyone.Next7d.Total)

	due, err := s.DuePageOf(ctx, r.mine, app.DuePageRequest{Limit: app.MaxPageSize})
	require.NoError(t, err)
	for _, it := range due.Rows {
		require.True(t, r.mine.Owned.Has(it.Application.ObjectID), "due %s is not theirs", it.Application.Name)
	}
}

// TestOrgSettingsOwnedAppsOnly: the switch is off by default, an admin's
// to change, and audited.
func TestOrgSettingsOwnedAppsOnly(t *testing.T) {
	t.Parallel()
	r := dashSetup(t)
	ctx := context.Background()
	s := r.srv.App()
	got, err := s.OrgSettings(ctx, r.scope)
	require.NoError(t, err)
	require.False(t, got.OwnedAppsOnly)
	on := true
	got, err = s.UpdateOrgSettings(ctx, r.scope, app.OrgSettingsUpdate{OwnedAppsOnly: &on})
	require.NoError(t, err)
	require.True(t, got.OwnedAppsOnly)
	got, err = s.UpdateOrgSettings(ctx, r.scope, app.OrgSettingsUpdate{})
	require.NoError(t, err)
	require.True(t, got.OwnedAppsOnly, "a nil field leaves it")

	require.True(t, app.RoleAdmin.Permits(app.ActionUpdateOrgSettings))
	require.False(t, app.RoleOperator.Permits(app.ActionUpdateOrgSettings))
	require.False(t, app.RoleViewer.Permits(app.ActionUpdateOrgSettings))
}
