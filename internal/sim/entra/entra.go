// Package entra is the simulated Microsoft Entra ID: the v2 token endpoint
// (client secret, certificate and federated assertions), per-tenant OpenID
// discovery and JWKS on the main listener, and the App Service style
// managed identity endpoint on a plain-HTTP listener of its own. It issues
// the core's access tokens; the other services validate them.
package entra

import (
	"bytes"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

const (
	grantClientCredentials = "client_credentials"
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// TokenExchangeAudience is the audience of tokens used as federated
	// credentials (a managed identity token for it can sign an app in).
	TokenExchangeAudience = "api://AzureADTokenExchange"
	// maxAssertionLen bounds a client assertion; real ones are ~1-8 KB
	// (an x5c chain makes them larger).
	maxAssertionLen = 64 << 10
)

// Service is the Entra service. It needs nothing before Register.
type Service struct {
	*core.Core
	// miHeader is the managed identity endpoint's X-IDENTITY-HEADER
	// secret, published in sim.json.
	miHeader string
	mi       *core.Listener
	// flows are the authorization codes and refresh tokens issued to
	// signed-in users (authorize.go).
	flows userFlows
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

// Register serves the authority on the main listener (as its fallback:
// every "/{tenant}/..." path) and the managed identity endpoint on its
// own plain-HTTP listener, which fault injection leaves alone so a test
// can always get a token to repair what it broke.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	s.flows.init()
	var err error
	if s.miHeader, err = core.RandomToken(24); err != nil {
		return fmt.Errorf("identity header: %w", err)
	}
	r.Handle("/", s.WithFaults(s.writeUnavailable, s.entraHandler()))
	s.mi = r.Listen("msi", false, s.miHandler())
	return nil
}

// Started publishes the managed identity endpoint and its header.
func (s *Service) Started(info *simfile.Info) error {
	info.ManagedIdentityEndpoint = "http://" + s.mi.HostPort() + "/msi/token"
	info.ManagedIdentityHeader = s.miHeader
	return nil
}

// writeUnavailable is an injected 503 in Entra's shape.
func (s *Service) writeUnavailable(w http.ResponseWriter, r *http.Request) {
	s.entraError(w, r, &entraError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
		aadsts: 90033, msg: "A transient error has occurred. Please try again."})
}

// entraHandler serves the Entra authority: token endpoint, OpenID
// discovery and JWKS. Instance discovery is not served: clients are told to
// disable it.
func (s *Service) entraHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.serveToken)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", s.serveAuthorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/authorize", s.serveAuthorize)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.serveDiscovery)
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", s.serveDiscoveryV1)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.serveJWKS)
	mux.HandleFunc("GET /{tenant}/discovery/keys", s.serveJWKS)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		core.WriteJSON(w, http.StatusNotFound, core.PlainJSON, map[string]string{"error": "not_found", "error_description": "The simulator does not serve " + r.URL.Path})
	})
	return mux
}

// entraError is a refused token request in Entra's terms.
type entraError struct {
	status int
	code   string // OAuth error: invalid_client, invalid_request, ...
	aadsts int
	msg    string // without the "AADSTSnnn: " prefix; never holds a secret
}

func (e *entraError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.aadsts, e.msg) }

// The refusals the token endpoint gives, with Entra's codes and statuses.
func errTenantNotFound(tenant string) *entraError {
	return &entraError{http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(tenant))}
}

func errMissingParam(name string) *entraError {
	return &entraError{http.StatusBadRequest, "invalid_request", 900144, fmt.Sprintf("The request body must contain the following parameter: '%s'.", name)}
}

func errInvalidScope(scope string) *entraError {
	return &entraError{http.StatusBadRequest, "invalid_scope", 70011, fmt.Sprintf("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", clip(scope))}
}

func errUnknownClient(clientID, tenantID string) *entraError {
	return &entraError{http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clip(clientID), tenantID)}
}

func errBadSecret(clientID string) *entraError {
	return &entraError{http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)}
}

func errBadAssertion(reason string) *entraError {
	return &entraError{http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation. [Reason - " + reason + "]"}
}

func errAssertionTime() *entraError {
	return &entraError{http.StatusBadRequest, "invalid_client", 700024, "Client assertion is not within its valid time range."}
}

func errAssertionLifetime() *entraError {
	return &entraError{http.StatusBadRequest, "invalid_client", 700024, "Client assertion is not within its valid time range. [Reason - The assertion is valid for longer than 1 hour.]"}
}

func errMalformedAssertion() *entraError {
	return &entraError{http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed."}
}

// serveToken is POST /{tenant}/oauth2/v2.0/token, client credentials only.
func (s *Service) serveToken(w http.ResponseWriter, r *http.Request) {
	s.Counters().TokenRequests.Add(1)
	r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
	if err := r.ParseForm(); err != nil {
		s.entraError(w, r, &entraError{http.StatusBadRequest, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded."})
		return
	}
	req := tokenRequest{tenant: r.PathValue("tenant"), host: r.Host, form: r.PostForm}
	req.basicUser, req.basicPass, req.basic = r.BasicAuth()
	if gt := req.form.Get("grant_type"); gt == grantAuthorizationCode || gt == grantRefreshToken {
		s.serveUserToken(w, r, req)
		return
	}
	tok, exp, e := s.issueToken(req)
	if e != nil {
		s.Logger().Info("token request refused", "tenant", clip(req.tenant), "client_id", clip(req.form.Get("client_id")), "aadsts", e.aadsts)
		s.entraError(w, r, e)
		return
	}
	s.Counters().TokensIssued.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     int(exp.Seconds()),
		"ext_expires_in": int(exp.Seconds()),
		"access_token":   tok,
	})
}

// tokenRequest is a token request's inputs, apart from HTTP.
type tokenRequest struct {
	tenant string
	// host is the Host the request was sent to; a certificate assertion's
	// audience must name it.
	host                 string
	form                 url.Values
	basicUser, basicPass string
	basic                bool
}

// tokenGrant is what a validated request earns: a token for sp.
type tokenGrant struct {
	tenantID string
	sp       core.ServicePrincipal
	resource string
	acr      string
}

// issueToken validates a token request and mints the token. The second
// result is the lifetime to report as expires_in.
func (s *Service) issueToken(req tokenRequest) (string, time.Duration, *entraError) {
	g, e := s.grantFor(req)
	if e != nil {
		return "", 0, e
	}
	tok, _, err := s.MintAccessToken(g.tenantID, &g.sp, g.resource, g.acr)
	if err != nil {
		s.Logger().Error("mint access token", "err", err)
		return "", 0, &entraError{http.StatusInternalServerError, "server_error", 50000, "There was an error issuing a token."}
	}
	return tok, core.AccessTokenLifetime - time.Second, nil
}

// grantFor checks tenant, grant type, scope and client credential under
// the world's read lock.
func (s *Service) grantFor(req tokenRequest) (*tokenGrant, *entraError) {
	s.World().RLock()
	defer s.World().RUnlock()
	t := s.World().TenantLocked(req.tenant)
	if t == nil {
		return nil, errTenantNotFound(req.tenant)
	}
	switch gt := req.form.Get("grant_type"); gt {
	case grantClientCredentials:
	case "":
		return nil, errMissingParam("grant_type")
	default:
		return nil, &entraError{http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", clip(gt))}
	}
	scope := req.form.Get("scope")
	if scope == "" {
		return nil, errMissingParam("scope")
	}
	resource, ok := resourceFromScope(scope)
	if !ok || !knownResource(t, resource) {
		return nil, errInvalidScope(scope)
	}

	app, acr, e := s.authenticateClient(t, req, s.Clock().Now())
	if e != nil {
		return nil, e
	}
	sp := t.SPByAppID(app.AppID)
	if sp == nil {
		return nil, &entraError{http.StatusBadRequest, "invalid_client", 7000229, fmt.Sprintf("The client application %s is missing service principal in the tenant %s.", app.AppID, t.ID)}
	}
	g := &tokenGrant{tenantID: t.ID, sp: *sp, resource: resource, acr: acr}
	g.sp.AppRoles = append([]string(nil), sp.AppRoles...)
	return g, nil
}

// authenticateClient checks the client's credential of a token request:
// a client secret (form or HTTP Basic), a certificate assertion or a
// federated assertion. Callers hold the world's read lock. It returns the
// client application and its appidacr.
func (s *Service) authenticateClient(t *core.Tenant, req tokenRequest, now time.Time) (*core.Application, string, *entraError) {
	clientID := req.form.Get("client_id")
	secret := req.form.Get("client_secret")
	if req.basic {
		user, err1 := url.QueryUnescape(req.basicUser)
		pass, err2 := url.QueryUnescape(req.basicPass)
		if err1 != nil || err2 != nil || (clientID != "" && clientID != user) {
			return nil, "", &entraError{http.StatusUnauthorized, "invalid_client", 7000218, "The client credentials in the Authorization header are malformed or do not match 'client_id'."}
		}
		clientID, secret = user, pass
	}
	assertion := req.form.Get("client_assertion")

	var (
		app *core.Application
		acr string
	)
	switch {
	case assertion != "":
		if at := req.form.Get("client_assertion_type"); at != assertionTypeJWTBearer {
			return nil, "", &entraError{http.StatusBadRequest, "invalid_request", 50027, "client_assertion_type must be '" + assertionTypeJWTBearer + "'."}
		}
		a, err := parseAssertion(assertion)
		if err != nil {
			return nil, "", errMalformedAssertion()
		}
		iss := a.claimString("iss")
		if clientID == "" { // MSAL sends no client_id with a certificate assertion
			clientID = iss
		}
		if clientID == "" {
			return nil, "", errMissingParam("client_id")
		}
		if app = t.AppByAppID(clientID); app == nil {
			return nil, "", errUnknownClient(clientID, t.ID)
		}
		if iss == clientID && a.claimString("sub") == clientID {
			e := s.checkCertificateAssertion(t, app, a, req.host, now)
			if e != nil {
				return nil, "", e
			}
		} else if e := s.checkFederatedAssertion(app, a, now); e != nil {
			return nil, "", e
		}
		acr = core.AcrAssertion
	case secret != "":
		if clientID == "" {
			return nil, "", errMissingParam("client_id")
		}
		if app = t.AppByAppID(clientID); app == nil {
			return nil, "", errUnknownClient(clientID, t.ID)
		}
		if e := checkSecret(t, app, secret, now); e != nil {
			return nil, "", e
		}
		acr = core.AcrSecret
	case clientID != "" && isUserGrant(req.form.Get("grant_type")) && t.AppByAppID(clientID) != nil && t.AppByAppID(clientID).PublicClient:
		// A public client proves nothing about itself: the code's PKCE
		// verifier, or the refresh token, is the proof.
		app, acr = t.AppByAppID(clientID), core.AcrPublic
	default:
		return nil, "", &entraError{http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	}
	return app, acr, nil
}

func isUserGrant(gt string) bool { return gt == grantAuthorizationCode || gt == grantRefreshToken }

// checkSecret finds the password whose hash matches. A match that has not
// yet replicated is refused exactly like a wrong secret, as Entra does.
func checkSecret(t *core.Tenant, app *core.Application, secret string, now time.Time) *entraError {
	h := core.HashSecret(secret)
	for _, p := range app.Passwords {
		if subtle.ConstantTimeCompare(p.SecretHash[:], h[:]) != 1 {
			continue
		}
		if now.Before(p.AddedAt.Add(t.ReplicationDelay)) || now.Before(p.Start) {
			return errBadSecret(app.AppID)
		}
		if !now.Before(p.End) {
			return &entraError{http.StatusBadRequest, "invalid_client", 7000222, fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", app.AppID)}
		}
		return nil
	}
	return errBadSecret(app.AppID)
}

// checkCertificateAssertion validates a client assertion signed with one of
// app's certificates: PS256 with x5t#S256 (the documented form) or RS256
// with a SHA-1 x5t (what MSAL sends to ADFS-style authorities), an audience
// naming this tenant's token endpoint on the host the request was sent to
// (reqHost), a valid time window, and a lifetime of at most
// maxAssertionLifetime.
func (s *Service) checkCertificateAssertion(t *core.Tenant, app *core.Application, a *assertion, reqHost string, now time.Time) *entraError {
	var key *core.Key
	if tp, ok := decodeThumbprint(a.headerString("x5t#S256")); ok {
		key = findKey(app.Keys, func(k *core.Key) []byte { return k.ThumbprintS256 }, tp)
	} else if tp, ok := decodeThumbprint(a.headerString("x5t")); ok {
		key = findKey(app.Keys, func(k *core.Key) []byte { return k.ThumbprintSHA1 }, tp)
	}
	if key == nil || key.Cert == nil {
		return errBadAssertion("The key was not found.")
	}
	if chain := a.x5c(); len(chain) > 0 && !bytes.Equal(chain[0], key.Cert.Raw) {
		return errBadAssertion("The certificate in x5c does not match the thumbprint.")
	}
	pub, ok := key.Cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errBadAssertion("The key is not an RSA key.")
	}
	if err := a.verify(pub); err != nil {
		return errBadAssertion("The provided signature value did not match the expected signature value.")
	}
	if now.Before(key.AddedAt.Add(t.ReplicationDelay)) {
		return &entraError{http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client credential provided: the certificate credential for app '%s' has not replicated yet.", app.AppID)}
	}
	if now.Before(key.Start) || !now.Before(key.End) {
		return errBadAssertion("The key used is expired.")
	}
	if !s.audienceIsTokenEndpoint(t, reqHost, a.audiences()) {
		return &entraError{http.StatusBadRequest, "invalid_client", 50013, "Assertion failed signature validation. [Reason - The audience claim is not this tenant's token endpoint.]"}
	}
	if !s.assertionTimeValid(a, now) {
		return errAssertionTime()
	}
	if !s.assertionLifetimeValid(a, now) {
		return errAssertionLifetime()
	}
	return nil
}

// checkFederatedAssertion validates a workload identity federation
// assertion. The simulator cannot fetch an outside issuer's JWKS, so it
// accepts only assertions signed by its own key (its managed identity
// tokens, or MintExternalToken for any issuer); iss, sub and one aud must
// then match one of app's federated identity credentials.
//
// This is a deliberate simplification, broader than Entra, because the
// simulator cannot fetch a foreign issuer's JWKS: ANY JWT signed by the
// simulator's own key passes the signature check here, whatever issuer it
// claims, including the access tokens the simulator itself issues (for any
// resource, not only api://AzureADTokenExchange). Entra would verify each
// issuer against that issuer's own published keys. Only the federated
// credential match (iss, sub and one aud) stands between such a token and
// a grant: e.g. a credential with issuer https://sts.windows.net/{tenant}/,
// a service principal's object id as subject and audience
// https://graph.microsoft.com would let that principal's ordinary Graph
// token sign the app in. Federated assertions are not held to
// maxAssertionLifetime: their lifetime is the outside issuer's choice (the
// simulator's own managed identity tokens run 65 minutes counting their
// nbf back-dating).
func (s *Service) checkFederatedAssertion(app *core.Application, a *assertion, now time.Time) *entraError {
	if a.headerString("alg") != jwt.SigningMethodRS256.Alg() {
		return errBadAssertion("The signing algorithm is not supported.")
	}
	pub := &s.SigningKey().PublicKey
	if kid := a.headerString("kid"); kid != "" {
		if pub = s.PublicKey(kid); pub == nil {
			return errBadAssertion("The key was not found.")
		}
	}
	if err := a.verify(pub); err != nil {
		return errBadAssertion("The provided signature value did not match the expected signature value.")
	}
	if !s.assertionTimeValid(a, now) {
		return errAssertionTime()
	}
	iss, sub, auds := a.claimString("iss"), a.claimString("sub"), a.audiences()
	for _, f := range app.FICs {
		if f.Issuer != iss || f.Subject != sub {
			continue
		}
		for _, aud := range auds {
			for _, want := range f.Audiences {
				if aud == want {
					return nil
				}
			}
		}
	}
	return &entraError{http.StatusBadRequest, "invalid_client", 70021, fmt.Sprintf("No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'.", clip(iss), clip(sub), clip(strings.Join(auds, ",")))}
}

// maxAssertionLifetime caps how long a certificate client assertion may be
// valid. MSAL mints them for 10 minutes; an assertion that lives for hours
// is a replayable credential.
const maxAssertionLifetime = time.Hour

// assertionLifetimeValid checks a certificate assertion's lifetime: exp −
// nbf when nbf is present (both chosen by the client, so no skew), else exp
// − now, which allows ClockSkew because the client's clock may run ahead.
// As in assertionTimeValid, now is the simulated or the wall clock.
func (s *Service) assertionLifetimeValid(a *assertion, now time.Time) bool {
	exp, ok := a.numericDate("exp")
	if !ok {
		return false
	}
	if nbf, ok := a.numericDate("nbf"); ok {
		return exp.Sub(nbf) <= maxAssertionLifetime
	}
	within := func(at time.Time) bool { return exp.Sub(at) <= maxAssertionLifetime+core.ClockSkew }
	return within(now) || within(s.Wall().Now())
}

// assertionTimeValid checks exp (required) and nbf with skew. SDKs mint
// assertions from their wall clock, which does not follow the simulator's
// time jumps, so a window valid by either clock is accepted.
func (s *Service) assertionTimeValid(a *assertion, now time.Time) bool {
	exp, ok := a.numericDate("exp")
	if !ok {
		return false
	}
	nbf, hasNBF := a.numericDate("nbf")
	valid := func(at time.Time) bool {
		return at.Before(exp.Add(core.ClockSkew)) && (!hasNBF || !at.Before(nbf.Add(-core.ClockSkew)))
	}
	return valid(now) || valid(s.Wall().Now())
}

// audienceIsTokenEndpoint accepts the token endpoint URL with the tenant
// named by id, name or domain, on this simulator's port and on the host the
// request was sent to (reqHost, the request's Host header), where the
// loopback names 127.0.0.1, localhost and [::1] count as one host.
func (s *Service) audienceIsTokenEndpoint(t *core.Tenant, reqHost string, auds []string) bool {
	authority, err := url.Parse(s.AuthorityHost())
	if err != nil {
		return false
	}
	for _, aud := range auds {
		u, err := url.Parse(aud)
		if err != nil || u.Scheme != "https" || u.Port() != authority.Port() || !sameHTTPSHost(u.Host, reqHost) {
			continue
		}
		seg, ok := strings.CutSuffix(strings.TrimPrefix(u.Path, "/"), "/oauth2/v2.0/token")
		if ok && (seg == t.ID || strings.EqualFold(seg, t.Name) || strings.EqualFold(seg, t.Domain)) {
			return true
		}
	}
	return false
}

// sameHTTPSHost reports whether two https host[:port] values name the same
// endpoint: equal ports (443 when absent) and equal host names, with the
// loopback names 127.0.0.1, localhost and [::1] counting as one.
func sameHTTPSHost(a, b string) bool {
	ua, ub := &url.URL{Host: a}, &url.URL{Host: b}
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		return "443"
	}
	if port(ua) != port(ub) {
		return false
	}
	ha, hb := ua.Hostname(), ub.Hostname()
	return ha != "" && (strings.EqualFold(ha, hb) || (isLoopbackName(ha) && isLoopbackName(hb)))
}

// isLoopbackName reports whether host is localhost, 127.0.0.1 or ::1.
func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

func findKey(keys []*core.Key, thumb func(*core.Key) []byte, want []byte) *core.Key {
	for _, k := range keys {
		if subtle.ConstantTimeCompare(thumb(k), want) == 1 {
			return k
		}
	}
	return nil
}

// decodeThumbprint accepts a thumbprint in standard or URL base64, padded
// or not (MSAL sends standard base64; RFC 7515 says base64url).
func decodeThumbprint(s string) ([]byte, bool) {
	if s == "" || len(s) > 128 {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(strings.TrimRight(s, "=")); err == nil {
			return b, true
		}
	}
	return nil, false
}

// resourceFromScope turns "<resource>/.default [openid offline_access
// profile]" into the resource. Client credentials only take .default.
func resourceFromScope(scope string) (string, bool) {
	var resource string
	for _, sc := range strings.Fields(scope) {
		switch sc {
		case "openid", "offline_access", "profile", "email":
			continue
		}
		r, ok := strings.CutSuffix(sc, "/.default")
		if !ok || r == "" || resource != "" {
			return "", false
		}
		resource = r
	}
	return resource, resource != ""
}

// knownResource reports whether the tenant can issue tokens for resource:
// the Microsoft APIs the simulator serves, the token exchange audience, or
// an application of the tenant by app id, "api://<app id>" or one of its
// identifier URIs.
func knownResource(t *core.Tenant, resource string) bool {
	for _, r := range []string{core.GraphResource, core.ARMResource, core.KeyVaultResource, core.AzureDevOpsResource, TokenExchangeAudience} {
		if core.SameResource(resource, r) {
			return true
		}
	}
	return t.ResourceApp(resource) != nil
}

// entraError writes e in Entra's error shape: the description carries the
// AADSTS code and the trace/correlation/timestamp trailer clients log.
func (s *Service) entraError(w http.ResponseWriter, r *http.Request, e *entraError) {
	traceID := uuid.NewString()
	corr := r.Header.Get("client-request-id")
	if _, err := uuid.Parse(corr); err != nil {
		corr = uuid.NewString()
	}
	ts := s.Clock().Now().UTC().Format("2006-01-02 15:04:05Z")
	desc := fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.aadsts, e.msg, traceID, corr, ts)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("x-ms-request-id", traceID)
	core.WriteJSON(w, e.status, core.PlainJSON, map[string]any{
		"error":             e.code,
		"error_description": desc,
		"error_codes":       []int{e.aadsts},
		"timestamp":         ts,
		"trace_id":          traceID,
		"correlation_id":    corr,
		"error_uri":         s.AuthorityHost() + "error?code=" + strconv.Itoa(e.aadsts),
	})
}

// serveDiscovery is the tenant's OpenID configuration. MSAL needs
// authorization_endpoint, token_endpoint and an issuer on the authority's
// host.
func (s *Service) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	t := s.World().Tenant(r.PathValue("tenant"))
	if t == nil {
		s.entraError(w, r, errTenantNotFound(r.PathValue("tenant")))
		return
	}
	base := s.AuthorityHost() + t.ID
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{
		"issuer":                                base + "/v2.0",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "roles", "name", "preferred_username", "email"},
		"request_uri_parameter_supported":       false,
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "microsoftonline.com",
		"msgraph_host":                          "graph.microsoft.com",
	})
}

// serveDiscoveryV1 is the tenant's v1.0 OpenID configuration
// ({authority}/{tenant}/.well-known/openid-configuration). Its issuer is
// https://sts.windows.net/{tid}/, the issuer of v1.0 access tokens, which
// is not the URL the document is served under: a validator must take the
// issuer from the document rather than derive it (go-oidc's discovery
// refuses the mismatch unless told otherwise).
func (s *Service) serveDiscoveryV1(w http.ResponseWriter, r *http.Request) {
	t := s.World().Tenant(r.PathValue("tenant"))
	if t == nil {
		s.entraError(w, r, errTenantNotFound(r.PathValue("tenant")))
		return
	}
	base := s.AuthorityHost() + t.ID
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{
		"issuer":                                core.StsIssuer(t.ID),
		"authorization_endpoint":                base + "/oauth2/authorize",
		"token_endpoint":                        base + "/oauth2/token",
		"end_session_endpoint":                  base + "/oauth2/logout",
		"jwks_uri":                              base + "/discovery/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "token id_token", "token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "roles", "name", "upn", "appid"},
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "microsoftonline.com",
		"msgraph_host":                          "graph.microsoft.com",
	})
}

// serveJWKS publishes the simulator's signing keys (the same for every
// tenant): the current one and those a rollover replaced
// (core.RotateSigningKey), as Entra lists several keys at once.
func (s *Service) serveJWKS(w http.ResponseWriter, r *http.Request) {
	t := s.World().Tenant(r.PathValue("tenant"))
	if t == nil {
		s.entraError(w, r, errTenantNotFound(r.PathValue("tenant")))
		return
	}
	s.Counters().JWKSRequests.Add(1)
	var keys []map[string]any
	for _, k := range s.PublishedKeys() {
		keys = append(keys, map[string]any{
			"kty":    "RSA",
			"use":    "sig",
			"kid":    k.KeyID,
			"x5t":    k.KeyID,
			"n":      base64.RawURLEncoding.EncodeToString(k.Public.N.Bytes()),
			"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Public.E)).Bytes()),
			"x5c":    []string{base64.StdEncoding.EncodeToString(k.Cert.Raw)},
			"issuer": s.AuthorityHost() + t.ID + "/v2.0",
		})
	}
	w.Header().Set("Cache-Control", "max-age=86400")
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{"keys": keys})
}

// miHandler is the App Service managed identity endpoint (plain HTTP, as
// App Service serves it on loopback). One endpoint serves all tenants: it
// issues for the first tenant's managed identity unless client_id,
// object_id/principal_id or mi_res_id names another one.
func (s *Service) miHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /msi/token", s.serveMI)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.miError(w, r, http.StatusNotFound, "Not found.")
	})
	return mux
}

func (s *Service) serveMI(w http.ResponseWriter, r *http.Request) {
	got := r.Header.Get("X-IDENTITY-HEADER")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.miHeader)) != 1 {
		s.miError(w, r, http.StatusBadRequest, "The X-IDENTITY-HEADER header is missing or wrong.")
		return
	}
	q := r.URL.Query()
	if v := q.Get("api-version"); v != "2019-08-01" {
		s.miError(w, r, http.StatusBadRequest, "api-version must be 2019-08-01.")
		return
	}
	resource := strings.TrimSuffix(q.Get("resource"), "/.default")
	if resource == "" {
		s.miError(w, r, http.StatusBadRequest, "The resource parameter is required.")
		return
	}

	s.World().RLock()
	var (
		tenant *core.Tenant
		sp     *core.ServicePrincipal
	)
	clientID, objectID, resID := q.Get("client_id"), q.Get("object_id"), q.Get("mi_res_id")
	if objectID == "" {
		objectID = q.Get("principal_id")
	}
	for _, t := range s.World().TenantsLocked() {
		for _, cand := range t.SPs {
			if !cand.ManagedIdentity {
				continue
			}
			match := (clientID == "" && objectID == "" && resID == "" && cand.AppID == t.ManagedIdentityClientID) ||
				(clientID != "" && cand.AppID == clientID) ||
				(objectID != "" && cand.ObjectID == objectID) ||
				(resID != "" && strings.EqualFold(path.Base(resID), cand.DisplayName))
			if match {
				tenant, sp = t, cand
				break
			}
		}
		if sp != nil {
			break
		}
	}
	var grant core.ServicePrincipal
	okResource := false
	if sp != nil {
		grant = *sp
		grant.AppRoles = append([]string(nil), sp.AppRoles...)
		okResource = knownResource(tenant, resource)
	}
	s.World().RUnlock()
	if sp == nil {
		s.miError(w, r, http.StatusBadRequest, "No managed identity matches the request.")
		return
	}
	if !okResource {
		s.miError(w, r, http.StatusBadRequest, "The resource is not known to the simulator.")
		return
	}
	tok, exp, err := s.MintAccessToken(tenant.ID, &grant, resource, core.AcrAssertion)
	if err != nil {
		s.Logger().Error("mint managed identity token", "err", err)
		s.miError(w, r, http.StatusInternalServerError, "Could not issue a token.")
		return
	}
	s.Counters().MITokens.Add(1)
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    grant.AppID,
	})
}

// miError is App Service's identity endpoint error shape.
func (s *Service) miError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	core.WriteJSON(w, status, core.PlainJSON, map[string]any{"statusCode": status, "message": msg, "correlationId": uuid.NewString()})
}

// assertion is a parsed, not yet trusted, client assertion JWT.
type assertion struct {
	header, claims map[string]any
	signingInput   string
	sig            []byte
}

// parseAssertion splits and decodes a compact JWS without trusting it. It
// never panics on any input (FuzzClientAssertion).
func parseAssertion(raw string) (*assertion, error) {
	if len(raw) > maxAssertionLen {
		return nil, errors.New("assertion too long")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("assertion is not a compact JWS")
	}
	hb, err := decodeSegment(parts[0])
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	cb, err := decodeSegment(parts[1])
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	sig, err := decodeSegment(parts[2])
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	a := &assertion{signingInput: parts[0] + "." + parts[1], sig: sig}
	if a.header, err = decodeObject(hb); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if a.claims, err = decodeObject(cb); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	return a, nil
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

func (a *assertion) headerString(k string) string { s, _ := a.header[k].(string); return s }
func (a *assertion) claimString(k string) string  { s, _ := a.claims[k].(string); return s }

// audiences reads aud as a string or an array of strings.
func (a *assertion) audiences() []string {
	switch v := a.claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// numericDate reads a NumericDate given as a JSON number or, as some
// clients send it, a string of digits.
func (a *assertion) numericDate(k string) (time.Time, bool) {
	var f float64
	var err error
	switch v := a.claims[k].(type) {
	case json.Number:
		f, err = v.Float64()
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
	default:
		return time.Time{}, false
	}
	// Years 1970..5138: anything else is nonsense, and keeps time.Unix sane.
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// x5c returns the decoded certificate chain of the header, if any.
func (a *assertion) x5c() [][]byte {
	list, _ := a.header["x5c"].([]any)
	var out [][]byte
	for _, v := range list {
		s, _ := v.(string)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return [][]byte{nil} // present but unreadable: matches no key
		}
		out = append(out, b)
	}
	return out
}

// verify checks the signature with pub; only RS256 and PS256 are allowed.
func (a *assertion) verify(pub *rsa.PublicKey) error {
	var m jwt.SigningMethod
	switch a.headerString("alg") {
	case "RS256":
		m = jwt.SigningMethodRS256
	case "PS256":
		m = jwt.SigningMethodPS256
	default:
		return errors.New("unsupported signing algorithm")
	}
	return m.Verify(a.signingInput, a.sig, pub)
}

// clip bounds caller-supplied text echoed in an error message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
