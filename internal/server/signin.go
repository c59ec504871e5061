package server

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/web/breakglass"
	"github.com/rotor-dev/rotor/internal/web/csrf"
	"github.com/rotor-dev/rotor/internal/web/session"
	"github.com/rotor-dev/rotor/internal/web/signin"
	"github.com/rotor-dev/rotor/internal/web/ui"
)

// UIPath is where the UI lives: internal/web/ui's pages, the dashboard at
// UIPath itself.
const UIPath = "/ui/"

// newSessions builds the session manager of sign_in (nil without it). It
// needs no network, so it is built with the rest of rotor: the job
// system's sweep uses it before the listener opens.
func (s *Server) newSessions() (*session.Manager, error) {
	si := s.cfg.SignIn
	if si == nil {
		return nil, nil
	}
	m, err := session.New(session.Config{
		Store: s.store, Clock: s.clock, Lifetime: si.SessionLifetime, Insecure: si.Entra.Insecure(), Logger: s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("sign_in: %w", err)
	}
	return m, nil
}

// roleMap is sign_in.entra.roles as internal/web/signin's bindings.
func roleMap(roles []config.SignInRole) signin.RoleMap {
	m := make(signin.RoleMap, 0, len(roles))
	for _, r := range roles {
		m = append(m, signin.RoleBinding{AppRole: r.AppRole, Group: r.Group, Organization: domain.OrgID(r.Organization), Role: app.Role(r.Role)})
	}
	return m
}

// relyingParty builds the Entra relying party of sign_in.entra: the client
// secret resolved (a Key Vault reference with the host identity), the
// tenant's discovery document read now (rotor does not start with a
// sign-in that cannot work).
func (s *Server) relyingParty(ctx context.Context, e config.SignInEntra) (*signin.RelyingParty, error) {
	client := &http.Client{Timeout: discoveryTimeout}
	authority, graphURL := e.Authority, e.GraphURL
	if e.Cloud == azure.Sim {
		ep, err := azure.ResolveEndpoints(azure.Sim, e.SimFile)
		if err != nil {
			return nil, fmt.Errorf("sign_in.entra.sim_file: %w", err)
		}
		hc := *ep.HTTPClient
		hc.Timeout = discoveryTimeout
		client = &hc
		authority, graphURL = cmp.Or(authority, ep.AuthorityHost), cmp.Or(graphURL, ep.GraphURL)
	}
	secret, err := e.ClientSecret.Resolve(ctx, s.secrets)
	if err != nil {
		return nil, fmt.Errorf("sign_in.entra.client_secret: %w", err)
	}
	rp, err := signin.NewRelyingParty(ctx, signin.EntraConfig{
		Authority: authority, Tenant: e.Tenant, ClientID: e.ClientID, ClientSecret: secret,
		RedirectURL: e.RedirectURL, GraphURL: graphURL, Roles: roleMap(e.Roles),
	}, signin.WithHTTPClient(client), signin.WithClock(s.clock), signin.WithLogger(s.log))
	if err != nil {
		return nil, fmt.Errorf("sign_in: %w", err)
	}
	return rp, nil
}

// signInHandler is people's half of the listener (docs/sign-in.md): the
// sign-in routes (/login, the callback, /login/local, POST /logout) and
// the pages under /ui/, inside the session and CSRF middlewares. It
// reads Entra's discovery document, and gives every organization that no
// binding makes anyone admin of its break-glass admin, printing the
// password once to the console. It returns the paths to route to it.
func (s *Server) signInHandler(ctx context.Context) (http.Handler, []string, error) {
	si := s.cfg.SignIn
	rp, err := s.relyingParty(ctx, si.Entra)
	if err != nil {
		return nil, nil, err
	}
	h, err := signin.NewHandler(signin.Options{
		Entra: rp, Sessions: s.sessions, DefaultOrg: s.cfg.Organization, Logger: s.log,
		Local:   &breakglass.Authenticator{Store: s.store, Clock: s.clock},
		Auditor: s.auditor(), Clock: s.clock,
		OwnedAppsOnly: func(ctx context.Context, org domain.OrgID) (bool, error) {
			set, err := s.store.GetOrgSettings(ctx, org)
			if err != nil {
				return false, err
			}
			return set.OwnedAppsOnly, nil
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sign_in: %w", err)
	}
	if err := s.ensureBreakGlass(ctx, rp.Roles(), si.Entra.PublicURL()+signin.LocalLoginPath); err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	h.Register(mux)
	// The pages (internal/web/ui; /ui/ itself is the dashboard) read through the application layer as
	// the signed-in person, in the session's organization.
	pages := session.Require(app.RoleViewer, signin.LoginPath, ui.New(ui.Deps{
		App: s.app, Scope: sessionScope, Base: strings.TrimSuffix(UIPath, "/"), Clock: s.clock, Logger: s.log,
		Who: sessionWho, LogoutPath: signin.LogoutPath, CSRFField: csrf.Field,
		Alive: func(r *http.Request) bool { _, err := s.sessions.Load(r); return err == nil }, RoleMappings: uiRoleMappings(si.Entra.Roles),
		SinkTypes: s.SinkTypes(),
	}))
	mux.Handle("GET "+UIPath, pages)
	mux.Handle("POST "+UIPath, pages)
	protector := csrf.New(csrf.Options{Binding: session.Binding, Insecure: si.Entra.Insecure()})
	paths := []string{signin.LoginPath, signin.LocalLoginPath, signin.LogoutPath, rp.CallbackPath(), UIPath}
	return s.sessions.Middleware(protector.Handler(mux)), paths, nil
}

// uiRoleMappings is sign_in.entra.roles as the settings page shows them.
func uiRoleMappings(roles []config.SignInRole) []ui.RoleMapping {
	out := make([]ui.RoleMapping, 0, len(roles))
	for _, r := range roles {
		out = append(out, ui.RoleMapping{AppRole: r.AppRole, Group: r.Group, Organization: r.Organization, Role: app.Role(r.Role)})
	}
	return out
}

// ensureBreakGlass makes the break-glass admin of every organization no
// binding makes anyone admin of (breakglass.Ensure prints its password
// once, to the console: Options.Console, stderr by default).
func (s *Server) ensureBreakGlass(ctx context.Context, roles signin.RoleMap, loginURL string) error {
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return fmt.Errorf("sign_in: break-glass admins: %w", err)
	}
	out := s.opts.Console
	if out == nil {
		out = os.Stderr
	}
	for _, o := range orgs {
		if roles.GrantsAdmin(o.ID) {
			continue
		}
		made, err := breakglass.Ensure(ctx, s.store, o.ID, s.clock, out, loginURL)
		if err != nil {
			return fmt.Errorf("sign_in: organization %s: %w", o.ID, err)
		}
		if made {
			// The log says it happened, never the password.
			s.log.Warn("break-glass admin made: its password was printed to the console once", "org", o.ID, "login", loginURL)
		}
	}
	return nil
}

// sessionScope is the request's use-case scope: the signed-in person in
// the session's organization, restricted to the applications they own
// when the session is (false without a session).
func sessionScope(r *http.Request) (app.Scope, bool) {
	sess, ok := session.FromContext(r.Context())
	if !ok {
		return app.Scope{}, false
	}
	return app.Scope{Org: sess.Org, Actor: sess.Actor(), RequestID: r.Header.Get("X-Request-Id"), Owned: sess.OwnedSet()}, true
}

// sessionWho is the signed-in person as the pages' header shows them.
func sessionWho(r *http.Request) (ui.Who, bool) {
	sess, ok := session.FromContext(r.Context())
	if !ok {
		return ui.Who{}, false
	}
	a := sess.Actor()
	return ui.Who{Name: a.Name, Actor: a.String(), Role: sess.Role, Org: string(sess.Org), Until: sess.ExpiresAt}, true
}
