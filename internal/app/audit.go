package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
)

// Outcome is how an audited call ended.
type Outcome string

// Outcomes.
const (
	OutcomeOK     Outcome = "ok"
	OutcomeDenied Outcome = "denied"
	OutcomeFailed Outcome = "failed"
)

// Event is one audited call: who did what, on which object, in which
// organization, how it ended and when. It holds identifiers and fixed
// vocabulary only (an error's class, never its text), so no secret value
// can reach the audit trail through it.
type Event struct {
	At        time.Time    `json:"at"`
	Org       domain.OrgID `json:"org"`
	Actor     Actor        `json:"actor"`
	Action    Action       `json:"action"`
	Object    string       `json:"object"`
	Outcome   Outcome      `json:"outcome"`
	Error     ErrorClass   `json:"error,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	// Runs are the rotation runs the call started or acted on.
	Runs []string `json:"runs,omitempty"`
}

// Auditor records events. Every mutating use case (sync, rotate, enqueue,
// retire, move-target) records exactly one per call, denied calls
// included; reads record none. Record must not fail the call: an auditor
// that cannot write logs and carries on (TrailAuditor: internal/audit's
// Writer logs an ERROR per failure streak).
type Auditor interface {
	Record(ctx context.Context, e Event)
}

// TrailAuditor records each event in the organization's hash-chained
// audit trail (internal/audit), through a Writer that never fails the
// call and logs each record at debug level. It is the auditor the server
// wires.
type TrailAuditor struct{ Trail AuditTrail }

// AuditTrail appends records to the audit trail without failing
// (*audit.Writer).
type AuditTrail interface {
	Write(ctx context.Context, r audit.Record)
}

var (
	_ Auditor    = TrailAuditor{}
	_ AuditTrail = (*audit.Writer)(nil)
)

// Record implements Auditor.
func (a TrailAuditor) Record(ctx context.Context, e Event) { a.Trail.Write(ctx, EventRecord(e)) }

// EventRecord is the audit record of an event: the same fields, in the
// trail's vocabulary (the store numbers and chains it).
func EventRecord(e Event) audit.Record {
	return audit.Record{
		Org: e.Org, At: e.At,
		Actor:  audit.Actor{Kind: string(e.Actor.Kind), ID: e.Actor.ID, Name: e.Actor.Name},
		Action: string(e.Action), Object: e.Object, Outcome: string(e.Outcome), Error: string(e.Error),
		RequestID: e.RequestID, Runs: e.Runs,
	}
}

// Auditors is an Auditor that tells each of its auditors every event, in
// order.
type Auditors []Auditor

// Record implements Auditor.
func (as Auditors) Record(ctx context.Context, e Event) {
	for _, a := range as {
		a.Record(ctx, e)
	}
}

// LogAuditor writes each event to a logger at info level: the auditor of a
// Service built without one (tests, tools); the server records in the
// audit trail (TrailAuditor).
type LogAuditor struct{ Logger *slog.Logger }

var _ Auditor = LogAuditor{}

// Record implements Auditor.
func (a LogAuditor) Record(ctx context.Context, e Event) {
	a.Logger.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("org", string(e.Org)), slog.String("actor", e.Actor.String()),
		slog.String("action", string(e.Action)), slog.String("object", e.Object),
		slog.String("outcome", string(e.Outcome)), slog.String("error", string(e.Error)),
		slog.String("request_id", e.RequestID), slog.Any("runs", e.Runs))
}

// AuditorFunc adapts a function to Auditor.
type AuditorFunc func(ctx context.Context, e Event)

// Record implements Auditor.
func (f AuditorFunc) Record(ctx context.Context, e Event) { f(ctx, e) }

// record writes the one event of a mutating call.
func (s *Service) record(ctx context.Context, scope Scope, action Action, object string, err error, runs []string) {
	e := Event{
		At: s.clock.Now().UTC(), Org: scope.Org, Actor: scope.Actor, Action: action, Object: object,
		Outcome: OutcomeOK, RequestID: scope.RequestID, Runs: runs,
	}
	if err != nil {
		e.Outcome, e.Error = OutcomeFailed, Classify(err)
		if e.Error == ClassDenied {
			e.Outcome = OutcomeDenied
		}
	}
	s.audit.Record(context.WithoutCancel(ctx), e)
}

// begin checks the scope and asks the Authorizer, at the start of a use
// case, for each object it names.
func (s *Service) begin(ctx context.Context, scope Scope, action Action, objects ...string) error {
	if err := scope.check(); err != nil {
		return err
	}
	for _, o := range objects {
		if err := s.authz.Authorize(ctx, scope, action, o); err != nil {
			return err
		}
	}
	return nil
}
