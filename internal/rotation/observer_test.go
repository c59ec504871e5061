package rotation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

// observed records what an Observer is told.
type observed struct {
	mu       sync.Mutex
	outcomes []string
	rotated  []time.Duration
}

var _ Observer = (*observed)(nil)

func (o *observed) Observe(org domain.OrgID, connection string, out RunOutcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes = append(o.outcomes, fmt.Sprintf("%s/%s/%s", org, connection, out))
}

func (o *observed) Rotated(_ domain.OrgID, _ string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rotated = append(o.rotated, d)
}

// TestObserverIsToldEveryOutcome: each way a run can end reaches the
// engine's Observer once, named by organization, connection and outcome,
// and a rotation that reaches retiring reports how long it took from
// planned (the test's clock moves 42s while the secret is created).
func TestObserverIsToldEveryOutcome(t *testing.T) {
	t.Parallel()
	slowCreate := func(b *bundle) {
		b.hooks.AfterJournal = func(_ domain.Run, st domain.Step) {
			if st.Kind == domain.StepCreated {
				b.clock.Advance(42 * time.Second)
			}
		}
	}
	cases := []struct {
		name    string
		tweak   func(b *bundle)
		act     func(t *testing.T, b *bundle, e *Engine)
		want    []string
		rotated []time.Duration
	}{
		{
			name:  "rotated and retired",
			tweak: slowCreate,
			act: func(t *testing.T, b *bundle, e *Engine) {
				run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
				require.NoError(t, err)
				b.clock.Advance(b.policy.Overlap)
				require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
			},
			want:    []string{"acme/main/done"},
			rotated: []time.Duration{42 * time.Second},
		},
		{
			name: "another run holds the application",
			act: func(t *testing.T, b *bundle, e *Engine) {
				require.NoError(t, b.store.CreateRun(b.ctx, &domain.Run{Org: b.org, ID: "0190aaaa-0000-7000-8000-00000000beef", TenantID: tenant,
					AppObjectID: b.app.ObjectID, Connection: "main", Kind: domain.KindSecret, Trigger: domain.TriggerDue}))
				_, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
				require.ErrorIs(t, err, ErrBusy)
			},
			want: []string{"acme/main/busy"},
		},
		{
			name:  "Entra refuses the secret for good",
			tweak: func(b *bundle) { b.dir.addErr = func(int) error { return errPolicy } },
			act: func(t *testing.T, b *bundle, e *Engine) {
				_, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
				require.True(t, IsPermanentFailure(err), "%v", err)
			},
			want: []string{"acme/main/failed_permanent"},
		},
		{
			name: "Graph keeps failing",
			tweak: func(b *bundle) {
				b.dir.addErr = func(int) error { return errors.New("graph: 503 service unavailable") }
			},
			act: func(t *testing.T, b *bundle, e *Engine) {
				_, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
				var re *RunError
				require.ErrorAs(t, err, &re)
				require.False(t, re.Permanent)
			},
			want: []string{"acme/main/failed_transient"},
		},
		{
			name: "stopped mid-run",
			act: func(t *testing.T, b *bundle, e *Engine) {
				ctx, cancel := context.WithCancel(b.ctx)
				defer cancel()
				b.dir.afterAdd = cancel
				run, err := e.Rotate(ctx, b.org, b.app, b.policy, domain.TriggerDue)
				require.Error(t, err)
				require.Equal(t, domain.RunAbandoned, run.State)
			},
			want: []string{"acme/main/abandoned"},
		},
		{
			name:  "its secret removed outside rotor before retirement",
			tweak: slowCreate,
			act: func(t *testing.T, b *bundle, e *Engine) {
				run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
				require.NoError(t, err)
				require.NoError(t, b.dir.RemovePassword(b.ctx, b.app.ObjectID, run.NewKeyID))
				b.clock.Advance(b.policy.Overlap)
				require.Error(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
			},
			want:    []string{"acme/main/failed_removed"},
			rotated: []time.Duration{42 * time.Second},
		},
		{
			name: "a dead process's run, recovered",
			act: func(t *testing.T, b *bundle, e *Engine) {
				require.NoError(t, b.store.CreateRun(b.ctx, &domain.Run{Org: b.org, ID: "0190aaaa-0000-7000-8000-00000000dead", TenantID: tenant,
					AppObjectID: b.app.ObjectID, Connection: "main", Kind: domain.KindSecret, Trigger: domain.TriggerDue}))
				abandoned, err := e.Recover(b.ctx, b.org)
				require.NoError(t, err)
				require.Len(t, abandoned, 1)
			},
			want: []string{"acme/main/abandoned"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			obs := &observed{}
			b.observer = obs
			if tc.tweak != nil {
				tc.tweak(b)
			}
			tc.act(t, b, b.engine(t))
			obs.mu.Lock()
			defer obs.mu.Unlock()
			require.Equal(t, tc.want, obs.outcomes)
			require.Equal(t, tc.rotated, obs.rotated)
		})
	}
}
