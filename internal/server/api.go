package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/api"
	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
)

// discoveryTimeout bounds each request for an Entra discovery document or
// key set: rotor must not hang at start, nor while a request waits for
// keys.
const discoveryTimeout = 30 * time.Second

// authenticator builds the API's bearer check from api_auth: an Entra
// validator, which reads every configured tenant's discovery documents
// now (rotor does not start unable to check the tokens it was told to
// accept), and rotor's API keys from the store.
func (s *Server) authenticator(ctx context.Context) (*auth.Authenticator, error) {
	a := s.cfg.APIAuth
	authn := &auth.Authenticator{Logger: s.log}
	if a.APIKeys {
		authn.APIKeys = auth.NewAPIKeys(s.store, auth.WithClock(s.clock))
	}
	if e := a.Entra; e != nil {
		ec, client, err := entraConfig(e)
		if err != nil {
			return nil, err
		}
		v, err := auth.NewValidator(ctx, ec, auth.WithHTTPClient(client), auth.WithClock(s.clock), auth.WithLogger(s.log))
		if err != nil {
			return nil, fmt.Errorf("api_auth.entra: %w", err)
		}
		authn.Entra = v
		s.log.Info("api accepts Entra access tokens", "issuers", v.Issuers(), "audiences", v.Audiences())
	}
	return authn, nil
}

// entraConfig is internal/auth's EntraConfig of api_auth.entra, and the
// HTTP client that reaches its authority (the simulator's trusts its CA).
func entraConfig(e *config.EntraSettings) (auth.EntraConfig, *http.Client, error) {
	client := &http.Client{Timeout: discoveryTimeout}
	authority := e.Authority
	if e.Cloud == azure.Sim {
		ep, err := azure.ResolveEndpoints(azure.Sim, e.SimFile)
		if err != nil {
			return auth.EntraConfig{}, nil, fmt.Errorf("api_auth.entra.sim_file: %w", err)
		}
		hc := *ep.HTTPClient
		hc.Timeout = discoveryTimeout
		client = &hc
		if authority == "" {
			authority = ep.AuthorityHost
		}
	}
	ec := auth.EntraConfig{
		Authority: authority, Tenants: e.Tenants, AppIDURI: e.AppIDURI, ClientID: e.ClientID, TokenVersions: e.TokenVersions,
		ClockSkew: e.ClockSkew, KeyRefreshInterval: e.KeyRefreshInterval, KeyMaxAge: e.KeyMaxAge,
		CLIClientID: e.CLIClientID, CLIScope: e.CLIScope,
	}
	for _, r := range e.Roles {
		ec.Roles = append(ec.Roles, auth.RoleBinding{AppRole: r.AppRole, Organization: domain.OrgID(r.Organization), Role: app.Role(r.Role)})
	}
	return ec, client, nil
}

// loginConfig is how 'rotor login' signs people in to this rotor: through
// api_auth.entra's first tenant, as its cli_client_id, for its cli_scope
// of the API (its application ID URI, else its app id). Nil without a
// cli_client_id: the API accepts no user tokens.
func (s *Server) loginConfig() (*api.LoginConfig, error) {
	e := s.cfg.APIAuth.Entra
	if e == nil || e.CLIClientID == "" {
		return nil, nil
	}
	ec, _, err := entraConfig(e)
	if err != nil {
		return nil, err
	}
	authority := ec.Authority
	if authority == "" {
		authority = auth.PublicAuthority
	}
	if !strings.HasSuffix(authority, "/") {
		authority += "/"
	}
	audience := e.AppIDURI
	if audience == "" {
		audience = e.ClientID
	}
	return api.NewLoginConfig(authority, e.Tenants[0], e.CLIClientID, audience, e.CLIScope), nil
}

// HTTPHandler is everything rotor serves on its listener: /healthz,
// /readyz, /metrics, the status page (on a loopback listener without
// sign_in only; with it / is the UI), the
// REST API under /api/v1, behind the bearer check and the rate limit of
// api_auth, and with sign_in the sign-in routes and the signed-in page
// /ui/ (signin.go). Building it reads the Entra discovery documents
// api_auth and sign_in name, and makes the break-glass admins sign_in
// calls for; Serve calls it, tests serve it with httptest.
func (s *Server) HTTPHandler(ctx context.Context, loopback bool) (http.Handler, error) {
	authn, err := s.authenticator(ctx)
	if err != nil {
		return nil, err
	}
	login, err := s.loginConfig()
	if err != nil {
		return nil, err
	}
	a := api.New(api.Options{
		App: s.app, Auth: authn, Logger: s.log, Login: login,
		Limiter: auth.NewLimiter(float64(s.cfg.APIAuth.RequestsPerSecond), s.cfg.APIAuth.Burst, s.clock),
	})
	// With sign_in the UI is the status page's successor: nothing about
	// the inventory is served without a session, on loopback or not.
	mux := s.handler(loopback && s.cfg.SignIn == nil)
	mux.Handle(api.Prefix+"/", a.Handler())
	if s.cfg.SignIn != nil {
		web, paths, err := s.signInHandler(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			mux.Handle(p, web)
		}
		mux.Handle("GET /{$}", http.RedirectHandler(UIPath, http.StatusSeeOther))
	}
	return mux, nil
}
