package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/certgen"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/vaultname"
)

var (
	// namePattern is what connection, policy and organization names look
	// like: they appear in URLs, CLI arguments and variable names.
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// tenantPattern is what Entra accepts as a tenant: a GUID or a domain.
	tenantPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.-]*$`)
	guidPattern   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// scope is where a problem is: a list item (`policies[0] "web"`) or the
// top level (path "", object "").
type scope struct{ path, object string }

// key is the path of key k in the scope, for Problem.Path.
func (s scope) key(k string) string { return joinPath(s.path, k) }

func (b *builder) bad(s scope, k string, line int, format string, args ...any) {
	b.ps.addf(s.key(k), s.object, line, format, args...)
}

func (b *builder) note(format string, args ...any) {
	b.cfg.Notes = append(b.cfg.Notes, fmt.Sprintf(format, args...))
}

func itemScope(list string, i int, name string) scope {
	p := fmt.Sprintf("%s[%d]", list, i)
	if name == "" {
		return scope{path: p, object: p}
	}
	return scope{path: p, object: fmt.Sprintf("%s %q", p, name)}
}

// resolvePath makes a relative path relative to baseDir.
func resolvePath(baseDir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

// decodeProblemIn reports whether reading the file already found a
// problem inside the list item at path.
func (b *builder) decodeProblemIn(path string) bool {
	for _, p := range b.ps.list[:b.decoded] {
		if p.Path == path || strings.HasPrefix(p.Path, path+".") {
			return true
		}
	}
	return false
}

func (b *builder) build(raw *rawConfig) {
	b.cfg = &Config{}
	b.decoded = len(b.ps.list)
	top := scope{}

	org := raw.Organization
	if org == "" {
		org = string(domain.DefaultOrg)
	}
	if !namePattern.MatchString(org) {
		b.bad(top, "organization", 0, "organization %q must be 1-64 letters, digits, '.', '_' or '-'", org)
	}
	b.cfg.Organization = domain.OrgID(org)

	b.cfg.Listen = raw.Listen
	if b.cfg.Listen == "" {
		b.cfg.Listen = DefaultListen
	}
	if msg := checkListen(b.cfg.Listen); msg != "" {
		b.bad(top, "listen", 0, "%s", msg)
	}

	dataDir := raw.DataDir
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	b.cfg.DataDir = resolvePath(b.baseDir, dataDir)
	b.database(raw.Database)
	b.storage(raw.Database)
	b.rotation(raw.Rotation)
	b.log(raw.Log)
	b.cfg.Metrics.Enabled = raw.Metrics.Enabled == nil || *raw.Metrics.Enabled
	b.graph(raw.Graph)

	sims := map[string]*simfile.Info{}
	for i, rc := range raw.Connections {
		if b.skip[fmt.Sprintf("connections[%d]", i)] {
			continue
		}
		if c, ok := b.connection(i, rc, sims); ok {
			b.cfg.Connections = append(b.cfg.Connections, c)
		}
	}
	b.unique("connections", len(raw.Connections), func(i int) string { return raw.Connections[i].Name })
	if b.concurrencyOK {
		b.rotationWorkers()
	}

	for i, rp := range raw.Policies {
		if b.skip[fmt.Sprintf("policies[%d]", i)] {
			continue
		}
		if p, ok := b.policy(i, rp, raw.Connections); ok {
			b.cfg.Policies = append(b.cfg.Policies, p)
		}
	}
	b.unique("policies", len(raw.Policies), func(i int) string { return raw.Policies[i].Name })

	b.hostIdentity(raw.HostIdentity)
	b.apiAuth(raw.APIAuth)
	if raw.SignIn != nil {
		b.cfg.SignIn = b.signIn(*raw.SignIn)
	}

	if len(raw.Connections) == 0 {
		b.note("no connections are configured: rotor has no tenant to watch; add one under connections")
	}
}

// unique reports names used twice, and names that differ but share their
// environment variable prefix ("a-b" and "a_b" are both ROTOR_…_A_B_…).
func (b *builder) unique(list string, n int, name func(int) string) {
	seen := map[string]int{}
	seenEnv := map[string]int{}
	for i := 0; i < n; i++ {
		nm := name(i)
		if nm == "" || b.skip[fmt.Sprintf("%s[%d]", list, i)] {
			continue
		}
		s := itemScope(list, i, nm)
		if j, ok := seen[nm]; ok {
			b.bad(s, "name", 0, "name %q is already used by %s[%d]; names must be unique", nm, list, j)
			continue
		}
		seen[nm] = i
		env := envSegment(nm)
		if j, ok := seenEnv[env]; ok {
			b.bad(s, "name", 0, "name %q and %s[%d] %q share the environment variable prefix %s_%s_%s_; rename one", nm, list, j, name(j), EnvPrefix, strings.ToUpper(list), env)
			continue
		}
		seenEnv[env] = i
	}
}

func (b *builder) database(raw rawDatabase) {
	b.cfg.Database.Driver = "sqlite"
	u := raw.URL
	// The URL may hold a password: messages name its scheme, never it.
	switch {
	case u == "":
		b.cfg.Database.Path = filepath.Join(b.cfg.DataDir, DefaultDatabaseFile)
	case isPostgresURL(u):
		b.cfg.Database.Driver = "postgres"
		b.postgres(raw)
		return
	case strings.HasPrefix(u, "sqlite://"):
		p := strings.TrimPrefix(u, "sqlite://")
		if p == "" {
			b.bad(scope{}, "database.url", 0, "database.url: sqlite:// needs a file path, e.g. sqlite:///var/lib/rotor/rotor.db")
			return
		}
		b.cfg.Database.Path = resolvePath(b.baseDir, p)
	case strings.Contains(u, "://"):
		scheme, _, _ := strings.Cut(u, "://")
		b.bad(scope{}, "database.url", 0, "database.url: scheme %q is not supported: use sqlite:///path/to/rotor.db, a file path, or leave it empty", scheme)
	default:
		b.cfg.Database.Path = resolvePath(b.baseDir, u)
	}
	for _, k := range []struct {
		key string
		set bool
	}{{"database.password", raw.Password != nil}, {"database.migrate_url", raw.MigrateURL != ""}, {"database.migrate_password", raw.MigratePassword != nil}} {
		if k.set {
			b.bad(scope{}, k.key, 0, "%s is only for PostgreSQL (database.url: postgres://…); SQLite has no password", k.key)
		}
	}
}

// dur parses a duration key, reporting a bad value. It returns the value
// (def when unset), whether it was set, and whether it was usable.
func (b *builder) dur(s scope, k string, d duration, def time.Duration) (time.Duration, bool, bool) {
	if !d.set() {
		return def, false, true
	}
	where := ""
	if d.src != "" {
		where = " (" + d.src + ")"
	}
	if d.notScalar {
		b.bad(s, k, 0, "%s must be a duration such as 30s, 15m, 1h or 21d%s", k, where)
		return def, true, false
	}
	v, err := ParseDuration(d.raw)
	if err != nil {
		b.bad(s, k, 0, "%s %q%s is not a duration: use a number and a unit, e.g. 30s, 15m, 1h, 21d, 1d12h", k, d.raw, where)
		return def, true, false
	}
	return v, true, true
}

func (b *builder) rotation(raw rawRotation) {
	s := scope{}
	r := &b.cfg.Rotation
	var jitterOK, verifyOK, planOK bool
	r.Jitter, _, jitterOK = b.durIn(s, "rotation.jitter", raw.Jitter, DefaultJitter, jitterSpan)
	r.VerifyTimeout, _, verifyOK = b.durIn(s, "rotation.verify_timeout", raw.VerifyTimeout, DefaultVerifyTimeout, verifyTimeoutSpan)
	r.PlanInterval, _, planOK = b.durIn(s, "rotation.plan_interval", raw.PlanInterval, DefaultPlanInterval, planIntervalSpan)
	r.SyncInterval, _, _ = b.durIn(s, "rotation.sync_interval", raw.SyncInterval, DefaultSyncInterval, syncIntervalSpan)
	r.FullSyncInterval, _, _ = b.durIn(s, "rotation.full_sync_interval", raw.FullSyncInterval, DefaultFullSyncInterval, fullSyncIntervalSpan)
	r.OwnershipInterval, _, _ = b.durIn(s, "rotation.ownership_interval", raw.OwnershipInterval, DefaultOwnershipInterval, ownershipIntervalSpan)
	r.LeaseTTL, _, _ = b.durIn(s, "rotation.lease_ttl", raw.LeaseTTL, DefaultLeaseTTL, leaseTTLSpan)
	r.RetryAfter, _, _ = b.durIn(s, "rotation.retry_after", raw.RetryAfter, DefaultRetryAfter, retryAfterSpan)
	r.RetryPermanentAfter, _, _ = b.durIn(s, "rotation.retry_permanent_after", raw.RetryPermanentAfter, DefaultRetryPermanentAfter, retryPermanentAfterSpan)
	b.rotationOK = jitterOK && verifyOK && planOK
	r.ConcurrencyPerTenant = DefaultConcurrencyPerTenant
	b.concurrencyOK = true
	if raw.ConcurrencyPerTenant != nil {
		r.ConcurrencyPerTenant = *raw.ConcurrencyPerTenant
		switch n := r.ConcurrencyPerTenant; {
		case n < 1:
			b.bad(s, "rotation.concurrency_per_tenant", 0, "rotation.concurrency_per_tenant (%d) must be at least 1: a tenant's rotations would never run", n)
			b.concurrencyOK = false
		case n > MaxConcurrencyPerTenant:
			b.bad(s, "rotation.concurrency_per_tenant", 0, "rotation.concurrency_per_tenant (%d) must be at most %d: Graph throttles a tenant's writes long before that, so more rotations at once only wait behind 429s", n, MaxConcurrencyPerTenant)
			b.concurrencyOK = false
		}
	}
	r.MaxInFlight = DefaultMaxInFlight
	if raw.MaxInFlight != nil {
		r.MaxInFlight = *raw.MaxInFlight
		switch n := r.MaxInFlight; {
		case n < 1:
			b.bad(s, "rotation.max_in_flight", 0, "rotation.max_in_flight (%d) must be at least 1: no rotation would ever run", n)
		case n > MaxRotationWorkers:
			b.bad(s, "rotation.max_in_flight", 0, "rotation.max_in_flight (%d) must be at most %d, more rotations at once than one process can journal: run several rotor processes instead", n, MaxRotationWorkers)
		}
	}
}

// startWithin is the longest a due rotation can take to have a verified
// new credential: the planner notices it within plan_interval, jitter
// delays its start, and verification waits up to verify_timeout. A
// policy's renew_before must leave at least that much time before the
// credential expires.
func (r RotationSettings) startWithin() time.Duration {
	return r.PlanInterval + r.Jitter + r.VerifyTimeout
}

func (b *builder) log(raw rawLog) {
	s := scope{}
	switch strings.ToLower(raw.Level) {
	case "", "info":
		b.cfg.Log.Level = slog.LevelInfo
	case "debug":
		b.cfg.Log.Level = slog.LevelDebug
	case "warn", "warning":
		b.cfg.Log.Level = slog.LevelWarn
	case "error":
		b.cfg.Log.Level = slog.LevelError
	default:
		b.bad(s, "log.level", 0, "log.level %q is not known: use debug, info, warn or error", raw.Level)
	}
	switch strings.ToLower(raw.Format) {
	case "", "text":
		b.cfg.Log.Format = "text"
	case "json":
		b.cfg.Log.Format = "json"
	default:
		b.bad(s, "log.format", 0, "log.format %q is not known: use text or json", raw.Format)
	}
}

func (b *builder) connection(i int, rc rawConnection, sims map[string]*simfile.Info) (Connection, bool) {
	s := itemScope("connections", i, rc.Name)
	before := len(b.ps.list)
	c := Connection{}
	c.Name = rc.Name
	if rc.Name == "" {
		b.bad(s, "name", 0, "name is missing: give the connection a name (policies refer to it)")
	} else if !namePattern.MatchString(rc.Name) {
		b.bad(s, "name", 0, "name %q must be 1-64 letters, digits, '.', '_' or '-'", rc.Name)
	}
	envHint := fmt.Sprintf("%s_CONNECTIONS_%s_", EnvPrefix, envSegment(rc.Name))

	cloud, err := azure.ParseCloud(rc.Cloud)
	if err != nil {
		b.bad(s, "cloud", 0, "cloud %q is not known: use public, usgov, china or sim", rc.Cloud)
	}
	c.Cloud = cloud

	c.Purpose = PurposeRotation
	switch p := Purpose(strings.ToLower(rc.Purpose)); p {
	case "":
	case PurposeRotation, PurposeAutomation, PurposeVM, PurposeRead:
		c.Purpose = p
	default:
		b.bad(s, "purpose", 0, "purpose %q is not known: use rotation, automation, vm or read", rc.Purpose)
	}

	c.TenantID = rc.TenantID
	switch {
	case rc.TenantID == "":
		b.bad(s, "tenant_id", 0, "tenant_id is missing: set the directory (tenant) id, or %sTENANT_ID", envHint)
	case !tenantPattern.MatchString(rc.TenantID):
		b.bad(s, "tenant_id", 0, "tenant_id %q is not a tenant id (a GUID) or domain (contoso.onmicrosoft.com)", rc.TenantID)
	}
	for j, t := range rc.AuxiliaryTenants {
		if !tenantPattern.MatchString(t) {
			b.bad(s, fmt.Sprintf("auxiliary_tenants[%d]", j), 0, "auxiliary_tenants[%d] %q is not a tenant id (a GUID) or domain", j, t)
		}
	}
	c.AuxiliaryTenants = rc.AuxiliaryTenants

	if cloud == azure.Sim {
		b.simulator(s, rc, &c, sims)
	} else if rc.SimFile != "" && err == nil {
		b.bad(s, "sim_file", 0, "sim_file is only used with cloud: sim; remove it, or set cloud: sim")
	}

	b.identity(s, rc, &c, envHint)
	return c, len(b.ps.list) == before
}

// simulator checks a cloud: sim connection against the running
// simulator's sim.json: the file exists, the tenant is one of its tenants
// (by id or name; a name is replaced by the id), and it learns the
// tenant's password lifetime limit.
func (b *builder) simulator(s scope, rc rawConnection, c *Connection, sims map[string]*simfile.Info) {
	if rc.SimFile == "" {
		b.bad(s, "sim_file", 0, "sim_file is missing: cloud: sim needs the path of the simulator's %s (rotor sim prints it)", simfile.FileName)
		return
	}
	c.SimFile = resolvePath(b.baseDir, rc.SimFile)
	info, ok := sims[c.SimFile]
	if !ok {
		st, err := os.Stat(c.SimFile)
		if err != nil {
			b.bad(s, "sim_file", 0, "sim_file %s cannot be read (%s): start the simulator (rotor sim) or fix the path", c.SimFile, pathErrReason(err))
			sims[c.SimFile] = nil
			return
		}
		if !st.Mode().IsRegular() {
			// Reading a directory, device or pipe would fail or never end.
			b.bad(s, "sim_file", 0, "sim_file %s is not a regular file: name the simulator's %s", c.SimFile, simfile.FileName)
			sims[c.SimFile] = nil
			return
		}
		if info, err = simfile.Load(c.SimFile); err != nil {
			b.bad(s, "sim_file", 0, "sim_file %s is not a usable simulator file: %v", c.SimFile, err)
		}
		sims[c.SimFile] = info
	}
	if info == nil || rc.TenantID == "" {
		return
	}
	t, ok := info.Tenant(rc.TenantID)
	if !ok {
		have := make([]string, 0, len(info.Tenants))
		for _, t := range info.Tenants {
			have = append(have, fmt.Sprintf("%s (%s)", t.ID, t.Name))
		}
		sort.Strings(have)
		b.bad(s, "tenant_id", 0, "tenant_id %q is not a tenant of the simulator in %s; it has: %s", rc.TenantID, c.SimFile, strings.Join(have, ", "))
		return
	}
	c.TenantID = t.ID
	if t.PasswordLifetimeLimit != "" {
		limit, err := ParseDuration(t.PasswordLifetimeLimit)
		if err != nil || limit <= 0 {
			b.bad(s, "sim_file", 0, "sim_file %s: tenant %s has an unreadable password_lifetime_limit %q", c.SimFile, t.Name, t.PasswordLifetimeLimit)
			return
		}
		c.PasswordLifetimeLimit = limit
	}
	c.tenantName = t.Name
}

// identity checks that exactly one identity is configured and that it is
// complete, resolving its environment and file secrets.
func (b *builder) identity(s scope, rc rawConnection, c *Connection, envHint string) {
	var methods []azure.AuthMethod
	if rc.ClientSecret != nil {
		methods = append(methods, azure.ClientSecret)
	}
	if rc.Certificate != nil {
		methods = append(methods, azure.Certificate)
	}
	if rc.ManagedIdentity != nil && (rc.ManagedIdentity.enabled || rc.ManagedIdentity.problem != "") {
		methods = append(methods, azure.ManagedIdentity)
	}
	if rc.WorkloadIdentity != nil {
		methods = append(methods, azure.WorkloadIdentity)
	}
	const choose = "client_secret, certificate, managed_identity or workload_identity"
	switch len(methods) {
	case 0:
		b.bad(s, "client_secret", 0, "no identity: set one of %s (e.g. client_secret: {env: NAME})", choose)
		return
	case 1:
	default:
		names := make([]string, len(methods))
		for j, m := range methods {
			names[j] = string(m)
		}
		b.bad(s, string(methods[1]), 0, "%s are all set: choose one identity of %s", strings.Join(names, " and "), choose)
		return
	}
	id := &c.Identity
	id.Method = methods[0]
	id.ClientID = rc.ClientID

	needClientID := func() {
		switch {
		case rc.ClientID == "":
			b.bad(s, "client_id", 0, "client_id is missing: set the application (client) id of the identity, or %sCLIENT_ID", envHint)
		case !guidPattern.MatchString(rc.ClientID):
			b.bad(s, "client_id", 0, "client_id %q is not an application (client) id: it is a GUID such as 00000000-0000-0000-0000-000000000000", rc.ClientID)
		}
	}
	secretRef := func(k string, r *SecretRef) {
		if msg := r.load(b.opts.Getenv, b.baseDir); msg != "" {
			b.bad(s, k, r.line, "%s: %s", k, msg)
			return
		}
		if r.kind == refInline {
			// Allowed, so that a first try is one file; but the secret
			// then lives wherever the file is copied, versioned or
			// backed up. The note names the key, never the value.
			b.note("connection %q: %s is written inline in the configuration file (line %d), so anyone who can read the file or a copy of it has the secret; use %s: {env: NAME} or {file: PATH} instead", c.Name, k, r.line, k)
		}
	}

	switch id.Method {
	case azure.ClientSecret:
		needClientID()
		secretRef("client_secret", rc.ClientSecret)
		c.ClientSecretRef = rc.ClientSecret
		id.ClientSecret = rc.ClientSecret.Value()
	case azure.Certificate:
		needClientID()
		cert := rc.Certificate
		if cert.File == "" {
			b.bad(s, "certificate.file", 0, "certificate.file is missing: the PEM or PFX file with the certificate and its private key")
		} else {
			id.CertificatePath = resolvePath(b.baseDir, cert.File)
			if _, err := os.Stat(id.CertificatePath); err != nil {
				b.bad(s, "certificate.file", 0, "certificate.file %s cannot be read (%s)", id.CertificatePath, pathErrReason(err))
			}
		}
		if cert.Password != nil {
			secretRef("certificate.password", cert.Password)
			c.CertificatePasswordRef = cert.Password
			id.CertificatePassword = cert.Password.Value()
		}
		if cert.SendCertificateChain != nil {
			id.SendCertificateChain = *cert.SendCertificateChain
		}
	case azure.ManagedIdentity:
		if p := rc.ManagedIdentity.problem; p != "" {
			b.bad(s, "managed_identity", 0, "managed_identity %s", p)
		}
		if rc.ClientID != "" {
			b.bad(s, "client_id", 0, "client_id is not used with managed_identity; for a user-assigned identity write managed_identity: {client_id: …}")
		}
		id.ManagedIdentityClientID = rc.ManagedIdentity.ClientID
		if v := id.ManagedIdentityClientID; v != "" && !guidPattern.MatchString(v) {
			b.bad(s, "managed_identity.client_id", 0, "managed_identity.client_id %q is not a client id (a GUID)", v)
		}
	case azure.WorkloadIdentity:
		if rc.ClientID == "" && b.opts.Getenv("AZURE_CLIENT_ID") != "" {
			id.ClientID = b.opts.Getenv("AZURE_CLIENT_ID")
		} else {
			needClientID()
		}
		id.FederatedTokenFile = resolvePath(b.baseDir, rc.WorkloadIdentity.TokenFile)
		if id.FederatedTokenFile == "" {
			id.FederatedTokenFile = b.opts.Getenv("AZURE_FEDERATED_TOKEN_FILE")
		}
		if id.FederatedTokenFile == "" {
			b.bad(s, "workload_identity.token_file", 0, "workload_identity.token_file is missing and AZURE_FEDERATED_TOKEN_FILE is not set: name the projected service account token file")
		}
	}
}

func (b *builder) policy(i int, rp rawPolicy, conns []rawConnection) (domain.Policy, bool) {
	s := itemScope("policies", i, rp.Name)
	before := len(b.ps.list)
	p := domain.Policy{
		Name:       rp.Name,
		Connection: rp.Connection,
		Kind:       domain.CredentialKind(rp.Kind),
		Enabled:    rp.Enabled == nil || *rp.Enabled,
		Verify:     rp.Verify == nil || *rp.Verify,
	}
	if rp.RetireUnmanaged != nil {
		p.RetireUnmanaged = *rp.RetireUnmanaged
	}
	if p.Kind == "" {
		p.Kind = domain.KindSecret
	}
	if rc := rp.Certificate; rc != nil {
		p.Certificate = b.certificate(s, rc)
	}
	if sel := rp.Applications; sel != nil {
		p.Selector = domain.Selector{NamePrefix: sel.NamePrefix, AllOwned: sel.AllOwned}
		for j, id := range sel.IDs {
			id = strings.TrimSpace(id)
			if id == "" {
				b.bad(s, fmt.Sprintf("applications.ids[%d]", j), 0, "applications.ids[%d] is empty", j)
				continue
			}
			p.Selector.IDs = append(p.Selector.IDs, id)
		}
	}

	// The connection: it must exist, and it may know its tenant's limit.
	var conn *Connection
	switch {
	case rp.Connection == "":
		b.bad(s, "connection", 0, "connection is missing: name the connection (tenant) whose applications this policy rotates")
	default:
		names := make([]string, 0, len(conns))
		found := false
		for _, c := range conns {
			names = append(names, c.Name)
			found = found || c.Name == rp.Connection
		}
		if !found {
			if len(names) == 0 {
				b.bad(s, "connection", 0, "connection %q is not defined: there are no connections; add one under connections", rp.Connection)
			} else {
				b.bad(s, "connection", 0, "connection %q is not defined: use one of %s", rp.Connection, strings.Join(names, ", "))
			}
		}
		conn, _ = b.cfg.Connection(rp.Connection)
		if conn != nil && conn.Purpose != PurposeRotation {
			b.bad(s, "connection", 0, "connection %q has purpose %s: a policy rotates through a connection with purpose rotation (Application.ReadWrite.OwnedBy); a read connection only reads the inventory", rp.Connection, conn.Purpose)
		}
	}

	var lifetimeSet, overlapSet, ok1, ok2, ok3 bool
	p.Lifetime, lifetimeSet, ok1 = b.durIn(s, "lifetime", rp.Lifetime, domain.DefaultLifetime, lifetimeSpan)
	if conn != nil && p.Kind == domain.KindSecret && conn.PasswordLifetimeLimit > 0 && p.Lifetime > conn.PasswordLifetimeLimit && ok1 {
		limit := domain.FormatDuration(conn.PasswordLifetimeLimit)
		if lifetimeSet {
			b.bad(s, "lifetime", 0, "lifetime %s exceeds tenant %s's app management policy maximum of %s; lower lifetime to at most %s",
				domain.FormatDuration(p.Lifetime), conn.tenantLabel(), limit, limit)
		} else {
			b.note("policy %q: lifetime defaults to %s, but tenant %s's app management policy allows at most %s; using %s",
				p.Name, domain.FormatDuration(p.Lifetime), conn.tenantLabel(), limit, limit)
			p.Lifetime = conn.PasswordLifetimeLimit
		}
	}
	var renewSet bool
	p.RenewBefore, renewSet, ok2 = b.dur(s, "renew_before", rp.RenewBefore, domain.DefaultRenewBefore(p.Lifetime))
	p.Overlap, overlapSet, ok3 = b.dur(s, "overlap", rp.Overlap, domain.DefaultOverlap)
	p.NotifyBefore, _, _ = b.durIn(s, "notify_before", rp.NotifyBefore, DefaultNotifyBefore, notifyBeforeSpan)
	if r := b.cfg.Rotation; ok1 && ok2 && b.rotationOK && p.RenewBefore > 0 && p.RenewBefore < p.Lifetime && p.RenewBefore <= r.startWithin() {
		at := domain.FormatDuration(p.RenewBefore)
		switch {
		case !renewSet:
			at += ", the default: a third of lifetime"
		case rp.RenewBefore.src != "":
			at += ", " + rp.RenewBefore.src
		}
		b.bad(s, "renew_before", rp.RenewBefore.line,
			"renew_before (%s) must be longer than rotation.plan_interval + rotation.jitter + rotation.verify_timeout (%s + %s + %s = %s): a due rotation may start that late and still wait for Entra, so the credential could expire before its replacement works; raise renew_before or lower those settings",
			at, domain.FormatDuration(r.PlanInterval), domain.FormatDuration(r.Jitter), domain.FormatDuration(r.VerifyTimeout), domain.FormatDuration(r.startWithin()))
	}

	if ok1 && ok2 && ok3 {
		check := p
		if b.decodeProblemIn(s.key("applications")) {
			// An unreadable selector is reported already; do not also
			// report it missing.
			check.Selector = domain.Selector{AllOwned: true}
		}
		if err := check.Validate(); err != nil {
			msg := err.Error()
			switch {
			case !overlapSet && p.Overlap >= p.Lifetime:
				msg += fmt.Sprintf("; overlap was not set and defaults to %s: set overlap shorter than lifetime", domain.FormatDuration(domain.DefaultOverlap))
			case !lifetimeSet && p.RenewBefore >= p.Lifetime:
				msg += fmt.Sprintf("; lifetime was not set and is %s: set lifetime longer than renew_before", domain.FormatDuration(p.Lifetime))
			}
			b.ps.addf(s.path, s.object, 0, "%s", msg)
		}
	}

	p.Sinks = b.sinks(s, rp.Sinks)
	// A sink that names one target for every application, under a policy
	// that selects several, would have each rotation overwrite the
	// previous application's secret: one consumer would hold another
	// application's credential.
	if b.opts.Sinks != nil && (p.Selector.AllOwned || p.Selector.NamePrefix != "" || len(p.Selector.IDs) > 1) {
		for i, spec := range p.Sinks {
			if b.opts.Sinks.SharesTarget(spec) {
				b.bad(s, fmt.Sprintf("sinks[%d]", i), 0, "policy %q selects several applications, but sinks[%d] (%s) writes every one of them to the same target: name it after the application (e.g. secret: \"{{ .App.DisplayName }}-secret\"), or select one application by ids", p.Name, i, spec.Type)
			}
		}
	}
	switch {
	case len(p.Sinks) == 0 && p.RetireUnmanaged:
		b.bad(s, "sinks", 0, "sinks is empty but retire_unmanaged is true: the credentials consumers use today would be retired and no consumer would get the new one; add a sink")
	case len(p.Sinks) == 0 && p.Enabled && len(b.ps.list) == before:
		b.note("policy %q has no sinks: new credentials it creates reach no consumer", p.Name)
	}
	return p, len(b.ps.list) == before
}

// certificate reads a policy's certificate settings. The key type and DNS
// names are checked with the rest of the policy (domain.Policy.Validate);
// the subject and the bootstrap reference here, where their syntax is
// known. A relative {file} bootstrap is made relative to rotor.yaml.
func (b *builder) certificate(s scope, rc *rawPolicyCertificate) domain.CertificateSpec {
	spec := domain.CertificateSpec{KeyType: strings.TrimSpace(rc.KeyType), Subject: strings.TrimSpace(rc.Subject),
		KeySource: domain.KeySource(strings.ToLower(strings.TrimSpace(rc.KeySource))), VaultURL: strings.TrimSpace(rc.VaultURL),
		HSM: rc.HSM, VaultName: strings.TrimSpace(rc.VaultName)}
	if spec.KeySource == domain.KeySourceLocal {
		spec.KeySource = "" // the default, stored as such
	}
	if spec.VaultURL != "" && !strings.HasSuffix(spec.VaultURL, "/") {
		spec.VaultURL += "/"
	}
	if spec.VaultName != "" {
		if err := vaultname.Check(spec.VaultName); err != nil {
			b.bad(s, "certificate.vault_name", 0, "certificate.vault_name: %v", err)
		}
	}
	for _, n := range rc.DNSNames {
		spec.DNSNames = append(spec.DNSNames, strings.TrimSpace(n))
	}
	if spec.Subject != "" {
		if _, err := certgen.ParseSubject(spec.Subject, ""); err != nil {
			b.bad(s, "certificate.subject", 0, "certificate.subject: %s", strings.TrimPrefix(err.Error(), "certgen: "))
		}
	}
	if n := &rc.Bootstrap; n.Kind != 0 && n.ShortTag() != "!!null" {
		var v any
		if err := n.Decode(&v); err != nil {
			b.bad(s, "certificate.bootstrap", n.Line, "certificate.bootstrap cannot be read (line %d)", n.Line)
			return spec
		}
		ref, err := sink.ParseSecretRef(v)
		if err != nil {
			b.bad(s, "certificate.bootstrap", n.Line, "certificate.bootstrap: %v (a PEM certificate and its private key)", err)
			return spec
		}
		m, _ := v.(map[string]any)
		if ref.File != "" {
			m["file"] = resolvePath(b.baseDir, ref.File)
		}
		spec.Bootstrap = m
	}
	return spec
}

// sinks turns `- {<type>: {settings…}}` items into specs and has the sink
// registry check them.
func (b *builder) sinks(s scope, nodes []yaml.Node) []domain.SinkSpec {
	var out []domain.SinkSpec
	for j := range nodes {
		n := &nodes[j]
		k := fmt.Sprintf("sinks[%d]", j)
		if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
			b.bad(s, k, n.Line, "%s must be a map with one key, the sink type, e.g. - keyvault: {vault_url: …, secret: …} (line %d)", k, n.Line)
			continue
		}
		typ, settings := n.Content[0].Value, n.Content[1]
		spec := domain.SinkSpec{Type: typ, Settings: map[string]any{}}
		switch {
		case settings.Kind == yaml.ScalarNode && settings.ShortTag() == "!!null":
		case settings.Kind == yaml.MappingNode:
			if err := settings.Decode(&spec.Settings); err != nil {
				b.bad(s, k, settings.Line, "%s (%s): settings cannot be read (line %d)", k, typ, settings.Line)
				continue
			}
		default:
			b.bad(s, k, settings.Line, "%s (%s): settings must be a map of keys (line %d)", k, typ, settings.Line)
			continue
		}
		if b.opts.Sinks != nil {
			if err := b.opts.Sinks.CheckSpec(spec); err != nil {
				b.bad(s, k, n.Line, "%s (%s, line %d): %v", k, typ, n.Line, err)
				continue
			}
		}
		out = append(out, spec)
	}
	return out
}
