package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
)

// Every route's input names its organization first, in its own Org field:
// huma reads parameters from the input struct's fields.

// The errors every route of an organization may answer, besides its own.
var orgErrors = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests, http.StatusInternalServerError}

func (a *API) op(method, path, id, summary, desc string, tags []string, errs ...int) huma.Operation {
	return huma.Operation{
		OperationID: id, Method: method, Path: Prefix + path, Summary: summary, Description: desc, Tags: tags,
		Errors: append(append([]int{}, orgErrors...), errs...),
	}
}

func (a *API) routes() {
	apps, runs, cfg, aud, keys := []string{"applications"}, []string{"runs"}, []string{"configuration"}, []string{"audit"}, []string{"api-keys"}

	huma.Register(a.huma, huma.Operation{
		OperationID: "whoami", Method: http.MethodGet, Path: Prefix + "/whoami", Summary: "Who the caller is",
		Description: "The caller as rotor authenticated it, and its role in each organization it may act in.",
		Tags:        []string{"caller"}, Errors: []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests},
	}, a.whoami)

	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/applications", "listApplications", "List applications",
		"The organization's applications with what rotor will do about each, a page at a time (cursor pagination), filtered and sorted. Viewer.", apps), a.listApplications)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/applications/{ref}", "getApplication", "Get an application",
		"One application, by object id, app id or display name, with its credentials (never a value). Viewer.", apps, http.StatusConflict), a.getApplication)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/applications/{ref}/explain", "explainApplication", "Explain an application",
		"The chain of checks behind what rotor will do about the application: the answer of `rotor explain`. Viewer.", apps, http.StatusConflict), a.explain)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/applications/{ref}/targets", "listApplicationTargets", "Where an application's sinks deliver",
		"Each sink of the governing policy: its pinned target and what the configuration names today. Viewer.", apps, http.StatusConflict, http.StatusUnprocessableEntity), a.targets)
	huma.Register(a.huma, a.op(http.MethodPost, "/orgs/{org}/applications/{ref}/targets/{sink}/move", "moveApplicationTarget", "Move a sink's pinned target",
		"After a rename: new credentials go where the configuration names today, and the previous target keeps receiving them for one overlap. Operator; audited.", apps, http.StatusConflict, http.StatusUnprocessableEntity), a.moveTarget)
	op := a.op(http.MethodPost, "/orgs/{org}/applications/{ref}/rotate", "rotateApplication", "Rotate an application now",
		"Checks the application as a rotation would (a policy governs it, its connection may change it), then queues its rotation for the job system: "+
			"202, and the run appears in runs. A rotation already queued stands. Operator; audited.", apps, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusNotImplemented)
	op.DefaultStatus = http.StatusAccepted
	huma.Register(a.huma, op, a.rotate)
	a.settingsRoutes(apps)
	a.discoverRoutes([]string{"Sinks"})
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/plan", "getPlan", "What would rotate now",
		"The applications the planner would rotate now, with the decision behind each: a dry run, nothing is changed. "+
			"In name order, a page at a time (the planner itself enqueues them earliest deadline first). Viewer.", apps), a.plan)

	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/runs", "listRuns", "List rotation runs",
		"Rotation runs, newest first, a page at a time, filtered by application and state. Viewer.", runs, http.StatusConflict), a.listRuns)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/runs/{id}", "getRun", "Get a run with its journal",
		"One rotation run and every step of its journal. Viewer.", runs), a.getRun)
	huma.Register(a.huma, a.op(http.MethodPost, "/orgs/{org}/runs/{id}/retire", "retireRun", "Retire a run's old credentials now",
		"Removes the older credentials a retiring run replaced, if its overlap has passed (409 too_early before). Operator; audited.", runs, http.StatusConflict), a.retire)

	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/policies", "listPolicies", "List policies",
		"The organization's policies in the order that decides which governs an application. Read-only here: they are provisioned from rotor.yaml. Viewer.", cfg), a.listPolicies)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/policies/{name}", "getPolicy", "Get a policy", "One policy by name. Viewer.", cfg), a.getPolicy)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/connections", "listConnections", "List connections",
		"The organization's connections with their health (last sign-in, last failure with Entra's AADSTS code). Never a secret. Viewer.", cfg), a.listConnections)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/connections/{name}", "getConnection", "Get a connection", "One connection with its health. Viewer.", cfg), a.getConnection)
	huma.Register(a.huma, a.op(http.MethodPost, "/orgs/{org}/connections/{name}/test", "testConnection", "Sign a connection in now",
		"Signs the connection in with its identity, as rotor would: who it is and the Graph roles its token carries, or Entra's refusal (ok false). Viewer.", cfg, http.StatusNotImplemented), a.testConnection)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/connections/{name}/vaults", "listConnectionVaults", "Key Vaults a connection sees",
		"The Key Vaults the connection's identity can see through Azure Resource Manager (a role on the vault, its resource group or its subscription), by name; cached 60 s. "+
			"Azure's refusal is 424 saying which right the identity lacks. Operator.", cfg, http.StatusFailedDependency, http.StatusBadGateway, http.StatusNotImplemented), a.listVaults)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/connections/{name}/vaults/secrets", "listConnectionVaultSecrets", "Secrets of a Key Vault a connection sees",
		"The names of a vault's secrets, with whether each is rotor's (its managed-by tag), never a value; the vault must be one the vaults route lists for the connection. Cached 60 s. Operator.",
		cfg, http.StatusFailedDependency, http.StatusBadGateway, http.StatusNotImplemented), a.listVaultSecrets)

	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/audit", "listAudit", "List audit records",
		"The organization's hash-chained audit trail, oldest first (or newest first), a page at a time, filtered. Viewer.", aud), a.listAudit)
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/audit/verify", "verifyAudit", "Verify the audit trail",
		"Recomputes every record's hash and checks the head and any anchors; names the first edited, missing or inserted record. A trail that is not intact is 200 with intact false. Viewer.", aud), a.verifyAudit)

	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/api-keys", "listAPIKeys", "List API keys", "The organization's API keys, never the keys themselves. Admin.", keys, http.StatusNotImplemented), a.listKeys)
	op = a.op(http.MethodPost, "/orgs/{org}/api-keys", "createAPIKey", "Create an API key",
		"Makes a key for the organization with a role and a lifetime; the answer shows the key this once. Admin; audited.", keys, http.StatusUnprocessableEntity, http.StatusNotImplemented)
	op.DefaultStatus = http.StatusCreated
	huma.Register(a.huma, op, a.createKey)
	op = a.op(http.MethodDelete, "/orgs/{org}/api-keys/{id}", "revokeAPIKey", "Revoke an API key",
		"Revokes the key at once; revoking a revoked key succeeds. Admin; audited.", keys, http.StatusNotImplemented)
	op.DefaultStatus = http.StatusNoContent
	huma.Register(a.huma, op, a.revokeKey)
}

// ---- caller

type whoamiOutput struct{ Body Whoami }

func (a *API) whoami(ctx context.Context, _ *struct{}) (*whoamiOutput, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, newProblem(http.StatusUnauthorized, "unauthenticated", "a bearer token or API key is required")
	}
	w := Whoami{Actor: AuditActor{Kind: string(p.Actor.Kind), ID: p.Actor.ID, Name: p.Actor.Name}, Method: string(p.Method),
		Organizations: map[string]string{}, ExpiresAt: p.ExpiresAt}
	for org, role := range p.Roles {
		w.Organizations[string(org)] = string(role)
	}
	return &whoamiOutput{Body: w}, nil
}

// ---- applications

type listApplicationsInput struct {
	Org            string    `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Cursor         string    `query:"cursor" maxLength:"2048" doc:"next_cursor of the previous page, unchanged; absent for the first page. A cursor continues the listing (sort and filters) it came from."`
	Limit          int       `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size."`
	Sort           string    `query:"sort" enum:"name,expiry" default:"name" doc:"name: display name, then object id. expiry: the earliest credential end first (expired ones first of all), then name; applications without credentials last."`
	NamePrefix     string    `query:"name_prefix" maxLength:"256" doc:"Keep applications whose display name starts with this (case-sensitive)."`
	Connection     string    `query:"connection" maxLength:"64" doc:"Keep the applications one connection sees."`
	Manageable     bool      `query:"manageable" doc:"Keep applications rotor may change."`
	ExpiringWithin string    `query:"expiring_within" maxLength:"32" doc:"Keep applications with a credential ending within this long from now, expired ones included: a duration such as 30d, 36h, 1d12h."`
	ExpiringBefore time.Time `query:"expiring_before" doc:"Keep applications with a credential ending before this time (RFC 3339), expired ones included."`
}

type listApplicationsOutput struct{ Body ApplicationList }

func (a *API) listApplications(ctx context.Context, in *listApplicationsInput) (*listApplicationsOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	f := app.ApplicationFilter{Connection: in.Connection, ManageableOnly: in.Manageable, NamePrefix: in.NamePrefix, ExpiringBefore: in.ExpiringBefore}
	if in.ExpiringWithin != "" {
		d, err := config.ParseDuration(in.ExpiringWithin)
		if err != nil || d < 0 {
			return nil, newProblem(http.StatusBadRequest, string(app.ClassInvalid), "expiring_within: "+`"`+clipRef(in.ExpiringWithin)+`" is not a duration such as 30d or 36h`)
		}
		f.ExpiringWithin = d
	}
	page, err := a.app.ListApplicationsPage(ctx, scope, f, app.ApplicationPageRequest{Sort: app.ApplicationSort(in.Sort), Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &listApplicationsOutput{Body: ApplicationList{Items: make([]Application, 0, len(page.Rows)), NextCursor: page.Next}}
	for _, r := range page.Rows {
		out.Body.Items = append(out.Body.Items, applicationOf(r))
	}
	return out, nil
}

type appInput struct {
	Org string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Ref string `path:"ref" maxLength:"256" doc:"The application's object id, app id or display name (409 when a name is shared: use the object id)."`
}

type applicationOutput struct{ Body ApplicationDetail }

func (a *API) getApplication(ctx context.Context, in *appInput) (*applicationOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	d, err := a.app.GetApplication(ctx, scope, in.Ref)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &applicationOutput{Body: detailOf(*d)}, nil
}

type explanationOutput struct{ Body Explanation }

func (a *API) explain(ctx context.Context, in *appInput) (*explanationOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	e, err := a.app.Explain(ctx, scope, in.Ref)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &explanationOutput{Body: explanationOf(e)}, nil
}

type targetsOutput struct{ Body ApplicationTargets }

func (a *API) targets(ctx context.Context, in *appInput) (*targetsOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	t, err := a.app.Targets(ctx, scope, in.Ref)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &targetsOutput{Body: ApplicationTargets{Application: refOf(t.Application), Policy: t.Policy, Targets: make([]Target, 0, len(t.Targets))}}
	for _, v := range t.Targets {
		out.Body.Targets = append(out.Body.Targets, targetOf(v))
	}
	return out, nil
}

type moveTargetInput struct {
	Org  string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Ref  string `path:"ref" maxLength:"256" doc:"The application's object id, app id or display name."`
	Sink int    `path:"sink" minimum:"0" doc:"The sink's index in the policy, from 0."`
}

type targetOutput struct{ Body Target }

func (a *API) moveTarget(ctx context.Context, in *moveTargetInput) (*targetOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	v, err := a.app.MoveTarget(ctx, scope, in.Ref, in.Sink)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &targetOutput{Body: targetOf(v)}, nil
}

type rotateOutput struct{ Body RotationQueued }

func (a *API) rotate(ctx context.Context, in *appInput) (*rotateOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	res, err := a.app.Enqueue(ctx, scope, in.Ref)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &rotateOutput{Body: RotationQueued{Application: refOf(res.Application), Policy: res.Policy, Status: "queued"}}, nil
}

type orgInput struct {
	Org string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
}

type planOutput struct{ Body Plan }

type planInput struct {
	Org    string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Cursor string `query:"cursor" maxLength:"2048" doc:"next_cursor of the previous page, unchanged; absent for the first page."`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size."`
}

func (a *API) plan(ctx context.Context, in *planInput) (*planOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	page, err := a.app.DuePageOf(ctx, scope, app.DuePageRequest{Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &planOutput{Body: Plan{Items: make([]PlanItem, 0, len(page.Rows)), NextCursor: page.Next}}
	for _, d := range page.Rows {
		out.Body.Items = append(out.Body.Items, PlanItem{Application: refOf(d.Application), Policy: d.Policy, Decision: decisionOf(d.Decision)})
	}
	return out, nil
}

// ---- runs

type listRunsInput struct {
	Org         string   `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Cursor      string   `query:"cursor" maxLength:"2048" doc:"next_cursor of the previous page, unchanged; absent for the first page."`
	Limit       int      `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size."`
	Application string   `query:"application" maxLength:"256" doc:"Keep one application's runs (object id, app id or display name)."`
	State       []string `query:"state" enum:"planned,created,propagated,verified,retiring,done,failed,abandoned" doc:"Keep runs in these states (repeat, or comma-separated)."`
}

type listRunsOutput struct{ Body RunList }

func (a *API) listRuns(ctx context.Context, in *listRunsInput) (*listRunsOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	f := app.RunFilter{App: in.Application}
	for _, s := range in.State {
		f.States = append(f.States, domain.RunState(s))
	}
	page, err := a.app.ListRunsPage(ctx, scope, f, app.RunPageRequest{Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &listRunsOutput{Body: RunList{Items: make([]Run, 0, len(page.Rows)), NextCursor: page.Next}}
	for _, r := range page.Rows {
		out.Body.Items = append(out.Body.Items, runOf(r))
	}
	return out, nil
}

type runInput struct {
	Org string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	ID  string `path:"id" maxLength:"128" doc:"The run's id."`
}

type runOutput struct{ Body RunDetail }

func (a *API) getRun(ctx context.Context, in *runInput) (*runOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	r, err := a.app.GetRun(ctx, scope, in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &runOutput{Body: runDetailOf(r)}, nil
}

func (a *API) retire(ctx context.Context, in *runInput) (*runOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	if err := a.app.Retire(ctx, scope, in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	r, err := a.app.GetRun(ctx, scope, in.ID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &runOutput{Body: runDetailOf(r)}, nil
}

// ---- configuration

type policiesOutput struct{ Body PolicyList }

func (a *API) listPolicies(ctx context.Context, in *orgInput) (*policiesOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	list, err := a.app.ListPolicies(ctx, scope)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &policiesOutput{Body: PolicyList{Items: make([]Policy, 0, len(list))}}
	for _, p := range list {
		out.Body.Items = append(out.Body.Items, policyOf(p))
	}
	return out, nil
}

type nameInput struct {
	Org  string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Name string `path:"name" maxLength:"64" doc:"The name."`
}

type policyOutput struct{ Body Policy }

func (a *API) getPolicy(ctx context.Context, in *nameInput) (*policyOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	p, err := a.app.GetPolicy(ctx, scope, in.Name)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &policyOutput{Body: policyOf(*p)}, nil
}

type connectionsOutput struct{ Body ConnectionList }

func (a *API) listConnections(ctx context.Context, in *orgInput) (*connectionsOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	list, err := a.app.ListConnections(ctx, scope)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &connectionsOutput{Body: ConnectionList{Items: make([]Connection, 0, len(list))}}
	for _, c := range list {
		out.Body.Items = append(out.Body.Items, connectionOf(c))
	}
	return out, nil
}

type connectionOutput struct{ Body Connection }

func (a *API) getConnection(ctx context.Context, in *nameInput) (*connectionOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	c, err := a.app.GetConnection(ctx, scope, in.Name)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &connectionOutput{Body: connectionOf(*c)}, nil
}

type connectionTestOutput struct{ Body ConnectionTest }

func (a *API) testConnection(ctx context.Context, in *nameInput) (*connectionTestOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	res, err := a.app.TestConnection(ctx, scope, in.Name)
	var (
		denied  *app.DeniedError
		nf      *app.NotFoundError
		unavail *app.UnavailableError
	)
	if errors.As(err, &denied) || errors.As(err, &nf) || errors.As(err, &unavail) {
		return nil, a.fail(ctx, err)
	}
	out := ConnectionTest{Connection: in.Name, OK: err == nil, TenantID: res.TenantID, AppID: res.AppID, ObjectID: res.ObjectID, Roles: res.Roles, Owned: res.Owned}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	if err != nil {
		// Entra's refusal: the answer to the question asked, in the
		// words the CLI prints (never a secret: the identity's errors
		// carry none).
		out.Error = err.Error()
	}
	return &connectionTestOutput{Body: out}, nil
}

// ---- audit

type listAuditInput struct {
	Org       string    `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Cursor    string    `query:"cursor" maxLength:"32" doc:"next_cursor of the previous page, unchanged (a sequence number); absent for the first page."`
	Limit     int       `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size."`
	Order     string    `query:"order" enum:"oldest,newest" default:"oldest" doc:"oldest first (sequence order) or newest first."`
	Since     time.Time `query:"since" doc:"Keep records at or after this time (RFC 3339)."`
	Until     time.Time `query:"until" doc:"Keep records before this time (RFC 3339)."`
	ActorKind string    `query:"actor_kind" enum:"user,token,system" doc:"Keep one kind of actor."`
	Actor     string    `query:"actor" maxLength:"256" doc:"Keep one actor, by id (cli, rotor, an app id, apikey:ID)."`
	Action    string    `query:"action" maxLength:"64" doc:"Keep one action: sync, rotate, retire, move-target, manage-api-keys, sign-in, sign-out, rotation.step."`
	Object    string    `query:"object" maxLength:"512" doc:"Keep one object as recorded: application:REF, run:ID, inventory, api-key:ID."`
	Run       string    `query:"run" maxLength:"128" doc:"Keep the records of one run (its steps and the calls that named it)."`
}

type auditOutput struct{ Body AuditList }

func (a *API) listAudit(ctx context.Context, in *listAuditInput) (*auditOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	f := app.AuditFilter{Since: in.Since, Until: in.Until, ActorKind: app.ActorKind(in.ActorKind), Actor: in.Actor, Action: in.Action,
		Object: in.Object, Run: in.Run, Newest: in.Order == "newest", Limit: in.Limit}
	if in.Cursor != "" {
		var seq int64
		if err := decodeSeq(in.Cursor, &seq); err != nil {
			return nil, newProblem(http.StatusBadRequest, string(app.ClassInvalid), "cursor: is not a cursor of this listing (pass next_cursor back unchanged)")
		}
		if f.Newest {
			f.Before = seq
		} else {
			f.After = seq
		}
	}
	recs, err := a.app.AuditList(ctx, scope, f)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &auditOutput{Body: AuditList{Items: make([]AuditRecord, 0, len(recs))}}
	for _, r := range recs {
		out.Body.Items = append(out.Body.Items, auditRecordOf(r))
	}
	if len(recs) == in.Limit && len(recs) > 0 {
		out.Body.NextCursor = encodeSeq(recs[len(recs)-1].Seq)
	}
	return out, nil
}

type verifyAuditInput struct {
	Org    string   `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Anchor []string `query:"anchor" maxItems:"100" doc:"Heads kept earlier where rotor cannot write, SEQ:HASH (repeat for several): each record they name must still have their hash."`
}

type verifyAuditOutput struct{ Body AuditVerification }

func (a *API) verifyAudit(ctx context.Context, in *verifyAuditInput) (*verifyAuditOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	var opts app.AuditVerifyOptions
	for _, s := range in.Anchor {
		h, err := audit.ParseHead(s)
		if err != nil {
			return nil, newProblem(http.StatusBadRequest, string(app.ClassInvalid), "anchor: "+err.Error())
		}
		opts.Anchors = append(opts.Anchors, h)
	}
	res, err := a.app.AuditVerify(ctx, scope, opts)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &verifyAuditOutput{Body: verificationOf(res)}, nil
}

// ---- API keys

type apiKeysOutput struct{ Body APIKeyList }

func (a *API) listKeys(ctx context.Context, in *orgInput) (*apiKeysOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	list, err := a.app.ListAPIKeys(ctx, scope)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &apiKeysOutput{Body: APIKeyList{Items: make([]APIKey, 0, len(list))}}
	for _, k := range list {
		out.Body.Items = append(out.Body.Items, apiKeyOf(k))
	}
	return out, nil
}

// NewAPIKey is what creating a key takes.
type NewAPIKey struct {
	Name    string `json:"name" minLength:"1" maxLength:"100" doc:"What the key is for (ci-deploy)."`
	Role    string `json:"role" enum:"viewer,operator,admin" doc:"What the key may do in the organization."`
	Expires string `json:"expires,omitempty" maxLength:"32" doc:"How long it works: a duration from 1h to 730d (default 90d)."`
}

type createKeyInput struct {
	Org  string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Body NewAPIKey
}

type createKeyOutput struct{ Body APIKeyCreated }

func (a *API) createKey(ctx context.Context, in *createKeyInput) (*createKeyOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	req := app.NewAPIKey{Name: in.Body.Name, Role: app.Role(in.Body.Role)}
	if in.Body.Expires != "" {
		d, err := config.ParseDuration(in.Body.Expires)
		if err != nil || d <= 0 {
			return nil, newProblem(http.StatusBadRequest, string(app.ClassInvalid), "expires: "+`"`+clipRef(in.Body.Expires)+`" is not a duration such as 30d`)
		}
		req.Lifetime = d
	}
	k, err := a.app.CreateAPIKey(ctx, scope, req)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &createKeyOutput{Body: APIKeyCreated{APIKey: apiKeyOf(k.APIKeyRow), Key: k.Key.Reveal()}}, nil
}

type keyInput struct {
	Org string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	ID  string `path:"id" maxLength:"64" doc:"The key's id, as the listing shows it."`
}

func (a *API) revokeKey(ctx context.Context, in *keyInput) (*struct{}, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	if err := a.app.RevokeAPIKey(ctx, scope, in.ID); err != nil {
		return nil, a.fail(ctx, err)
	}
	return nil, nil
}

// The audit trail's cursor is the last sequence number of the page.
func encodeSeq(seq int64) string { return strconv.FormatInt(seq, 10) }

func decodeSeq(s string, seq *int64) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return errors.New("not a sequence number")
	}
	*seq = n
	return nil
}
