package inventory_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/store"
)

func selfSigned(t testing.TB, cn string, pub, priv any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: t0, NotAfter: t0.Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	require.NoError(t, err)
	return der
}

func TestParseCertificate(t *testing.T) {
	t.Parallel()
	rk, err := rsa.GenerateKey(rand.Reader, 3072)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, alg string
		size      int
		der       []byte
	}{
		{"rsa", "RSA", 3072, selfSigned(t, "rsa-app", &rk.PublicKey, rk)},
		{"ec", "EC P-256", 256, selfSigned(t, "ec-app", &ek.PublicKey, ek)},
	} {
		info, err := inventory.ParseCertificate(tc.der)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.alg, info.KeyAlgorithm)
		require.Equal(t, tc.size, info.KeySize)
		require.Equal(t, "CN="+tc.name+"-app", info.Subject)
		require.True(t, info.SelfSigned())
		require.Len(t, info.ThumbprintSHA1, 40)
		require.Len(t, info.ThumbprintSHA256, 64)
		require.Equal(t, strings.ToUpper(info.ThumbprintSHA1), info.ThumbprintSHA1)
		require.True(t, info.NotAfter.Equal(t0.Add(365*24*time.Hour)))
	}
	_, err = inventory.ParseCertificate([]byte("not a certificate"))
	require.Error(t, err)
}

func FuzzParseCertificate(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(f, err)
	f.Add(selfSigned(f, "seed", &k.PublicKey, k))
	f.Add([]byte{0x30, 0x82, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := inventory.ParseCertificate(b)
		if err == nil {
			require.Len(t, info.ThumbprintSHA1, 40)
		}
	})
}

// The demo tenant's certificates: the listing carries only their
// thumbprints; the sync then reads their certificates, a bounded number
// per sync, and the store shows subject, issuer, key and expiry beside
// them. Once read, a certificate is not read again.
func TestSyncReadsCertificatesFromSimulator(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const budget = 3
	syncer := inventory.NewSyncer(b.store, b.clock, inventory.Options{WriteBatch: 3, CertificateReads: budget})
	dir, _, ten := simDirectory(t, "demo")
	res, err := syncer.Sync(t.Context(), org, conn, dir, nil)
	require.NoError(t, err)
	require.NoError(t, res.CertificatesErr)
	require.Equal(t, budget, res.CertificatesRead, "one sync reads at most its budget")

	total := 0
	for round := 0; ; round++ {
		require.Less(t, round, 50, "the backlog drains")
		left, err := b.store.CertificatesWithoutDetails(t.Context(), store.CertificatesWithoutDetailsParams{Org: org, TenantID: ten.ID, Limit: 1000})
		require.NoError(t, err)
		if len(left) == 0 {
			break
		}
		b.clock.Advance(time.Minute)
		res, err := syncer.Sync(t.Context(), org, conn, dir, nil)
		require.NoError(t, err)
		require.NoError(t, res.CertificatesErr)
		require.LessOrEqual(t, res.CertificatesRead, budget)
		total += res.CertificatesRead
	}
	require.Positive(t, total)

	apps, err := b.store.ListApplications(t.Context(), store.ListApplicationsParams{Org: org, Connection: conn})
	require.NoError(t, err)
	certs := 0
	for _, a := range apps {
		for _, c := range a.Credentials {
			if c.Kind != domain.KindCertificate {
				require.Nil(t, c.Certificate)
				continue
			}
			certs++
			require.NotNil(t, c.Certificate, "%s %s was read", a.DisplayName, c.KeyID)
			require.Equal(t, "CN="+a.DisplayName, c.Certificate.Subject, "the demo's certificates are self-signed for the app")
			require.Equal(t, c.ThumbprintHex(), c.Certificate.ThumbprintSHA1, "customKeyIdentifier is the SHA-1 thumbprint")
			require.Positive(t, c.Certificate.KeySize)
			require.WithinDuration(t, c.End, c.Certificate.NotAfter, 24*time.Hour, "Entra's end is the certificate's")
		}
	}
	require.Equal(t, certs, budget+total)

	b.clock.Advance(time.Minute)
	res, err = syncer.Sync(t.Context(), org, conn, dir, nil)
	require.NoError(t, err)
	require.Zero(t, res.CertificatesRead, "nothing is read twice")
}
