package simtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// Helpers for tests that speak to the simulator's HTTP APIs directly, to
// check status codes and error bodies Microsoft's SDKs would hide.

// Do sends a request with a JSON body (nil for none) and headers, and
// returns the status and the decoded JSON body. It uses HTTP, which never
// retries, so a refusal shows up as the answer it is.
func (s *Sim) Do(t testing.TB, method, url string, body any, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.httpWithTimeout().Do(req)
	require.NoError(t, err)
	return DecodeBody(t, resp)
}

// TokenRequest posts a raw token request to the tenant's v2 token
// endpoint and returns status and JSON body.
func (s *Sim) TokenRequest(t testing.TB, tenant string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := s.httpWithTimeout().PostForm(s.Info.AuthorityHost+tenant+"/oauth2/v2.0/token", form)
	require.NoError(t, err)
	return DecodeBody(t, resp)
}

// AdminHeader is the Authorization header of the control API.
func (s *Sim) AdminHeader() map[string]string {
	return map[string]string{"Authorization": "Bearer " + s.AdminToken}
}

// httpWithTimeout is HTTP with a 10 s timeout, so a hung answer fails the
// test instead of stalling it.
func (s *Sim) httpWithTimeout() *http.Client {
	return &http.Client{Transport: s.HTTP.Transport, Timeout: 10 * time.Second}
}

// AppNamed finds a seeded application by display name.
func (s *Sim) AppNamed(t testing.TB, tenant, name string) *sim.Application {
	t.Helper()
	tn := s.Server.World().Tenant(tenant)
	require.NotNil(t, tn, "tenant %s", tenant)
	var out *sim.Application
	s.Server.World().Update(func() {
		for _, a := range tn.Apps {
			if a.DisplayName == name {
				out = a
			}
		}
	})
	require.NotNil(t, out, "app %s", name)
	return out
}

// AddSecret registers a known secret on app, as if added at addedAt (the
// replication delay runs from then).
func (s *Sim) AddSecret(app *sim.Application, secret string, start, end, addedAt time.Time) {
	s.Server.World().Update(func() {
		app.Passwords = append(app.Passwords, &sim.Password{
			KeyID: uuid.NewString(), Hint: secret[:3], Start: start, End: end,
			SecretHash: sim.HashSecret(secret), AddedAt: addedAt,
		})
	})
}

// DecodeBody reads a response and decodes its JSON body (nil when empty).
func DecodeBody(t testing.TB, resp *http.Response) (int, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &m), "body: %s", b)
	}
	return resp.StatusCode, m
}

// ClaimsOf decodes a JWT's payload without verifying it.
func ClaimsOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// WithoutKid rewrites a token's header without kid, keeping its payload
// and signature: the signature no longer matches, but the simulator must
// refuse it for the missing kid before it gets that far.
func WithoutKid(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(b, &h))
	delete(h, "kid")
	b, err = json.Marshal(h)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b) + "." + parts[1] + "." + parts[2]
}

// SecretForm is a client-credentials token request form for the tenant's
// rotation identity.
func SecretForm(tn *simfile.Tenant, scope string) url.Values {
	return url.Values{
		"grant_type": {"client_credentials"}, "client_id": {tn.Rotation.ClientID},
		"client_secret": {tn.Rotation.ClientSecret}, "scope": {scope},
	}
}

// RequireAADSTS checks Entra's error body shape and code.
func RequireAADSTS(t testing.TB, body map[string]any, code int) {
	t.Helper()
	require.Equal(t, []any{float64(code)}, body["error_codes"], "%v", body)
	desc, _ := body["error_description"].(string)
	require.True(t, strings.HasPrefix(desc, "AADSTS"+big.NewInt(int64(code)).String()+": "), desc)
	require.Contains(t, desc, "\r\nTrace ID: ")
	require.Contains(t, desc, "\r\nCorrelation ID: ")
	require.Contains(t, desc, "\r\nTimestamp: ")
	for _, k := range []string{"error", "timestamp", "trace_id", "correlation_id", "error_uri"} {
		require.NotEmpty(t, body[k], k)
	}
}
