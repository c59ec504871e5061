package inventory

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the thumbprint Azure names certificates by
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// ParseCertificate reads what a certificate credential's public
// certificate (keyCredentials[].key, DER) says. It is outside input: a
// person may have uploaded anything Entra accepted.
func ParseCertificate(der []byte) (*domain.CertificateInfo, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	s1 := sha1.Sum(c.Raw) //nolint:gosec // identification
	s256 := sha256.Sum256(c.Raw)
	info := &domain.CertificateInfo{
		ThumbprintSHA1: strings.ToUpper(hex.EncodeToString(s1[:])), ThumbprintSHA256: strings.ToUpper(hex.EncodeToString(s256[:])),
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		info.KeyAlgorithm, info.KeySize = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		info.KeyAlgorithm, info.KeySize = "EC "+k.Curve.Params().Name, k.Curve.Params().BitSize
	case ed25519.PublicKey:
		info.KeyAlgorithm, info.KeySize = "Ed25519", 256
	default:
		info.KeyAlgorithm = c.PublicKeyAlgorithm.String()
	}
	return info, nil
}

// unparsed is what can be said of key data that is no certificate.
func unparsed(b []byte) *domain.CertificateInfo {
	s1 := sha1.Sum(b) //nolint:gosec // identification
	s256 := sha256.Sum256(b)
	return &domain.CertificateInfo{ThumbprintSHA1: strings.ToUpper(hex.EncodeToString(s1[:])),
		ThumbprintSHA256: strings.ToUpper(hex.EncodeToString(s256[:])), KeyAlgorithm: "unreadable"}
}

// CertificateReader is the optional ability of a directory to read
// certificate credentials' public certificates, which Graph lists nowhere:
// keyCredentials[].key comes only with a GET of one application that
// selects keyCredentials.
type CertificateReader interface {
	// CertificateTenant is the tenant the directory reads.
	CertificateTenant() string
	// ReadCertificates returns, by application object id and key id,
	// the parsed certificates of the given applications. An application
	// that is gone, or a body that does not parse, is left out.
	ReadCertificates(ctx context.Context, objectIDs []string) (map[string]map[string]domain.CertificateInfo, error)
}

var _ CertificateReader = (*GraphDirectory)(nil)

// CertificateTenant implements CertificateReader.
func (d *GraphDirectory) CertificateTenant() string { return d.tenantID }

// ReadCertificates implements CertificateReader: 20 applications to a
// $batch, each GET selecting only id and keyCredentials.
func (d *GraphDirectory) ReadCertificates(ctx context.Context, ids []string) (map[string]map[string]domain.CertificateInfo, error) {
	out := map[string]map[string]domain.CertificateInfo{}
	err := d.eachApplication(ctx, ids, func(id string) string { return "/applications/" + url.PathEscape(id) + "?$select=id,keyCredentials" }, "certificates of application",
		func(id string, body []byte) error {
			var a graph.Application
			if err := json.Unmarshal(body, &a); err != nil {
				return err
			}
			for _, k := range a.KeyCredentials {
				if len(k.Key) == 0 {
					continue
				}
				info, err := ParseCertificate(k.Key)
				if err != nil {
					// Not an X.509 certificate rotor can read: keep its
					// thumbprints, so it is not read again at every sync.
					info = unparsed(k.Key)
				}
				if out[id] == nil {
					out[id] = map[string]domain.CertificateInfo{}
				}
				out[id][k.KeyID] = *info
			}
			return nil
		}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DefaultCertificateReads is Options.CertificateReads's default: how many
// unread certificate credentials one sync reads at most (a $batch per 20
// applications, so at most 50 requests), so that adopting a tenant full of
// certificates spreads the reading over several syncs.
const DefaultCertificateReads = 1000

// certificateStore is what reading certificates needs of the store.
type certificateStore interface {
	PutCertificateDetails(ctx context.Context, p store.PutCertificateDetailsParams) error
	CertificatesWithoutDetails(ctx context.Context, p store.CertificatesWithoutDetailsParams) ([]store.CredentialRef, error)
}

// readCertificates reads the certificates the store has no details of
// yet, up to the sync's budget, and records them (one that did not parse
// with its thumbprints only, so it is not read again at every sync).
func (s *Syncer) readCertificates(ctx context.Context, org domain.OrgID, dir Directory) (int, error) {
	cr, ok := dir.(CertificateReader)
	if !ok || s.certReads < 0 {
		return 0, nil
	}
	cs, ok := s.store.(certificateStore)
	if !ok {
		return 0, nil
	}
	tenant := cr.CertificateTenant()
	backlog, err := cs.CertificatesWithoutDetails(ctx, store.CertificatesWithoutDetailsParams{Org: org, TenantID: tenant, Limit: s.certReads})
	if err != nil || len(backlog) == 0 {
		return 0, err
	}
	var ids []string
	for _, r := range backlog {
		if len(ids) == 0 || ids[len(ids)-1] != r.AppObjectID {
			ids = append(ids, r.AppObjectID)
		}
	}
	found, err := cr.ReadCertificates(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("read certificates: %w", err)
	}
	var details []store.CertificateDetails
	for _, r := range backlog {
		info, ok := found[r.AppObjectID][r.KeyID]
		if !ok {
			continue // gone since, or unreadable: the next sync asks again
		}
		details = append(details, store.CertificateDetails{AppObjectID: r.AppObjectID, KeyID: r.KeyID, Info: info})
	}
	if err := cs.PutCertificateDetails(ctx, store.PutCertificateDetailsParams{Org: org, TenantID: tenant, Details: details}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return 0, nil // an application removed meanwhile
		}
		return 0, fmt.Errorf("record certificates: %w", err)
	}
	return len(details), nil
}
