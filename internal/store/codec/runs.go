package codec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// KnownStates are every state a run may be stored in.
var KnownStates = []domain.RunState{
	domain.RunPlanned, domain.RunCreated, domain.RunPropagated, domain.RunVerified,
	domain.RunRetiring, domain.RunDone, domain.RunFailed, domain.RunAbandoned,
}

// CheckState rejects a state that is not one of KnownStates.
func CheckState(s domain.RunState) error {
	if !slices.Contains(KnownStates, s) {
		return fmt.Errorf("unknown run state %q", s)
	}
	return nil
}

// JoinStates spells states for an error: "created or propagated".
func JoinStates(states []domain.RunState) string {
	s := make([]string, len(states))
	for i, st := range states {
		s[i] = string(st)
	}
	return strings.Join(s, " or ")
}

// PrepareRun checks a run about to be created and fills in what
// CreateRun promises to: an id (a UUIDv7), state planned, CreatedAt (now)
// and UpdatedAt, and each event's At and State.
func PrepareRun(run *domain.Run, now time.Time) error {
	if run.Org == "" || run.AppObjectID == "" {
		return errors.New("org and app object id must be set")
	}
	if run.State == "" {
		run.State = domain.RunPlanned
	}
	if run.State != domain.RunPlanned {
		return fmt.Errorf("a new run is %s, not %s", domain.RunPlanned, run.State)
	}
	if run.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		run.ID = id.String()
	}
	if run.CreatedAt.IsZero() {
		run.CreatedAt = now
	}
	if run.UpdatedAt.IsZero() {
		run.UpdatedAt = run.CreatedAt
	}
	if err := CheckTimes(NamedTime{"created", run.CreatedAt}, NamedTime{"updated", run.UpdatedAt},
		NamedTime{"new end", run.NewEnd}, NamedTime{"retire at", run.RetireAt}, NamedTime{"ended", run.EndedAt}); err != nil {
		return err
	}
	for i := range run.Events {
		if run.Events[i].At.IsZero() {
			run.Events[i].At = run.CreatedAt
		}
		if run.Events[i].State == "" {
			run.Events[i].State = run.State
		}
		if err := CheckTime("event", run.Events[i].At); err != nil {
			return err
		}
	}
	return nil
}

// PrepareTransition checks a transition and returns its event with At
// (now when zero) and State (To when empty) filled in.
func PrepareTransition(p *store.TransitionRunParams, now time.Time) (domain.RunEvent, error) {
	if p.Org == "" || p.RunID == "" {
		return domain.RunEvent{}, errors.New("transition run: org and run id must be set")
	}
	if len(p.From) == 0 {
		return domain.RunEvent{}, fmt.Errorf("transition run %s: no From states", p.RunID)
	}
	if err := CheckState(p.To); err != nil {
		return domain.RunEvent{}, fmt.Errorf("transition run %s: %w", p.RunID, err)
	}
	for _, f := range p.From {
		if err := CheckState(f); err != nil {
			return domain.RunEvent{}, fmt.Errorf("transition run %s: %w", p.RunID, err)
		}
	}
	if slices.Contains(p.From, p.To) {
		return domain.RunEvent{}, fmt.Errorf("transition run %s: %s to %s is not a transition; use AppendRunEvent", p.RunID, p.To, p.To)
	}
	ev := p.Event
	if ev.At.IsZero() {
		ev.At = now
	}
	if ev.State == "" {
		ev.State = p.To
	}
	if err := CheckTimes(NamedTime{"event", ev.At}, NamedTime{"new end", p.NewEnd}, NamedTime{"retire at", p.RetireAt}); err != nil {
		return domain.RunEvent{}, fmt.Errorf("transition run %s: %w", p.RunID, err)
	}
	return ev, nil
}

// PrepareAppend checks a journal line about to be appended and returns its
// event with At (now when zero) filled in; an empty State stays empty (the
// store makes it the run's current state).
func PrepareAppend(p *store.AppendRunEventParams, now time.Time) (domain.RunEvent, error) {
	ev := p.Event
	if p.Org == "" || p.RunID == "" {
		return ev, errors.New("append run event: org and run id must be set")
	}
	if ev.At.IsZero() {
		ev.At = now
	}
	if err := CheckTime("event", ev.At); err != nil {
		return ev, fmt.Errorf("append run event to %s: %w", p.RunID, err)
	}
	if ev.State != "" {
		if err := CheckState(ev.State); err != nil {
			return ev, fmt.Errorf("append run event to %s: %w", p.RunID, err)
		}
	}
	return ev, nil
}
