package rotation

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

type onePolicy struct{ p *domain.Policy }

func (o onePolicy) PolicyFor(domain.Application) *domain.Policy { return o.p }

// TestRecoverAsksSinksWhatTheyHold: a crashed run whose secret no sink
// holds is removed at once; one that a sink holds stays for the overlap;
// one that every sink holds is not replaced but goes on to retirement.
func TestRecoverAsksSinksWhatTheyHold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		crashAt string
		crashN  int
		want    string // "removed", "kept" or "resumed"
	}{
		{"before the first sink write landed", "sink:0:writing", 1, "removed"},
		{"after the first sink holds it", "sink:0:written", 1, "kept"},
		{"after every sink holds it, unjournaled", "sink:1:written", 1, "resumed"},
		{"after every sink holds it", "propagated", 1, "resumed"},
		{"verified", "verified", 1, "resumed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: []domain.Application{b.app}})
			require.NoError(t, err)
			seen := map[string]int{}
			var crashed domain.Run
			b.hooks.AfterJournal = func(r domain.Run, st domain.Step) {
				step := st.String()
				seen[step]++
				if step == tc.crashAt && seen[step] == tc.crashN {
					crashed = r
					panic(crash{step})
				}
			}
			e := b.engine(t)
			require.True(t, runUntilCrash(func() {
				_, _ = e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
			}))
			require.NotEmpty(t, crashed.NewKeyID)

			b.die(e)
			b.hooks = Hooks{}
			e = b.engine(t)
			e.policies = onePolicy{&b.policy}
			before := len(b.dir.removed)
			abandoned, err := e.Recover(b.ctx, b.org)
			require.NoError(t, err)
			run, err := b.store.GetRun(b.ctx, b.org, crashed.ID)
			require.NoError(t, err)
			switch tc.want {
			case "removed":
				require.Len(t, abandoned, 1)
				require.Len(t, b.dir.removed, before+1, "no sink holds it: removed at once")
				require.Contains(t, run.Error, "no sink holds its secret")
			case "kept":
				require.Len(t, abandoned, 1)
				require.Len(t, b.dir.removed, before, "a sink holds it: it stays for the overlap")
				require.Contains(t, run.Error, "holds it")
			case "resumed":
				require.Empty(t, abandoned, "no fresh run: it would only rotate again")
				require.Equal(t, domain.RunRetiring, run.State)
				require.Equal(t, crashed.NewKeyID, run.NewKeyID)
				require.Equal(t, b.clock.Now().Add(b.policy.Overlap), run.RetireAt, "a whole overlap from the takeover")
				require.Empty(t, run.Holder, "a retiring run belongs to nobody")
				require.Contains(t, run.Events[len(run.Events)-1].Message, "every sink holds it")
				require.Len(t, b.dir.removed, before, "nothing removed before the overlap")
				require.Contains(t, b.retires, run.ID, "its retirement is scheduled")
				b.clock.Advance(b.policy.Overlap)
				require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
				b.assertConverged(t)
			}
		})
	}
}

// TestRecoverWhenTheSinkChanged: if the sink a crashed run wrote to is not
// the one the policy names today (renamed app, edited policy), asking
// today's target proves nothing, so the secret stays for the overlap.
func TestRecoverWhenTheSinkChanged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: []domain.Application{b.app}})
	require.NoError(t, err)
	b.hooks.AfterJournal = func(_ domain.Run, st domain.Step) {
		step := st.String()
		if step == "sink:0:written" {
			panic(crash{step})
		}
	}
	e := b.engine(t)
	require.True(t, runUntilCrash(func() { _, _ = e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue) }))
	b.die(e)

	changed := b.policy
	changed.Sinks = []domain.SinkSpec{{Type: "memory", Settings: map[string]any{"name": "kv-new"}}}
	b.hooks = Hooks{}
	e = b.engine(t)
	e.policies = onePolicy{&changed}
	before := len(b.dir.removed)
	_, err = e.Recover(b.ctx, b.org)
	require.NoError(t, err)
	require.Len(t, b.dir.removed, before, "the new sink does not hold it, but the old one may: keep it")
}

// TestSinkThatRefusesFailsBeforeCreating: a sink that says it cannot take
// the secret fails the run before Entra holds a new secret.
func TestSinkThatRefusesFailsBeforeCreating(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy.Sinks = []domain.SinkSpec{{Type: "memory", Settings: map[string]any{"name": "kv", "refuse": true}}}
	e := b.engine(t)
	before, err := b.dir.Credentials(b.ctx, b.app.ObjectID)
	require.NoError(t, err)
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.Error(t, err)
	require.Equal(t, domain.RunFailed, run.State)
	require.Contains(t, run.Error, "cannot take the new secret")
	after, err := b.dir.Credentials(b.ctx, b.app.ObjectID)
	require.NoError(t, err)
	require.Equal(t, before, after, "nothing was created in Entra")
}
