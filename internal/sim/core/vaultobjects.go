package core

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// This file holds a vault's keys and certificates beside its secrets
// (state.go), and the keys and certificates lists of its access policy.
// Key Vault keeps a certificate as three objects of one name: the
// certificate (public part, policy), a managed key (the private key, which
// can sign) and a managed secret (the PEM or PFX with the private key), all
// three sharing each version's id.

// VaultSKUPremium is the vault SKU that may hold HSM-backed keys.
const VaultSKUPremium = "premium"

// KeyPermission is one Key Vault key permission by Key Vault's own name
// (an access policy's "keys" list).
type KeyPermission string

// The key permissions the simulator enforces.
const (
	// KeyGet reads a key's public part and attributes.
	KeyGet KeyPermission = "get"
	// KeyList lists keys and a key's versions.
	KeyList KeyPermission = "list"
	// KeyCreate creates a key or a new version of one.
	KeyCreate KeyPermission = "create"
	// KeyImport imports a key.
	KeyImport KeyPermission = "import"
	// KeyUpdate changes attributes, tags and operations.
	KeyUpdate KeyPermission = "update"
	// KeySign signs a digest.
	KeySign KeyPermission = "sign"
	// KeyVerify verifies a signature.
	KeyVerify KeyPermission = "verify"
	// KeyDelete soft-deletes a key.
	KeyDelete KeyPermission = "delete"
	// KeyRecover recovers a soft-deleted key.
	KeyRecover KeyPermission = "recover"
	// KeyPurge purges a soft-deleted key.
	KeyPurge KeyPermission = "purge"
)

// AllKeyPermissions is every key permission the simulator knows.
var AllKeyPermissions = []KeyPermission{KeyGet, KeyList, KeyCreate, KeyImport, KeyUpdate, KeySign, KeyVerify, KeyDelete, KeyRecover, KeyPurge}

// CertificatePermission is one Key Vault certificate permission by Key
// Vault's own name (an access policy's "certificates" list).
type CertificatePermission string

// The certificate permissions the simulator enforces.
const (
	// CertificateGet reads a certificate (public part), its policy and
	// its pending operation.
	CertificateGet CertificatePermission = "get"
	// CertificateList lists certificates and a certificate's versions.
	CertificateList CertificatePermission = "list"
	// CertificateCreate creates a certificate from a policy.
	CertificateCreate CertificatePermission = "create"
	// CertificateImport imports a PEM or PKCS#12 certificate with its key.
	CertificateImport CertificatePermission = "import"
	// CertificateUpdate changes attributes, tags and the policy.
	CertificateUpdate CertificatePermission = "update"
	// CertificateDelete soft-deletes a certificate.
	CertificateDelete CertificatePermission = "delete"
	// CertificateRecover recovers a soft-deleted certificate.
	CertificateRecover CertificatePermission = "recover"
	// CertificatePurge purges a soft-deleted certificate.
	CertificatePurge CertificatePermission = "purge"
)

// AllCertificatePermissions is every certificate permission the simulator knows.
var AllCertificatePermissions = []CertificatePermission{CertificateGet, CertificateList, CertificateCreate, CertificateImport,
	CertificateUpdate, CertificateDelete, CertificateRecover, CertificatePurge}

// VaultKey is a key with its versions, newest last.
type VaultKey struct {
	Name     string
	Versions []*KeyVersion
	// Managed marks the key backing a certificate of the same name.
	Managed   bool
	Deleted   bool
	DeletedAt time.Time
}

// KeyVersion is one version of a key. Signer is the private key; it never
// leaves the simulator except through a managed secret's value, as in Key
// Vault (a non-exportable key cannot be read at all).
type KeyVersion struct {
	Version string
	// Kty is "RSA", "RSA-HSM", "EC" or "EC-HSM".
	Kty       string
	Signer    crypto.Signer
	KeyOps    []string
	Tags      map[string]string
	Enabled   bool
	NotBefore *time.Time
	Expires   *time.Time
	Created   time.Time
	Updated   time.Time
}

// VaultCertificate is a certificate with its versions (newest last), its
// policy and its pending operation, if any.
type VaultCertificate struct {
	Name     string
	Versions []*CertificateVersion
	Policy   *CertificatePolicy
	// Pending is the create operation in progress or last finished; nil
	// for an imported certificate.
	Pending   *CertificateOperation
	Deleted   bool
	DeletedAt time.Time
}

// CertificateVersion is one issued or imported version.
type CertificateVersion struct {
	Version string
	// Chain is the leaf first.
	Chain     []*x509.Certificate
	Tags      map[string]string
	Enabled   bool
	NotBefore *time.Time
	Expires   *time.Time
	Created   time.Time
	Updated   time.Time
}

// CertificateOperation is a certificate's create operation.
type CertificateOperation struct {
	// Status is "inProgress", "completed", "failed" or "cancelled".
	Status        string
	StatusDetails string
	RequestID     string
	Issuer        string
	CSR           []byte
	// Version is the version the operation issues.
	Version string
	// Tags and Attributes are what the create request asked for, applied
	// to the version when it is issued.
	Tags    map[string]string
	Enabled *bool
	// ErrorCode and ErrorMessage describe a failed operation.
	ErrorCode, ErrorMessage string
}

// CertificatePolicy is a certificate's management policy in Key Vault's
// JSON shape, so the simulator stores and returns what clients sent.
type CertificatePolicy struct {
	ID              string                   `json:"id,omitempty"`
	KeyProps        *CertificateKeyProps     `json:"key_props,omitempty"`
	SecretProps     *CertificateSecretProps  `json:"secret_props,omitempty"`
	X509Props       *CertificateX509Props    `json:"x509_props,omitempty"`
	LifetimeActions []json.RawMessage        `json:"lifetime_actions,omitempty"`
	Issuer          *CertificateIssuerParams `json:"issuer,omitempty"`
	Attributes      *CertificatePolicyAttrs  `json:"attributes,omitempty"`
}

// CertificateKeyProps are a policy's key properties.
type CertificateKeyProps struct {
	Exportable *bool   `json:"exportable,omitempty"`
	Kty        string  `json:"kty,omitempty"`
	KeySize    *int    `json:"key_size,omitempty"`
	ReuseKey   *bool   `json:"reuse_key,omitempty"`
	Curve      *string `json:"crv,omitempty"`
}

// CertificateSecretProps are a policy's secret properties: the backing
// secret's content type.
type CertificateSecretProps struct {
	ContentType string `json:"contentType,omitempty"`
}

// CertificateX509Props are a policy's X.509 properties.
type CertificateX509Props struct {
	Subject        string           `json:"subject,omitempty"`
	EKUs           []string         `json:"ekus,omitempty"`
	SANs           *CertificateSANs `json:"sans,omitempty"`
	KeyUsage       []string         `json:"key_usage,omitempty"`
	ValidityMonths *int             `json:"validity_months,omitempty"`
}

// CertificateSANs are a policy's subject alternative names.
type CertificateSANs struct {
	DNSNames []string `json:"dns_names,omitempty"`
	Emails   []string `json:"emails,omitempty"`
	UPNs     []string `json:"upns,omitempty"`
}

// CertificateIssuerParams name a policy's issuer: "Self", "Unknown" or a
// configured issuer.
type CertificateIssuerParams struct {
	Name                    string `json:"name,omitempty"`
	CertificateType         string `json:"cty,omitempty"`
	CertificateTransparency *bool  `json:"cert_transparency,omitempty"`
}

// CertificatePolicyAttrs are a policy's attributes (times in Unix seconds).
type CertificatePolicyAttrs struct {
	Enabled *bool `json:"enabled,omitempty"`
	Created int64 `json:"created,omitempty"`
	Updated int64 `json:"updated,omitempty"`
}

// grant adds perms to the object id's list in m.
func grant[P comparable](m *map[string][]P, objectID string, perms ...P) {
	if *m == nil {
		*m = map[string][]P{}
	}
	have := (*m)[objectID]
	for _, p := range perms {
		if !slices.Contains(have, p) {
			have = append(have, p)
		}
	}
	(*m)[objectID] = have
}

// GrantKeys adds key permissions for the principal.
func (v *Vault) GrantKeys(objectID string, perms ...KeyPermission) {
	grant(&v.KeyAccess, objectID, perms...)
}

// GrantCertificates adds certificate permissions for the principal.
func (v *Vault) GrantCertificates(objectID string, perms ...CertificatePermission) {
	grant(&v.CertificateAccess, objectID, perms...)
}

// AllowsKey reports whether the principal holds the key permission.
func (v *Vault) AllowsKey(objectID string, p KeyPermission) bool {
	return slices.Contains(v.KeyAccess[objectID], p)
}

// AllowsCertificate reports whether the principal holds the certificate permission.
func (v *Vault) AllowsCertificate(objectID string, p CertificatePermission) bool {
	return slices.Contains(v.CertificateAccess[objectID], p)
}

// Premium reports whether the vault may hold HSM-backed keys.
func (v *Vault) Premium() bool { return v.SKU == VaultSKUPremium }

// vaultLocked finds a tenant's vault; callers hold the write lock.
func (w *World) vaultLocked(tenant, vault string) (*Vault, error) {
	t := w.TenantLocked(tenant)
	if t == nil {
		return nil, fmt.Errorf("sim: tenant %q not found", tenant)
	}
	v := t.Vaults[vault]
	if v == nil {
		return nil, fmt.Errorf("sim: tenant %s has no vault %q", t.Name, vault)
	}
	return v, nil
}

// SetKeyPermissions replaces the principal's key permissions on the vault.
func (w *World) SetKeyPermissions(tenant, vault, objectID string, perms ...KeyPermission) error {
	return setPermissions(w, tenant, vault, func(v *Vault) *map[string][]KeyPermission { return &v.KeyAccess }, objectID, perms)
}

// SetCertificatePermissions replaces the principal's certificate
// permissions on the vault.
func (w *World) SetCertificatePermissions(tenant, vault, objectID string, perms ...CertificatePermission) error {
	return setPermissions(w, tenant, vault, func(v *Vault) *map[string][]CertificatePermission { return &v.CertificateAccess }, objectID, perms)
}

// setPermissions replaces the principal's entry in one of a vault's
// access maps (access picks it); no permissions removes the entry.
func setPermissions[P comparable](w *World, tenant, vault string, access func(*Vault) *map[string][]P, objectID string, perms []P) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, err := w.vaultLocked(tenant, vault)
	if err != nil {
		return err
	}
	m := access(v)
	delete(*m, objectID)
	if len(perms) > 0 {
		grant(m, objectID, perms...)
	}
	return nil
}

// SetVaultSKU sets a vault's SKU ("standard" or "premium").
func (w *World) SetVaultSKU(tenant, vault, sku string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, err := w.vaultLocked(tenant, vault)
	if err != nil {
		return err
	}
	if sku != "standard" && sku != VaultSKUPremium {
		return fmt.Errorf("sim: vault SKU %q is neither standard nor premium", sku)
	}
	v.SKU = sku
	return nil
}
