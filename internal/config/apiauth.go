package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// APIAuthSettings say who may call rotor's REST API (/api/v1): Entra
// access tokens of client applications, rotor's own API keys, and how
// fast each caller may go. docs/api-auth.md explains them.
type APIAuthSettings struct {
	// APIKeys accepts rotor API keys (rtr_…, made with rotor apikey
	// create). Default true.
	APIKeys bool
	// Entra accepts Entra ID access tokens; nil refuses them.
	Entra *EntraSettings
	// RequestsPerSecond and Burst are each caller's rate limit.
	RequestsPerSecond int
	Burst             int
}

// EntraSettings are api_auth.entra: the fields of internal/auth's
// EntraConfig, which the server builds from them, plus where to reach
// Entra. The checks here are the ones that need no network; the server
// reads each tenant's discovery document at start and refuses to start
// when one cannot be read.
type EntraSettings struct {
	// Cloud is the Entra cloud (public, usgov, china or sim); its
	// authority is the default Authority.
	Cloud azure.Cloud
	// SimFile is the simulator's sim.json with cloud: sim: its authority
	// and the CA certificate to trust.
	SimFile string
	// Authority is the Entra authority host, with a trailing slash
	// ("" with cloud: sim: the simulator's, known when the server
	// starts).
	Authority     string
	Tenants       []string
	AppIDURI      string
	ClientID      string
	TokenVersions []int
	ClockSkew     time.Duration
	// KeyRefreshInterval and KeyMaxAge tune the JWKS cache.
	KeyRefreshInterval time.Duration
	KeyMaxAge          time.Duration
	Roles              []RoleBinding
	// CLIClientID is rotor's CLI registration (a public client): people
	// signed in with 'rotor login' present delegated tokens issued to it,
	// and only to it. Empty: delegated tokens are refused, and the
	// server offers no sign-in to the CLI.
	CLIClientID string
	// CLIScope is the delegated permission of rotor's API the CLI asks
	// for (default user_impersonation).
	CLIScope string
}

// DefaultCLIScope is api_auth.entra.cli_scope's default: the name Entra's
// portal suggests for an API's first delegated permission.
const DefaultCLIScope = "user_impersonation"

// RoleBinding grants the rotor role Role (viewer, operator, admin) in
// Organization to tokens whose roles claim carries AppRole.
type RoleBinding struct {
	AppRole      string
	Organization string
	Role         string
}

// API authentication defaults and bounds.
const (
	DefaultAPIRequestsPerSecond = 10
	DefaultAPIBurst             = 60
	MaxAPIRequestsPerSecond     = 10000
	MaxAPIBurst                 = 100000
	DefaultClockSkew            = 5 * time.Minute
	DefaultKeyRefreshInterval   = time.Minute
	DefaultKeyMaxAge            = 24 * time.Hour
)

var (
	// clockSkewSpan: Entra's own libraries allow five minutes; more lets
	// an expired token in for longer than anyone expects.
	clockSkewSpan = span{0, 5 * time.Minute,
		"0s allows no skew at all (a token is refused the instant it expires)",
		"an expired token would be accepted for that long; Entra's libraries allow 5m"}
	// keyRefreshSpan: a token naming an unknown key fetches the keys at
	// most this often.
	keyRefreshSpan = span{time.Second, time.Hour,
		"a stream of forged tokens naming unknown keys would make rotor fetch Entra's keys that often",
		"a key Entra starts signing with would be refused for up to that long"}
	// keyMaxAgeSpan: keys are fetched again after this long even when
	// every kid is known, so a key Entra withdrew stops working.
	keyMaxAgeSpan = span{time.Minute, 7 * 24 * time.Hour,
		"the keys would be fetched from Entra over and over",
		"a signing key Entra withdrew (after a compromise) would stay accepted for over a week"}
	appRoles = []string{"viewer", "operator", "admin"}
)

func (b *builder) apiAuth(raw rawAPIAuth) {
	s := scope{}
	a := &b.cfg.APIAuth
	a.APIKeys = raw.APIKeys == nil || *raw.APIKeys
	a.RequestsPerSecond, a.Burst = DefaultAPIRequestsPerSecond, DefaultAPIBurst
	count := func(k string, v *int, max int, dst *int) {
		if v == nil {
			return
		}
		if *v < 1 || *v > max {
			b.bad(s, k, 0, "%s (%d) must be between 1 and %d", k, *v, max)
			return
		}
		*dst = *v
	}
	count("api_auth.rate_limit.requests_per_second", raw.RateLimit.RequestsPerSecond, MaxAPIRequestsPerSecond, &a.RequestsPerSecond)
	count("api_auth.rate_limit.burst", raw.RateLimit.Burst, MaxAPIBurst, &a.Burst)
	if raw.Entra != nil {
		a.Entra = b.entra(*raw.Entra)
	}
}

func (b *builder) entra(raw rawEntra) *EntraSettings {
	s := scope{path: "api_auth.entra", object: "api_auth.entra"}
	before := len(b.ps.list)
	e := &EntraSettings{}
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
	e.Authority = raw.Authority
	if e.Authority == "" && cloud != azure.Sim && err == nil {
		ep, _ := azure.ResolveEndpoints(cloud, "")
		e.Authority = ep.AuthorityHost
	}
	if e.Authority != "" {
		if u, err := url.Parse(e.Authority); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.User != nil {
			b.bad(s, "authority", 0, "authority %q must be an https URL such as https://login.microsoftonline.com/", e.Authority)
		} else if !strings.HasSuffix(e.Authority, "/") {
			e.Authority += "/"
		}
	}
	if len(raw.Tenants) == 0 {
		b.bad(s, "tenants", 0, "tenants is missing: list the tenant ids (GUIDs) whose tokens rotor accepts")
	}
	for _, t := range raw.Tenants {
		if !guidPattern.MatchString(t) {
			b.bad(s, "tenants", 0, "tenants: %q is not a tenant id (a GUID); common, organizations and domains are not accepted: a token's issuer names its tenant's id", t)
			continue
		}
		e.Tenants = append(e.Tenants, strings.ToLower(t))
	}
	e.AppIDURI, e.ClientID = raw.AppIDURI, raw.ClientID
	switch {
	case raw.AppIDURI == "" && raw.ClientID == "":
		b.bad(s, "app_id_uri", 0, "app_id_uri or client_id is required: rotor's API registration, the audience its tokens carry")
	case raw.ClientID != "" && !guidPattern.MatchString(raw.ClientID):
		b.bad(s, "client_id", 0, "client_id %q is not an app id (a GUID)", raw.ClientID)
	}
	switch {
	case raw.CLIClientID != "" && !guidPattern.MatchString(raw.CLIClientID):
		b.bad(s, "cli_client_id", 0, "cli_client_id %q is not an app id (a GUID): rotor's CLI registration, a public client", raw.CLIClientID)
	case raw.CLIScope != "" && (strings.ContainsAny(raw.CLIScope, " /") || raw.CLIScope == ".default"):
		b.bad(s, "cli_scope", 0, "cli_scope %q must be the name of one of the API's delegated permissions (user_impersonation), without the API's URI", raw.CLIScope)
	case raw.CLIScope != "" && raw.CLIClientID == "":
		b.bad(s, "cli_scope", 0, "cli_scope is only used with cli_client_id; set cli_client_id (rotor's CLI registration) or remove cli_scope")
	}
	e.CLIClientID, e.CLIScope = strings.ToLower(raw.CLIClientID), raw.CLIScope
	if e.CLIScope == "" {
		e.CLIScope = DefaultCLIScope
	}
	for _, v := range raw.TokenVersions {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || (n != 1 && n != 2) {
			b.bad(s, "token_versions", 0, "token_versions: %q is not 1 or 2 (the API registration's accessTokenAcceptedVersion)", v)
			continue
		}
		if !slices.Contains(e.TokenVersions, n) {
			e.TokenVersions = append(e.TokenVersions, n)
		}
	}
	if len(raw.TokenVersions) == 0 {
		e.TokenVersions = []int{1, 2}
	}
	e.ClockSkew, _, _ = b.durIn(s, "api_auth.entra.clock_skew", raw.ClockSkew, DefaultClockSkew, clockSkewSpan)
	e.KeyRefreshInterval, _, _ = b.durIn(s, "api_auth.entra.key_refresh_interval", raw.KeyRefreshInterval, DefaultKeyRefreshInterval, keyRefreshSpan)
	e.KeyMaxAge, _, _ = b.durIn(s, "api_auth.entra.key_max_age", raw.KeyMaxAge, DefaultKeyMaxAge, keyMaxAgeSpan)
	if len(raw.Roles) == 0 {
		b.bad(s, "roles", 0, "roles is missing: bind at least one of the API's app roles to a rotor role in an organization, or no token gets in")
	}
	for i, r := range raw.Roles {
		rs := scope{path: fmt.Sprintf("api_auth.entra.roles[%d]", i), object: fmt.Sprintf("api_auth.entra.roles[%d]", i)}
		if strings.TrimSpace(r.AppRole) == "" {
			b.bad(rs, "app_role", 0, "app_role is missing: the app role's value as the API registration defines it (Rotor.Admin)")
		}
		if !namePattern.MatchString(r.Organization) {
			b.bad(rs, "organization", 0, "organization %q must be 1-64 letters, digits, '.', '_' or '-'", r.Organization)
		}
		if !slices.Contains(appRoles, r.Role) {
			b.bad(rs, "role", 0, "role %q is not viewer, operator or admin", r.Role)
		}
		e.Roles = append(e.Roles, RoleBinding{AppRole: r.AppRole, Organization: r.Organization, Role: r.Role})
	}
	if len(b.ps.list) > before {
		return nil
	}
	return e
}
