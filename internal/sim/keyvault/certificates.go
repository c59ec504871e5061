package keyvault

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is SHA-1 by definition
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file is the certificates data plane: create from a policy with the
// self-signed issuer (a pending operation that has completed by the next
// read), import of PEM or PKCS#12 with the private key, get, list, list
// versions, update, the policy, and soft delete. A certificate of name N
// is three objects, as in Key Vault: the certificate, the managed key N
// (which signs, and never leaves) and the managed secret N, whose value
// is the certificate with its private key as PEM or as a password-less
// PKCS#12 in base64, by the policy's secret content type. Every version of
// the three shares one version id.

// Content types of a certificate's backing secret.
const (
	ContentTypePEM    = "application/x-pem-file"
	ContentTypePKCS12 = "application/x-pkcs12"
)

// kvCertBundle is a CertificateBundle, a list item or a deleted certificate.
type kvCertBundle struct {
	ID          string                  `json:"id"`
	KID         string                  `json:"kid,omitempty"`
	SID         string                  `json:"sid,omitempty"`
	X5T         string                  `json:"x5t,omitempty"`
	CER         string                  `json:"cer,omitempty"`
	ContentType string                  `json:"contentType,omitempty"`
	Attributes  kvAttributes            `json:"attributes"`
	Tags        map[string]string       `json:"tags,omitempty"`
	Policy      *core.CertificatePolicy `json:"policy,omitempty"`
	kvDeletedInfo
}

// kvCertOp is a CertificateOperation.
type kvCertOp struct {
	ID                    string                        `json:"id"`
	Issuer                *core.CertificateIssuerParams `json:"issuer,omitempty"`
	CSR                   string                        `json:"csr,omitempty"`
	CancellationRequested bool                          `json:"cancellation_requested"`
	Status                string                        `json:"status"`
	StatusDetails         string                        `json:"status_details,omitempty"`
	Target                string                        `json:"target,omitempty"`
	RequestID             string                        `json:"request_id"`
	Error                 *kvErrorBody                  `json:"error,omitempty"`
}

// routeCertificates dispatches /certificates and /deletedcertificates.
func (c *kvCall) routeCertificates(segs []string) {
	m := c.r.Method
	var op func()
	var need core.CertificatePermission
	n := len(segs)
	switch {
	case segs[0] == "certificates" && n == 1:
		if m == http.MethodGet {
			op, need = func() { c.listCertificates(false) }, core.CertificateList
		}
	case segs[0] == "certificates" && n == 2:
		switch m {
		case http.MethodGet:
			op, need = func() { c.getCertificate(segs[1], "") }, core.CertificateGet
		case http.MethodDelete:
			op, need = func() { c.deleteCertificate(segs[1]) }, core.CertificateDelete
		}
	case segs[0] == "certificates" && n == 3 && segs[2] == "create":
		if m == http.MethodPost {
			op, need = func() { c.createCertificate(segs[1]) }, core.CertificateCreate
		}
	case segs[0] == "certificates" && n == 3 && segs[2] == "import":
		if m == http.MethodPost {
			op, need = func() { c.importCertificate(segs[1]) }, core.CertificateImport
		}
	case segs[0] == "certificates" && n == 3 && segs[2] == "versions":
		if m == http.MethodGet {
			op, need = func() { c.listCertificateVersions(segs[1]) }, core.CertificateList
		}
	case segs[0] == "certificates" && n == 3 && segs[2] == "pending":
		if m == http.MethodGet {
			op, need = func() { c.getPending(segs[1]) }, core.CertificateGet
		}
	case segs[0] == "certificates" && n == 3 && segs[2] == "policy":
		switch m {
		case http.MethodGet:
			op, need = func() { c.getPolicy(segs[1]) }, core.CertificateGet
		case http.MethodPatch:
			op, need = func() { c.updatePolicy(segs[1]) }, core.CertificateUpdate
		}
	case segs[0] == "certificates" && n == 3:
		switch m {
		case http.MethodGet:
			op, need = func() { c.getCertificate(segs[1], segs[2]) }, core.CertificateGet
		case http.MethodPatch:
			op, need = func() { c.updateCertificate(segs[1], segs[2]) }, core.CertificateUpdate
		}
	case segs[0] == "deletedcertificates" && n == 1:
		if m == http.MethodGet {
			op, need = func() { c.listCertificates(true) }, core.CertificateList
		}
	case segs[0] == "deletedcertificates" && n == 2:
		switch m {
		case http.MethodGet:
			op, need = func() { c.getDeletedCertificate(segs[1]) }, core.CertificateGet
		case http.MethodDelete:
			op, need = func() { c.purgeCertificate(segs[1]) }, core.CertificatePurge
		}
	case segs[0] == "deletedcertificates" && n == 3 && segs[2] == "recover":
		if m == http.MethodPost {
			op, need = func() { c.recoverCertificate(segs[1]) }, core.CertificateRecover
		}
	default:
		c.notServed()
		return
	}
	dispatch(c, op, "certificates", need, c.vault.AllowsCertificate)
}

func notFoundCert(ref string) kvReply {
	return notFoundObject("CertificateNotFound", "certificate", ref)
}

func (c *kvCall) liveCert(name string) *core.VaultCertificate {
	if x := lookupFold(c.vault.Certificates, name); x != nil && !x.Deleted {
		return x
	}
	return nil
}

func (c *kvCall) deletedCert(name string, now time.Time) *core.VaultCertificate {
	x := lookupFold(c.vault.Certificates, name)
	if x == nil || !recoverableAt(x.Deleted, x.DeletedAt, now) {
		return nil
	}
	return x
}

func certVersion(x *core.VaultCertificate, version string) *core.CertificateVersion {
	return versionNamed(x.Versions, version, func(v *core.CertificateVersion) string { return v.Version })
}

// certAt is a live certificate and its version ("" the latest), or
// CertificateNotFound.
func (c *kvCall) certAt(name, version string) (*core.VaultCertificate, *core.CertificateVersion, *kvReply) {
	x := c.liveCert(name)
	if x == nil || len(x.Versions) == 0 {
		rp := notFoundCert(name)
		return nil, nil, &rp
	}
	v := certVersion(x, version)
	if v == nil {
		rp := notFoundCert(name + "/" + version)
		return nil, nil, &rp
	}
	return x, v, nil
}

// thumbprintOf is a certificate's SHA-1 thumbprint as Key Vault's x5t
// carries it (base64url, no padding).
func thumbprintOf(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw) //nolint:gosec // x5t is SHA-1 by definition
	return b64u.EncodeToString(sum[:])
}

func (c *kvCall) certAttrs(v *core.CertificateVersion) kvAttributes {
	return versionAttrs(v.Enabled, v.NotBefore, v.Expires, v.Created, v.Updated)
}

func (c *kvCall) policyOut(x *core.VaultCertificate) *core.CertificatePolicy {
	if x.Policy == nil {
		return nil
	}
	p := *x.Policy
	p.ID = c.base + "/certificates/" + x.Name + "/policy"
	return &p
}

func secretContentType(p *core.CertificatePolicy) string {
	if p != nil && p.SecretProps != nil && p.SecretProps.ContentType != "" {
		return p.SecretProps.ContentType
	}
	return ContentTypePKCS12
}

func (c *kvCall) certBundle(x *core.VaultCertificate, v *core.CertificateVersion) kvCertBundle {
	return kvCertBundle{
		ID:  c.base + "/certificates/" + x.Name + "/" + v.Version,
		KID: c.base + "/keys/" + x.Name + "/" + v.Version, SID: c.base + "/secrets/" + x.Name + "/" + v.Version,
		X5T: thumbprintOf(v.Chain[0]), CER: base64.StdEncoding.EncodeToString(v.Chain[0].Raw),
		ContentType: secretContentType(x.Policy), Attributes: c.certAttrs(v), Tags: copyTags(v.Tags),
		Policy: c.policyOut(x),
	}
}

func (c *kvCall) certItem(x *core.VaultCertificate, v *core.CertificateVersion, withVersion bool) kvCertBundle {
	id := c.base + "/certificates/" + x.Name
	if withVersion {
		id += "/" + v.Version
	}
	return kvCertBundle{ID: id, X5T: thumbprintOf(v.Chain[0]), Attributes: c.certAttrs(v), Tags: copyTags(v.Tags)}
}

func (c *kvCall) deletedCertBundle(x *core.VaultCertificate, item bool) kvCertBundle {
	v := x.Versions[len(x.Versions)-1]
	b := c.certBundle(x, v)
	if item {
		b = c.certItem(x, v, false)
	}
	b.kvDeletedInfo = c.deletedInfo("certificates", x.Name, x.DeletedAt)
	return b
}

func (c *kvCall) opOut(x *core.VaultCertificate) kvCertOp {
	o := x.Pending
	out := kvCertOp{
		ID: c.base + "/certificates/" + x.Name + "/pending", Issuer: &core.CertificateIssuerParams{Name: o.Issuer},
		Status: o.Status, StatusDetails: o.StatusDetails, RequestID: o.RequestID,
		Target: c.base + "/certificates/" + x.Name,
	}
	if len(o.CSR) > 0 {
		out.CSR = base64.StdEncoding.EncodeToString(o.CSR)
	}
	if o.ErrorCode != "" {
		out.Error = &kvErrorBody{Code: o.ErrorCode, Message: o.ErrorMessage}
	}
	return out
}

type kvCertAttrsIn struct {
	Enabled *bool `json:"enabled"`
}

// nameTaken reports a plain (unmanaged) secret or key that holds the name
// a certificate needs for its backing objects.
func (c *kvCall) nameTaken(name string) bool {
	if s := c.lookup(name); s != nil && !s.Managed {
		return true
	}
	if k := lookupFold(c.vault.Keys, name); k != nil && !k.Managed {
		return true
	}
	return false
}

// certPrecheck is the refusal, if any, of a new version of certificate
// name; it purges what is past its retention. Callers hold the write lock.
func (c *kvCall) certPrecheck(name string, now time.Time) *kvReply {
	x := lookupFold(c.vault.Certificates, name)
	if x != nil && x.Deleted {
		if c.deletedCert(name, now) != nil {
			rp := kvErr(http.StatusConflict, "Conflict", fmt.Sprintf("Certificate %s is currently in a deleted but recoverable state, "+
				"and its name cannot be reused; in this state, the certificate can only be recovered or purged.", x.Name), "ObjectIsDeletedButRecoverable")
			return &rp
		}
		c.dropCertificate(x)
	}
	if c.nameTaken(name) {
		rp := kvErr(http.StatusConflict, "Conflict", fmt.Sprintf("There is already a secret or key named %s that does not belong to a certificate; "+
			"a certificate needs its name for its key and secret.", name), "")
		return &rp
	}
	return nil
}

// dropCertificate removes a certificate and its backing key and secret.
func (c *kvCall) dropCertificate(x *core.VaultCertificate) {
	delete(c.vault.Certificates, x.Name)
	if k := lookupFold(c.vault.Keys, x.Name); k != nil && k.Managed {
		delete(c.vault.Keys, k.Name)
	}
	if s := c.lookup(x.Name); s != nil && s.Managed {
		delete(c.vault.Secrets, s.Name)
	}
}

// addVersion stores a new certificate version with its managed key and
// secret. Callers hold the write lock.
func (c *kvCall) addVersion(x *core.VaultCertificate, version string, chain []*x509.Certificate, signer crypto.Signer,
	tags map[string]string, enabled bool, now time.Time,
) (*core.CertificateVersion, error) {
	value, err := backingSecretValue(secretContentType(x.Policy), chain, signer, keyExportable(x.Policy))
	if err != nil {
		return nil, err
	}
	nb, na := chain[0].NotBefore.UTC(), chain[0].NotAfter.UTC()
	v := &core.CertificateVersion{Version: version, Chain: chain, Tags: copyTags(tags), Enabled: enabled,
		NotBefore: &nb, Expires: &na, Created: now, Updated: now}
	x.Versions = append(x.Versions, v)

	if c.vault.Keys == nil {
		c.vault.Keys = map[string]*core.VaultKey{}
	}
	k := lookupFold(c.vault.Keys, x.Name)
	if k == nil {
		k = &core.VaultKey{Name: x.Name, Managed: true}
		c.vault.Keys[x.Name] = k
	}
	kty := "RSA"
	if _, ok := signer.Public().(*ecdsa.PublicKey); ok {
		kty = "EC"
	}
	if x.Policy != nil && x.Policy.KeyProps != nil && x.Policy.KeyProps.Kty != "" {
		kty = x.Policy.KeyProps.Kty
	}
	k.Versions = append(k.Versions, &core.KeyVersion{Version: version, Kty: kty, Signer: signer,
		KeyOps: []string{"sign", "verify"}, Tags: copyTags(tags), Enabled: enabled, NotBefore: &nb, Expires: &na, Created: now, Updated: now})

	if c.vault.Secrets == nil {
		c.vault.Secrets = map[string]*core.VaultSecret{}
	}
	s := c.lookup(x.Name)
	if s == nil {
		s = &core.VaultSecret{Name: x.Name, Managed: true}
		c.vault.Secrets[x.Name] = s
	}
	s.Versions = append(s.Versions, &core.SecretVersion{Version: version, Value: value, ContentType: secretContentType(x.Policy),
		Tags: copyTags(tags), Enabled: enabled, NotBefore: &nb, Expires: &na, Created: now, Updated: now})
	return v, nil
}

// keyExportable reports whether the policy lets the private key out
// through the certificate's secret: its key_props.exportable, true when
// unset (the default policy's).
func keyExportable(p *core.CertificatePolicy) bool {
	return p == nil || p.KeyProps == nil || p.KeyProps.Exportable == nil || *p.KeyProps.Exportable
}

// backingSecretValue renders the managed secret: PEM is the PKCS#8 private
// key followed by the chain, leaf first; PKCS#12 is a password-less PFX in
// standard base64, with the legacy (3DES, SHA-1 MAC) algorithms that every
// PKCS#12 reader, Go's x/crypto/pkcs12 (azidentity) included, can open.
// For a policy whose key is not exportable the secret holds the chain
// only: "the private key isn't part of the value when it's retrieved as a
// secret" (Key Vault's documentation, exporting certificates).
func backingSecretValue(contentType string, chain []*x509.Certificate, signer crypto.Signer, exportable bool) (string, error) {
	if !exportable {
		if contentType == ContentTypePEM {
			var b bytes.Buffer
			for _, cert := range chain {
				_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
			}
			return b.String(), nil
		}
		pfx, err := pkcs12.LegacyDES.EncodeTrustStore(chain, "")
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(pfx), nil
	}
	switch contentType {
	case ContentTypePEM:
		der, err := x509.MarshalPKCS8PrivateKey(signer)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		_ = pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		for _, cert := range chain {
			_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
		}
		return b.String(), nil
	default:
		pfx, err := pkcs12.LegacyDES.Encode(signer, chain[0], chain[1:], "")
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(pfx), nil
	}
}

// selfSign issues a certificate for policy p with a new key: the subject,
// SANs, EKUs, key usage and validity the policy names (12 months when it
// names none), as Key Vault's "Self" issuer does.
func selfSign(p *core.CertificatePolicy, now time.Time) ([]*x509.Certificate, crypto.Signer, error) {
	kty, size, crv := "RSA", 0, ""
	if kp := p.KeyProps; kp != nil {
		if kp.Kty != "" {
			kty = kp.Kty
		}
		if kp.KeySize != nil {
			size = *kp.KeySize
		}
		if kp.Curve != nil {
			crv = *kp.Curve
		}
	}
	signer, msg := newKeyMaterial(kty, size, crv)
	if msg != "" {
		return nil, nil, errors.New(msg)
	}
	xp := p.X509Props
	if xp == nil || xp.Subject == "" {
		return nil, nil, errors.New("The policy's x509_props.subject is required.")
	}
	subject, err := parseDN(xp.Subject)
	if err != nil {
		return nil, nil, err
	}
	months := 12
	if xp.ValidityMonths != nil {
		months = *xp.ValidityMonths
	}
	if months < 1 || months > 1200 {
		return nil, nil, fmt.Errorf("The validity of %d months is out of range.", months)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject, Issuer: subject,
		NotBefore: now.Add(-5 * time.Minute).Truncate(time.Second), NotAfter: now.AddDate(0, months, 0).Truncate(time.Second),
		BasicConstraintsValid: true,
	}
	if xp.SANs != nil {
		tmpl.DNSNames, tmpl.EmailAddresses = xp.SANs.DNSNames, xp.SANs.Emails
	}
	ekus := xp.EKUs
	if ekus == nil {
		ekus = []string{"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}
	}
	for _, e := range ekus {
		switch e {
		case "1.3.6.1.5.5.7.3.1":
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		case "1.3.6.1.5.5.7.3.2":
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
		}
	}
	usage := xp.KeyUsage
	if usage == nil {
		usage = []string{"digitalSignature", "keyEncipherment"}
	}
	for _, u := range usage {
		tmpl.KeyUsage |= map[string]x509.KeyUsage{
			"digitalSignature": x509.KeyUsageDigitalSignature, "nonRepudiation": x509.KeyUsageContentCommitment,
			"keyEncipherment": x509.KeyUsageKeyEncipherment, "dataEncipherment": x509.KeyUsageDataEncipherment,
			"keyAgreement": x509.KeyUsageKeyAgreement, "keyCertSign": x509.KeyUsageCertSign, "cRLSign": x509.KeyUsageCRLSign,
		}[u]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, nil, fmt.Errorf("The certificate could not be issued: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return []*x509.Certificate{cert}, signer, nil
}

// parseDN parses a subject such as "CN=app.example.com, O=Contoso".
func parseDN(s string) (pkix.Name, error) {
	var n pkix.Name
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return n, fmt.Errorf("The subject %q is not a distinguished name such as CN=example.", s)
		}
		v = strings.TrimSpace(v)
		switch strings.ToUpper(strings.TrimSpace(k)) {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "ST", "S":
			n.Province = append(n.Province, v)
		case "C":
			n.Country = append(n.Country, v)
		default:
			return n, fmt.Errorf("The subject attribute %q is not supported by the simulated Key Vault (CN, O, OU, L, ST, C).", k)
		}
	}
	return n, nil
}

// createCertificate serves POST /certificates/{name}/create: 202 with the
// pending operation. With the "Self" issuer Key Vault issues within
// moments; the simulator issues at once, so the next read of the
// operation says completed. "Unknown" leaves the operation in progress
// with a CSR for an outside CA (merge is not simulated).
func (c *kvCall) createCertificate(name string) {
	if !c.validObjectName("certificate", name) {
		return
	}
	var in struct {
		Policy *core.CertificatePolicy `json:"policy"`
		Attrs  *kvCertAttrsIn          `json:"attributes"`
		Tags   map[string]string       `json:"tags"`
	}
	if !c.decode(&in) {
		return
	}
	if len(in.Tags) > kvMaxTags {
		c.fail(http.StatusBadRequest, "BadParameter", fmt.Sprintf("A certificate can have at most %d tags.", kvMaxTags), "")
		return
	}
	c.write(func(now time.Time) kvReply {
		now = now.UTC()
		x := lookupFold(c.vault.Certificates, name)
		pol := in.Policy
		if pol == nil && x != nil && !x.Deleted {
			pol = x.Policy // a new version under the policy in force
		}
		if pol == nil {
			return kvErr(http.StatusBadRequest, "BadParameter", "Property 'policy' is required for a new certificate.", "")
		}
		issuer := "Self"
		if pol.Issuer != nil && pol.Issuer.Name != "" {
			issuer = pol.Issuer.Name
		}
		if issuer != "Self" && issuer != "Unknown" {
			return kvErr(http.StatusBadRequest, "BadParameter", fmt.Sprintf("Issuer %s is not configured in this vault; the simulator knows Self and Unknown.", issuer), "")
		}
		if kp := pol.KeyProps; kp != nil {
			if msg := c.hsmRefusal(kp.Kty); msg != "" {
				return kvErr(http.StatusBadRequest, "BadParameter", msg, "")
			}
		}
		if rp := c.certPrecheck(name, now); rp != nil {
			return *rp
		}
		x = lookupFold(c.vault.Certificates, name)
		if x == nil {
			x = &core.VaultCertificate{Name: name}
			if c.vault.Certificates == nil {
				c.vault.Certificates = map[string]*core.VaultCertificate{}
			}
			c.vault.Certificates[name] = x
		}
		stored := *pol
		stored.ID = ""
		stored.Issuer = &core.CertificateIssuerParams{Name: issuer}
		if pol.Issuer != nil {
			stored.Issuer.CertificateType = pol.Issuer.CertificateType
		}
		if stored.SecretProps == nil {
			stored.SecretProps = &core.CertificateSecretProps{ContentType: ContentTypePKCS12}
		}
		stored.Attributes = &core.CertificatePolicyAttrs{Enabled: boolPtr(true), Created: now.Unix(), Updated: now.Unix()}
		x.Policy = &stored
		version := newSecretVersion()
		opIn := &core.CertificateOperation{Status: "inProgress", StatusDetails: "Pending certificate created. Certificate request is in progress. " +
			"This may take some time based on the issuer provider. Please check again later.", RequestID: newSecretVersion(), Issuer: issuer, Version: version}
		x.Pending = opIn
		response := c.opOut(x)

		chain, signer, err := selfSign(&stored, now)
		if err != nil {
			return kvErr(http.StatusBadRequest, "BadParameter", err.Error(), "")
		}
		if issuer == "Unknown" {
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: chain[0].Subject}, signer)
			opIn.CSR = csr
			response.CSR = base64.StdEncoding.EncodeToString(csr)
		} else {
			enabled := true
			if in.Attrs != nil && in.Attrs.Enabled != nil {
				enabled = *in.Attrs.Enabled
			}
			if _, err := c.addVersion(x, version, chain, signer, in.Tags, enabled, now); err != nil {
				return kvErr(http.StatusInternalServerError, "InternalError", "The simulator could not store the certificate.", "")
			}
			opIn.Status, opIn.StatusDetails = "completed", ""
		}
		c.w.Header().Set("Location", c.base+"/certificates/"+x.Name+"/pending?api-version="+c.r.URL.Query().Get("api-version"))
		c.w.Header().Set("Retry-After", "1")
		c.s.Logger().Debug("keyvault: certificate created", "vault", c.vault.Name, "name", x.Name, "issuer", issuer, "version", version)
		return kvOK(http.StatusAccepted, response)
	})
}

func boolPtr(b bool) *bool { return &b }

// importCertificate serves POST /certificates/{name}/import: a PEM
// (certificate and private key; the policy's content type says PEM, or the
// value starts with "-----BEGIN") or a base64 PKCS#12 with its password.
func (c *kvCall) importCertificate(name string) {
	if !c.validObjectName("certificate", name) {
		return
	}
	var in struct {
		Value  string                  `json:"value"`
		Pwd    string                  `json:"pwd"`
		Policy *core.CertificatePolicy `json:"policy"`
		Attrs  *kvCertAttrsIn          `json:"attributes"`
		Tags   map[string]string       `json:"tags"`
	}
	if !c.decode(&in) {
		return
	}
	if len(in.Tags) > kvMaxTags {
		c.fail(http.StatusBadRequest, "BadParameter", fmt.Sprintf("A certificate can have at most %d tags.", kvMaxTags), "")
		return
	}
	ct := ""
	if in.Policy != nil && in.Policy.SecretProps != nil {
		ct = in.Policy.SecretProps.ContentType
	}
	isPEM := ct == ContentTypePEM || strings.HasPrefix(strings.TrimSpace(in.Value), "-----BEGIN")
	var chain []*x509.Certificate
	var signer crypto.Signer
	var err error
	if isPEM {
		chain, signer, err = parsePEMBundle([]byte(in.Value))
		ct = ContentTypePEM
	} else {
		chain, signer, err = parsePFX(in.Value, in.Pwd)
		if ct == "" {
			ct = ContentTypePKCS12
		}
	}
	if err != nil {
		// Never echo the value: it holds a private key.
		c.fail(http.StatusBadRequest, "BadParameter", "The certificate to import could not be read: "+err.Error(), "")
		return
	}
	c.write(func(now time.Time) kvReply {
		now = now.UTC()
		if rp := c.certPrecheck(name, now); rp != nil {
			return *rp
		}
		x := lookupFold(c.vault.Certificates, name)
		if x == nil {
			x = &core.VaultCertificate{Name: name}
			if c.vault.Certificates == nil {
				c.vault.Certificates = map[string]*core.VaultCertificate{}
			}
			c.vault.Certificates[name] = x
		}
		x.Policy = importedPolicy(in.Policy, chain[0], signer, ct, now)
		enabled := true
		if in.Attrs != nil && in.Attrs.Enabled != nil {
			enabled = *in.Attrs.Enabled
		}
		v, err := c.addVersion(x, newSecretVersion(), chain, signer, in.Tags, enabled, now)
		if err != nil {
			return kvErr(http.StatusInternalServerError, "InternalError", "The simulator could not store the certificate.", "")
		}
		c.s.Logger().Debug("keyvault: certificate imported", "vault", c.vault.Name, "name", x.Name, "version", v.Version)
		return kvOK(http.StatusOK, c.certBundle(x, v))
	})
}

// importedPolicy is the policy of an imported certificate: what the
// request sent, completed from the certificate and key, with the
// "Unknown" issuer (Key Vault cannot renew what it did not issue).
func importedPolicy(in *core.CertificatePolicy, leaf *x509.Certificate, signer crypto.Signer, contentType string, now time.Time) *core.CertificatePolicy {
	p := &core.CertificatePolicy{}
	if in != nil {
		*p = *in
	}
	p.ID = ""
	p.SecretProps = &core.CertificateSecretProps{ContentType: contentType}
	kp := &core.CertificateKeyProps{Exportable: boolPtr(true), ReuseKey: boolPtr(false)}
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
		kp.Kty, kp.KeySize = "RSA", intPtr(pub.N.BitLen())
	case *ecdsa.PublicKey:
		kp.Kty, kp.Curve = "EC", strPtr(curveName(pub.Curve))
	}
	p.KeyProps = kp
	months := int(leaf.NotAfter.Sub(leaf.NotBefore).Hours() / (24 * 30))
	p.X509Props = &core.CertificateX509Props{Subject: leaf.Subject.String(), ValidityMonths: intPtr(max(months, 1))}
	if len(leaf.DNSNames)+len(leaf.EmailAddresses) > 0 {
		p.X509Props.SANs = &core.CertificateSANs{DNSNames: leaf.DNSNames, Emails: leaf.EmailAddresses}
	}
	p.Issuer = &core.CertificateIssuerParams{Name: "Unknown"}
	p.Attributes = &core.CertificatePolicyAttrs{Enabled: boolPtr(true), Created: now.Unix(), Updated: now.Unix()}
	return p
}

func intPtr(i int) *int       { return &i }
func strPtr(s string) *string { return &s }

// parsePEMBundle reads certificates and exactly one PKCS#8 private key
// that matches the first certificate.
func parsePEMBundle(b []byte) ([]*x509.Certificate, crypto.Signer, error) {
	var chain []*x509.Certificate
	var signer crypto.Signer
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, nil, errors.New("a CERTIFICATE block is not an X.509 certificate")
			}
			chain = append(chain, cert)
		case "RSA PRIVATE KEY", "EC PRIVATE KEY":
			// Key Vault's import reference: "Key Vault will only accept a
			// key in PKCS#8 format".
			return nil, nil, errors.New("the private key is " + blk.Type + "; Key Vault only accepts a PEM key in PKCS#8 format (PRIVATE KEY)")
		case "PRIVATE KEY":
			if signer != nil {
				return nil, nil, errors.New("the PEM holds more than one private key")
			}
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			s, ok := k.(crypto.Signer)
			if err != nil || !ok {
				return nil, nil, errors.New("the private key could not be parsed as PKCS#8")
			}
			signer = s
		}
	}
	return checkPair(chain, signer)
}

// parsePFX reads a base64 PKCS#12 (standard or URL alphabet).
func parsePFX(value, pwd string) ([]*x509.Certificate, crypto.Signer, error) {
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		if raw, err = decodeB64u(value); err != nil {
			return nil, nil, errors.New("the value is neither PEM nor base64 PKCS#12")
		}
	}
	key, leaf, cas, err := pkcs12.DecodeChain(raw, pwd)
	if err != nil {
		return nil, nil, errors.New("the PKCS#12 could not be decoded (wrong password?)")
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the PKCS#12's key cannot sign")
	}
	return checkPair(append([]*x509.Certificate{leaf}, cas...), s)
}

func checkPair(chain []*x509.Certificate, signer crypto.Signer) ([]*x509.Certificate, crypto.Signer, error) {
	switch {
	case len(chain) == 0:
		return nil, nil, errors.New("no certificate found")
	case signer == nil:
		return nil, nil, errors.New("no private key found; Key Vault imports a certificate with its private key")
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if eq, ok := signer.Public().(equaler); !ok || !eq.Equal(chain[0].PublicKey) {
		return nil, nil, errors.New("the private key does not match the certificate")
	}
	return chain, signer, nil
}

func (c *kvCall) getCertificate(name, version string) {
	c.read(func(time.Time) kvReply {
		x, v, nf := c.certAt(name, version)
		if nf != nil {
			return *nf
		}
		return kvOK(http.StatusOK, c.certBundle(x, v))
	})
}

func (c *kvCall) getPending(name string) {
	c.read(func(time.Time) kvReply {
		x := c.liveCert(name)
		if x == nil || x.Pending == nil {
			return kvErr(http.StatusNotFound, "PendingCertificateNotFound", fmt.Sprintf("Pending certificate not found: %s", name), "")
		}
		return kvOK(http.StatusOK, c.opOut(x))
	})
}

func (c *kvCall) getPolicy(name string) {
	c.read(func(time.Time) kvReply {
		x := c.liveCert(name)
		if x == nil || x.Policy == nil {
			return notFoundCert(name)
		}
		return kvOK(http.StatusOK, c.policyOut(x))
	})
}

func (c *kvCall) updatePolicy(name string) {
	var in core.CertificatePolicy
	if !c.decode(&in) {
		return
	}
	c.write(func(now time.Time) kvReply {
		x := c.liveCert(name)
		if x == nil || x.Policy == nil {
			return notFoundCert(name)
		}
		p := *x.Policy
		if in.KeyProps != nil {
			p.KeyProps = in.KeyProps
		}
		if in.SecretProps != nil {
			p.SecretProps = in.SecretProps
		}
		if in.X509Props != nil {
			p.X509Props = in.X509Props
		}
		if in.Issuer != nil {
			p.Issuer = in.Issuer
		}
		if in.LifetimeActions != nil {
			p.LifetimeActions = in.LifetimeActions
		}
		if p.Attributes != nil {
			a := *p.Attributes
			a.Updated = now.Unix()
			p.Attributes = &a
		}
		x.Policy = &p
		return kvOK(http.StatusOK, c.policyOut(x))
	})
}

// updateCertificate serves PATCH /certificates/{name}[/{version}]: tags
// and enabled of the version (and of its key and secret versions, which
// Key Vault keeps in step), and the policy.
func (c *kvCall) updateCertificate(name, version string) {
	var in struct {
		Attrs  *kvCertAttrsIn          `json:"attributes"`
		Tags   map[string]string       `json:"tags"`
		Policy *core.CertificatePolicy `json:"policy"`
	}
	if !c.decode(&in) {
		return
	}
	if len(in.Tags) > kvMaxTags {
		c.fail(http.StatusBadRequest, "BadParameter", fmt.Sprintf("A certificate can have at most %d tags.", kvMaxTags), "")
		return
	}
	c.write(func(now time.Time) kvReply {
		x, v, nf := c.certAt(name, version)
		if nf != nil {
			return *nf
		}
		now = now.UTC()
		if in.Tags != nil {
			v.Tags = copyTags(in.Tags)
		}
		if in.Attrs != nil && in.Attrs.Enabled != nil {
			v.Enabled = *in.Attrs.Enabled
			if k := lookupFold(c.vault.Keys, x.Name); k != nil {
				if kv := keyVersion(k, v.Version); kv != nil {
					kv.Enabled, kv.Updated = v.Enabled, now
				}
			}
			if s := c.lookup(x.Name); s != nil {
				for _, sv := range s.Versions {
					if sv.Version == v.Version {
						sv.Enabled, sv.Updated = v.Enabled, now
					}
				}
			}
		}
		if in.Policy != nil {
			p := *in.Policy
			p.ID = ""
			x.Policy = &p
		}
		v.Updated = now
		return kvOK(http.StatusOK, c.certBundle(x, v))
	})
}

// deleteCertificate serves DELETE /certificates/{name}: a soft delete of
// the certificate with its key and secret.
func (c *kvCall) deleteCertificate(name string) {
	c.write(func(now time.Time) kvReply {
		x := c.liveCert(name)
		if x == nil || len(x.Versions) == 0 {
			return notFoundCert(name)
		}
		now = now.UTC()
		x.Deleted, x.DeletedAt = true, now
		if k := lookupFold(c.vault.Keys, x.Name); k != nil && k.Managed {
			k.Deleted, k.DeletedAt = true, now
		}
		if s := c.lookup(x.Name); s != nil && s.Managed {
			s.Deleted, s.DeletedAt = true, now
		}
		return kvOK(http.StatusOK, c.deletedCertBundle(x, false))
	})
}

func (c *kvCall) getDeletedCertificate(name string) {
	c.read(func(now time.Time) kvReply {
		x := c.deletedCert(name, now)
		if x == nil {
			return notFoundDeleted("CertificateNotFound", "Certificate", name)
		}
		return kvOK(http.StatusOK, c.deletedCertBundle(x, false))
	})
}

func (c *kvCall) purgeCertificate(name string) {
	c.write(func(now time.Time) kvReply {
		x := c.deletedCert(name, now)
		if x == nil {
			return notFoundDeleted("CertificateNotFound", "Certificate", name)
		}
		c.dropCertificate(x)
		return kvReply{status: http.StatusNoContent, noBodyReply: true}
	})
}

func (c *kvCall) recoverCertificate(name string) {
	c.write(func(now time.Time) kvReply {
		x := c.deletedCert(name, now)
		if x == nil {
			return notFoundDeleted("CertificateNotFound", "Certificate", name)
		}
		x.Deleted, x.DeletedAt = false, time.Time{}
		if k := lookupFold(c.vault.Keys, x.Name); k != nil && k.Managed {
			k.Deleted, k.DeletedAt = false, time.Time{}
		}
		if s := c.lookup(x.Name); s != nil && s.Managed {
			s.Deleted, s.DeletedAt = false, time.Time{}
		}
		return kvOK(http.StatusOK, c.certBundle(x, x.Versions[len(x.Versions)-1]))
	})
}

// listCertificates serves GET /certificates (or /deletedcertificates).
func (c *kvCall) listCertificates(deleted bool) {
	listByName(c, func(now time.Time) []string {
		return sortedNames(c.vault.Certificates, func(name string, x *core.VaultCertificate) bool {
			return len(x.Versions) > 0 && ((deleted && c.deletedCert(name, now) != nil) || (!deleted && !x.Deleted))
		})
	}, func(name string) (kvCertBundle, bool) {
		x := c.vault.Certificates[name]
		if deleted {
			return c.deletedCertBundle(x, true), true
		}
		return c.certItem(x, x.Versions[len(x.Versions)-1], false), true
	})
}

// listCertificateVersions serves GET /certificates/{name}/versions.
func (c *kvCall) listCertificateVersions(name string) {
	var x *core.VaultCertificate
	listVersionsOf(c, func() ([]*core.CertificateVersion, *kvReply) {
		if x = c.liveCert(name); x == nil || len(x.Versions) == 0 {
			rp := notFoundCert(name)
			return nil, &rp
		}
		return x.Versions, nil
	}, func(v *core.CertificateVersion) kvCertBundle { return c.certItem(x, v, true) })
}
