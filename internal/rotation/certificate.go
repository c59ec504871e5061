package rotation

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Graph's customKeyIdentifier is the SHA-1 thumbprint
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/certgen"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
)

// This file is where a run of kind certificate differs from one of kind
// secret: the credential is made here (certgen) and registered with
// addKey or a keyCredentials update, removed with removeKey or an update,
// and verified with a client assertion. Everything else (journal, sinks,
// overlap, retirement, recovery) is the same code (docs/adr/0033).

// errNoCertificates is a Directory or Verifier of a connection that cannot
// handle certificates: a wiring gap, not something a retry mends.
type errNoCertificates struct{ what string }

func (e *errNoCertificates) Error() string   { return e.what }
func (e *errNoCertificates) Permanent() bool { return true }

// certDirectory returns dir's certificate operations.
func certDirectory(dir Directory) (CertificateDirectory, error) {
	cd, ok := dir.(CertificateDirectory)
	if !ok {
		return nil, &errNoCertificates{"this connection's directory cannot change certificates"}
	}
	return cd, nil
}

// Thumbprint is Graph's customKeyIdentifier of a certificate: the base64
// SHA-1 of its DER, what the inventory keeps of it.
func Thumbprint(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw) //nolint:gosec // a thumbprint, by definition SHA-1
	return base64.StdEncoding.EncodeToString(sum[:])
}

// newCertificate makes the run's certificate, valid from now for the
// policy's lifetime: subject from the policy (default CN=<application
// display name>), key type from the policy (default RSA 2048).
func (r *runner) newCertificate(now, end time.Time) (*sink.Certificate, error) {
	spec := r.policy.Certificate
	kt, err := certgen.ParseKeyType(spec.KeyType)
	if err != nil {
		return nil, err
	}
	subject, err := certgen.ParseSubject(spec.Subject, r.app.DisplayName)
	if err != nil {
		return nil, err
	}
	return certgen.Generate(certgen.Request{KeyType: kt, Subject: subject, DNSNames: spec.DNSNames, NotBefore: now, NotAfter: end})
}

// addCertificate registers the run's certificate, retrying transient
// failures like addPassword. Graph's own prover choice: the bootstrap
// certificate when the policy has one (addKey), else a keyCredentials
// update. A retry after a lost answer finds the certificate already there
// (it is matched by its DER), so no second one is made.
func (r *runner) addCertificate(ctx context.Context, cert *sink.Certificate) (NewKey, error) {
	e := r.e
	cd, err := certDirectory(r.dir)
	if err != nil {
		return NewKey{}, err
	}
	for attempt := range addPasswordAttempts {
		if attempt > 0 {
			if serr := sleep(ctx, e.retryWait(err, attempt-1)); serr != nil {
				return NewKey{}, errors.Join(err, serr)
			}
		}
		var nk NewKey
		err = e.fenced(ctx, r.run, func(ctx context.Context) error {
			r.addCalled = true
			var err error
			nk, err = cd.AddCertificate(ctx, r.run.AppObjectID, domain.DisplayNameFor(r.run.ID), cert.Chain[0], r.prover)
			return err
		})
		if err == nil {
			if nk.KeyID == "" {
				return NewKey{}, errors.New("Entra answered without a key id")
			}
			return nk, nil
		}
		if leaseLost(err) || e.permanent(err) || ctx.Err() != nil {
			return NewKey{}, err
		}
		r.log.Info("registering the certificate failed; retrying", "attempt", attempt+1, "error", err)
	}
	return NewKey{}, err
}

// verifyOnce asks for one token with the run's new credential.
func (r *runner) verifyOnce(ctx context.Context, ver Verifier) error {
	if r.run.Kind != domain.KindCertificate {
		return ver.Verify(ctx, r.run.TenantID, r.run.AppID, r.value)
	}
	cv, ok := ver.(CertificateVerifier)
	if !ok {
		return &errNoCertificates{"this connection's verifier cannot verify certificates"}
	}
	return cv.VerifyCertificate(ctx, r.run.TenantID, r.run.AppID, r.cert)
}

// ownProver is the run's own new certificate as a prover, once it is
// registered: while the run holds its key it can remove what it made with
// removeKey, atomically, rather than a keyCredentials update. nil before.
func (r *runner) ownProver() *Prover {
	if r.cert == nil || r.keyID == "" {
		return r.prover
	}
	return &Prover{Cert: r.cert.Chain[0], Key: r.cert.Key}
}

// removeKind removes keyID of the given kind from the run's application.
func (e *Engine) removeKind(ctx context.Context, dir Directory, run *domain.Run, kind domain.CredentialKind, keyID string, prover *Prover) error {
	if kind != domain.KindCertificate {
		return dir.RemovePassword(ctx, run.AppObjectID, keyID)
	}
	cd, err := certDirectory(dir)
	if err != nil {
		return err
	}
	return cd.RemoveCertificate(ctx, run.AppObjectID, keyID, prover)
}

// bootstrapProver resolves the policy's bootstrap certificate, nil when it
// names none. Its key is held in memory for the call that needs it only.
func (e *Engine) bootstrapProver(ctx context.Context, policy domain.Policy) (*Prover, error) {
	if policy.Kind != domain.KindCertificate || policy.Certificate.Bootstrap == nil {
		return nil, nil
	}
	ref, err := sink.ParseSecretRef(policy.Certificate.Bootstrap)
	if err != nil {
		return nil, &errNoCertificates{fmt.Sprintf("certificate.bootstrap of policy %q: %v", policy.Name, err)}
	}
	if e.secrets == nil {
		return nil, &errNoCertificates{fmt.Sprintf("certificate.bootstrap of policy %q cannot be read: no secret resolver is configured", policy.Name)}
	}
	v, err := e.secrets.Resolve(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("certificate.bootstrap of policy %q (%s): %w", policy.Name, ref, err)
	}
	p, err := ParseProver([]byte(v.Reveal()))
	if err != nil {
		return nil, &errNoCertificates{fmt.Sprintf("certificate.bootstrap of policy %q (%s): %v", policy.Name, ref, err)}
	}
	return p, nil
}

// ParseProver reads a PEM bundle of a certificate and its RSA private key
// (PKCS#8 or PKCS#1), in any order. Errors never include key material.
func ParseProver(pemData []byte) (*Prover, error) {
	var (
		cert *x509.Certificate
		key  crypto.Signer
	)
	for rest := pemData; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE" && cert == nil:
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("the certificate does not parse: %w", err)
			}
			cert = c
		case strings.HasSuffix(b.Type, "PRIVATE KEY") && key == nil:
			k, err := parsePrivateKey(b)
			if err != nil {
				return nil, err
			}
			key = k
		}
	}
	if cert == nil || key == nil {
		return nil, errors.New("it must be PEM with a CERTIFICATE and its PRIVATE KEY")
	}
	pub, ok := key.Public().(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("its key must be RSA: Graph's proofs of possession are RS256")
	}
	if !pub.Equal(cert.PublicKey) {
		return nil, errors.New("the private key does not belong to the certificate")
	}
	return &Prover{Cert: cert, Key: sink.NewPrivateKey(key)}, nil
}

func parsePrivateKey(b *pem.Block) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		var _ *ecdsa.PrivateKey = k
		return k, nil
	}
	// Never wrap the parser's error: keep the key's bytes out of it.
	return nil, errors.New("the private key does not parse (PKCS#8, PKCS#1 or SEC 1 PEM expected)")
}

// kindWord names a credential kind in journal lines and logs.
func kindWord(k domain.CredentialKind) string {
	if k == domain.KindCertificate {
		return "certificate"
	}
	return "secret"
}

// what names the run's credential kind.
func (r *runner) what() string { return kindWord(r.run.Kind) }

// create makes the run's new credential on the application: a client
// secret by addPassword, or a certificate made here and registered.
func (r *runner) create(ctx context.Context, lifetime time.Duration) (NewPassword, error) {
	now := r.e.now()
	if r.run.Kind != domain.KindCertificate {
		return r.addPassword(ctx, now.Add(lifetime))
	}
	var cert *sink.Certificate
	if r.policy.Certificate.KeySource.InVault() {
		c, err := r.newVaultCertificate(ctx, now, now.Add(lifetime))
		if err != nil {
			if _, ok := errors.AsType[*errNoCertificates](err); ok || r.e.permanent(err) || leaseLost(err) || ctx.Err() != nil {
				return NewPassword{}, err
			}
			return NewPassword{}, fmt.Errorf("making the certificate in Key Vault %s: %w", r.policy.Certificate.VaultURL, err)
		}
		cert = c
	} else {
		c, err := r.newCertificate(now, now.Add(lifetime))
		if err != nil {
			return NewPassword{}, &errNoCertificates{"making the certificate failed: " + err.Error()}
		}
		cert = c
	}
	nk, err := r.addCertificate(ctx, cert)
	if err != nil {
		return NewPassword{}, err
	}
	r.cert = cert
	return NewPassword{KeyID: nk.KeyID, Start: nk.Start, End: nk.End}, nil
}

// createdNote adds what the journal may say of a new certificate: its
// thumbprint and how it was registered. Nothing for a secret.
func (r *runner) createdNote() string {
	if r.cert == nil {
		return ""
	}
	how := "by a keyCredentials update that kept every other certificate"
	switch {
	case r.prover != nil && r.vaultKID != "":
		how = "by addKey, proving possession of certificate " + Thumbprint(r.prover.Cert) + " with its Key Vault key if the application still holds it (else by a keyCredentials update)"
	case r.prover != nil:
		how = "by addKey, proving possession of the bootstrap certificate " + Thumbprint(r.prover.Cert) + " if the application still holds it (else by a keyCredentials update)"
	}
	where := ""
	if r.vaultKID != "" {
		where = ", private key in Key Vault (" + r.vaultKID + ", never exported)"
	}
	return fmt.Sprintf(", thumbprint %s, subject %s%s, registered %s,", Thumbprint(r.cert.Chain[0]), r.cert.Chain[0].Subject, where, how)
}

// material is what the sinks receive.
func (r *runner) material() sink.Material {
	if r.cert != nil && r.vaultKID != "" {
		// The key stays in Key Vault: the sinks get the chain only, and a
		// sink that needs the key refuses (sink.errNoKey).
		return sink.Material{Certificate: &sink.Certificate{Chain: r.cert.Chain}}
	}
	if r.cert != nil {
		return sink.Material{Certificate: r.cert}
	}
	return sink.SecretMaterial(r.value)
}

// thumbprint of the run's certificate, "" for a secret.
func (r *runner) thumbprint() string {
	if r.cert == nil {
		return ""
	}
	return Thumbprint(r.cert.Chain[0])
}

// forget drops the run's secret value or private key (and the bootstrap
// key): from here on nothing of it is in rotor's memory.
func (r *runner) forget() {
	r.value = secret.Value{}
	r.cert = nil
	r.prover = nil
}
