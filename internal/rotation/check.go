package rotation

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// SinkCheck is one sink's answer to "would a delivery work?" for an
// application: the UI's Test button.
type SinkCheck struct {
	Index int    `json:"index"`
	Type  string `json:"type"`
	// Target is where the sink delivers (pinned, or what the policy
	// resolves to when nothing is pinned yet); Describe names it for
	// people. Neither is ever a secret.
	Target   sink.TargetID `json:"target"`
	Describe string        `json:"describe"`
	// Validation is the sink's answer; a sink without the Validator
	// ability answers unknown, and one that cannot be built failed.
	Validation sink.Validation `json:"-"`
	// Last is what rotor last delivered to the target; nil when it never
	// did.
	Last *sink.Delivered `json:"last,omitempty"`
	// Drift compares the target now with Last, for a sink that reads
	// versions; nil when it cannot tell.
	Drift *sink.Drift `json:"drift,omitempty"`
}

// CheckSinks builds each sink of policy for app where a run would deliver
// (the pinned target, else what the policy resolves to today; a moved
// target's previous one is not asked) and asks it to Validate. It writes
// nothing, pins nothing and reads no secret: Validate only reads, and
// never a value.
func (e *Engine) CheckSinks(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy) ([]SinkCheck, error) {
	views, err := e.Targets(ctx, org, app, policy)
	if err != nil {
		return nil, err
	}
	out := make([]SinkCheck, 0, len(views))
	ds := e.deliveries(ctx, org, app.TenantID, app.ObjectID)
	for _, v := range views {
		c := SinkCheck{Index: v.Index, Type: v.Type, Target: v.Target, Describe: v.Target.String(), Last: lastOf(ds, v.Target)}
		s, err := e.sinks.Build(ctx, sink.BuildRequest{Spec: policy.Sinks[v.Index], Kind: policy.Kind, Connection: policy.Connection, App: app, Pinned: v.Target, Last: c.Last})
		if err != nil {
			c.Validation = sink.Failed(fmt.Sprintf("the sink cannot be built: %v", err), err)
			out = append(out, c)
			continue
		}
		c.Describe = s.Describe()
		if val, ok := s.(sink.Validator); ok {
			c.Validation = val.Validate(ctx)
		} else {
			c.Validation = sink.Unknown(fmt.Sprintf("a %s sink cannot check a delivery before making one", v.Type), nil)
		}
		c.Drift = e.drift(ctx, org, app, s, c.Last)
		out = append(out, c)
	}
	return out, nil
}

// drift compares the sink's target now with rotor's last delivery there;
// nil when the sink reads no versions, rotor recorded no version, or the
// version cannot be read now. A drifted target is logged at WARN, the line
// a team alerts on: what consumers read is no longer what rotor wrote.
func (e *Engine) drift(ctx context.Context, org domain.OrgID, app domain.Application, s sink.Sink, last *sink.Delivered) *sink.Drift {
	vr, ok := s.(sink.VersionReader)
	if !ok || last == nil || last.Version == "" {
		return nil
	}
	cur, err := vr.Version(ctx)
	if err != nil {
		return nil
	}
	d := sink.CompareDrift(last, cur)
	if d.Drifted {
		e.log.Warn("sink target drifted since rotor's last delivery", "org", string(org), "app", app.ObjectID, "target", s.Target().String(), "reason", d.Reason)
	}
	return &d
}

// TargetDrift is one sink target's drift since rotor's last delivery.
type TargetDrift struct {
	Index  int             `json:"index"`
	Target sink.TargetID   `json:"target"`
	Last   *sink.Delivered `json:"last,omitempty"`
	// Drift is nil when the sink cannot tell (it reads no versions, no
	// version was recorded, or the target could not be read now).
	Drift *sink.Drift `json:"drift,omitempty"`
}

// Drifts reads, for each sink of policy for app, what rotor last
// delivered there and whether the target has changed since: explain's
// view (the API, the CLI and the application's page). It reads versions
// only, never a value, and writes nothing. The targets are read at once,
// a few at a time, all within a budget (five seconds): a page that shows ten sinks
// waits for the slowest, not for their sum, and a target that hangs
// leaves its drift unknown.
func (e *Engine) Drifts(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy) ([]TargetDrift, error) {
	views, err := e.Targets(ctx, org, app, policy)
	if err != nil {
		return nil, err
	}
	ds := e.deliveries(ctx, org, app.TenantID, app.ObjectID)
	out := make([]TargetDrift, len(views))
	dctx, cancel := context.WithTimeout(ctx, e.driftBudget)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, driftParallel)
	for i, v := range views {
		out[i] = TargetDrift{Index: v.Index, Target: v.Target, Last: lastOf(ds, v.Target)}
		if out[i].Last == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-dctx.Done():
				return
			}
			s, err := e.sinks.Build(dctx, sink.BuildRequest{Spec: policy.Sinks[v.Index], Kind: policy.Kind, Connection: policy.Connection, App: app, Pinned: v.Target, Last: out[i].Last})
			if err == nil {
				out[i].Drift = e.drift(dctx, org, app, s, out[i].Last)
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// defaultDriftBudget bounds one Drifts call (Engine.driftBudget);
// driftParallel is how many targets it reads at once.
const (
	defaultDriftBudget = 5 * time.Second
	driftParallel      = 4
)

// DiscoverSink lists the choices of one setting of a typ sink (the
// pickers); see sink.Discoverer. It reads and never writes.
func (e *Engine) DiscoverSink(ctx context.Context, typ string, q sink.DiscoverQuery) ([]sink.Choice, []string, error) {
	keys, err := e.sinks.DiscoverKeys(typ)
	if err != nil {
		return nil, nil, err
	}
	if q.Key == "" {
		return nil, keys, nil
	}
	got, err := e.sinks.Discover(ctx, typ, q)
	return got, keys, err
}
