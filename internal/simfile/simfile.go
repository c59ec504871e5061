// Package simfile owns sim.json: the contract between a running `rotor sim`
// and every client that wants to talk to it. The simulator writes it once it
// is ready; rotor's Azure clients, tests and third-party SDK code read it.
package simfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileName is the name of the contract file inside the simulator's state dir.
const FileName = "sim.json"

// Info is the content of sim.json. Everything a client needs to reach the
// simulator is here; the admin token for the control API is deliberately not
// (it lives in admin-token beside it), so handing sim.json to a client does
// not hand it the power to inject faults.
type Info struct {
	// AuthorityHost is the Entra authority, e.g. "https://127.0.0.1:8443/".
	// Tenant-specific endpoints are AuthorityHost + tenantID + "/...".
	AuthorityHost string `json:"authority_host"`
	// GraphURL is the Graph v1.0 base, e.g. "https://127.0.0.1:8443/graph/v1.0".
	GraphURL string `json:"graph_url"`
	// GraphAudience is the resource URI of Graph tokens ("https://graph.microsoft.com").
	GraphAudience string `json:"graph_audience"`
	// ARMURL is the Resource Manager endpoint.
	ARMURL string `json:"arm_url"`
	// ARMAudience is the resource URI of ARM tokens.
	ARMAudience string `json:"arm_audience"`
	// KeyVaultAudience is the resource of Key Vault tokens ("https://vault.azure.net").
	KeyVaultAudience string `json:"keyvault_audience"`
	// ManagedIdentityEndpoint is the App Service style identity endpoint
	// (plain HTTP on loopback, as in App Service).
	ManagedIdentityEndpoint string `json:"managed_identity_endpoint"`
	// ManagedIdentityHeader is the value to send as X-IDENTITY-HEADER
	// (IDENTITY_HEADER in App Service).
	ManagedIdentityHeader string `json:"managed_identity_header"`
	// CAFile is the absolute path of the PEM CA certificate that signed the
	// simulator's TLS certificate.
	CAFile string `json:"ca_file"`
	// ControlURL is the base of the fault-injection control API (/_sim/).
	ControlURL string `json:"control_url"`
	// Tenants lists the seeded tenants.
	Tenants []Tenant `json:"tenants"`
	// Kubernetes is the simulated Kubernetes API server (internal/sim/kube);
	// absent in files of older simulators.
	Kubernetes *Kubernetes `json:"kubernetes,omitempty"`
}

// Kubernetes is how to reach the simulated Kubernetes API server: its own
// HTTPS listener, trusting CAFile, with bearer tokens as service account
// tokens are.
type Kubernetes struct {
	// Server is the API server's base URL, e.g. "https://127.0.0.1:PORT".
	Server string `json:"server"`
	// CAFile is the PEM CA the server's certificate chains to (the
	// simulator's CA).
	CAFile string `json:"ca_file"`
	// Kubeconfig is the path of a kubeconfig the simulator wrote into its
	// state dir. Its current context (Context) authenticates through an
	// exec credential plugin (client.authentication.k8s.io/v1), as AKS
	// clusters do with kubelogin; ReadOnlyContext uses ReadOnlyToken.
	Kubeconfig      string `json:"kubeconfig"`
	Context         string `json:"context"`
	ReadOnlyContext string `json:"read_only_context"`
	// Token is rotor's service-account-like token: get, list, create,
	// update and patch on Secrets and workloads in every namespace but
	// kube-system.
	Token string `json:"token"`
	// ReadOnlyToken may get and list, nothing else.
	ReadOnlyToken string `json:"read_only_token"`
	// NoAccessToken authenticates but holds no role: every request but a
	// SelfSubjectAccessReview is 403 Forbidden.
	NoAccessToken string `json:"no_access_token"`
	// Namespace, Secret and Deployment are the demo's seeded target: a
	// Secret the Deployment reads through env (secretKeyRef).
	Namespace  string `json:"namespace"`
	Secret     string `json:"secret"`
	Deployment string `json:"deployment"`
}

// Tenant is one seeded Entra tenant.
type Tenant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Domain is the tenant's initial domain, e.g. "contoso.onmicrosoft.com".
	Domain string `json:"domain,omitempty"`
	// Rotation is the identity rotor rotates with: it holds
	// Application.ReadWrite.OwnedBy and Application.Read.All.
	Rotation Identity `json:"rotation"`
	// ManagedIdentity is the client id of the system-assigned managed identity
	// the managed identity endpoint issues tokens for, if any.
	ManagedIdentity *ManagedIdentity `json:"managed_identity,omitempty"`
	KeyVaults       []KeyVault       `json:"key_vaults"`
	// Subscriptions are the tenant's Azure subscriptions, as Resource
	// Manager lists them to a caller with a role in them.
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
	// Consumer is a user-assigned managed identity standing for the
	// service that reads the secrets rotor delivers: it holds get and list
	// on the tenant's vaults, where the rotation identity holds only list
	// and set. Get its tokens from the managed identity endpoint with
	// client_id. Absent in files of older simulators.
	Consumer *ManagedIdentity `json:"consumer,omitempty"`
	// PasswordLifetimeLimit is the tenant's app management policy cap on
	// password lifetimes (Go duration), empty when there is none.
	PasswordLifetimeLimit string `json:"password_lifetime_limit,omitempty"`
	// Users are the seeded people who can sign in on the authorize page,
	// with their passwords (the demo seed's; bulk seeds have none).
	Users []User `json:"users,omitempty"`
}

// User is a seeded user who signs in interactively.
type User struct {
	ObjectID          string `json:"object_id"`
	UserPrincipalName string `json:"user_principal_name"`
	DisplayName       string `json:"display_name"`
	Password          string `json:"password,omitempty"`
}

// User returns the seeded user whose user principal name or its part
// before the "@" is name.
func (t *Tenant) User(name string) (*User, bool) {
	for k := range t.Users {
		u := &t.Users[k]
		if strings.EqualFold(u.UserPrincipalName, name) || strings.EqualFold(strings.SplitN(u.UserPrincipalName, "@", 2)[0], name) {
			return u, true
		}
	}
	return nil, false
}

// Identity is an app registration with a client secret.
type Identity struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// ObjectID is the service principal's object id.
	ObjectID string `json:"object_id"`
	// AppObjectID is the application object's id.
	AppObjectID string `json:"app_object_id,omitempty"`
}

// ManagedIdentity describes the identity the MI endpoint serves.
type ManagedIdentity struct {
	ClientID    string `json:"client_id"`
	PrincipalID string `json:"principal_id"`
}

// KeyVault is one vault of a tenant.
type KeyVault struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// SecretPermissions is the vault's access policy as the simulator
	// seeded it: Key Vault secret permission names ("get", "list", "set",
	// "delete", "recover", "purge") by principal object id. It tells a
	// client author which identity may do what; the vault enforces it.
	SecretPermissions map[string][]string `json:"secret_permissions,omitempty"`
	// ResourceID is the vault's Resource Manager id
	// (/subscriptions/…/resourceGroups/…/providers/Microsoft.KeyVault/vaults/…);
	// SubscriptionID and ResourceGroup are its parts. Empty for a vault
	// ARM does not list.
	ResourceID     string `json:"resource_id,omitempty"`
	SubscriptionID string `json:"subscription_id,omitempty"`
	ResourceGroup  string `json:"resource_group,omitempty"`
	// ReadableBy are the object ids of the principals holding a role on
	// the vault (or above it), to whom ARM lists it.
	ReadableBy []string `json:"readable_by,omitempty"`
}

// Subscription is one Azure subscription of a tenant.
type Subscription struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
}

// Load reads and validates a sim.json file.
func Load(path string) (*Info, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read simulator file: %w", err)
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("parse simulator file %s: %w", path, err)
	}
	if info.AuthorityHost == "" || info.GraphURL == "" || info.CAFile == "" {
		return nil, fmt.Errorf("simulator file %s is incomplete: authority_host, graph_url and ca_file are required", path)
	}
	return &info, nil
}

// Tenant returns the seeded tenant with the given id or name.
func (i *Info) Tenant(idOrName string) (*Tenant, bool) {
	for k := range i.Tenants {
		if i.Tenants[k].ID == idOrName || i.Tenants[k].Name == idOrName {
			return &i.Tenants[k], true
		}
	}
	return nil, false
}

// Write stores info as dir/sim.json atomically (temp file + rename), so a
// reader polling for the file never sees half of it.
func Write(dir string, info *Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, FileName), b, 0o600)
}

// WriteFileAtomic writes data to path through a temp file and a rename.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
