package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

// A certificate policy's row says how it makes certificates, with defaults
// spelt out, and says only whether a bootstrap certificate is configured,
// never where it is kept; a secret policy's row has none.
func TestPolicyRowCertificate(t *testing.T) {
	t.Parallel()
	require.Nil(t, policyRow(domain.Policy{Name: "s", Kind: domain.KindSecret}).Certificate)

	r := policyRow(domain.Policy{Name: "c", Kind: domain.KindCertificate, Certificate: domain.CertificateSpec{
		DNSNames: []string{"payroll.example.com"}, Bootstrap: map[string]any{"file": "/etc/rotor/bootstrap.pem"},
	}})
	require.Equal(t, &CertificateRow{KeyType: "rsa-2048", Subject: "CN=<application display name>", DNSNames: []string{"payroll.example.com"},
		KeySource: "local", Bootstrap: true}, r.Certificate)
}
