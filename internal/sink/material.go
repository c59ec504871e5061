package sink

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"log/slog"

	"github.com/rotor-dev/rotor/internal/secret"
)

// Material is the credential a delivery carries: a client secret today; a
// certificate with its chain and private key once rotor rotates
// certificates. Exactly one of Secret and Certificate is set.
//
// Like secret.Value, Material never prints, logs or marshals what it holds:
// every fmt verb, slog and encoding/json see a description at most
// ("secret", "certificate CN=…"), so a Delivery can be logged by accident
// without leaking. The value leaves through Secret.Reveal, Key.Signer and
// PKCS12.Reveal only, where a sink hands it to its target.
type Material struct {
	// Secret is a client secret's value.
	Secret secret.Value
	// Certificate is a certificate credential; nil for a secret. A
	// policy of kind certificate delivers one (internal/certgen).
	Certificate *Certificate
}

// SecretMaterial is the material of a client secret.
func SecretMaterial(v secret.Value) Material { return Material{Secret: v} }

// IsZero reports whether the material holds nothing.
func (m Material) IsZero() bool { return m.Secret.IsZero() && m.Certificate == nil }

// String describes the material without revealing it.
func (m Material) String() string {
	switch {
	case m.Certificate != nil:
		return m.Certificate.String()
	case !m.Secret.IsZero():
		return "secret [REDACTED]"
	}
	return "no material"
}

// GoString is String.
func (m Material) GoString() string { return m.String() }

// Format makes every fmt verb print String.
func (m Material) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(m.String())) }

// LogValue implements slog.LogValuer.
func (m Material) LogValue() slog.Value { return slog.StringValue(m.String()) }

// MarshalJSON refuses, as secret.Value does.
func (m Material) MarshalJSON() ([]byte, error) { return nil, secret.ErrMarshal }

// MarshalText refuses, as secret.Value does.
func (m Material) MarshalText() ([]byte, error) { return nil, secret.ErrMarshal }

// Certificate is a certificate credential on its way to consumers.
type Certificate struct {
	// Chain is the leaf first, then its issuers. Public.
	Chain []*x509.Certificate
	// Key is the leaf's private key.
	Key PrivateKey
	// PKCS12 is the chain and key as a PKCS#12 (PFX) blob, for targets that
	// take one (Key Vault certificates, App Service): the blob's DER bytes,
	// not base64. rotor's own (internal/certgen) have an empty password;
	// a target that wants one is the sink's business.
	PKCS12 secret.Value
}

// String names the leaf, never the key.
func (c *Certificate) String() string {
	if c == nil || len(c.Chain) == 0 || c.Chain[0] == nil {
		return "certificate [REDACTED]"
	}
	return fmt.Sprintf("certificate %s (serial %s) [key REDACTED]", c.Chain[0].Subject, c.Chain[0].SerialNumber)
}

// GoString is String.
func (c *Certificate) GoString() string { return c.String() }

// Format makes every fmt verb print String.
func (c *Certificate) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue implements slog.LogValuer.
func (c *Certificate) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON refuses: the private key must not be serialised by accident.
func (c *Certificate) MarshalJSON() ([]byte, error) { return nil, secret.ErrMarshal }

// MarshalText refuses, for the same reason.
func (c *Certificate) MarshalText() ([]byte, error) { return nil, secret.ErrMarshal }

// PrivateKey holds a certificate's private key. It is a struct rather than
// a bare crypto.Signer because fmt prints an RSA or ECDSA key's numbers;
// this type prints [REDACTED] and refuses to marshal, and Signer is the one
// greppable way out, like secret.Value.Reveal.
type PrivateKey struct{ s crypto.Signer }

// NewPrivateKey wraps s.
func NewPrivateKey(s crypto.Signer) PrivateKey { return PrivateKey{s: s} }

// Signer returns the key. Call it only to hand the key to the target.
func (k PrivateKey) Signer() crypto.Signer { return k.s }

// Public returns the public half, which is safe to show.
func (k PrivateKey) Public() crypto.PublicKey {
	if k.s == nil {
		return nil
	}
	return k.s.Public()
}

// IsZero reports whether there is no key.
func (k PrivateKey) IsZero() bool { return k.s == nil }

// String implements fmt.Stringer without revealing anything.
func (k PrivateKey) String() string { return "[REDACTED]" }

// GoString implements fmt.GoStringer without revealing anything.
func (k PrivateKey) GoString() string { return "[REDACTED]" }

// Format makes every fmt verb print [REDACTED].
func (k PrivateKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[REDACTED]")) }

// LogValue implements slog.LogValuer.
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// MarshalJSON refuses.
func (k PrivateKey) MarshalJSON() ([]byte, error) { return nil, secret.ErrMarshal }

// MarshalText refuses.
func (k PrivateKey) MarshalText() ([]byte, error) { return nil, secret.ErrMarshal }
