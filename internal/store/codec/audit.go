package codec

import (
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/store"
)

// PrepareAudit is r as AppendAudit stores it before it is numbered and
// chained: At defaulted to now, Normalized.
func PrepareAudit(r audit.Record, now time.Time) (audit.Record, error) {
	if r.At.IsZero() {
		r.At = now
	}
	r, err := audit.Normalize(r)
	if err != nil {
		return r, fmt.Errorf("append audit record: %w", err)
	}
	return r, nil
}

// PrepareListAudit rejects a listing of no organization or with a
// negative limit or cursor, and truncates its times to audit.Precision,
// as the records' are.
func PrepareListAudit(p *store.ListAuditParams) error {
	p.Since, p.Until = p.Since.Truncate(audit.Precision), p.Until.Truncate(audit.Precision)
	switch {
	case p.Org == "":
		return errors.New("list audit records: org must be set")
	case p.Limit < 0 || p.AfterSeq < 0 || p.BeforeSeq < 0:
		return errors.New("list audit records: limit and cursors must not be negative")
	}
	return CheckTimes(NamedTime{"since", p.Since}, NamedTime{"until", p.Until})
}
