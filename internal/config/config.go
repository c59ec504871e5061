// Package config owns rotor.yaml: it reads the file, applies ROTOR_*
// environment overrides, resolves secret references, fills in defaults and
// checks everything, returning either a complete, valid Config or every
// problem at once. rotor never starts half-configured.
//
// docs/configuration.md is the user's reference for every key.
package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/policyset"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Defaults for keys the file leaves out. Policy defaults live in domain
// (DefaultLifetime, DefaultRenewBefore, DefaultOverlap) except NotifyBefore.
const (
	DefaultListen               = "127.0.0.1:8080"
	DefaultDataDir              = "rotor-data"
	DefaultDatabaseFile         = "rotor.db"
	DefaultNotifyBefore         = 14 * day
	DefaultJitter               = 30 * time.Second
	DefaultConcurrencyPerTenant = 4
	DefaultMaxInFlight          = 512
	DefaultVerifyTimeout        = 5 * time.Minute
	DefaultPlanInterval         = time.Minute
	DefaultSyncInterval         = time.Minute
	DefaultFullSyncInterval     = day
	DefaultOwnershipInterval    = time.Hour
	DefaultLeaseTTL             = 30 * time.Second
	DefaultRetryAfter           = 30 * time.Second
	DefaultRetryPermanentAfter  = time.Hour
	DefaultLogFormat            = "text"
)

// LoadOptions are what loading needs from outside the file.
type LoadOptions struct {
	// Sinks checks each policy's sink specs; nil skips those checks.
	Sinks *sink.Registry
	// Getenv reads environment variables (default os.Getenv); tests
	// inject their own.
	Getenv func(string) string
}

// Config is a loaded, validated configuration.
type Config struct {
	// Organization is the workspace this file provisions (its connections
	// and policies); rotor serves every organization in the store.
	Organization domain.OrgID
	// Source is the absolute path of the file the configuration was
	// loaded from ("" for Parse): what the objects it provisions are
	// marked with in the store.
	Source string
	// Listen is the HTTP address (host:port).
	Listen string
	// DataDir holds the SQLite database and other state.
	DataDir  string
	Database Database
	// Connections in file order.
	Connections []Connection
	// Policies in file order; the order decides which one governs an
	// application (see PolicyFor).
	Policies []domain.Policy
	Rotation RotationSettings
	Log      LogSettings
	Metrics  MetricsSettings
	// Graph tunes rotor's Graph client: the throttling budgets it paces
	// itself to.
	Graph GraphSettings
	// HostIdentity is rotor's own identity, which reads the Key Vault
	// secrets connections and sinks refer to ({keyvault: …}); nil when
	// host_identity is not set.
	HostIdentity *Connection
	// APIAuth says who may call the REST API.
	APIAuth APIAuthSettings
	// SignIn is how people sign in to the UI; nil when sign_in is not
	// set (no sign-in routes are served).
	SignIn *SignInSettings
	// Notes are things worth telling the operator at startup that are not
	// errors, such as a default lifetime clamped to a tenant's limit.
	Notes []string
}

// Database says where rotor keeps its state.
type Database struct {
	// Driver is "sqlite" or "postgres".
	Driver string
	// Path is the SQLite database file ("" on PostgreSQL).
	Path string
	// URL is PostgreSQL's connection URL for the application role, which
	// row-level security binds. It never carries a password.
	URL string
	// Password is the application role's password (nil: none, or what
	// libpq's PGPASSWORD or ~/.pgpass give).
	Password *SecretRef
	// MigrateURL is the owner role's URL, with which rotor migrates the
	// schema at start and grants the application role its privileges;
	// empty: rotor only checks the schema is current. MigratePassword is
	// its password.
	MigrateURL      string
	MigratePassword *SecretRef
}

// RotationSettings tune the rotation engine and its schedule.
type RotationSettings struct {
	// Jitter spreads due rotations over up to this much time.
	Jitter time.Duration
	// ConcurrencyPerTenant caps a tenant's rotations writing to Graph at
	// once (a rotation waiting for Entra's replication holds no slot).
	ConcurrencyPerTenant int
	// MaxInFlight caps the rotations one process runs at once, waiting
	// included: the number of River rotate workers. Waiting for Entra
	// costs Graph nothing, so it is far above ConcurrencyPerTenant —
	// with a 10 s replication delay and 4 slots per tenant, 10 workers
	// would rotate 300 due applications in five minutes, 512 in little
	// more than ten seconds.
	MaxInFlight int
	// VerifyTimeout bounds waiting for a new credential to work
	// (Entra's replication delay).
	VerifyTimeout time.Duration
	// PlanInterval is how often the planner looks for due applications.
	PlanInterval time.Duration
	// SyncInterval is how often the inventory is synced from Graph.
	SyncInterval time.Duration
	// FullSyncInterval is the longest time between two full listings of
	// a connection; the syncs between read only what changed (Graph's
	// delta query). 0 makes every sync a full listing.
	FullSyncInterval time.Duration
	// OwnershipInterval is the longest time between two full readings of
	// what the rotation identity owns; the incremental syncs between ask
	// only about the applications change tracking reported. 0 reads it
	// at every sync.
	OwnershipInterval time.Duration
	// LeaseTTL is how long a rotor process's lease on its runs lasts
	// without a heartbeat: a run of a process that died is taken over
	// this long after its last heartbeat, and one side effect (a sink
	// write, a Graph call) must end within two thirds of it.
	LeaseTTL time.Duration
	// RetryAfter is the first wait after a run failed for a reason a
	// retry may mend (throttling, 5xx, network); it doubles per failure up
	// to an hour and is cut short to finish before the current secret ends.
	RetryAfter time.Duration
	// RetryPermanentAfter is the first wait after a run failed for a
	// reason only a human can mend (permission, policy, ownership, a
	// foreign target); it doubles per failure up to a day.
	RetryPermanentAfter time.Duration
}

// MetricsSettings configure rotor's Prometheus endpoint.
type MetricsSettings struct {
	// Enabled serves /metrics on the listener (default true). Off, rotor
	// also counts nothing.
	Enabled bool
}

// LogSettings configure rotor's own log.
type LogSettings struct {
	Level slog.Level
	// Format is "text" or "json".
	Format string
}

// Purpose is what a connection's identity is allowed to do; purposes mirror
// least privilege (DESIGN.md, Concepts).
type Purpose string

// Connection purposes.
const (
	PurposeRotation   Purpose = "rotation"   // Application.ReadWrite.OwnedBy
	PurposeAutomation Purpose = "automation" // runbooks, webhooks
	PurposeVM         Purpose = "vm"         // VM start/stop
	PurposeRead       Purpose = "read"       // inventory with Application.Read.All
)

// Connection is one configured way to reach a tenant.
type Connection struct {
	azure.Connection
	Purpose Purpose
	// ClientSecretRef and CertificatePasswordRef say where the identity's
	// secrets come from. Environment and file secrets are already in
	// Identity; Key Vault ones arrive with Config.ResolveSecrets.
	ClientSecretRef        *SecretRef
	CertificatePasswordRef *SecretRef
	// PasswordLifetimeLimit is the tenant's app management policy cap on
	// client secret lifetimes when it is known at load time (the
	// simulator's sim.json says it); 0 when unknown. For real clouds it is
	// discovered at rotation time.
	PasswordLifetimeLimit time.Duration

	tenantName string // the simulator's name for the tenant, for messages
}

// tenantLabel names the tenant for humans.
func (c *Connection) tenantLabel() string {
	if c.tenantName != "" {
		return c.tenantName
	}
	return c.TenantID
}

// AzureConnection returns what internal/azure needs to reach the tenant.
func (c *Connection) AzureConnection() azure.Connection {
	ac := c.Connection
	ac.AuxiliaryTenants = slices.Clone(c.AuxiliaryTenants)
	return ac
}

// Connection returns the connection named name.
func (c *Config) Connection(name string) (*Connection, bool) {
	for i := range c.Connections {
		if c.Connections[i].Name == name {
			return &c.Connections[i], true
		}
	}
	return nil, false
}

// PolicyFor returns the policy of this file governing app, or nil, by
// policyset.Select's rule (the one the server applies to every
// organization's stored policies): the first policy in file order whose
// connection reaches the application's tenant and whose applications
// selector matches (all_owned: owned by that connection's identity). The
// application need not be changeable through that connection (a read
// connection may be the only one that sees it): then the policy governs it
// and explain says why rotor cannot rotate it. A disabled policy still
// counts, so disabling a narrow policy pauses its applications instead of
// handing them to a broader policy further down.
func (c *Config) PolicyFor(app domain.Application) *domain.Policy {
	return policyset.Select(c.Policies, func(name string) (string, bool) {
		conn, ok := c.Connection(name)
		if !ok {
			return "", false
		}
		return conn.TenantID, true
	}, app)
}

// DatabasePath is the SQLite database file ("" on PostgreSQL).
func (c *Config) DatabasePath() string { return c.Database.Path }

// ResolveSecrets resolves the Key Vault secret references of every
// connection with r and puts the values into the connections' identities.
// Call it before building Azure credentials when any connection keeps its
// secret in Key Vault. Errors name the connection and the reference.
func (c *Config) ResolveSecrets(ctx context.Context, r SecretResolver) error {
	var errs []error
	for i := range c.Connections {
		conn := &c.Connections[i]
		if ref := conn.ClientSecretRef; ref.IsKeyVault() {
			v, err := ref.Resolve(ctx, r)
			if err != nil {
				errs = append(errs, fmt.Errorf("connection %q: client_secret: %w", conn.Name, err))
			} else {
				conn.Identity.ClientSecret = v
			}
		}
		if ref := conn.CertificatePasswordRef; ref.IsKeyVault() {
			v, err := ref.Resolve(ctx, r)
			if err != nil {
				errs = append(errs, fmt.Errorf("connection %q: certificate.password: %w", conn.Name, err))
			} else {
				conn.Identity.CertificatePassword = v
			}
		}
	}
	return errors.Join(errs...)
}

// Load reads the configuration file at path. Relative paths inside it
// (sim_file, data_dir, certificate files, …) are resolved against the
// file's directory. It returns a complete, valid Config, or an error: a
// *ValidationError listing every problem, or the failure to read the file.
func Load(path string, opts LoadOptions) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, err := Parse(data, filepath.Dir(abs), opts)
	if ve, ok := errors.AsType[*ValidationError](err); ok {
		ve.File = path
	}
	if cfg != nil {
		cfg.Source = abs
	}
	return cfg, err
}

// readFile reads the configuration, refusing one over MaxFileSize before
// reading it: never more than MaxFileSize+1 bytes are read, so a wrong
// path such as a device or a huge log costs nothing.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	defer f.Close()
	var ps problems
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxFileSize {
		tooLarge(&ps, fmt.Sprintf("%d bytes", st.Size()))
		return nil, &ValidationError{File: path, Problems: ps.list}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	if len(data) > MaxFileSize {
		tooLarge(&ps, "more than 1048576 bytes")
		return nil, &ValidationError{File: path, Problems: ps.list}
	}
	return data, nil
}

// Parse is Load for configuration already in memory; relative paths are
// resolved against baseDir. Any problem yields a *ValidationError.
func Parse(data []byte, baseDir string, opts LoadOptions) (*Config, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	b := &builder{opts: opts, baseDir: baseDir, skip: map[string]bool{}}
	raw, ok := b.decode(data)
	if ok {
		applyEnv(reflect.ValueOf(raw).Elem(), EnvPrefix, "", opts.Getenv, &b.ps)
		b.build(raw)
	}
	if len(b.ps.list) > 0 {
		return nil, &ValidationError{Problems: b.ps.list}
	}
	return b.cfg, nil
}

// builder turns the raw file into a Config, collecting problems.
type builder struct {
	opts    LoadOptions
	baseDir string
	ps      problems
	cfg     *Config
	// skip holds list items (e.g. "connections[2]") whose YAML had the
	// wrong shape; they are reported once and not validated further.
	skip map[string]bool
	// decoded is how many problems reading the file (and the environment)
	// found, before the checks of build.
	decoded int
	// rotationOK and concurrencyOK say whether the rotation settings
	// were usable, so that checks across keys use only good values.
	rotationOK, concurrencyOK bool
}

// decode reads the YAML into the raw types. Unknown keys and values of the
// wrong shape are reported (with their lines) and left out, so that the
// rest of the file is still checked. It returns false when the file is not
// YAML at all.
func (b *builder) decode(data []byte) (*rawConfig, bool) {
	if len(data) > MaxFileSize {
		tooLarge(&b.ps, fmt.Sprintf("%d bytes", len(data)))
		return nil, false
	}
	raw := &rawConfig{}
	root, ok := readDocument(data, &b.ps)
	if !ok {
		return nil, false
	}
	if root == nil {
		return raw, true // empty file: all defaults
	}
	if !checkPlainData(root, &b.ps) {
		// What the file means depends on them: check the rest once they
		// are written out.
		return nil, false
	}
	if root.Kind != yaml.MappingNode {
		b.ps.addf("", "", root.Line, "the configuration must be a map of keys (listen, connections, policies, …), not a %s", kindName(root))
		return nil, false
	}
	before := len(b.ps.list)
	checkKeys(root, reflect.TypeFor[rawConfig](), "", "", "", &b.ps, b.skip)
	var err error
	if len(b.ps.list) == before {
		// The walk found nothing: decode the original text strictly, as a
		// second line of defence against a key the walk might miss.
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err = dec.Decode(raw); errors.Is(err, io.EOF) {
			err = nil
		}
	} else {
		err = root.Decode(raw)
	}
	if err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				b.ps.addf("", "", 0, "%s", e)
			}
		} else {
			b.ps.addf("", "", 0, "%v", err)
		}
	}
	return raw, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "map"
	}
	return "single value"
}
