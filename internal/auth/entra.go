package auth

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
)

// Entra defaults and bounds.
const (
	// PublicAuthority is the Entra authority of Azure's public cloud.
	PublicAuthority = "https://login.microsoftonline.com/"
	// DefaultClockSkew is how far exp and nbf may be off, as Entra's own
	// libraries allow; MaxClockSkew is the most EntraConfig accepts.
	DefaultClockSkew = 5 * time.Minute
	MaxClockSkew     = 5 * time.Minute
	// maxTokenLen bounds a presented JWT (Entra's are 1-4 KB).
	maxTokenLen = 16 << 10
	// DefaultCLIScope is the delegated permission the CLI asks for: the
	// name Entra's portal suggests for an API's first scope.
	DefaultCLIScope = "user_impersonation"
)

// EntraConfig says which Entra access tokens rotor accepts: from which
// tenants, for which API, of which version, and what their app roles
// grant. Its yaml keys are api_auth.entra's in docs/api-auth.md.
type EntraConfig struct {
	// Authority is the Entra authority host ("https://login.microsoftonline.com/",
	// login.microsoftonline.us, login.chinacloudapi.cn, or the
	// simulator's authority_host). Default: the public cloud.
	Authority string `yaml:"authority"`
	// Tenants are the ids (GUIDs) of the tenants whose tokens are
	// accepted: exactly these, never "common" or "organizations".
	Tenants []string `yaml:"tenants"`
	// AppIDURI is rotor's application ID URI ("api://rotor-prod"), what
	// clients ask for a token for; v1.0 tokens carry it as aud.
	AppIDURI string `yaml:"app_id_uri"`
	// ClientID is rotor's API registration's app id; v2.0 tokens, and v1.0
	// tokens asked for by app id, carry it as aud. At least one of the two
	// is required; both are accepted.
	ClientID string `yaml:"client_id"`
	// TokenVersions are the access token versions accepted, 1 and/or 2 (the
	// API registration's accessTokenAcceptedVersion: null or 1 issues
	// v1.0). Default both.
	TokenVersions []int `yaml:"token_versions"`
	// ClockSkew is the leeway on exp and nbf, at most 5 minutes. Default
	// 5 minutes.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// Roles bind the API's app roles to rotor roles per organization:
	// the roles assigned to a calling application, and those assigned
	// to a person signing in through the CLI.
	Roles RoleMap `yaml:"roles"`
	// CLIClientID is the app id of rotor's CLI registration, a public
	// client ('rotor login'). Delegated (user) tokens are accepted only
	// when issued to it: a token some other application obtained for
	// the user is refused. Empty: every delegated token is refused.
	CLIClientID string `yaml:"cli_client_id"`
	// CLIScope is the delegated permission of rotor's API the CLI asks
	// for; a user token must carry it in scp. Default DefaultCLIScope.
	CLIScope string `yaml:"cli_scope"`
	// KeyRefreshInterval and KeyMaxAge tune the JWKS cache (defaults
	// DefaultKeyRefreshInterval and DefaultKeyMaxAge).
	KeyRefreshInterval time.Duration `yaml:"key_refresh_interval"`
	KeyMaxAge          time.Duration `yaml:"key_max_age"`
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// normalized checks c and fills in its defaults.
func (c EntraConfig) normalized() (EntraConfig, error) {
	var errs []error
	if c.Authority == "" {
		c.Authority = PublicAuthority
	}
	if u, err := url.Parse(c.Authority); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		errs = append(errs, fmt.Errorf("authority %q must be an https URL", c.Authority))
	} else if !strings.HasSuffix(c.Authority, "/") {
		c.Authority += "/"
	}
	if len(c.Tenants) == 0 {
		errs = append(errs, errors.New("tenants: at least one tenant id is required"))
	}
	for _, t := range c.Tenants {
		if !guidPattern.MatchString(t) {
			errs = append(errs, fmt.Errorf("tenants: %q is not a tenant id (a GUID); common, organizations and domains are not accepted", t))
		}
	}
	if c.AppIDURI == "" && c.ClientID == "" {
		errs = append(errs, errors.New("app_id_uri or client_id (rotor's API registration) is required"))
	}
	if c.ClientID != "" && !guidPattern.MatchString(c.ClientID) {
		errs = append(errs, fmt.Errorf("client_id %q is not an app id (a GUID)", c.ClientID))
	}
	if c.CLIClientID != "" && !guidPattern.MatchString(c.CLIClientID) {
		errs = append(errs, fmt.Errorf("cli_client_id %q is not an app id (a GUID)", c.CLIClientID))
	}
	if c.CLIScope == "" {
		c.CLIScope = DefaultCLIScope
	} else if strings.ContainsAny(c.CLIScope, " /") {
		errs = append(errs, fmt.Errorf("cli_scope %q must be a scope's name (user_impersonation), without the API's URI", c.CLIScope))
	}
	if len(c.TokenVersions) == 0 {
		c.TokenVersions = []int{1, 2}
	}
	for _, v := range c.TokenVersions {
		if v != 1 && v != 2 {
			errs = append(errs, fmt.Errorf("token_versions: %d is not 1 or 2", v))
		}
	}
	switch {
	case c.ClockSkew == 0:
		c.ClockSkew = DefaultClockSkew
	case c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew:
		errs = append(errs, fmt.Errorf("clock_skew must be between 0 and %s", MaxClockSkew))
	}
	if len(c.Roles) == 0 {
		errs = append(errs, errors.New("roles: bind at least one app role to a rotor role, or no token gets in"))
	}
	if err := c.Roles.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.KeyRefreshInterval <= 0 {
		c.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if c.KeyMaxAge <= 0 {
		c.KeyMaxAge = DefaultKeyMaxAge
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("auth: entra: %w", err)
	}
	return c, nil
}

// Option configures a Validator or APIKeys.
type Option func(*options)

type options struct {
	client *http.Client
	clock  clock.Clock
	log    *slog.Logger
}

// WithHTTPClient fetches discovery documents and keys with c (default
// http.DefaultClient): for a custom CA, a proxy, or the simulator.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithClock sets the clock tokens and keys are judged by.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger logs key fetches (never a token).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

func buildOptions(opts []Option) options {
	o := options{client: http.DefaultClient, clock: clock.Real{}, log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Validator checks Entra access tokens for rotor's API. It is safe for
// concurrent use.
type Validator struct {
	cfg       EntraConfig
	clock     clock.Clock
	audiences []string
	issuers   map[string]*issuer
}

// issuer is one accepted issuer: a tenant's v1.0 or v2.0 tokens.
type issuer struct {
	tenant   string
	version  int
	verifier *oidc.IDTokenVerifier
}

// NewValidator reads each configured tenant's discovery document (v1.0
// and/or v2.0) and prepares a verifier for the issuer it names. It fails
// when a document cannot be read or names an issuer or key set that does
// not belong to the tenant: rotor does not start half able to
// authenticate.
func NewValidator(ctx context.Context, cfg EntraConfig, opts ...Option) (*Validator, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	v := &Validator{cfg: cfg, clock: o.clock, issuers: map[string]*issuer{}}
	for _, a := range []string{cfg.AppIDURI, cfg.ClientID} {
		if a != "" {
			v.audiences = append(v.audiences, a)
		}
	}
	keySets := map[string]*keySet{}
	for _, tenant := range cfg.Tenants {
		for _, version := range cfg.TokenVersions {
			iss, jwksURL, err := discover(ctx, o.client, cfg.Authority, tenant, version)
			if err != nil {
				return nil, fmt.Errorf("auth: entra: tenant %s: %w", tenant, err)
			}
			ks := keySets[jwksURL]
			if ks == nil {
				ks = &keySet{url: jwksURL, client: o.client, clock: o.clock, log: o.log,
					refreshInterval: cfg.KeyRefreshInterval, maxAge: cfg.KeyMaxAge}
				keySets[jwksURL] = ks
			}
			v.issuers[iss] = &issuer{tenant: strings.ToLower(tenant), version: version, verifier: oidc.NewVerifier(iss, ks, &oidc.Config{
				SupportedSigningAlgs: []string{oidc.RS256},
				// rotor checks the audience against a set, and exp and
				// nbf with its own clock and skew (Validate).
				SkipClientIDCheck: true,
				SkipExpiryCheck:   true,
			})}
		}
	}
	return v, nil
}

// discover reads a tenant's discovery document of the token version and
// returns the issuer it names and its jwks_uri. go-oidc reads it; the
// document's issuer is not its URL for v1.0 (https://sts.windows.net/{tid}/),
// so discovery is told not to insist, and the issuer is checked here
// instead: v2.0 exactly {authority}{tid}/v2.0, v1.0 https://<sts host>/{tid}/.
func discover(ctx context.Context, client *http.Client, authority, tenant string, version int) (string, string, error) {
	base := authority + tenant
	if version == 2 {
		base += "/v2.0"
	}
	ctx = oidc.ClientContext(ctx, client)
	p, err := oidc.NewProvider(oidc.InsecureIssuerURLContext(ctx, base), base)
	if err != nil {
		return "", "", fmt.Errorf("v%d.0 discovery %s/.well-known/openid-configuration: %w", version, base, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&doc); err != nil {
		return "", "", fmt.Errorf("v%d.0 discovery: %w", version, err)
	}
	iu, err := url.Parse(doc.Issuer)
	switch {
	case version == 2 && doc.Issuer != base:
		return "", "", fmt.Errorf("v2.0 discovery names issuer %q, not %q", doc.Issuer, base)
	case version == 1 && (err != nil || iu.Scheme != "https" || iu.Host == "" || !strings.EqualFold(iu.Path, "/"+tenant+"/") || iu.RawQuery != ""):
		return "", "", fmt.Errorf("v1.0 discovery names issuer %q, not https://<sts host>/%s/", doc.Issuer, tenant)
	}
	ju, err := url.Parse(doc.JWKSURI)
	au, _ := url.Parse(authority)
	if err != nil || ju.Scheme != "https" || !strings.EqualFold(ju.Host, au.Host) {
		return "", "", fmt.Errorf("v%d.0 discovery names jwks_uri %q, not on the authority %s", version, doc.JWKSURI, au.Host)
	}
	return doc.Issuer, doc.JWKSURI, nil
}

// accessClaims are the claims of an Entra access token rotor reads: an
// app-only token's, and a delegated (user) token's name, upn and
// preferred_username.
type accessClaims struct {
	Issuer   string   `json:"iss"`
	TenantID string   `json:"tid"`
	Version  string   `json:"ver"`
	AppID    string   `json:"appid"` // v1.0
	AZP      string   `json:"azp"`   // v2.0
	ObjectID string   `json:"oid"`
	Subject  string   `json:"sub"`
	Scope    *string  `json:"scp"`
	Roles    []string `json:"roles"`
	Expiry   *float64 `json:"exp"`
	NotBef   *float64 `json:"nbf"`
	Name     string   `json:"app_displayname"`
	UserName string   `json:"name"`
	UPN      string   `json:"upn"`                // v1.0
	Username string   `json:"preferred_username"` // v2.0
}

// Validate checks a presented access token and returns its principal, or
// an *Error saying why not. In order: the header (RS256 and a kid), the
// issuer (one of the configured tenants' discovery documents), the
// signature (that issuer's JWKS), then the claims: token version, tenant,
// audience, exp and nbf within the skew, then for an app-only token
// appid/azp and oid, for a delegated one (scp) what delegated checks,
// and at least one app role bound to a rotor role (ReasonNoRole, 403,
// otherwise).
func (v *Validator) Validate(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" {
		return nil, refuse(ReasonMissing, nil)
	}
	if len(raw) > maxTokenLen {
		return nil, refuse(ReasonMalformed, errors.New("token too long"))
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, refuse(ReasonMalformed, errors.New("not a compact JWS"))
	}
	var header struct {
		Alg string `json:"alg"`
		Kid any    `json:"kid"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, refuse(ReasonMalformed, fmt.Errorf("header: %w", err))
	}
	if header.Alg != oidc.RS256 {
		return nil, refuse(ReasonAlgorithm, fmt.Errorf("alg %q", clip(header.Alg)))
	}
	if kid, ok := header.Kid.(string); !ok || kid == "" {
		return nil, refuse(ReasonUnknownKey, errors.New("header has no string kid"))
	}
	var unverified accessClaims
	if err := decodeSegment(parts[1], &unverified); err != nil {
		return nil, refuse(ReasonMalformed, fmt.Errorf("claims: %w", err))
	}
	iss := v.issuers[unverified.Issuer]
	if iss == nil {
		return nil, refuse(ReasonIssuer, errors.New("issuer is not a configured tenant's"))
	}

	note := &sigNote{reason: ReasonMalformed}
	tok, err := iss.verifier.Verify(context.WithValue(ctx, sigNoteKey{}, note), raw)
	if err != nil {
		return nil, refuse(note.reason, errors.New("go-oidc refused the token"))
	}
	var c accessClaims
	if err := tok.Claims(&c); err != nil {
		return nil, refuse(ReasonMalformed, err)
	}

	wantVer := map[int]string{1: "1.0", 2: "2.0"}[iss.version]
	clientID := c.AppID
	if iss.version == 2 {
		clientID = c.AZP
	}
	switch {
	case c.Version != wantVer:
		return nil, refuse(ReasonClaims, fmt.Errorf("ver %q from a v%d.0 issuer", clip(c.Version), iss.version))
	case !strings.EqualFold(c.TenantID, iss.tenant):
		return nil, refuse(ReasonIssuer, errors.New("tid is not the issuer's tenant"))
	case !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(v.audiences, a) }):
		return nil, refuse(ReasonAudience, nil)
	}
	now := v.clock.Now()
	skew := v.cfg.ClockSkew
	if c.Expiry == nil || c.NotBef == nil {
		return nil, refuse(ReasonClaims, errors.New("exp and nbf are required"))
	}
	if exp := unixTime(*c.Expiry); !now.Before(exp.Add(skew)) {
		return nil, refuse(ReasonExpired, nil)
	}
	if nbf := unixTime(*c.NotBef); now.Before(nbf.Add(-skew)) {
		return nil, refuse(ReasonNotYetValid, nil)
	}
	if c.Scope != nil {
		return v.delegated(iss, clientID, &c)
	}
	if clientID == "" || c.ObjectID == "" {
		return nil, refuse(ReasonClaims, errors.New("appid/azp and oid are required"))
	}
	roles := v.cfg.Roles.Resolve(c.Roles)
	if len(roles) == 0 {
		return nil, refuse(ReasonNoRole, nil)
	}
	name := fmt.Sprintf("app %s, service principal %s, tenant %s", clientID, c.ObjectID, iss.tenant)
	if c.Name != "" {
		name = c.Name + " (" + name + ")"
	}
	return &Principal{
		Actor:    app.Actor{Kind: app.ActorToken, ID: clientID, Name: name},
		Method:   MethodEntra,
		TenantID: iss.tenant, ClientID: clientID, ObjectID: c.ObjectID,
		AppRoles: slices.Clone(c.Roles), Roles: roles,
		RateKey:   "entra:" + iss.tenant + "/" + clientID,
		ExpiresAt: unixTime(*c.Expiry),
	}, nil
}

// delegated judges a delegated (user) token, whose signature, issuer,
// audience and times Validate has checked: it must have been issued to
// rotor's CLI (cli_client_id), carry the CLI's scope, name the user
// (oid), and the API's app roles assigned to the user must grant a
// rotor role. The principal is the person, named in the audit trail as
// the UI names them (object id, "Name <upn>"): a person acts as the same
// actor through the UI and through the CLI (ADR 21).
func (v *Validator) delegated(iss *issuer, clientID string, c *accessClaims) (*Principal, error) {
	switch {
	case v.cfg.CLIClientID == "":
		return nil, refuse(ReasonClaims, errors.New("a delegated (user) token, and no cli_client_id is configured: only app-only tokens are accepted"))
	case !strings.EqualFold(clientID, v.cfg.CLIClientID):
		return nil, refuse(ReasonClaims, errors.New("a delegated (user) token issued to another client than rotor's CLI"))
	case !slices.Contains(strings.Fields(*c.Scope), v.cfg.CLIScope):
		return nil, refuse(ReasonClaims, errors.New("a delegated (user) token without the CLI's scope"))
	case c.ObjectID == "":
		return nil, refuse(ReasonClaims, errors.New("oid is required"))
	}
	roles := v.cfg.Roles.Resolve(c.Roles)
	if len(roles) == 0 {
		return nil, refuse(ReasonNoRole, nil)
	}
	username := cmp.Or(c.UPN, c.Username)
	name := username
	if c.UserName != "" && c.UserName != username {
		name = c.UserName + " <" + username + ">"
	}
	return &Principal{
		Actor:    app.Actor{Kind: app.ActorUser, ID: c.ObjectID, Name: name},
		Method:   MethodEntra,
		TenantID: iss.tenant, ClientID: clientID, ObjectID: c.ObjectID,
		AppRoles: slices.Clone(c.Roles), Roles: roles,
		RateKey:   "entra-user:" + iss.tenant + "/" + c.ObjectID,
		ExpiresAt: unixTime(*c.Expiry),
	}, nil
}

// Audiences are the aud values accepted.
func (v *Validator) Audiences() []string { return slices.Clone(v.audiences) }

// Issuers are the issuers accepted, as the discovery documents named them.
func (v *Validator) Issuers() []string {
	out := make([]string, 0, len(v.issuers))
	for iss := range v.issuers {
		out = append(out, iss)
	}
	slices.Sort(out)
	return out
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func unixTime(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// clip bounds what a refused token's header says in an error's cause.
func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
