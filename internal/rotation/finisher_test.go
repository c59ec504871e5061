package rotation

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// finishingSink is a memory sink with an after-all step (like a
// Kubernetes rolling restart): it records what every sink held when it ran.
type finishingSink struct {
	*memSink
	log *finishLog
}

var _ sink.Finisher = (*finishingSink)(nil)

type finishLog struct {
	mu    sync.Mutex
	calls int
	// heldAtCall is each sink's key id when AfterAll ran.
	heldAtCall map[string]string
	err        error
}

func (s *finishingSink) AfterAll(_ context.Context, d sink.Delivery) error {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	s.log.calls++
	s.log.heldAtCall = map[string]string{}
	for _, name := range []string{"kv", "ado"} {
		_, s.log.heldAtCall[name] = s.vault.get(name, d.App.ObjectID)
	}
	return s.log.err
}

func TestAfterAllRunsOnceEverySinkHoldsTheSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fl := &finishLog{}
	b.policy.Sinks[0].Settings["finish"] = fl
	e := b.engine(t)

	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	require.Equal(t, 1, fl.calls)
	require.Equal(t, map[string]string{"kv": run.NewKeyID, "ado": run.NewKeyID}, fl.heldAtCall,
		"the after-all step of the first sink waits for the last sink")
	stored, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"planned", "created", "replicating", "sink:0:writing", "sink:0:written", "sink:1:writing", "sink:1:written",
		"finish:0:writing", "finish:0:written", "propagated", "verifying", "verified", "retiring"}, steps(stored))
}

func TestAfterAllFailureFailsTheRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fl := &finishLog{err: fmt.Errorf("rolling restart refused: %w", errPolicy)}
	b.policy.Sinks[1].Settings = map[string]any{"name": "ado", "finish": fl}
	e := b.engine(t)

	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	var re *RunError
	require.ErrorAs(t, err, &re)
	require.True(t, re.Permanent)
	require.Contains(t, re.Message, "sink 1 (memory sink ado) failed after every sink held the new secret: rolling restart refused")
	require.Equal(t, domain.RunFailed, run.State)
	_, keyID := b.vault.get("kv", b.app.ObjectID)
	require.Equal(t, run.NewKeyID, keyID, "the delivered secret stays where it is")
	b.assertNoSecretAtRest(t)
}
