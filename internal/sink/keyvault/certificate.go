package keyvault

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

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

// formatContentType is the content type of a certificate in format.
func formatContentType(format string) string {
	if format == FormatPKCS12 {
		return ContentTypePKCS12
	}
	return ContentTypePEM
}

// encodeCertificate renders c in format, with the encoders every sink
// shares: PEM is the PKCS#8 key, then the chain, leaf first; PKCS#12 is the
// generator's password-less blob (internal/certgen makes it with the legacy
// 3DES/SHA-1 algorithms azidentity.ParseCertificates opens) in standard
// base64.
func encodeCertificate(c *sink.Certificate, format string) (secret.Value, error) {
	if format == FormatPKCS12 {
		return c.Encode(sink.FormatPKCS12)
	}
	return c.PEM()
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

// getCert reads the certificate's versions: the latest one's properties
// and every version's rotor-key-id. A missing certificate is not an error.
func (s *Sink) getCert(ctx context.Context) (current, error) {
	return latestOf(ctx, s, s.certs.NewListCertificatePropertiesVersionsPager(s.name, nil),
		func(r azcertificates.ListCertificatePropertiesVersionsResponse) []*azcertificates.CertificateProperties {
			return r.Value
		},
		certificateVersion)
}

// certificateVersion is p as a version.
func certificateVersion(p *azcertificates.CertificateProperties) version {
	v := version{id: derefID(p.ID), enabled: true, tags: strs(p.Tags)}
	if a := p.Attributes; a != nil {
		v.created, v.updated, v.enabled = derefTime(a.Created), derefTime(a.Updated), derefBool(a.Enabled, true)
	}
	if len(p.X509Thumbprint) > 0 {
		v.thumbprint = strings.ToUpper(hex.EncodeToString(p.X509Thumbprint))
	}
	return v
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
	thumb := sink.Thumbprint(c.Chain[0])

	cur, note, err := s.prepare(ctx, d.KeyID)
	if err != nil {
		return sink.Result{}, err
	}
	fail := func(err error) (sink.Result, error) {
		s.rememberRecovery(d.KeyID, note)
		return sink.Result{}, err
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
	return findDeletedIn(ctx, s, s.certs.NewListDeletedCertificatePropertiesPager(nil),
		func(r azcertificates.ListDeletedCertificatePropertiesResponse) []*azcertificates.DeletedCertificateProperties {
			return r.Value
		},
		func(p *azcertificates.DeletedCertificateProperties) deletedSecret {
			return deletedSecret{
				name: deletedName("certificates", (*string)(p.ID), p.RecoveryID), id: derefID(p.ID),
				enabled: p.Attributes == nil || derefBool(p.Attributes.Enabled, true), tags: strs(p.Tags),
				deleted: derefTime(p.DeletedDate), purge: derefTime(p.ScheduledPurgeDate),
			}
		})
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
	return cur, s.recoveredNote(d.deleted), nil
}
