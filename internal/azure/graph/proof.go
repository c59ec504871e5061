package graph

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as the SHA-1 thumbprint; not used for security here
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ProofAudience is the audience Graph requires in addKey/removeKey proofs
// (the legacy Azure AD Graph application id, not Microsoft Graph's).
const ProofAudience = "00000002-0000-0000-c000-000000000000"

// ProofLifetime is the longest validity Graph accepts for a proof.
const ProofLifetime = 10 * time.Minute

// ProofOfPossession builds the signed JWT Graph demands for addKey and
// removeKey: it proves the caller holds the private key of one of the
// application's current, valid certificates. cert is that certificate and
// key its private key (RSA: Graph accepts RS256 only).
//
// The token follows Microsoft's published sample (X509SigningCredentials):
// header alg RS256, typ JWT, x5t = base64url SHA-1 thumbprint, kid =
// uppercase hex SHA-1 thumbprint; claims aud = ProofAudience, iss =
// application object id, nbf = iat = now, exp = now + 10 minutes. now comes
// from the caller's clock so that tests can pin it.
func ProofOfPossession(appObjectID string, key crypto.Signer, cert *x509.Certificate, now time.Time) (string, error) {
	if strings.TrimSpace(appObjectID) == "" {
		return "", errors.New("graph: proof of possession needs the application object id")
	}
	if key == nil || cert == nil {
		return "", errors.New("graph: proof of possession needs a certificate and its private key")
	}
	pub, ok := key.Public().(*rsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("graph: proof of possession needs an RSA key, got %T", key.Public())
	}
	certPub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !certPub.Equal(pub) {
		return "", errors.New("graph: proof of possession: the private key does not belong to the certificate")
	}
	thumb := sha1.Sum(cert.Raw) //nolint:gosec // thumbprint, by definition SHA-1
	header := map[string]string{
		"alg": "RS256",
		"typ": "JWT",
		"x5t": base64.RawURLEncoding.EncodeToString(thumb[:]),
		"kid": strings.ToUpper(hex.EncodeToString(thumb[:])),
	}
	nbf := now.Unix()
	claims := map[string]any{
		"aud": ProofAudience,
		"iss": appObjectID,
		"nbf": nbf,
		"iat": nbf,
		"exp": now.Add(ProofLifetime).Unix(),
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	digest := sha256.Sum256([]byte(signing))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("graph: sign proof of possession: %w", err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
