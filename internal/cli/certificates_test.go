package cli_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
)

// After a sync, `apps show` lists a certificate credential's thumbprint
// beside the secrets, and — the sync having read the certificate — its
// SHA-256, subject, issuer, key and validity, in the table and in JSON.
func TestAppsShowCertificates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	e.mustRun("sync")
	var rows []appRow
	e.mustJSON(&rows, "apps", "list")
	var withCert *appRow
	for i := range rows {
		if rows[i].Certs > 0 {
			withCert = &rows[i]
			break
		}
	}
	require.NotNil(t, withCert, "the demo has applications with certificates")

	var d app.ApplicationDetail
	e.mustJSON(&d, "apps", "show", withCert.ObjectID)
	var cert *app.CredentialInfo
	for i := range d.Credentials {
		if d.Credentials[i].Kind == domain.KindCertificate {
			cert = &d.Credentials[i]
		}
	}
	require.NotNil(t, cert)
	require.Regexp(t, `^[0-9A-F]{40}$`, cert.Thumbprint)
	require.NotNil(t, cert.Certificate, "the sync read the certificate")
	require.Equal(t, "CN="+withCert.Name, cert.Certificate.Subject)
	require.Regexp(t, `^[0-9A-F]{64}$`, cert.Certificate.ThumbprintSHA256)
	require.Positive(t, cert.Certificate.KeySize)
	require.False(t, cert.PrivateKeyUnknown, "rotor did not create it")

	out, _ := e.mustRun("apps", "show", withCert.ObjectID)
	require.Contains(t, out, "Certificates:")
	require.Contains(t, out, "thumbprint "+cert.Thumbprint)
	require.Contains(t, out, "subject CN="+withCert.Name)
	require.Regexp(t, `key (RSA|EC P-\d+) \d+ bits, valid \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d`, out)
	require.Regexp(t, `(?m)^\s+certificate\s+\S+\s+.*`+regexp.QuoteMeta(cert.Thumbprint[:8]), out, "the table's hint column shows the thumbprint")
}
