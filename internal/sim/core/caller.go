package core

// Caller is the authenticated principal behind a request's bearer token.
type Caller struct {
	TenantID string
	// AppID is the client id (appid/azp claim).
	AppID string
	// ObjectID is the service principal's object id (oid claim).
	ObjectID string
	// Roles are the application permissions in the token (roles claim).
	Roles []string
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
