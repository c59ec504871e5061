package rotation

import (
	"context"
	"fmt"
	"strings"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
)

// What rotor delivered where is recorded per target (store.SinkDelivery):
// the key id and the version the target reported after the write. Sinks
// whose targets carry no ownership marker (a GitHub secret, an Azure
// DevOps variable) learn from it that a target is rotor's
// (BuildRequest.Last), and drift is the target's version moving away from
// it. ADR 28.

// claim records, before the first write to a target rotor has no record
// of, that rotor is about to write there, when the sink can tell the
// target is absent (VersionReader answers ""). A write whose answer is
// lost, or a crash right after it, then leaves a target the next run
// knows is rotor's, instead of one that looks foreign. A target that
// exists is never claimed: the sink decides (foreign unless adopt), and
// only a successful delivery records it.
func (r *runner) claim(ctx context.Context, rs *runSink) {
	vr, ok := rs.sink.(sink.VersionReader)
	if !ok || rs.last != nil {
		return
	}
	v, err := vr.Version(ctx)
	if err != nil || v != "" {
		return
	}
	d := store.SinkDelivery{Target: rs.sink.Target().String(), KeyID: r.keyID, RunID: r.run.ID, DeliveredAt: r.e.now()}
	if err := r.e.fenced(ctx, r.run, func(ctx context.Context) error {
		return r.e.store.RecordSinkDelivery(ctx, store.RecordSinkDeliveryParams{Org: r.run.Org, TenantID: r.run.TenantID, AppObjectID: r.run.AppObjectID, Delivery: d})
	}); err != nil {
		r.log.Warn("recording the claim on an absent sink target failed; the delivery goes ahead", "sink", rs.index, "target", d.Target, "error", err)
		return
	}
	rs.last = &sink.Delivered{KeyID: d.KeyID, RunID: d.RunID, At: d.DeliveredAt}
}

// recordDelivery records what a successful delivery left at the target.
// A failure is logged and not fatal: the target holds the credential
// either way, and the worst a missing record does is make the next run's
// drift report compare with an older version.
func (r *runner) recordDelivery(ctx context.Context, rs *runSink, version string) {
	d := store.SinkDelivery{Target: rs.sink.Target().String(), KeyID: r.keyID, Version: version, RunID: r.run.ID, DeliveredAt: r.e.now()}
	if err := r.e.fenced(ctx, r.run, func(ctx context.Context) error {
		return r.e.store.RecordSinkDelivery(ctx, store.RecordSinkDeliveryParams{Org: r.run.Org, TenantID: r.run.TenantID, AppObjectID: r.run.AppObjectID, Delivery: d})
	}); err != nil {
		r.log.Warn("recording a sink delivery failed; the target holds the new secret, but the next drift check compares with an older record", "sink", rs.index, "target", d.Target, "error", err)
		return
	}
	rs.last = &sink.Delivered{KeyID: d.KeyID, Version: d.Version, RunID: d.RunID, At: d.DeliveredAt}
}

// noteDrift journals, before a write, that the target changed since
// rotor's last delivery, and logs it at WARN: someone edited what
// consumers read, and the write about to happen replaces their edit.
func (r *runner) noteDrift(ctx context.Context, rs *runSink) {
	vr, ok := rs.sink.(sink.VersionReader)
	if !ok || rs.last == nil || rs.last.Version == "" {
		return
	}
	cur, err := vr.Version(ctx)
	if err != nil {
		return // the write will say what is wrong
	}
	d := sink.CompareDrift(rs.last, cur)
	if !d.Drifted {
		return
	}
	msg := r.scrub(d.Reason + "; rotor's write replaces it")
	if err := r.e.eventAt(ctx, r.run, domain.SinkStep(rs.index, domain.PhaseDrifted), rs.sink.Target().String(), msg); err != nil {
		r.log.Warn("journaling sink drift failed", "sink", rs.index, "error", err)
	}
	r.log.Warn("sink target drifted since rotor's last delivery", "sink", rs.index, "target", rs.sink.Target().String(), "reason", msg)
}

// propagatedMessage says how many sinks hold the new secret, and which
// ones a continue policy passed over.
func (r *runner) propagatedMessage(sinks []runSink) string {
	held := 0
	for _, rs := range sinks {
		if !rs.failed {
			held++
		}
	}
	msg := fmt.Sprintf("%d sink(s) hold the new secret", held)
	if len(r.failedSinks) > 0 {
		msg += fmt.Sprintf("; sink %s failed and keeps its older credential (on_failure: continue) until the overlap ends", strings.Join(r.failedSinks, ", "))
	}
	if r.skipped > 0 {
		msg += fmt.Sprintf("; %d sink(s) were left out before the run began (on_failure: continue)", r.skipped)
	}
	return msg
}
