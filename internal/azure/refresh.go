package azure

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/rotor-dev/rotor/internal/secret"
)

// SecretSource supplies a client secret at the moment a token is needed.
// fresh asks it to bypass any cache it keeps: Entra has just refused the
// value it gave.
type SecretSource func(ctx context.Context, fresh bool) (secret.Value, error)

// NewSourcedCredential is NewCredential for a client secret connection
// whose secret comes from src at use rather than from conn.Identity: an
// environment variable, a file or a Key Vault secret that may be rotated
// while rotor runs. Each token request asks src for the secret (src caches
// as it sees fit), and a new value replaces the credential. When Entra
// refuses the secret (AADSTS7000215 invalid, 7000222 expired) the request
// is made once more with a fresh value, so a secret rotated at its source
// is picked up at once instead of after the cache's lifetime.
func NewSourcedCredential(conn Connection, ep Endpoints, src SecretSource) (azcore.TokenCredential, error) {
	if conn.Identity.Method != ClientSecret {
		return nil, fmt.Errorf("connection %q: a secret source is only for client secrets, not %s", conn.Name, conn.Identity.Method)
	}
	if src == nil {
		return nil, fmt.Errorf("connection %q: no secret source", conn.Name)
	}
	return &sourcedCredential{conn: conn, ep: ep, src: src}, nil
}

type sourcedCredential struct {
	conn Connection
	ep   Endpoints
	src  SecretSource

	mu    sync.Mutex
	value secret.Value
	inner azcore.TokenCredential
}

var _ azcore.TokenCredential = (*sourcedCredential)(nil)

// credential returns the credential for the source's current value.
func (c *sourcedCredential) credential(ctx context.Context, fresh bool) (azcore.TokenCredential, error) {
	v, err := c.src(ctx, fresh)
	if err != nil {
		return nil, fmt.Errorf("connection %q: client secret: %w", c.conn.Name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner != nil && v.Reveal() == c.value.Reveal() {
		return c.inner, nil
	}
	conn := c.conn
	conn.Identity.ClientSecret = v
	inner, err := NewCredential(conn, c.ep)
	if err != nil {
		return nil, err
	}
	c.value, c.inner = v, inner
	return inner, nil
}

// GetToken implements azcore.TokenCredential.
func (c *sourcedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	cred, err := c.credential(ctx, false)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	tok, err := cred.GetToken(ctx, opts)
	if err == nil || !secretRefused(err) {
		return tok, err
	}
	again, ferr := c.credential(ctx, true)
	if ferr != nil || again == cred {
		// Nothing newer at the source: Entra's answer stands.
		return tok, err
	}
	return again.GetToken(ctx, opts)
}

// secretRefused reports whether Entra refused a client secret as wrong or
// expired.
func secretRefused(err error) bool {
	te := ParseTokenError(err)
	return te.Code == CodeInvalidClientSecret || te.Code == CodeSecretExpired
}

// KeyVaultReader reads Key Vault secrets as one identity: rotor's host
// identity reading the secrets that connections and sinks refer to. It
// keeps one azsecrets client per vault. Safe for concurrent use.
type KeyVaultReader struct {
	cred azcore.TokenCredential
	ep   Endpoints

	mu      sync.Mutex
	clients map[string]*azsecrets.Client
}

// NewKeyVaultReader returns a reader acting as conn (the host identity).
func NewKeyVaultReader(conn Connection) (*KeyVaultReader, error) {
	ep, err := ResolveEndpoints(conn.Cloud, conn.SimFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", conn.Name, err)
	}
	cred, err := NewCredential(conn, ep)
	if err != nil {
		return nil, err
	}
	return &KeyVaultReader{cred: cred, ep: ep, clients: map[string]*azsecrets.Client{}}, nil
}

// KeyVaultSecret returns the latest version of secret name in the vault at
// vaultURL. Errors name the vault and the secret, never a value.
func (r *KeyVaultReader) KeyVaultSecret(ctx context.Context, vaultURL, name string) (secret.Value, error) {
	r.mu.Lock()
	c, ok := r.clients[vaultURL]
	if !ok {
		var err error
		if c, err = NewSecretsClient(vaultURL, r.cred, r.ep); err != nil {
			r.mu.Unlock()
			return secret.Value{}, err
		}
		r.clients[vaultURL] = c
	}
	r.mu.Unlock()
	resp, err := c.GetSecret(ctx, name, "", nil)
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			return secret.Value{}, fmt.Errorf("read secret %q from %s: HTTP %d %s", name, vaultURL, re.StatusCode, re.ErrorCode)
		}
		return secret.Value{}, fmt.Errorf("read secret %q from %s: %w", name, vaultURL, err)
	}
	if resp.Value == nil || *resp.Value == "" {
		return secret.Value{}, fmt.Errorf("secret %q in %s is empty", name, vaultURL)
	}
	return secret.New(*resp.Value), nil
}
