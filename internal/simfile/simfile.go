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
	// Vercel is the simulated Vercel REST API and its demo seed; absent in
	// files of older simulators.
	Vercel *Vercel `json:"vercel,omitempty"`
	// Webhook is the simulated webhook receiver; absent in files of older
	// simulators.
	Webhook *Webhook `json:"webhook,omitempty"`
	// AzureDevOpsGit is the simulated Azure DevOps Git service (pushes,
	// refs, items) and its demo repository; absent in files of older
	// simulators.
	AzureDevOpsGit *AzureDevOpsGit `json:"azure_devops_git,omitempty"`
	// ARMResources are the seeded Resource Manager resources beyond
	// subscriptions and vaults: Automation accounts (with their runbooks
	// and hybrid worker groups) and Logic Apps API connections, under
	// ARMURL. Absent in files of older simulators.
	ARMResources []ARMResource `json:"arm_resources,omitempty"`
	// AzureDevOps is the simulated Azure DevOps organization (service
	// connections and variable groups), absent in files of older
	// simulators.
	AzureDevOps *AzureDevOps `json:"azure_devops,omitempty"`
	// GitHub is the simulated GitHub REST API; absent in files of older
	// simulators.
	GitHub *GitHub `json:"github,omitempty"`
	// Kubernetes is the simulated Kubernetes API server (internal/sim/kube);
	// absent in files of older simulators.
	Kubernetes *Kubernetes `json:"kubernetes,omitempty"`
}

// AzureDevOpsGit is the simulated Azure DevOps Git service: its
// organization URL (what an adogit sink's organization_url is set to), the
// demo repository's coordinates, a PAT it accepts, and the age recipient
// whose identity it holds (values encrypted to it are decrypted, so
// /_sim/consumers can say which credential the repository holds).
type AzureDevOpsGit struct {
	// URL is the organization's base URL, e.g.
	// "https://127.0.0.1:PORT/contoso" (https://dev.azure.com/contoso in
	// Azure DevOps).
	URL          string `json:"url"`
	Organization string `json:"organization"`
	Project      string `json:"project"`
	Repository   string `json:"repository"`
	Branch       string `json:"branch"`
	// Path is the demo Helm values file, e.g. "/charts/payments/values.yaml".
	Path string `json:"path"`
	// PAT is a personal access token the service accepts (Basic auth with
	// an empty user name). A test double's credential, not a secret.
	PAT string `json:"pat"`
	// PATFile holds PAT, beside sim.json, for a rotor.yaml's
	// `pat: {file: …}`; empty when the simulator has no state dir.
	PATFile string `json:"pat_file,omitempty"`
	// AgeRecipient is the simulator's age X25519 recipient ("age1…").
	AgeRecipient string `json:"age_recipient"`
}

// ARMResource is one seeded Resource Manager resource.
type ARMResource struct {
	// Type is the resource type, e.g. "Microsoft.Automation/automationAccounts"
	// or "Microsoft.Web/connections".
	Type     string `json:"type"`
	TenantID string `json:"tenant_id"`
	// ID is the resource id, "/subscriptions/…/providers/…/{name}".
	ID string `json:"id"`
	// Runbooks and WorkerGroups are an Automation account's.
	Runbooks     []string `json:"runbooks,omitempty"`
	WorkerGroups []string `json:"worker_groups,omitempty"`
	// API is an API connection's managed API (keyvault, azureblob …).
	API string `json:"api,omitempty"`
	// LinkedTenant is the other tenant an API connection is linked to: a
	// request on it needs an x-ms-authorization-auxiliary token for it.
	LinkedTenant string `json:"linked_tenant,omitempty"`
}

// AzureDevOps describes the simulated Azure DevOps organization and what
// the demo seeded in it.
type AzureDevOps struct {
	// URL is the organization's base URL, "https://127.0.0.1:PORT/{org}"
	// (the simulator's https://dev.azure.com/{org}).
	URL          string `json:"url"`
	Organization string `json:"organization"`
	Project      string `json:"project"`
	// TenantID is the Entra tenant backing the organization: bearer
	// tokens for Resource from it are accepted for its members.
	TenantID string `json:"tenant_id"`
	// Resource is the application id Entra tokens are asked for
	// (Resource + "/.default").
	Resource string `json:"resource"`
	// PAT is a full-scope personal access token of a project
	// administrator; ReadOnlyPAT may read but not change anything; and
	// NoAccessPAT belongs to someone who is not a member of the project
	// (every call is 401).
	PAT         string `json:"pat"`
	ReadOnlyPAT string `json:"read_only_pat"`
	NoAccessPAT string `json:"no_access_pat"`
	// PATFile holds PAT, beside sim.json, for a rotor.yaml's
	// `pat: {file: …}`; empty when the simulator has no state dir.
	PATFile string `json:"pat_file,omitempty"`
	// EndpointID and EndpointName are the seeded azurerm service
	// connection (ServicePrincipal, spnKey) of application AppID.
	EndpointID   string `json:"endpoint_id"`
	EndpointName string `json:"endpoint_name"`
	AppID        string `json:"app_id"`
	AppName      string `json:"app_name"`
	// VariableGroupID and VariableGroupName are the seeded variable group;
	// Variable is the secret variable in it meant for rotor.
	VariableGroupID   int    `json:"variable_group_id"`
	VariableGroupName string `json:"variable_group_name"`
	Variable          string `json:"variable"`
}

// GitHub is the simulated GitHub API (internal/sim/github): where it
// listens, its seeded tokens, and the demo targets a github sink can
// deliver to.
type GitHub struct {
	// URL is the API base, e.g. "https://127.0.0.1:PORT/" (the
	// api_url of a github sink; api.github.com's equivalent).
	URL string `json:"url"`
	// Token may read and write every Actions secret (a PAT with repo and
	// admin:org).
	Token string `json:"token"`
	// ReadOnlyToken reads repositories and environments but is refused
	// (403) on every secrets endpoint.
	ReadOnlyToken string `json:"read_only_token"`
	// ThrottledToken is answered with GitHub's secondary rate limit (403,
	// Retry-After) on every request.
	ThrottledToken string `json:"throttled_token"`
	// Owner and Repo are the demo repository, Environment one of its
	// environments, Org the demo organization.
	Owner       string `json:"owner"`
	Repo        string `json:"repo"`
	Environment string `json:"environment"`
	Org         string `json:"org"`
	// TokenFile is the absolute path of a file holding Token (mode 0600),
	// for a sink's token: {file: …}.
	TokenFile string `json:"token_file,omitempty"`
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

// Vercel is the simulated Vercel API (internal/sim/vercel): its base URL
// (a sink's api_url), a token that may act for the demo team, the demo
// team and project, and a token of another user that may not.
type Vercel struct {
	URL string `json:"url"`
	// Token acts for TeamID (Authorization: Bearer).
	Token    string `json:"token"`
	TeamID   string `json:"team_id"`
	TeamSlug string `json:"team_slug"`
	// Project and ProjectID name the demo project, which has a READY
	// production deployment to redeploy.
	Project   string `json:"project"`
	ProjectID string `json:"project_id"`
	// DeniedToken is valid but may not act for TeamID (403 forbidden).
	DeniedToken string `json:"denied_token"`
	// OtherTeamID is a team Token may not act for.
	OtherTeamID string `json:"other_team_id"`
	// TokenFile is the absolute path of a file holding Token (mode 0600),
	// for a sink's token: {file: …}.
	TokenFile string `json:"token_file,omitempty"`
}

// Webhook is the simulator's webhook receiver (internal/sim/webhook).
type Webhook struct {
	// URL is the base of its hooks, "https://127.0.0.1:PORT/hooks/": any
	// name under it receives (POST URL+name).
	URL string `json:"url"`
	// DemoURL is the hook the demo's rotor.yaml points at (URL + "demo").
	DemoURL string `json:"demo_url"`
	// SigningKey is the Standard Webhooks secret (whsec_…) it verifies
	// signatures with; SigningKeyFile is the same in a file (mode 0600),
	// for rotor.yaml's signing_key: {file: …}.
	SigningKey     string `json:"signing_key"`
	SigningKeyFile string `json:"signing_key_file"`
	// AgeRecipient is the public half of its age identity: secrets
	// encrypted to it are decrypted and reported as consumers.
	AgeRecipient string `json:"age_recipient"`
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
	// KeyPermissions and CertificatePermissions are the access policy's
	// keys and certificates lists, likewise.
	KeyPermissions         map[string][]string `json:"key_permissions,omitempty"`
	CertificatePermissions map[string][]string `json:"certificate_permissions,omitempty"`
	// SKU is "standard" or "premium" (only premium holds HSM keys).
	SKU string `json:"sku,omitempty"`
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
