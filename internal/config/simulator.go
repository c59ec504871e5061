package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/rotor-dev/rotor/internal/simfile"
)

// SimulatorConfig describes a rotor.yaml for a running simulator: one
// connection per seeded tenant and, for each tenant, the given policies,
// each delivering to the tenant's first Key Vault. `rotor demo`, the
// end-to-end tests and the benchmarks write their configuration with it, so
// there is one place that knows how rotor is pointed at `rotor sim`.
type SimulatorConfig struct {
	// SimFile is the path of the simulator's sim.json.
	SimFile  string
	Listen   string // default 127.0.0.1:0
	DataDir  string
	LogLevel string // default: the configuration's default
	// Secret renders the secret reference of a tenant's rotation identity,
	// e.g. "{env: SECRET_contoso}" or "{file: /path}". Required.
	Secret   func(simfile.Tenant) string
	Rotation SimulatorRotation
	// Policies for every tenant; empty means one all_owned policy.
	Policies []SimulatorPolicy
	// ReadConnections adds a connection "<tenant>-read" with purpose read
	// beside each tenant's rotation connection (the least-privilege
	// set-up); it signs in as the same identity, which also holds
	// Application.Read.All in the simulator.
	ReadConnections bool
	// Database, when set, puts rotor's state in PostgreSQL instead of
	// SQLite in DataDir.
	Database *SimulatorDatabase
	// EverySink adds, first among the policies of the tenant that holds
	// the simulated Azure DevOps organization, "<tenant>-every-sink": the
	// application that organization's service connection is for, delivered
	// to every sink kind the simulator serves (see everySinkPolicy).
	EverySink bool
}

// SimulatorDatabase is a database block for PostgreSQL: the application
// role's URL and the owner's, each without a password; the passwords are
// secret references written as given, e.g. "{env: ROTOR_DB_PASSWORD}".
type SimulatorDatabase struct {
	URL, Password, MigrateURL, MigratePassword string
}

// SimulatorRotation holds the rotation: keys to set; empty ones keep their
// defaults.
type SimulatorRotation struct {
	Jitter, PlanInterval, SyncInterval, VerifyTimeout, LeaseTTL string
	ConcurrencyPerTenant, MaxInFlight                           int
}

// SimulatorPolicy is a policy written for every tenant, named
// "<tenant>-<Name>".
type SimulatorPolicy struct {
	Name string
	// Applications is the YAML of the selector, e.g. `{name_prefix: "web-"}`;
	// default `{all_owned: true}`.
	Applications                   string
	Lifetime, RenewBefore, Overlap string
	// Kind is the credential kind; default secret.
	Kind string
}

var simulatorTmpl = template.Must(template.New("rotor.yaml").Funcs(template.FuncMap{"q": strconv.Quote}).Parse(`# rotor.yaml for the simulator at {{.Info.AuthorityHost}}
listen: {{q .C.Listen}}
data_dir: {{q .C.DataDir}}
{{- if .C.LogLevel}}
log: {level: {{q .C.LogLevel}}}
{{- end}}
{{- with .C.Rotation}}
rotation:
{{- if .Jitter}}
  jitter: {{q .Jitter}}
{{- end}}
{{- if .PlanInterval}}
  plan_interval: {{q .PlanInterval}}
{{- end}}
{{- if .SyncInterval}}
  sync_interval: {{q .SyncInterval}}
{{- end}}
{{- if .VerifyTimeout}}
  verify_timeout: {{q .VerifyTimeout}}
{{- end}}
{{- if .ConcurrencyPerTenant}}
  concurrency_per_tenant: {{.ConcurrencyPerTenant}}
{{- end}}
{{- if .MaxInFlight}}
  max_in_flight: {{.MaxInFlight}}
{{- end}}
{{- if .LeaseTTL}}
  lease_ttl: {{q .LeaseTTL}}
{{- end}}
{{- end}}
{{- with .C.Database}}
database:
  url: {{q .URL}}
{{- if .Password}}
  password: {{.Password}}
{{- end}}
{{- if .MigrateURL}}
  migrate_url: {{q .MigrateURL}}
{{- end}}
{{- if .MigratePassword}}
  migrate_password: {{.MigratePassword}}
{{- end}}
{{- end}}
connections:
{{- range $i, $t := .Info.Tenants}}
  - name: {{q $t.Name}}
    cloud: sim
    sim_file: {{q $.C.SimFile}}
    tenant_id: {{q $t.ID}}
    purpose: rotation
    client_id: {{q $t.Rotation.ClientID}}
    client_secret: {{index $.Secrets $i}}
{{- if $.C.ReadConnections}}
  - name: {{q (printf "%s-read" $t.Name)}}
    cloud: sim
    sim_file: {{q $.C.SimFile}}
    tenant_id: {{q $t.ID}}
    purpose: read
    client_id: {{q $t.Rotation.ClientID}}
    client_secret: {{index $.Secrets $i}}
{{- end}}
{{- end}}
policies:
{{- range $i, $t := .Info.Tenants}}
{{- with index $.Extra $i}}
{{.}}
{{- end}}
{{- range $.Policies}}
  - name: {{q (printf "%s-%s" $t.Name .Name)}}
    connection: {{q $t.Name}}
    applications: {{.Applications}}
    kind: {{if .Kind}}{{q .Kind}}{{else}}secret{{end}}
{{- if .Lifetime}}
    lifetime: {{q .Lifetime}}
{{- end}}
{{- if .RenewBefore}}
    renew_before: {{q .RenewBefore}}
{{- end}}
{{- if .Overlap}}
    overlap: {{q .Overlap}}
{{- end}}
    sinks:
      - keyvault: {vault_url: {{q (index $t.KeyVaults 0).URL}}, secret: "{{"{{"}} .App.DisplayName {{"}}"}}-secret"}
{{- end}}
{{- end}}
`))

// Every value is written as a YAML double-quoted string (strconv.Quote's
// escapes are YAML's), so a path or tenant name with ':', '#', '{' or '"'
// cannot break the file or add keys. Secret and the database passwords
// are the caller's YAML (secret references) and Applications a selector,
// written as given.

// SimulatorYAML renders the rotor.yaml that c describes for the simulator
// that wrote info.
func SimulatorYAML(info *simfile.Info, c SimulatorConfig) ([]byte, error) {
	if c.Secret == nil || c.SimFile == "" || c.DataDir == "" {
		return nil, fmt.Errorf("simulator config: SimFile, DataDir and Secret are required")
	}
	c.Listen = cmp.Or(c.Listen, "127.0.0.1:0")
	pols := c.Policies
	if len(pols) == 0 {
		pols = []SimulatorPolicy{{Name: "owned"}}
	}
	for i := range pols {
		pols[i].Applications = cmp.Or(pols[i].Applications, "{all_owned: true}")
	}
	secrets := make([]string, len(info.Tenants))
	extra := make([]string, len(info.Tenants))
	for i, t := range info.Tenants {
		if len(t.KeyVaults) == 0 {
			return nil, fmt.Errorf("simulator config: tenant %s has no key vault", t.Name)
		}
		secrets[i] = c.Secret(t)
		if c.EverySink && info.AzureDevOps != nil && info.AzureDevOps.TenantID == t.ID {
			p, err := everySinkPolicy(info, t, pols[0])
			if err != nil {
				return nil, err
			}
			extra[i] = strings.TrimRight(p, "\n")
		}
	}
	if c.EverySink && !slices.ContainsFunc(extra, func(s string) bool { return s != "" }) {
		return nil, errors.New("simulator config: EverySink needs the simulated Azure DevOps organization's tenant among sim.json's tenants")
	}
	var b bytes.Buffer
	if err := simulatorTmpl.Execute(&b, map[string]any{"Info": info, "C": c, "Policies": pols, "Secrets": secrets, "Extra": extra}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
