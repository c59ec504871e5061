package azure

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// CallerObjectID returns the object id of the service principal behind
// cred, read from the oid claim of a token for scope. A system-assigned
// managed identity has no client id in rotor's configuration, so this is
// how rotor learns which principal it is (to find what it owns).
//
// The token is not verified: it was just issued to rotor by Entra over TLS,
// and rotor only reads its own identity from it, never trusts it for a
// decision about someone else.
func CallerObjectID(ctx context.Context, cred azcore.TokenCredential, scope string) (string, error) {
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return "", fmt.Errorf("get a token to learn the caller's object id: %w", err)
	}
	return tokenObjectID(tok.Token)
}

func tokenObjectID(jwt string) (string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", errors.New("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("decode the access token's claims: %w", err)
	}
	var claims struct {
		OID string `json:"oid"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", fmt.Errorf("parse the access token's claims: %w", err)
	}
	if claims.OID == "" {
		return "", errors.New("the access token carries no oid claim")
	}
	return claims.OID, nil
}

// SignIn is what a connection's sign-in proved: who it is and which
// application roles (Graph permissions) its token carries.
type SignIn struct {
	ObjectID string
	AppID    string
	TenantID string
	Roles    []string
}

// ProbeSignIn gets a token for scope with cred and reads, without
// verifying (as CallerObjectID), who it was issued to and the roles it
// carries: the "can this connection sign in, and with what?" of /readyz
// and `rotor connections test`. A refusal comes back as a *TokenError
// with Entra's AADSTS code.
func ProbeSignIn(ctx context.Context, cred azcore.TokenCredential, scope, tenantID, clientID string) (SignIn, error) {
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		te := ParseTokenError(err)
		te.TenantID, te.ClientID = tenantID, clientID
		return SignIn{}, te
	}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		return SignIn{}, errors.New("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return SignIn{}, fmt.Errorf("decode the access token's claims: %w", err)
	}
	var claims struct {
		OID   string   `json:"oid"`
		AppID string   `json:"appid"`
		AZP   string   `json:"azp"`
		TID   string   `json:"tid"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return SignIn{}, fmt.Errorf("parse the access token's claims: %w", err)
	}
	if claims.AppID == "" {
		claims.AppID = claims.AZP
	}
	return SignIn{ObjectID: claims.OID, AppID: claims.AppID, TenantID: claims.TID, Roles: claims.Roles}, nil
}
