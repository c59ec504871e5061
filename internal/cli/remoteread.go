package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rotor-dev/rotor/internal/api"
	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// The remote use cases: each asks the API and returns what the local
// command gets from the application layer, so that both print alike (the
// API's types mirror the application layer's; remote_test holds every
// command's JSON to the local one's).

// maxPages bounds a listing's pages: a server whose cursors never end
// cannot keep the CLI forever.
const maxPages = 100000

// applications walks every page of the organization's applications.
func (r *remote) applications(ctx context.Context, f app.ApplicationFilter) ([]app.ApplicationRow, error) {
	q := url.Values{"limit": {fmt.Sprint(app.MaxPageSize)}}
	if f.Connection != "" {
		q.Set("connection", f.Connection)
	}
	if f.ManageableOnly {
		q.Set("manageable", "true")
	}
	if f.NamePrefix != "" {
		q.Set("name_prefix", f.NamePrefix)
	}
	if f.ExpiringWithin > 0 {
		q.Set("expiring_within", domain.FormatDuration(f.ExpiringWithin))
	}
	rows := []app.ApplicationRow{}
	for range maxPages {
		var page api.ApplicationList
		if err := r.get(ctx, r.orgPath("applications"), q, &page); err != nil {
			return nil, err
		}
		for _, a := range page.Items {
			rows = append(rows, app.ApplicationRow{
				Name: a.Name, AppID: a.AppID, ObjectID: a.ObjectID, TenantID: a.TenantID, Connection: strings.Join(a.Connections, ","),
				Manageable: a.Manageable, Secrets: a.Secrets, Certs: a.Certs, NextExpiry: a.NextExpiry, EarliestEnd: a.EarliestEnd,
				Policy: a.Policy, Status: a.Status, Reason: a.Reason, Due: a.Due, DueAt: a.DueAt,
			})
		}
		if page.NextCursor == "" {
			return rows, nil
		}
		q.Set("cursor", page.NextCursor)
	}
	return nil, errors.New("the server's pages do not end")
}

func detailFrom(d api.ApplicationDetail) app.ApplicationDetail {
	out := app.ApplicationDetail{Name: d.Name, AppID: d.AppID, ObjectID: d.ObjectID, TenantID: d.TenantID, Manageable: d.Manageable,
		CreatedAt: d.CreatedAt, Owners: d.Owners, OwnerIDs: append([]string{}, d.OwnerIDs...), SyncedAt: d.SyncedAt,
		Access: make([]domain.Access, 0, len(d.Access)), Credentials: make([]app.CredentialInfo, 0, len(d.Credentials))}
	for _, a := range d.Access {
		out.Access = append(out.Access, domain.Access{Connection: a.Connection, CanChange: a.CanChange})
	}
	for _, c := range d.Credentials {
		ci := app.CredentialInfo{KeyID: c.KeyID, Kind: domain.CredentialKind(c.Kind), DisplayName: c.DisplayName,
			Hint: c.Hint, Start: c.Start, End: c.End, CreatedByRotor: c.CreatedByRotor, Thumbprint: c.Thumbprint, PrivateKeyUnknown: c.PrivateKeyUnknown}
		if x := c.Certificate; x != nil {
			ci.Certificate = &app.CertificateDetail{ThumbprintSHA256: x.ThumbprintSHA256, Subject: x.Subject, Issuer: x.Issuer,
				KeyAlgorithm: x.KeyAlgorithm, KeySize: x.KeySize, NotBefore: x.NotBefore, NotAfter: x.NotAfter}
		}
		out.Credentials = append(out.Credentials, ci)
	}
	return out
}

func decisionFrom(d api.Decision) domain.Decision {
	out := domain.Decision{Due: d.Due, DueAt: d.DueAt, Trigger: domain.Trigger(d.Trigger), Reason: d.Reason, Message: d.Message}
	if d.Checks != nil {
		out.Checks = make([]domain.Check, 0, len(d.Checks))
	}
	for _, c := range d.Checks {
		out.Checks = append(out.Checks, domain.Check{Name: c.Name, Result: domain.CheckResult(c.Result), Reason: c.Reason, Message: c.Message})
	}
	return out
}

func refFrom(a api.ApplicationRef) app.ApplicationRef {
	return app.ApplicationRef{Name: a.Name, AppID: a.AppID, ObjectID: a.ObjectID, TenantID: a.TenantID}
}

// application is one application with its credentials.
func (r *remote) application(ctx context.Context, ref string) (*app.ApplicationDetail, error) {
	var d api.ApplicationDetail
	if err := r.get(ctx, r.orgPath("applications", ref), nil, &d); err != nil {
		return nil, err
	}
	out := detailFrom(d)
	return &out, nil
}

// explain is the chain of checks behind an application's decision.
func (r *remote) explain(ctx context.Context, ref string) (*app.Explanation, error) {
	var e api.Explanation
	if err := r.get(ctx, r.orgPath("applications", ref, "explain"), nil, &e); err != nil {
		return nil, err
	}
	out := &app.Explanation{Application: detailFrom(e.Application), Policy: e.Policy, Decision: decisionFrom(e.Decision), Ref: e.Ref, At: e.At,
		Targets: make([]app.PinnedTarget, 0, len(e.Targets))}
	for _, t := range e.Targets {
		pt := app.PinnedTarget{Sink: t.Sink, Type: t.Type, Target: t.Target, PinnedAt: t.PinnedAt,
			PinnedByRun: t.PinnedByRun, Previous: t.Previous, RetireOldAt: t.RetireOldAt}
		if d := t.LastDelivery; d != nil {
			pt.LastDelivery = &sink.Delivered{KeyID: d.KeyID, Version: d.Version, RunID: d.RunID, At: d.At}
		}
		if d := t.Drift; d != nil {
			pt.Drift = &sink.Drift{Drifted: d.Drifted, Reason: d.Reason, Current: d.Current}
		}
		out.Targets = append(out.Targets, pt)
	}
	return out, nil
}

// plan is what the planner would rotate now.
func (r *remote) plan(ctx context.Context) ([]app.DueApplication, error) {
	q := url.Values{"limit": {strconv.Itoa(app.MaxPageSize)}}
	var out []app.DueApplication
	for {
		var p api.Plan
		if err := r.get(ctx, r.orgPath("plan"), q, &p); err != nil {
			return nil, err
		}
		for _, d := range p.Items {
			out = append(out, app.DueApplication{Application: refFrom(d.Application), Policy: d.Policy, Decision: decisionFrom(d.Decision)})
		}
		if p.NextCursor == "" {
			return out, nil
		}
		q.Set("cursor", p.NextCursor)
	}
}

// runs lists runs newest first, at most f.Limit of them (0: the local
// default), a page at a time.
func (r *remote) runs(ctx context.Context, f app.RunFilter) ([]app.RunRow, error) {
	limit := f.Limit
	if limit == 0 {
		limit = app.DefaultRunLimit
	}
	q := url.Values{}
	if f.App != "" {
		q.Set("application", f.App)
	}
	for _, s := range f.States {
		q.Add("state", string(s))
	}
	rows := []app.RunRow{}
	for range maxPages {
		q.Set("limit", fmt.Sprint(min(limit-len(rows), 1000)))
		var page api.RunList
		if err := r.get(ctx, r.orgPath("runs"), q, &page); err != nil {
			return nil, err
		}
		for _, x := range page.Items {
			rows = append(rows, app.RunRow{ID: x.ID, App: x.Application, AppID: x.AppID, ObjectID: x.ObjectID, Policy: x.Policy,
				Trigger: domain.Trigger(x.Trigger), State: domain.RunState(x.State), NewKeyID: x.NewKeyID, Error: x.Error,
				CreatedAt: x.CreatedAt, RetireAt: x.RetireAt, Replaces: x.Replaces, Failure: domain.FailureClass(x.Failure), Seq: x.Seq})
		}
		if page.NextCursor == "" || len(rows) >= limit {
			return rows, nil
		}
		q.Set("cursor", page.NextCursor)
	}
	return nil, errors.New("the server's pages do not end")
}

// run is one run with its journal.
func (r *remote) run(ctx context.Context, id string) (*domain.Run, error) {
	var d api.RunDetail
	if err := r.get(ctx, r.orgPath("runs", id), nil, &d); err != nil {
		return nil, err
	}
	out := &domain.Run{Org: domain.OrgID(r.org), ID: d.ID, Connection: d.Connection, TenantID: d.TenantID, AppObjectID: d.ObjectID, AppID: d.AppID,
		AppName: d.Application, Policy: d.Policy, Kind: domain.CredentialKind(d.Kind), Trigger: domain.Trigger(d.Trigger), State: domain.RunState(d.State),
		NewKeyID: d.NewKeyID, NewEnd: d.NewEnd, SinksStarted: d.SinksStarted, RetireAt: d.RetireAt, Error: d.Error,
		Failure: domain.FailureClass(d.Failure), Attempts: d.Attempts, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, EndedAt: d.EndedAt,
		Holder: d.Holder, Seq: d.Seq, Replaces: d.Replaces}
	for _, e := range d.Events {
		step, err := domain.ParseStep(e.Step)
		if err != nil {
			return nil, fmt.Errorf("%s answered a journal step rotor does not know (%q): is the CLI older than the server?", r.server, e.Step)
		}
		out.Events = append(out.Events, domain.RunEvent{At: e.At, State: domain.RunState(e.State), Step: step, Target: e.Target, Message: e.Message})
	}
	return out, nil
}

func policyFrom(p api.Policy) app.PolicyRow {
	out := app.PolicyRow{Name: p.Name, Connection: p.Connection, Selector: p.Applications, Enabled: p.Enabled, Kind: domain.CredentialKind(p.Kind),
		Lifetime: p.Lifetime, RenewBefore: p.RenewBefore, Overlap: p.Overlap, NotifyBefore: p.NotifyBefore, Verify: p.Verify,
		RetireUnmanaged: p.RetireUnmanaged, Sinks: p.Sinks}
	if c := p.Certificate; c != nil {
		out.Certificate = &app.CertificateRow{KeyType: c.KeyType, Subject: c.Subject, DNSNames: c.DNSNames, KeySource: c.KeySource,
			VaultURL: c.VaultURL, VaultName: c.VaultName, HSM: c.HSM, Bootstrap: c.Bootstrap}
	}
	return out
}

func (r *remote) policies(ctx context.Context) ([]app.PolicyRow, error) {
	var l api.PolicyList
	if err := r.get(ctx, r.orgPath("policies"), nil, &l); err != nil {
		return nil, err
	}
	out := make([]app.PolicyRow, 0, len(l.Items))
	for _, p := range l.Items {
		out = append(out, policyFrom(p))
	}
	return out, nil
}

func (r *remote) policy(ctx context.Context, name string) (*app.PolicyRow, error) {
	var p api.Policy
	if err := r.get(ctx, r.orgPath("policies", name), nil, &p); err != nil {
		return nil, err
	}
	out := policyFrom(p)
	return &out, nil
}

func connectionFrom(c api.Connection) app.Connection {
	return app.Connection{Name: c.Name, TenantID: c.TenantID, Purpose: c.Purpose, Cloud: c.Cloud, Identity: c.Identity, ClientID: c.ClientID,
		AuxiliaryTenants: c.AuxiliaryTenants, Provisioned: c.Provisioned, LastSuccess: c.LastSuccess, LastFailure: c.LastFailure,
		Failure: c.Failure, AADSTS: c.AADSTS, Failing: c.Failing, Roles: c.Roles}
}

func (r *remote) connections(ctx context.Context) ([]app.Connection, error) {
	var l api.ConnectionList
	if err := r.get(ctx, r.orgPath("connections"), nil, &l); err != nil {
		return nil, err
	}
	out := make([]app.Connection, 0, len(l.Items))
	for _, c := range l.Items {
		out = append(out, connectionFrom(c))
	}
	return out, nil
}

func (r *remote) connection(ctx context.Context, name string) (*app.Connection, error) {
	var c api.Connection
	if err := r.get(ctx, r.orgPath("connections", name), nil, &c); err != nil {
		return nil, err
	}
	out := connectionFrom(c)
	return &out, nil
}

// testConnection signs the connection in on the server; Entra's refusal
// is an error, as locally.
func (r *remote) testConnection(ctx context.Context, name string) (app.SignIn, error) {
	var t api.ConnectionTest
	if err := r.do(ctx, http.MethodPost, r.orgPath("connections", name, "test"), nil, nil, &t); err != nil {
		return app.SignIn{}, err
	}
	in := app.SignIn{Connection: t.Connection, TenantID: t.TenantID, AppID: t.AppID, ObjectID: t.ObjectID, Roles: t.Roles, Owned: t.Owned}
	if !t.OK {
		return in, errors.New(t.Error)
	}
	return in, nil
}

func recordFrom(org string, x api.AuditRecord) (audit.Record, error) {
	h, err := audit.ParseHash(x.Hash)
	if err != nil {
		return audit.Record{}, fmt.Errorf("audit record %d: %w", x.Seq, err)
	}
	return audit.Record{Org: domain.OrgID(org), Seq: x.Seq, At: x.At, Actor: audit.Actor{Kind: x.Actor.Kind, ID: x.Actor.ID, Name: x.Actor.Name},
		Action: x.Action, Object: x.Object, Outcome: x.Outcome, Error: x.Error, RequestID: x.RequestID, Runs: x.Runs,
		RunID: x.RunID, Step: x.Step, Hash: h}, nil
}

// auditList lists up to f.Limit records (0: the default), a page at a
// time.
func (r *remote) auditList(ctx context.Context, f app.AuditFilter) ([]audit.Record, error) {
	limit := f.Limit
	if limit == 0 {
		limit = app.DefaultAuditLimit
	}
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"))
	}
	set("actor_kind", string(f.ActorKind))
	set("actor", f.Actor)
	set("action", f.Action)
	set("object", f.Object)
	set("run", f.Run)
	if f.Newest {
		q.Set("order", "newest")
	}
	out := []audit.Record{}
	for range maxPages {
		q.Set("limit", fmt.Sprint(min(limit-len(out), 1000)))
		var page api.AuditList
		if err := r.get(ctx, r.orgPath("audit"), q, &page); err != nil {
			return nil, err
		}
		for _, x := range page.Items {
			rec, err := recordFrom(r.org, x)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
		}
		if page.NextCursor == "" || len(out) >= limit {
			return out, nil
		}
		q.Set("cursor", page.NextCursor)
	}
	return nil, errors.New("the server's pages do not end")
}

// auditVerify verifies the trail on the server.
func (r *remote) auditVerify(ctx context.Context, anchors []audit.Head) (audit.Result, error) {
	q := url.Values{}
	for _, a := range anchors {
		q.Add("anchor", a.String())
	}
	var v api.AuditVerification
	if err := r.get(ctx, r.orgPath("audit", "verify"), q, &v); err != nil {
		return audit.Result{}, err
	}
	res := audit.Result{Org: domain.OrgID(r.org), Intact: v.Intact, Records: v.Records, Anchors: v.Anchors}
	if v.Head != nil {
		h, err := audit.ParseHash(v.Head.Hash)
		if err != nil {
			return audit.Result{}, fmt.Errorf("the head's hash: %w", err)
		}
		res.Head = &audit.Head{Seq: v.Head.Seq, Hash: h, At: v.Head.At}
	}
	if v.Problem != nil {
		res.Problem = &audit.Problem{Seq: v.Problem.Seq, Kind: audit.Kind(v.Problem.Kind), Detail: v.Problem.Detail}
	}
	return res, nil
}

func keyFrom(k api.APIKey) app.APIKeyRow {
	return app.APIKeyRow{ID: k.ID, Name: k.Name, Role: app.Role(k.Role), CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, Status: k.Status}
}

func (r *remote) apiKeys(ctx context.Context) ([]app.APIKeyRow, error) {
	var l api.APIKeyList
	if err := r.get(ctx, r.orgPath("api-keys"), nil, &l); err != nil {
		return nil, err
	}
	out := make([]app.APIKeyRow, 0, len(l.Items))
	for _, k := range l.Items {
		out = append(out, keyFrom(k))
	}
	return out, nil
}

// createAPIKey makes a key on the server: its row, and the key itself,
// which the caller prints once.
func (r *remote) createAPIKey(ctx context.Context, name string, role app.Role, expires string) (app.APIKeyRow, string, error) {
	var k api.APIKeyCreated
	if err := r.do(ctx, http.MethodPost, r.orgPath("api-keys"), nil, api.NewAPIKey{Name: name, Role: string(role), Expires: expires}, &k); err != nil {
		return app.APIKeyRow{}, "", err
	}
	return keyFrom(k.APIKey), k.Key, nil
}

func (r *remote) revokeAPIKey(ctx context.Context, id string) error {
	return r.do(ctx, http.MethodDelete, r.orgPath("api-keys", id), nil, nil, nil)
}
