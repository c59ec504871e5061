package domain

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStepRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		step Step
		want string
	}{
		{StepPlanned.Step(), "planned"},
		{StepTakenOver.Step(), "taken-over"},
		{SinkStep(0, PhaseWriting), "sink:0:writing"},
		{SinkStep(12, PhaseUnchanged), "sink:12:unchanged"},
		{FinishStep(1, PhaseWritten), "finish:1:written"},
		{RetireStep("4e40-aa", PhaseRemoving), "retire:4e40-aa:removing"},
		{CleanupStep("k", PhaseRemoved), "cleanup:k:removed"},
		{MakeRoomStep("k", PhaseRemoving), "make-room:k:removing"},
		{StepRetireScheduleFailed.Step(), "retire:schedule-failed"},
		{Step{Kind: StepTargetMoved, Index: 2}, "target-moved:2"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.step.String())
			got, err := ParseStep(tc.want)
			require.NoError(t, err)
			require.Equal(t, tc.step, got)
			b, err := json.Marshal(RunEvent{Step: tc.step})
			require.NoError(t, err)
			var ev RunEvent
			require.NoError(t, json.Unmarshal(b, &ev))
			require.Equal(t, tc.step, ev.Step)
		})
	}
}

func TestParseStepRefuses(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "sink", "sink:x:writing", "sink:-1:writing", "sink:0:removed", "retire::removed",
		"retire:k:writing", "cleanup:k", "plan", "target-moved:x", "sink:0:writing:extra"} {
		_, err := ParseStep(s)
		require.Error(t, err, "%q", s)
	}
}

// FuzzParseStep: journals are read back from the database; whatever is
// there, parsing never panics and what parses prints back the same.
func FuzzParseStep(f *testing.F) {
	for _, s := range []string{"planned", "sink:0:writing", "retire:k:removed", "retire:schedule-failed", "target-moved:3", "x:y:z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStep(s)
		if err != nil {
			return
		}
		again, err := ParseStep(st.String())
		require.NoError(t, err)
		require.Equal(t, st, again)
	})
}
