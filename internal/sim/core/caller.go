package core

import "strings"

// Caller is the authenticated principal behind a request's bearer token.
type Caller struct {
	TenantID string
	// AppID is the client id (appid/azp claim).
	AppID string
	// ObjectID is the service principal's object id (oid claim).
	ObjectID string
	// Roles are the application permissions in the token (roles claim).
	Roles []string
	// Scopes are the delegated permissions of a user's token (scp claim),
	// nil for an app-only token. ObjectID is then the user's object id.
	Scopes []string
}

// Delegated reports whether the token acts for a signed-in user (it
// carries scp), rather than for an application alone.
func (c *Caller) Delegated() bool { return c.Scopes != nil }

// HasScope reports whether a delegated token carries the permission.
func (c *Caller) HasScope(scope string) bool {
	for _, s := range c.Scopes {
		if strings.EqualFold(s, scope) {
			return true
		}
	}
	return false
}

// HasRole reports whether the token carries role.
func (c *Caller) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// AuthError is a refused bearer token. Each service renders it in its own
// error shape (Graph's InvalidAuthenticationToken, Key Vault's challenge,
// ARM's InvalidAuthenticationToken); Message says what is wrong and never
// includes the token.
type AuthError struct {
	Status  int
	Message string
}

func (e *AuthError) Error() string { return e.Message }
