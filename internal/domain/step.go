package domain

import (
	"fmt"
	"strconv"
	"strings"
)

// StepKind names one kind of journal line of a run. Recovery, the jobs,
// the CLI's narration and the tests all read the journal, so a step is one
// typed value with String and ParseStep rather than a string each of them
// splits its own way.
type StepKind string

// Step kinds, in the order a run writes them.
const (
	StepPlanned StepKind = "planned"
	StepCreated StepKind = "created"
	// StepReplicating waits for Entra to accept the new secret before any
	// sink receives it (ADR 8).
	StepReplicating StepKind = "replicating"
	// StepSink is one sink's write: Index is its position in the policy,
	// Phase writing (journaled before the write), written or unchanged.
	StepSink StepKind = "sink"
	// StepFinish is a sink's post-delivery step (e.g. a rolling restart),
	// run once every sink holds the value. Index and Phase as for StepSink.
	StepFinish     StepKind = "finish"
	StepPropagated StepKind = "propagated"
	StepVerifying  StepKind = "verifying"
	StepVerified   StepKind = "verified"
	StepRetiring   StepKind = "retiring"
	// StepRetire is the removal of an older credential after the overlap:
	// KeyID, Phase removing (before) or removed (after).
	StepRetire StepKind = "retire"
	// StepRetireScheduleFailed notes that the retire job could not be
	// scheduled; rotor reschedules it.
	StepRetireScheduleFailed StepKind = "retire-schedule-failed"
	// StepCleanup removes a credential of a failed or abandoned run that
	// no sink received: KeyID and Phase as for StepRetire.
	StepCleanup StepKind = "cleanup"
	// StepMakeRoom removes an expired credential before the new secret is
	// created, on an application Entra limits to two secrets (personal
	// Microsoft accounts; see PasswordRoom): KeyID and Phase as for
	// StepRetire.
	StepMakeRoom StepKind = "make-room"
	// StepTakenOver records that a process took over a run whose lease
	// had expired (its holder died or lost the database).
	StepTakenOver StepKind = "taken-over"
	// StepTargetMoved records that a sink's pinned target no longer
	// matches what its configuration resolves to today (a renamed
	// application, an edited template).
	StepTargetMoved StepKind = "target-moved"
	StepDone        StepKind = "done"
	StepFailed      StepKind = "failed"
	StepAbandoned   StepKind = "abandoned"
)

// Step returns the step of a kind that has no index, key or phase.
func (k StepKind) Step() Step { return Step{Kind: k} }

// Phase is where a per-sink or per-credential step stands.
type Phase string

// Phases.
const (
	PhaseWriting   Phase = "writing"
	PhaseWritten   Phase = "written"
	PhaseUnchanged Phase = "unchanged"
	PhaseRemoving  Phase = "removing"
	PhaseRemoved   Phase = "removed"
	// PhaseFailed: a sink under on_failure: continue could not take the
	// new credential; the run went on without it.
	PhaseFailed Phase = "failed"
	// PhaseSkipped: a sink under on_failure: continue said before the run
	// created anything that it could not take the new credential
	// (Validate failed); it was left out of the run.
	PhaseSkipped Phase = "skipped"
	// PhaseDrifted: before writing, the sink found its target changed
	// since rotor's last delivery (a note; the write follows).
	PhaseDrifted Phase = "drifted"
)

// Step is one journal line's place in the rotation protocol.
type Step struct {
	Kind StepKind
	// Index is the sink's position in the policy (StepSink, StepFinish,
	// StepTargetMoved).
	Index int
	// KeyID is the credential a StepRetire or StepCleanup removes.
	KeyID string
	Phase Phase
}

// SinkStep is sink i's write in phase p.
func SinkStep(i int, p Phase) Step { return Step{Kind: StepSink, Index: i, Phase: p} }

// FinishStep is sink i's post-delivery step in phase p.
func FinishStep(i int, p Phase) Step { return Step{Kind: StepFinish, Index: i, Phase: p} }

// RetireStep is the retirement of keyID in phase p.
func RetireStep(keyID string, p Phase) Step { return Step{Kind: StepRetire, KeyID: keyID, Phase: p} }

// MakeRoomStep is the removal of an expired keyID before the new secret
// is created, in phase p.
func MakeRoomStep(keyID string, p Phase) Step {
	return Step{Kind: StepMakeRoom, KeyID: keyID, Phase: p}
}

// CleanupStep is the removal of an unheld keyID in phase p.
func CleanupStep(keyID string, p Phase) Step { return Step{Kind: StepCleanup, KeyID: keyID, Phase: p} }

// IsSinkWrite reports whether the step is any phase of a sink write: from
// the first one on, a consumer may hold the run's secret. A skipped sink
// (journaled before anything was created) and a drift note are not
// writes.
func (s Step) IsSinkWrite() bool {
	return s.Kind == StepSink && s.Phase != PhaseSkipped && s.Phase != PhaseDrifted
}

// String is the journal's spelling: "created", "sink:0:writing",
// "retire:<key id>:removed", … (the spelling journals have always used, so
// older journals parse).
func (s Step) String() string {
	switch s.Kind {
	case StepSink, StepFinish:
		return fmt.Sprintf("%s:%d:%s", s.Kind, s.Index, s.Phase)
	case StepTargetMoved:
		return fmt.Sprintf("%s:%d", s.Kind, s.Index)
	case StepRetire, StepCleanup, StepMakeRoom:
		return fmt.Sprintf("%s:%s:%s", s.Kind, s.KeyID, s.Phase)
	case StepRetireScheduleFailed:
		return "retire:schedule-failed"
	}
	return string(s.Kind)
}

var simpleKinds = map[StepKind]bool{
	StepPlanned: true, StepCreated: true, StepReplicating: true, StepPropagated: true,
	StepVerifying: true, StepVerified: true, StepRetiring: true, StepDone: true,
	StepFailed: true, StepAbandoned: true, StepTakenOver: true,
}

// ParseStep reads a step as String writes it.
func ParseStep(s string) (Step, error) {
	if simpleKinds[StepKind(s)] {
		return Step{Kind: StepKind(s)}, nil
	}
	if s == "retire:schedule-failed" {
		return Step{Kind: StepRetireScheduleFailed}, nil
	}
	parts := strings.Split(s, ":")
	bad := fmt.Errorf("journal step %q is not one rotor writes", s)
	switch StepKind(parts[0]) {
	case StepSink, StepFinish:
		if len(parts) != 3 {
			return Step{}, bad
		}
		i, err := strconv.Atoi(parts[1])
		p := Phase(parts[2])
		if err != nil || i < 0 || !sinkPhase(StepKind(parts[0]), p) {
			return Step{}, bad
		}
		return Step{Kind: StepKind(parts[0]), Index: i, Phase: p}, nil
	case StepTargetMoved:
		if len(parts) != 2 {
			return Step{}, bad
		}
		i, err := strconv.Atoi(parts[1])
		if err != nil || i < 0 {
			return Step{}, bad
		}
		return Step{Kind: StepTargetMoved, Index: i}, nil
	case StepRetire, StepCleanup, StepMakeRoom:
		if len(parts) != 3 || parts[1] == "" {
			return Step{}, bad
		}
		p := Phase(parts[2])
		if p != PhaseRemoving && p != PhaseRemoved {
			return Step{}, bad
		}
		return Step{Kind: StepKind(parts[0]), KeyID: parts[1], Phase: p}, nil
	}
	return Step{}, bad
}

// sinkPhase reports whether p is a phase a step of kind k is written in.
func sinkPhase(k StepKind, p Phase) bool {
	switch p {
	case PhaseWriting, PhaseWritten, PhaseUnchanged:
		return true
	case PhaseFailed, PhaseSkipped, PhaseDrifted:
		return k == StepSink
	}
	return false
}

// MarshalText writes String, so JSON shows the journal's spelling.
func (s Step) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses with ParseStep.
func (s *Step) UnmarshalText(b []byte) error {
	v, err := ParseStep(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
