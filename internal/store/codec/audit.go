package codec

import (
	"errors"
	"fmt"
	"strings"
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

// AuditConditions calls add with the SQL condition ("?" for its value) and
// the value of every filter p sets, in a fixed order, except Run, whose
// condition differs by dialect (the runs column is JSON in SQLite, an
// array in PostgreSQL). enc encodes times as the store keeps them.
func AuditConditions(p store.ListAuditParams, enc func(time.Time) any, add func(cond string, v any)) {
	if p.AfterSeq > 0 {
		add("seq > ?", p.AfterSeq)
	}
	if p.BeforeSeq > 0 {
		add("seq < ?", p.BeforeSeq)
	}
	if !p.Since.IsZero() {
		add("at >= ?", enc(p.Since))
	}
	if !p.Until.IsZero() {
		add("at < ?", enc(p.Until))
	}
	for _, f := range []struct{ cond, v string }{
		{"actor_kind = ?", p.ActorKind}, {"actor_id = ?", p.ActorID}, {"action = ?", p.Action}, {"object = ?", p.Object},
		{"outcome = ?", p.Outcome},
	} {
		if f.v != "" {
			add(f.cond, f.v)
		}
	}
}

// LikeContains is the LIKE pattern (ESCAPE '\') that matches any
// string containing s, lowercased: ActorMatch's, so that "%" and "_"
// are themselves.
func LikeContains(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// ActorMatchCondition is ActorMatch's condition; both "?" take the same
// LikeContains pattern. lower() on both sides: PostgreSQL's LIKE is case
// sensitive, SQLite's is not (ASCII only in both, then).
const ActorMatchCondition = `(lower(actor_id) LIKE ? ESCAPE '\' OR lower(actor_name) LIKE ? ESCAPE '\')`
