package store

import (
	"context"
	"errors"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
)

var (
	_ audit.Appender = Store(nil)
	_ AuditReader    = Store(nil)
	_ audit.Source   = auditSource{}
)

// AuditReader is the part of Store that reads an audit trail.
type AuditReader interface {
	ListAudit(ctx context.Context, p ListAuditParams) ([]audit.Record, error)
	AuditHead(ctx context.Context, org domain.OrgID) (audit.Head, error)
}

// AuditSource is org's audit trail in s, as audit.Verify reads it.
func AuditSource(s AuditReader, org domain.OrgID) audit.Source { return auditSource{s, org} }

type auditSource struct {
	s   AuditReader
	org domain.OrgID
}

func (a auditSource) Records(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	return a.s.ListAudit(ctx, ListAuditParams{Org: a.org, AfterSeq: after, Limit: limit})
}

func (a auditSource) Head(ctx context.Context) (audit.Head, bool, error) {
	h, err := a.s.AuditHead(ctx, a.org)
	if errors.Is(err, ErrNotFound) {
		return audit.Head{}, false, nil
	}
	return h, err == nil, err
}
