// Package certgen makes the certificate credentials rotor registers on
// applications: a fresh key pair and a self-signed X.509 certificate over
// it, handed back as a sink.Certificate (chain, private key, PKCS#12) that
// lives in memory only, for the length of one rotation.
//
// Self-signed is what Entra expects of an application credential: Entra
// trusts the certificate because it is registered on the application, not
// because of who issued it, so a CA adds nothing but a dependency.
package certgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the subject key identifier is a SHA-1 by RFC 5280's method 1
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
)

// KeyType is the key algorithm and size of a new certificate.
type KeyType string

// Key types. RSA 2048 is the default: it is what Entra's documentation
// and every MSAL sign their client assertions with (RS256/PS256).
const (
	RSA2048 KeyType = "rsa-2048"
	RSA3072 KeyType = "rsa-3072"
	RSA4096 KeyType = "rsa-4096"
	// ECP256 is an ECDSA P-256 key. Entra's client assertions are RS256 or
	// PS256, and MSAL (and so azidentity) refuses non-RSA keys, so a
	// policy cannot use it for an application credential yet; it is here
	// for targets that take EC certificates.
	ECP256 KeyType = "ec-p256"
)

// DefaultKeyType is the key type of a request that names none.
const DefaultKeyType = RSA2048

// KeyTypes lists every key type, in the order documentation shows them.
func KeyTypes() []KeyType { return []KeyType{RSA2048, RSA3072, RSA4096, ECP256} }

// ParseKeyType reads a key type as configured ("" is the default).
func ParseKeyType(s string) (KeyType, error) {
	if s == "" {
		return DefaultKeyType, nil
	}
	for _, k := range KeyTypes() {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	names := make([]string, 0, len(KeyTypes()))
	for _, k := range KeyTypes() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("key type %q is not known: use one of %s", s, strings.Join(names, ", "))
}

// RSA reports whether the key type is RSA (can sign Entra client
// assertions and Graph proofs of possession).
func (k KeyType) RSA() bool { return strings.HasPrefix(string(k), "rsa-") }

// Request describes a certificate to make.
type Request struct {
	// KeyType is the key to generate; "" is DefaultKeyType.
	KeyType KeyType
	// Subject is the certificate's subject (and, self-signed, issuer);
	// ParseSubject reads one from configuration. It needs a CommonName.
	Subject pkix.Name
	// DNSNames become subject alternative names; none by default.
	DNSNames []string
	// NotBefore and NotAfter bound the validity. NotAfter must be later.
	NotBefore, NotAfter time.Time
	// Rand is the entropy source; nil is crypto/rand. Tests may pass a
	// deterministic reader to make keys quickly, never production.
	Rand io.Reader
}

// Generate makes a key pair and a self-signed certificate for it. The
// certificate is an end-entity certificate for client authentication
// (digitalSignature, extKeyUsage clientAuth); its serial number is 128
// random bits. The result's PKCS12 is the certificate and key in a
// password-less PKCS#12 (see PKCS12).
func Generate(req Request) (*sink.Certificate, error) {
	if strings.TrimSpace(req.Subject.CommonName) == "" {
		return nil, errors.New("certgen: the certificate needs a subject common name")
	}
	if req.NotBefore.IsZero() || !req.NotAfter.After(req.NotBefore) {
		return nil, fmt.Errorf("certgen: validity %s – %s is empty", req.NotBefore.Format(time.RFC3339), req.NotAfter.Format(time.RFC3339))
	}
	kt := req.KeyType
	if kt == "" {
		kt = DefaultKeyType
	}
	rnd := req.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	key, err := newKey(kt, rnd)
	if err != nil {
		return nil, err
	}
	cert, err := selfSign(req, kt, key, rnd)
	if err != nil {
		return nil, err
	}
	pfx, err := PKCS12(cert, key)
	if err != nil {
		return nil, err
	}
	return &sink.Certificate{Chain: []*x509.Certificate{cert}, Key: sink.NewPrivateKey(key), PKCS12: pfx}, nil
}

// SelfSign makes the same certificate as Generate over a key rotor does
// not hold: signer's Sign is Key Vault's sign operation (docs/adr/0037),
// so only the certificate comes back. req.KeyType is ignored (the key is
// signer's); it must be RSA.
func SelfSign(req Request, signer crypto.Signer) (*x509.Certificate, error) {
	if strings.TrimSpace(req.Subject.CommonName) == "" {
		return nil, errors.New("certgen: the certificate needs a subject common name")
	}
	if req.NotBefore.IsZero() || !req.NotAfter.After(req.NotBefore) {
		return nil, fmt.Errorf("certgen: validity %s – %s is empty", req.NotBefore.Format(time.RFC3339), req.NotAfter.Format(time.RFC3339))
	}
	if _, ok := signer.Public().(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("certgen: the signer's key must be RSA, not %T", signer.Public())
	}
	rnd := req.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	return selfSign(req, RSA2048, signer, rnd)
}

// selfSign issues the self-signed client-auth certificate over key.
func selfSign(req Request, kt KeyType, key crypto.Signer, rnd io.Reader) (*x509.Certificate, error) {
	serial, err := rand.Int(rnd, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certgen: serial number: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("certgen: public key: %w", err)
	}
	ski := sha1.Sum(pubDER) //nolint:gosec // key identifier, not a security property
	usage := x509.KeyUsageDigitalSignature
	if kt.RSA() {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               req.Subject,
		DNSNames:              append([]string(nil), req.DNSNames...),
		NotBefore:             req.NotBefore.UTC(),
		NotAfter:              req.NotAfter.UTC(),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:],
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certgen: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certgen: parse new certificate: %w", err)
	}
	return cert, nil
}

// PKCS12 encodes cert and key as a PKCS#12 blob (its DER bytes, not
// base64: a sink encodes them as its target wants) with go-pkcs12's
// LegacyDES encoder (3DES, SHA-1 MAC) and an empty password.
//
// Why legacy: it is what consumers can open. azidentity.ParseCertificates
// (Go's golang.org/x/crypto/pkcs12) refuses the Modern encoding (AES,
// PBKDF2), and Key Vault's own PFX secrets, Windows and older OpenSSL take
// 3DES; with an empty password the cipher protects nothing anyway.
//
// Why no password: the blob is exactly as secret as the key it wraps, it
// travels only to a sink whose own access control protects it, and a
// password would have to be stored right beside it (Key Vault keeps its
// own certificates' PFX secrets password-less for the same reason). A
// sink whose target demands a password re-encodes with its own.
func PKCS12(cert *x509.Certificate, key crypto.Signer) (secret.Value, error) {
	pfx, err := pkcs12.LegacyDES.Encode(key, cert, nil, "")
	if err != nil {
		return secret.Value{}, fmt.Errorf("certgen: PKCS#12: %w", err)
	}
	return secret.New(string(pfx)), nil
}

func newKey(kt KeyType, rnd io.Reader) (crypto.Signer, error) {
	switch kt {
	case RSA2048, RSA3072, RSA4096:
		bits := map[KeyType]int{RSA2048: 2048, RSA3072: 3072, RSA4096: 4096}[kt]
		k, err := rsa.GenerateKey(rnd, bits)
		if err != nil {
			return nil, fmt.Errorf("certgen: RSA %d key: %w", bits, err)
		}
		return k, nil
	case ECP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
		if err != nil {
			return nil, fmt.Errorf("certgen: EC P-256 key: %w", err)
		}
		return k, nil
	}
	_, err := ParseKeyType(string(kt))
	return nil, fmt.Errorf("certgen: %w", err)
}

// ParseSubject reads a subject written as RFC 4514 attributes separated by
// commas — "CN=payroll-api, O=Contoso, OU=Platform, L=Oslo, ST=Oslo, C=NO"
// — the attributes a certificate's subject commonly carries, each at most
// once. An empty s is CN=defaultCN (rotor passes the application's display
// name). Escaped commas and other attribute types are refused rather than
// guessed at.
func ParseSubject(s, defaultCN string) (pkix.Name, error) {
	if strings.TrimSpace(s) == "" {
		if strings.TrimSpace(defaultCN) == "" {
			return pkix.Name{}, errors.New("certgen: the subject needs a common name")
		}
		return pkix.Name{CommonName: defaultCN}, nil
	}
	if strings.Contains(s, `\`) || strings.Contains(s, "+") {
		return pkix.Name{}, fmt.Errorf("certgen: subject %q: escapes and multi-valued attributes are not supported", s)
	}
	var n pkix.Name
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || v == "" {
			return pkix.Name{}, fmt.Errorf("certgen: subject %q: %q is not ATTRIBUTE=value", s, strings.TrimSpace(part))
		}
		if seen[k] {
			return pkix.Name{}, fmt.Errorf("certgen: subject %q: %s appears twice", s, k)
		}
		seen[k] = true
		switch k {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = []string{v}
		case "OU":
			n.OrganizationalUnit = []string{v}
		case "L":
			n.Locality = []string{v}
		case "ST":
			n.Province = []string{v}
		case "C":
			n.Country = []string{v}
		default:
			return pkix.Name{}, fmt.Errorf("certgen: subject %q: attribute %s is not supported (use CN, O, OU, L, ST, C)", s, k)
		}
	}
	if n.CommonName == "" {
		return pkix.Name{}, fmt.Errorf("certgen: subject %q has no CN", s)
	}
	return n, nil
}
