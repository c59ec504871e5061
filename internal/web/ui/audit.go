package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
)

// AuditPageSize is how many audit records one page of the audit log
// shows.
const AuditPageSize = 50

// auditDate is how the audit log's from and to filters are spelt: a day,
// in UTC (what an <input type="date"> sends).
const auditDate = "2006-01-02"

// auditQuery is the audit log's query string, parsed.
type auditQuery struct {
	Actor, Action, Object string
	Outcome               app.Outcome
	// From and To are days (auditDate), To included.
	From, To string
	// Before is the cursor: the Seq of the last record of the previous
	// page (newest first).
	Before int64
	// Verify asks for the chain to be checked and the result shown.
	Verify bool
}

var auditOutcomes = []app.Outcome{app.OutcomeOK, app.OutcomeDenied, app.OutcomeFailed}

func parseAuditQuery(v url.Values) (auditQuery, error) {
	q := auditQuery{
		Actor: strings.TrimSpace(v.Get("actor")), Action: strings.TrimSpace(v.Get("action")),
		Object: strings.TrimSpace(v.Get("object")), Outcome: app.Outcome(v.Get("outcome")),
		From: v.Get("from"), To: v.Get("to"), Verify: v.Get("verify") == "1",
	}
	for _, d := range []struct{ field, v string }{{"from", q.From}, {"to", q.To}} {
		if _, err := time.Parse(auditDate, d.v); d.v != "" && err != nil {
			return q, &app.InvalidError{Field: d.field, Message: "must be a date, YYYY-MM-DD"}
		}
	}
	if c := v.Get("before"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n <= 0 {
			return q, &app.InvalidError{Field: "before", Message: "must be a record's seq"}
		}
		q.Before = n
	}
	return q, nil
}

// filter is q as the application layer's filter. An actor written as
// kind:id ("user:…", as the Who column shows it) is that actor exactly;
// anything else is a part of an actor's id or name.
func (q auditQuery) filter() app.AuditFilter {
	f := app.AuditFilter{Action: q.Action, Object: q.Object, Outcome: q.Outcome, Newest: true, Before: q.Before}
	if kind, id, ok := strings.Cut(q.Actor, ":"); ok && id != "" &&
		(kind == string(app.ActorUser) || kind == string(app.ActorToken) || kind == string(app.ActorSystem)) {
		f.ActorKind, f.Actor = app.ActorKind(kind), id
	} else {
		f.ActorMatch = q.Actor
	}
	if t, err := time.Parse(auditDate, q.From); err == nil {
		f.Since = t
	}
	if t, err := time.Parse(auditDate, q.To); err == nil {
		f.Until = t.Add(24 * time.Hour)
	}
	return f
}

// values is q as a query string, with the cursor before (none when 0).
func (q auditQuery) values(before int64) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"actor": q.Actor, "action": q.Action, "object": q.Object, "outcome": string(q.Outcome), "from": q.From, "to": q.To} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	return v
}

type auditView struct {
	layout
	Query    auditQuery
	Outcomes []app.Outcome
	Rows     []auditRow
	NextURL  string
	FirstURL string
	// ExportURL exports what the filters keep (every page, oldest first).
	ExportURL string
	// Hidden are the filters and cursor the Verify chain form carries on;
	// Verify is its result when asked for.
	Hidden url.Values
	Verify *audit.Result
}

type auditRow struct {
	audit.Record
	// ObjectURL links the object when rotor has a page for it; Runs the
	// run a rotation step belongs to, or the runs a call started.
	ObjectURL string
	RunLinks  []runLink
}

type runLink struct{ ID, URL string }

func (u *UI) auditURL(v url.Values) string {
	s := u.base + "/audit"
	if len(v) > 0 {
		s += "?" + v.Encode()
	}
	return s
}

// objectURL is rotor's page of an audited object: "application:REF" and
// "run:ID" have one; other objects (inventory, api-key:ID, …) none.
func (u *UI) objectURL(object string) string {
	kind, ref, _ := strings.Cut(object, ":")
	if ref == "" {
		return ""
	}
	switch kind {
	case "application":
		return u.appURL(ref)
	case "run":
		return u.runURL(ref)
	}
	return ""
}

// audit is the organization's audit trail, newest first, a keyset page
// at a time, with filters, a check of the chain, and an export.
func (u *UI) audit(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	q, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	f := q.filter()
	f.Limit = AuditPageSize + 1 // one more says whether there is a next page
	recs, err := u.app.AuditList(r.Context(), scope, f)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := auditView{
		layout: u.frame(r, "audit", "Audit log"), Query: q, Outcomes: auditOutcomes, Rows: make([]auditRow, 0, len(recs)),
		ExportURL: u.base + "/audit/export", Hidden: q.values(q.Before),
	}
	if ev := q.values(0); len(ev) > 0 {
		v.ExportURL += "?" + ev.Encode()
	}
	if len(recs) > AuditPageSize {
		recs = recs[:AuditPageSize]
		v.NextURL = u.auditURL(q.values(recs[len(recs)-1].Seq))
	}
	if q.Before > 0 {
		v.FirstURL = u.auditURL(q.values(0))
	}
	for _, rec := range recs {
		row := auditRow{Record: rec, ObjectURL: u.objectURL(rec.Object)}
		for _, id := range append([]string{rec.RunID}, rec.Runs...) {
			// A step of a run is on "run:ID" already, linked above.
			if id != "" && rec.Object != app.RunObject(id) && !slices.ContainsFunc(row.RunLinks, func(l runLink) bool { return l.ID == id }) {
				row.RunLinks = append(row.RunLinks, runLink{ID: id, URL: u.runURL(id)})
			}
		}
		v.Rows = append(v.Rows, row)
	}
	if q.Verify {
		res, err := u.app.AuditVerify(r.Context(), scope, app.AuditVerifyOptions{})
		if err != nil {
			u.fail(w, r, err)
			return
		}
		v.Verify = &res
	}
	if fragment(r) && !q.Verify {
		u.render(w, r, http.StatusOK, "audit", "audit-results", v)
		return
	}
	u.render(w, r, http.StatusOK, "audit", "layout.html", v)
}

// auditExport streams what the filters keep as JSON lines, oldest first,
// in 'rotor audit export”s format (app.Service.AuditExport writes both).
// The role check is the application layer's, before the first byte: a
// refusal is the error page, not an empty file.
func (u *UI) auditExport(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	q, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	f := q.filter()
	f.Newest, f.Before = false, 0
	// Ask for one record first, so an error (denied, a bad filter) is a
	// page with its status rather than a 200 with a broken body.
	probe := f
	probe.Limit = 1
	if _, err := u.app.AuditList(r.Context(), scope, probe); err != nil {
		u.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/jsonl; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="audit-`+safeFileName(string(scope.Org))+`.jsonl"`)
	if _, err := u.app.AuditExport(r.Context(), scope, f, w); err != nil {
		// The status is sent; the body ends short. The log says why.
		u.log.ErrorContext(r.Context(), "ui: audit export", "org", scope.Org, "err", err)
	}
}

// safeFileName keeps letters, digits, '.', '_' and '-' (organization ids
// are made of those already).
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}
