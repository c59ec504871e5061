package signin

import (
	"cmp"
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/web/breakglass"
	"github.com/rotor-dev/rotor/internal/web/csrf"
	"github.com/rotor-dev/rotor/internal/web/session"
)

// Paths Handler serves (the callback's is the redirect URL's path).
const (
	LoginPath      = "/login"
	LocalLoginPath = "/login/local"
	LogoutPath     = "/logout"
)

// Options configure a Handler.
type Options struct {
	// Entra signs people in with Entra ID; nil: no Entra sign-in.
	Entra *RelyingParty
	// Local checks the break-glass admin's password; nil: no form.
	Local *breakglass.Authenticator
	// Sessions starts and ends sessions. Required.
	Sessions *session.Manager
	// DefaultOrg is the organization a sign-in lands in when it names
	// none and the person holds roles in several (else the first by id).
	DefaultOrg domain.OrgID
	// Logger receives one line per sign-in, refusal and sign-out (who,
	// how, the reason; never a token, code or password).
	Logger *slog.Logger
	// Auditor is told every sign-in and sign-out, and every refused
	// break-glass password, with the person as the actor: the server
	// passes the audit trail's. Nil: the log only.
	Auditor app.Auditor
	// Clock stamps the audit events (default the real clock).
	Clock clock.Clock
	// OwnedAppsOnly says whether an organization shows its members only
	// the applications they own in Entra (its owned_apps_only setting,
	// read at each sign-in). When it does, an Entra sign-in of anyone but
	// an Admin reads their owned applications from Graph with their own
	// token and the session keeps the ids (docs/adr/0030). Nil: no
	// organization does.
	OwnedAppsOnly func(ctx context.Context, org domain.OrgID) (bool, error)
}

// Handler serves sign-in and sign-out. Mount it inside the session
// middleware and the CSRF middleware:
//
//	mux := http.NewServeMux()
//	h.Register(mux)
//	srv := sessions.Middleware(protector.Handler(mux))
type Handler struct {
	o   Options
	log *slog.Logger
}

// NewHandler returns a Handler.
func NewHandler(o Options) (*Handler, error) {
	if o.Sessions == nil {
		return nil, errors.New("signin: a session manager is required")
	}
	if o.Entra == nil && o.Local == nil {
		return nil, errors.New("signin: neither Entra sign-in nor the break-glass admin is set up")
	}
	o.Clock = cmp.Or[clock.Clock](o.Clock, clock.Real{})
	return &Handler{o: o, log: cmp.Or(o.Logger, slog.New(slog.DiscardHandler))}, nil
}

// audit records a sign-in or sign-out of actor in org. It never fails the
// request: the auditor logs its own failures.
func (h *Handler) audit(r *http.Request, org domain.OrgID, actor app.Actor, action app.Action, outcome app.Outcome) {
	if h.o.Auditor == nil || org == "" {
		return
	}
	e := app.Event{At: h.o.Clock.Now().UTC(), Org: org, Actor: actor, Action: action, Object: app.ObjectSession,
		Outcome: outcome, RequestID: r.Header.Get("X-Request-ID")}
	if outcome == app.OutcomeDenied {
		e.Error = app.ClassDenied
	}
	h.o.Auditor.Record(context.WithoutCancel(r.Context()), e)
}

// Register adds the routes: GET /login (starts Entra's sign-in, or shows
// the break-glass form when Entra is not set up), GET on the redirect
// URL's path (the callback), GET and POST /login/local (the break-glass
// admin), POST /logout.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+LoginPath, h.login)
	if h.o.Entra != nil {
		mux.HandleFunc("GET "+h.o.Entra.CallbackPath(), h.callback)
	}
	if h.o.Local != nil {
		mux.HandleFunc("GET "+LocalLoginPath, h.localForm)
		mux.HandleFunc("POST "+LocalLoginPath, h.localLogin)
	}
	mux.HandleFunc("POST "+LogoutPath, h.logout)
}

func returnTo(r *http.Request) string {
	if p, ok := session.LocalPath(r.FormValue("return_to")); ok {
		return p
	}
	return "/"
}

func orgParam(r *http.Request) (domain.OrgID, bool) {
	o := r.FormValue("org")
	if o == "" {
		return "", true
	}
	return domain.OrgID(o), orgPattern.MatchString(o)
}

// login starts Entra's sign-in: GET /login?org=…&return_to=….
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if r.FormValue("signed_out") != "" {
		// Not straight back to Entra: its own session would sign the
		// person in again at once, and sign-out would seem not to work.
		h.page(w, r, http.StatusOK, pageData{Title: "Signed out", Retry: true})
		return
	}
	if h.o.Entra == nil {
		http.Redirect(w, r, LocalLoginPath+"?"+r.URL.RawQuery, http.StatusSeeOther)
		return
	}
	org, ok := orgParam(r)
	if !ok {
		h.page(w, r, http.StatusBadRequest, pageData{Title: "Sign-in failed", Error: "That is not an organization id."})
		return
	}
	target, err := h.o.Entra.start(w, org, returnTo(r))
	if err != nil {
		h.log.Error("sign-in could not start", "err", err)
		h.page(w, r, http.StatusInternalServerError, pageData{Title: "Sign-in failed", Error: "rotor could not start the sign-in."})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// callback finishes Entra's sign-in and starts the session.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	person, err := h.o.Entra.finish(w, r)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	org, role, ok := h.pickOrg(person)
	if !ok {
		h.log.Info("sign-in refused", "reason", ReasonNoRole, "user", person.ObjectID, "tenant", person.TenantID, "org", person.Org)
		msg := "You signed in as " + person.Username + ", but no rotor role is granted to you"
		if person.Org != "" {
			msg += " in organization " + string(person.Org)
		}
		h.page(w, r, http.StatusForbidden, pageData{Title: "No access", Error: msg + ". Ask an administrator to assign you an app role or a group."})
		return
	}
	id := session.Identity{Org: org, Method: session.MethodEntra, Subject: person.ObjectID,
		TenantID: person.TenantID, Name: person.Name, Username: person.Username, Role: role}
	if !h.restrict(w, r, person, &id) {
		return
	}
	s, err := h.o.Sessions.Start(w, r, id)
	if err != nil {
		h.refuse(w, r, &CallbackError{Reason: ReasonUnavailable, Status: http.StatusServiceUnavailable,
			Message: "rotor could not start your session. Try again shortly.", Err: err})
		return
	}
	h.log.Info("signed in", "method", session.MethodEntra, "user", person.ObjectID, "tenant", person.TenantID,
		"org", org, "role", role, "groups_from_graph", person.Overage, "owned_apps_only", id.OwnedOnly, "owned_apps", len(id.OwnedApps))
	h.audit(r, org, s.Actor(), app.ActionSignIn, app.OutcomeOK)
	// A page, not a redirect: the navigation it starts is same-site, so
	// it carries the new SameSite=Strict session cookie.
	session.WriteContinue(w, person.ReturnTo, "Signed in.")
}

// restrict applies the organization's owned_apps_only setting to a
// sign-in: for anyone but an Admin, when the setting is on, the
// applications the person owns are read from Graph with their delegated
// token and kept with the session (the ids, never the token). When Graph
// cannot say, the sign-in fails with a page that says so: "owns
// nothing" would be a silent lie, and "sees everything" a leak. It
// reports whether the sign-in may go on (false: the page is written).
func (h *Handler) restrict(w http.ResponseWriter, r *http.Request, p *Person, id *session.Identity) bool {
	if h.o.OwnedAppsOnly == nil || id.Role == app.RoleAdmin {
		return true
	}
	only, err := h.o.OwnedAppsOnly(r.Context(), id.Org)
	if err != nil {
		h.refuse(w, r, &CallbackError{Reason: ReasonUnavailable, Status: http.StatusServiceUnavailable,
			Message: "rotor could not read your organization's settings. Try again shortly.", Err: err})
		return false
	}
	if !only {
		return true
	}
	ids, err := p.ownedApps(r.Context())
	if err != nil {
		attrs := []any{"reason", ReasonOwnedApps, "user", p.ObjectID, "tenant", p.TenantID, "org", id.Org, "err", err}
		var ge *GraphError
		if errors.As(err, &ge) {
			attrs = append(attrs, "graph_status", ge.Status)
		}
		h.log.Warn("sign-in refused", attrs...)
		h.page(w, r, http.StatusBadGateway, pageData{Title: "Sign-in failed", Retry: true,
			Error: "Organization " + string(id.Org) + " shows you only the applications you own in Entra ID, and rotor could not read them from Microsoft Graph. Try again shortly; if it keeps failing, ask an administrator."})
		return false
	}
	if len(ids) > store.MaxOwnedObjectIDs {
		ids = ids[:store.MaxOwnedObjectIDs]
	}
	id.OwnedOnly, id.OwnedApps = true, ids
	return true
}

// pickOrg chooses the session's organization: the one the sign-in asked
// for, else DefaultOrg, else the first by id the person holds a role in.
func (h *Handler) pickOrg(p *Person) (domain.OrgID, app.Role, bool) {
	if p.Org != "" {
		r, ok := p.Roles[p.Org]
		return p.Org, r, ok
	}
	if r, ok := p.Roles[h.o.DefaultOrg]; ok {
		return h.o.DefaultOrg, r, true
	}
	orgs := make([]domain.OrgID, 0, len(p.Roles))
	for o := range p.Roles {
		orgs = append(orgs, o)
	}
	if len(orgs) == 0 {
		return "", "", false
	}
	slices.Sort(orgs)
	return orgs[0], p.Roles[orgs[0]], true
}

func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var ce *CallbackError
	if !errors.As(err, &ce) {
		ce = &CallbackError{Reason: ReasonUnavailable, Status: http.StatusInternalServerError, Message: "Sign-in failed.", Err: err}
	}
	attrs := []any{"reason", ce.Reason, "status", ce.Status}
	if ce.Err != nil {
		attrs = append(attrs, "err", ce.Err)
	}
	h.log.Info("sign-in refused", attrs...)
	h.page(w, r, ce.Status, pageData{Title: "Sign-in failed", Error: ce.Message, Retry: true})
}

// localForm is GET /login/local: the break-glass admin's form.
func (h *Handler) localForm(w http.ResponseWriter, r *http.Request) {
	org, _ := orgParam(r)
	h.page(w, r, http.StatusOK, pageData{Title: "Break-glass sign-in", Local: true,
		Org: string(cmp.Or(org, h.o.DefaultOrg)), ReturnTo: returnTo(r)})
}

// localLogin is POST /login/local (behind the CSRF middleware).
func (h *Handler) localLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	org, ok := orgParam(r)
	org = cmp.Or(org, h.o.DefaultOrg)
	data := pageData{Title: "Break-glass sign-in", Local: true, Org: string(org), ReturnTo: returnTo(r)}
	if !ok || org == "" {
		data.Error = "Name the organization."
		h.page(w, r, http.StatusBadRequest, data)
		return
	}
	addr := clientAddr(r)
	_, err := h.o.Local.Authenticate(r.Context(), org, r.PostFormValue("password"), addr)
	var rl *breakglass.RateLimitedError
	var locked *breakglass.LockedError
	switch {
	case err == nil:
	case errors.As(err, &rl):
		h.log.Info("break-glass sign-in refused", "reason", "rate_limited", "org", org, "addr", addr)
		w.Header().Set("Retry-After", strconv.Itoa(int((rl.RetryAfter+time.Second-1)/time.Second)))
		data.Error = "Too many attempts from your address. Wait a minute and try again."
		h.page(w, r, http.StatusTooManyRequests, data)
		return
	case errors.As(err, &locked):
		h.log.Warn("break-glass sign-in refused", "reason", "locked", "org", org, "addr", addr, "until", locked.Until)
		data.Error = "Too many failed sign-ins: the break-glass admin is locked until " + locked.Until.UTC().Format("15:04 MST") + "."
		h.page(w, r, http.StatusTooManyRequests, data)
		return
	case errors.Is(err, breakglass.ErrRefused):
		h.log.Warn("break-glass sign-in refused", "reason", "wrong_password", "org", org, "addr", addr)
		h.audit(r, org, breakglassActor, app.ActionSignIn, app.OutcomeDenied)
		data.Error = "Wrong password."
		h.page(w, r, http.StatusUnauthorized, data)
		return
	default:
		h.log.Error("break-glass sign-in failed", "org", org, "err", err)
		data.Error = "rotor cannot check the password right now."
		h.page(w, r, http.StatusServiceUnavailable, data)
		return
	}
	s, err := h.o.Sessions.Start(w, r, session.Identity{Org: org, Method: session.MethodLocal, Subject: breakglass.Name,
		Name: "break-glass admin", Username: breakglass.Name, Role: app.RoleAdmin})
	if err != nil {
		h.log.Error("break-glass session could not start", "org", org, "err", err)
		data.Error = "rotor could not start your session."
		h.page(w, r, http.StatusServiceUnavailable, data)
		return
	}
	h.log.Warn("signed in", "method", session.MethodLocal, "org", org, "addr", addr)
	h.audit(r, org, s.Actor(), app.ActionSignIn, app.OutcomeOK)
	http.Redirect(w, r, data.ReturnTo, http.StatusSeeOther)
}

// logout is POST /logout: the session's row is deleted and the cookie
// cleared. The person stays signed in to Entra (other applications share
// that), but rotor's session is gone.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	s, had := session.FromContext(r.Context())
	if err := h.o.Sessions.End(w, r); err != nil {
		h.log.Error("sign-out failed", "err", err)
		http.Error(w, "rotor could not end your session; try again.", http.StatusServiceUnavailable)
		return
	}
	if had {
		h.log.Info("signed out", "actor", s.Actor().String(), "org", s.Org)
		h.audit(r, s.Org, s.Actor(), app.ActionSignOut, app.OutcomeOK)
	}
	http.Redirect(w, r, LoginPath+"?signed_out=1", http.StatusSeeOther)
}

// clientAddr is the client's IP address as the connection shows it. A
// proxy in front must not be trusted to say otherwise here: the rate
// limit is a second line behind the account lock, not the only one.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type pageData struct {
	Title, Error    string
	Local, Retry    bool
	Org, ReturnTo   string
	CSRFField       template.HTML
	LoginPath, Self string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · rotor</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>{{.Title}}</h1>
{{if .Error}}<p role="alert" id="error">{{.Error}}</p>{{end}}
{{if .Local}}<form method="post" action="{{.Self}}" id="local">
{{.CSRFField}}
<input type="hidden" name="return_to" value="{{.ReturnTo}}">
<label>Organization <input name="org" value="{{.Org}}" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button></form>{{end}}
{{if .Retry}}<p><a href="{{.LoginPath}}" id="again">Sign in again</a></p>{{end}}
</main></body></html>
`))

func (h *Handler) page(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	d.CSRFField, d.LoginPath, d.Self = csrf.Field(r), LoginPath, LocalLoginPath
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

// breakglassActor is the break-glass admin as the audit trail names it
// (session.Session.Actor's), for refused passwords: no session exists.
var breakglassActor = (&session.Session{Identity: session.Identity{Method: session.MethodLocal, Subject: breakglass.Name}}).Actor()
