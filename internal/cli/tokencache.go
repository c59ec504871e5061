package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/oauth2"
)

// tokenCache is 'rotor login”s file: per server URL, the access and
// refresh tokens of the person signed in, and what refreshing them needs.
// It is the user's own (mode 0600 in a 0700 directory), like the Azure
// CLI's msal_token_cache; rotor never prints what it holds.
type tokenCache struct {
	path string
	file cacheFile
}

type cacheFile struct {
	Version int                    `json:"version"`
	Servers map[string]*cacheEntry `json:"servers"`
}

// cacheEntry is one server's sign-in.
type cacheEntry struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	ExpiresAt    time.Time `json:"expires_at"`
	// TokenEndpoint, ClientID and Scopes refresh the tokens; CAFile is
	// the certificate authority the endpoint was trusted with
	// (--ca-file), if any.
	TokenEndpoint string   `json:"token_endpoint"`
	ClientID      string   `json:"client_id"`
	Scopes        []string `json:"scopes"`
	CAFile        string   `json:"ca_file,omitempty"`
	// User is who signed in, for 'rotor login''s messages.
	User string `json:"user,omitempty"`
}

// refreshMargin is how long before its expiry an access token is
// refreshed: a command's requests must not carry one that expires on
// the way.
const refreshMargin = time.Minute

// defaultTokenCache is os.UserConfigDir()/rotor/tokens.json.
func defaultTokenCache() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory for rotor login's tokens: %w", err)
	}
	return filepath.Join(dir, "rotor", "tokens.json"), nil
}

// openTokenCache reads the cache at path ("": the default); a missing
// file is an empty cache.
func openTokenCache(path string) (*tokenCache, error) {
	if path == "" {
		var err error
		if path, err = defaultTokenCache(); err != nil {
			return nil, err
		}
	}
	c := &tokenCache{path: path, file: cacheFile{Version: 1, Servers: map[string]*cacheEntry{}}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("read rotor login's tokens: %w", err)
	}
	if err := json.Unmarshal(b, &c.file); err != nil {
		return nil, fmt.Errorf("rotor login's token cache %s is not rotor's (%v): remove it and run rotor login again", path, err)
	}
	if c.file.Servers == nil {
		c.file.Servers = map[string]*cacheEntry{}
	}
	return c, nil
}

// save writes the cache: a temporary file of mode 0600 beside it,
// renamed over it, so a crash leaves the old cache or the new one.
func (c *tokenCache) save() error {
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("make the directory of rotor login's tokens: %w", err)
	}
	b, err := json.MarshalIndent(c.file, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".tokens-*.json")
	if err != nil {
		return fmt.Errorf("write rotor login's tokens: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write rotor login's tokens: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write rotor login's tokens: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("write rotor login's tokens: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return fmt.Errorf("write rotor login's tokens: %w", err)
	}
	return nil
}

// token is the server's access token, refreshed (and the cache saved)
// when it expires within refreshMargin of now; "" when nobody signed in
// to it.
func (c *tokenCache) token(ctx context.Context, server string, now time.Time) (string, error) {
	e := c.file.Servers[server]
	if e == nil {
		return "", nil
	}
	if now.Add(refreshMargin).Before(e.ExpiresAt) {
		return e.AccessToken, nil
	}
	if e.RefreshToken == "" {
		return "", fmt.Errorf("your sign-in to %s has expired: run 'rotor login --server %s'", server, server)
	}
	hc, err := httpClientWithCA(e.CAFile)
	if err != nil {
		return "", err
	}
	cfg := oauth2.Config{ClientID: e.ClientID, Scopes: e.Scopes, Endpoint: oauth2.Endpoint{TokenURL: e.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams}}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	// An expired token makes the source refresh at once.
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: e.RefreshToken, Expiry: now.Add(-time.Hour)}).Token()
	if err != nil {
		return "", fmt.Errorf("your sign-in to %s has expired and could not be renewed (%s): run 'rotor login --server %s'", server, oauthReason(err), server)
	}
	c.put(server, e, tok)
	if err := c.save(); err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// put stores tok in the server's entry (e carries what refreshing
// needs); a refresh that returns no new refresh token keeps the old one.
func (c *tokenCache) put(server string, e *cacheEntry, tok *oauth2.Token) {
	n := *e
	n.AccessToken, n.ExpiresAt = tok.AccessToken, tok.Expiry
	if tok.RefreshToken != "" {
		n.RefreshToken = tok.RefreshToken
	}
	c.file.Servers[server] = &n
}

// oauthReason is what the token endpoint said, in one line and without
// the response body (which names nothing secret, but is long).
func oauthReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			desc := re.ErrorDescription
			if i := indexLineBreak(desc); i >= 0 {
				desc = desc[:i]
			}
			if desc != "" {
				return re.ErrorCode + ": " + desc
			}
			return re.ErrorCode
		}
		if re.Response != nil {
			return re.Response.Status
		}
	}
	return redactURLError(err).Error()
}

func indexLineBreak(s string) int {
	for i, r := range s {
		if r == '\r' || r == '\n' {
			return i
		}
	}
	return -1
}

// httpClientWithCA is an HTTP client that trusts caFile's certificates
// besides the system's ("": the system's only).
func httpClientWithCA(caFile string) (*http.Client, error) {
	c := noRedirects(time.Minute)
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.Transport = tr
	return c, nil
}
