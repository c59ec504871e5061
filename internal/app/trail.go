package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// ObjectAudit is the organization's audit trail, as the Authorizer sees
// it: reading it (AuditList, AuditVerify) is ActionRead on ObjectAudit, so
// a role may be given the inventory without the trail, or the trail alone
// (an auditor).
const ObjectAudit = "audit"

// AuditFilter narrows AuditList. Zero fields do not filter.
type AuditFilter struct {
	// Since and Until keep records with Since <= at < Until.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// ActorKind keeps one kind of actor (user, token, system); Actor one
	// actor, by id.
	ActorKind ActorKind `json:"actor_kind,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	// ActorMatch keeps actors whose id or name contains it, ignoring
	// ASCII case (part of a UPN, as a person searches).
	ActorMatch string `json:"actor_match,omitempty"`
	// Action keeps one action ("rotate", "rotation.step", …); Object one
	// object, as recorded ("application:web-storefront", "run:ID", …);
	// Run the records of one run (its steps and the calls that named it).
	Action string `json:"action,omitempty"`
	Object string `json:"object,omitempty"`
	Run    string `json:"run,omitempty"`
	// Outcome keeps one outcome (ok, denied, failed).
	Outcome Outcome `json:"outcome,omitempty"`
	// Newest lists the newest first. The cursor is the last Seq of the
	// previous page: After when oldest first, Before when newest first.
	Newest bool  `json:"newest,omitempty"`
	After  int64 `json:"after,omitempty"`
	Before int64 `json:"before,omitempty"`
	// Limit caps the records returned (0: DefaultAuditLimit; at most
	// MaxAuditLimit).
	Limit int `json:"limit,omitempty"`
}

// Bounds of an audit listing.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10000
)

// AuditList lists the organization's audit records, oldest first (or
// newest first), filtered and paged by sequence number. Each record is as
// stored, with its hash, so a page can be checked against the chain
// elsewhere.
func (s *Service) AuditList(ctx context.Context, scope Scope, f AuditFilter) ([]audit.Record, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectAudit); err != nil {
		return nil, err
	}
	switch {
	case f.Limit < 0 || f.Limit > MaxAuditLimit:
		return nil, &InvalidError{Field: "limit", Message: fmt.Sprintf("must be between 1 and %d", MaxAuditLimit)}
	case f.After < 0 || f.Before < 0:
		return nil, &InvalidError{Field: "cursor", Message: "must not be negative"}
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until):
		return nil, &InvalidError{Field: "since", Message: "must be before until"}
	case f.Outcome != "" && !slices.Contains([]Outcome{OutcomeOK, OutcomeDenied, OutcomeFailed}, f.Outcome):
		return nil, &InvalidError{Field: "outcome", Message: fmt.Sprintf("%q is not ok, denied or failed", f.Outcome)}
	case f.ActorKind != "" && !slices.Contains([]ActorKind{ActorUser, ActorToken, ActorSystem}, f.ActorKind):
		return nil, &InvalidError{Field: "actor_kind", Message: fmt.Sprintf("%q is not user, token or system", f.ActorKind)}
	}
	if err := s.knownOrg(ctx, scope.Org); err != nil {
		return nil, err
	}
	p := store.ListAuditParams{
		Org: scope.Org, AfterSeq: f.After, BeforeSeq: f.Before, Descending: f.Newest, Since: f.Since, Until: f.Until,
		ActorKind: string(f.ActorKind), ActorID: f.Actor, ActorMatch: f.ActorMatch, Action: f.Action, Object: f.Object, Run: f.Run, Outcome: string(f.Outcome), Limit: f.Limit,
	}
	if p.Limit == 0 {
		p.Limit = DefaultAuditLimit
	}
	recs, err := s.store.ListAudit(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	return recs, nil
}

// exportPage is how many records AuditExport reads at a time.
const exportPage = 1000

// AuditExported is what AuditExport wrote: how many records, and the
// first and last Seq (0 when none).
type AuditExported struct {
	Records     int64
	First, Last int64
}

// AuditExport writes the organization's audit records that f keeps,
// oldest first (f.Newest, cursors and Limit are ignored), to w as JSON
// lines: one audit.Record per line, with its hash, so what a log store
// keeps can be checked against the chain ('rotor audit export' and the
// UI's export both write this). It reads a page at a time, so a trail of
// any length streams in bounded memory.
func (s *Service) AuditExport(ctx context.Context, scope Scope, f AuditFilter, w io.Writer) (AuditExported, error) {
	var out AuditExported
	f.Newest, f.Before, f.After, f.Limit = false, 0, 0, exportPage
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for {
		recs, err := s.AuditList(ctx, scope, f)
		if err != nil {
			return out, err
		}
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return out, fmt.Errorf("write: %w", err)
			}
			if out.Records == 0 {
				out.First = r.Seq
			}
			out.Records++
			out.Last = r.Seq
		}
		if len(recs) < f.Limit {
			break
		}
		f.After = recs[len(recs)-1].Seq
	}
	if err := bw.Flush(); err != nil {
		return out, fmt.Errorf("write: %w", err)
	}
	return out, nil
}

// knownOrg fails with a NotFoundError (kind "organization") when org is
// not in the store: an empty trail of a mistyped organization would read
// as an intact one.
func (s *Service) knownOrg(ctx context.Context, org domain.OrgID) error {
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return fmt.Errorf("list organizations: %w", err)
	}
	for _, o := range orgs {
		if o.ID == org {
			return nil
		}
	}
	return &NotFoundError{Kind: "organization", Ref: string(org), Err: store.ErrNotFound}
}

// AuditVerifyOptions tune AuditVerify.
type AuditVerifyOptions struct {
	// Anchors are heads recorded earlier (SEQ:HASH, as AuditVerify's
	// result gives them), kept where rotor cannot write: each record they
	// name must still have their hash.
	Anchors []audit.Head
}

// AuditVerify walks the organization's whole audit trail and says whether
// it is intact, or which record is the first to have been edited,
// deleted or inserted (audit.Verify). A trail that is not intact is a
// result, not an error: the error is for a trail that could not be read.
func (s *Service) AuditVerify(ctx context.Context, scope Scope, opts AuditVerifyOptions) (audit.Result, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectAudit); err != nil {
		return audit.Result{}, err
	}
	if err := s.knownOrg(ctx, scope.Org); err != nil {
		return audit.Result{}, err
	}
	res, err := audit.Verify(ctx, scope.Org, store.AuditSource(s.store, scope.Org), audit.VerifyOptions{Anchors: opts.Anchors})
	if err != nil {
		return res, fmt.Errorf("verify the audit trail: %w", err)
	}
	return res, nil
}
