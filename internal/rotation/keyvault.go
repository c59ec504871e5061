package rotation

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/certgen"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/vaultname"
)

// This file is where a certificate whose private key lives in Key Vault
// (certificate.key_source keyvault-key or keyvault-certificate,
// docs/adr/0037) differs from one rotor makes in memory: the vault makes
// the key (and, for keyvault-certificate, issues the certificate), the
// vault's sign operation signs the certificate, Graph's proofs of
// possession and the verification's client assertion, and the sinks get the
// chain only. Registration, delivery, verification, retirement and
// recovery are the same code as for any certificate.

// Tags rotor puts on every Key Vault key or certificate version it makes.
// The names are the Key Vault sink's (managed-by, rotor-app-id), so one
// rule says what in a vault is rotor's.
const (
	TagManagedBy   = "managed-by"
	ManagedByRotor = "rotor"
	TagAppID       = "rotor-app-id"
	// TagRun names the run that made the version: what a crashed run
	// left behind is found by it.
	TagRun = "rotor-run"
)

// maxProverVersions bounds how many of a key's newest rotor versions are
// tried as the prover: the current certificate is the newest or the one
// before it (a run between creation and retirement); older ones are at
// most waiting out an overlap.
const maxProverVersions = 5

// VaultSigner is a Key Vault key version as a crypto.Signer: Sign is Key
// Vault's sign operation; nothing in it is secret.
type VaultSigner interface {
	crypto.Signer
	// KID is the key version's identifier (its URL).
	KID() string
	// WithContext is the same signer with its Sign calls bound to ctx
	// (crypto.Signer's Sign takes none).
	WithContext(ctx context.Context) VaultSigner
}

// VaultKeyVersion is one version of a Key Vault key, by its properties.
type VaultKeyVersion struct {
	KID     string
	Tags    map[string]string
	Enabled bool
}

// VaultCertificateRequest is a self-signed certificate for Key Vault to
// issue.
type VaultCertificateRequest struct {
	Subject        string
	DNSNames       []string
	ValidityMonths int
	Bits           int
	HSM            bool
	Tags           map[string]string
}

// Vault is one Key Vault, as the connection's identity reaches it.
type Vault interface {
	// CreateKey adds a version to RSA key name (sign and verify only, not
	// exportable) and returns its signer.
	CreateKey(ctx context.Context, name string, bits int, hsm bool, tags map[string]string) (VaultSigner, error)
	// CreateCertificate has the vault issue a new version of certificate
	// name with a Self issuer, waits until it is issued, and returns it
	// with the signer of its key.
	CreateCertificate(ctx context.Context, name string, req VaultCertificateRequest) (*x509.Certificate, VaultSigner, error)
	// LatestTags returns the tags of the latest version of the key (or,
	// with certificate, the certificate) name; found is false when there
	// is none.
	LatestTags(ctx context.Context, name string, certificate bool) (tags map[string]string, found bool, err error)
	// KeyVersions lists key name's versions, newest first.
	KeyVersions(ctx context.Context, name string) ([]VaultKeyVersion, error)
	// Signer returns the signer of the key version kid.
	Signer(ctx context.Context, kid string) (VaultSigner, error)
}

// VaultConnections is what Connections that can reach Key Vaults offer
// (an optional interface: without it a Key Vault key source fails its
// runs, permanently).
type VaultConnections interface {
	Vault(org domain.OrgID, connection, vaultURL string) (Vault, error)
}

// RegisteredCertificate is a certificate credential of an application
// with its public certificate, as Graph holds it.
type RegisteredCertificate struct {
	KeyID      string
	Cert       *x509.Certificate
	Start, End time.Time
}

// CertificateReader reads an application's certificates with their data
// (an optional interface of a Directory): how rotor finds which of its
// Key Vault keys is still registered and valid, to prove possession.
type CertificateReader interface {
	Certificates(ctx context.Context, objectID string) ([]RegisteredCertificate, error)
}

// vaultOf is the policy's vault, through the connection.
func (e *Engine) vaultOf(org domain.OrgID, connection string, spec domain.CertificateSpec) (Vault, error) {
	vc, ok := e.conns.(VaultConnections)
	if !ok {
		return nil, &errNoCertificates{"this rotor cannot reach Key Vault keys (no vault connections are wired)"}
	}
	v, err := vc.Vault(org, connection, spec.VaultURL)
	if err != nil {
		return nil, &errNoCertificates{fmt.Sprintf("Key Vault %s through connection %q: %v", spec.VaultURL, connection, err)}
	}
	return v, nil
}

// vaultObjectName is the Key Vault object of the application: the
// policy's template rendered for it.
func vaultObjectName(spec domain.CertificateSpec, app domain.Application) (string, error) {
	n, err := vaultname.Render(spec.VaultName, app)
	if err != nil {
		return "", &errNoCertificates{"certificate.vault_name: " + err.Error()}
	}
	return n, nil
}

// runApp is the application a run acted on, as its journal names it: the
// Key Vault object name is rendered from it at retirement too, so a rename
// since the run does not move where rotor looks.
func runApp(run *domain.Run) domain.Application {
	return domain.Application{ObjectID: run.AppObjectID, AppID: run.AppID, DisplayName: run.AppName}
}

// checkVaultOwner refuses to add a version to a Key Vault object that is
// not rotor's for this application: rotor writes only what it owns.
func checkVaultOwner(ctx context.Context, v Vault, spec domain.CertificateSpec, name string, app domain.Application) error {
	tags, found, err := v.LatestTags(ctx, name, spec.KeySource == domain.KeySourceKeyVaultCertificate)
	if err != nil {
		return err
	}
	what := "key"
	if spec.KeySource == domain.KeySourceKeyVaultCertificate {
		what = "certificate"
	}
	switch {
	case !found:
		return nil
	case tags[TagManagedBy] != ManagedByRotor:
		return &errNoCertificates{fmt.Sprintf("Key Vault %s %q in %s exists and is not managed by rotor (no %s=%s tag): rotor adds versions only to its own; name another with certificate.vault_name",
			what, name, spec.VaultURL, TagManagedBy, ManagedByRotor)}
	case !strings.EqualFold(tags[TagAppID], app.AppID):
		return &errNoCertificates{fmt.Sprintf("Key Vault %s %q in %s holds application %s's certificate, not %s's: make certificate.vault_name unique per application (e.g. with {{ .App.AppID }})",
			what, name, spec.VaultURL, tags[TagAppID], app.AppID)}
	}
	return nil
}

// vaultProver finds the certificate rotor registered last whose key is in
// the vault and that Graph still holds as valid, as a Prover whose Sign is
// Key Vault's: addKey and removeKey then need no keyCredentials update.
// nil (and no error) when there is none — the first rotation of an
// application, or after its certificates were removed — or when the
// directory cannot read certificates.
func (e *Engine) vaultProver(ctx context.Context, dir Directory, v Vault, spec domain.CertificateSpec, app domain.Application) (*Prover, error) {
	cr, ok := dir.(CertificateReader)
	if !ok {
		return nil, nil
	}
	name, err := vaultObjectName(spec, app)
	if err != nil {
		return nil, err
	}
	regs, err := cr.Certificates(ctx, app.ObjectID)
	if err != nil {
		return nil, fmt.Errorf("reading the application's certificates: %w", err)
	}
	now := e.now()
	var valid []RegisteredCertificate
	for _, rc := range regs {
		if rc.Cert == nil || now.Before(rc.Start) || !now.Before(rc.End) || !now.Before(rc.Cert.NotAfter) {
			continue
		}
		if _, ok := rc.Cert.PublicKey.(*rsa.PublicKey); ok {
			valid = append(valid, rc)
		}
	}
	if len(valid) == 0 {
		return nil, nil
	}
	versions, err := v.KeyVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	tried := 0
	for _, kv := range versions {
		if !kv.Enabled || kv.Tags[TagManagedBy] != ManagedByRotor || !strings.EqualFold(kv.Tags[TagAppID], app.AppID) {
			continue
		}
		if tried++; tried > maxProverVersions {
			break
		}
		s, err := v.Signer(ctx, kv.KID)
		if err != nil {
			return nil, err
		}
		pub, ok := s.Public().(*rsa.PublicKey)
		if !ok {
			continue
		}
		for _, rc := range valid {
			if pub.Equal(rc.Cert.PublicKey) {
				return &Prover{Cert: rc.Cert, Key: sink.NewPrivateKey(s)}, nil
			}
		}
	}
	return nil, nil
}

// proverFor is the prover a run or a retirement of app under policy
// signs Graph's proofs with: for a Key Vault key source the vault's key of
// the current certificate, else the policy's bootstrap certificate; nil
// when there is none (then a keyCredentials update).
func (e *Engine) proverFor(ctx context.Context, dir Directory, org domain.OrgID, connection string, policy domain.Policy, app domain.Application) (*Prover, error) {
	if policy.Kind != domain.KindCertificate || !policy.Certificate.KeySource.InVault() {
		return e.bootstrapProver(ctx, policy)
	}
	v, err := e.vaultOf(org, connection, policy.Certificate)
	if err != nil {
		return nil, err
	}
	return e.vaultProver(ctx, dir, v, policy.Certificate, app)
}

// newVaultCertificate makes the run's certificate in Key Vault: a new key
// version and a certificate rotor builds over it and Key Vault signs
// (keyvault-key), or a certificate version Key Vault issues
// (keyvault-certificate). The result's Key is the vault's signer: rotor
// never holds the private key.
func (r *runner) newVaultCertificate(ctx context.Context, now, end time.Time) (*sink.Certificate, error) {
	spec := r.policy.Certificate
	v, err := r.e.vaultOf(r.run.Org, r.run.Connection, spec)
	if err != nil {
		return nil, err
	}
	name, err := vaultObjectName(spec, r.app)
	if err != nil {
		return nil, err
	}
	if err := checkVaultOwner(ctx, v, spec, name, r.app); err != nil {
		return nil, err
	}
	kt, err := certgen.ParseKeyType(spec.KeyType)
	if err != nil {
		return nil, &errNoCertificates{err.Error()}
	}
	bits := map[certgen.KeyType]int{certgen.RSA2048: 2048, certgen.RSA3072: 3072, certgen.RSA4096: 4096}[kt]
	if bits == 0 {
		return nil, &errNoCertificates{fmt.Sprintf("key type %s cannot be made in Key Vault: RSA only", kt)}
	}
	tags := map[string]string{TagManagedBy: ManagedByRotor, TagAppID: r.app.AppID, TagRun: r.run.ID}
	var (
		cert   *x509.Certificate
		signer VaultSigner
	)
	err = r.e.fenced(ctx, r.run, func(ctx context.Context) error {
		switch spec.KeySource {
		case domain.KeySourceKeyVaultKey:
			s, err := v.CreateKey(ctx, name, bits, spec.HSM, tags)
			if err != nil {
				return err
			}
			subject, err := certgen.ParseSubject(spec.Subject, r.app.DisplayName)
			if err != nil {
				return &errNoCertificates{err.Error()}
			}
			// The signer carries the run's context: crypto.Signer has none.
			c, err := certgen.SelfSign(certgen.Request{Subject: subject, DNSNames: spec.DNSNames, NotBefore: now, NotAfter: end}, s)
			if err != nil {
				return fmt.Errorf("signing the certificate with Key Vault key %s: %w", s.KID(), err)
			}
			cert, signer = c, s
		case domain.KeySourceKeyVaultCertificate:
			subject := spec.Subject
			if subject == "" {
				subject = "CN=" + r.app.DisplayName
			}
			c, s, err := v.CreateCertificate(ctx, name, VaultCertificateRequest{Subject: subject, DNSNames: spec.DNSNames,
				ValidityMonths: domain.ValidityMonths(cmpDuration(r.policy.Lifetime, domain.DefaultLifetime)), Bits: bits, HSM: spec.HSM, Tags: tags})
			if err != nil {
				return err
			}
			cert, signer = c, s
		default:
			return &errNoCertificates{fmt.Sprintf("key source %q is not a Key Vault", spec.KeySource)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(signer.Public()) {
		return nil, &errNoCertificates{"the Key Vault certificate is not over the key Key Vault returned"}
	}
	// Bound to the run's context, not the fenced write's, which ends here.
	signer = signer.WithContext(ctx)
	r.vaultKID = signer.KID()
	return &sink.Certificate{Chain: []*x509.Certificate{cert}, Key: sink.NewPrivateKey(signer)}, nil
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
