package sinktest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sink"
)

// NewCertificate makes a self-signed EC P-256 certificate credential for
// a test, valid from an hour ago for 90 days, with no PKCS#12 blob. It is
// what the certificate generator hands a sink, built with crypto/x509.
func NewCertificate(t testing.TB, cn string) *sink.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return SelfSigned(t, cn, key)
}

// SelfSigned is a self-signed certificate credential for key.
func SelfSigned(t testing.TB, cn string, key crypto.Signer) *sink.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &sink.Certificate{Chain: []*x509.Certificate{leaf}, Key: sink.NewPrivateKey(key)}
}

// KeyMarker is one line of c's private key as PKCS#8 PEM, from inside the
// key's secret bytes: a string that is in any PEM rendering of the key and
// nowhere else, to look for in errors, logs and what a target must not
// hold (NoSecret).
func KeyMarker(t testing.TB, c *sink.Certificate) string {
	t.Helper()
	k, err := c.KeyPEM()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(k.Reveal()), "\n")
	require.Greater(t, len(lines), 3, "a PKCS#8 key is more than one line of base64")
	return lines[2]
}

// ParsePEM reads a PEM bundle as targets hold certificate credentials: the
// CERTIFICATE blocks in order (leaf first) and the private key (PKCS#8,
// PKCS#1 or SEC 1), in any order. Key is nil when the bundle has none.
func ParsePEM(t testing.TB, bundle string) (chain []*x509.Certificate, key crypto.Signer) {
	t.Helper()
	rest := []byte(bundle)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return chain, key
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			require.NoError(t, err)
			chain = append(chain, c)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			require.NoError(t, err)
			key = k.(crypto.Signer)
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			require.NoError(t, err)
			key = k
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(b.Bytes)
			require.NoError(t, err)
			key = k
		}
	}
}

// RequireHoldsCertificate checks that bundle (PEM) holds want's leaf and a
// private key that is the leaf's.
func RequireHoldsCertificate(t testing.TB, want *sink.Certificate, bundle, msg string) {
	t.Helper()
	require.NotNil(t, want, "%s: the suite made no such certificate", msg)
	chain, key := ParsePEM(t, bundle)
	require.NotEmpty(t, chain, "%s: the target holds no certificate", msg)
	require.True(t, chain[0].Equal(want.Leaf()), "%s: the target holds another certificate (%s, want %s)", msg, chain[0].Subject, want.Leaf().Subject)
	require.NotNil(t, key, "%s: the target holds no private key", msg)
	type equaler interface{ Equal(crypto.PublicKey) bool }
	require.True(t, key.Public().(equaler).Equal(want.Leaf().PublicKey), "%s: the private key held is not the certificate's", msg)
}
