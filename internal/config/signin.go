package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// SignInSettings are sign_in: how people sign in to rotor's UI with Entra
// ID, and how long their sessions last (docs/sign-in.md). The server
// builds internal/web/signin's relying party and internal/web/session's
// manager from them.
type SignInSettings struct {
	Entra SignInEntra
	// SessionLifetime is how long a session lasts after sign-in.
	SessionLifetime time.Duration
}

// SignInEntra is sign_in.entra: rotor's sign-in registration in Entra.
// The checks here are the ones that need no network; the server reads the
// tenant's discovery document at start and refuses to start when it
// cannot.
type SignInEntra struct {
	// Cloud is the Entra cloud (public, usgov, china or sim); its
	// authority and Graph are the defaults of Authority and GraphURL.
	Cloud azure.Cloud
	// SimFile is the simulator's sim.json with cloud: sim.
	SimFile string
	// Authority is the Entra authority host, with a trailing slash ("" with
	// cloud: sim: the simulator's, known when the server starts).
	Authority string
	// Tenant is the one tenant (a GUID) people sign in from.
	Tenant string
	// ClientID is the sign-in registration's application id.
	ClientID string
	// ClientSecret is where its client secret comes from (Key Vault
	// references are resolved by the server).
	ClientSecret *SecretRef
	// RedirectURL is rotor's callback as registered: https, or plain http
	// on a loopback address.
	RedirectURL string
	// GraphURL is Graph v1.0's base for the groups overage ("" with
	// cloud: sim: the simulator's).
	GraphURL string
	Roles    []SignInRole
}

// Insecure reports whether rotor is served over plain HTTP on loopback
// (the redirect URL is http): cookies then lose Secure and __Host-.
func (e SignInEntra) Insecure() bool { return strings.HasPrefix(e.RedirectURL, "http://") }

// PublicURL is the scheme and host of the redirect URL: where people reach
// rotor ("https://rotor.example.com").
func (e SignInEntra) PublicURL() string {
	u, err := url.Parse(e.RedirectURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// SignInRole binds an app role of the sign-in registration (AppRole) or
// an Entra group (Group, its object id) to the rotor role Role in
// Organization. Exactly one of AppRole and Group is set.
type SignInRole struct {
	AppRole      string
	Group        string
	Organization string
	Role         string
}

// Session lifetimes (internal/web/session's).
const (
	DefaultSessionLifetime = 8 * time.Hour
	MaxSessionLifetime     = 24 * time.Hour
)

// sessionLifetimeSpan: rotor keeps no refresh token, so the lifetime
// bounds how long a role removed in Entra lingers.
var sessionLifetimeSpan = span{time.Minute, MaxSessionLifetime,
	"people would be sent back to Entra to sign in again every few seconds",
	"a role removed in Entra would keep working for over a day (rotor keeps no refresh token to learn of it sooner)"}

func (b *builder) signIn(raw rawSignIn) *SignInSettings {
	before := len(b.ps.list)
	si := &SignInSettings{}
	si.SessionLifetime, _, _ = b.durIn(scope{}, "sign_in.session_lifetime", raw.SessionLifetime, DefaultSessionLifetime, sessionLifetimeSpan)
	if raw.Entra == nil {
		b.bad(scope{path: "sign_in", object: "sign_in"}, "entra", 0, "entra is missing: sign_in needs rotor's sign-in registration in Entra (docs/sign-in.md)")
		return nil
	}
	b.signInEntra(*raw.Entra, &si.Entra)
	if len(b.ps.list) > before {
		return nil
	}
	return si
}

func (b *builder) signInEntra(raw rawSignInEntra, e *SignInEntra) {
	s := scope{path: "sign_in.entra", object: "sign_in.entra"}
	cloud, err := azure.ParseCloud(raw.Cloud)
	if err != nil {
		b.bad(s, "cloud", 0, "cloud %q is not known: use public, usgov, china or sim", raw.Cloud)
	}
	e.Cloud = cloud
	switch {
	case cloud == azure.Sim:
		c := Connection{}
		b.simulator(s, rawConnection{SimFile: raw.SimFile}, &c, map[string]*simfile.Info{})
		e.SimFile = c.SimFile
	case raw.SimFile != "" && err == nil:
		b.bad(s, "sim_file", 0, "sim_file is only used with cloud: sim; remove it, or set cloud: sim")
	}
	e.Authority, e.GraphURL = raw.Authority, raw.GraphURL
	if cloud != azure.Sim && err == nil {
		ep, _ := azure.ResolveEndpoints(cloud, "")
		if e.Authority == "" {
			e.Authority = ep.AuthorityHost
		}
		if e.GraphURL == "" {
			e.GraphURL = ep.GraphURL
		}
	}
	if e.Authority != "" {
		if u, err := url.Parse(e.Authority); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.User != nil {
			b.bad(s, "authority", 0, "authority %q must be an https URL such as https://login.microsoftonline.com/", e.Authority)
		} else if !strings.HasSuffix(e.Authority, "/") {
			e.Authority += "/"
		}
	}
	if e.GraphURL != "" {
		if u, err := url.Parse(e.GraphURL); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.User != nil {
			b.bad(s, "graph_url", 0, "graph_url %q must be an https URL such as https://graph.microsoft.com/v1.0", e.GraphURL)
		}
		e.GraphURL = strings.TrimSuffix(e.GraphURL, "/")
	}
	switch {
	case raw.Tenant == "":
		b.bad(s, "tenant", 0, "tenant is missing: the tenant id (a GUID) people sign in from")
	case !guidPattern.MatchString(raw.Tenant):
		b.bad(s, "tenant", 0, "tenant %q is not a tenant id (a GUID); common, organizations and domains are not accepted: rotor signs in people of exactly one tenant", raw.Tenant)
	default:
		e.Tenant = strings.ToLower(raw.Tenant)
	}
	switch {
	case raw.ClientID == "":
		b.bad(s, "client_id", 0, "client_id is missing: the application id of rotor's sign-in registration")
	case !guidPattern.MatchString(raw.ClientID):
		b.bad(s, "client_id", 0, "client_id %q is not an application id (a GUID)", raw.ClientID)
	default:
		e.ClientID = raw.ClientID
	}
	if r := raw.ClientSecret; r == nil {
		b.bad(s, "client_secret", 0, "client_secret is missing: rotor signs in as a confidential client; give a reference such as {env: ROTOR_SIGNIN_SECRET}")
	} else if msg := r.load(b.opts.Getenv, b.baseDir); msg != "" {
		b.bad(s, "client_secret", r.line, "client_secret: %s", msg)
	} else {
		if r.kind == refInline {
			b.note("sign_in.entra.client_secret is written inline in the configuration file (line %d), so anyone who can read the file or a copy of it has the secret; use client_secret: {env: NAME} or {file: PATH} instead", r.line)
		}
		e.ClientSecret = r
	}
	if msg := redirectURLProblem(raw.RedirectURL); msg != "" {
		b.bad(s, "redirect_url", 0, "%s", msg)
	} else {
		e.RedirectURL = raw.RedirectURL
	}
	if len(raw.Roles) == 0 {
		b.bad(s, "roles", 0, "roles is missing: bind at least one app role or group to a rotor role in an organization, or nobody gets in")
	}
	for i, r := range raw.Roles {
		rs := scope{path: fmt.Sprintf("sign_in.entra.roles[%d]", i), object: fmt.Sprintf("sign_in.entra.roles[%d]", i)}
		switch {
		case (strings.TrimSpace(r.AppRole) == "") == (r.Group == ""):
			b.bad(rs, "app_role", 0, "set exactly one of app_role (an app role's value, Rotor.Admin) and group (a group's object id)")
		case r.Group != "" && !guidPattern.MatchString(r.Group):
			b.bad(rs, "group", 0, "group %q is not a group object id (a GUID); group names are not unique in Entra", r.Group)
		}
		if !namePattern.MatchString(r.Organization) {
			b.bad(rs, "organization", 0, "organization %q must be 1-64 letters, digits, '.', '_' or '-'", r.Organization)
		}
		if !slices.Contains(appRoles, r.Role) {
			b.bad(rs, "role", 0, "role %q is not viewer, operator or admin", r.Role)
		}
		e.Roles = append(e.Roles, SignInRole{AppRole: r.AppRole, Group: strings.ToLower(r.Group), Organization: r.Organization, Role: r.Role})
	}
}

// redirectURLProblem checks sign_in.entra.redirect_url: absolute, with a
// path and no query or fragment, https, or plain http only on a loopback
// address (browsers send Secure cookies nowhere else over http).
func redirectURLProblem(raw string) string {
	if raw == "" {
		return "redirect_url is missing: rotor's callback as registered on the Web platform, https://rotor.example.com/auth/callback"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" || u.RawQuery != "" || u.Path == "" || u.Path == "/" || u.User != nil {
		return fmt.Sprintf("redirect_url %q must be an absolute URL with a path and no query, such as https://rotor.example.com/auth/callback", raw)
	}
	if reserved := reservedPath(u.Path); reserved != "" {
		return fmt.Sprintf("redirect_url %q: its path %s is %s, one of rotor's own routes; use /auth/callback", raw, u.Path, reserved)
	}
	switch h := u.Hostname(); {
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && (h == "127.0.0.1" || h == "localhost" || h == "::1"):
		return ""
	}
	return fmt.Sprintf("redirect_url %q must be https (plain http only on a loopback address: 127.0.0.1, ::1 or localhost)", raw)
}

// reservedPath says which of rotor's own routes the callback path p would
// take ("" when none): the server serves the callback on the same
// listener.
func reservedPath(p string) string {
	switch {
	case p == "/login" || p == "/login/local" || p == "/logout":
		return "a sign-in route"
	case p == "/ui" || strings.HasPrefix(p, "/ui/"):
		return "under the UI (/ui/)"
	case p == "/api" || strings.HasPrefix(p, "/api/"):
		return "under the API (/api/)"
	case p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/runs/"):
		return "served by rotor already"
	}
	return ""
}
