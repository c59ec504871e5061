// Package domain holds rotor's core types and the pure rules over them:
// when a credential is due, whether a policy is valid, which credentials a
// rotation may retire. It does no I/O and imports nothing of rotor's, so
// every rule here is a table test away from being proven.
package domain

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// OrgID identifies an organization: an isolated customer workspace. Every
// row, query and job carries one.
type OrgID string

// DefaultOrg is the organization of single-team installs.
const DefaultOrg OrgID = "default"

// RotorPrefix starts the display name of every credential rotor creates
// ("rotor:<run id>"), so that a crash can always find what it made and
// rotor never mistakes someone else's credential for its own.
const RotorPrefix = "rotor:"

// CredentialKind is what sort of credential an application holds.
type CredentialKind string

// Credential kinds.
const (
	KindSecret      CredentialKind = "secret"
	KindCertificate CredentialKind = "certificate"
)

// Application is an app registration as last seen in a tenant.
type Application struct {
	Org      OrgID
	TenantID string
	// ObjectID is the application object's id (not the client id).
	ObjectID       string
	AppID          string
	DisplayName    string
	SignInAudience string
	CreatedAt      time.Time
	// Owners are directory object ids.
	Owners []string
	// Access lists the connections that see the application, sorted by
	// name, and whether each may change it. Several connections may reach
	// one tenant (a read connection beside the rotation one); each sync
	// records only its own view.
	Access []Access
	// Manageable is true when some connection may change the application:
	// a rotation connection whose identity owns it, so
	// Application.ReadWrite.OwnedBy lets rotor change it. (It is derived
	// from Access; a sync sets it for the syncing connection.)
	Manageable  bool
	Credentials []Credential
	// SyncedAt is when a sync last saw the application (any connection).
	SyncedAt time.Time
}

// Access is one connection's view of an application.
type Access struct {
	Connection string `json:"connection"`
	// CanChange is true when the connection's identity may change the
	// application's credentials (purpose rotation, and an owner).
	CanChange bool `json:"can_change"`
}

// SeenBy reports whether the named connection sees the application.
func (a Application) SeenBy(connection string) bool {
	for _, x := range a.Access {
		if x.Connection == connection {
			return true
		}
	}
	return false
}

// CanChange reports whether the named connection may change the
// application's credentials.
func (a Application) CanChange(connection string) bool {
	for _, x := range a.Access {
		if x.Connection == connection {
			return x.CanChange
		}
	}
	return false
}

// Connections lists the names of the connections that see the application.
func (a Application) Connections() []string {
	out := make([]string, len(a.Access))
	for i, x := range a.Access {
		out[i] = x.Connection
	}
	return out
}

// Credential is one client secret or certificate of an application. It
// never holds a secret value: Entra itself only shows the hint.
type Credential struct {
	KeyID       string
	Kind        CredentialKind
	DisplayName string
	Hint        string
	// Thumbprint is the certificate's SHA-1 thumbprint (customKeyIdentifier).
	Thumbprint string
	Start      time.Time
	End        time.Time
	// Certificate is what the inventory parsed from a certificate
	// credential's public certificate; nil for a secret, and for a
	// certificate not read yet (Graph lists no certificate bodies; see
	// docs/adr/0035).
	Certificate *CertificateInfo
}

// CertificateInfo is what a certificate credential's public certificate
// says. All of it is public.
type CertificateInfo struct {
	// ThumbprintSHA1 is the SHA-1 of the DER certificate in upper-case hex:
	// the portal's "Thumbprint", and what customKeyIdentifier holds (in
	// base64) for certificates uploaded without a custom identifier.
	ThumbprintSHA1 string
	// ThumbprintSHA256 is its SHA-256, upper-case hex (x5t#S256).
	ThumbprintSHA256 string
	Subject          string
	Issuer           string
	// KeyAlgorithm is "RSA" or "EC" (with Curve in KeyAlgorithm's detail:
	// "EC P-256"), or "Ed25519".
	KeyAlgorithm string
	// KeySize is the key's size in bits (RSA modulus, EC curve size).
	KeySize   int
	NotBefore time.Time
	NotAfter  time.Time
}

// SelfSigned reports whether the certificate names itself as its issuer.
func (c CertificateInfo) SelfSigned() bool { return c.Subject != "" && c.Subject == c.Issuer }

// ThumbprintHex is the credential's SHA-1 thumbprint in upper-case hex:
// from the parsed certificate when there is one, else from
// customKeyIdentifier when that is 20 bytes of base64 (a thumbprint);
// empty when neither says.
func (c Credential) ThumbprintHex() string {
	if c.Certificate != nil && c.Certificate.ThumbprintSHA1 != "" {
		return c.Certificate.ThumbprintSHA1
	}
	b, err := base64.StdEncoding.DecodeString(c.Thumbprint)
	if err != nil || len(b) != 20 {
		return ""
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// RotorCreated reports whether rotor made this credential.
func (c Credential) RotorCreated() bool { return strings.HasPrefix(c.DisplayName, RotorPrefix) }

// RunID returns the rotation run that created the credential, if rotor did.
func (c Credential) RunID() string {
	if !c.RotorCreated() {
		return ""
	}
	return strings.TrimPrefix(c.DisplayName, RotorPrefix)
}

// DisplayNameFor is the display name rotor gives the credential of a run.
func DisplayNameFor(runID string) string { return RotorPrefix + runID }

// Selector picks the applications a policy governs. Exactly one is set.
type Selector struct {
	NamePrefix string
	IDs        []string // app ids (client ids) or object ids
	AllOwned   bool
}

// Matches reports whether the selector picks app for a policy rotating
// through the named connection.
func (s Selector) Matches(app Application, connection string) bool {
	switch {
	case s.AllOwned:
		return app.CanChange(connection)
	case s.NamePrefix != "":
		return strings.HasPrefix(app.DisplayName, s.NamePrefix)
	case len(s.IDs) > 0:
		for _, id := range s.IDs {
			if strings.EqualFold(id, app.AppID) || strings.EqualFold(id, app.ObjectID) {
				return true
			}
		}
	}
	return false
}

// String describes the selector for humans.
func (s Selector) String() string {
	switch {
	case s.AllOwned:
		return "all applications rotor owns"
	case s.NamePrefix != "":
		return "display name starts with " + `"` + s.NamePrefix + `"`
	case len(s.IDs) > 0:
		return "ids " + strings.Join(s.IDs, ", ")
	}
	return "nothing"
}

// SinkSpec is one place a new credential must reach, as configured. Type
// names the sink kind ("keyvault", …); Settings are the kind's own keys,
// decoded and validated by that sink's package.
type SinkSpec struct {
	Type     string
	Settings map[string]any
}

// Policy says how an application's credentials are rotated.
type Policy struct {
	Name       string
	Connection string
	Selector   Selector
	Enabled    bool
	Kind       CredentialKind
	// Lifetime of each new credential.
	Lifetime time.Duration
	// RenewBefore is the threshold: rotate at end − RenewBefore.
	RenewBefore time.Duration
	// Overlap is how long older credentials stay valid after a rotation.
	Overlap time.Duration
	// NotifyBefore warns this long before expiry (used by notifications).
	NotifyBefore time.Duration
	// Verify gets a token with the new credential before anything old is
	// retired. On by default.
	Verify bool
	// RetireUnmanaged also retires credentials rotor did not create, after
	// the overlap. Off by default: they stay until they expire.
	RetireUnmanaged bool
	// Certificate shapes the certificates of a policy of kind certificate;
	// its zero value is every default.
	Certificate CertificateSpec
	Sinks       []SinkSpec
	// Overrides lists what the application's own settings changed in
	// this copy of the policy (AppSettings.Apply); empty for the policy as
	// configured. Name stays the policy's.
	Overrides []Override
}

// CertificateSpec says what certificate a policy of kind certificate makes
// and how rotor may prove possession to Graph.
type CertificateSpec struct {
	// KeyType is rsa-2048 (the default, ""), rsa-3072, rsa-4096 or
	// ec-p256 (refused by Validate: Entra's client assertions are RSA).
	KeyType string
	// Subject is the certificate's subject as an RFC 4514 string
	// ("CN=payroll, O=Contoso"); "" is CN=<the application's display name>.
	Subject string
	// DNSNames are subject alternative names; none by default.
	DNSNames []string
	// Bootstrap is where a PEM certificate and its RSA private key live
	// that are registered on the applications of the policy: a secret
	// reference as a sink's settings decode it ({env}, {file} or
	// {keyvault}); nil for none. rotor signs addKey and removeKey proofs
	// with it, and falls back to a keyCredentials update without it.
	Bootstrap map[string]any
	// KeySource is where the private key is made and kept: KeySourceLocal
	// ("" too) in rotor's memory for one run, or in a Key Vault, where it
	// never leaves (docs/adr/0037).
	KeySource KeySource
	// VaultURL is the Key Vault of a Key Vault key source
	// (https://<vault>.vault.azure.net/).
	VaultURL string
	// HSM asks for an HSM-protected key (RSA-HSM), which only a premium
	// vault holds.
	HSM bool
	// VaultName is the template of the Key Vault object's name ("" is
	// DefaultVaultName): one key or certificate per application, a new
	// version per rotation.
	VaultName string
}

// KeySource says where a certificate's private key lives.
type KeySource string

// Key sources.
const (
	// KeySourceLocal: rotor makes the key pair in memory, hands the key to
	// the sinks and forgets it (docs/adr/0033). The default.
	KeySourceLocal KeySource = "local"
	// KeySourceKeyVaultCertificate: Key Vault makes the certificate with a
	// self-signed issuer policy (its key non-exportable); rotor registers
	// the public certificate.
	KeySourceKeyVaultCertificate KeySource = "keyvault-certificate"
	// KeySourceKeyVaultKey: Key Vault makes an RSA key; rotor builds the
	// certificate over its public key and has Key Vault sign it.
	KeySourceKeyVaultKey KeySource = "keyvault-key"
)

// InVault reports whether the private key lives in Key Vault.
func (k KeySource) InVault() bool {
	return k == KeySourceKeyVaultCertificate || k == KeySourceKeyVaultKey
}

// DefaultVaultName is the name template of a Key Vault key source's object.
const DefaultVaultName = "{{ .App.DisplayName | slug }}-cert"

// IsZero reports whether the spec is all defaults.
func (c CertificateSpec) IsZero() bool {
	return c.KeyType == "" && c.Subject == "" && len(c.DNSNames) == 0 && c.Bootstrap == nil &&
		(c.KeySource == "" || c.KeySource == KeySourceLocal) && c.VaultURL == "" && !c.HSM && c.VaultName == ""
}

// Overridden returns the override of field, if the application's
// settings changed it.
func (p Policy) Overridden(field string) (Override, bool) {
	for _, o := range p.Overrides {
		if o.Field == field {
			return o, true
		}
	}
	return Override{}, false
}

// Policy defaults, used when a policy leaves a value out.
const (
	DefaultLifetime = 90 * 24 * time.Hour
	DefaultOverlap  = 24 * time.Hour
)

// DefaultRenewBefore is one third of the lifetime (cert-manager's default).
func DefaultRenewBefore(lifetime time.Duration) time.Duration { return lifetime / 3 }
