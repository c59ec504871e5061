package config

import (
	"fmt"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// rawHostIdentity is host_identity: rotor's own identity, with which it
// reads the Key Vault secrets that connections and sinks refer to
// ({keyvault: …}). It has a connection's identity keys, and no name,
// purpose or auxiliary tenants.
type rawHostIdentity struct {
	Cloud            string               `yaml:"cloud"`
	SimFile          string               `yaml:"sim_file"`
	TenantID         string               `yaml:"tenant_id"`
	ClientID         string               `yaml:"client_id"`
	ClientSecret     *SecretRef           `yaml:"client_secret"`
	Certificate      *rawCertificate      `yaml:"certificate"`
	ManagedIdentity  *rawManagedIdentity  `yaml:"managed_identity"`
	WorkloadIdentity *rawWorkloadIdentity `yaml:"workload_identity"`
}

// HostIdentityName is the name the host identity goes by in messages and
// as an azure.Connection.
const HostIdentityName = "host_identity"

// hostIdentity checks host_identity, as a connection's identity is checked.
// A managed identity needs no tenant; the others do. The host identity's
// own secret cannot live in Key Vault: it is what reads Key Vault.
func (b *builder) hostIdentity(raw *rawHostIdentity) {
	if raw == nil {
		return
	}
	s := scope{path: HostIdentityName, object: HostIdentityName}
	before := len(b.ps.list)
	rc := rawConnection{
		Name: HostIdentityName, Cloud: raw.Cloud, SimFile: raw.SimFile, TenantID: raw.TenantID, ClientID: raw.ClientID,
		ClientSecret: raw.ClientSecret, Certificate: raw.Certificate, ManagedIdentity: raw.ManagedIdentity,
		WorkloadIdentity: raw.WorkloadIdentity,
	}
	c := Connection{Purpose: PurposeRead}
	c.Name = HostIdentityName
	cloud, err := azure.ParseCloud(rc.Cloud)
	if err != nil {
		b.bad(s, "cloud", 0, "cloud %q is not known: use public, usgov, china or sim", rc.Cloud)
	}
	c.Cloud = cloud
	managed := rc.ManagedIdentity != nil && rc.ManagedIdentity.enabled
	c.TenantID = rc.TenantID
	switch {
	case rc.TenantID == "" && (!managed || cloud == azure.Sim):
		b.bad(s, "tenant_id", 0, "tenant_id is missing: set the tenant of rotor's own identity, or %s_HOST_IDENTITY_TENANT_ID", EnvPrefix)
	case rc.TenantID != "" && !tenantPattern.MatchString(rc.TenantID):
		b.bad(s, "tenant_id", 0, "tenant_id %q is not a tenant id (a GUID) or domain (contoso.onmicrosoft.com)", rc.TenantID)
	}
	if cloud == azure.Sim {
		b.simulator(s, rc, &c, map[string]*simfile.Info{})
	} else if rc.SimFile != "" && err == nil {
		b.bad(s, "sim_file", 0, "sim_file is only used with cloud: sim; remove it, or set cloud: sim")
	}
	b.identity(s, rc, &c, fmt.Sprintf("%s_HOST_IDENTITY_", EnvPrefix))
	if c.ClientSecretRef.IsKeyVault() || c.CertificatePasswordRef.IsKeyVault() {
		b.bad(s, "client_secret", 0, "host_identity's own secret cannot be a Key Vault reference: host_identity is what reads Key Vault; use {env: NAME} or {file: PATH}, or a managed or workload identity")
	}
	if len(b.ps.list) == before {
		b.cfg.HostIdentity = &c
	}
}
