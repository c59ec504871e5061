package keyvault

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/sha1" //nolint:gosec // a certificate's thumbprint is SHA-1 by definition
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
)

// This file is how the sink delivers certificate credentials: as a secret
// in the form Key Vault gives its own certificates' backing secrets (PEM
// or PKCS#12, see secretValue), or, with as: certificate, imported as a
// Key Vault certificate, the object App Service and Application Gateway
// bind to. Ownership works as for secrets: rotor's tags on each version,
// adopt for a foreign certificate, never a write over another
// application's. The sink never reads a certificate's private key back: a
// certificate's public part, tags and thumbprint come from the version
// list, which needs certificates list only.

// TagThumbprint is the tag holding the hex SHA-1 thumbprint of the
// certificate a version holds, so people can match it to the application's
// keyCredential (Entra shows the same thumbprint).
const TagThumbprint = "rotor-thumbprint"

// CertificatesAPI is the part of *azcertificates.Client an as: certificate
// sink uses, with the SDK's own signatures. There is no GetCertificate:
// the version list carries everything the sink needs (tags, thumbprint,
// attributes).
type CertificatesAPI interface {
	NewListCertificatePropertiesVersionsPager(name string, options *azcertificates.ListCertificatePropertiesVersionsOptions) *runtime.Pager[azcertificates.ListCertificatePropertiesVersionsResponse]
	ImportCertificate(ctx context.Context, name string, parameters azcertificates.ImportCertificateParameters, options *azcertificates.ImportCertificateOptions) (azcertificates.ImportCertificateResponse, error)
	NewListDeletedCertificatePropertiesPager(options *azcertificates.ListDeletedCertificatePropertiesOptions) *runtime.Pager[azcertificates.ListDeletedCertificatePropertiesResponse]
	RecoverDeletedCertificate(ctx context.Context, name string, options *azcertificates.RecoverDeletedCertificateOptions) (azcertificates.RecoverDeletedCertificateResponse, error)
}

var _ CertificatesAPI = (*azcertificates.Client)(nil)

// checkCertificate checks that c has a leaf and a private key that belongs
// to it.
func checkCertificate(c *sink.Certificate) error {
	switch {
	case c == nil || len(c.Chain) == 0 || c.Chain[0] == nil:
		return errors.New("the certificate has no leaf")
	case c.Key.IsZero():
		return errors.New("the certificate carries no private key: its key lives in the Key Vault of the policy's certificate.key_source, " +
			"where consumers use it; a Key Vault sink (secret or certificate) cannot store it, so remove this sink from the policy")
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if eq, ok := c.Key.Public().(equaler); !ok || !eq.Equal(c.Chain[0].PublicKey) {
		return errors.New("the private key does not belong to the certificate")
	}
	return nil
}

// Thumbprint is the hex SHA-1 thumbprint of a certificate, upper case, as
// Entra and the Azure portal show it.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw) //nolint:gosec // thumbprints are SHA-1
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// EncodePEM is a certificate as Key Vault stores a certificate's secret in
// PEM: the private key as PKCS#8, then the chain, leaf first.
func EncodePEM(c *sink.Certificate) (secret.Value, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key.Signer())
	if err != nil {
		return secret.Value{}, fmt.Errorf("the private key cannot be encoded as PKCS#8: %w", err)
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, cert := range c.Chain {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	}
	return secret.New(b.String()), nil
}

// EncodePKCS12 is a certificate as Key Vault stores a certificate's secret
// in PKCS#12: a password-less PFX in standard base64. It is built here
// from the chain and key rather than taken from Certificate.PKCS12,
// because readers differ in what they open: the legacy algorithms (3DES,
// SHA-1 MAC) are the ones every reader, Go's x/crypto/pkcs12 and so
// azidentity.ParseCertificates included, can decrypt; a modern
// (AES, SHA-256 MAC) PFX is refused by it.
func EncodePKCS12(c *sink.Certificate) (secret.Value, error) {
	pfx, err := pkcs12.LegacyDES.Encode(c.Key.Signer(), c.Chain[0], c.Chain[1:], "")
	if err != nil {
		return secret.Value{}, fmt.Errorf("the certificate cannot be encoded as PKCS#12: %w", err)
	}
	return secret.New(base64.StdEncoding.EncodeToString(pfx)), nil
}

// formatContentType is the content type of a certificate in format.
func formatContentType(format string) string {
	if format == FormatPKCS12 {
		return ContentTypePKCS12
	}
	return ContentTypePEM
}

// encodeCertificate renders c in format.
func encodeCertificate(c *sink.Certificate, format string) (secret.Value, error) {
	if format == FormatPKCS12 {
		return EncodePKCS12(c)
	}
	return EncodePEM(c)
}

// secretValue is what a secret-mode delivery writes and its content type:
// a client secret as it is, with the spec's content type; a certificate
// in the spec's certificate_format, with that format's content type unless
// the spec names one.
func (s *Sink) secretValue(m sink.Material) (string, string, error) {
	if m.Certificate == nil {
		return m.Secret.Reveal(), s.contentType, nil // the one place a secret leaves rotor
	}
	v, err := encodeCertificate(m.Certificate, s.format)
	if err != nil {
		return "", "", err
	}
	ct := formatContentType(s.format)
	if s.contentTypeSet {
		ct = s.contentType
	}
	return v.Reveal(), ct, nil // the one place a certificate's key leaves rotor
}

// certVersion is one certificate version's properties as the list gives them.
type certVersion struct {
	id               string
	created, updated time.Time
	enabled          bool
	tags             map[string]string
	thumbprint       string
}

// getCert reads the certificate's versions: the latest one's properties
// and every version's rotor-key-id. A missing certificate is not an error.
func (s *Sink) getCert(ctx context.Context) (current, error) {
	var latest *certVersion
	ever := map[string]bool{}
	pager := s.certs.NewListCertificatePropertiesVersionsPager(s.name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			var re *azcore.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
				return current{}, nil
			}
			return current{}, s.classify("list", err, "")
		}
		for _, p := range page.Value {
			if p == nil {
				continue
			}
			v := &certVersion{enabled: true, tags: map[string]string{}}
			if p.ID != nil {
				v.id = string(*p.ID)
			}
			if a := p.Attributes; a != nil {
				v.created, v.updated = derefTime(a.Created), derefTime(a.Updated)
				if a.Enabled != nil {
					v.enabled = *a.Enabled
				}
			}
			for k, t := range p.Tags {
				if t != nil {
					v.tags[k] = *t
				}
			}
			if len(p.X509Thumbprint) > 0 {
				v.thumbprint = strings.ToUpper(hex.EncodeToString(p.X509Thumbprint))
			}
			if k := v.tags[TagKeyID]; k != "" {
				ever[strings.ToLower(k)] = true
			}
			if latest == nil || newerCert(v, latest) {
				latest = v
			}
		}
	}
	if latest == nil {
		return current{}, nil
	}
	return current{exists: true, id: latest.id, enabled: latest.enabled, tags: latest.tags, everKeyIDs: ever, thumbprint: latest.thumbprint}, nil
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// newerCert orders versions as newer does for secrets.
func newerCert(a, b *certVersion) bool {
	if c := a.created.Compare(b.created); c != 0 {
		return c > 0
	}
	if c := a.updated.Compare(b.updated); c != 0 {
		return c > 0
	}
	return a.id > b.id
}

// deliverCertificate imports d's certificate as a new version of the Key
// Vault certificate, unless the latest version already is that certificate
// (same thumbprint, rotor's for this application), which changes nothing.
// It never writes over a certificate rotor does not own unless adopt, nor
// over another application's, nor over a disabled latest version. A
// soft-deleted certificate of rotor's for this application is recovered
// first; any other is refused.
func (s *Sink) deliverCertificate(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	switch {
	case d.Material.Certificate == nil:
		return sink.Result{}, sink.Permanent(fmt.Errorf("keyvault sink %s: delivery of key %s is a client secret; "+
			"%s: %s stores certificate credentials only (use %s: %s for secrets)", s.Describe(), d.KeyID, KeyAs, AsCertificate, KeyAs, AsSecret))
	case d.KeyID == "":
		return sink.Result{}, sink.Permanent(fmt.Errorf("keyvault sink %s: delivery has no key id", s.Describe()))
	case !strings.EqualFold(d.App.AppID, s.app.AppID):
		return sink.Result{}, sink.Permanent(fmt.Errorf("keyvault sink %s: built for application %s, asked to deliver for %s", s.Describe(), s.app.AppID, d.App.AppID))
	}
	c := d.Material.Certificate
	if err := checkCertificate(c); err != nil {
		return sink.Result{}, sink.Permanent(fmt.Errorf("keyvault sink %s: delivery of key %s: %w", s.Describe(), d.KeyID, err))
	}
	thumb := Thumbprint(c.Chain[0])

	cur, err := s.getCert(ctx)
	if err != nil {
		return sink.Result{}, err
	}
	var note string
	if !cur.exists {
		if cur, note, err = s.recoverOwnCert(ctx); err != nil {
			return sink.Result{}, err
		}
	}
	note = s.recoveryNote(d.KeyID, note)
	fail := func(err error) (sink.Result, error) {
		s.rememberRecovery(d.KeyID, note)
		return sink.Result{}, err
	}
	if err := s.writable(cur); err != nil {
		return fail(err)
	}
	if cur.exists && cur.enabled && cur.thumbprint == thumb && cur.tags[TagManagedBy] == ManagedByRotor &&
		strings.EqualFold(cur.tags[TagAppID], d.App.AppID) {
		s.rememberRecovery("", "")
		if note != "" {
			return sink.Result{Changed: true, Location: cur.id, Note: note + "; its latest version already held this certificate", Version: cur.id}, nil
		}
		return sink.Result{Changed: false, Location: cur.id, Version: cur.id}, nil
	}

	value, err := encodeCertificate(c, s.format)
	if err != nil {
		return fail(sink.Permanent(fmt.Errorf("keyvault sink %s: delivery of key %s: %w", s.Describe(), d.KeyID, err)))
	}
	tags := tagsFor(d, cur.tags)
	if len(tags) >= maxTags {
		delete(tags, lastForeignTag(tags))
	}
	tags[TagThumbprint] = to.Ptr(thumb)
	raw := value.Reveal() // the one place the certificate's key leaves rotor
	resp, err := s.certs.ImportCertificate(ctx, s.name, azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: &raw,
		CertificateAttributes:    &azcertificates.CertificateAttributes{Enabled: to.Ptr(true)},
		CertificatePolicy: &azcertificates.CertificatePolicy{
			SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr(formatContentType(s.format))},
		},
		Tags: tags,
	}, nil)
	if err != nil {
		return fail(s.classify("import", err, raw))
	}
	s.rememberRecovery("", "")
	res := sink.Result{Changed: true, Note: note}
	if resp.ID != nil {
		res.Location = string(*resp.ID)
		res.Version = res.Location
	}
	return res, nil
}

// lastForeignTag is the last non-rotor tag in name order, the one dropped
// to make room for TagThumbprint.
func lastForeignTag(tags map[string]*string) string {
	last := ""
	for k := range tags {
		if k != TagManagedBy && !strings.HasPrefix(k, "rotor-") && k > last {
			last = k
		}
	}
	return last
}

// findDeletedCert looks for a soft-deleted certificate of the sink's name
// in the vault's deleted list (certificates list permission).
func (s *Sink) findDeletedCert(ctx context.Context) (deletedSecret, error) {
	pager := s.certs.NewListDeletedCertificatePropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return deletedSecret{}, s.classify(opListDeleted, err, "")
		}
		for _, p := range page.Value {
			if p == nil || !strings.EqualFold(deletedCertName(p), s.name) {
				continue
			}
			d := deletedSecret{found: true, enabled: true, tags: map[string]string{}}
			if p.ID != nil {
				d.id = string(*p.ID)
			}
			if p.Attributes != nil && p.Attributes.Enabled != nil {
				d.enabled = *p.Attributes.Enabled
			}
			for k, v := range p.Tags {
				if v != nil {
					d.tags[k] = *v
				}
			}
			d.deleted, d.purge = derefTime(p.DeletedDate), derefTime(p.ScheduledPurgeDate)
			return d, nil
		}
	}
	return deletedSecret{}, nil
}

func deletedCertName(p *azcertificates.DeletedCertificateProperties) string {
	for _, raw := range []*string{(*string)(p.ID), p.RecoveryID} {
		if raw == nil {
			continue
		}
		u, err := url.Parse(*raw)
		if err != nil {
			continue
		}
		segs := strings.Split(strings.Trim(u.Path, "/"), "/")
		if len(segs) >= 2 && (segs[0] == "certificates" || segs[0] == "deletedcertificates") && segs[1] != "" {
			return segs[1]
		}
	}
	return ""
}

// recoverOwnCert is recoverOwn for certificates.
func (s *Sink) recoverOwnCert(ctx context.Context) (current, string, error) {
	d, err := s.findDeletedCert(ctx)
	if err != nil || !d.found {
		return current{}, "", err
	}
	if err := s.recoverable(d); err != nil {
		return current{}, "", err
	}
	if _, err := s.certs.RecoverDeletedCertificate(ctx, s.name, nil); err != nil {
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
			return current{}, "", s.classify(opRecover, err, "")
		}
	}
	cur, err := s.getCert(ctx)
	if err != nil {
		return current{}, "", err
	}
	note := "recovered rotor's soft-deleted certificate first"
	if !d.deleted.IsZero() {
		note += fmt.Sprintf(" (deleted %s)", d.deleted.UTC().Format(time.RFC3339))
	}
	return cur, note, nil
}

// validateCertificate is Validate for as: certificate.
func (s *Sink) validateCertificate(ctx context.Context) sink.Validation {
	cur, err := s.getCert(ctx)
	if err != nil {
		return sink.FromError(err, "")
	}
	if err := s.writable(cur); err != nil {
		return sink.Failed("", err)
	}
	if !cur.exists {
		d, err := s.findDeletedCert(ctx)
		if err != nil {
			return sink.FromError(err, "")
		}
		if d.found {
			if err := s.recoverable(d); err != nil {
				return sink.Failed("", err)
			}
			return sink.Ready(fmt.Sprintf("%s is soft-deleted and is rotor's; rotor recovers it and then imports the new certificate, "+
				"which needs the certificates recover permission besides get, list and import", s.Describe()))
		}
		return sink.Ready(fmt.Sprintf("%s does not exist yet; rotor will import it (listing works; the permission to import shows at the first write)", s.Describe()))
	}
	if cur.tags[TagManagedBy] != ManagedByRotor {
		return sink.Ready(fmt.Sprintf("%s is not managed by rotor; adopt is on, so rotor takes it over at the next rotation", s.Describe()))
	}
	return sink.Ready(fmt.Sprintf("%s is managed by rotor; its latest version holds credential %s (thumbprint %s)",
		s.Describe(), cmp.Or(cur.tags[TagKeyID], "(none)"), cmp.Or(cur.thumbprint, "(none)")))
}

// holdsCertificate is Holds for as: certificate: any version tagged with
// keyID, or a soft-deleted certificate whose latest version was.
func (s *Sink) holdsCertificate(ctx context.Context, keyID string) (bool, error) {
	cur, err := s.getCert(ctx)
	if err != nil {
		return false, err
	}
	if !cur.exists {
		d, err := s.findDeletedCert(ctx)
		if err != nil {
			return false, err
		}
		return d.found && strings.EqualFold(d.tags[TagKeyID], keyID), nil
	}
	return cur.everKeyIDs[strings.ToLower(keyID)], nil
}
