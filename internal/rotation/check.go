package rotation

import (
	"context"
	"fmt"

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
	for _, v := range views {
		c := SinkCheck{Index: v.Index, Type: v.Type, Target: v.Target, Describe: v.Target.String()}
		s, err := e.sinks.Build(ctx, sink.BuildRequest{Spec: policy.Sinks[v.Index], Connection: policy.Connection, App: app, Pinned: v.Target})
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
		out = append(out, c)
	}
	return out, nil
}
