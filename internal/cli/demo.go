package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store/postgres"
)

func newDemoCmd() *cobra.Command {
	var o demoOptions
	c := &cobra.Command{
		Use:   "demo [--addr 127.0.0.1:8080] [--postgres URL]",
		Short: "Watch rotor rotate secrets against the built-in Azure simulator",
		Long: `Demo starts the Azure simulator with two realistic tenants (contoso and
fabrikam, ~40 applications each, secrets expired, expiring within the hour,
within days, and healthy), writes a rotor.yaml for them in a temporary
directory, and runs rotor on it with SQLite. Within the first minute rotor
adopts every application its rotation identity owns: it creates a new
secret, stores it in the tenant's Key Vault, proves Entra accepts it, and
after a 45-second overlap (a day in production) retires the older rotor secrets.
contoso's api-payments goes further: its new secret reaches every kind of
consumer rotor writes to, in order, each one simulated — the Key Vault, an
Azure DevOps service connection and variable group, a Helm values file in
Git (age-encrypted), an Automation runbook, a Logic Apps connection, Vercel,
a GitHub environment secret, a Kubernetes Secret (then a rollout restart)
and a signed webhook; the simulator's GET /_sim/consumers lists what each
holds. Each step is narrated here and shown in the web UI, where people sign in (/ui/) with the
simulator's Entra: ada (admin), oscar (operator) or vera (viewer) of the
first tenant, registered as rotor-web in it (docs/sign-in.md).

With --postgres URL the same demo runs on PostgreSQL. URL names a superuser,
or a role with CREATEROLE that may create schemas in its database (GRANT
CREATE ON DATABASE). Give the role's password in the URL
(postgres://ROLE:PASSWORD@HOST:5432/DATABASE), in an environment variable
named by --postgres-password-env, or through libpq's PGPASSWORD or
~/.pgpass; rotor never prints it. The demo creates a schema of its own
(rotor_demo_…), which URL's role owns and migrates, and an application role
with a random password, which rotor runs as; it drops both when it stops
(unless --keep). One URL is for the demo only: in production you create the
two roles, and rotor runs as the application role (database.url) and
migrates as the owner (database.migrate_url); see docs/configuration.md.

Nothing leaves this machine but the database connection: the simulator
listens on loopback only.`,
		Example: `  rotor demo
  rotor demo --postgres 'postgres://postgres:secret@127.0.0.1:5432/postgres?sslmode=disable'
  PGADMIN_PASSWORD=secret rotor demo --postgres postgres://postgres@db:5432/rotor --postgres-password-env PGADMIN_PASSWORD`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.postgresPasswordEnv != "" && o.postgres == "":
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--postgres-password-env needs --postgres")}
			case o.postgresPasswordEnv != "" && !envName.MatchString(o.postgresPasswordEnv):
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--postgres-password-env: %q is not an environment variable's name (letters, digits and _)", o.postgresPasswordEnv)}
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	c.Flags().StringVar(&o.addr, "addr", "127.0.0.1:8080", "where rotor listens: the web UI, the API, /healthz (a free port is picked if this one is taken)")
	c.Flags().BoolVar(&o.keep, "keep", false, "keep the temporary directory (data, logs, rotor.yaml), and with --postgres the demo's schema and role, after exit")
	c.Flags().StringVar(&o.postgres, "postgres", "", "run on the PostgreSQL at `URL` instead of SQLite, as a superuser or a role with CREATEROLE and CREATE on the database (demo only: production uses two roles, see docs/configuration.md)")
	c.Flags().StringVar(&o.postgresPasswordEnv, "postgres-password-env", "", "the environment variable `NAME` holding the password of --postgres's role, instead of the URL")
	return c
}

// envName is what --postgres-password-env may name: it goes into
// rotor.yaml as an {env: …} reference.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// demoOptions are the demo's flags.
type demoOptions struct {
	addr string
	keep bool
	// postgres is the URL --postgres gives ("": SQLite), and
	// postgresPasswordEnv the variable holding its role's password.
	postgres, postgresPasswordEnv string
}

func runDemo(ctx context.Context, stdout io.Writer, o demoOptions) error {
	d, err := StartDemo(ctx, DemoOptions{
		Addr: o.addr, Keep: o.keep, Postgres: o.postgres, PostgresPasswordEnv: o.postgresPasswordEnv, Stdout: stdout,
	})
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(stdout, "\nConfiguration: %s\nLogs:          %s\n", d.Config, filepath.Join(d.Dir, "rotor.log"))
	fmt.Fprintf(stdout, "Try in another terminal:  go run ./cmd/rotor apps list --config %s\n", d.Config)
	fmt.Fprintf(stdout, "                          go run ./cmd/rotor explain %s --config %s\n\n", demoExample(d.Rows), d.Config)

	err = d.Rotor.Serve(ctx, func(a string) {
		fmt.Fprintf(stdout, "Sign in:     http://%s%s   as ada (admin), oscar (operator) or vera (viewer) of tenant %s, one click on the simulator's page\n", a, server.UIPath, d.Tenant)
		fmt.Fprintf(stdout, "             (your browser will not know the simulator's certificate authority: %s).\n", d.Sim.Info().CAFile)
		fmt.Fprintln(stdout, "             An organization no Entra role makes anyone admin of gets a break-glass admin instead,")
		fmt.Fprintln(stdout, "             whose password rotor prints once, on stderr, at its first start (here ada is admin: none).")
		fmt.Fprintf(stdout, "CLI:         go run ./cmd/rotor login --server http://%s --ca-file %s   then   go run ./cmd/rotor apps list --server http://%s\n", a, d.Sim.Info().CAFile, a)
		fmt.Fprintf(stdout, "             The dashboard, every credential, each rotation live and the audit log are there.   (Ctrl-C to stop)\n\n")
		fmt.Fprintln(stdout, "Rotations (spread over 20 s of jitter, at most 4 at a time per tenant):")
	})
	if err == nil {
		where := "its temporary directory is removed (run with --keep to keep it)"
		if o.keep {
			where = "everything is kept in " + d.Dir
		}
		fmt.Fprintf(stdout, "\nrotor stopped cleanly; %s.\n", where)
	}
	return err
}

// DemoOptions say how StartDemo builds the demo: `rotor demo`'s flags,
// where it narrates, and what tests of the browser need to differ.
type DemoOptions struct {
	// Addr is where rotor listens (a free loopback port if it is taken;
	// "127.0.0.1:0" for any).
	Addr string
	// Keep keeps the temporary directory (and the PostgreSQL schema and
	// role) after Close.
	Keep bool
	// Postgres is --postgres's URL ("": SQLite), PostgresPasswordEnv
	// --postgres-password-env.
	Postgres, PostgresPasswordEnv string
	// Stdout receives the narration (nil: discarded).
	Stdout io.Writer
	// Console receives what rotor prints once to the console, the
	// break-glass admin's password (nil: stderr, as in `rotor demo`).
	Console io.Writer
	// NoEntraAdmin leaves the Rotor.Admin binding out of sign_in, so that
	// the default organization gets a break-glass admin, as one does
	// until an Entra role makes someone admin. `rotor demo` keeps it.
	NoEntraAdmin bool
}

// Demo is a started demo: the simulator running, rotor opened on its
// rotor.yaml and its inventory read, not yet serving (Rotor.Serve does).
type Demo struct {
	// Dir is the demo's temporary directory; Config its rotor.yaml.
	Dir, Config string
	// Listen is the address rotor serves on (resolved: never port 0).
	Listen string
	// Tenant is the simulator tenant whose people sign in.
	Tenant string
	Sim    *sim.Server
	Rotor  *server.Server
	// Rows are the applications of the first sync.
	Rows []app.ApplicationRow
	// closers undo what StartDemo did, run in reverse by Close.
	closers []func()
}

// Close stops rotor, then the simulator, and removes what the demo made
// (unless Keep). It is safe to call once.
func (d *Demo) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// onClose has Close undo f, after what was done after it.
func (d *Demo) onClose(f func()) { d.closers = append(d.closers, f) }

// StartDemo builds what `rotor demo` runs: the simulator's two tenants on
// loopback, a rotor.yaml for them (with sign-in through the simulator's
// Entra), rotor opened on it and a first sync, narrated to o.Stdout. The
// caller serves (d.Rotor.Serve) and Closes.
func StartDemo(ctx context.Context, o DemoOptions) (_ *Demo, err error) {
	stdout := o.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	d := &Demo{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	dir, err := os.MkdirTemp("", "rotor-demo-")
	if err != nil {
		return nil, err
	}
	d.Dir = dir
	if !o.Keep {
		d.onClose(func() { os.RemoveAll(dir) })
	}
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return nil, err
	}
	// The database first: a URL that is wrong, or a role that may not
	// make the demo's schema, stops the demo before anything starts.
	var database []byte
	if o.Postgres != "" {
		sb, yaml, err := demoPostgres(ctx, stdout, secrets, demoOptions{postgres: o.Postgres, postgresPasswordEnv: o.PostgresPasswordEnv})
		if err != nil {
			return nil, err
		}
		database = yaml
		// Undone after rotor has closed its connections.
		d.onClose(func() {
			if o.Keep {
				fmt.Fprintf(stdout, "The demo's schema %s and role %s are kept; drop them with: DROP SCHEMA %s CASCADE; DROP ROLE %s;\n",
					sb.Schema, sb.AppRole, sb.Schema, sb.AppRole)
				return
			}
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := sb.Drop(dctx); err != nil {
				fmt.Fprintf(stdout, "The demo's schema and role could not be dropped (%v); drop them with: DROP SCHEMA %s CASCADE; DROP ROLE %s;\n",
					err, sb.Schema, sb.AppRole)
				return
			}
			fmt.Fprintf(stdout, "The demo's schema %s and role %s are dropped.\n", sb.Schema, sb.AppRole)
		})
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "rotor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	d.onClose(func() { logFile.Close() })
	logger := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	fmt.Fprintln(stdout, "Starting the Azure simulator (Entra ID, Microsoft Graph, Key Vault) on loopback…")
	simDir := filepath.Join(dir, "sim")
	if err := os.MkdirAll(simDir, 0o700); err != nil {
		return nil, err
	}
	srv, err := sim.New(sim.Options{StateDir: simDir, Seed: "demo", Logger: logger.With("component", "sim")})
	if err != nil {
		return nil, err
	}
	// The simulator outlives rotor's clean shutdown (Ctrl-C lets running
	// rotations finish against it); Close stops it after rotor.
	if err := srv.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	d.onClose(func() { srv.Close() })
	d.Sim = srv
	info := srv.Info()

	for _, t := range info.Tenants {
		if err := os.WriteFile(filepath.Join(secrets, t.Name+"-rotation-secret"), []byte(t.Rotation.ClientSecret), 0o600); err != nil {
			return nil, err
		}
	}
	d.Listen = freeAddr(o.Addr)
	// People sign in with the first tenant's demo users: rotor-web is
	// registered with rotor's callback on the demo's listener.
	signIn, err := demoSignIn(srv, info, filepath.Join(simDir, simfile.FileName), d.Listen, secrets, !o.NoEntraAdmin)
	if err != nil {
		return nil, err
	}
	d.Tenant = signIn.tenant
	cfgYAML, err := config.SimulatorYAML(info, config.SimulatorConfig{
		SimFile: filepath.Join(simDir, simfile.FileName), Listen: d.Listen, DataDir: filepath.Join(dir, "data"),
		Secret: func(t simfile.Tenant) string {
			return "{file: " + filepath.Join(secrets, t.Name+"-rotation-secret") + "}"
		},
		Rotation: config.SimulatorRotation{Jitter: "20s", PlanInterval: "10s", SyncInterval: "2m", VerifyTimeout: "2m"},
		// A 45 s overlap (a day in production) so retirements show within
		// the demo's first minutes.
		Policies: []config.SimulatorPolicy{{Name: "owned", Lifetime: "30d", RenewBefore: "10d", Overlap: "45s"}},
		// The least-privilege set-up: a read connection per tenant sees
		// every application beside the rotation connection that may change
		// the ones it owns.
		ReadConnections: true,
		// contoso's api-payments goes to every kind of consumer the
		// simulator serves, so the demo shows each one switch.
		EverySink: true,
	})
	if err != nil {
		return nil, err
	}
	cfgYAML = append(cfgYAML, database...)
	cfgYAML = append(cfgYAML, signIn.yaml...)
	cliAuth, err := demoCLI(srv, info, filepath.Join(simDir, simfile.FileName))
	if err != nil {
		return nil, err
	}
	cfgYAML = append(cfgYAML, cliAuth...)
	d.Config = filepath.Join(dir, "rotor.yaml")
	if err := os.WriteFile(d.Config, cfgYAML, 0o600); err != nil {
		return nil, err
	}
	for _, t := range info.Tenants {
		fmt.Fprintf(stdout, "  tenant %-9s %s  vault %s\n", t.Name, t.ID, t.KeyVaults[0].URL)
	}

	rotor, err := server.Open(ctx, d.Config, server.Options{Logger: logger.With("component", "rotor"), Console: o.Console})
	if err != nil {
		return nil, err
	}
	d.onClose(func() { rotor.Close() })
	d.Rotor = rotor
	n := &narrator{w: stdout, sinkKinds: map[string][]string{}}
	for _, p := range rotor.Config().Policies {
		for _, sp := range p.Sinks {
			n.sinkKinds[p.Name] = append(n.sinkKinds[p.Name], sp.Type)
		}
	}
	d.onClose(rotor.App().Observe(n.step))

	fmt.Fprintln(stdout, "Reading both tenants' applications into the inventory…")
	if _, err := rotor.App().Sync(ctx, scope(rotor), nil); err != nil {
		return nil, err
	}
	rows, err := rotor.App().ListApplications(ctx, scope(rotor), app.ApplicationFilter{})
	if err != nil {
		return nil, err
	}
	d.Rows = rows
	adopt, renew, later, watched := 0, 0, 0, 0
	for _, r := range rows {
		switch {
		case r.Status == "due now (adoption)":
			adopt++
		case strings.HasPrefix(r.Status, "due now"):
			renew++
		case strings.HasPrefix(r.Status, "due in"):
			later++
		default:
			watched++
		}
	}
	fmt.Fprintf(stdout, "  %d applications. Owned by rotor's rotation identity: %d never rotated by rotor (due now: adoption), %d with a rotor secret past its renewal time (due now), %d not due yet.\n  %d rotor may only watch (not owned, or no policy).\n", len(rows), adopt, renew, later, watched)
	return d, nil
}

// demoPostgres makes the demo's schema and application role on the
// PostgreSQL o.postgres names (postgres.NewSandbox) and returns the
// database section of rotor.yaml for them: passwords by reference, the
// application role's and a password the URL carried in files under
// secrets, one from o.postgresPasswordEnv as an {env: …} reference.
func demoPostgres(ctx context.Context, stdout io.Writer, secrets string, o demoOptions) (*postgres.Sandbox, []byte, error) {
	clean, urlPassword, err := postgres.SplitPassword(o.postgres)
	if err != nil {
		return nil, nil, fmt.Errorf("--postgres: %w", err)
	}
	p := postgres.SandboxParams{URL: o.postgres}
	if o.postgresPasswordEnv != "" {
		if p.Password = os.Getenv(o.postgresPasswordEnv); p.Password == "" {
			return nil, nil, fmt.Errorf("--postgres-password-env: the environment variable %s is empty or not set", o.postgresPasswordEnv)
		}
	}
	fmt.Fprintln(stdout, "Making the demo's schema and application role in PostgreSQL…")
	sb, err := postgres.NewSandbox(ctx, p)
	if err != nil {
		return nil, nil, fmt.Errorf("--postgres: %w", err)
	}
	appPassword := filepath.Join(secrets, "database-app-password")
	if err := os.WriteFile(appPassword, []byte(sb.AppPassword), 0o600); err != nil {
		return nil, nil, errors.Join(err, sb.Drop(context.WithoutCancel(ctx)))
	}
	var ownerPassword string
	switch {
	case urlPassword != "":
		path := filepath.Join(secrets, "database-owner-password")
		if err := os.WriteFile(path, []byte(urlPassword), 0o600); err != nil {
			return nil, nil, errors.Join(err, sb.Drop(context.WithoutCancel(ctx)))
		}
		ownerPassword = "\n  migrate_password: {file: " + path + "}"
	case o.postgresPasswordEnv != "":
		ownerPassword = "\n  migrate_password: {env: " + o.postgresPasswordEnv + "}"
	}
	fmt.Fprintf(stdout, "  database  %s\n            schema %s, owned by %s (which migrates it); rotor runs as role %s\n", clean, sb.Schema, sb.OwnerRole, sb.AppRole)
	yaml := fmt.Sprintf(`
# rotor demo --postgres: one URL, for the demo only. In production rotor
# runs as an application role and migrates as an owner role that you
# create (docs/configuration.md).
database:
  url: %q
  password: {file: %s}
  migrate_url: %q%s
`, sb.AppURL, appPassword, sb.OwnerURL, ownerPassword)
	return sb, []byte(yaml), nil
}

// demoExample is how to name web-storefront on the command line: both demo
// tenants have one, so the display name alone is ambiguous and the first
// one's object id is used instead.
func demoExample(rows []app.ApplicationRow) string {
	ref, n := "web-storefront", 0
	oid := ""
	for _, r := range rows {
		if r.Name == ref {
			n++
			if oid == "" {
				oid = r.ObjectID
			}
		}
	}
	if n > 1 {
		return oid
	}
	return ref
}

// narrator prints the journal of every run as it happens, one line a step.
type narrator struct {
	mu sync.Mutex
	w  io.Writer
	// sinkKinds are each policy's sinks' kinds, in order, so a sink step
	// says which kind of consumer it reached.
	sinkKinds map[string][]string
}

func (n *narrator) step(r domain.Run, step domain.Step) {
	switch step.Kind {
	case domain.StepPlanned, domain.StepCreated, domain.StepPropagated, domain.StepVerified, domain.StepRetiring, domain.StepDone, domain.StepAbandoned, domain.StepTakenOver:
	case domain.StepRetire, domain.StepSink:
		switch step.Phase {
		case domain.PhaseRemoved, domain.PhaseWritten, domain.PhaseFailed, domain.PhaseSkipped, domain.PhaseDrifted:
		default:
			return
		}
	default:
		if r.State != domain.RunFailed {
			return
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	msg := describeStep(r, step)
	if kinds := n.sinkKinds[r.Policy]; step.Kind == domain.StepSink && step.Index < len(kinds) && len(kinds) > 1 {
		msg += " (" + kinds[step.Index] + ")"
	}
	if r.State == domain.RunFailed {
		msg = "failed: " + r.Error
	}
	fmt.Fprintf(n.w, "  %s  %-28s %-10s %s\n", time.Now().Format("15:04:05"), trimTo(r.Connection+"/"+r.AppName, 28), r.State, msg)
}

func trimTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// freeAddr returns addr if it can be listened on, else a free loopback
// port; a port 0 is resolved to the free port it picks, because sign-in's
// redirect URL must name the port before rotor listens.
func freeAddr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return "127.0.0.1:0"
		}
	}
	defer ln.Close()
	return ln.Addr().String()
}

// demoSignInConfig is the demo's sign_in: its rotor.yaml section, and the
// tenant whose people sign in.
type demoSignInConfig struct {
	yaml   []byte
	tenant string
}

// demoSignIn registers rotor's sign-in application (rotor-web) in the
// simulator's first tenant, its redirect URI on listen, keeps its client
// secret in a file beside the rotation secrets and writes the sign_in
// section docs/sign-in.md describes: the demo's app roles and groups
// bound to rotor's roles in the default organization.
func demoSignIn(srv *sim.Server, info *simfile.Info, simFile, listen, secrets string, entraAdmin bool) (demoSignInConfig, error) {
	t := info.Tenants[0]
	redirect := "http://" + listen + "/auth/callback"
	web, err := srv.RegisterDemoSignIn(t.ID, redirect)
	if err != nil {
		return demoSignInConfig{}, fmt.Errorf("register the demo's sign-in application: %w", err)
	}
	secretFile := filepath.Join(secrets, "signin-secret")
	if err := os.WriteFile(secretFile, []byte(web.Secret), 0o600); err != nil {
		return demoSignInConfig{}, err
	}
	world := srv.World().Tenant(t.ID)
	group := func(name string) (string, error) {
		g := world.GroupByName(name)
		if g == nil {
			return "", fmt.Errorf("the simulator's tenant %s has no group %s", t.Name, name)
		}
		return g.ObjectID, nil
	}
	viewers, err := group(sim.DemoViewerGroup)
	if err != nil {
		return demoSignInConfig{}, err
	}
	operators, err := group(sim.DemoOperatorGroup)
	if err != nil {
		return demoSignInConfig{}, err
	}
	admin := fmt.Sprintf("\n      - {app_role: Rotor.Admin,    organization: %s, role: admin}", domain.DefaultOrg)
	if !entraAdmin {
		admin = ""
	}
	yaml := fmt.Sprintf(`
# People sign in to the UI with the simulator's Entra (docs/sign-in.md).
sign_in:
  entra:
    cloud: sim
    sim_file: %q
    tenant: %s
    client_id: %s
    client_secret: {file: %q}
    redirect_url: %s
    roles:%s
      - {app_role: Rotor.Operator, organization: %s, role: operator}
      - {group: %s, organization: %s, role: viewer}     # %s
      - {group: %s, organization: %s, role: operator}   # %s
  session_lifetime: 8h
`, simFile, t.ID, web.AppID, secretFile, redirect,
		admin, domain.DefaultOrg, viewers, domain.DefaultOrg, sim.DemoViewerGroup, operators, domain.DefaultOrg, sim.DemoOperatorGroup)
	return demoSignInConfig{yaml: []byte(yaml), tenant: t.Name}, nil
}

// demoCLI registers rotor's API and rotor's CLI (a public client) in the
// simulator's first tenant, with the demo users' app roles on the API
// (sim.RegisterDemoCLI), and returns the api_auth section that accepts
// their tokens: 'rotor login --server' against the demo signs ada, oscar
// or vera in through the browser, and the CLI's --server commands act as
// them.
func demoCLI(srv *sim.Server, info *simfile.Info, simFile string) ([]byte, error) {
	t := info.Tenants[0]
	reg, err := srv.RegisterDemoCLI(t.ID)
	if err != nil {
		return nil, fmt.Errorf("register the demo's CLI: %w", err)
	}
	return []byte(fmt.Sprintf(`
# The CLI signs people in with 'rotor login' (docs/api-auth.md#people-on-the-command-line).
api_auth:
  entra:
    cloud: sim
    sim_file: %q
    tenants: [%s]
    app_id_uri: %s
    client_id: %s
    cli_client_id: %s
    roles:
      - {app_role: Rotor.Admin,    organization: %s, role: admin}
      - {app_role: Rotor.Operator, organization: %s, role: operator}
      - {app_role: Rotor.Viewer,   organization: %s, role: viewer}
`, simFile, t.ID, reg.API.IdentifierURI, reg.API.AppID, reg.CLI.AppID, domain.DefaultOrg, domain.DefaultOrg, domain.DefaultOrg)), nil
}
