package domain

import (
	"slices"
	"time"
)

// RunState is a rotation run's place in the state machine:
//
//	planned → created → propagated → verified → retiring → done
//
// or failed / abandoned. Every transition is journaled before the side
// effect that follows it.
type RunState string

// Run states.
const (
	RunPlanned    RunState = "planned"    // intent journaled; nothing touched yet
	RunCreated    RunState = "created"    // new credential exists in Entra; key id journaled
	RunPropagated RunState = "propagated" // every sink holds the new value
	RunVerified   RunState = "verified"   // a token was obtained with the new value
	RunRetiring   RunState = "retiring"   // waiting for the overlap, then removing older credentials
	RunDone       RunState = "done"
	RunFailed     RunState = "failed"    // gave up; older credentials untouched
	RunAbandoned  RunState = "abandoned" // the process died mid-run; a fresh run replaces it
)

// Terminal reports whether no more work will happen on a run in state s.
func (s RunState) Terminal() bool {
	return s == RunDone || s == RunFailed || s == RunAbandoned
}

// ActiveStates are the states in which a run holds its application: no
// other run may start for it. (The SQLite store's partial unique index
// spells the same list in SQL.)
var ActiveStates = []RunState{RunPlanned, RunCreated, RunPropagated, RunVerified}

// Active reports whether a run in state s still holds the application.
func (s RunState) Active() bool { return slices.Contains(ActiveStates, s) }

// FailureClass says whether retrying a failed run can help.
type FailureClass string

// Failure classes.
const (
	FailureTransient FailureClass = "transient" // throttling, 5xx, network: retry soon
	FailurePermanent FailureClass = "permanent" // permission, policy, ownership, a foreign target
	// FailureRemoved: the run's own secret, delivered and verified, was
	// removed from Entra before its retirement. Its consumers hold a dead
	// secret, so the planner rotates again at once instead of backing off.
	FailureRemoved FailureClass = "removed"
)

// Trigger says why a run started.
type Trigger string

// Triggers.
const (
	TriggerDue      Trigger = "renewal"  // renewal time reached
	TriggerAdoption Trigger = "adoption" // no rotor-made credential yet
	TriggerManual   Trigger = "manual"   // `rotor rotate` or the API
	TriggerRecovery Trigger = "recovery" // replaces an abandoned run
	// TriggerRemoved: the newest rotor credential is gone from Entra
	// (removed outside rotor), so its consumers hold a dead secret.
	TriggerRemoved Trigger = "removed"
)

// Run is one execution of the rotation state machine for one application.
// It never carries a secret value.
type Run struct {
	Org         OrgID          `json:"org"`
	ID          string         `json:"id"`
	Connection  string         `json:"connection"`
	TenantID    string         `json:"tenant_id"`
	AppObjectID string         `json:"app_object_id"`
	AppID       string         `json:"app_id"`
	AppName     string         `json:"app_name"`
	Policy      string         `json:"policy"`
	Kind        CredentialKind `json:"kind"`
	Trigger     Trigger        `json:"trigger"`
	State       RunState       `json:"state"`
	// NewKeyID is the key id of the credential this run created.
	NewKeyID string `json:"new_key_id,omitempty"`
	// NewEnd is the new credential's end.
	NewEnd time.Time `json:"new_end,omitzero"`
	// SinksStarted is true once any sink write was attempted: from then on
	// a consumer may hold this run's value, so its credential must live
	// through the overlap even if the run is abandoned.
	SinksStarted bool `json:"sinks_started"`
	// RetireAt is when older credentials may be removed.
	RetireAt time.Time `json:"retire_at,omitzero"`
	Error    string    `json:"error,omitempty"`
	// Failure classifies a failed run: transient (a retry may help soon)
	// or permanent (a human must change something first).
	Failure   FailureClass `json:"failure,omitempty"`
	Attempts  int          `json:"attempts"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
	EndedAt   time.Time    `json:"ended_at,omitzero"`
	// Holder is the lease holder (a rotor process) the run belongs to while
	// it is active or being retired; empty when no process holds it.
	Holder string `json:"holder,omitempty"`
	// Seq is the run's place among its application's runs (1, 2, …),
	// given by the store when the run is created: "later run" means a
	// higher Seq, never a later timestamp (clocks differ between hosts,
	// and Entra's start times have seconds).
	Seq int64 `json:"seq,omitempty"`
	// Replaces is the run this one recovers from, if any.
	Replaces string     `json:"replaces,omitempty"`
	Events   []RunEvent `json:"events,omitempty"`
}

// RunEvent is one journal line of a run: a transition or a step's outcome.
// Messages are written by rotor and never include secret values.
type RunEvent struct {
	At    time.Time `json:"at"`
	State RunState  `json:"state"`
	Step  Step      `json:"step"`
	// Target is the sink target a sink step wrote (sink.TargetID's
	// spelling), so recovery asks the place the run wrote to, not the
	// place today's configuration names.
	Target  string `json:"target,omitempty"`
	Message string `json:"message"`
}
