package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// refreshingPolicies records the planner's refreshes.
type refreshingPolicies struct {
	policies
	mu        sync.Mutex
	refreshed []domain.OrgID
}

func (p *refreshingPolicies) Refresh(_ context.Context, org domain.OrgID) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshed = append(p.refreshed, org)
	return nil
}

// TestPlanCoversEveryOrganization: a plan that names no organization plans
// every organization in the store, refreshing each one's policies first,
// and each rotate job carries its application's organization.
func TestPlanCoversEveryOrganization(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 2)
		const other = domain.OrgID("globex")
		require.NoError(t, b.store.EnsureOrg(b.ctx, other, "Globex"))
		app := b.apps[0]
		app.Org, app.ObjectID, app.DisplayName = other, "globex-app", "globex-app" // same tenant, another org
		_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: other, Connection: "main", SyncStarted: time.Now().UTC(),
			Applications: []domain.Application{app}})
		require.NoError(t, err)
		pols := &refreshingPolicies{policies: b.jobs.cfg.Policies.(policies)}
		b.jobs.cfg.Policies = pols

		w := &planWorker{j: b.jobs}
		require.NoError(t, w.Work(b.ctx, &river.Job[PlanArgs]{Args: PlanArgs{}}))
		require.ElementsMatch(t, []domain.OrgID{b.org, other}, pols.refreshed)

		res, err := b.jobs.client.JobList(b.ctx, river.NewJobListParams().Kinds(KindRotate).First(100))
		require.NoError(t, err)
		got := map[string]domain.OrgID{}
		for _, j := range res.Jobs {
			var a RotateArgs
			require.NoError(t, unmarshalArgs(j.EncodedArgs, &a))
			got[a.AppObjectID] = a.Org
		}
		require.Equal(t, map[string]domain.OrgID{b.apps[0].ObjectID: b.org, b.apps[1].ObjectID: b.org, "globex-app": other}, got)

		// A plan naming one organization plans that one only.
		pols.refreshed = nil
		require.NoError(t, w.Work(b.ctx, &river.Job[PlanArgs]{Args: PlanArgs{Org: other}}))
		require.Equal(t, []domain.OrgID{other}, pols.refreshed)
	})
}

func unmarshalArgs(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestOneOrganizationsFailureDoesNotStopTheOthers: a sync without an
// organization syncs every one, carrying on past one that fails, and
// still plans.
func TestOneOrganizationsFailureDoesNotStopTheOthers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 1)
		require.NoError(t, b.store.EnsureOrg(b.ctx, "broken", "Broken"))
		require.NoError(t, b.store.EnsureOrg(b.ctx, "zeta", "Zeta"))
		var mu sync.Mutex
		var synced []domain.OrgID
		b.jobs.cfg.Sync = func(_ context.Context, org domain.OrgID) error {
			mu.Lock()
			defer mu.Unlock()
			synced = append(synced, org)
			if org == "broken" {
				return errors.New("its connection cannot sign in")
			}
			return nil
		}
		w := &syncWorker{j: b.jobs}
		err := w.Work(b.ctx, &river.Job[SyncArgs]{Args: SyncArgs{}})
		require.ErrorContains(t, err, "organization broken: its connection cannot sign in")
		require.Equal(t, []domain.OrgID{b.org, "broken", "zeta"}, synced, "every organization, in order")
		res, err := b.jobs.client.JobList(b.ctx, river.NewJobListParams().Kinds(KindPlan).First(10))
		require.NoError(t, err)
		require.Len(t, res.Jobs, 1, "the plan still follows")
	})
}
