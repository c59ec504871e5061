package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// RunFilter narrows ListRuns.
type RunFilter struct {
	// App keeps one application's runs (object id, app id or display
	// name).
	App string `json:"app,omitempty"`
	// States keeps runs in these states (empty: all).
	States []domain.RunState `json:"states,omitempty"`
	// Triggers keeps runs started for these reasons (empty: all).
	Triggers []domain.Trigger `json:"triggers,omitempty"`
	// Limit caps the runs returned (0: 50).
	Limit int `json:"limit,omitempty"`
}

// DefaultRunLimit is how many runs ListRuns returns when the filter does
// not say.
const DefaultRunLimit = 50

// allStates are the states a run filter may name.
var allStates = []domain.RunState{domain.RunPlanned, domain.RunCreated, domain.RunPropagated, domain.RunVerified, domain.RunRetiring, domain.RunDone, domain.RunFailed, domain.RunAbandoned}

// RunTriggers are the reasons a run filter may name, in the order a
// listing's form offers them.
var RunTriggers = []domain.Trigger{domain.TriggerDue, domain.TriggerAdoption, domain.TriggerManual, domain.TriggerRecovery, domain.TriggerRemoved}

// RunStates are the states a run filter may name, in the state machine's
// order (a copy: callers may not change the filter's list).
func RunStates() []domain.RunState { return slices.Clone(allStates) }

// RunRow is one line of a run listing (the journal is in GetRun).
type RunRow struct {
	ID       string          `json:"id"`
	App      string          `json:"application"`
	AppID    string          `json:"app_id"`
	ObjectID string          `json:"app_object_id"`
	Policy   string          `json:"policy"`
	Trigger  domain.Trigger  `json:"trigger"`
	State    domain.RunState `json:"state"`
	NewKeyID string          `json:"new_key_id,omitempty"`
	Error    string          `json:"error,omitempty"`
	// Failure classifies a failed run's error (transient, permanent,
	// removed).
	Failure   domain.FailureClass `json:"failure,omitempty"`
	CreatedAt time.Time           `json:"created_at"`
	RetireAt  time.Time           `json:"retire_at,omitzero"`
	Replaces  string              `json:"replaces,omitempty"`
	// Seq is the run's place among its application's runs: a later run
	// has a higher one, whatever the clocks of the hosts said.
	Seq int64 `json:"seq,omitempty"`
}

// ListRuns lists the organization's rotation runs, newest first.
func (s *Service) ListRuns(ctx context.Context, scope Scope, f RunFilter) ([]RunRow, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectRuns); err != nil {
		return nil, err
	}
	if f.Limit < 0 {
		return nil, &InvalidError{Field: "limit", Message: "must not be negative"}
	}
	p, err := s.runParams(ctx, scope, f)
	if err != nil {
		return nil, err
	}
	p.Limit = f.Limit
	if p.Limit == 0 {
		p.Limit = DefaultRunLimit
	}
	list, err := s.store.ListRuns(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runRows(list), nil
}

// runParams is the store query of f (its Limit aside): the states
// checked, the application looked up in the organization.
func (s *Service) runParams(ctx context.Context, scope Scope, f RunFilter) (store.ListRunsParams, error) {
	for _, st := range f.States {
		if !slices.Contains(allStates, st) {
			return store.ListRunsParams{}, &InvalidError{Field: "state", Message: fmt.Sprintf("%q is not a run state (use %s)", st, joinStates())}
		}
	}
	for _, tr := range f.Triggers {
		if !slices.Contains(RunTriggers, tr) {
			return store.ListRunsParams{}, &InvalidError{Field: "trigger", Message: fmt.Sprintf("%q is not a run trigger", tr)}
		}
	}
	p := store.ListRunsParams{Org: scope.Org, States: f.States, Triggers: f.Triggers, AppObjectIDs: scope.Owned.IDs()}
	if f.App != "" {
		a, err := s.getApp(ctx, scope, f.App)
		if err != nil {
			return p, err
		}
		p.AppObjectID = a.ObjectID
	}
	return p, nil
}

func runRows(list []domain.Run) []RunRow {
	rows := make([]RunRow, 0, len(list))
	for _, r := range list {
		rows = append(rows, RunRow{ID: r.ID, App: r.AppName, AppID: r.AppID, ObjectID: r.AppObjectID, Policy: r.Policy, Trigger: r.Trigger, State: r.State,
			NewKeyID: r.NewKeyID, Error: r.Error, Failure: r.Failure, CreatedAt: r.CreatedAt, RetireAt: r.RetireAt, Replaces: r.Replaces, Seq: r.Seq})
	}
	return rows
}

func joinStates() string {
	out := ""
	for i, s := range allStates {
		if i > 0 {
			out += ", "
		}
		out += string(s)
	}
	return out
}

// GetRun returns one run of the organization with its journal.
func (s *Service) GetRun(ctx context.Context, scope Scope, id string) (*domain.Run, error) {
	if err := s.begin(ctx, scope, ActionRead, RunObject(id)); err != nil {
		return nil, err
	}
	r, err := s.store.GetRun(ctx, scope.Org, id)
	if err != nil {
		return nil, lookupError("run", id, err)
	}
	if err := visibleRun(scope, r, id); err != nil {
		return nil, err
	}
	return r, nil
}
