package core

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IDTokenLifetime is how long ID tokens and delegated access tokens live
// (Entra's default is 60–90 minutes; one hour here).
const IDTokenLifetime = time.Hour

// UserGrant is what a signed-in user granted a client: the inputs of the
// tokens the authorization code and refresh token grants issue.
type UserGrant struct {
	TenantID string
	// App is a copy of the client application (its app roles, its
	// groupMembershipClaims).
	App Application
	// User is a copy of the user (groups, app role assignments).
	User User
	// Scopes are the scopes granted: OpenID Connect's (openid, profile,
	// email, offline_access) and Graph's delegated permissions.
	Scopes []string
	// Nonce goes into the ID token when the request carried one.
	Nonce string
	// ACR is appidacr: how the client authenticated (AcrSecret,
	// AcrAssertion, or AcrPublic for a public client).
	ACR string
	// API, when set, is a copy of the web API the access token is for
	// (Scopes then holds its delegated permissions, not Graph's), and
	// Resource is that API as the client named it (identifier URI or
	// app id): a v1.0 token's aud.
	API      *Application
	Resource string
}

// HasScope reports whether the grant includes scope.
func (g *UserGrant) HasScope(scope string) bool { return slices.Contains(g.Scopes, scope) }

// GraphScopes are the grant's Graph permissions (what the access token's
// scp lists besides openid, profile and email).
func (g *UserGrant) GraphScopes() []string {
	var out []string
	for _, s := range g.Scopes {
		if s != "offline_access" {
			out = append(out, s)
		}
	}
	return out
}

// APIScopes are the grant's permissions of its web API (OpenID Connect's
// scopes left out): what an API token's scp lists.
func (g *UserGrant) APIScopes() []string {
	var out []string
	for _, s := range g.Scopes {
		switch s {
		case "openid", "profile", "email", "offline_access":
		default:
			out = append(out, s)
		}
	}
	return out
}

// pairwiseSubject is the sub Entra gives a user in one application's
// tokens: stable for the pair, different per application, not the object
// id.
func pairwiseSubject(appID, userID string) string {
	h := sha256.Sum256([]byte("sub\x00" + appID + "\x00" + userID))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func randomUTI() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// MintIDToken signs a v2.0 ID token for the grant's user and client: iss
// {authority}/{tid}/v2.0, aud the client id, sub (pairwise), oid, tid,
// nonce, name, preferred_username, email (with the email scope), roles
// (the client's app roles assigned to the user, omitted when none) and,
// when the application's groupMembershipClaims asks for them, groups —
// (omitted for a user in none) or, for a user in more than
// GroupOverageLimit groups, the overage
// claims _claim_names and _claim_sources pointing to Graph instead.
func (s *Core) MintIDToken(g *UserGrant) (string, error) {
	now := s.clock.Now()
	uti, err := randomUTI()
	if err != nil {
		return "", err
	}
	u := &g.User
	claims := jwt.MapClaims{
		"aud":                g.App.AppID,
		"iss":                s.V2Issuer(g.TenantID),
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(IDTokenLifetime).Unix(),
		"sub":                pairwiseSubject(g.App.AppID, u.ObjectID),
		"oid":                u.ObjectID,
		"tid":                g.TenantID,
		"ver":                "2.0",
		"uti":                uti,
		"name":               u.DisplayName,
		"preferred_username": u.UserPrincipalName,
	}
	if g.Nonce != "" {
		claims["nonce"] = g.Nonce
	}
	if g.HasScope("email") && u.Mail != "" {
		claims["email"] = u.Mail
	}
	if roles := u.RolesOn(&g.App); len(roles) > 0 {
		claims["roles"] = roles
	}
	switch g.App.GroupMembershipClaims {
	case "SecurityGroup", "All":
		if len(u.Groups) > GroupOverageLimit {
			claims["_claim_names"] = map[string]string{"groups": "src1"}
			claims["_claim_sources"] = map[string]any{"src1": map[string]string{
				"endpoint": "https://graph.microsoft.com/v1.0/users/" + u.ObjectID + "/getMemberObjects",
			}}
		} else if len(u.Groups) > 0 {
			claims["groups"] = slices.Clone(u.Groups)
		}
	}
	return s.Sign(claims)
}

// MintDelegatedToken signs a v1.0 access token for Microsoft Graph on
// behalf of the grant's user: appid the client, oid the user, scp the
// Graph permissions granted, no roles; or, when the grant is for a web
// API (g.API), a token for that API shaped by its
// accessTokenAcceptedVersion as MintAccessToken shapes app-only ones, with
// scp the API's permissions granted and roles the API's app roles
// assigned to the user. It returns the token and its expiry.
func (s *Core) MintDelegatedToken(g *UserGrant) (string, time.Time, error) {
	if g.API != nil {
		return s.mintDelegatedAPIToken(g)
	}
	now := s.clock.Now()
	exp := now.Add(IDTokenLifetime)
	uti, err := randomUTI()
	if err != nil {
		return "", time.Time{}, err
	}
	u := &g.User
	tok, err := s.Sign(jwt.MapClaims{
		"aud":         GraphResource,
		"iss":         StsIssuer(g.TenantID),
		"idp":         StsIssuer(g.TenantID),
		"iat":         now.Unix(),
		"nbf":         now.Add(-ClockSkew).Unix(),
		"exp":         exp.Unix(),
		"appid":       g.App.AppID,
		"appidacr":    g.ACR,
		"oid":         u.ObjectID,
		"sub":         pairwiseSubject(GraphAppID, u.ObjectID),
		"tid":         g.TenantID,
		"scp":         strings.Join(g.GraphScopes(), " "),
		"name":        u.DisplayName,
		"upn":         u.UserPrincipalName,
		"unique_name": u.UserPrincipalName,
		"uti":         uti,
		"ver":         "1.0",
		"idtyp":       "user",
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// mintDelegatedAPIToken signs a user's access token for the web API
// g.API: v1.0 (aud the resource as asked for, appid, upn) or v2.0 (aud
// the API's app id, the v2.0 issuer, azp, preferred_username).
func (s *Core) mintDelegatedAPIToken(g *UserGrant) (string, time.Time, error) {
	now := s.clock.Now()
	exp := now.Add(IDTokenLifetime)
	uti, err := randomUTI()
	if err != nil {
		return "", time.Time{}, err
	}
	u := &g.User
	claims := jwt.MapClaims{
		"aud":   g.Resource,
		"iss":   StsIssuer(g.TenantID),
		"iat":   now.Unix(),
		"nbf":   now.Add(-ClockSkew).Unix(),
		"exp":   exp.Unix(),
		"oid":   u.ObjectID,
		"sub":   pairwiseSubject(g.API.AppID, u.ObjectID),
		"tid":   g.TenantID,
		"scp":   strings.Join(g.APIScopes(), " "),
		"name":  u.DisplayName,
		"uti":   uti,
		"idtyp": "user",
	}
	if roles := u.RolesOn(g.API); len(roles) > 0 {
		claims["roles"] = roles
	}
	if g.API.AccessTokenVersion == 2 {
		claims["aud"], claims["iss"], claims["ver"] = g.API.AppID, s.V2Issuer(g.TenantID), "2.0"
		claims["azp"], claims["azpacr"] = g.App.AppID, g.ACR
		claims["preferred_username"] = u.UserPrincipalName
	} else {
		claims["ver"], claims["idp"] = "1.0", StsIssuer(g.TenantID)
		claims["appid"], claims["appidacr"] = g.App.AppID, g.ACR
		claims["upn"], claims["unique_name"] = u.UserPrincipalName, u.UserPrincipalName
	}
	tok, err := s.Sign(claims)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}
