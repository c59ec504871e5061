package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
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
