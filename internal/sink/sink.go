// Package sink defines where a new credential goes: the Sink interface the
// rotation drives, the optional abilities a sink may have, and the Registry
// that turns a configured SinkSpec into a Sink for one application. Each
// kind lives in its own subpackage (keyvault, …) and is registered
// explicitly in one place (cmd wiring), never from init().
package sink

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
)

// Delivery is a new credential on its way to consumers. Value lives only
// as long as the run that created it.
type Delivery struct {
	Org      domain.OrgID
	RunID    string
	App      domain.Application
	TenantID string
	ClientID string
	KeyID    string
	Kind     domain.CredentialKind
	Value    secret.Value
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
}

// Sink writes a credential to one place. Deliver must be idempotent: the
// rotation retries it after crashes and transient errors.
type Sink interface {
	// Describe names the target for journals and the UI.
	Describe() string
	Deliver(ctx context.Context, d Delivery) (Result, error)
}

// Validator is the optional "would this work?" ability behind the UI's
// Test button.
type Validator interface {
	Validate(ctx context.Context) error
}

// Holder is the optional ability to say whether the sink currently holds
// the credential keyID. Recovery uses it: a crashed run's credential that no
// sink holds never reached a consumer, so it is removed at once rather than
// after the overlap. A sink without it is assumed to hold what it was sent.
type Holder interface {
	Holds(ctx context.Context, keyID string) (bool, error)
}

// Builder makes the Sink of one kind for one application from its spec.
type Builder interface {
	// Type is the spec's type name, e.g. "keyvault".
	Type() string
	// CheckSpec validates the settings without any I/O; errors name the key.
	CheckSpec(spec domain.SinkSpec) error
	// Build returns the sink for app. connection names the policy's
	// connection, whose identity the sink may use.
	Build(spec domain.SinkSpec, connection string, app domain.Application) (Sink, error)
}

// Registry holds the builders, by type.
type Registry struct{ builders map[string]Builder }

// NewRegistry registers the given builders.
func NewRegistry(bs ...Builder) *Registry {
	r := &Registry{builders: map[string]Builder{}}
	for _, b := range bs {
		r.builders[b.Type()] = b
	}
	return r
}

// ErrUnknownType is returned for a sink type nobody registered.
var ErrUnknownType = errors.New("unknown sink type")

// Types lists the registered types.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.builders))
	for t := range r.builders {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// CheckSpec validates a spec with its builder.
func (r *Registry) CheckSpec(spec domain.SinkSpec) error {
	b, ok := r.builders[spec.Type]
	if !ok {
		return fmt.Errorf("%w %q (known: %v)", ErrUnknownType, spec.Type, r.Types())
	}
	return b.CheckSpec(spec)
}

// Build makes the sink for app.
func (r *Registry) Build(spec domain.SinkSpec, connection string, app domain.Application) (Sink, error) {
	b, ok := r.builders[spec.Type]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, spec.Type)
	}
	return b.Build(spec, connection, app)
}
