package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// LoginConfigPath is where 'rotor login' reads how to sign a person in
// to this rotor: public, like the document, since the CLI reads it
// before it holds any token, and it holds nothing secret (what any
// Entra sign-in page's URL shows).
const LoginConfigPath = Prefix + "/login-config"

// LoginConfig is how a person signs in to rotor's API from the command
// line: the OAuth 2.0 authorization code flow with PKCE, as the public
// client ClientID, with a loopback redirect, for Scopes. The access token
// it yields is a delegated token for rotor's API, whose user's app roles
// bind rotor roles (docs/api-auth.md).
type LoginConfig struct {
	Authority             string   `json:"authority" doc:"The Entra authority host." example:"https://login.microsoftonline.com/"`
	Tenant                string   `json:"tenant" doc:"The tenant people sign in from: api_auth.entra.tenants' first."`
	ClientID              string   `json:"client_id" doc:"rotor's CLI registration, a public client (api_auth.entra.cli_client_id)."`
	Scopes                []string `json:"scopes" doc:"What to ask for: the CLI's delegated permission of rotor's API, and offline_access for a refresh token."`
	AuthorizationEndpoint string   `json:"authorization_endpoint" doc:"The tenant's v2.0 authorize endpoint."`
	TokenEndpoint         string   `json:"token_endpoint" doc:"The tenant's v2.0 token endpoint."`
}

// NewLoginConfig is the sign-in of the CLI through authority's tenant, as
// clientID, for the delegated permission scope of the API named audience
// (its application ID URI, or its app id).
func NewLoginConfig(authority, tenant, clientID, audience, scope string) *LoginConfig {
	base := authority + tenant + "/oauth2/v2.0/"
	return &LoginConfig{
		Authority: authority, Tenant: tenant, ClientID: clientID,
		Scopes:                []string{audience + "/" + scope, "offline_access"},
		AuthorizationEndpoint: base + "authorize", TokenEndpoint: base + "token",
	}
}

type loginConfigOutput struct{ Body LoginConfig }

// loginRoute registers GET /login-config: outside the bearer check
// (New), and documented as needing no credential.
func (a *API) loginRoute(cfg *LoginConfig) {
	huma.Register(a.huma, huma.Operation{
		OperationID: "getLoginConfig", Method: http.MethodGet, Path: LoginConfigPath, Summary: "How to sign in from the command line",
		Description: "What `rotor login` needs to sign a person in with Entra ID (authorization code flow with PKCE, a public client, a loopback redirect). " +
			"Needs no credential. 404 when this rotor accepts no user tokens (api_auth.entra.cli_client_id is not set): use an API key.",
		Tags: []string{"caller"}, Security: []map[string][]string{}, Errors: []int{http.StatusNotFound},
	}, func(context.Context, *struct{}) (*loginConfigOutput, error) {
		if cfg == nil {
			return nil, newProblem(http.StatusNotFound, "not_found", "this rotor offers no sign-in to the CLI (api_auth.entra.cli_client_id is not set): use an API key in ROTOR_TOKEN")
		}
		return &loginConfigOutput{Body: *cfg}, nil
	})
}
