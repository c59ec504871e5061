package entra

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file is the authorization code flow for people: the authorize
// endpoint with its sign-in page, authorization codes bound to a client,
// a redirect URI and a PKCE challenge, and the token endpoint's
// authorization_code and refresh_token grants (ID token, delegated Graph
// access token, refresh token). Codes and refresh tokens live in memory,
// as hashes; a simulator restart forgets them, as it reseeds.

// Lifetimes of what the flow hands out, as Entra documents them: codes
// "typically expire after about 10 minutes"; refresh tokens of
// confidential clients last 90 days.
const (
	CodeLifetime         = 10 * time.Minute
	RefreshTokenLifetime = 90 * 24 * time.Hour
)

// delegatedGraphScopes are the Graph delegated permissions the simulator
// grants (without consent: every user consents to everything here).
var delegatedGraphScopes = []string{
	"User.Read", "User.ReadBasic.All", "GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "Application.Read.All",
}

// oidcScopes are OpenID Connect's own scopes.
var oidcScopes = []string{"openid", "profile", "email", "offline_access"}

// pkceRE is RFC 7636's code_verifier and S256 challenge alphabet.
var pkceRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// userFlows holds the codes and refresh tokens issued, by SHA-256 of
// their value.
type userFlows struct {
	mu      sync.Mutex
	codes   map[[32]byte]*authCode
	refresh map[[32]byte]*refreshGrant
}

// authCode is an issued authorization code.
type authCode struct {
	tenantID    string
	clientID    string
	redirectURI string
	challenge   string
	method      string // "S256", "plain" or "" (no PKCE)
	userID      string
	scopes      []string
	// resource is the web API the code's access token is for, as the
	// client named it; "" for Graph.
	resource string
	nonce    string
	issued   time.Time
	used     bool
	// family ties the refresh tokens of this sign-in together, so a code
	// redeemed twice revokes what its first redemption issued.
	family string
}

// refreshGrant is an issued refresh token.
type refreshGrant struct {
	tenantID string
	clientID string
	userID   string
	scopes   []string
	resource string
	expires  time.Time
	family   string
}

func (f *userFlows) init() {
	f.codes = map[[32]byte]*authCode{}
	f.refresh = map[[32]byte]*refreshGrant{}
}

// putCode stores a new code and forgets expired ones.
func (f *userFlows) putCode(now time.Time, c *authCode) (string, error) {
	v, err := randomValue(48)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, old := range f.codes {
		if now.Sub(old.issued) > 2*CodeLifetime {
			delete(f.codes, k)
		}
	}
	f.codes[sha256.Sum256([]byte(v))] = c
	return v, nil
}

// putRefresh stores a new refresh token and forgets expired ones.
func (f *userFlows) putRefresh(now time.Time, g *refreshGrant) (string, error) {
	v, err := randomValue(64)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, old := range f.refresh {
		if !now.Before(old.expires) {
			delete(f.refresh, k)
		}
	}
	f.refresh[sha256.Sum256([]byte(v))] = g
	return v, nil
}

// revokeFamily removes every refresh token of one sign-in.
func (f *userFlows) revokeFamily(family string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, g := range f.refresh {
		if g.family == family {
			delete(f.refresh, k)
		}
	}
}

func randomValue(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// authRequest is a checked authorization request.
type authRequest struct {
	tenant      *core.Tenant
	app         *core.Application
	redirectURI string
	state       string
	nonce       string
	challenge   string
	method      string
	scopes      []string
	resource    string
	prompt      string
	loginHint   string
	// params are the request's parameters, carried through the sign-in
	// form.
	params url.Values
}

// authPageError is a refusal shown on Entra's page: the redirect URI
// cannot be trusted yet, so nothing is sent to it.
type authPageError struct {
	aadsts int
	msg    string
}

// authRedirectError is a refusal sent to the (validated) redirect URI as
// error and error_description.
type authRedirectError struct {
	code   string
	aadsts int
	msg    string
}

// checkAuthRequest validates an authorization request in Entra's order:
// tenant, client, redirect URI (errors so far are shown on the page),
// then response type, scope, PKCE and response mode (sent to the
// redirect URI). Callers hold the world's read lock.
func (s *Service) checkAuthRequest(tenant string, q url.Values) (*authRequest, *authPageError, *authRedirectError) {
	t := s.World().TenantLocked(tenant)
	if t == nil {
		return nil, &authPageError{90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(tenant))}, nil
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		return nil, &authPageError{900144, "The request body must contain the following parameter: 'client_id'."}, nil
	}
	app := t.AppByAppID(clientID)
	if app == nil {
		return nil, &authPageError{700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", clip(clientID), t.Name)}, nil
	}
	redirect := q.Get("redirect_uri")
	switch {
	case len(app.RedirectURIs) == 0 && len(app.PublicRedirectURIs) == 0:
		return nil, &authPageError{500113, "No reply address is registered for the application."}, nil
	case redirect == "" || !redirectAllowed(app, redirect):
		return nil, &authPageError{50011, fmt.Sprintf("The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.", clip(redirect), app.AppID)}, nil
	}
	ar := &authRequest{tenant: t, app: app, redirectURI: redirect, state: q.Get("state"), nonce: q.Get("nonce"),
		prompt: q.Get("prompt"), loginHint: q.Get("login_hint"), params: q}
	if rt := q.Get("response_type"); rt != "code" {
		return ar, nil, &authRedirectError{"unsupported_response_type", 70005, fmt.Sprintf("The provided value for the input parameter 'response_type' is not allowed for this request. Expected value: 'code'. Received value: '%s'.", clip(rt))}
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return ar, nil, &authRedirectError{"invalid_request", 900144, fmt.Sprintf("The simulator answers with response_mode=query only, not '%s'.", clip(rm))}
	}
	scope := q.Get("scope")
	if scope == "" {
		return ar, nil, &authRedirectError{"invalid_request", 900144, "The request body must contain the following parameter: 'scope'."}
	}
	scopes, resource, ok := parseUserScopes(t, scope)
	if !ok {
		return ar, nil, &authRedirectError{"invalid_scope", 70011, fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope '%s' is not valid.", clip(scope))}
	}
	ar.scopes, ar.resource = scopes, resource
	ar.challenge = q.Get("code_challenge")
	ar.method = q.Get("code_challenge_method")
	switch {
	case ar.challenge == "" && ar.method != "":
		return ar, nil, &authRedirectError{"invalid_request", 900144, "The request body must contain the following parameter: 'code_challenge'."}
	case ar.challenge == "":
	case ar.method == "":
		ar.method = "plain" // RFC 7636: plain when the method is left out
	case ar.method != "S256" && ar.method != "plain":
		return ar, nil, &authRedirectError{"invalid_request", 50149, "Invalid Code_Challenge_method parameter."}
	}
	if app.PublicClient && (ar.challenge == "" || ar.method != "S256") {
		// A public client has no secret: only PKCE binds the code to the
		// program that asked for it (RFC 8252 §8.1).
		return ar, nil, &authRedirectError{"invalid_request", 9002325, "Proof Key for Code Exchange (S256) is required for a public client's authorization code flow."}
	}
	if ar.challenge != "" && !pkceRE.MatchString(ar.challenge) {
		return ar, nil, &authRedirectError{"invalid_request", 501491, "Invalid size of Code_Challenge parameter."}
	}
	if ar.prompt == "none" {
		// The simulator keeps no browser session, so a silent request can
		// never be answered without the user.
		return ar, nil, &authRedirectError{"login_required", 50058, "A silent sign-in request was sent but no user is signed in."}
	}
	return ar, nil, nil
}

// parseUserScopes reads an authorization request's scope: OpenID
// Connect's scopes and either Graph's delegated permissions, bare or as
// "https://graph.microsoft.com/<permission>" (".default" grants
// User.Read), or the delegated permissions of one web API of the tenant,
// "<identifier URI or app id>/<permission>" (".default" grants every
// permission it exposes). It returns the permissions granted and the API
// as named ("" for Graph). A request for no permission is granted
// User.Read, as Entra issues a Graph token for sign-in alone; one asking
// for two resources is refused, as Entra issues one access token per
// resource. Callers hold the world's read lock.
func parseUserScopes(t *core.Tenant, scope string) ([]string, string, bool) {
	var out []string
	graph, resource := false, ""
	add := func(sc string) {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	for _, sc := range strings.Fields(scope) {
		if slices.Contains(oidcScopes, sc) {
			add(sc)
			continue
		}
		p := sc
		if rest, ok := strings.CutPrefix(sc, core.GraphResource+"/"); ok {
			p = rest
		} else if i := strings.LastIndexByte(sc, '/'); i > 0 && t != nil {
			res, perm := sc[:i], sc[i+1:]
			api := t.ResourceApp(res)
			if api == nil || graph || (resource != "" && resource != res) {
				return nil, "", false
			}
			switch {
			case perm == ".default" && len(api.Scopes) > 0:
				for _, s := range api.Scopes {
					add(s)
				}
			case slices.Contains(api.Scopes, perm):
				add(perm)
			default:
				return nil, "", false
			}
			resource = res
			continue
		}
		if resource != "" {
			return nil, "", false
		}
		if p == ".default" {
			p = "User.Read"
		}
		i := slices.IndexFunc(delegatedGraphScopes, func(d string) bool { return strings.EqualFold(d, p) })
		if i < 0 {
			return nil, "", false
		}
		add(delegatedGraphScopes[i])
		graph = true
	}
	if !graph && resource == "" {
		out = append(out, "User.Read")
	}
	return out, resource, len(out) > 0
}

// redirectAllowed reports whether the request's redirect URI is one the
// application registered: exactly, or for a public client's loopback
// URI on any port (RFC 8252 §7.3: the port is the program's, picked when
// it runs) and any path below the registered one.
func redirectAllowed(app *core.Application, redirect string) bool {
	if slices.Contains(app.RedirectURIs, redirect) || slices.Contains(app.PublicRedirectURIs, redirect) {
		return true
	}
	u, err := url.Parse(redirect)
	if err != nil || u.Scheme != "http" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return false
	}
	for _, reg := range app.PublicRedirectURIs {
		r, err := url.Parse(reg)
		if err != nil || r.Scheme != "http" || !isLoopbackName(r.Hostname()) {
			continue
		}
		if r.Hostname() == u.Hostname() && strings.HasPrefix(u.EscapedPath(), strings.TrimSuffix(r.EscapedPath(), "/")) {
			return true
		}
	}
	return false
}

// serveAuthorize is GET and POST /{tenant}/oauth2/v2.0/authorize. GET
// shows the sign-in page; POST (the page's form) signs the user in and
// redirects to the application with a code.
func (s *Service) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			s.authPage(w, http.StatusBadRequest, nil, &authPageError{900144, "The request body must be application/x-www-form-urlencoded."}, "")
			return
		}
		params = r.PostForm
	}
	s.World().RLock()
	ar, pageErr, redirErr := s.checkAuthRequest(r.PathValue("tenant"), params)
	var users []*core.User
	if ar != nil {
		users = ar.tenant.UsersInOrder()
	}
	s.World().RUnlock()
	switch {
	case pageErr != nil:
		s.Logger().Info("authorize refused", "aadsts", pageErr.aadsts)
		s.authPage(w, http.StatusBadRequest, nil, pageErr, "")
		return
	case redirErr != nil:
		s.Logger().Info("authorize refused", "aadsts", redirErr.aadsts)
		s.redirectError(w, r, ar, redirErr)
		return
	}
	if r.Method == http.MethodGet {
		s.authPage(w, http.StatusOK, &signInPage{req: ar, users: users, login: ar.loginHint}, nil, "")
		return
	}
	user, msg := s.signInUser(ar, params)
	if user == nil {
		s.authPage(w, http.StatusOK, &signInPage{req: ar, users: users, login: params.Get("login")}, nil, msg)
		return
	}
	code, err := s.flows.putCode(s.Clock().Now(), &authCode{
		tenantID: ar.tenant.ID, clientID: ar.app.AppID, redirectURI: ar.redirectURI,
		challenge: ar.challenge, method: ar.method, userID: user.ObjectID, scopes: ar.scopes, resource: ar.resource, nonce: ar.nonce,
		issued: s.Clock().Now(), family: uuid.NewString(),
	})
	if err != nil {
		s.authPage(w, http.StatusInternalServerError, nil, &authPageError{50000, "There was an error issuing a code."}, "")
		return
	}
	s.Counters().SignIns.Add(1)
	s.Logger().Info("user signed in", "tenant", ar.tenant.ID, "client_id", ar.app.AppID, "user", user.ObjectID)
	q := url.Values{"code": {code}, "session_state": {uuid.NewString()}}
	if ar.state != "" {
		q.Set("state", ar.state)
	}
	http.Redirect(w, r, appendQuery(ar.redirectURI, q), http.StatusFound)
}

// signInUser authenticates the sign-in form: the one-click choice of a
// user (user = object id) or a user name and password. It returns the
// user (a copy is not needed: only the id is kept) or the message to
// show.
func (s *Service) signInUser(ar *authRequest, form url.Values) (*core.User, string) {
	s.World().RLock()
	defer s.World().RUnlock()
	t := ar.tenant
	if id := form.Get("user"); id != "" {
		if u := t.UserByID(id); u != nil {
			return u, ""
		}
		return nil, "AADSTS50034: The user account does not exist in the " + t.Name + " directory."
	}
	login := form.Get("login")
	if login == "" {
		return nil, "Enter a user name, or choose an account."
	}
	u := t.UserByName(login)
	if u == nil && !strings.Contains(login, "@") {
		u = t.UserByName(login + "@" + t.Domain)
	}
	if u == nil {
		return nil, "AADSTS50034: The user account does not exist in the " + t.Name + " directory. To sign into this application, the account must be added to the directory."
	}
	if !u.CheckPassword(form.Get("passwd")) {
		return nil, "AADSTS50126: Error validating credentials due to invalid username or password."
	}
	return u, ""
}

// redirectError sends a refusal to the application's redirect URI.
func (s *Service) redirectError(w http.ResponseWriter, r *http.Request, ar *authRequest, e *authRedirectError) {
	ts := s.Clock().Now().UTC().Format("2006-01-02 15:04:05Z")
	q := url.Values{
		"error":             {e.code},
		"error_description": {fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.aadsts, e.msg, uuid.NewString(), uuid.NewString(), ts)},
		"error_uri":         {s.AuthorityHost() + "error?code=" + fmt.Sprint(e.aadsts)},
	}
	if ar.state != "" {
		q.Set("state", ar.state)
	}
	http.Redirect(w, r, appendQuery(ar.redirectURI, q), http.StatusFound)
}

func appendQuery(base string, q url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q.Encode()
}

// signInPage is what the sign-in page shows.
type signInPage struct {
	req   *authRequest
	users []*core.User
	login string
}

var signInTemplate = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem}
.box{border:1px solid #ccc;padding:1.5rem;border-radius:4px}.err{color:#a4262c}
input{display:block;width:100%;margin:.3rem 0 .8rem;padding:.4rem}button{padding:.4rem 1rem;margin:.2rem 0}
.who button{display:block;width:100%;text-align:left}</style></head>
<body><div class="box">
<p><b>Microsoft Entra ID</b> (simulated) · {{.Tenant}}</p>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
{{if .Page}}
<h1>Sign in</h1>
<p>to <b>{{.App}}</b></p>
<form method="post" id="signin">
{{range .Params}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}
<label>Email, phone, or Skype<input name="login" type="text" autocomplete="username" value="{{.Login}}"></label>
<label>Password<input name="passwd" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>
{{if .Users}}<h2>Or pick an account</h2>
<form method="post" class="who" id="pick">
{{range .Params}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}
{{range .Users}}<button type="submit" name="user" value="{{.ObjectID}}">{{.DisplayName}} · {{.UserPrincipalName}}</button>{{end}}
</form>{{end}}
{{end}}
</div></body></html>
`))

type pageParam struct{ Name, Value string }

// authPage writes the sign-in page, or Entra's error page when page is
// nil.
func (s *Service) authPage(w http.ResponseWriter, status int, page *signInPage, e *authPageError, msg string) {
	data := struct {
		Tenant, App, Error, Login string
		Page                      bool
		Params                    []pageParam
		Users                     []*core.User
	}{Error: msg}
	if e != nil {
		data.Error = fmt.Sprintf("AADSTS%d: %s", e.aadsts, e.msg)
	}
	if page != nil {
		data.Page = true
		data.Tenant, data.App, data.Login, data.Users = page.req.tenant.Name, page.req.app.DisplayName, page.login, page.users
		for _, k := range core.SortedKeys(page.req.params) {
			if k == "login" || k == "passwd" || k == "user" {
				continue
			}
			for _, v := range page.req.params[k] {
				data.Params = append(data.Params, pageParam{k, v})
			}
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction(page))
	w.WriteHeader(status)
	_ = signInTemplate.Execute(w, data)
}

// formAction is the sign-in page's CSP form-action: the page itself and
// the origin of the request's (registered, checked) redirect URI.
// Browsers apply form-action to the redirects that follow a form's
// submission too, so 'self' alone would block the redirect that takes the
// code to the application.
func formAction(page *signInPage) string {
	if page == nil {
		return "'self'"
	}
	u, err := url.Parse(page.req.redirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !cspHost.MatchString(u.Host) {
		return "'self'"
	}
	return "'self' " + u.Scheme + "://" + u.Host
}

// cspHost is a host[:port] that is safe inside a CSP source expression.
var cspHost = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)

// userTokens is what a code or refresh token redemption returns.
type userTokens struct {
	idToken, accessToken, refreshToken string
	scope                              string
	expiresIn                          int
}

// Refusals of the authorization code and refresh token grants.
func errInvalidGrant(aadsts int, msg string) *entraError {
	return &entraError{http.StatusBadRequest, "invalid_grant", aadsts, msg}
}

var (
	errCodeUnknown   = errInvalidGrant(9002313, "Invalid request. Request is malformed or invalid.")
	errGrantExpired  = errInvalidGrant(70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	errCodeRedeemed  = errInvalidGrant(54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	errVerifier      = errInvalidGrant(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
	errGrantInvalid  = errInvalidGrant(70000, "Provided grant is invalid or malformed.")
	errCodeForTenant = errInvalidGrant(700005, "Provided Authorization Code is intended to use against other tenant, thus rejected.")
)

// serveUserToken answers the authorization_code and refresh_token
// grants: a confidential client's credential first, then the grant.
func (s *Service) serveUserToken(w http.ResponseWriter, r *http.Request, req tokenRequest) {
	toks, e := s.redeem(req)
	if e != nil {
		s.Logger().Info("token request refused", "tenant", clip(req.tenant), "grant_type", req.form.Get("grant_type"),
			"client_id", clip(req.form.Get("client_id")), "aadsts", e.aadsts)
		s.entraError(w, r, e)
		return
	}
	s.Counters().TokensIssued.Add(1)
	body := map[string]any{
		"token_type":     "Bearer",
		"scope":          toks.scope,
		"expires_in":     toks.expiresIn,
		"ext_expires_in": toks.expiresIn,
		"access_token":   toks.accessToken,
	}
	if toks.idToken != "" {
		body["id_token"] = toks.idToken
	}
	if toks.refreshToken != "" {
		body["refresh_token"] = toks.refreshToken
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, body)
}

// redeem checks the client and the code or refresh token and mints the
// tokens from the directory as it is now (a user's roles and groups are
// read at every redemption, as Entra issues current claims).
func (s *Service) redeem(req tokenRequest) (*userTokens, *entraError) {
	now := s.Clock().Now()
	s.World().RLock()
	t := s.World().TenantLocked(req.tenant)
	if t == nil {
		s.World().RUnlock()
		return nil, errTenantNotFound(req.tenant)
	}
	app, acr, e := s.authenticateClient(t, req, now)
	if e != nil {
		s.World().RUnlock()
		return nil, e
	}
	tenantID, clientID := t.ID, app.AppID
	s.World().RUnlock()

	var (
		userID, nonce, family, resource string
		scopes                          []string
	)
	switch req.form.Get("grant_type") {
	case grantAuthorizationCode:
		c, e := s.takeCode(req, tenantID, clientID, now)
		if e != nil {
			return nil, e
		}
		userID, scopes, nonce, family, resource = c.userID, c.scopes, c.nonce, c.family, c.resource
	default: // refresh_token
		g, e := s.takeRefresh(req, tenantID, clientID, now)
		if e != nil {
			return nil, e
		}
		userID, scopes, family, resource = g.userID, g.scopes, g.family, g.resource
		if sc := req.form.Get("scope"); sc != "" {
			s.World().RLock()
			asked, res, ok := parseUserScopes(s.World().TenantLocked(tenantID), sc)
			s.World().RUnlock()
			if !ok || res != resource {
				return nil, errInvalidScope(sc)
			}
			// A refresh may narrow the grant, never widen it.
			for _, a := range asked {
				if !slices.Contains(scopes, a) {
					return nil, errInvalidScope(sc)
				}
			}
			scopes = asked
		}
	}

	s.World().RLock()
	grant, e := userGrant(s.World().TenantLocked(tenantID), clientID, userID, resource)
	s.World().RUnlock()
	if e != nil {
		return nil, e
	}
	grant.Scopes, grant.Nonce, grant.ACR = scopes, nonce, acr
	out := &userTokens{expiresIn: int((core.IDTokenLifetime - time.Second).Seconds())}
	var err error
	if out.accessToken, _, err = s.MintDelegatedToken(grant); err != nil {
		return nil, errServer(s, err)
	}
	if grant.HasScope("openid") {
		if out.idToken, err = s.MintIDToken(grant); err != nil {
			return nil, errServer(s, err)
		}
	}
	if grant.HasScope("offline_access") {
		out.refreshToken, err = s.flows.putRefresh(now, &refreshGrant{tenantID: tenantID, clientID: clientID, userID: userID,
			scopes: scopes, resource: resource, expires: now.Add(RefreshTokenLifetime), family: family})
		if err != nil {
			return nil, errServer(s, err)
		}
	}
	var scope []string
	prefix := core.GraphResource
	if resource != "" {
		prefix = resource
	}
	for _, sc := range scopes {
		if slices.Contains(oidcScopes, sc) {
			scope = append(scope, sc)
		} else {
			scope = append(scope, prefix+"/"+sc)
		}
	}
	out.scope = strings.Join(scope, " ")
	return out, nil
}

func errServer(s *Service, err error) *entraError {
	s.Logger().Error("mint user token", "err", err)
	return &entraError{http.StatusInternalServerError, "server_error", 50000, "There was an error issuing a token."}
}

// userGrant builds the grant's directory part: copies of the client, the
// user and, for a token for a web API (resource), the API. Callers hold
// the world's read lock.
func userGrant(t *core.Tenant, clientID, userID, resource string) (*core.UserGrant, *entraError) {
	if t == nil {
		return nil, errGrantInvalid
	}
	app := t.AppByAppID(clientID)
	u := t.UserByID(userID)
	if app == nil || u == nil {
		// The application or the user was deleted since the sign-in.
		return nil, errGrantInvalid
	}
	g := &core.UserGrant{TenantID: t.ID, App: *app, User: *u}
	g.App.AppRoles = slices.Clone(app.AppRoles)
	g.User.Groups = slices.Clone(u.Groups)
	g.User.Assignments = slices.Clone(u.Assignments)
	if resource != "" {
		api := t.ResourceApp(resource)
		if api == nil {
			return nil, errGrantInvalid // the API was deleted since the sign-in
		}
		cp := *api
		cp.AppRoles = slices.Clone(api.AppRoles)
		g.API, g.Resource = &cp, resource
	}
	return g, nil
}

// takeCode redeems an authorization code: it must exist, be this
// tenant's and this client's, be younger than CodeLifetime and unused,
// name the redirect URI it was issued for, and answer its PKCE challenge.
// A code used a second time revokes the refresh tokens its first use
// issued (RFC 6749 §4.1.2).
func (s *Service) takeCode(req tokenRequest, tenantID, clientID string, now time.Time) (*authCode, *entraError) {
	raw := req.form.Get("code")
	if raw == "" {
		return nil, errMissingParam("code")
	}
	redirect := req.form.Get("redirect_uri")
	if redirect == "" {
		return nil, errMissingParam("redirect_uri")
	}
	s.flows.mu.Lock()
	c := s.flows.codes[sha256.Sum256([]byte(raw))]
	var e *entraError
	switch {
	case c == nil:
		e = errCodeUnknown
	case c.tenantID != tenantID:
		e = errCodeForTenant
	case c.clientID != clientID:
		e = errGrantInvalid
	case c.used:
		e = errCodeRedeemed
	case now.Sub(c.issued) >= CodeLifetime:
		e = errGrantExpired
	case redirect != c.redirectURI:
		e = errInvalidGrant(50011, fmt.Sprintf("The reply address '%s' does not match the reply address '%s' provided when requesting Authorization code.", clip(redirect), c.redirectURI))
	case !verifierMatches(c, req.form.Get("code_verifier")):
		e = errVerifier
	}
	if c != nil && c.tenantID == tenantID && c.clientID == clientID {
		c.used = true // a code is good for one try, right or wrong
	}
	s.flows.mu.Unlock()
	if e == errCodeRedeemed {
		s.flows.revokeFamily(c.family)
	}
	if e != nil {
		return nil, e
	}
	return c, nil
}

// verifierMatches checks RFC 7636: the verifier's SHA-256 (S256) or the
// verifier itself (plain) is the challenge; a code issued without a
// challenge needs no verifier.
func verifierMatches(c *authCode, verifier string) bool {
	if c.challenge == "" {
		return true
	}
	if !pkceRE.MatchString(verifier) {
		return false
	}
	want := verifier
	if c.method == "S256" {
		h := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(h[:])
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(c.challenge)) == 1
}

// takeRefresh redeems a refresh token: it must exist, be this tenant's
// and client's and unexpired. It is used up: the answer carries its
// replacement (rotation), and the old one is refused from then on.
func (s *Service) takeRefresh(req tokenRequest, tenantID, clientID string, now time.Time) (*refreshGrant, *entraError) {
	raw := req.form.Get("refresh_token")
	if raw == "" {
		return nil, errMissingParam("refresh_token")
	}
	key := sha256.Sum256([]byte(raw))
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	g := s.flows.refresh[key]
	switch {
	case g == nil:
		return nil, errGrantInvalid
	case g.tenantID != tenantID || g.clientID != clientID:
		return nil, errGrantInvalid
	case !now.Before(g.expires):
		delete(s.flows.refresh, key)
		return nil, errGrantExpired
	}
	delete(s.flows.refresh, key)
	return g, nil
}
