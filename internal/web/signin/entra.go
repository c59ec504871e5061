// Package signin signs people in to rotor's UI: the OpenID Connect
// relying party for Microsoft Entra ID (authorization code flow with PKCE
// as a confidential client, the ID token validated fully, the groups
// overage answered from Graph's /me/memberOf, app roles and groups mapped
// to rotor roles per organization, and the applications the person owns
// read from Graph's /me/ownedObjects with their own token when their
// organization shows members only those), the break-glass admin's form,
// and sign-out. Sessions are internal/web/session's, CSRF tokens
// internal/web/csrf's; the UI mounts Handler's routes inside both
// middlewares (docs/sign-in.md, docs/adr/0023, docs/adr/0030).
package signin

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
)

// Defaults.
const (
	// PublicAuthority is the Entra authority of Azure's public cloud.
	PublicAuthority = "https://login.microsoftonline.com/"
	// PublicGraphURL is Microsoft Graph v1.0 in Azure's public cloud.
	PublicGraphURL = "https://graph.microsoft.com/v1.0"
	// pendingLifetime is how long a sign-in may take between rotor's
	// redirect to Entra and Entra's redirect back.
	pendingLifetime = 10 * time.Minute
	// maxGroupPages bounds the /me/memberOf walk (999 a page).
	maxGroupPages = 50
	// maxOwnedPages bounds the /me/ownedObjects walk (999 a page): a
	// session keeps at most store.MaxOwnedObjectIDs.
	maxOwnedPages = 50
)

// EntraConfig is rotor's sign-in registration in Entra. Its yaml keys are
// sign_in.entra's in docs/sign-in.md.
type EntraConfig struct {
	// Authority is the Entra authority host (default the public cloud;
	// login.microsoftonline.us, login.chinacloudapi.cn, or the
	// simulator's authority_host).
	Authority string `yaml:"authority"`
	// Tenant is the tenant id (a GUID) people sign in from: exactly
	// this one, never common or organizations.
	Tenant string `yaml:"tenant"`
	// ClientID is the sign-in registration's application (client) id.
	ClientID string `yaml:"client_id"`
	// ClientSecret is its client secret (rotor.yaml gives a reference:
	// client_secret: {env: …}); rotor is a confidential client.
	ClientSecret secret.Value `yaml:"-"`
	// RedirectURL is rotor's callback as registered on the Web platform,
	// "https://rotor.example.com/auth/callback"; https, or http on a
	// loopback address.
	RedirectURL string `yaml:"redirect_url"`
	// GraphURL is Graph v1.0's base, for the groups overage (default the
	// public cloud's).
	GraphURL string `yaml:"graph_url"`
	// Roles bind app roles and groups to rotor roles per organization.
	Roles RoleMap `yaml:"roles"`
}

// normalized checks c and fills in its defaults.
func (c EntraConfig) normalized() (EntraConfig, error) {
	var errs []error
	c.Authority = cmp.Or(c.Authority, PublicAuthority)
	if u, err := url.Parse(c.Authority); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		errs = append(errs, fmt.Errorf("authority %q must be an https URL", c.Authority))
	} else if !strings.HasSuffix(c.Authority, "/") {
		c.Authority += "/"
	}
	if !guidPattern.MatchString(c.Tenant) {
		errs = append(errs, fmt.Errorf("tenant %q is not a tenant id (a GUID); common, organizations and domains are not accepted", c.Tenant))
	}
	if !guidPattern.MatchString(c.ClientID) {
		errs = append(errs, fmt.Errorf("client_id %q is not an application id (a GUID)", c.ClientID))
	}
	if c.ClientSecret.IsZero() {
		errs = append(errs, errors.New("client_secret is required: rotor signs in as a confidential client"))
	}
	if _, err := redirectSecure(c.RedirectURL); err != nil {
		errs = append(errs, err)
	}
	c.GraphURL = strings.TrimSuffix(cmp.Or(c.GraphURL, PublicGraphURL), "/")
	if u, err := url.Parse(c.GraphURL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("graph_url %q must be an https URL", c.GraphURL))
	}
	if len(c.Roles) == 0 {
		errs = append(errs, errors.New("roles: bind at least one app role or group to a rotor role, or nobody gets in"))
	}
	if err := c.Roles.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("signin: entra: %w", err)
	}
	return c, nil
}

// redirectSecure checks a redirect URL and reports whether rotor is served
// over https there (else plain http on loopback, the demo).
func redirectSecure(raw string) (bool, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" || u.RawQuery != "" || u.Path == "" {
		return false, fmt.Errorf("redirect_url %q must be an absolute URL with a path and no query", raw)
	}
	switch h := u.Hostname(); {
	case u.Scheme == "https":
		return true, nil
	case u.Scheme == "http" && (h == "127.0.0.1" || h == "localhost" || h == "::1"):
		return false, nil
	}
	return false, fmt.Errorf("redirect_url %q must be https (plain http only on a loopback address)", raw)
}

// Option configures a RelyingParty.
type Option func(*options)

type options struct {
	client *http.Client
	clock  clock.Clock
	log    *slog.Logger
}

// WithHTTPClient talks to Entra and Graph with c (default
// http.DefaultClient): for a custom CA, a proxy, or the simulator.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithClock sets the clock ID tokens are judged by.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger logs sign-ins and refusals (never a token or a code).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// RelyingParty is rotor as an OpenID Connect client of Entra.
type RelyingParty struct {
	cfg      EntraConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	issuer   string
	client   *http.Client
	clock    clock.Clock
	log      *slog.Logger
	secure   bool
}

// NewRelyingParty reads the tenant's v2.0 discovery document (its issuer
// must be exactly {authority}{tenant}/v2.0) and prepares the flow. It
// fails when the document cannot be read: rotor does not start with a
// sign-in that cannot work.
func NewRelyingParty(ctx context.Context, cfg EntraConfig, opts ...Option) (*RelyingParty, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	o := options{client: http.DefaultClient, clock: clock.Real{}, log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	secure, _ := redirectSecure(cfg.RedirectURL)
	issuer := cfg.Authority + cfg.Tenant + "/v2.0"
	cctx := oidc.ClientContext(ctx, o.client)
	// go-oidc refuses a document whose issuer is not this URL.
	p, err := oidc.NewProvider(cctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("signin: entra: discovery %s/.well-known/openid-configuration: %w", issuer, err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams // client_secret in the form, as Entra documents
	// User.Read: the delegated token may read the person's own
	// ownedObjects, for an organization that shows members only the
	// applications they own (docs/adr/0030).
	scopes := []string{oidc.ScopeOpenID, "profile", "email", "https://graph.microsoft.com/User.Read"}
	if cfg.Roles.UsesGroups() {
		// For the overage: the delegated token must read the user's groups.
		scopes = append(scopes, "https://graph.microsoft.com/GroupMember.Read.All")
	}
	return &RelyingParty{
		cfg: cfg, issuer: issuer, client: o.client, clock: o.clock, log: o.log, secure: secure,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret.Reveal(), Endpoint: ep,
			RedirectURL: cfg.RedirectURL, Scopes: scopes},
		verifier: p.VerifierContext(cctx, &oidc.Config{
			ClientID:             cfg.ClientID,
			SupportedSigningAlgs: []string{oidc.RS256},
			Now:                  o.clock.Now,
		}),
	}, nil
}

// CallbackPath is the path of the redirect URL, where Handler serves the
// callback.
func (rp *RelyingParty) CallbackPath() string {
	u, _ := url.Parse(rp.cfg.RedirectURL)
	return u.Path
}

// Roles are the configured role bindings.
func (rp *RelyingParty) Roles() RoleMap { return slices.Clone(rp.cfg.Roles) }

// pending is a sign-in in flight, kept in the browser's pending cookie
// between the redirect to Entra and the callback. Every value is random
// or checked on return, and the cookie is HttpOnly and, over https,
// __Host- prefixed, so no other site can read or plant it.
type pending struct {
	State    string       `json:"s"`
	Nonce    string       `json:"n"`
	Verifier string       `json:"v"`
	Org      domain.OrgID `json:"o,omitempty"`
	ReturnTo string       `json:"r,omitempty"`
	Expires  int64        `json:"e"`
}

func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// start begins a sign-in: the pending cookie on w and the URL of Entra's
// authorize endpoint (state, nonce, S256 code challenge).
func (rp *RelyingParty) start(w http.ResponseWriter, org domain.OrgID, returnTo string) (string, error) {
	p := pending{Org: org, ReturnTo: returnTo, Verifier: oauth2.GenerateVerifier(),
		Expires: rp.clock.Now().Add(pendingLifetime).Unix()}
	var err error
	if p.State, err = randomString(); err != nil {
		return "", err
	}
	if p.Nonce, err = randomString(); err != nil {
		return "", err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, rp.pendingCookie(base64.RawURLEncoding.EncodeToString(b), int(pendingLifetime/time.Second)))
	return rp.oauth.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier),
		oauth2.SetAuthURLParam("response_mode", "query")), nil
}

// pendingCookie is SameSite=Lax, not Strict: Entra's redirect back is a
// top-level navigation from another site, which must carry it.
func (rp *RelyingParty) pendingCookie(value string, maxAge int) *http.Cookie {
	name := "rotor_signin"
	if rp.secure {
		name = "__Host-rotor_signin"
	}
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: rp.secure, SameSite: http.SameSiteLaxMode}
}

// Reasons a callback is refused, for logs and the error page.
const (
	ReasonNoPending   = "no_pending_sign_in"
	ReasonState       = "state"
	ReasonEntra       = "entra_error"
	ReasonExchange    = "code_exchange"
	ReasonIDToken     = "id_token"
	ReasonNonce       = "nonce"
	ReasonGroups      = "groups"
	ReasonNoRole      = "no_role"
	ReasonOwnedApps   = "owned_applications"
	ReasonUnavailable = "unavailable"
)

// CallbackError is a refused callback. Status is the HTTP answer; Message
// is for the person (it never holds a token or a code).
type CallbackError struct {
	Reason  string
	Status  int
	Message string
	Err     error
}

func (e *CallbackError) Error() string {
	if e.Err != nil {
		return "signin: " + e.Reason + ": " + e.Err.Error()
	}
	return "signin: " + e.Reason
}

func (e *CallbackError) Unwrap() error { return e.Err }

// HTTPStatus is the answer's status.
func (e *CallbackError) HTTPStatus() int { return e.Status }

// Person is who an ID token says signed in, and the roles they hold.
type Person struct {
	ObjectID string
	TenantID string
	Name     string
	Username string
	AppRoles []string
	Groups   []string
	// Overage says the ID token listed no groups because there were too
	// many; Groups then came from Graph.
	Overage bool
	// Roles are the rotor roles held, by organization.
	Roles map[domain.OrgID]app.Role
	// Pending is the sign-in's organization and return path.
	Org      domain.OrgID
	ReturnTo string
	// ownedApps reads the applications the person owns from Graph with
	// their delegated token, which it holds only for this request: the
	// token is never stored, logged or put in a field anything prints.
	ownedApps func(ctx context.Context) ([]string, error)
}

// idClaims are the ID token claims rotor reads.
type idClaims struct {
	ObjectID          string            `json:"oid"`
	TenantID          string            `json:"tid"`
	Name              string            `json:"name"`
	PreferredUsername string            `json:"preferred_username"`
	Email             string            `json:"email"`
	Roles             []string          `json:"roles"`
	Groups            []string          `json:"groups"`
	ClaimNames        map[string]string `json:"_claim_names"`
}

// finish completes a sign-in from Entra's redirect: the pending cookie
// (read once, then cleared), the state, the code redeemed with the PKCE
// verifier and the client secret, the ID token validated (signature by
// the tenant's JWKS, RS256, issuer, audience, expiry, nonce, tenant), the
// groups read from Graph on an overage, and the roles resolved.
func (rp *RelyingParty) finish(w http.ResponseWriter, r *http.Request) (*Person, error) {
	http.SetCookie(w, rp.pendingCookie("", -1))
	p, ok := rp.readPending(r)
	if !ok {
		return nil, &CallbackError{Reason: ReasonNoPending, Status: http.StatusBadRequest,
			Message: "This sign-in was not started here, or took longer than ten minutes. Start again."}
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(p.State)) != 1 {
		return nil, &CallbackError{Reason: ReasonState, Status: http.StatusBadRequest,
			Message: "This sign-in answer does not belong to the sign-in this browser started. Start again."}
	}
	if e := q.Get("error"); e != "" {
		return nil, &CallbackError{Reason: ReasonEntra, Status: http.StatusUnauthorized,
			Message: "Entra ID refused the sign-in: " + clip(e) + ": " + clip(firstLine(q.Get("error_description")))}
	}
	code := q.Get("code")
	if code == "" {
		return nil, &CallbackError{Reason: ReasonExchange, Status: http.StatusBadRequest, Message: "Entra ID sent no code. Start again."}
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, rp.client)
	tok, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return nil, &CallbackError{Reason: ReasonExchange, Status: http.StatusBadGateway,
			Message: "rotor could not redeem the sign-in with Entra ID" + entraCode(err) + ". Start again.", Err: redact(err)}
	}
	raw, _ := tok.Extra("id_token").(string)
	person, err := rp.verify(ctx, raw, p.Nonce)
	if err != nil {
		return nil, err
	}
	if person.Overage && rp.cfg.Roles.UsesGroups() {
		groups, err := rp.memberOf(ctx, tok.AccessToken)
		if err != nil {
			return nil, &CallbackError{Reason: ReasonGroups, Status: http.StatusBadGateway,
				Message: "rotor could not read your groups from Microsoft Graph. Try again shortly.", Err: err}
		}
		person.Groups = groups
	}
	person.Roles = rp.cfg.Roles.Resolve(person.AppRoles, person.Groups)
	person.Org, person.ReturnTo = p.Org, p.ReturnTo
	access := tok.AccessToken
	person.ownedApps = func(ctx context.Context) ([]string, error) {
		return rp.ownedApplications(ctx, access)
	}
	return person, nil
}

func (rp *RelyingParty) readPending(r *http.Request) (pending, bool) {
	c, err := r.Cookie(rp.pendingCookie("", 0).Name)
	if err != nil || len(c.Value) > 4096 {
		return pending{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return pending{}, false
	}
	var p pending
	if err := json.Unmarshal(b, &p); err != nil || p.State == "" || p.Nonce == "" || p.Verifier == "" {
		return pending{}, false
	}
	if !rp.clock.Now().Before(time.Unix(p.Expires, 0)) {
		return pending{}, false
	}
	return p, true
}

// verify validates an ID token as the one this sign-in asked for.
func (rp *RelyingParty) verify(ctx context.Context, raw, nonce string) (*Person, error) {
	refuse := func(msg string, err error) error {
		return &CallbackError{Reason: ReasonIDToken, Status: http.StatusUnauthorized,
			Message: "Entra ID's answer did not prove who you are (" + msg + "). Start again.", Err: err}
	}
	if raw == "" {
		return nil, refuse("no ID token", nil)
	}
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, refuse("the ID token is not valid for rotor", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, &CallbackError{Reason: ReasonNonce, Status: http.StatusUnauthorized,
			Message: "Entra ID's answer was not made for this sign-in (nonce). Start again."}
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return nil, refuse("unreadable claims", err)
	}
	switch {
	case !strings.EqualFold(c.TenantID, rp.cfg.Tenant):
		return nil, refuse("another tenant", nil)
	case !guidPattern.MatchString(c.ObjectID):
		return nil, refuse("no object id", nil)
	}
	_, overage := c.ClaimNames["groups"]
	return &Person{
		ObjectID: strings.ToLower(c.ObjectID), TenantID: strings.ToLower(c.TenantID), Name: c.Name,
		Username: cmp.Or(c.PreferredUsername, c.Email), AppRoles: c.Roles, Groups: c.Groups, Overage: overage,
	}, nil
}

// memberOf reads the user's groups from Graph with the delegated token:
// GET /me/memberOf, every page, group ids only.
func (rp *RelyingParty) memberOf(ctx context.Context, accessToken string) ([]string, error) {
	var groups []string
	err := rp.walk(ctx, accessToken, "/me/memberOf?$select=id&$top=999", maxGroupPages, func(typ, id string) {
		if typ == "#microsoft.graph.group" {
			groups = append(groups, id)
		}
	})
	return groups, err
}

// ownedApplications reads the object ids of the applications the user
// owns from Graph with the user's own delegated token (User.Read is the
// least privilege "List ownedObjects" documents): GET
// /me/ownedObjects/microsoft.graph.application, every page, ids only.
// rotor's own identity is never used for it: what a person may see is
// what Entra says they own, asked as them.
func (rp *RelyingParty) ownedApplications(ctx context.Context, accessToken string) ([]string, error) {
	ids := []string{}
	err := rp.walk(ctx, accessToken, "/me/ownedObjects/microsoft.graph.application?$select=id,appId&$top=999", maxOwnedPages, func(typ, id string) {
		// The type cast returns applications only; a missing @odata.type
		// is one too (Graph may leave it out of a cast's items).
		if typ == "" || typ == "#microsoft.graph.application" {
			ids = append(ids, id)
		}
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// GraphError is Graph's refusal of a sign-in's read (its HTTP status),
// for the log; it holds nothing of the token.
type GraphError struct {
	Path   string
	Status int
}

func (e *GraphError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.Path, e.Status, http.StatusText(e.Status))
}

// walk GETs path under the configured Graph URL with the delegated token
// and every page after it, calling each with every item's @odata.type
// and id (lower-cased), at most maxPages pages. It follows only next
// links under the configured Graph URL: a URL from an answer never sends
// the person's token elsewhere.
func (rp *RelyingParty) walk(ctx context.Context, accessToken, path string, maxPages int, each func(typ, id string)) error {
	op, _, _ := strings.Cut(path, "?")
	next := rp.cfg.GraphURL + path
	for page := 0; next != ""; page++ {
		if page == maxPages {
			return fmt.Errorf("GET %s: more than %d pages", op, maxPages)
		}
		if !strings.HasPrefix(next, rp.cfg.GraphURL+"/") {
			return fmt.Errorf("GET %s: a next link outside the configured Graph URL", op)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+accessToken)
		req.Header.Set("Accept", "application/json")
		resp, err := rp.client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", op, err)
		}
		var body struct {
			Value []struct {
				Type string `json:"@odata.type"`
				ID   string `json:"id"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &GraphError{Path: op, Status: resp.StatusCode}
		}
		if err != nil {
			return fmt.Errorf("GET %s: %w", op, err)
		}
		for _, v := range body.Value {
			if v.ID != "" {
				each(v.Type, strings.ToLower(v.ID))
			}
		}
		next = body.NextLink
	}
	return nil
}

// entraCode names Entra's OAuth error and AADSTS code of a refused code
// redemption, for the person and the log.
func entraCode(err error) string {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode == "" {
		return ""
	}
	s := " (" + clip(re.ErrorCode)
	if d := re.ErrorDescription; strings.HasPrefix(d, "AADSTS") {
		if code, _, ok := strings.Cut(d, ":"); ok {
			s += " " + clip(code)
		}
	}
	return s + ")"
}

// redact keeps a token request's failure without its body (which echoes
// nothing secret from Entra, but keep the log short and typed).
func redact(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return fmt.Errorf("token endpoint answered %d %s", re.Response.StatusCode, clip(re.ErrorCode))
	}
	return err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r")
	line, _, _ = strings.Cut(line, "\n")
	return line
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
