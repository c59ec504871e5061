package config

import (
	"gopkg.in/yaml.v3"
)

// The raw types mirror rotor.yaml key for key. Their yaml tags are the
// single list of known keys: the unknown-key check and the environment
// overrides are both derived from them, so a key added here is checked and
// overridable without further work.

type rawConfig struct {
	Organization string          `yaml:"organization"`
	Listen       string          `yaml:"listen"`
	DataDir      string          `yaml:"data_dir"`
	Database     rawDatabase     `yaml:"database"`
	Connections  []rawConnection `yaml:"connections"`
	Policies     []rawPolicy     `yaml:"policies"`
	Rotation     rawRotation     `yaml:"rotation"`
	Log          rawLog          `yaml:"log"`
	Metrics      rawMetrics      `yaml:"metrics"`
	Graph        rawGraph        `yaml:"graph"`
	// HostIdentity is rotor's own identity (host.go).
	HostIdentity *rawHostIdentity `yaml:"host_identity"`
	// APIAuth is who may call the REST API (apiauth.go).
	APIAuth rawAPIAuth `yaml:"api_auth"`
	// SignIn is how people sign in to the UI (signin.go).
	SignIn *rawSignIn `yaml:"sign_in"`
}

// rawSignIn is sign_in: people's sign-in with Entra ID and their
// sessions (docs/sign-in.md).
type rawSignIn struct {
	Entra           *rawSignInEntra `yaml:"entra"`
	SessionLifetime duration        `yaml:"session_lifetime"`
}

// rawSignInEntra is sign_in.entra: rotor's sign-in registration
// (internal/web/signin.EntraConfig, which the server builds from it).
type rawSignInEntra struct {
	Cloud        string     `yaml:"cloud"`
	SimFile      string     `yaml:"sim_file"`
	Authority    string     `yaml:"authority"`
	Tenant       string     `yaml:"tenant"`
	ClientID     string     `yaml:"client_id"`
	ClientSecret *SecretRef `yaml:"client_secret"`
	RedirectURL  string     `yaml:"redirect_url"`
	GraphURL     string     `yaml:"graph_url"`
	// Roles have no name to address them by: not overridable one by one.
	Roles []rawSignInRole `yaml:"roles"`
}

type rawSignInRole struct {
	AppRole      string `yaml:"app_role"`
	Group        string `yaml:"group"`
	Organization string `yaml:"organization"`
	Role         string `yaml:"role"`
}

type rawAPIAuth struct {
	APIKeys   *bool        `yaml:"api_keys"`
	Entra     *rawEntra    `yaml:"entra"`
	RateLimit rawRateLimit `yaml:"rate_limit"`
}

// rawEntra is api_auth.entra: the Entra access tokens rotor accepts
// (internal/auth.EntraConfig, which the server builds from it).
type rawEntra struct {
	Cloud              string   `yaml:"cloud"`
	SimFile            string   `yaml:"sim_file"`
	Authority          string   `yaml:"authority"`
	Tenants            []string `yaml:"tenants"`
	AppIDURI           string   `yaml:"app_id_uri"`
	ClientID           string   `yaml:"client_id"`
	TokenVersions      []string `yaml:"token_versions"`
	ClockSkew          duration `yaml:"clock_skew"`
	KeyRefreshInterval duration `yaml:"key_refresh_interval"`
	KeyMaxAge          duration `yaml:"key_max_age"`
	CLIClientID        string   `yaml:"cli_client_id"`
	CLIScope           string   `yaml:"cli_scope"`
	// Roles have no name to address them by: like sinks, they are not
	// overridable one by one.
	Roles []rawRoleBinding `yaml:"roles"`
}

type rawRoleBinding struct {
	AppRole      string `yaml:"app_role"`
	Organization string `yaml:"organization"`
	Role         string `yaml:"role"`
}

type rawRateLimit struct {
	RequestsPerSecond *int `yaml:"requests_per_second"`
	Burst             *int `yaml:"burst"`
}

type rawDatabase struct {
	URL string `yaml:"url"`
	// Password, MigrateURL and MigratePassword are PostgreSQL's.
	Password        *SecretRef `yaml:"password"`
	MigrateURL      string     `yaml:"migrate_url"`
	MigratePassword *SecretRef `yaml:"migrate_password"`
}

type rawConnection struct {
	Name             string               `yaml:"name"`
	Cloud            string               `yaml:"cloud"`
	SimFile          string               `yaml:"sim_file"`
	TenantID         string               `yaml:"tenant_id"`
	Purpose          string               `yaml:"purpose"`
	ClientID         string               `yaml:"client_id"`
	ClientSecret     *SecretRef           `yaml:"client_secret"`
	Certificate      *rawCertificate      `yaml:"certificate"`
	ManagedIdentity  *rawManagedIdentity  `yaml:"managed_identity"`
	WorkloadIdentity *rawWorkloadIdentity `yaml:"workload_identity"`
	AuxiliaryTenants []string             `yaml:"auxiliary_tenants"`
}

type rawCertificate struct {
	File                 string     `yaml:"file"`
	Password             *SecretRef `yaml:"password"`
	SendCertificateChain *bool      `yaml:"send_certificate_chain"`
}

// rawManagedIdentity is `managed_identity: true` (system-assigned) or
// `managed_identity: {client_id: …}` (user-assigned).
type rawManagedIdentity struct {
	ClientID string `yaml:"client_id"`
	// enabled is false only for `managed_identity: false`.
	enabled bool
	problem string
}

func (m *rawManagedIdentity) UnmarshalYAML(n *yaml.Node) error {
	*m = rawManagedIdentity{enabled: true}
	switch n.Kind {
	case yaml.ScalarNode:
		var b bool
		if err := n.Decode(&b); err != nil {
			m.problem = "must be true or {client_id: <user-assigned identity client id>}"
			return nil
		}
		m.enabled = b
		return nil
	case yaml.MappingNode:
		// Decoded through a plain struct so that yaml does the work; the
		// unknown-key walk has already checked the keys.
		var v struct {
			ClientID string `yaml:"client_id"`
		}
		if err := n.Decode(&v); err != nil {
			m.problem = "must be true or {client_id: <user-assigned identity client id>}"
			return nil
		}
		m.ClientID = v.ClientID
		return nil
	}
	m.problem = "must be true or {client_id: <user-assigned identity client id>}"
	return nil
}

type rawWorkloadIdentity struct {
	TokenFile string `yaml:"token_file"`
}

type rawPolicy struct {
	Name            string       `yaml:"name"`
	Connection      string       `yaml:"connection"`
	Applications    *rawSelector `yaml:"applications"`
	Kind            string       `yaml:"kind"`
	Enabled         *bool        `yaml:"enabled"`
	Lifetime        duration     `yaml:"lifetime"`
	RenewBefore     duration     `yaml:"renew_before"`
	Overlap         duration     `yaml:"overlap"`
	NotifyBefore    duration     `yaml:"notify_before"`
	Verify          *bool        `yaml:"verify"`
	RetireUnmanaged *bool        `yaml:"retire_unmanaged"`
	// Certificate shapes the certificates of kind: certificate.
	Certificate *rawPolicyCertificate `yaml:"certificate"`
	// Sinks are single-key maps {<type>: {settings…}}; their settings
	// belong to the sink kinds and are checked by the sink registry.
	Sinks []yaml.Node `yaml:"sinks"`
}

type rawPolicyCertificate struct {
	KeyType  string   `yaml:"key_type"`
	Subject  string   `yaml:"subject"`
	DNSNames []string `yaml:"dns_names"`
	// Bootstrap is a secret reference ({env}, {file}, {keyvault}) to a PEM
	// certificate and its private key.
	Bootstrap yaml.Node `yaml:"bootstrap"`
	// KeySource, VaultURL, HSM and VaultName place the private key in Key
	// Vault (docs/adr/0037).
	KeySource string `yaml:"key_source"`
	VaultURL  string `yaml:"vault_url"`
	HSM       bool   `yaml:"hsm"`
	VaultName string `yaml:"vault_name"`
}

type rawSelector struct {
	NamePrefix string   `yaml:"name_prefix"`
	IDs        []string `yaml:"ids"`
	AllOwned   bool     `yaml:"all_owned"`
}

type rawRotation struct {
	Jitter               duration `yaml:"jitter"`
	ConcurrencyPerTenant *int     `yaml:"concurrency_per_tenant"`
	MaxInFlight          *int     `yaml:"max_in_flight"`
	VerifyTimeout        duration `yaml:"verify_timeout"`
	PlanInterval         duration `yaml:"plan_interval"`
	SyncInterval         duration `yaml:"sync_interval"`
	FullSyncInterval     duration `yaml:"full_sync_interval"`
	OwnershipInterval    duration `yaml:"ownership_interval"`
	LeaseTTL             duration `yaml:"lease_ttl"`
	RetryAfter           duration `yaml:"retry_after"`
	RetryPermanentAfter  duration `yaml:"retry_permanent_after"`
}

type rawMetrics struct {
	Enabled *bool `yaml:"enabled"`
}

type rawGraph struct {
	Budget rawBudget `yaml:"budget"`
}

// rawBudget is graph.budget: Graph's throttling budgets for the pacer.
type rawBudget struct {
	Enabled          *bool          `yaml:"enabled"`
	TenantSize       string         `yaml:"tenant_size"`
	Tenants          rawTenantTiers `yaml:"tenants"`
	ResourceUnits    *int           `yaml:"resource_units"`
	Writes           *int           `yaml:"writes"`
	TenantWrites     *int           `yaml:"tenant_writes"`
	AppWrites        *int           `yaml:"app_writes"`
	AppResourceUnits *int           `yaml:"app_resource_units"`
}

// rawTenantTiers lists tenants by size tier; lists of ids (rather than a
// map) so that each tier is one environment variable.
type rawTenantTiers struct {
	Small  []string `yaml:"small"`
	Medium []string `yaml:"medium"`
	Large  []string `yaml:"large"`
}

type rawLog struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// duration is a configured duration as written. Parsing happens in
// validation, where the key's path is known, so that a bad value is
// reported with every other problem instead of stopping the decoder.
type duration struct {
	raw string
	// src says where raw came from ("line 12", "ROTOR_ROTATION_JITTER").
	src string
	// line is the line in the file; 0 for an environment override.
	line int
	// notScalar is set when the YAML value was a list or a map.
	notScalar bool
}

func (d *duration) set() bool { return d.raw != "" || d.notScalar }

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	*d = duration{src: lineSrc(n.Line), line: n.Line}
	if n.Kind != yaml.ScalarNode {
		d.notScalar = true
		return nil
	}
	if n.Tag == "!!null" {
		return nil
	}
	d.raw = n.Value
	return nil
}
