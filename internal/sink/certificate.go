package sink

import (
	"crypto/sha1" //nolint:gosec // Entra and every Azure UI name a certificate by its SHA-1 thumbprint; not a security use.
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
)

// KeyCertificateFormat is the setting, shared by every kind that writes one
// value (an environment variable, an Actions secret, a pipeline variable, a
// runbook parameter), that says what of a certificate credential that one
// value is. Kinds with a natural format of their own (Kubernetes TLS
// Secrets, Azure DevOps certificate service connections) do not read it.
const KeyCertificateFormat = "certificate_format"

// CertificateFormat is what a single-value target receives for a
// certificate credential.
type CertificateFormat string

const (
	// FormatPEM is the private key (PKCS#8) followed by the chain, leaf
	// first, all PEM — the form Key Vault gives its own certificates'
	// secrets, and what azidentity.ParseCertificates, openssl and most
	// SDKs read. The default.
	FormatPEM CertificateFormat = "pem"
	// FormatPKCS12 is the PKCS#12 (PFX) blob, standard base64, for .NET and
	// Windows consumers that load a PFX.
	FormatPKCS12 CertificateFormat = "pkcs12"
	// FormatThumbprint is the leaf's SHA-1 thumbprint in upper-case hex, as
	// Azure shows it: for consumers that already hold the certificate
	// (installed from Key Vault, say) and only need to know which one to
	// use. No private key leaves rotor.
	FormatThumbprint CertificateFormat = "thumbprint"
)

// CertificateFormatOf reads spec's certificate_format (FormatPEM when
// unset) and checks it, for a kind's CheckSpec.
func CertificateFormatOf(spec domain.SinkSpec) (CertificateFormat, error) {
	v, ok := spec.Settings[KeyCertificateFormat]
	if !ok || v == nil {
		return FormatPEM, nil
	}
	s, _ := v.(string)
	switch f := CertificateFormat(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatPEM, FormatPKCS12, FormatThumbprint:
		return f, nil
	}
	return "", fmt.Errorf("%s: must be %q (private key and chain as PEM, the default), %q (a base64 PFX) or %q (the SHA-1 thumbprint only), not %v",
		KeyCertificateFormat, FormatPEM, FormatPKCS12, FormatThumbprint, v)
}

// Leaf is the certificate the credential registers in Entra; nil when the
// chain is empty.
func (c *Certificate) Leaf() *x509.Certificate {
	if c == nil || len(c.Chain) == 0 {
		return nil
	}
	return c.Chain[0]
}

// ChainPEM is the chain, leaf first, as PEM CERTIFICATE blocks. Public.
func (c *Certificate) ChainPEM() []byte {
	var b []byte
	if c == nil {
		return nil
	}
	for _, x := range c.Chain {
		if x != nil {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.Raw})...)
		}
	}
	return b
}

// errNoKey is the refusal of an encoding that needs a private key the
// material does not carry (a certificate whose key stays in Key Vault).
var errNoKey = Permanent(errors.New("the certificate credential carries no private key (it lives in Key Vault): deliver it with certificate_format: thumbprint, or read it from the vault"))

// KeyPEM is the private key as a PKCS#8 "PRIVATE KEY" PEM block — the
// form Kubernetes TLS Secrets and Key Vault take for RSA and EC keys alike.
// The error, if any, names no key material.
func (c *Certificate) KeyPEM() (secret.Value, error) {
	if c == nil || c.Key.IsZero() {
		return secret.Value{}, errNoKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.Key.Signer())
	if err != nil {
		return secret.Value{}, Permanent(fmt.Errorf("encode the private key as PKCS#8: %T keys are not supported", c.Key.Signer()))
	}
	return secret.New(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))), nil
}

// PEM is the private key followed by the chain, the way Key Vault stores a
// certificate's secret with contentType application/x-pem-file.
func (c *Certificate) PEM() (secret.Value, error) {
	k, err := c.KeyPEM()
	if err != nil {
		return secret.Value{}, err
	}
	return secret.New(k.Reveal() + string(c.ChainPEM())), nil
}

// Encode is the credential in format f, as one value. pkcs12 needs the
// blob the generator made (Certificate.PKCS12); thumbprint needs no key.
func (c *Certificate) Encode(f CertificateFormat) (secret.Value, error) {
	leaf := c.Leaf()
	if leaf == nil {
		return secret.Value{}, Permanent(errors.New("the certificate credential has no certificate"))
	}
	switch f {
	case FormatThumbprint:
		return secret.New(Thumbprint(leaf)), nil
	case FormatPKCS12:
		if c.PKCS12.IsZero() {
			return secret.Value{}, Permanent(errors.New("the certificate credential carries no PKCS#12 blob (its key lives in Key Vault, or the generator made none): use certificate_format: pem or thumbprint"))
		}
		return secret.New(base64.StdEncoding.EncodeToString([]byte(c.PKCS12.Reveal()))), nil
	case FormatPEM, "":
		return c.PEM()
	}
	return secret.Value{}, Permanent(fmt.Errorf("unknown certificate format %q", f))
}

// Thumbprint is x's SHA-1 thumbprint in upper-case hex: what the Azure
// portal, Entra's customKeyIdentifier (base64 of the same bytes) and
// Windows certificate stores call a certificate by.
func Thumbprint(x *x509.Certificate) string {
	sum := sha1.Sum(x.Raw) //nolint:gosec // identification, not integrity
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// ThumbprintSHA256 is x's SHA-256 thumbprint in upper-case hex (the
// x5t#S256 form Entra's documentation prefers for client assertions).
func ThumbprintSHA256(x *x509.Certificate) string {
	sum := sha256.Sum256(x.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// SecretOrEncoded is the one value a single-value kind delivers: the
// client secret, or the certificate in format f. It refuses empty
// material permanently; kind names the sink in the error.
func SecretOrEncoded(kind string, m Material, f CertificateFormat) (secret.Value, error) {
	switch {
	case m.Certificate != nil:
		v, err := m.Certificate.Encode(f)
		if err != nil {
			return secret.Value{}, fmt.Errorf("%s sink: %w", kind, err)
		}
		return v, nil
	case m.Secret.IsZero():
		return secret.Value{}, Permanent(fmt.Errorf("%s sink: the delivery carries no credential", kind))
	}
	return m.Secret, nil
}

// privateKeyBlock matches a PEM private key, whole or cut short (a
// service that truncated what it echoed), with real or JSON-escaped line
// breaks.
var privateKeyBlock = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)

// RedactPrivateKeys replaces every PEM private key in s, whole or cut
// short, with [REDACTED]: for text a target sent back (an error message
// that echoes a request) before it is kept, cut or shown.
func RedactPrivateKeys(s string) string {
	return privateKeyBlock.ReplaceAllString(s, "[REDACTED]")
}
