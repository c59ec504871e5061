package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/web/ui"
)

// An application with a certificate shows its thumbprint in the
// credentials table and, below it, what the certificate says.
func TestApplicationPageShowsCertificates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows, err := b.app.ListApplications(context.Background(), b.scope, app.ApplicationFilter{})
	require.NoError(t, err)
	var ex *app.Explanation
	for _, r := range rows {
		if r.Certs == 0 {
			continue
		}
		e, err := b.app.Explain(context.Background(), b.scope, r.ObjectID)
		require.NoError(t, err)
		for _, c := range e.Application.Credentials {
			if c.Kind == domain.KindCertificate && c.Certificate != nil {
				ex = e
			}
		}
		if ex != nil {
			break
		}
	}
	require.NotNil(t, ex, "the demo's synced inventory has a certificate that was read")
	res := b.get("/applications/" + url.PathEscape(ex.Application.ObjectID))
	require.Equal(t, http.StatusOK, res.status)
	for _, c := range ex.Application.Credentials {
		if c.Kind != domain.KindCertificate || c.Certificate == nil {
			continue
		}
		require.Contains(t, res.body, c.Thumbprint)
		require.Contains(t, res.body, c.Certificate.ThumbprintSHA256)
		require.Contains(t, res.body, "Subject <strong>"+c.Certificate.Subject+"</strong>")
		require.NotContains(t, res.body, "private-key-unknown-"+c.KeyID, "not rotor's: not flagged")
	}
}

// The application page says what its policy makes: client secrets with
// their lifetime, or certificates with their key, subject and where the
// private key lives.
func TestApplicationPageSaysWhatThePolicyMakes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.get("/applications/" + url.PathEscape(b.runApp))
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, res.body, `id="policy-kind">client secrets, 30d each, renewed 10d before the end`)

	// The same page under a certificate policy whose key stays in Key Vault.
	certs := &certificatePolicy{Service: b.app, row: app.CertificateRow{
		KeyType: "rsa-3072", Subject: "CN=payments, O=Contoso", DNSNames: []string{"payments.contoso.example"},
		KeySource: "keyvault-key", VaultURL: "https://kv-certs.vault.azure.net/", HSM: true,
	}}
	u := ui.New(ui.Deps{App: certs, Logger: slog.New(slog.DiscardHandler), Clock: b.srv.Clock(),
		Scope: func(*http.Request) (app.Scope, bool) { return b.scope, true }})
	hs := httptest.NewServer(u)
	defer hs.Close()
	r, err := hs.Client().Get(hs.URL + "/applications/" + url.PathEscape(b.runApp))
	require.NoError(t, err)
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.StatusCode)
	page := string(body)
	require.Contains(t, page, `id="policy-kind">certificates: rsa-3072, subject <strong>CN=payments, O=Contoso</strong>, DNS names payments.contoso.example;`)
	require.Contains(t, page, `the private key kept in Key Vault <span class="id">https://kv-certs.vault.azure.net/</span> (keyvault-key, HSM)`)
	require.Contains(t, page, `, 30d each, renewed 10d before the end`)
}

// certificatePolicy is the app service with its policies made certificate
// policies.
type certificatePolicy struct {
	ui.Service
	row app.CertificateRow
}

func (c *certificatePolicy) GetPolicy(ctx context.Context, scope app.Scope, name string) (*app.PolicyRow, error) {
	p, err := c.Service.GetPolicy(ctx, scope, name)
	if err != nil {
		return nil, err
	}
	p.Kind, p.Certificate = domain.KindCertificate, &c.row
	return p, nil
}
