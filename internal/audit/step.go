package audit

import "github.com/rotor-dev/rotor/internal/domain"

// ActionRotationStep is the action of the record of one journal step of a
// rotation run.
const ActionRotationStep = "rotation.step"

// Rotor is the actor of rotation steps: rotor itself.
var Rotor = Actor{Kind: ActorSystem, ID: "rotor"}

// StepRecord is the audit record of one journal step of run: by rotor, on
// the run's application ("application:OBJECT-ID"), naming the run and the
// step (domain.Step's spelling: "created", "sink:0:written",
// "retire:KEY-ID:removed", …). A step that ends a run badly (failed,
// abandoned) or a retirement that could not be scheduled is outcome
// failed, with a class: the run's failure class (transient, permanent,
// removed), "abandoned" or "schedule_failed". The journal message is not
// kept: the step's kind says what happened, and only words rotor chose
// for the audit trail go into it. At is left zero (the Writer stamps it).
func StepRecord(run domain.Run, step domain.Step) Record {
	r := Record{
		Org: run.Org, Actor: Rotor, Action: ActionRotationStep,
		Object: "application:" + run.AppObjectID, Outcome: OutcomeOK,
		RunID: run.ID, Step: step.String(),
	}
	switch step.Kind {
	case domain.StepFailed:
		r.Outcome, r.Error = OutcomeFailed, string(run.Failure)
		if r.Error == "" {
			r.Error = "failed"
		}
	case domain.StepAbandoned:
		r.Outcome, r.Error = OutcomeFailed, "abandoned"
	case domain.StepRetireScheduleFailed:
		r.Outcome, r.Error = OutcomeFailed, "schedule_failed"
	}
	return r
}
