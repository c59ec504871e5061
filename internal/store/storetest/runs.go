package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// newRun builds a planned run for application n of tenant1 in the org
// under test, created a minute after the previous one, then applies the
// tweaks.
func (b *bundle) newRun(n int, tweaks ...func(*domain.Run)) *domain.Run {
	b.runs++
	at := b.t0.Add(time.Duration(b.runs) * time.Minute)
	r := &domain.Run{
		Org:         b.org,
		ID:          fmt.Sprintf("run-%03d-%03d", n, b.runs),
		Connection:  conn1,
		TenantID:    tenant1,
		AppObjectID: objectID(n),
		AppID:       appID(n),
		AppName:     fmt.Sprintf("app-%03d", n),
		Policy:      "default",
		Kind:        domain.KindSecret,
		Trigger:     domain.TriggerDue,
		State:       domain.RunPlanned,
		Attempts:    1,
		CreatedAt:   at,
		UpdatedAt:   at,
	}
	for _, tw := range tweaks {
		tw(r)
	}
	return r
}

func (b *bundle) createRun(t *testing.T, r *domain.Run) *domain.Run {
	t.Helper()
	require.NoError(t, b.s.CreateRun(b.ctx, r))
	return r
}

func (b *bundle) getRun(t *testing.T, org domain.OrgID, id string) *domain.Run {
	t.Helper()
	r, err := b.s.GetRun(b.ctx, org, id)
	require.NoError(t, err)
	return r
}

// move transitions the run of the org under test from one state to
// another with an event at at.
func (b *bundle) move(t *testing.T, id string, from, to domain.RunState, at time.Time) {
	t.Helper()
	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: id, From: []domain.RunState{from}, To: to,
		Event: domain.RunEvent{At: at, Step: domain.StepKind(to).Step(), Message: fmt.Sprintf("%s → %s", from, to)},
	}))
}

func (b *bundle) normRun(r domain.Run) domain.Run {
	r.NewEnd, r.RetireAt = b.utc(r.NewEnd), b.utc(r.RetireAt)
	r.CreatedAt, r.UpdatedAt, r.EndedAt = b.utc(r.CreatedAt), b.utc(r.UpdatedAt), b.utc(r.EndedAt)
	if len(r.Events) == 0 {
		r.Events = nil
	} else {
		evs := make([]domain.RunEvent, len(r.Events))
		for i, ev := range r.Events {
			ev.At = b.utc(ev.At)
			evs[i] = ev
		}
		r.Events = evs
	}
	return r
}

func runIDs(runs []domain.Run) []string {
	out := []string{}
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

func testRunRoundTrip(t *testing.T, b *bundle) {
	r := b.newRun(1, func(r *domain.Run) {
		r.Kind = domain.KindCertificate
		r.Trigger = domain.TriggerRecovery
		r.Replaces = "run-dead"
		r.Attempts = 3
		r.Policy = "certs"
		r.Events = []domain.RunEvent{
			{At: r.CreatedAt, State: domain.RunPlanned, Step: domain.StepPlanned.Step(), Message: "due: renewal time reached"},
			{At: r.CreatedAt.Add(time.Nanosecond), State: domain.RunPlanned, Step: domain.StepTakenOver.Step(), Message: "replaces run-dead"},
		}
	})
	want := b.normRun(*r)
	want.Seq = 1 // the store's, not the caller's
	b.createRun(t, r)
	require.Equal(t, want, b.normRun(*b.getRun(t, b.org, r.ID)))
}

func testRunDefaults(t *testing.T, b *bundle) {
	r := b.newRun(1, func(r *domain.Run) {
		r.ID, r.State, r.CreatedAt, r.UpdatedAt = "", "", time.Time{}, time.Time{}
	})
	b.createRun(t, r)
	require.NotEmpty(t, r.ID)
	require.Equal(t, domain.RunPlanned, r.State)
	require.False(t, r.CreatedAt.IsZero())
	require.True(t, r.UpdatedAt.Equal(r.CreatedAt))
	got := b.getRun(t, b.org, r.ID)
	require.Equal(t, b.normRun(*r), b.normRun(*got))
	require.Nil(t, got.Events)

	other := b.newRun(2, func(r *domain.Run) { r.ID = "" })
	b.createRun(t, other)
	require.NotEqual(t, r.ID, other.ID, "generated ids are unique")

	err := b.s.CreateRun(b.ctx, b.newRun(3, func(r *domain.Run) { r.State = domain.RunCreated }))
	require.Error(t, err, "a new run starts planned")
}

func testRunActiveConflict(t *testing.T, b *bundle) {
	first := b.createRun(t, b.newRun(1))
	second := b.newRun(1)
	err := b.s.CreateRun(b.ctx, second)
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = b.s.GetRun(b.ctx, b.org, second.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "the losing run is not journaled")

	// Every active state holds the application.
	for _, st := range []domain.RunState{domain.RunCreated, domain.RunPropagated, domain.RunVerified} {
		prev := b.getRun(t, b.org, first.ID).State
		b.move(t, first.ID, prev, st, b.t0.Add(time.Hour))
		require.ErrorIs(t, b.s.CreateRun(b.ctx, b.newRun(1)), store.ErrConflict, "first run is %s", st)
	}

	// Other applications, and the same object id in another tenant, are free.
	b.createRun(t, b.newRun(2))
	b.createRun(t, b.newRun(1, func(r *domain.Run) { r.TenantID = tenant2 }))
}

func testRunAllowedAfterTerminal(t *testing.T, b *bundle) {
	for i, st := range []domain.RunState{domain.RunDone, domain.RunFailed, domain.RunAbandoned, domain.RunRetiring} {
		t.Run(string(st), func(t *testing.T) {
			n := 10 + i
			first := b.createRun(t, b.newRun(n))
			b.move(t, first.ID, domain.RunPlanned, st, b.t0.Add(time.Hour))
			b.createRun(t, b.newRun(n, func(r *domain.Run) { r.Trigger = domain.TriggerRecovery; r.Replaces = first.ID }))
			require.ErrorIs(t, b.s.CreateRun(b.ctx, b.newRun(n)), store.ErrConflict, "but only one new one")
		})
	}
}

// testRunSequence: the store numbers an application's runs 1, 2, … in
// creation order, whatever Seq or CreatedAt the caller gave (a later run
// may carry an earlier timestamp from a process whose clock is behind),
// per application and tenant, and keeps the number on reads.
func testRunSequence(t *testing.T, b *bundle) {
	first := b.createRun(t, b.newRun(30, func(r *domain.Run) { r.Seq = 99 }))
	require.EqualValues(t, 1, first.Seq)
	b.move(t, first.ID, domain.RunPlanned, domain.RunRetiring, b.t0.Add(time.Hour))
	second := b.createRun(t, b.newRun(30, func(r *domain.Run) { r.CreatedAt, r.UpdatedAt = b.t0.Add(-time.Hour), b.t0.Add(-time.Hour) }))
	require.EqualValues(t, 2, second.Seq, "a later run with an earlier clock is still later")
	require.EqualValues(t, 2, b.getRun(t, b.org, second.ID).Seq)
	require.EqualValues(t, 1, b.getRun(t, b.org, first.ID).Seq)
	other := b.createRun(t, b.newRun(30, func(r *domain.Run) { r.TenantID = tenant2 }))
	require.EqualValues(t, 1, other.Seq, "the same object id in another tenant is another application")
	runs, err := b.s.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, AppObjectID: objectID(30)})
	require.NoError(t, err)
	seqs := map[string]int64{}
	for _, r := range runs {
		seqs[r.ID] = r.Seq
	}
	require.Equal(t, map[string]int64{first.ID: 1, second.ID: 2, other.ID: 1}, seqs)
}

func testRunDuplicateID(t *testing.T, b *bundle) {
	first := b.createRun(t, b.newRun(1, func(r *domain.Run) { r.ID = "same" }))
	b.move(t, first.ID, domain.RunPlanned, domain.RunDone, b.t0.Add(time.Hour))
	err := b.s.CreateRun(b.ctx, b.newRun(2, func(r *domain.Run) { r.ID = "same" }))
	require.ErrorIs(t, err, store.ErrConflict)
	require.Equal(t, objectID(1), b.getRun(t, b.org, "same").AppObjectID)
}

func testTransitionSetsFields(t *testing.T, b *bundle) {
	r := b.createRun(t, b.newRun(1))
	t1 := b.t0.Add(time.Hour + time.Nanosecond)
	newEnd := t1.Add(90 * 24 * time.Hour).In(time.FixedZone("X", -3600))
	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: r.ID, From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated,
		NewKeyID: "key-new", NewEnd: newEnd,
		Event: domain.RunEvent{At: t1, Step: domain.StepCreated.Step(), Message: "created key-new"},
	}))
	got := b.getRun(t, b.org, r.ID)
	require.Equal(t, domain.RunCreated, got.State)
	require.Equal(t, "key-new", got.NewKeyID)
	require.True(t, b.sameTime(newEnd, got.NewEnd))
	require.True(t, b.sameTime(t1, got.UpdatedAt), "updated at the event's time")
	require.True(t, b.sameTime(r.CreatedAt, got.CreatedAt))
	require.True(t, got.EndedAt.IsZero())
	require.False(t, got.SinksStarted)
	require.Equal(t, []domain.RunEvent{{At: b.utc(t1), State: domain.RunCreated, Step: domain.StepCreated.Step(), Message: "created key-new"}},
		b.normRun(*got).Events, "event state defaults to To")

	t2 := t1.Add(time.Minute)
	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: r.ID, From: []domain.RunState{domain.RunCreated}, To: domain.RunPropagated,
		SinksStarted: true, Event: domain.RunEvent{At: t2, Step: domain.StepPropagated.Step()},
	}))
	got = b.getRun(t, b.org, r.ID)
	require.True(t, got.SinksStarted)
	require.Equal(t, "key-new", got.NewKeyID, "zero fields leave columns alone")
	require.True(t, b.sameTime(newEnd, got.NewEnd))

	b.move(t, r.ID, domain.RunPropagated, domain.RunVerified, t2.Add(time.Minute))
	retireAt := t2.Add(24 * time.Hour)
	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: r.ID, From: []domain.RunState{domain.RunVerified}, To: domain.RunRetiring,
		RetireAt: retireAt, Event: domain.RunEvent{At: t2.Add(2 * time.Minute), Step: domain.StepRetiring.Step()},
	}))
	got = b.getRun(t, b.org, r.ID)
	require.True(t, b.sameTime(retireAt, got.RetireAt))
	require.True(t, got.EndedAt.IsZero(), "retiring is not terminal")

	t3 := retireAt.Add(time.Second)
	b.move(t, r.ID, domain.RunRetiring, domain.RunDone, t3)
	got = b.getRun(t, b.org, r.ID)
	require.Equal(t, domain.RunDone, got.State)
	require.True(t, b.sameTime(t3, got.EndedAt), "terminal states set EndedAt")
	require.True(t, b.sameTime(t3, got.UpdatedAt))
	require.True(t, got.SinksStarted)
	require.Len(t, got.Events, 5)

	// A failure records its error.
	f := b.createRun(t, b.newRun(2))
	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: f.ID, From: []domain.RunState{domain.RunPlanned, domain.RunCreated}, To: domain.RunFailed,
		Error: "Graph: 403 Authorization_RequestDenied", Event: domain.RunEvent{At: t1, Step: domain.StepCreated.Step(), Message: "denied"},
	}))
	got = b.getRun(t, b.org, f.ID)
	require.Equal(t, domain.RunFailed, got.State)
	require.Equal(t, "Graph: 403 Authorization_RequestDenied", got.Error)
	require.True(t, b.sameTime(t1, got.EndedAt))
}

func testTransitionWrongFrom(t *testing.T, b *bundle) {
	r := b.createRun(t, b.newRun(1))
	err := b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: r.ID, From: []domain.RunState{domain.RunCreated, domain.RunPropagated}, To: domain.RunVerified,
		NewKeyID: "must-not-stick", Event: domain.RunEvent{At: b.t0, Step: domain.StepFailed.Step()},
	})
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)
	got := b.getRun(t, b.org, r.ID)
	require.Equal(t, domain.RunPlanned, got.State)
	require.Empty(t, got.NewKeyID)
	require.Empty(t, got.Events, "a lost transition journals nothing")

	// Any of several From states will do.
	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: r.ID, From: []domain.RunState{domain.RunCreated, domain.RunPlanned}, To: domain.RunAbandoned,
		Event: domain.RunEvent{At: b.t0, Step: domain.StepTakenOver.Step()},
	}))
	require.Equal(t, domain.RunAbandoned, b.getRun(t, b.org, r.ID).State)
}

func testTransitionNotFound(t *testing.T, b *bundle) {
	err := b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: "missing", From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated,
		Event: domain.RunEvent{At: b.t0},
	})
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
}

func testTransitionSameState(t *testing.T, b *bundle) {
	r := b.createRun(t, b.newRun(1))
	err := b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: r.ID, From: []domain.RunState{domain.RunPlanned}, To: domain.RunPlanned,
		Event: domain.RunEvent{At: b.t0, Step: domain.StepPlanned.Step()},
	})
	require.Error(t, err, "use AppendRunEvent for a line without a state change")
	require.Empty(t, b.getRun(t, b.org, r.ID).Events)
}

func testTransitionReactivateConflict(t *testing.T, b *bundle) {
	old := b.createRun(t, b.newRun(1))
	b.move(t, old.ID, domain.RunPlanned, domain.RunFailed, b.t0.Add(time.Hour))
	b.createRun(t, b.newRun(1))
	err := b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: old.ID, From: []domain.RunState{domain.RunFailed}, To: domain.RunPlanned,
		Event: domain.RunEvent{At: b.t0.Add(2 * time.Hour)},
	})
	require.ErrorIs(t, err, store.ErrConflict, "two active runs for one application")
	got := b.getRun(t, b.org, old.ID)
	require.Equal(t, domain.RunFailed, got.State)
	require.Len(t, got.Events, 1)
}

func testTransitionRace(t *testing.T, b *bundle) {
	r := b.createRun(t, b.newRun(1))
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = b.s.TransitionRun(b.ctx, store.TransitionRunParams{
				Org: b.org, RunID: r.ID, From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated,
				NewKeyID: fmt.Sprintf("key-%d", i), Event: domain.RunEvent{At: b.t0, Step: domain.StepCreated.Step()},
			})
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, won, "two transitions won")
			won = i
			continue
		}
		require.ErrorIs(t, err, store.ErrConflict)
	}
	require.NotEqual(t, -1, won, "one transition wins")
	got := b.getRun(t, b.org, r.ID)
	require.Equal(t, fmt.Sprintf("key-%d", won), got.NewKeyID)
	require.Len(t, got.Events, 1)
}

func testEventsOrder(t *testing.T, b *bundle) {
	r := b.newRun(1)
	e1 := domain.RunEvent{At: b.t0, State: domain.RunPlanned, Step: domain.StepPlanned.Step(), Message: "adoption"}
	r.Events = []domain.RunEvent{e1}
	b.createRun(t, r)

	e2 := domain.RunEvent{At: b.t0.Add(time.Second), Step: domain.StepReplicating.Step(), Message: "429, retry after 2s"}
	require.NoError(t, b.s.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.org, RunID: r.ID, Event: e2}))
	e3 := domain.RunEvent{At: b.t0.Add(2 * time.Second), Step: domain.StepCreated.Step(), Message: "created"}
	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.org, RunID: r.ID, From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated, Event: e3,
	}))
	// Out of time order on purpose: the journal keeps write order.
	e4 := domain.RunEvent{At: b.t0.Add(-time.Minute), State: domain.RunCreated, Step: domain.SinkStep(0, domain.PhaseUnchanged), Message: "keyvault: skipped"}
	require.NoError(t, b.s.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.org, RunID: r.ID, Event: e4}))
	for i := range 20 {
		require.NoError(t, b.s.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.org, RunID: r.ID, Event: domain.RunEvent{At: b.t0.Add(time.Hour), Step: domain.RetireStep(fmt.Sprint(i), domain.PhaseRemoved)}}))
	}

	got := b.getRun(t, b.org, r.ID)
	require.Equal(t, domain.RunCreated, got.State, "AppendRunEvent leaves the state alone")
	require.Len(t, got.Events, 24)
	e2.State = domain.RunPlanned // an empty state is the run's current one
	e3.State = domain.RunCreated
	require.Equal(t, b.normRun(domain.Run{Events: []domain.RunEvent{e1, e2, e3, e4}}).Events, b.normRun(*got).Events[:4])
	for i, ev := range got.Events[4:] {
		require.Equal(t, fmt.Sprint(i), ev.Step.KeyID)
		require.Equal(t, domain.RunCreated, ev.State)
	}
}

func testAppendNotFound(t *testing.T, b *bundle) {
	err := b.s.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.org, RunID: "missing", Event: domain.RunEvent{At: b.t0, Step: domain.StepFailed.Step()}})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testListRuns(t *testing.T, b *bundle) {
	withEvent := func(r *domain.Run) {
		r.Events = []domain.RunEvent{{At: r.CreatedAt, State: domain.RunPlanned, Step: domain.StepPlanned.Step()}}
	}
	r1 := b.createRun(t, b.newRun(1, withEvent))
	b.move(t, r1.ID, domain.RunPlanned, domain.RunDone, b.t0.Add(time.Hour))
	r2 := b.createRun(t, b.newRun(1, withEvent))
	r3 := b.createRun(t, b.newRun(2, withEvent))
	b.move(t, r3.ID, domain.RunPlanned, domain.RunFailed, b.t0.Add(time.Hour))
	r4 := b.createRun(t, b.newRun(3, withEvent, func(r *domain.Run) { r.Trigger = domain.TriggerManual }))
	b.move(t, r4.ID, domain.RunPlanned, domain.RunCreated, b.t0.Add(time.Hour))
	// Created earliest of all, but written last: order is by CreatedAt.
	r0 := b.createRun(t, b.newRun(4, func(r *domain.Run) { r.CreatedAt, r.UpdatedAt = b.t0, b.t0 }))

	list := func(p store.ListRunsParams) []domain.Run {
		t.Helper()
		p.Org = b.org
		runs, err := b.s.ListRuns(b.ctx, p)
		require.NoError(t, err)
		return runs
	}
	for _, tc := range []struct {
		name string
		p    store.ListRunsParams
		want []string
	}{
		{"All", store.ListRunsParams{}, []string{r4.ID, r3.ID, r2.ID, r1.ID, r0.ID}},
		{"OneApplication", store.ListRunsParams{AppObjectID: objectID(1)}, []string{r2.ID, r1.ID}},
		{"States", store.ListRunsParams{States: []domain.RunState{domain.RunPlanned, domain.RunCreated}}, []string{r4.ID, r2.ID, r0.ID}},
		{"Terminal", store.ListRunsParams{States: []domain.RunState{domain.RunDone, domain.RunFailed, domain.RunAbandoned}}, []string{r3.ID, r1.ID}},
		{"AppAndState", store.ListRunsParams{AppObjectID: objectID(1), States: []domain.RunState{domain.RunDone}}, []string{r1.ID}},
		{"Limit", store.ListRunsParams{Limit: 2}, []string{r4.ID, r3.ID}},
		{"Trigger", store.ListRunsParams{Triggers: []domain.Trigger{domain.TriggerManual}}, []string{r4.ID}},
		{"Triggers", store.ListRunsParams{Triggers: []domain.Trigger{domain.TriggerManual, domain.TriggerDue}}, []string{r4.ID, r3.ID, r2.ID, r1.ID, r0.ID}},
		{"TriggerAndState", store.ListRunsParams{Triggers: []domain.Trigger{domain.TriggerDue}, States: []domain.RunState{domain.RunPlanned, domain.RunCreated}}, []string{r2.ID, r0.ID}},
		{"NoMatch", store.ListRunsParams{AppObjectID: objectID(9)}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, runIDs(list(tc.p)))
		})
	}

	all := list(store.ListRunsParams{})
	for _, r := range all {
		require.Nil(t, r.Events, "ListRuns leaves events out")
		require.Equal(t, b.org, r.Org)
	}
	want := b.normRun(*b.getRun(t, b.org, r4.ID))
	want.Events = nil
	require.Equal(t, want, b.normRun(all[0]), "listed runs carry every field")
}

// testOrgsRunsIsolated gives two orgs a run with the same id for the same
// application and checks that no method reaches across.
func testOrgsRunsIsolated(t *testing.T, b *bundle) {
	a := b.createRun(t, b.newRun(1, func(r *domain.Run) {
		r.ID = "run-shared"
		r.Events = []domain.RunEvent{{At: r.CreatedAt, State: domain.RunPlanned, Step: domain.StepPlanned.Step()}}
	}))
	wantA := b.normRun(*b.getRun(t, b.org, a.ID))

	_, err := b.s.GetRun(b.ctx, b.other, a.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	err = b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.other, RunID: a.ID, From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated,
		NewKeyID: "stolen", Event: domain.RunEvent{At: b.t0, Step: domain.StepFailed.Step()},
	})
	require.ErrorIs(t, err, store.ErrNotFound)
	err = b.s.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.other, RunID: a.ID, Event: domain.RunEvent{At: b.t0, Step: domain.StepFailed.Step()}})
	require.ErrorIs(t, err, store.ErrNotFound)
	for _, p := range []store.ListRunsParams{
		{Org: b.other},
		{Org: b.other, AppObjectID: objectID(1)},
		{Org: b.other, States: []domain.RunState{domain.RunPlanned}},
	} {
		runs, err := b.s.ListRuns(b.ctx, p)
		require.NoError(t, err)
		require.Empty(t, runs)
	}
	require.Equal(t, wantA, b.normRun(*b.getRun(t, b.org, a.ID)), "org A's run is untouched")

	// The other org may hold an active run for the same application, even
	// under the same id, and move it without touching org A's.
	bRun := b.newRun(1, func(r *domain.Run) { r.Org = b.other; r.ID = "run-shared"; r.AppName = "b" })
	b.createRun(t, bRun)
	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{
		Org: b.other, RunID: bRun.ID, From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated,
		NewKeyID: "b-key", Event: domain.RunEvent{At: b.t0.Add(time.Hour), Step: domain.StepCreated.Step()},
	}))
	require.NoError(t, b.s.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.other, RunID: bRun.ID, Event: domain.RunEvent{At: b.t0.Add(time.Hour), Step: domain.StepVerifying.Step()}}))
	require.Equal(t, wantA, b.normRun(*b.getRun(t, b.org, a.ID)), "org A's run is untouched")
	gotB := b.getRun(t, b.other, bRun.ID)
	require.Equal(t, b.other, gotB.Org)
	require.Equal(t, "b", gotB.AppName)
	require.Equal(t, domain.RunCreated, gotB.State)
	require.Len(t, gotB.Events, 2)

	runs, err := b.s.ListRuns(b.ctx, store.ListRunsParams{Org: b.org})
	require.NoError(t, err)
	require.Equal(t, []string{a.ID}, runIDs(runs))
	require.Equal(t, domain.RunPlanned, runs[0].State)
}

// testListRunsPages: Before* continues after the last run of a page, with
// filters, and runs created at the same instant are told apart by id.
func testListRunsPages(t *testing.T, b *bundle) {
	var want []string
	for n := 1; n <= 9; n++ {
		r := b.newRun(n%3 + 1)
		if n > 6 {
			// Three runs at one instant: the id decides.
			r.CreatedAt, r.UpdatedAt = b.t0.Add(time.Hour), b.t0.Add(time.Hour)
		}
		b.createRun(t, r)
		b.move(t, r.ID, domain.RunPlanned, domain.RunDone, r.CreatedAt.Add(time.Second))
	}
	all, err := b.s.ListRuns(b.ctx, store.ListRunsParams{Org: b.org})
	require.NoError(t, err)
	want = runIDs(all)
	require.Len(t, want, 9)
	for _, size := range []int{1, 2, 4, 9, 10} {
		var got []string
		p := store.ListRunsParams{Org: b.org, Limit: size}
		for range 100 {
			page, err := b.s.ListRuns(b.ctx, p)
			require.NoError(t, err)
			got = append(got, runIDs(page)...)
			if len(page) < size {
				break
			}
			last := page[len(page)-1]
			p.BeforeCreatedAt, p.BeforeID = last.CreatedAt, last.ID
		}
		require.Equal(t, want, got, "page size %d", size)
	}
	one, err := b.s.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, AppObjectID: objectID(2)})
	require.NoError(t, err)
	require.NotEmpty(t, one)
	page, err := b.s.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, AppObjectID: objectID(2), BeforeCreatedAt: one[0].CreatedAt, BeforeID: one[0].ID})
	require.NoError(t, err)
	require.Equal(t, runIDs(one[1:]), runIDs(page), "the cursor keeps the filter")
}
