// Package sim is rotor's local Azure: it assembles the simulator's core
// (internal/sim/core: world, clock, faults, tokens, TLS, control API) with
// one package per simulated service (entra, graph, keyvault, arm), served
// over HTTPS on loopback with its own CA. Microsoft's SDK clients work
// against it unchanged given only sim.json. Tests start it through
// internal/sim/simtest.
//
// The public surface is New, Options and Server, plus aliases of the core
// types callers use to arrange or inspect the world, so callers need not
// import the core.
package sim

import (
	"crypto/x509"
	"log/slog"
	"time"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/sim/ado"
	"github.com/rotor-dev/rotor/internal/sim/adogit"
	"github.com/rotor-dev/rotor/internal/sim/arm"
	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/sim/entra"
	"github.com/rotor-dev/rotor/internal/sim/github"
	"github.com/rotor-dev/rotor/internal/sim/graph"
	"github.com/rotor-dev/rotor/internal/sim/keyvault"
	"github.com/rotor-dev/rotor/internal/sim/kube"
	"github.com/rotor-dev/rotor/internal/sim/vercel"
	"github.com/rotor-dev/rotor/internal/sim/webhook"
)

// Options configure a simulator.
type Options struct {
	// StateDir receives ca.pem, admin-token and sim.json. Required.
	StateDir string
	// Addr is the host:port of the main HTTPS listener (Entra, Graph, ARM,
	// control API). Default "127.0.0.1:0".
	Addr string
	// Seed is "demo" (the default) or a bulk spec
	// "apps=N,tenants=T,expiring=DURATION[,replication=DURATION]".
	Seed string
	// Clock is the simulated time source. Nil means a *clock.Offset, so the
	// control API can jump the simulated world forward in time.
	Clock clock.Clock
	// Logger receives request and lifecycle logs; nil discards them.
	Logger *slog.Logger
	// ReplicationDelay, when set, overrides every seeded tenant's delay.
	ReplicationDelay *time.Duration
	// Faults is the initial fault injection; it can be changed at run time
	// through the control API or SetFaults.
	Faults FaultConfig
	// OnSecretIssued, when set, is called with every password the
	// simulator hands out through addPassword. Entra never shows a secret
	// twice and the simulator keeps only hashes; tests use this to check
	// that no issued value ends up anywhere it should not.
	OnSecretIssued func(tenantID, appObjectID, keyID, value string)
}

// Server is one running simulator: the core with every service
// registered. Create it with New, then Start it; World, MintToken,
// SetFaults, Stats, Info and Close come from the core.
type Server struct {
	*core.Core
}

// New builds a simulator: CA and TLS certificate, the token signing key,
// the seeded world and every service. It listens on nothing until Start.
func New(opts Options) (*Server, error) {
	c, err := core.New(core.Options{
		StateDir: opts.StateDir, Addr: opts.Addr, Seed: opts.Seed, Clock: opts.Clock, Logger: opts.Logger,
		ReplicationDelay: opts.ReplicationDelay, Faults: opts.Faults,
	}, services(opts)...)
	if err != nil {
		return nil, err
	}
	return &Server{Core: c}, nil
}

// services is the one place the simulated services are listed. A new
// service is a package implementing core.Service, added here.
func services(opts Options) []core.Service {
	return []core.Service{
		&entra.Service{},
		graph.New(opts.OnSecretIssued),
		&keyvault.Service{},
		&arm.Service{},
		&vercel.Service{},
		&webhook.Service{},
		&adogit.Service{},
		&ado.Service{},
		&github.Service{},
		&kube.Service{},
	}
}

// The core's types and names callers use to arrange or inspect the world.
type (
	// World is the simulated directory (see core.World).
	World = core.World
	// Tenant is an Entra tenant (see core.Tenant).
	Tenant = core.Tenant
	// Application is an app registration.
	Application = core.Application
	// Password is a passwordCredential.
	Password = core.Password
	// Key is a keyCredential.
	Key = core.Key
	// FederatedCredential is a federatedIdentityCredential.
	FederatedCredential = core.FederatedCredential
	// ServicePrincipal is a service principal.
	ServicePrincipal = core.ServicePrincipal
	// Vault is a Key Vault.
	Vault = core.Vault
	// SecretPermission is a Key Vault secret permission.
	SecretPermission = core.SecretPermission
	// FaultConfig is the fault injection in force.
	FaultConfig = core.FaultConfig
	// Stats are the simulator's request counters.
	Stats = core.Stats
	// SeedSpec is a parsed seed.
	SeedSpec = core.SeedSpec
	// AppManagementPolicy is a tenant's credential lifetime caps.
	AppManagementPolicy = core.AppManagementPolicy
)

// Well-known ids, resources and roles, as in Entra.
const (
	GraphAppID            = core.GraphAppID
	ProofAudience         = core.ProofAudience
	GraphResource         = core.GraphResource
	ARMResource           = core.ARMResource
	KeyVaultResource      = core.KeyVaultResource
	RoleReadWriteOwned    = core.RoleReadWriteOwned
	RoleReadWriteAll      = core.RoleReadWriteAll
	RoleReadAll           = core.RoleReadAll
	TokenExchangeAudience = entra.TokenExchangeAudience
)

// Key Vault secret permissions.
const (
	SecretGet     = core.SecretGet
	SecretList    = core.SecretList
	SecretSet     = core.SecretSet
	SecretDelete  = core.SecretDelete
	SecretRecover = core.SecretRecover
	SecretPurge   = core.SecretPurge
)

// AllSecretPermissions is every secret permission.
var AllSecretPermissions = core.AllSecretPermissions

// Key Vault key and certificate permissions (an access policy's keys and
// certificates lists).
type (
	// KeyPermission is a Key Vault key permission.
	KeyPermission = core.KeyPermission
	// CertificatePermission is a Key Vault certificate permission.
	CertificatePermission = core.CertificatePermission
)

// Key Vault key permissions.
const (
	KeyGet     = core.KeyGet
	KeyList    = core.KeyList
	KeyCreate  = core.KeyCreate
	KeyImport  = core.KeyImport
	KeyUpdate  = core.KeyUpdate
	KeySign    = core.KeySign
	KeyVerify  = core.KeyVerify
	KeyDelete  = core.KeyDelete
	KeyRecover = core.KeyRecover
	KeyPurge   = core.KeyPurge
)

// Key Vault certificate permissions.
const (
	CertificateGet     = core.CertificateGet
	CertificateList    = core.CertificateList
	CertificateCreate  = core.CertificateCreate
	CertificateImport  = core.CertificateImport
	CertificateUpdate  = core.CertificateUpdate
	CertificateDelete  = core.CertificateDelete
	CertificateRecover = core.CertificateRecover
	CertificatePurge   = core.CertificatePurge
)

// AllKeyPermissions and AllCertificatePermissions are every key and
// certificate permission.
var (
	AllKeyPermissions         = core.AllKeyPermissions
	AllCertificatePermissions = core.AllCertificatePermissions
)

// HashSecret is how the simulator keeps secrets (for arranging passwords).
func HashSecret(secret string) [32]byte { return core.HashSecret(secret) }

// NewKey builds a keyCredential from a certificate.
func NewKey(keyID, displayName string, cert *x509.Certificate, addedAt time.Time) *Key {
	return core.NewKey(keyID, displayName, cert, addedAt)
}

// ParseFaults builds a FaultConfig from command-line flag values.
func ParseFaults(latency string, errorRate, dropRate float64, throttle bool) (FaultConfig, error) {
	return core.ParseFaults(latency, errorRate, dropRate, throttle)
}

// ParseSeed parses a seed spec.
func ParseSeed(spec string) (SeedSpec, error) { return core.ParseSeed(spec) }

// Web APIs and their clients, for tests of a resource validating Entra
// access tokens (rotor's own API).
type (
	// APISpec describes a web API's app registration (see core.APISpec).
	APISpec = core.APISpec
	// API is a registered web API.
	API = core.API
	// ClientSpec describes a client application of an API.
	ClientSpec = core.ClientSpec
	// Client is a registered client application with its secret.
	Client = core.Client
	// AppRole is an app role an application defines.
	AppRole = core.AppRole
	// AppRoleAssignment assigns an app role to a service principal.
	AppRoleAssignment = core.AppRoleAssignment
	// PublishedKey is a token signing key as the JWKS lists it.
	PublishedKey = core.PublishedKey
)

// People who sign in with the authorization code flow, and the web
// applications they sign in to.
type (
	// User is a user of a tenant.
	User = core.User
	// Group is a security group.
	Group = core.Group
	// UserSpec describes a user to add (Server.AddUser).
	UserSpec = core.UserSpec
	// WebAppSpec describes a web application (Server.RegisterWebApp).
	WebAppSpec = core.WebAppSpec
	// WebApp is a registered web application with its client secret.
	WebApp = core.WebApp
	// PublicClientSpec describes a public client (Server.RegisterPublicClient).
	PublicClientSpec = core.PublicClientSpec
	// PublicClient is a registered public client application.
	PublicClient = core.PublicClient
	// DemoCLI is rotor's API and CLI registrations in a demo tenant
	// (Server.RegisterDemoCLI).
	DemoCLI = core.DemoCLI
)

// DemoAPIIdentifierURI is the demo's rotor API registration's
// application ID URI.
const DemoAPIIdentifierURI = core.DemoAPIIdentifierURI

// GroupOverageLimit is the most groups an ID token lists before it carries
// the overage claims instead.
const GroupOverageLimit = core.GroupOverageLimit

// The demo seed's groups and the app roles of its sign-in application
// (Server.RegisterDemoSignIn).
const (
	DemoAdminGroup    = core.DemoAdminGroup
	DemoOperatorGroup = core.DemoOperatorGroup
	DemoViewerGroup   = core.DemoViewerGroup
)

// DemoSignInAppRoles are the app roles of the demo's sign-in application.
var DemoSignInAppRoles = core.DemoSignInAppRoles

// StsIssuer is the v1.0 issuer of a tenant's access tokens.
func StsIssuer(tenantID string) string { return core.StsIssuer(tenantID) }

// Resource Manager's view of the world (subscriptions and role
// assignments; see core's arm.go).
type (
	// Subscription is an Azure subscription.
	Subscription = core.Subscription
	// RoleAssignment grants a role on a scope.
	RoleAssignment = core.RoleAssignment
	// VaultSecret is a Key Vault secret with its versions.
	VaultSecret = core.VaultSecret
	// SecretVersion is one version of a secret.
	SecretVersion = core.SecretVersion
)

// RoleReader is the built-in Reader role.
const RoleReader = core.RoleReader
