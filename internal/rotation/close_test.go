package rotation

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

// Regression (review of issue 6): Engine.Close (Server.Close) releases the process lease while a
// fenced side effect is still in flight. FenceRun promised "nobody can
// claim the run before <until>", but the released lease lets any other
// process claim and abandon the run at once, while this process's sink
// write is still running.
func TestCloseWaitsForSideEffectsInFlight(t *testing.T) {
	b := setup(t)
	inDeliver, unblock := make(chan struct{}), make(chan struct{})
	b.vault.failures = func(name string, n int) error {
		if name == "kv" && n == 1 {
			close(inDeliver)
			<-unblock
		}
		return nil
	}
	a := b.engine(t)
	done := make(chan error, 1)
	go func() {
		_, err := a.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
		done <- err
	}()
	<-inDeliver
	// Shutdown path: jobs' hard stop gave up after 5s, Server.Close runs.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.NoError(t, a.Close(ctx))

	other := b.engine(t) // policies nil: mayBeHeld does not call Holds (which would wait on the vault lock)
	abandoned, err := other.Recover(b.ctx, b.org)
	require.NoError(t, err)
	close(unblock)
	<-done
	require.Empty(t, abandoned, "a run whose sink write is in flight was taken over: the fence's promise was voided by Close")
}
