// Package api is rotor's REST API under /api/v1: the routes, their
// request and response types, and the OpenAPI 3.1 document generated from
// those types by huma (served at /api/v1/openapi.json), so the document
// cannot drift from what the handlers do. Every route calls the
// application layer (internal/app) and nothing else; every route but the
// document is behind internal/auth's bearer middleware and rate limit;
// every error is an RFC 9457 problem (application/problem+json).
//
// Routes are under /api/v1/orgs/{org}/…: a caller names the organization
// it acts in, and one that holds no role there is answered 404, exactly as
// for an organization that does not exist (docs/adr/0022-rest-api.md).
package api

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// DocumentPath is the OpenAPI document's path: public, it holds no data.
const DocumentPath = Prefix + "/openapi.json"

// Service is what the API calls: the application layer's use cases
// (*app.Service), nothing below it.
type Service interface {
	ListApplicationsPage(ctx context.Context, scope app.Scope, f app.ApplicationFilter, req app.ApplicationPageRequest) (*app.ApplicationPage, error)
	GetApplication(ctx context.Context, scope app.Scope, ref string) (*app.ApplicationDetail, error)
	Explain(ctx context.Context, scope app.Scope, ref string) (*app.Explanation, error)
	Targets(ctx context.Context, scope app.Scope, ref string) (*app.ApplicationTargets, error)
	DuePageOf(ctx context.Context, scope app.Scope, req app.DuePageRequest) (*app.DuePage, error)
	Enqueue(ctx context.Context, scope app.Scope, ref string) (app.EnqueueResult, error)
	ListRunsPage(ctx context.Context, scope app.Scope, f app.RunFilter, req app.RunPageRequest) (*app.RunPage, error)
	GetRun(ctx context.Context, scope app.Scope, id string) (*domain.Run, error)
	Retire(ctx context.Context, scope app.Scope, runID string) error
	ListPolicies(ctx context.Context, scope app.Scope) ([]app.PolicyRow, error)
	GetPolicy(ctx context.Context, scope app.Scope, name string) (*app.PolicyRow, error)
	ListConnections(ctx context.Context, scope app.Scope) ([]app.Connection, error)
	GetConnection(ctx context.Context, scope app.Scope, name string) (*app.Connection, error)
	TestConnection(ctx context.Context, scope app.Scope, name string) (app.SignIn, error)
	AuditList(ctx context.Context, scope app.Scope, f app.AuditFilter) ([]audit.Record, error)
	AuditVerify(ctx context.Context, scope app.Scope, opts app.AuditVerifyOptions) (audit.Result, error)
	CreateAPIKey(ctx context.Context, scope app.Scope, req app.NewAPIKey) (*app.CreatedAPIKey, error)
	ListAPIKeys(ctx context.Context, scope app.Scope) ([]app.APIKeyRow, error)
	RevokeAPIKey(ctx context.Context, scope app.Scope, id string) error
	MoveTarget(ctx context.Context, scope app.Scope, ref string, index int) (rotation.TargetView, error)
	ListVaults(ctx context.Context, scope app.Scope, connection string) ([]app.Vault, error)
	ListVaultSecrets(ctx context.Context, scope app.Scope, connection, vaultURL string) ([]app.VaultSecret, error)
	GetApplicationSettings(ctx context.Context, scope app.Scope, ref string) (*app.SettingsView, error)
	UpdateApplicationSettings(ctx context.Context, scope app.Scope, ref string, in app.ApplicationSettings) (*app.SettingsView, error)
	TestSinks(ctx context.Context, scope app.Scope, ref string) (*app.SinkTests, error)
	DiscoverSink(ctx context.Context, scope app.Scope, req app.DiscoverSinkRequest) (*app.SinkChoices, error)
}

var _ Service = (*app.Service)(nil)

// Options are what an API is built from.
type Options struct {
	// App is the application layer.
	App Service
	// Auth authenticates every request but the document's; required.
	Auth *auth.Authenticator
	// Limiter limits each caller's rate; nil: no limit.
	Limiter *auth.Limiter
	// Logger receives the errors the API answered 500 for (the client is
	// told only the request id). Nil discards.
	Logger *slog.Logger
	// Version is rotor's version, the document's info.version.
	Version string
	// Login is how the CLI signs people in (LoginConfigPath); nil: it
	// cannot, and the route says so.
	Login *LoginConfig
}

// API is rotor's REST API: a handler for everything under Prefix.
type API struct {
	app     Service
	log     *slog.Logger
	huma    huma.API
	mux     *recordingMux
	handler http.Handler
}

// New builds the API and its OpenAPI document.
func New(o Options) *API {
	if o.App == nil || o.Auth == nil {
		panic("api.New: App and Auth are required")
	}
	useProblems()
	a := &API{app: o.App, log: cmp.Or(o.Logger, slog.New(slog.DiscardHandler)), mux: &recordingMux{ServeMux: http.NewServeMux()}}
	cfg := huma.DefaultConfig("rotor", cmp.Or(o.Version, "dev"))
	// No docs page (it loads scripts from a CDN), no schema links or
	// $schema members in bodies: the document is the one description.
	cfg.DocsPath, cfg.SchemasPath, cfg.CreateHooks = "", "", nil
	cfg.OpenAPIPath = strings.TrimSuffix(DocumentPath, ".json")
	cfg.Info.Description = "Rotate Microsoft Entra ID application secrets. Every route but this document needs " +
		"`Authorization: Bearer` with an Entra access token for rotor's API or a rotor API key; errors are RFC 9457 problems."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "An Entra ID access token issued to a client application for rotor's API (client credentials), or a rotor API key (rtr_…)."},
	}
	cfg.Security = []map[string][]string{{"bearer": {}}}
	a.huma = humago.New(a.mux, cfg)
	a.routes()
	a.loginRoute(o.Login)
	// Anything else under the prefix: a problem, not the mux's text.
	a.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "not_found", "no such route: see "+DocumentPath)
	})

	var inner http.Handler = a.mux
	if o.Limiter != nil {
		inner = o.Limiter.Middleware(inner)
	}
	protected := o.Auth.Middleware(inner)
	a.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = withRequestID(w, r)
		w.Header().Set("Cache-Control", "no-store")
		if (r.URL.Path == DocumentPath || r.URL.Path == LoginConfigPath) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			a.mux.ServeHTTP(w, r)
			return
		}
		protected.ServeHTTP(w, r)
	})
	return a
}

// Handler serves everything under Prefix.
func (a *API) Handler() http.Handler { return a.handler }

// OpenAPI returns the document.
func (a *API) OpenAPI() *huma.OpenAPI { return a.huma.OpenAPI() }

// Routes lists every pattern registered on the API's mux ("GET
// /api/v1/orgs/{org}/applications"), in registration order: what a test
// holds the document to.
func (a *API) Routes() []string { return slices.Clone(a.mux.patterns) }

// recordingMux is a ServeMux that remembers its patterns.
type recordingMux struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
}

func (m *recordingMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.mu.Lock()
	m.patterns = append(m.patterns, pattern)
	m.mu.Unlock()
	m.ServeMux.HandleFunc(pattern, h)
}

type requestIDKey struct{}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// withRequestID gives the request its id: the caller's X-Request-ID when it
// is a short token (it goes into the audit trail), a new UUID otherwise;
// the response carries it.
func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get("X-Request-ID")
	if !requestIDPattern.MatchString(id) {
		id = uuid.NewString()
	}
	w.Header().Set("X-Request-ID", id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// scope is the scope of a call in org on behalf of the request's
// principal. An organization the principal holds no role in is answered
// 404, as one that does not exist: a member of one organization learns
// nothing of another's, not even that it exists.
func (a *API) scope(ctx context.Context, org string) (app.Scope, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return app.Scope{}, newProblem(http.StatusUnauthorized, "unauthenticated", "a bearer token or API key is required")
	}
	if _, ok := p.Role(domain.OrgID(org)); !ok {
		return app.Scope{}, newProblem(http.StatusNotFound, string(app.ClassNotFound), `no organization "`+clipRef(org)+`"`)
	}
	return p.Scope(domain.OrgID(org), requestID(ctx)), nil
}

// fail turns a use case's error into the problem the client gets: the
// status and class the error carries, and its message for a client
// error (rotor's own words, never a secret); a server error says only
// that it happened and the request id, and is logged.
func (a *API) fail(ctx context.Context, err error) error {
	status := app.HTTPStatus(err)
	class := string(app.Classify(err))
	if status >= 500 && status != http.StatusNotImplemented {
		a.log.LogAttrs(ctx, slog.LevelError, "api request failed", slog.String("request_id", requestID(ctx)),
			slog.String("class", class), slog.String("error", err.Error()))
		if errors.Is(err, context.Canceled) {
			return newProblem(499, string(app.ClassCanceled), "the request was cancelled")
		}
		return newProblem(status, cmp.Or(class, string(app.ClassInternal)), "rotor could not complete the request; the log has its request id "+requestID(ctx))
	}
	return newProblem(status, class, err.Error())
}

// clipRef bounds what a problem echoes of a caller's reference.
func clipRef(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
