package graph

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // thumbprint
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func selfSigned(t *testing.T, key *rsa.PrivateKey) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rotor-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}

func TestProofOfPossession(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	cert := selfSigned(t, key)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	tok, err := ProofOfPossession("app-object-id", key, cert, now)
	require.NoError(t, err)

	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now.Add(time.Minute) }),
		jwt.WithAudience(ProofAudience), jwt.WithIssuer("app-object-id"))
	require.NoError(t, err)
	require.True(t, parsed.Valid)

	thumb := sha1.Sum(cert.Raw) //nolint:gosec
	require.Equal(t, base64.RawURLEncoding.EncodeToString(thumb[:]), parsed.Header["x5t"])
	require.Equal(t, strings.ToUpper(hex.EncodeToString(thumb[:])), parsed.Header["kid"])
	require.Equal(t, "JWT", parsed.Header["typ"])

	var claims map[string]any
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(payload, &claims))
	require.EqualValues(t, now.Unix(), claims["nbf"])
	require.EqualValues(t, now.Add(10*time.Minute).Unix(), claims["exp"])

	// Expired after ten minutes.
	_, err = jwt.Parse(tok, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
		jwt.WithTimeFunc(func() time.Time { return now.Add(11 * time.Minute) }))
	require.Error(t, err)
}

func TestProofOfPossessionRefusesMismatch(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	cert := selfSigned(t, key)
	now := time.Now()

	_, err = ProofOfPossession("id", other, cert, now)
	require.ErrorContains(t, err, "does not belong")
	_, err = ProofOfPossession("", key, cert, now)
	require.Error(t, err)
	_, err = ProofOfPossession("id", key, nil, now)
	require.Error(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, err = ProofOfPossession("id", ec, cert, now)
	require.ErrorContains(t, err, "RSA")
}
