package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
)

// A sink's target is pinned: what it resolved to for an application at the
// first delivery (a Key Vault secret's name, later a service connection or
// a Kubernetes Secret) is recorded in the store and used from then on, so
// renaming the application (or editing a name template) never moves the
// place its consumers read. The rename is reported (explain, the run's
// journal, a WARN line), and moving the target is an explicit act
// (MoveTarget) that keeps the old target updated until the overlap has
// passed.

// errStore marks a failure to read the store (not the configuration's).
var errStore = errors.New("store")

// runSink is one place a run delivers to.
type runSink struct {
	index int // the sink's position in the policy
	sink  sink.Sink
	// old is true for the previous target of a moved sink, kept updated
	// until its RetireOldAt.
	old bool
	// onFailure is the spec's on_failure.
	onFailure sink.OnFailure
	// last is what rotor last delivered to the target (the store's
	// record), nil when it never did.
	last *sink.Delivered
	// failed is set when the sink failed under on_failure: continue; the
	// run passes it over from then on.
	failed bool
}

// deliveries reads what rotor last delivered to each target of app, by
// target id. A failure reads as "nothing recorded", which only makes
// marker-less sinks more careful (an existing target then looks foreign)
// and drift unreported, so it is logged and not fatal.
func (e *Engine) deliveries(ctx context.Context, org domain.OrgID, tenantID, objectID string) map[string]store.SinkDelivery {
	got, err := e.store.SinkDeliveries(ctx, store.SinkDeliveriesParams{Org: org, TenantID: tenantID, AppObjectID: objectID})
	if err != nil {
		e.log.Warn("reading rotor's past sink deliveries failed; sinks see no record of them", "org", string(org), "app", objectID, "error", err)
		return nil
	}
	return got
}

// lastOf is target's record in ds as the sink package sees it.
func lastOf(ds map[string]store.SinkDelivery, target sink.TargetID) *sink.Delivered {
	d, ok := ds[target.String()]
	if !ok {
		return nil
	}
	return &sink.Delivered{KeyID: d.KeyID, Version: d.Version, RunID: d.RunID, At: d.DeliveredAt}
}

// TargetView says where one sink of a policy delivers for an application.
type TargetView struct {
	Index int    `json:"index"`
	Type  string `json:"type"`
	// Target is where rotor delivers: the pinned target, or what the
	// configuration resolves to when nothing is pinned yet.
	Target sink.TargetID `json:"target"`
	Pinned bool          `json:"pinned"`
	// Today is what the configuration resolves to now; it differs from
	// Target after a rename (Moved).
	Today sink.TargetID `json:"today"`
	Moved bool          `json:"moved"`
	// Previous is the target a move replaced, still updated until
	// RetireOldAt.
	Previous    sink.TargetID `json:"previous,omitzero"`
	RetireOldAt time.Time     `json:"retire_old_at,omitzero"`
	PinnedByRun string        `json:"pinned_by_run,omitempty"`
}

// Targets says, for each sink of policy, where rotor delivers app's new
// credentials and whether a rename moved what the configuration names.
func (e *Engine) Targets(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy) ([]TargetView, error) {
	pins, err := e.pins(ctx, org, app, policy)
	if err != nil {
		return nil, err
	}
	out := make([]TargetView, 0, len(policy.Sinks))
	for i, spec := range policy.Sinks {
		today, err := e.sinks.Resolve(sink.BuildRequest{Spec: spec, Kind: policy.Kind, Connection: policy.Connection, App: app})
		if err != nil {
			return nil, fmt.Errorf("sink %d (%s) cannot be built: %w", i, spec.Type, err)
		}
		v := TargetView{Index: i, Type: spec.Type, Target: today, Today: today}
		if p, ok := pins[i]; ok && p.SinkType == spec.Type {
			if t, err := sink.ParseTargetID(p.Target); err == nil {
				v.Target, v.Pinned, v.Moved, v.PinnedByRun = t, true, t != today, p.PinnedByRun
			}
			// A moved-from target is kept updated until the first rotation
			// to the new target has passed its overlap (RetireOldAt is
			// zero until that rotation sets it).
			if prev, err := sink.ParseTargetID(p.Previous); err == nil && !prev.IsZero() && (p.RetireOldAt.IsZero() || e.now().Before(p.RetireOldAt)) {
				v.Previous, v.RetireOldAt = prev, p.RetireOldAt
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (e *Engine) pins(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy) (map[int]store.PinnedTarget, error) {
	list, err := e.store.PinnedTargets(ctx, store.PinnedTargetsParams{Org: org, TenantID: app.TenantID, AppObjectID: app.ObjectID, Policy: policy.Name})
	if err != nil {
		return nil, fmt.Errorf("rotation: pinned targets: %w: %w", errStore, err)
	}
	out := make(map[int]store.PinnedTarget, len(list))
	for _, p := range list {
		out[p.SinkIndex] = p
	}
	return out, nil
}

// planSinks builds the sinks of a run: each at its pinned target (pinning
// what the configuration resolves to now when nothing is pinned yet), plus
// the previous target of a moved sink while it is kept updated. A rename
// is journaled (StepTargetMoved) and logged.
//
// A sink that cannot be built is a configuration problem (permanent); a
// store that cannot be read or written is not.
func (r *runner) planSinks(ctx context.Context) (_ []runSink, permanent bool, _ error) {
	e, run, policy := r.e, r.run, r.policy
	views, err := e.Targets(ctx, run.Org, r.app, policy)
	if err != nil {
		return nil, !errors.Is(err, errStore), err
	}
	var out []runSink
	ds := e.deliveries(ctx, run.Org, run.TenantID, run.AppObjectID)
	for _, v := range views {
		spec := policy.Sinks[v.Index]
		last := lastOf(ds, v.Target)
		s, err := e.sinks.Build(ctx, sink.BuildRequest{Spec: spec, Kind: run.Kind, Connection: run.Connection, App: r.app, Pinned: v.Target, Last: last})
		if err != nil {
			return nil, true, fmt.Errorf("sink %d (%s) cannot be built: %w", v.Index, spec.Type, err)
		}
		out = append(out, runSink{index: v.Index, sink: s, onFailure: sink.OnFailureOf(spec), last: last})
		if !v.Pinned {
			// Pin before the first write: the place a consumer will read
			// must not move with the next rename, whatever happens to
			// this run.
			if err := e.fenced(ctx, run, func(ctx context.Context) error {
				return e.store.PinTarget(ctx, store.PinTargetParams{Org: run.Org, TenantID: run.TenantID, AppObjectID: run.AppObjectID, Policy: policy.Name,
					Target: store.PinnedTarget{SinkIndex: v.Index, SinkType: spec.Type, Target: v.Target.String(), PinnedByRun: run.ID}})
			}); err != nil {
				return nil, false, fmt.Errorf("sink %d (%s): pin target %s: %w", v.Index, spec.Type, v.Target, err)
			}
		}
		if v.Moved {
			msg := fmt.Sprintf("sink #%d keeps delivering to its pinned target %s, where consumers read it; the configuration now names %s (the application was renamed, or the template changed). To move it, run 'rotor targets move' (the old target is kept updated until the overlap has passed)",
				v.Index+1, v.Target, v.Today)
			if err := e.event(ctx, run, domain.Step{Kind: domain.StepTargetMoved, Index: v.Index}, msg); err != nil {
				return nil, false, err
			}
			r.log.Warn("sink target renamed; delivering to the pinned target", "sink", v.Index, "pinned", v.Target.String(), "configured", v.Today.String())
		}
		if !v.Previous.IsZero() {
			prevLast := lastOf(ds, v.Previous)
			old, err := e.sinks.Build(ctx, sink.BuildRequest{Spec: spec, Kind: run.Kind, Connection: run.Connection, App: r.app, Pinned: v.Previous, Last: prevLast})
			if err != nil {
				return nil, true, fmt.Errorf("sink %d (%s): previous target %s cannot be built: %w", v.Index, spec.Type, v.Previous, err)
			}
			out = append(out, runSink{index: v.Index, sink: old, old: true, onFailure: sink.OnFailureOf(spec), last: prevLast})
		}
	}
	return out, false, nil
}

// MoveTarget moves sink index of policy, for app, to what the
// configuration resolves to today (after a rename). The previous target
// keeps receiving every new credential until the first rotation after the
// move has passed its overlap (so the new target holds a working secret
// and consumers still reading the old one had a whole overlap to move);
// the value itself exists only during a rotation, so the new target is
// empty until then. It returns the new view; moving a target that has not
// moved is a no-op.
func (e *Engine) MoveTarget(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy, index int) (TargetView, error) {
	views, err := e.Targets(ctx, org, app, policy)
	if err != nil {
		return TargetView{}, err
	}
	if index < 0 || index >= len(views) {
		return TargetView{}, fmt.Errorf("policy %q has %d sink(s); there is no sink #%d", policy.Name, len(views), index+1)
	}
	v := views[index]
	if !v.Moved {
		return v, nil
	}
	if err := e.store.PinTarget(ctx, store.PinTargetParams{Org: org, TenantID: app.TenantID, AppObjectID: app.ObjectID, Policy: policy.Name,
		Target: store.PinnedTarget{SinkIndex: index, SinkType: v.Type, Target: v.Today.String(), PinnedByRun: "move",
			Previous: v.Target.String()}}); err != nil {
		return TargetView{}, fmt.Errorf("rotation: move target: %w", err)
	}
	e.log.Info("sink target moved; the old target is kept updated until the next rotation's overlap has passed", "org", string(org), "app", app.ObjectID, "sink", index, "from", v.Target.String(), "to", v.Today.String())
	return TargetView{Index: index, Type: v.Type, Target: v.Today, Pinned: true, Today: v.Today, Previous: v.Target, PinnedByRun: "move"}, nil
}

// settleMoves gives every moved-from target this run delivered to, and
// which has no end yet, the end of this run's overlap: from then on only
// the new target receives new credentials.
func (e *Engine) settleMoves(ctx context.Context, run *domain.Run, policy domain.Policy, sinks []runSink) {
	pins, err := e.pins(ctx, run.Org, domain.Application{TenantID: run.TenantID, ObjectID: run.AppObjectID}, policy)
	if err != nil {
		e.log.Warn("settling moved sink targets failed; the old targets stay updated until a later rotation settles them", "run", run.ID, "error", err)
		return
	}
	for _, rs := range sinks {
		p, ok := pins[rs.index]
		if !rs.old || !ok || !p.RetireOldAt.IsZero() || p.Previous != rs.sink.Target().String() {
			continue
		}
		p.RetireOldAt = run.RetireAt
		if err := e.store.PinTarget(ctx, store.PinTargetParams{Org: run.Org, TenantID: run.TenantID, AppObjectID: run.AppObjectID, Policy: policy.Name, Target: p}); err != nil {
			e.log.Warn("settling a moved sink target failed; a later rotation settles it", "run", run.ID, "sink", rs.index, "error", err)
		}
	}
}
