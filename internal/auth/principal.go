// Package auth authenticates machine callers of rotor's HTTP API and says
// what they may do: Entra ID access tokens issued to client applications
// (Validator: issuer from each tenant's discovery document, signature by
// its JWKS, audience rotor's own API, a short clock skew, RS256 only, app
// roles mapped to rotor roles per organization), rotor-issued API keys
// (APIKeys), a rate limit per calling application (Limiter), the bearer
// middleware that puts the Principal in the request's context, and an
// app.Authorizer that holds use cases to the principal's roles.
//
// Nothing here logs, returns or echoes a presented token or key: errors
// carry a Reason from a fixed vocabulary, and responses say only that.
// The package depends on no router (docs/api-auth.md, docs/adr/0021).
package auth

import (
	"context"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
)

// Method is how a principal proved who it is.
type Method string

// Methods.
const (
	// MethodEntra is an Entra ID access token of a client application.
	MethodEntra Method = "entra"
	// MethodAPIKey is a rotor-issued API key.
	MethodAPIKey Method = "apikey"
	// MethodSession is the session of a person signed in to the UI
	// (internal/web/session): through Entra, or the local break-glass
	// admin.
	MethodSession Method = "session"
)

// Principal is an authenticated machine caller.
type Principal struct {
	// Actor is who the audit trail names: for an app-only Entra token
	// the client's app id (appid or azp) with its service principal's
	// object id (oid) and tenant in Name; for a delegated token ('rotor
	// login') the user (kind user, their object id, "Name <upn>"); for
	// an API key "apikey:<id>" and the key's name.
	Actor  app.Actor
	Method Method
	// TenantID, ClientID and ObjectID are the token's tid, appid/azp and
	// oid (empty for an API key; ObjectID is the user's for a delegated
	// token).
	TenantID string
	ClientID string
	ObjectID string
	// AppRoles are the token's roles claim, as Entra issued it.
	AppRoles []string
	// Roles are the rotor roles the caller holds, by organization.
	Roles map[domain.OrgID]app.Role
	// RateKey is what the rate limit counts requests against: the
	// calling application (tenant and app id) or the API key.
	RateKey string
	// ExpiresAt is when the token or key stops working.
	ExpiresAt time.Time
	// Owned restricts a person's session to the applications they own in
	// Entra (app.Scope.Owned, docs/adr/0030); nil for every machine
	// caller (bearer tokens, API keys), which are never restricted.
	Owned *app.OwnedSet
}

// Role returns the principal's role in org; false when it has none.
func (p *Principal) Role(org domain.OrgID) (app.Role, bool) {
	r, ok := p.Roles[org]
	return r, ok
}

// Scope is the scope a use case called on behalf of the principal in org
// takes: the Authorizer checks that its actor is the principal's.
func (p *Principal) Scope(org domain.OrgID, requestID string) app.Scope {
	return app.Scope{Org: org, Actor: p.Actor, RequestID: requestID, Owned: p.Owned}
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the bearer middleware authenticated
// for this request, if any.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
