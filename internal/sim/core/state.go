package core

import (
	"crypto/sha256"
	"crypto/x509"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Well-known ids, as in Entra.
const (
	// GraphAppID is Microsoft Graph's application id; a Graph proof-of-possession
	// token's audience (00000002-… is the legacy AAD Graph id Graph requires).
	GraphAppID       = "00000003-0000-0000-c000-000000000000"
	ProofAudience    = "00000002-0000-0000-c000-000000000000"
	GraphResource    = "https://graph.microsoft.com"
	ARMResource      = "https://management.azure.com"
	KeyVaultResource = "https://vault.azure.net"
	// AzureDevOpsResource is Azure DevOps' application id: tokens for it
	// ("499b84ac-…/.default") authenticate to the simulated Azure DevOps.
	AzureDevOpsResource = "499b84ac-1321-427f-aa17-267ca6975798"
	RoleReadWriteOwned  = "Application.ReadWrite.OwnedBy"
	RoleReadWriteAll    = "Application.ReadWrite.All"
	RoleReadAll         = "Application.Read.All"
)

// World is the simulator's whole state: every tenant and everything in it.
// One RWMutex guards it all; handlers take it for the shortest time they can.
// Nothing here is persisted: a simulator restart reseeds.
type World struct {
	mu      sync.RWMutex
	tenants map[string]*Tenant // by tenant id
	order   []string           // tenant ids in seed order
}

// Lock, Unlock, RLock and RUnlock take the world's one lock: services hold
// it while they read or change the directory, for the shortest time they
// can, and compute their answer under it.
func (w *World) Lock() { w.mu.Lock() }

// Unlock releases the write lock.
func (w *World) Unlock() { w.mu.Unlock() }

// RLock takes the read lock.
func (w *World) RLock() { w.mu.RLock() }

// RUnlock releases the read lock.
func (w *World) RUnlock() { w.mu.RUnlock() }

// NewWorld returns an empty world.
func NewWorld() *World { return &World{tenants: map[string]*Tenant{}} }

// AddTenant registers t. Callers hold no lock.
func (w *World) AddTenant(t *Tenant) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tenants[t.ID] = t
	w.order = append(w.order, t.ID)
}

// TenantLocked returns the tenant by id (or by its domain or name).
// Callers must hold the world's lock (read or write).
func (w *World) TenantLocked(idOrName string) *Tenant {
	if t, ok := w.tenants[idOrName]; ok {
		return t
	}
	for _, t := range w.tenants {
		if t.Name == idOrName || t.Domain == idOrName {
			return t
		}
	}
	return nil
}

// TenantsLocked returns the tenants in seed order. Callers must hold the
// world's lock.
func (w *World) TenantsLocked() []*Tenant {
	out := make([]*Tenant, 0, len(w.order))
	for _, id := range w.order {
		out = append(out, w.tenants[id])
	}
	return out
}

// Tenant is one Entra tenant with its directory and its vaults.
type Tenant struct {
	ID     string
	Name   string
	Domain string

	// apps in creation order (paging walks this slice); indexes by object id
	// and by app id.
	Apps        []*Application
	appsByOID   map[string]*Application
	appsByAppID map[string]*Application
	// appSeq numbers apps in the order they were added; Apps stays sorted
	// by it (removal keeps order), so a Graph page cursor can be found
	// again by binary search after the slice shifted.
	appSeq uint64

	// service principals by object id and by app id.
	SPs        map[string]*ServicePrincipal
	spsByAppID map[string]*ServicePrincipal

	// Policy is the tenant-wide default app management policy, nil if none.
	Policy *AppManagementPolicy

	// Vaults by name.
	Vaults map[string]*Vault

	// Subscriptions are the tenant's Azure subscriptions, in seed order,
	// and RoleAssignments who holds which role where in them (arm.go).
	Subscriptions   []*Subscription
	RoleAssignments []RoleAssignment

	// ReplicationDelay is how long a new password or key is refused at the
	// token endpoint (AADSTS7000215) after it was added.
	ReplicationDelay time.Duration

	// RotationClientID is the app id of the rotation identity (for sim.json).
	RotationClientID string
	// RotationSecret is the rotation identity's secret value (for sim.json).
	RotationSecret string
	// ManagedIdentityClientID is the app id of the tenant's managed identity.
	ManagedIdentityClientID string
	// ConsumerClientID is the client id of the consumer identity (for
	// sim.json): a managed identity that reads the secrets rotor delivers,
	// so tests can check what a consumer would get without giving rotor's
	// own identity the right to read values.
	ConsumerClientID string

	// Users by object id, in userOrder as added; Groups by object id
	// (users.go).
	Users     map[string]*User
	userOrder []string
	Groups    map[string]*Group
	// UserPasswords are the seeded users' passwords by user principal
	// name, for sim.json (the users keep only hashes).
	UserPasswords map[string]string
}

// NewTenant returns an empty tenant.
func NewTenant(id, name string) *Tenant {
	return &Tenant{
		ID: id, Name: name, Domain: name + ".onmicrosoft.com",
		appsByOID: map[string]*Application{}, appsByAppID: map[string]*Application{},
		SPs: map[string]*ServicePrincipal{}, spsByAppID: map[string]*ServicePrincipal{},
		Vaults: map[string]*Vault{},
		Users:  map[string]*User{}, Groups: map[string]*Group{},
	}
}

// AddApp registers an application (and nothing else: no service principal).
func (t *Tenant) AddApp(a *Application) {
	t.appSeq++
	a.seq = t.appSeq
	t.Apps = append(t.Apps, a)
	t.appsByOID[a.ObjectID] = a
	t.appsByAppID[a.AppID] = a
}

// RemoveApp deletes an application by object id.
func (t *Tenant) RemoveApp(objectID string) {
	a := t.appsByOID[objectID]
	if a == nil {
		return
	}
	delete(t.appsByOID, objectID)
	delete(t.appsByAppID, a.AppID)
	for i, x := range t.Apps {
		if x == a {
			t.Apps = append(t.Apps[:i:i], t.Apps[i+1:]...)
			break
		}
	}
}

// AppByObjectID looks an application up by object id.
func (t *Tenant) AppByObjectID(id string) *Application { return t.appsByOID[id] }

// AppByAppID looks an application up by its client (app) id.
func (t *Tenant) AppByAppID(id string) *Application { return t.appsByAppID[id] }

// ResourceApp finds the application a token request's resource names: its
// app id, "api://<app id>", or one of its identifier URIs (trailing slash
// ignored). Nil when the resource is no application of the tenant.
func (t *Tenant) ResourceApp(resource string) *Application {
	if a := t.AppByAppID(strings.TrimPrefix(resource, "api://")); a != nil {
		return a
	}
	for _, a := range t.Apps {
		for _, u := range a.IdentifierURIs {
			if SameResource(u, resource) {
				return a
			}
		}
	}
	return nil
}

// RolesOn returns the values of the app roles of resource assigned to sp,
// in assignment order: what a token for resource carries in roles.
func (sp *ServicePrincipal) RolesOn(resource *Application) []string {
	roles := []string{}
	for _, as := range sp.Assignments {
		if as.ResourceAppID != resource.AppID {
			continue
		}
		if r := resource.RoleByID(as.RoleID); r != nil && !slices.Contains(roles, r.Value) {
			roles = append(roles, r.Value)
		}
	}
	return roles
}

// AddSP registers a service principal.
func (t *Tenant) AddSP(sp *ServicePrincipal) {
	t.SPs[sp.ObjectID] = sp
	t.spsByAppID[sp.AppID] = sp
}

// SPByAppID looks a service principal up by app id.
func (t *Tenant) SPByAppID(appID string) *ServicePrincipal { return t.spsByAppID[appID] }

// Application is an app registration.
type Application struct {
	ObjectID        string
	AppID           string
	DisplayName     string
	SignInAudience  string
	CreatedDateTime time.Time
	// Owners are directory object ids (service principals or users).
	Owners    []string
	Passwords []*Password
	Keys      []*Key
	FICs      []*FederatedCredential
	// Tags as Graph's application.tags.
	Tags []string
	// IdentifierURIs are the application ID URIs of an app that exposes
	// an API (identifierUris, e.g. "api://rotor-prod"): a client asks for
	// a token with scope "<uri>/.default".
	IdentifierURIs []string
	// AppRoles are the app roles the application defines (appRoles), the
	// values its tokens carry in the roles claim once assigned.
	AppRoles []AppRole
	// AccessTokenVersion is the manifest's accessTokenAcceptedVersion: 2
	// for v2.0 access tokens, 0 (null) or 1 for v1.0 ones. It shapes the
	// tokens issued for this application as a resource.
	AccessTokenVersion int
	// RedirectURIs are the Web platform's redirect URIs (web.redirectUris)
	// of an application people sign in to.
	RedirectURIs []string
	// GroupMembershipClaims is the manifest's groupMembershipClaims:
	// "SecurityGroup" or "All" put the user's groups in ID tokens; "" or
	// "None" do not.
	GroupMembershipClaims string
	// PublicClient is the manifest's isFallbackPublicClient with the
	// mobile and desktop platform: a client that keeps no secret (a
	// command line), signs people in with a loopback redirect
	// (PublicRedirectURIs) and redeems codes without a credential, with
	// PKCE.
	PublicClient bool
	// PublicRedirectURIs are the mobile and desktop platform's redirect
	// URIs (publicClient.redirectUris). A loopback one matches a
	// request's on any port, as RFC 8252 §7.3 asks and Entra does.
	PublicRedirectURIs []string
	// Scopes are the delegated permissions the application exposes as an
	// API (api.oauth2PermissionScopes[].value, e.g. "user_impersonation"):
	// what a client asks a user's token for ("<uri>/user_impersonation").
	Scopes []string

	// seq is the app's position in creation order (set by AddApp).
	seq uint64
}

// Seq is the app's position in creation order (set by AddApp): Graph's
// page cursor, stable while apps are added and removed.
func (a *Application) Seq() uint64 { return a.seq }

// AppRole is one role an application defines for callers (appRoles[]):
// ID is the role's id (appRoleAssignments name it), Value what tokens
// carry.
type AppRole struct {
	ID    string
	Value string
}

// RoleByID returns the app role with the given id, or nil.
func (a *Application) RoleByID(id string) *AppRole {
	for i := range a.AppRoles {
		if a.AppRoles[i].ID == id {
			return &a.AppRoles[i]
		}
	}
	return nil
}

// OwnedBy reports whether the directory object id is an owner.
func (a *Application) OwnedBy(objectID string) bool {
	for _, o := range a.Owners {
		if o == objectID {
			return true
		}
	}
	return false
}

// Password is a passwordCredential. The simulator keeps only a hash of the
// secret: like Entra, it can check a secret but never show it again.
type Password struct {
	KeyID       string
	DisplayName string
	Hint        string
	Start       time.Time
	End         time.Time
	SecretHash  [32]byte
	// AddedAt is when it was added: the token endpoint refuses it until
	// AddedAt + the tenant's replication delay.
	AddedAt time.Time
}

// HashSecret is how secrets are kept.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// Key is a keyCredential holding an X.509 certificate.
type Key struct {
	KeyID       string
	DisplayName string
	Type        string // AsymmetricX509Cert
	Usage       string // Verify
	Start       time.Time
	End         time.Time
	Cert        *x509.Certificate
	// ThumbprintSHA1 is customKeyIdentifier (raw bytes).
	ThumbprintSHA1 []byte
	ThumbprintS256 []byte
	AddedAt        time.Time
}

// FederatedCredential is a federatedIdentityCredential.
type FederatedCredential struct {
	ID          string
	Name        string
	Issuer      string
	Subject     string
	Audiences   []string
	Description string
}

// ServicePrincipal is an enterprise application: the tenant-local identity of
// an application. AppRoles are the Graph application permissions granted to
// it (admin-consented), by value, e.g. "Application.ReadWrite.OwnedBy".
type ServicePrincipal struct {
	ObjectID    string
	AppID       string
	DisplayName string
	AppRoles    []string
	// Assignments are the app roles of other applications of the tenant
	// (APIs) assigned to this service principal (appRoleAssignments, as
	// an admin grants them): a token for such an API carries their values
	// in its roles claim.
	Assignments []AppRoleAssignment
	// ManagedIdentity marks the tenant's managed identity.
	ManagedIdentity bool
}

// AppRoleAssignment assigns the app role RoleID of the application
// ResourceAppID to a service principal.
type AppRoleAssignment struct {
	ResourceAppID string
	RoleID        string
}

// HasRole reports whether the role is granted.
func (sp *ServicePrincipal) HasRole(role string) bool {
	for _, r := range sp.AppRoles {
		if r == role {
			return true
		}
	}
	return false
}

// AppManagementPolicy is the tenant default app management policy
// (only the restrictions the simulator enforces).
type AppManagementPolicy struct {
	ID          string
	DisplayName string
	// MaxPasswordLifetime caps endDateTime - startDateTime of new passwords.
	MaxPasswordLifetime time.Duration
	// MaxKeyLifetime caps asymmetric key lifetimes (0 = no cap).
	MaxKeyLifetime time.Duration
}

// SecretPermission is one Key Vault secret permission, by Key Vault's own
// name (access policies' "secrets" list; the RBAC data-plane roles are
// sets of these). The simulator authorizes every secret operation against
// them, so a client that works here needs no more rights in Azure.
type SecretPermission string

// The secret permissions the simulator enforces, and the operations each
// allows (as Key Vault's REST reference states them).
const (
	// SecretGet reads a value: get secret (any version), get deleted secret.
	SecretGet SecretPermission = "get"
	// SecretList reads properties only: list secrets, list a secret's
	// versions, list deleted secrets.
	SecretList SecretPermission = "list"
	// SecretSet writes: set secret, update secret properties.
	SecretSet SecretPermission = "set"
	// SecretDelete soft-deletes a secret.
	SecretDelete SecretPermission = "delete"
	// SecretRecover recovers a soft-deleted secret.
	SecretRecover SecretPermission = "recover"
	// SecretPurge purges a soft-deleted secret for good.
	SecretPurge SecretPermission = "purge"
)

// AllSecretPermissions is every permission the simulator knows: what a
// vault administrator (or a test arranging a vault) holds.
var AllSecretPermissions = []SecretPermission{SecretGet, SecretList, SecretSet, SecretDelete, SecretRecover, SecretPurge}

// Vault is a Key Vault. Secrets hold every version, newest last.
type Vault struct {
	Name     string
	TenantID string
	// Host is the host:port the vault is served on (its own listener), and
	// URL is "https://" + Host + "/".
	Host    string
	URL     string
	Secrets map[string]*VaultSecret
	// SKU is "standard" (the default when empty) or "premium": only a
	// premium vault creates HSM-backed keys (RSA-HSM, EC-HSM).
	SKU string
	// Keys and Certificates are the vault's keys and certificates
	// (vaultobjects.go). A certificate's key and secret live in Keys and
	// Secrets under the certificate's name, marked managed.
	Keys         map[string]*VaultKey
	Certificates map[string]*VaultCertificate
	// KeyAccess and CertificateAccess are the access policy's keys and
	// certificates lists, by object id, as Access is for secrets.
	KeyAccess         map[string][]KeyPermission
	CertificateAccess map[string][]CertificatePermission
	// Access is the vault's access policy: secret permissions by the
	// object id (oid claim) of the principal holding them. A principal
	// that is not here can authenticate to the vault but do nothing, as
	// in Azure. Change it with Grant and Revoke under World.Update.
	Access map[string][]SecretPermission

	// SubscriptionID, ResourceGroup, Location and Tags are where the vault
	// lives as Resource Manager lists it (arm.go); a vault without a
	// subscription is invisible to ARM.
	SubscriptionID string
	ResourceGroup  string
	Location       string
	Tags           map[string]string
}

// Grant adds permissions for the principal with the given object id.
func (v *Vault) Grant(objectID string, perms ...SecretPermission) {
	grant(&v.Access, objectID, perms...)
}

// Revoke removes permissions from the principal; none left removes it.
func (v *Vault) Revoke(objectID string, perms ...SecretPermission) {
	have := slices.DeleteFunc(slices.Clone(v.Access[objectID]), func(p SecretPermission) bool {
		return slices.Contains(perms, p)
	})
	if len(have) == 0 {
		delete(v.Access, objectID)
		return
	}
	v.Access[objectID] = have
}

// Allows reports whether the principal holds the permission.
func (v *Vault) Allows(objectID string, p SecretPermission) bool {
	return slices.Contains(v.Access[objectID], p)
}

// VaultSecret is a secret with its versions.
type VaultSecret struct {
	Name     string
	Versions []*SecretVersion
	// Managed marks the secret backing a certificate of the same name:
	// Key Vault writes its versions, clients only read them.
	Managed bool
	Deleted bool
	// DeletedAt is when the secret was soft-deleted (Deleted is set); it
	// stays recoverable until DeletedAt + 90 days.
	DeletedAt time.Time
}

// SecretVersion is one version of a Key Vault secret.
type SecretVersion struct {
	Version     string
	Value       string
	ContentType string
	Tags        map[string]string
	Enabled     bool
	NotBefore   *time.Time
	Expires     *time.Time
	Created     time.Time
	Updated     time.Time
}

// SortedSecretNames returns live secret names in order (for stable listing).
func (v *Vault) SortedSecretNames() []string {
	names := make([]string, 0, len(v.Secrets))
	for n, s := range v.Secrets {
		if !s.Deleted {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Tenant returns the tenant with the given id, name or domain, or nil.
// Safe for concurrent use; change what it returns only inside Update.
func (w *World) Tenant(idOrName string) *Tenant {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.TenantLocked(idOrName)
}

// Tenants returns the tenants in seed order.
func (w *World) Tenants() []*Tenant {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.TenantsLocked()
}

// Update runs fn holding the world's write lock, so tests and tools can
// change the directory while handlers run.
func (w *World) Update(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
}

// SetSecretPermissions replaces what the principal with objectID may do
// with secrets in the named vault of tenant (id, name or domain); no
// permissions removes it from the vault's access policy. Tests use it to
// arrange a vault with rights rotor itself must not have (delete, get).
func (w *World) SetSecretPermissions(tenant, vault, objectID string, perms ...SecretPermission) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, err := w.vaultLocked(tenant, vault)
	if err != nil {
		return err
	}
	v.Revoke(objectID, AllSecretPermissions...)
	v.Grant(objectID, perms...)
	return nil
}
