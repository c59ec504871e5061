package store

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// ErrProvisioned is returned when something other than provisioning tries
// to change or delete an object that rotor.yaml provisions: such objects
// are read-only everywhere else (the UI, the API). The error returned is a
// *ProvisionedError naming the object and its source.
var ErrProvisioned = errors.New("provisioned")

// ProvisionedError says which provisioned object a write was refused for.
type ProvisionedError struct {
	// Kind is "connection" or "policy".
	Kind   string
	Org    domain.OrgID
	Name   string
	Source string
}

// Error names the object and the file that provisions it.
func (e *ProvisionedError) Error() string {
	return fmt.Sprintf("%s %q of organization %s is provisioned by %s and read-only elsewhere: change it there (%s)",
		e.Kind, e.Name, e.Org, e.Source, ErrProvisioned)
}

// Is makes errors.Is(err, ErrProvisioned) true.
func (e *ProvisionedError) Is(target error) bool { return target == ErrProvisioned }

// Org is an organization as stored.
type Org struct {
	ID        domain.OrgID
	Name      string
	CreatedAt time.Time
}

// OrgSettings are an organization's own switches, changed by its
// admins (app.Service.UpdateOrgSettings).
type OrgSettings struct {
	Org domain.OrgID
	// OwnedAppsOnly restricts the organization's members who are not
	// Admins, signed in with Entra, to the applications they own in Entra
	// (docs/sign-in.md, docs/adr/0030).
	OwnedAppsOnly bool
}

// SecretRefKind says where a connection's secret lives.
type SecretRefKind string

// Secret reference kinds.
const (
	// SecretEnv is an environment variable of the rotor process.
	SecretEnv SecretRefKind = "env"
	// SecretFile is a file's content (trimmed).
	SecretFile SecretRefKind = "file"
	// SecretKeyVault is a Key Vault secret (its latest version), read with
	// rotor's host identity.
	SecretKeyVault SecretRefKind = "keyvault"
	// SecretInline is a marker, not a place: the value was written
	// literally in the provisioning file (rotor.yaml) and lives only in
	// the memory of the process that read the file. It is never stored.
	SecretInline SecretRefKind = "inline"
)

// SecretRef is where a connection's secret comes from. It is the only
// form a secret takes in the store: it has no field that could hold a
// value.
type SecretRef struct {
	Kind     SecretRefKind `json:"kind"`
	Env      string        `json:"env,omitempty"`
	File     string        `json:"file,omitempty"`
	VaultURL string        `json:"vault_url,omitempty"`
	Secret   string        `json:"secret,omitempty"`
}

var (
	envNamePattern       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	vaultSecretNameRegex = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
)

// Validate checks that the reference is well formed and that only the
// fields of its kind are set. Errors never repeat a field's content beyond
// what a reference legitimately holds (a variable name, a path, a URL).
func (r SecretRef) Validate() error {
	only := func(ok bool) error {
		if !ok {
			return fmt.Errorf("secret reference of kind %s sets fields of another kind", r.Kind)
		}
		return nil
	}
	switch r.Kind {
	case SecretEnv:
		if !envNamePattern.MatchString(r.Env) {
			return errors.New("secret reference: env must be an environment variable name")
		}
		return only(r.File == "" && r.VaultURL == "" && r.Secret == "")
	case SecretFile:
		if !filepath.IsAbs(r.File) {
			return errors.New("secret reference: file must be an absolute path")
		}
		return only(r.Env == "" && r.VaultURL == "" && r.Secret == "")
	case SecretKeyVault:
		u, err := url.Parse(r.VaultURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return errors.New("secret reference: vault_url must be the vault's https URL")
		}
		if !vaultSecretNameRegex.MatchString(r.Secret) {
			return errors.New("secret reference: secret must be a Key Vault secret name (1-127 letters, digits and dashes)")
		}
		return only(r.Env == "" && r.File == "")
	case SecretInline:
		return only(r.Env == "" && r.File == "" && r.VaultURL == "" && r.Secret == "")
	}
	return fmt.Errorf("secret reference: kind %q is not known: use env, file, keyvault or inline", r.Kind)
}

// String describes the reference (never a value: it holds none).
func (r SecretRef) String() string {
	switch r.Kind {
	case SecretEnv:
		return "environment variable " + r.Env
	case SecretFile:
		return "file " + r.File
	case SecretKeyVault:
		return fmt.Sprintf("Key Vault secret %q in %s", r.Secret, r.VaultURL)
	case SecretInline:
		return "a value inline in rotor.yaml"
	}
	return "empty secret reference"
}

// ConnectionIdentity is a connection's identity without its secrets: the
// method, its non-secret parameters, and references to its secrets.
type ConnectionIdentity struct {
	// Method is azure.AuthMethod's spelling: client_secret, certificate,
	// managed_identity or workload_identity.
	Method   string
	ClientID string
	// ClientSecret is set for client_secret.
	ClientSecret *SecretRef
	// CertificateFile, CertificatePassword and SendCertificateChain are
	// set for certificate.
	CertificateFile      string
	CertificatePassword  *SecretRef
	SendCertificateChain bool
	// ManagedIdentityClientID selects a user-assigned managed identity.
	ManagedIdentityClientID string
	// FederatedTokenFile is workload identity's projected token.
	FederatedTokenFile string
}

// Connection is how an organization reaches one tenant for one purpose,
// as stored.
type Connection struct {
	Org      domain.OrgID
	Name     string
	TenantID string
	// Cloud is azure.Cloud's spelling: public, usgov, china or sim.
	Cloud string
	// Purpose is rotation, automation, vm or read.
	Purpose          string
	SimFile          string
	Identity         ConnectionIdentity
	AuxiliaryTenants []string
	// Provisioned marks an object written by provisioning from Source;
	// it is read-only elsewhere.
	Provisioned bool
	Source      string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Validate checks what the store needs of a connection: names, a known
// cloud, purpose and method, and well-formed secret references for that
// method.
func (c *Connection) Validate() error {
	if c.Org == "" || c.Name == "" || c.TenantID == "" {
		return errors.New("connection: org, name and tenant id must be set")
	}
	switch c.Cloud {
	case "public", "usgov", "china":
		if c.SimFile != "" {
			return fmt.Errorf("connection %q: sim_file is only for cloud sim", c.Name)
		}
	case "sim":
		if c.SimFile == "" {
			return fmt.Errorf("connection %q: cloud sim needs its sim_file", c.Name)
		}
	default:
		return fmt.Errorf("connection %q: cloud %q is not known: use public, usgov, china or sim", c.Name, c.Cloud)
	}
	switch c.Purpose {
	case "rotation", "automation", "vm", "read":
	default:
		return fmt.Errorf("connection %q: purpose %q is not known: use rotation, automation, vm or read", c.Name, c.Purpose)
	}
	id := c.Identity
	check := func(what string, r *SecretRef, want bool) error {
		switch {
		case r == nil && want:
			return fmt.Errorf("connection %q: %s is missing", c.Name, what)
		case r != nil && !want:
			return fmt.Errorf("connection %q: %s is not used with %s", c.Name, what, id.Method)
		case r != nil:
			if err := r.Validate(); err != nil {
				return fmt.Errorf("connection %q: %s: %w", c.Name, what, err)
			}
		}
		return nil
	}
	switch id.Method {
	case "client_secret":
		if err := check("client secret", id.ClientSecret, true); err != nil {
			return err
		}
		return check("certificate password", id.CertificatePassword, false)
	case "certificate":
		if err := check("client secret", id.ClientSecret, false); err != nil {
			return err
		}
		if id.CertificatePassword != nil {
			return check("certificate password", id.CertificatePassword, true)
		}
		return nil
	case "managed_identity", "workload_identity":
		if err := check("client secret", id.ClientSecret, false); err != nil {
			return err
		}
		return check("certificate password", id.CertificatePassword, false)
	}
	return fmt.Errorf("connection %q: identity method %q is not known", c.Name, id.Method)
}

// Policy is a policy as stored: the domain policy, its place in the
// organization's order, and where it comes from.
type Policy struct {
	Org    domain.OrgID
	Policy domain.Policy
	// Position orders policies: the first that matches an application
	// governs it. Provisioned policies come first (in file order), the
	// others follow by Position, then name.
	Position    int
	Provisioned bool
	Source      string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// UpsertConnectionParams creates or replaces a connection.
type UpsertConnectionParams struct {
	Connection Connection
	// ProvisionedBy is the provisioning source (rotor.yaml's path) when
	// provisioning writes the connection; empty for the UI and the API,
	// which may not change a provisioned connection (ErrProvisioned), and
	// provisioning may not take over one they made (ErrConflict).
	ProvisionedBy string
}

// DeleteParams names an object to delete.
type DeleteParams struct {
	Org  domain.OrgID
	Name string
	// ProvisionedBy is set when provisioning deletes; without it a
	// provisioned object is refused with ErrProvisioned.
	ProvisionedBy string
}

// UpsertPolicyParams creates or replaces a policy.
type UpsertPolicyParams struct {
	Org      domain.OrgID
	Policy   domain.Policy
	Position int
	// ProvisionedBy as in UpsertConnectionParams.
	ProvisionedBy string
}

// ProvisionParams is an organization's whole provisioned set, as one
// configuration file declares it.
type ProvisionParams struct {
	Org domain.OrgID
	// Name is the organization's display name (kept if it exists).
	Name string
	// Source is the provisioning file; it must be set.
	Source      string
	Connections []Connection
	// Policies in file order (their positions).
	Policies []domain.Policy
}

// ProvisionResult says what provisioning changed, by object name.
type ProvisionResult struct {
	Org                                      domain.OrgID
	ConnectionsCreated, ConnectionsUpdated   []string
	ConnectionsDeleted, ConnectionsUnchanged []string
	PoliciesCreated, PoliciesUpdated         []string
	PoliciesDeleted, PoliciesUnchanged       []string
}

// Changed reports whether provisioning wrote anything.
func (r ProvisionResult) Changed() bool {
	return len(r.ConnectionsCreated)+len(r.ConnectionsUpdated)+len(r.ConnectionsDeleted)+
		len(r.PoliciesCreated)+len(r.PoliciesUpdated)+len(r.PoliciesDeleted) > 0
}
