package azure

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/rotor-dev/rotor/internal/secret"
)

// AADSTS error codes rotor reacts to.
const (
	// CodeInvalidClientSecret (AADSTS7000215) is what Entra answers while a
	// new secret has not replicated yet — and also for a secret that is
	// simply wrong. Callers tell the two apart only by a deadline.
	CodeInvalidClientSecret = 7000215
	// CodeSecretExpired (AADSTS7000222): the secret has expired.
	CodeSecretExpired = 7000222
	// CodeAppNotFound (AADSTS700016): no such application in the tenant.
	CodeAppNotFound = 700016
	// CodeInvalidScope (AADSTS70011): the scope is malformed.
	CodeInvalidScope = 70011
)

// TokenError is a failed token request, classified by its AADSTS code.
type TokenError struct {
	// Code is the AADSTS number (first of error_codes), 0 when the failure
	// did not come from Entra (network, context).
	Code int
	// Status is the HTTP status of the token response, 0 without a response.
	Status int
	// OAuthError is the OAuth "error" field, e.g. "invalid_client".
	OAuthError string
	// Description is the first line of error_description (Entra's text; it
	// never echoes the secret).
	Description string
	// TenantID and ClientID say whose token was requested.
	TenantID, ClientID string
	// Err is the underlying error.
	Err error
}

// Error describes the failure without any secret material.
func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token request for client %s in tenant %s failed", e.ClientID, e.TenantID)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " AADSTS%d", e.Code)
	}
	if e.OAuthError != "" {
		fmt.Fprintf(&b, " (%s)", e.OAuthError)
	}
	switch {
	case e.Description != "":
		fmt.Fprintf(&b, ": %s", e.Description)
	case e.Status == 0 && e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the underlying error (so errors.Is(err, context.Canceled)
// works).
func (e *TokenError) Unwrap() error { return e.Err }

// IsReplicationPending reports whether err is AADSTS7000215, which right
// after addPassword means "Entra has not replicated the new secret yet";
// keep retrying until the caller's deadline.
func IsReplicationPending(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.Code == CodeInvalidClientSecret
}

// VerifySecret proves that s works: it requests a Graph token for clientID in
// tenantID with a fresh ClientSecretCredential, so no token cached for an
// older secret can make a broken one look good. The returned error is a
// *TokenError.
func VerifySecret(ctx context.Context, ep Endpoints, tenantID, clientID string, s secret.Value) error {
	if s.IsZero() {
		return &TokenError{TenantID: tenantID, ClientID: clientID, Err: errors.New("secret is empty")}
	}
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, s.Reveal(), &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            ClientOptions(ep),
		DisableInstanceDiscovery: ep.DisableInstanceDiscovery || ep.Cloud == Sim,
	})
	return freshToken(ctx, ep, tenantID, clientID, cred, err)
}

// freshToken asks cred — just built, so nothing is cached — for a Graph
// token: the one proof that a new credential works. buildErr is the error
// of building cred. Errors are *TokenError.
func freshToken(ctx context.Context, ep Endpoints, tenantID, clientID string, cred azcore.TokenCredential, buildErr error) error {
	if buildErr != nil {
		return &TokenError{TenantID: tenantID, ClientID: clientID, Err: buildErr}
	}
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{ep.GraphScope}}); err != nil {
		return classifyTokenError(tenantID, clientID, err)
	}
	return nil
}

// classifyTokenError turns azidentity's error into a *TokenError by reading
// the token endpoint's JSON body (error, error_description, error_codes).
func classifyTokenError(tenantID, clientID string, err error) *TokenError {
	te := ParseTokenError(err)
	te.TenantID, te.ClientID = tenantID, clientID
	return te
}

// ParseTokenError reads what Entra said about a failed token request from
// err (an azidentity error): HTTP status, OAuth error, AADSTS code and the
// first line of the description. Anything else that asks for tokens (the
// Key Vault sink, for one) reads Entra's answer with it rather than parsing
// the body again.
func ParseTokenError(err error) *TokenError {
	te := &TokenError{Err: err}
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil {
		return te
	}
	te.Status = afe.RawResponse.StatusCode
	body, rerr := runtime.Payload(afe.RawResponse)
	if rerr != nil || len(body) == 0 {
		return te
	}
	var tr struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
	}
	if json.Unmarshal(body, &tr) != nil {
		return te
	}
	te.OAuthError = tr.Error
	if len(tr.Codes) > 0 {
		te.Code = tr.Codes[0]
	} else {
		te.Code = parseAADSTS(tr.Description)
	}
	desc := tr.Description
	if i := strings.IndexAny(desc, "\r\n"); i >= 0 {
		desc = desc[:i]
	}
	te.Description = strings.TrimSpace(desc)
	return te
}

// parseAADSTS finds "AADSTS<digits>" in s, 0 if absent.
func parseAADSTS(s string) int {
	i := strings.Index(s, "AADSTS")
	if i < 0 {
		return 0
	}
	n := 0
	for _, r := range s[i+len("AADSTS"):] {
		if r < '0' || r > '9' {
			break
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// NewSecretsClient returns a Key Vault secrets client for vaultURL on ep's
// transport and retry options. For the simulator it disables azsecrets'
// challenge resource verification, because its vaults live on loopback
// ports rather than under vault.azure.net.
func NewSecretsClient(vaultURL string, cred azcore.TokenCredential, ep Endpoints) (*azsecrets.Client, error) {
	if !strings.HasPrefix(vaultURL, "https://") {
		return nil, fmt.Errorf("vault URL %q must be https", vaultURL)
	}
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{
		ClientOptions:                        ClientOptions(ep),
		DisableChallengeResourceVerification: ep.DisableChallengeResourceVerification,
	})
	if err != nil {
		return nil, fmt.Errorf("key vault client for %s: %w", vaultURL, err)
	}
	return c, nil
}

// VerifyCertificate proves that a certificate credential works: it
// requests a Graph token for clientID in tenantID through the
// client-assertion flow with a fresh azidentity ClientCertificateCredential,
// so the assertion is exactly what MSAL sends (RS256, x5t, no cached token
// for another credential). chain is the leaf first; key is its RSA private
// key (MSAL refuses others). The returned error is a *TokenError.
func VerifyCertificate(ctx context.Context, ep Endpoints, tenantID, clientID string, chain []*x509.Certificate, key crypto.PrivateKey) error {
	if len(chain) == 0 || key == nil {
		return &TokenError{TenantID: tenantID, ClientID: clientID, Err: errors.New("certificate or key is missing")}
	}
	cred, err := azidentity.NewClientCertificateCredential(tenantID, clientID, chain, key, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions:            ClientOptions(ep),
		DisableInstanceDiscovery: ep.DisableInstanceDiscovery || ep.Cloud == Sim,
	})
	// A build error from azidentity names the problem (key type,
	// mismatch), never the key.
	return freshToken(ctx, ep, tenantID, clientID, cred, err)
}
