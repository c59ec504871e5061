package core

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token lifetimes and tolerances, as Entra uses them.
const (
	AccessTokenLifetime = time.Hour
	// ClockSkew is how far nbf/exp may be off, both for access tokens the
	// simulator checks and for client assertions it receives.
	ClockSkew = 5 * time.Minute
)

// acr values (appidacr): how the client proved who it is.
const (
	AcrSecret    = "1"
	AcrAssertion = "2" // certificate, federated assertion or managed identity
	AcrPublic    = "0" // a public client: no credential
)

// StsIssuer is the v1 issuer of a tenant's access tokens.
func StsIssuer(tenantID string) string { return "https://sts.windows.net/" + tenantID + "/" }

// SameResource compares resource URIs ignoring one trailing slash, since
// Entra issues ARM tokens for "https://management.azure.com/" and clients
// ask with or without it.
func SameResource(a, b string) bool {
	return a != "" && strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

// V2Issuer is the v2.0 issuer of a tenant's tokens on this simulator's
// authority ("https://127.0.0.1:PORT/{tid}/v2.0"), as the tenant's v2.0
// discovery document names it.
func (s *Core) V2Issuer(tenantID string) string { return s.AuthorityHost() + tenantID + "/v2.0" }

// MintAccessToken signs an app-only access token for sp. Tokens for
// Microsoft's APIs are v1-shaped, and only Graph tokens carry roles (the
// other simulated services authorize by other means). A token for an
// application of the tenant that exposes an API (Tenant.ResourceApp) is
// shaped by that application's accessTokenAcceptedVersion, as Entra shapes
// it: v1.0 with aud the resource as requested (identifier URI or app id),
// iss https://sts.windows.net/{tid}/, appid and appidacr; v2.0 with aud the
// API's app id, iss {authority}/{tid}/v2.0, azp and azpacr. Either carries
// the API's app roles assigned to sp in roles.
func (s *Core) MintAccessToken(tenantID string, sp *ServicePrincipal, resource, acr string) (string, time.Time, error) {
	now := s.clock.Now()
	exp := now.Add(AccessTokenLifetime)
	uti := make([]byte, 16)
	if _, err := rand.Read(uti); err != nil {
		return "", time.Time{}, fmt.Errorf("token id: %w", err)
	}
	claims := jwt.MapClaims{
		"aud":      resource,
		"iss":      StsIssuer(tenantID),
		"idp":      StsIssuer(tenantID),
		"iat":      now.Unix(),
		"nbf":      now.Add(-ClockSkew).Unix(),
		"exp":      exp.Unix(),
		"appid":    sp.AppID,
		"appidacr": acr,
		"oid":      sp.ObjectID,
		"sub":      sp.ObjectID,
		"tid":      tenantID,
		"uti":      base64.RawURLEncoding.EncodeToString(uti),
		"ver":      "1.0",
		"idtyp":    "app",
	}
	switch {
	case SameResource(resource, GraphResource):
		roles := make([]string, len(sp.AppRoles))
		copy(roles, sp.AppRoles)
		claims["roles"] = roles
	case SameResource(resource, ARMResource), SameResource(resource, KeyVaultResource):
	default:
		if api, roles, ok := s.apiResource(tenantID, sp, resource); ok {
			claims["roles"] = roles
			if api.AccessTokenVersion == 2 {
				claims["aud"] = api.AppID
				claims["iss"] = s.V2Issuer(tenantID)
				claims["azp"], claims["azpacr"] = sp.AppID, acr
				claims["ver"] = "2.0"
				delete(claims, "appid")
				delete(claims, "appidacr")
				delete(claims, "idp")
			}
		}
	}
	tok, err := s.Sign(claims)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// apiResource finds the tenant's application that resource names and the
// values of its app roles assigned to sp (by its app id: sp may be a copy).
// It takes the world's read lock: callers must not hold it.
func (s *Core) apiResource(tenantID string, sp *ServicePrincipal, resource string) (Application, []string, bool) {
	s.world.RLock()
	defer s.world.RUnlock()
	t := s.world.TenantLocked(tenantID)
	if t == nil {
		return Application{}, nil, false
	}
	api := t.ResourceApp(resource)
	if api == nil {
		return Application{}, nil, false
	}
	holder := t.SPByAppID(sp.AppID)
	if holder == nil {
		holder = sp
	}
	return *api, holder.RolesOn(api), true
}

// Sign signs claims with the simulator's key, with kid and x5t in the
// header so clients can find the key in the JWKS.
func (s *Core) Sign(claims jwt.MapClaims) (string, error) {
	s.keyMu.RLock()
	key, kid := s.signKey, s.kid
	s.keyMu.RUnlock()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	t.Header["x5t"] = kid
	out, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return out, nil
}

// MintToken issues an access token for resource to the service principal
// of clientID in tenant (id, name or domain), without a token request. It
// is for tests and tools that need a caller quickly; the token is the same
// as the token endpoint would issue for a secret.
func (s *Core) MintToken(tenant, clientID, resource string) (string, error) {
	s.world.RLock()
	t := s.world.TenantLocked(tenant)
	var sp *ServicePrincipal
	if t != nil {
		sp = t.SPByAppID(clientID)
	}
	var tid string
	if t != nil {
		tid = t.ID
	}
	s.world.RUnlock()
	if t == nil {
		return "", fmt.Errorf("sim: tenant %q not found", tenant)
	}
	if sp == nil {
		return "", fmt.Errorf("sim: no service principal for client %s in tenant %s", clientID, tid)
	}
	tok, _, err := s.MintAccessToken(tid, sp, resource, AcrSecret)
	return tok, err
}

// MintExternalToken signs an arbitrary OIDC-style token (iss, sub, aud)
// with the simulator's key. The token endpoint cannot fetch a foreign
// issuer's JWKS, so it accepts federated assertions signed by its own key
// whatever their issuer: this is how a test plays GitHub Actions or
// Kubernetes as a federation source.
func (s *Core) MintExternalToken(issuer, subject, audience string, ttl time.Duration) (string, error) {
	now := s.clock.Now()
	return s.Sign(jwt.MapClaims{
		"iss": issuer, "sub": subject, "aud": audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
}

// Authenticate validates the request's "Authorization: Bearer" access
// token: RS256 only (never "none" or HMAC, which would let anyone forge a
// token from public data), the simulator's signature, the v1 issuer of a
// known tenant, an audience equal to resource (trailing slash ignored), and
// exp/nbf against the simulated clock with 5 minutes of skew. The header
// must name the simulator's key in a string kid. Both exp and nbf are
// required: the simulator always issues them, as Entra does on
// every access token, so a token without one was not minted here. Failures
// are *AuthError (401) whose message never includes the token.
func (s *Core) Authenticate(r *http.Request, resource string) (*Caller, error) {
	raw, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return nil, &AuthError{Status: http.StatusUnauthorized, Message: "Access token is empty."}
	}
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithTimeFunc(s.clock.Now),
		jwt.WithLeeway(ClockSkew),
		jwt.WithExpirationRequired(),
	)
	_, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		// Entra always names its signing key, and a resource finds the
		// key in the JWKS by kid: a token without one (or with a kid that
		// is not a string) cannot have been issued here, whatever key
		// happens to verify it.
		v, present := t.Header["kid"]
		if !present {
			return nil, errNoKid
		}
		kid, ok := v.(string)
		if !ok {
			return nil, errKidNotString
		}
		pub := s.PublicKey(kid)
		if pub == nil {
			return nil, errUnknownKid
		}
		return pub, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, errNoKid):
		return nil, authErr("Access token validation failure. The token header has no kid.")
	case errors.Is(err, errKidNotString):
		return nil, authErr("Access token validation failure. The token header's kid is not a string.")
	case errors.Is(err, errUnknownKid):
		return nil, authErr("Access token validation failure. The token's kid names no signing key of this issuer.")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// Only exp is required through the parser (WithExpirationRequired);
		// say so rather than blaming the signature.
		return nil, authErr("Lifetime validation failed, the token has no exp claim.")
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, authErr("Lifetime validation failed, the token is expired.")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, authErr("Lifetime validation failed, the token is not yet valid.")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, authErr("Access token is malformed.")
	default:
		return nil, authErr("Access token validation failure. Invalid signature or signing algorithm.")
	}

	// jwt/v5 checks nbf only when present and has no option to require it.
	if nbf, err := claims.GetNotBefore(); err != nil || nbf == nil {
		return nil, authErr("Lifetime validation failed, the token has no nbf claim.")
	}

	tid, _ := claims["tid"].(string)
	if iss, _ := claims["iss"].(string); tid == "" || iss != StsIssuer(tid) {
		return nil, authErr("Access token validation failure. Invalid issuer.")
	}
	if s.world.Tenant(tid) == nil {
		return nil, authErr("Access token validation failure. Unknown tenant.")
	}
	auds, err := claims.GetAudience()
	if err != nil || !containsResource(auds, resource) {
		return nil, authErr("Access token validation failure. Invalid audience.")
	}
	c := &Caller{TenantID: tid}
	c.AppID, _ = claims["appid"].(string)
	c.ObjectID, _ = claims["oid"].(string)
	if c.AppID == "" || c.ObjectID == "" {
		return nil, authErr("Access token validation failure. Missing appid or oid.")
	}
	if scp, ok := claims["scp"].(string); ok {
		c.Scopes = append([]string{}, strings.Fields(scp)...)
	}
	if roles, ok := claims["roles"].([]any); ok {
		for _, v := range roles {
			if s, ok := v.(string); ok {
				c.Roles = append(c.Roles, s)
			}
		}
	}
	return c, nil
}

// Reasons the key lookup refuses a token before its signature is checked.
var (
	errNoKid        = errors.New("token header has no kid")
	errKidNotString = errors.New("token header kid is not a string")
	errUnknownKid   = errors.New("unknown signing key")
)

func authErr(msg string) *AuthError {
	return &AuthError{Status: http.StatusUnauthorized, Message: msg}
}

func containsResource(auds []string, resource string) bool {
	for _, a := range auds {
		if SameResource(a, resource) {
			return true
		}
	}
	return false
}

// bearerToken extracts the token of an "Authorization: Bearer" header (the
// scheme is case-insensitive).
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
