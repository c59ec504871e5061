// Package sim is rotor's local Azure: Entra ID (token endpoint, discovery,
// JWKS, managed identity), Microsoft Graph v1.0 applications, Key Vault
// secrets, and fault injection, served over HTTPS on loopback with its own CA.
// Microsoft's SDK clients work against it unchanged given only sim.json.
//
// File map:
//
//	contract.go  – the seams between the parts (this file)
//	state.go     – the in-memory directory: tenants, apps, credentials, vaults
//	server.go    – New/Start/Close, TLS CA, listeners, sim.json, routing
//	seed.go      – the demo seed and the bulk seed (apps=N,tenants=T,expiring=D)
//	tokens.go    – access-token minting and validation (RS256, JWKS)
//	entra.go     – token endpoint, discovery, JWKS, managed identity endpoint
//	faults.go    – latency, 5xx, dropped connections, per-tenant token bucket, /_sim/ control API
//	graph*.go    – Graph v1.0 handlers, $batch, app management policy, proof-of-possession
//	keyvault.go  – Key Vault secrets data plane with the challenge flow
package sim

import "net/http"

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

// The seams, implemented in the files named:
//
//   tokens.go:
//     func (s *Server) authenticate(r *http.Request, resource string) (*Caller, error)
//       validates "Authorization: Bearer <jwt>" fully (signature with the
//       simulator's key, issuer, audience == resource, exp/nbf) and returns the
//       caller. On failure it returns an *AuthError that the Graph and Key
//       Vault handlers render in their own error shape (401).
//
//   faults.go:
//     func (s *Server) admitGraph(w http.ResponseWriter, tenantID, appID string, cost int, write bool) bool
//       charges the per-app+tenant token bucket; when exhausted it writes
//       Graph's 429 (Retry-After, x-ms-throttle-scope, error body) and
//       returns false. $batch calls it per item with a recorder.
//
//   graph.go:
//     func (s *Server) graphHandler() http.Handler   mounted at /graph/v1.0/
//   keyvault.go:
//     func (s *Server) keyVaultHandler() http.Handler  served on each vault's own listener
//       (the vault is found from r.Host via s.vaultByHost).

// AuthError is a refused bearer token.
type AuthError struct {
	Status  int
	Message string
}

func (e *AuthError) Error() string { return e.Message }

var _ = http.StatusUnauthorized
