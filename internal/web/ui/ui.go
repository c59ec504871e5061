// Package ui owns rotor's web pages: server-rendered html/template pages
// and their static files (a stylesheet and a vendored htmx), embedded in
// the binary, that read and act only through the application layer
// (internal/app). Every page reads without JavaScript; htmx, when it runs,
// only swaps parts of a page for the same server-rendered HTML
// (ADR 24).
//
// The package does not sign anyone in: it is given a function that says
// which app.Scope a request acts in (internal/web/session's, once mounted)
// and answers 401 when there is none.
package ui

import (
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Service is the part of the application layer the pages call.
// *app.Service implements it.
type Service interface {
	ListApplicationsPage(ctx context.Context, scope app.Scope, f app.ApplicationFilter, req app.ApplicationPageRequest) (*app.ApplicationPage, error)
	ListConnections(ctx context.Context, scope app.Scope) ([]app.Connection, error)
	Explain(ctx context.Context, scope app.Scope, ref string) (*app.Explanation, error)
	ListRuns(ctx context.Context, scope app.Scope, f app.RunFilter) ([]app.RunRow, error)
	// The rotation pages (runs.go).
	ListRunsPage(ctx context.Context, scope app.Scope, f app.RunFilter, req app.RunPageRequest) (*app.RunPage, error)
	GetRun(ctx context.Context, scope app.Scope, id string) (*domain.Run, error)
	Enqueue(ctx context.Context, scope app.Scope, ref string) (app.EnqueueResult, error)
	LastRunSeq(ctx context.Context, scope app.Scope, ref string) (int64, error)
	NextRun(ctx context.Context, scope app.Scope, ref string, afterSeq int64) (*app.RunRow, error)
	Observe(fn func(run domain.Run, step domain.Step)) (stop func())
	ListVaults(ctx context.Context, scope app.Scope, connection string) ([]app.Vault, error)
	ListVaultSecrets(ctx context.Context, scope app.Scope, connection, vaultURL string) ([]app.VaultSecret, error)
	// The audit log, connections and settings pages (audit.go,
	// connections.go, settings.go).
	AuditList(ctx context.Context, scope app.Scope, f app.AuditFilter) ([]audit.Record, error)
	AuditVerify(ctx context.Context, scope app.Scope, opts app.AuditVerifyOptions) (audit.Result, error)
	AuditExport(ctx context.Context, scope app.Scope, f app.AuditFilter, w io.Writer) (app.AuditExported, error)
	TestConnection(ctx context.Context, scope app.Scope, name string) (app.SignIn, error)
	OrgSettings(ctx context.Context, scope app.Scope) (*app.OrgSettings, error)
	UpdateOrgSettings(ctx context.Context, scope app.Scope, in app.OrgSettingsUpdate) (*app.OrgSettings, error)
	ListAPIKeys(ctx context.Context, scope app.Scope) ([]app.APIKeyRow, error)
	CreateAPIKey(ctx context.Context, scope app.Scope, req app.NewAPIKey) (*app.CreatedAPIKey, error)
	RevokeAPIKey(ctx context.Context, scope app.Scope, id string) error
	GetPolicy(ctx context.Context, scope app.Scope, name string) (*app.PolicyRow, error)
	GetApplicationSettings(ctx context.Context, scope app.Scope, ref string) (*app.SettingsView, error)
	UpdateApplicationSettings(ctx context.Context, scope app.Scope, ref string, in app.ApplicationSettings) (*app.SettingsView, error)
	TestSinks(ctx context.Context, scope app.Scope, ref string) (*app.SinkTests, error)
	Dashboard(ctx context.Context, scope app.Scope) (*app.Dashboard, error)
	// The Sinks page's pickers (sinks.go).
	DiscoverSink(ctx context.Context, scope app.Scope, req app.DiscoverSinkRequest) (*app.SinkChoices, error)
}

var _ Service = (*app.Service)(nil)

// ScopeFunc says which organization and actor a request acts as; false:
// the request is not signed in (the page answers 401).
type ScopeFunc func(*http.Request) (app.Scope, bool)

// Deps are what the UI is built from. App and Scope are required.
type Deps struct {
	App   Service
	Scope ScopeFunc
	// Base is the path the UI is mounted under ("" or "/ui"); every link
	// and route starts with it.
	Base string
	// Who says who is signed in, for every page's header (nil: the
	// header names no one). LogoutPath is where its sign-out form posts.
	Who        func(*http.Request) (Who, bool)
	LogoutPath string
	// CSRFField returns the hidden input every form carries
	// (internal/web/csrf.Field); nil renders none (tests of reading).
	CSRFField func(*http.Request) template.HTML
	// RoleMappings are sign-in's role bindings, every organization's; the
	// settings page shows the session's organization's.
	RoleMappings []RoleMapping
	// Alive says whether the request's session still holds (read again
	// from the store): a long event stream checks it as it goes, so that
	// signing out ends it. Nil: not checked.
	Alive func(*http.Request) bool
	// SinkTypes are the sink kinds rotor has (its registry's), for the
	// Sinks page; none: the page lists none.
	SinkTypes []string
	Clock     clock.Clock
	Logger    *slog.Logger
}

// Who is the signed-in person as the header shows them.
type Who struct {
	Name string
	// Actor is how the audit trail names them (user:<object id>).
	Actor string
	Role  app.Role
	Org   string
	Until time.Time
}

// UI serves the pages. It is an http.Handler, safe for concurrent use.
type UI struct {
	app    Service
	scope  ScopeFunc
	who    func(*http.Request) (Who, bool)
	logout string
	csrf   func(*http.Request) template.HTML
	alive  func(*http.Request) bool
	base   string
	clock  clock.Clock
	log    *slog.Logger
	mux    *http.ServeMux
	pages  map[string]*template.Template
	// roleMappings is Deps.RoleMappings.
	roleMappings []RoleMapping
	// assets are the static files by name, with the URL that names their
	// content (so they can be cached for a year).
	assets map[string]asset
	urls   map[string]string
	// live paces the run pages' event streams (runs.go).
	live liveTimings
	// sinkTypes are Deps.SinkTypes, sorted.
	sinkTypes []string
}

type asset struct {
	body        []byte
	hash        string
	contentType string
}

// ContentSecurityPolicy is sent with every answer: scripts and styles only
// from rotor itself (no inline script, no eval), no frames, forms posting
// only back to rotor.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New builds the UI. A missing App or Scope is a wiring mistake and
// panics.
func New(d Deps) *UI {
	if d.App == nil || d.Scope == nil {
		panic("ui.New: App and Scope are required")
	}
	u := &UI{
		app: d.App, scope: d.Scope, who: d.Who, logout: d.LogoutPath, csrf: d.CSRFField, alive: d.Alive, base: strings.TrimRight(d.Base, "/"),
		roleMappings: d.RoleMappings,
		clock:        cmp.Or[clock.Clock](d.Clock, clock.Real{}), log: cmp.Or(d.Logger, slog.Default()),
		mux: http.NewServeMux(), assets: map[string]asset{}, urls: map[string]string{},
		live: defaultLive, sinkTypes: slices.Sorted(slices.Values(d.SinkTypes)),
	}
	u.loadAssets()
	u.pages = u.parsePages()
	u.mux.HandleFunc("GET "+u.base+"/static/{hash}/{name}", u.static)
	u.mux.HandleFunc("GET "+u.base+"/applications", u.withScope(u.applications))
	u.mux.HandleFunc("GET "+u.base+"/applications/{ref}", u.withScope(u.application))
	u.runRoutes()
	u.mux.HandleFunc("GET "+u.base+"/keyvault", u.withScope(u.kvPage))
	u.mux.HandleFunc("GET "+u.base+"/keyvault/vaults", u.withScope(u.kvVaults))
	u.mux.HandleFunc("GET "+u.base+"/keyvault/secrets", u.withScope(u.kvSecrets))
	u.sinkRoutes()
	u.mux.HandleFunc("GET "+u.base+"/audit", u.withScope(u.audit))
	u.mux.HandleFunc("GET "+u.base+"/audit/export", u.withScope(u.auditExport))
	u.mux.HandleFunc("GET "+u.base+"/connections", u.withScope(u.connections))
	u.mux.HandleFunc("POST "+u.base+"/connections/{name}/test", u.withScope(u.testConnection))
	u.mux.HandleFunc("GET "+u.base+"/settings", u.withScope(u.settings))
	u.mux.HandleFunc("POST "+u.base+"/settings/api-keys", u.withScope(u.createAPIKey))
	u.mux.HandleFunc("POST "+u.base+"/settings/organization", u.withScope(u.saveOrgSettings))
	u.mux.HandleFunc("POST "+u.base+"/settings/api-keys/{id}/revoke", u.withScope(u.revokeAPIKey))
	u.mux.HandleFunc("POST "+u.base+"/applications/{ref}/settings", u.withScope(u.saveSettings))
	u.mux.HandleFunc("POST "+u.base+"/applications/{ref}/sinks/test", u.withScope(u.testSinks))
	u.mux.HandleFunc("GET "+u.base+"/{$}", u.withScope(u.dashboard))
	// Any other path is the UI's own 404 page, with its navigation (not
	// the mux's plain text), for a mistyped or stale link.
	u.mux.HandleFunc("GET "+u.base+"/", u.withScope(func(w http.ResponseWriter, r *http.Request, _ app.Scope) {
		u.errorPage(w, r, http.StatusNotFound, "rotor has no page here. The navigation above leads to every page.")
	}))
	return u
}

// ServeHTTP implements http.Handler.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	u.mux.ServeHTTP(w, r)
}

func (u *UI) loadAssets() {
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := path.Base(p)
		ct := ""
		switch path.Ext(name) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		default:
			return nil // licences and notes are in the source, not served
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a := asset{body: b, hash: hex.EncodeToString(sum[:8]), contentType: ct}
		u.assets[name] = a
		u.urls[name] = u.base + "/static/" + a.hash + "/" + name
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("ui: embedded static files: %v", err)) // they are compiled in
	}
}

// static serves an embedded file. Its URL names its content's hash, so it
// may be cached for a year: a new build's file has a new URL.
func (u *UI) static(w http.ResponseWriter, r *http.Request) {
	a, ok := u.assets[r.PathValue("name")]
	if !ok || a.hash != r.PathValue("hash") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", `"`+a.hash+`"`)
	if r.Header.Get("If-None-Match") == `"`+a.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}

// withScope answers 401 to a request with no scope, and hands the scope on.
func (u *UI) withScope(h func(http.ResponseWriter, *http.Request, app.Scope)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scope, ok := u.scope(r)
		if !ok {
			u.errorPage(w, r, http.StatusUnauthorized, "Sign in to see this page.")
			return
		}
		// Pages hold an organization's inventory: never cached, and the
		// fragment htmx asks for differs from the page at the same URL.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Vary", "HX-Request")
		h(w, r, scope)
	}
}

// layout is what every full page's frame needs.
type layout struct {
	Title  string
	Base   string
	Assets map[string]string
	// Section is the navigation entry the page belongs to (Sections'
	// keys); Nav the entries, in order.
	Section string
	Nav     []navItem
	// Who is the signed-in person (zero Name: none known); Logout and
	// CSRF the sign-out form's action and token field. CSRF is also the
	// field every other form on the page carries.
	Who    Who
	Logout string
	CSRF   template.HTML
}

type navItem struct {
	Key, Label, URL string
}

// Sections are the navigation's entries: key, label, path under the base.
var Sections = []struct{ Key, Label, Path string }{
	{"dashboard", "Dashboard", "/"},
	{"applications", "Applications", "/applications"},
	{"runs", "Rotations", "/runs"},
	{"audit", "Audit log", "/audit"},
	{"connections", "Connections", "/connections"},
	{"sinks", "Sinks", "/sinks"},
	{"settings", "Settings", "/settings"},
}

// frame is the layout of a page of section for r: the navigation, who is
// signed in and the form token.
func (u *UI) frame(r *http.Request, section, title string) layout {
	l := layout{Title: title, Base: u.base, Assets: u.urls, Section: section, Logout: u.logout}
	for _, s := range Sections {
		l.Nav = append(l.Nav, navItem{Key: s.Key, Label: s.Label, URL: u.base + s.Path})
	}
	if u.who != nil {
		if w, ok := u.who(r); ok {
			l.Who = w
		}
	}
	if u.csrf != nil {
		l.CSRF = u.csrf(r)
	}
	return l
}

func (u *UI) parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"date":   func(t time.Time) string { return fmtDate(t) },
		"expiry": func(t, now time.Time) string { return expiry(t, now) },
		// The Key Vault picker's labels (keyvault.go).
		"vaultLabel":  VaultLabel,
		"secretLabel": SecretLabel,
	}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	pages := map[string]*template.Template{}
	for _, p := range []string{"applications", "application", "error", "runs", "run", "live", "keyvault", "sinks", "sinks-kind", "audit", "connections", "settings", "dashboard"} {
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+p+".html"))
		pages[p] = t
	}
	return pages
}

// render executes a page's template (or one of its named blocks) into a
// buffer first, so that a template error is a clean 500, not half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, page, block string, data any) {
	var b strings.Builder
	if err := u.pages[page].ExecuteTemplate(&b, block, data); err != nil {
		u.log.ErrorContext(r.Context(), "ui: render", "page", page, "err", err)
		http.Error(w, "rotor could not render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

type errorView struct {
	layout
	Status  int
	Message string
}

func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	u.render(w, r, status, "error", "layout.html", errorView{layout: u.frame(r, "", http.StatusText(status)), Status: status, Message: msg})
}

// fail answers an app-layer error with its status: its message for a 4xx
// (it is about what the caller asked), only the request's failure for a
// 5xx (the error is logged).
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := app.HTTPStatus(err)
	if status >= 500 {
		u.log.ErrorContext(r.Context(), "ui: request failed", "path", r.URL.Path, "err", err)
		u.errorPage(w, r, status, "rotor could not answer this request; the error is in rotor's log.")
		return
	}
	msg := err.Error()
	var denied *app.DeniedError
	if errors.As(err, &denied) {
		msg = "Your role does not allow this."
	}
	u.errorPage(w, r, status, msg)
}

// fragment reports whether htmx asks for part of a page (and not for a
// whole page to restore its history).
func fragment(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-History-Restore-Request") != "true"
}
