// Package sink defines where a new credential goes: the Sink contract the
// rotation drives (deliver, and the optional validate, holds and after-all
// abilities), the material a delivery carries, the stable TargetID of every
// sink instance, how a sink says an error is permanent, and the Registry
// that turns a configured SinkSpec into a Sink for one application.
//
// Each kind lives in its own subpackage (keyvault, …) and is registered
// explicitly in one place (internal/server/sinks.go), never from init().
// sinktest holds the conformance suite every kind runs.
package sink

import (
	"context"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// Delivery is a new credential on its way to consumers. Its Material lives
// only as long as the run that created it.
type Delivery struct {
	Org      domain.OrgID
	RunID    string
	App      domain.Application
	TenantID string
	ClientID string
	KeyID    string
	Kind     domain.CredentialKind
	Material Material
	Start    time.Time
	End      time.Time
}

// Result says what a delivery did.
type Result struct {
	// Changed is false when the sink already held this credential and the
	// write was skipped.
	Changed bool
	// Location names what was written (e.g. the Key Vault secret id with
	// its version), for the journal; never the value.
	Location string
	// Note says what else the delivery did to the target that the journal
	// should record (e.g. "recovered rotor's soft-deleted secret first");
	// empty when it only wrote. Never a value.
	Note string
	// Version is the target's version after the delivery, changed or not
	// (see VersionReader); empty for a sink whose target has none. The
	// rotation records it with the delivery (Delivered), for ownership and
	// drift.
	Version string
}

// Sink writes a credential to one place. Deliver must be idempotent: the
// rotation retries it after crashes and transient errors, and delivering
// what the target already holds changes nothing (Result.Changed false).
//
// Errors that no retry will mend implement Classified with Permanent()
// true; no error, at any depth of its chain, holds a secret value.
type Sink interface {
	// Target is the stable id of what this sink writes. It is the same for
	// every build of the same spec and application, and it is the pinned
	// target when the sink was built for one (BuildRequest.Pinned).
	Target() TargetID
	// Describe names the target for people (journal, UI).
	Describe() string
	Deliver(ctx context.Context, d Delivery) (Result, error)
}

// Validator is the optional "would this work?" ability behind the UI's Test
// button and the rotation's check before it creates anything.
type Validator interface {
	// Validate reads, never writes, and never reads a secret value.
	Validate(ctx context.Context) Validation
}

// Holder is the optional ability to say whether the sink currently holds
// the credential keyID. Recovery uses it: a crashed run's credential that no
// sink holds never reached a consumer, so it is removed at once rather than
// after the overlap. A sink without it is assumed to hold what it was sent.
type Holder interface {
	Holds(ctx context.Context, keyID string) (bool, error)
}

// Finisher is the optional step a sink takes once every sink of the run
// holds the new credential, and before the run counts it as propagated: a
// Kubernetes rolling restart, for instance, must not start before the
// secret it makes pods read is in place everywhere. AfterAll must be safe
// to repeat (a crashed run's replacement runs it again).
type Finisher interface {
	AfterAll(ctx context.Context, d Delivery) error
}
