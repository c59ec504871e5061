package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/rotor-dev/rotor/internal/domain"
)

// BuildRequest asks for the sink of one spec for one application.
type BuildRequest struct {
	Spec domain.SinkSpec
	// Connection is the policy's connection; a spec may name its own.
	Connection string
	App        domain.Application
	// Pinned is the target recorded for this application and spec at an
	// earlier delivery; the zero TargetID when there is none. A builder
	// uses it instead of resolving the spec again, so an application's
	// rename does not move its secret. Resolve says what the spec resolves
	// to today, so a rename can be reported.
	Pinned TargetID
	// Last is what rotor last delivered to the target this request builds
	// for, from the store; nil when rotor never did. A sink whose target
	// carries no ownership marker treats an existing target without a
	// Last as foreign (see Delivered).
	Last *Delivered
	// Kind is what the policy rotates (domain.KindSecret when empty), so a
	// sink's Validate can say before anything is created that it cannot
	// take a certificate, or that its target's form would not hold one.
	// Deliver decides on the material itself.
	Kind domain.CredentialKind
}

// Certificates reports whether the request is for a certificate policy.
func (r BuildRequest) Certificates() bool { return r.Kind == domain.KindCertificate }

// Kind is one type of sink as the registry knows it. It is split from
// Builder because the two are needed at different times: specs are checked
// while the configuration loads, before any connection (and so any
// credential a builder needs) exists; builders are made once they do.
type Kind interface {
	// Type is the spec's type name, e.g. "keyvault".
	Type() string
	// CheckSpec validates the settings without any I/O; errors name the key.
	CheckSpec(spec domain.SinkSpec) error
	// NewBuilder returns the kind's builder on rotor's dependencies. It
	// does no I/O; it fails only when a dependency the kind needs is
	// missing.
	NewBuilder(deps Deps) (Builder, error)
}

// Builder makes the sinks of one kind.
type Builder interface {
	// Resolve is the target req's spec resolves to for req.App today,
	// ignoring req.Pinned. It does no I/O.
	Resolve(req BuildRequest) (TargetID, error)
	// Build returns the sink for req.App: on req.Pinned when set, else on
	// what Resolve returns. It does no I/O beyond making clients.
	Build(ctx context.Context, req BuildRequest) (Sink, error)
}

// Registry holds the kinds, by type. It checks specs; Bind turns it into
// the Factory the rotation builds sinks with.
type Registry struct{ kinds map[string]Kind }

// NewRegistry registers kinds. Two kinds with one type, or an empty type,
// is a wiring mistake and panics.
func NewRegistry(kinds ...Kind) *Registry {
	r := &Registry{kinds: map[string]Kind{}}
	for _, k := range kinds {
		t := k.Type()
		if !validKind(t) {
			panic(fmt.Sprintf("sink.NewRegistry: kind type %q must be lower-case letters and digits", t))
		}
		if _, dup := r.kinds[t]; dup {
			panic(fmt.Sprintf("sink.NewRegistry: kind %q registered twice", t))
		}
		r.kinds[t] = k
	}
	return r
}

// ErrUnknownType is returned for a sink type nobody registered.
var ErrUnknownType = errors.New("unknown sink type")

// Types lists the registered types.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.kinds))
	for t := range r.kinds {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// CheckSpec validates a spec with its kind.
func (r *Registry) CheckSpec(spec domain.SinkSpec) error {
	k, ok := r.kinds[spec.Type]
	if !ok {
		return fmt.Errorf("%w %q (known: %v)", ErrUnknownType, spec.Type, r.Types())
	}
	if err := checkCommon(spec); err != nil {
		return err
	}
	return k.CheckSpec(KindSpec(spec))
}

// SharedTargets is the optional ability of a Kind to say, without any I/O,
// that a spec resolves to the same target for every application (a Key
// Vault secret name with no template): such a sink under a policy that
// selects several applications would have each rotation overwrite the
// others' secret.
type SharedTargets interface {
	SharesTarget(spec domain.SinkSpec) bool
}

// SharesTarget reports whether spec's kind says it resolves to one target
// for every application; false when the kind cannot say.
func (r *Registry) SharesTarget(spec domain.SinkSpec) bool {
	k, ok := r.kinds[spec.Type]
	if !ok {
		return false
	}
	st, ok := k.(SharedTargets)
	return ok && st.SharesTarget(KindSpec(spec))
}

// Bind makes every kind's builder on deps.
func (r *Registry) Bind(deps Deps) (*Factory, error) {
	f := &Factory{builders: map[string]Builder{}, types: r.Types()}
	var errs []error
	for _, t := range f.types {
		b, err := r.kinds[t].NewBuilder(deps)
		if err != nil {
			errs = append(errs, fmt.Errorf("sink kind %s: %w", t, err))
			continue
		}
		f.builders[t] = b
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

// Factory builds sinks of every registered kind. A nil *Factory knows no
// kind.
type Factory struct {
	builders map[string]Builder
	types    []string
}

func (f *Factory) builder(typ string) (Builder, error) {
	if f == nil {
		return nil, fmt.Errorf("%w %q (no sink kinds are registered)", ErrUnknownType, typ)
	}
	b, ok := f.builders[typ]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownType, typ, f.types)
	}
	return b, nil
}

// Resolve is what req's spec resolves to today, ignoring req.Pinned (see
// Builder.Resolve): compare it with the pinned target to report a rename.
func (f *Factory) Resolve(req BuildRequest) (TargetID, error) {
	b, err := f.builder(req.Spec.Type)
	if err != nil {
		return TargetID{}, err
	}
	req.Spec = KindSpec(req.Spec)
	t, err := b.Resolve(req)
	if err != nil {
		return TargetID{}, err
	}
	if t.Kind() != req.Spec.Type {
		return TargetID{}, fmt.Errorf("sink %s resolved a %q target %s", req.Spec.Type, t.Kind(), t)
	}
	return t, nil
}

// Build makes the sink for req. It holds every builder to the contract: a
// sink built for a pinned target has exactly that target, and a sink's
// target is of its own kind.
func (f *Factory) Build(ctx context.Context, req BuildRequest) (Sink, error) {
	b, err := f.builder(req.Spec.Type)
	if err != nil {
		return nil, err
	}
	if !req.Pinned.IsZero() && req.Pinned.Kind() != req.Spec.Type {
		return nil, fmt.Errorf("sink %s cannot write to pinned target %s of another kind", req.Spec.Type, req.Pinned)
	}
	req.Spec = KindSpec(req.Spec)
	s, err := b.Build(ctx, req)
	if err != nil {
		return nil, err
	}
	switch t := s.Target(); {
	case !req.Pinned.IsZero() && t != req.Pinned:
		return nil, fmt.Errorf("sink %s was built for pinned target %s but targets %s", req.Spec.Type, req.Pinned, t)
	case t.Kind() != req.Spec.Type:
		return nil, fmt.Errorf("sink %s has a %q target %s", req.Spec.Type, t.Kind(), t)
	}
	return s, nil
}

// ErrNoDiscovery is returned for a kind that lists no choices, or for a
// setting it lists none for.
var ErrNoDiscovery = errors.New("no choices to list")

// DiscoverKeys are the settings typ's builder can list choices for; none
// for a kind without the ability.
func (f *Factory) DiscoverKeys(typ string) ([]string, error) {
	b, err := f.builder(typ)
	if err != nil {
		return nil, err
	}
	d, ok := b.(Discoverer)
	if !ok {
		return nil, nil
	}
	return d.DiscoverKeys(), nil
}

// Discover lists the choices of q.Key for a typ sink (see Discoverer).
func (f *Factory) Discover(ctx context.Context, typ string, q DiscoverQuery) ([]Choice, error) {
	b, err := f.builder(typ)
	if err != nil {
		return nil, err
	}
	d, ok := b.(Discoverer)
	if !ok {
		return nil, fmt.Errorf("%w: a %s sink cannot list choices for its settings", ErrNoDiscovery, typ)
	}
	keys := d.DiscoverKeys()
	if !slices.Contains(keys, q.Key) {
		return nil, fmt.Errorf("%w: a %s sink lists choices for %v, not %q", ErrNoDiscovery, typ, keys, q.Key)
	}
	q.Spec = KindSpec(domain.SinkSpec{Type: typ, Settings: q.Spec.Settings})
	if q.Spec.Settings == nil {
		q.Spec.Settings = map[string]any{}
	}
	return d.Discover(ctx, q)
}
