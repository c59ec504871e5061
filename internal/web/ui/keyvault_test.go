package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/web/ui"
)

// The picker's pages are tested over a stand-in for the application
// layer: its rules (role, organization, a vault only if the identity sees
// it, the cache) are tested in internal/app against the simulator, and
// what is tested here is what the pages make of its answers.

const kvURL = "https://kv-payroll.vault.azure.net/"

// kvService answers the picker's calls from fixed lists and records them;
// every other method of ui.Service is unused (nil).
type kvService struct {
	ui.Service
	mu    sync.Mutex
	calls []string
	err   error
}

func (s *kvService) record(c string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return s.err
}

func (s *kvService) ListConnections(context.Context, app.Scope) ([]app.Connection, error) {
	return []app.Connection{{Name: "prod", Purpose: "rotation", TenantID: "t-1"}}, s.record("connections")
}

func (s *kvService) ListVaults(_ context.Context, scope app.Scope, conn string) ([]app.Vault, error) {
	if err := s.record("vaults " + string(scope.Org) + " " + conn); err != nil {
		return nil, err
	}
	return []app.Vault{
		{Name: "kv-payroll", URL: kvURL, Subscription: "Production", SubscriptionID: "sub-1", ResourceGroup: "rg-pay", Location: "westeurope"},
		{Name: `kv-<b>"evil"`, URL: `https://evil.vault.azure.net/"><script>`, Subscription: "Sandbox", ResourceGroup: "rg-x"},
	}, nil
}

func (s *kvService) ListVaultSecrets(_ context.Context, scope app.Scope, conn, vault string) ([]app.VaultSecret, error) {
	if err := s.record("secrets " + string(scope.Org) + " " + conn + " " + vault); err != nil {
		return nil, err
	}
	return []app.VaultSecret{
		{Name: "payroll-api-secret", ManagedByRotor: true, AppID: "app-1", Enabled: true, Updated: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)},
		{Name: "db-password", Enabled: true},
		{Name: "legacy", ManagedByRotor: true},
	}, nil
}

func (s *kvService) taken() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

type kvBundle struct {
	t   *testing.T
	svc *kvService
	url string
}

func setupKV(t *testing.T) *kvBundle {
	t.Helper()
	svc := &kvService{}
	h := ui.New(ui.Deps{
		App: svc, Base: "/ui", Logger: slog.New(slog.DiscardHandler),
		Scope: func(r *http.Request) (app.Scope, bool) {
			if r.Header.Get("X-Test-Anonymous") != "" {
				return app.Scope{}, false
			}
			return app.Scope{Org: "org-a", Actor: app.Actor{Kind: app.ActorUser, ID: "u-1"}}, true
		},
	})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return &kvBundle{t: t, svc: svc, url: hs.URL}
}

func (b *kvBundle) get(path string, header ...string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url+path, nil)
	require.NoError(b.t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res.StatusCode, string(body)
}

func TestKeyVaultFragments(t *testing.T) {
	t.Parallel()
	b := setupKV(t)

	t.Run("Vaults", func(t *testing.T) {
		status, body := b.get("/ui/keyvault/vaults?connection=prod", "HX-Request", "true")
		require.Equal(t, http.StatusOK, status, body)
		require.True(t, strings.HasPrefix(body, `<datalist id="kv-vaults">`), body)
		require.NotContains(t, body, "<html", "a fragment, not a page")
		require.Contains(t, body, `<option value="https://kv-payroll.vault.azure.net/">kv-payroll (Production/rg-pay)</option>`)
		require.NotContains(t, body, "<script>", "names and URLs are escaped")
		require.NotContains(t, body, "<b>")
		require.Equal(t, []string{"vaults org-a prod"}, b.svc.taken())
	})
	t.Run("Secrets", func(t *testing.T) {
		status, body := b.get("/ui/keyvault/secrets?connection=prod&vault="+url.QueryEscape(kvURL), "HX-Request", "true")
		require.Equal(t, http.StatusOK, status, body)
		require.True(t, strings.HasPrefix(body, `<datalist id="kv-secrets">`), body)
		require.Contains(t, body, `<option value="db-password">db-password: not rotor&#39;s: rotor will refuse to overwrite it unless the sink sets adopt: true</option>`)
		require.Contains(t, body, `<option value="legacy">legacy: managed by rotor</option>`)
		require.Contains(t, body, `<option value="payroll-api-secret">payroll-api-secret: managed by rotor for application app-1`)
		require.Equal(t, []string{"secrets org-a prod " + kvURL}, b.svc.taken(), "the vault URL is handed to the application layer to check")
	})
	t.Run("NoConnectionIs400", func(t *testing.T) {
		status, body := b.get("/ui/keyvault/vaults")
		require.Equal(t, http.StatusBadRequest, status)
		require.Contains(t, body, `class="kv-error"`)
		require.Empty(t, b.svc.taken())
	})
	t.Run("SignedOutIs401", func(t *testing.T) {
		status, _ := b.get("/ui/keyvault/vaults?connection=prod", "X-Test-Anonymous", "1")
		require.Equal(t, http.StatusUnauthorized, status)
		require.Empty(t, b.svc.taken())
	})
}

func TestKeyVaultFragmentErrors(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		err    error
		status int
		text   string
	}{
		"AzureRefused": {&app.AzureError{Connection: "prod", Service: "Resource Manager", What: "vaults", Status: http.StatusForbidden, Code: "AuthorizationFailed"},
			http.StatusFailedDependency, "give it Reader on the subscription"},
		"Denied":         {&app.DeniedError{Actor: app.Actor{Kind: app.ActorUser, ID: "u-1"}, Action: app.ActionListVaults}, http.StatusForbidden, "operator role"},
		"UnknownVault":   {&app.NotFoundError{Kind: "vault visible to connection prod", Ref: "https://x/"}, http.StatusNotFound, "no vault visible"},
		"InternalHidden": {io.ErrUnexpectedEOF, http.StatusInternalServerError, "error is in rotor&#39;s log"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupKV(t)
			b.svc.err = c.err
			status, body := b.get("/ui/keyvault/vaults?connection=prod", "HX-Request", "true")
			require.Equal(t, c.status, status, body)
			require.Contains(t, body, c.text)
			require.NotContains(t, body, "<datalist", "htmx keeps the list it has")
		})
	}
}

func TestKeyVaultPageWithoutJavaScript(t *testing.T) {
	t.Parallel()
	b := setupKV(t)

	status, body := b.get("/ui/keyvault")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "<html")
	require.Contains(t, body, `<a href="/ui/keyvault?connection=prod">prod</a>`)
	require.Equal(t, []string{"connections"}, b.svc.taken())

	status, body = b.get("/ui/keyvault?connection=prod")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `<a href="/ui/keyvault?connection=prod&amp;vault=https%3A%2F%2Fkv-payroll.vault.azure.net%2F">kv-payroll</a>`)
	require.NotContains(t, body, "Secrets of")
	require.Equal(t, []string{"vaults org-a prod"}, b.svc.taken())

	status, body = b.get("/ui/keyvault?connection=prod&vault=" + url.QueryEscape(kvURL))
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "Secrets of kv-payroll")
	require.Contains(t, body, "db-password")
	require.Contains(t, body, "2026-01-02 03:04 UTC")
	require.Contains(t, body, "not rotor&#39;s")
	for _, bad := range []string{"style=", "<script>", "onerror", "onclick"} {
		require.NotContains(t, body, bad, "strict CSP: no inline script or style")
	}

	// Azure's refusal is shown on the page, with the right to grant.
	b.svc.err = &app.AzureError{Connection: "prod", Service: "Resource Manager", What: "vaults", Status: http.StatusForbidden}
	status, body = b.get("/ui/keyvault?connection=prod")
	require.Equal(t, http.StatusFailedDependency, status)
	require.Contains(t, body, "give it Reader on the subscription")
	require.Contains(t, body, "<html")
}
