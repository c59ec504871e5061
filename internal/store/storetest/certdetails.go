package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// testCertificateDetails: details recorded for a certificate credential
// come back with it, survive a sync that rewrites the application's
// credentials, are per organization and tenant, and the backlog lists
// exactly the certificates still unread.
func testCertificateDetails(t *testing.T, b *bundle) {
	b.sync(t, b.org, "rotation", b.t0, b.newApps(1, 3))
	b.sync(t, b.other, "rotation", b.t0, b.newApps(1, 1))

	backlog, err := b.s.CertificatesWithoutDetails(b.ctx, store.CertificatesWithoutDetailsParams{Org: b.org, TenantID: tenant1, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []store.CredentialRef{ref(1), ref(2), ref(3)}, backlog,
		"every certificate is unread; secrets are not listed")
	limited, err := b.s.CertificatesWithoutDetails(b.ctx, store.CertificatesWithoutDetailsParams{Org: b.org, TenantID: tenant1, Limit: 2})
	require.NoError(t, err)
	require.Len(t, limited, 2)

	info := domain.CertificateInfo{ThumbprintSHA1: "AB12", ThumbprintSHA256: "CD34", Subject: "CN=app-1", Issuer: "CN=Contoso CA",
		KeyAlgorithm: "RSA", KeySize: 3072, NotBefore: b.t0.Add(-48 * time.Hour), NotAfter: b.t0.Add(365 * 24 * time.Hour)}
	require.NoError(t, b.s.PutCertificateDetails(b.ctx, store.PutCertificateDetailsParams{Org: b.org, TenantID: tenant1,
		Details: []store.CertificateDetails{{AppObjectID: objectID(1), KeyID: keyID(1, 2), Info: info}}}))

	check := func(msg string) {
		t.Helper()
		a := b.get(t, b.org, objectID(1))
		var cert *domain.Credential
		for i := range a.Credentials {
			if a.Credentials[i].Kind == domain.KindCertificate {
				cert = &a.Credentials[i]
			}
			if a.Credentials[i].Kind == domain.KindSecret {
				require.Nil(t, a.Credentials[i].Certificate, "%s: a secret has no certificate", msg)
			}
		}
		require.NotNil(t, cert, msg)
		require.NotNil(t, cert.Certificate, "%s: the details come back with the credential", msg)
		got := *cert.Certificate
		require.True(t, b.sameTime(info.NotBefore, got.NotBefore) && b.sameTime(info.NotAfter, got.NotAfter), msg)
		got.NotBefore, got.NotAfter = info.NotBefore, info.NotAfter
		require.Equal(t, info, got, msg)
	}
	check("after put")

	// A later sync changes the application (a new secret): its credentials
	// are rewritten, and the certificate keeps its details.
	changed := b.newApp(1)
	changed.Credentials = append(changed.Credentials, domain.Credential{KeyID: keyID(1, 3), Kind: domain.KindSecret, DisplayName: "new",
		Hint: "xyz", Start: b.t0, End: b.t0.Add(90 * 24 * time.Hour)})
	require.Equal(t, 1, b.sync(t, b.org, "rotation", b.t0.Add(time.Hour), []domain.Application{changed}))
	check("after a sync rewrote the credentials")

	backlog, err = b.s.CertificatesWithoutDetails(b.ctx, store.CertificatesWithoutDetailsParams{Org: b.org, TenantID: tenant1, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []store.CredentialRef{ref(2), ref(3)}, backlog)

	// Per organization and tenant.
	other, err := b.s.CertificatesWithoutDetails(b.ctx, store.CertificatesWithoutDetailsParams{Org: b.other, TenantID: tenant1, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []store.CredentialRef{ref(1)}, other, "the other organization's certificate is still unread")
	for _, c := range b.get(t, b.other, objectID(1)).Credentials {
		require.Nil(t, c.Certificate, "details do not cross organizations")
	}
	none, err := b.s.CertificatesWithoutDetails(b.ctx, store.CertificatesWithoutDetailsParams{Org: b.org, TenantID: tenant2, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, none)

	// Details for an application the organization does not hold are refused.
	err = b.s.PutCertificateDetails(b.ctx, store.PutCertificateDetailsParams{Org: b.org, TenantID: tenant1,
		Details: []store.CertificateDetails{{AppObjectID: objectID(99), KeyID: "k", Info: info}}})
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Error(t, b.s.PutCertificateDetails(b.ctx, store.PutCertificateDetailsParams{Org: b.org, TenantID: tenant1,
		Details: []store.CertificateDetails{{AppObjectID: objectID(1)}}}), "a detail names its credential")
}

func ref(n int) store.CredentialRef {
	return store.CredentialRef{AppObjectID: objectID(n), KeyID: keyID(n, 2)}
}
