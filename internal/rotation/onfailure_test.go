package rotation

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
)

// A sink under on_failure: continue that fails its write is journaled and
// passed over; the others get the secret and the run completes.
func TestContinueSinkFailsDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy.Sinks[1].Settings["on_failure"] = "continue"
	b.vault.failures = func(name string, _ int) error {
		if name == "ado" {
			return fmt.Errorf("ado answered 403: %w", errPolicy)
		}
		return nil
	}
	e := b.engine(t)
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State)
	stored, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"planned", "created", "replicating", "sink:0:writing", "sink:0:written", "sink:1:writing", "sink:1:failed",
		"propagated", "verifying", "verified", "retiring"}, steps(stored))
	require.Contains(t, messageOf(stored, "propagated"), "1 sink(s) hold the new secret; sink #2 (memory sink ado) failed")
	_, kv := b.vault.get("kv", b.app.ObjectID)
	require.Equal(t, run.NewKeyID, kv)
	_, ado := b.vault.get("ado", b.app.ObjectID)
	require.Empty(t, ado, "the failed sink holds nothing new")
	require.Contains(t, b.logs.String(), "on_failure: continue")

	ds, err := b.store.SinkDeliveries(b.ctx, store.SinkDeliveriesParams{Org: b.org, TenantID: tenant, AppObjectID: b.app.ObjectID})
	require.NoError(t, err)
	require.Len(t, ds, 1, "only the delivered target is recorded")
	for _, d := range ds {
		require.Equal(t, run.NewKeyID, d.KeyID)
	}
	b.assertNoSecretAtRest(t)
}

// The default stops the run: the same failure without continue fails it.
func TestStopSinkFailsTheRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.vault.failures = func(name string, _ int) error {
		if name == "ado" {
			return fmt.Errorf("ado answered 403: %w", errPolicy)
		}
		return nil
	}
	run, err := b.engine(t).Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.Error(t, err)
	require.Equal(t, domain.RunFailed, run.State)
	require.Len(t, b.dir.removed, 0, "nothing older is retired")
}

// A continue sink that fails validation is left out before anything is
// created; the run goes on with the others.
func TestContinueSinkFailsValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy.Sinks[1].Settings["on_failure"] = "continue"
	b.policy.Sinks[1].Settings["refuse"] = true
	run, err := b.engine(t).Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	stored, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"planned", "sink:1:skipped", "created", "replicating", "sink:0:writing", "sink:0:written",
		"propagated", "verifying", "verified", "retiring"}, steps(stored))
	require.Contains(t, messageOf(stored, "propagated"), "1 sink(s) were left out")
}

// A versioned sink's deliveries are recorded with the version, drift
// behind rotor's back shows in Drifts and CheckSinks, and the next run
// journals it before writing.
func TestDriftIsRecordedAndReported(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy.Sinks = []domain.SinkSpec{{Type: "memory", Settings: map[string]any{"name": "kv", "versioned": true}}}
	e := b.engine(t)
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	ds, err := b.store.SinkDeliveries(b.ctx, store.SinkDeliveriesParams{Org: b.org, TenantID: tenant, AppObjectID: b.app.ObjectID})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	for _, d := range ds {
		require.Equal(t, run.NewKeyID, d.KeyID)
		require.Equal(t, "v1", d.Version)
		require.Equal(t, run.ID, d.RunID)
	}
	drifts, err := e.Drifts(b.ctx, b.org, b.app, b.policy)
	require.NoError(t, err)
	require.Len(t, drifts, 1)
	require.NotNil(t, drifts[0].Drift)
	require.False(t, drifts[0].Drift.Drifted)

	b.vault.tamper("kv", b.app.ObjectID)
	drifts, err = e.Drifts(b.ctx, b.org, b.app, b.policy)
	require.NoError(t, err)
	require.True(t, drifts[0].Drift.Drifted, drifts[0].Drift.Reason)
	require.Contains(t, drifts[0].Drift.Reason, "changed behind rotor's back")
	checks, err := e.CheckSinks(b.ctx, b.org, b.app, b.policy)
	require.NoError(t, err)
	require.True(t, checks[0].Drift.Drifted)
	require.Contains(t, b.logs.String(), "sink target drifted since rotor's last delivery")

	// The next run says so before writing, and records its own version.
	b.clock.Advance(b.policy.Overlap)
	require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	second, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
	require.NoError(t, err)
	stored, err := b.store.GetRun(b.ctx, b.org, second.ID)
	require.NoError(t, err)
	require.Contains(t, steps(stored), "sink:0:drifted")
	ds, err = b.store.SinkDeliveries(b.ctx, store.SinkDeliveriesParams{Org: b.org, TenantID: tenant, AppObjectID: b.app.ObjectID})
	require.NoError(t, err)
	for _, d := range ds {
		require.Equal(t, second.NewKeyID, d.KeyID)
		require.Equal(t, "v3", d.Version)
	}
	drifts, err = e.Drifts(b.ctx, b.org, b.app, b.policy)
	require.NoError(t, err)
	require.False(t, drifts[0].Drift.Drifted, "rotor's own write is not drift")
}

// Explain's drift view reads every target at once within one budget: two
// hung targets leave their drift unknown and do not hold up the answer,
// and the target that answers is compared.
func TestDriftsOfHungTargetsAreUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy.Sinks = []domain.SinkSpec{
		{Type: "memory", Settings: map[string]any{"name": "hung-a", "hang": true}},
		{Type: "memory", Settings: map[string]any{"name": "kv", "versioned": true}},
		{Type: "memory", Settings: map[string]any{"name": "hung-b", "hang": true}},
	}
	e := b.engine(t)
	_, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	e.driftBudget = 200 * time.Millisecond
	drifts, err := e.Drifts(b.ctx, b.org, b.app, b.policy)
	require.NoError(t, err)
	require.Len(t, drifts, 3)
	require.Nil(t, drifts[0].Drift, "a hung target's drift is unknown")
	require.NotNil(t, drifts[0].Last, "what rotor delivered is still shown")
	require.NotNil(t, drifts[1].Drift, "the target that answers is compared")
	require.False(t, drifts[1].Drift.Drifted)
	require.Nil(t, drifts[2].Drift)
}

// on_failure takes only stop or continue, and no kind ever sees it.
func TestOnFailureIsTheRegistrysKey(t *testing.T) {
	t.Parallel()
	reg := sink.NewRegistry(memBuilder{})
	require.NoError(t, reg.CheckSpec(domain.SinkSpec{Type: "memory", Settings: map[string]any{"name": "a", "on_failure": "continue"}}))
	err := reg.CheckSpec(domain.SinkSpec{Type: "memory", Settings: map[string]any{"name": "a", "on_failure": "ignore"}})
	require.ErrorContains(t, err, `on_failure: must be "stop"`)
	require.Equal(t, sink.OnFailureStop, sink.OnFailureOf(domain.SinkSpec{Settings: map[string]any{}}))
	require.NotContains(t, sink.KindSpec(domain.SinkSpec{Settings: map[string]any{"on_failure": "continue", "name": "a"}}).Settings, "on_failure")
}

func messageOf(r *domain.Run, step string) string {
	for _, ev := range r.Events {
		if ev.Step.String() == step {
			return ev.Message
		}
	}
	return strings.Join(steps(r), ",")
}
