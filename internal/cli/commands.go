package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/store"
)

// configFlag is the --config flag every command that reads rotor.yaml has.
type configFlag struct{ path string }

func (f *configFlag) register(c *cobra.Command) {
	def := os.Getenv("ROTOR_CONFIG")
	if def == "" {
		def = "rotor.yaml"
	}
	c.Flags().StringVarP(&f.path, "config", "c", def, "configuration file (env ROTOR_CONFIG)")
}

// openReading validates --output, then opens rotor for a command that only
// reads (quiet logs, no hooks).
func (f *configFlag) openReading(cmd *cobra.Command, out *outputFlag) (*server.Server, error) {
	if err := out.validate(cmd); err != nil {
		return nil, err
	}
	return f.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "reader", rotation.Hooks{})
}

// check says clearly when the configuration file is missing.
func (f *configFlag) check() error {
	if _, err := os.Stat(f.path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("configuration file %s not found: pass --config FILE (see docs/configuration.md), or run 'rotor demo' to try rotor without one", f.path)
		}
		return err
	}
	return nil
}

// open assembles rotor from the configuration, logging at warn level unless
// the command wants more.
func (f *configFlag) open(ctx context.Context, stderr io.Writer, level slog.Level, process string, hooks rotation.Hooks) (*server.Server, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return server.Open(ctx, f.path, server.Options{Logger: logger, Hooks: hooks, Process: process})
}

func newServeCmd() *cobra.Command {
	var cf configFlag
	c := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run rotor: inventory sync, planning, rotations and retirements",
		Long: `Run rotor as a service. It syncs every connection's applications, plans the
rotations that are due, runs them (journaled, crash-safe), retires old
credentials after the overlap, and serves /healthz and a status page on the
listen address. SIGINT or SIGTERM stops it cleanly: running rotations finish
or are recovered at the next start.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := cf.openForServe(cmd)
			if err != nil {
				return err
			}
			defer srv.Close()
			return srv.Serve(cmd.Context(), func(addr string) {
				fmt.Fprintf(cmd.OutOrStdout(), "rotor: serving on http://%s (data in %s)\n", addr, srv.DataDir())
			})
		},
	}
	cf.register(c)
	return c
}

func (f *configFlag) openForServe(cmd *cobra.Command) (*server.Server, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	hooks, err := crashHooksFromEnv()
	if err != nil {
		return nil, err
	}
	return server.Open(cmd.Context(), f.path, server.Options{LogOutput: cmd.ErrOrStderr(), Hooks: hooks, Process: "serve"})
}

func newSyncCmd() *cobra.Command {
	var cf configFlag
	c := &cobra.Command{
		Use:   "sync --config FILE",
		Short: "Read every connection's applications and credentials into the inventory",
		Long: `Sync lists every application of every connection through Microsoft Graph,
with its credentials, and writes what changed into rotor's store. Applications
that rotor's rotation identity owns are marked manageable. Progress is printed
as pages arrive; large tenants (100,000 applications) take a few minutes.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "sync", rotation.Hooks{})
			if err != nil {
				return err
			}
			defer srv.Close()
			out := cmd.ErrOrStderr()
			err = srv.Sync(cmd.Context(), progressPrinter(out))
			fmt.Fprintln(out)
			if err != nil {
				return err
			}
			n, err := srv.Store().CountApplications(cmd.Context(), srv.Config().Organization, "")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "inventory holds %d applications\n", n)
			return nil
		},
	}
	cf.register(c)
	return c
}

// appRow is one line of `rotor apps list`.
type appRow struct {
	Name       string    `json:"name"`
	AppID      string    `json:"app_id"`
	ObjectID   string    `json:"object_id"`
	Connection string    `json:"connection"`
	Manageable bool      `json:"manageable"`
	Secrets    int       `json:"secrets"`
	Certs      int       `json:"certificates"`
	NextExpiry time.Time `json:"next_expiry,omitzero"`
	Policy     string    `json:"policy,omitempty"`
	Status     string    `json:"status"`
	DueAt      time.Time `json:"due_at,omitzero"`
}

func newAppsCmd() *cobra.Command {
	apps := &cobra.Command{Use: "apps", Short: "Look at the applications rotor knows", Args: groupArgs, RunE: showHelp}
	var (
		cf         configFlag
		out        outputFlag
		expiring   string
		connection string
		manageable bool
		prefix     string
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List applications with their credentials' expiry and rotation status",
		Long: `List the applications in rotor's inventory (run 'rotor sync' or 'rotor serve'
first). STATUS says what rotor will do: due, not due yet (with the time),
or why it will not rotate (no policy, not owned by rotor, …); 'rotor explain
APP' gives the full chain of checks.`,
		Example: `  rotor apps list --expiring 30d
  rotor apps list --connection contoso --manageable -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(cmd); err != nil {
				return err
			}
			p := store.ListApplicationsParams{Connection: connection, ManageableOnly: manageable, NamePrefix: prefix}
			var within time.Duration
			if expiring != "" {
				d, err := config.ParseDuration(expiring)
				if err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--expiring: %w", err)}
				}
				within = d
			}
			srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "sync", rotation.Hooks{})
			if err != nil {
				return err
			}
			defer srv.Close()
			now := srv.Clock().Now()
			if expiring != "" {
				p.ExpiringBefore = now.Add(within)
			}
			p.Org = srv.Config().Organization
			rows, err := listAppRows(cmd.Context(), srv, p, now)
			if err != nil {
				return err
			}
			err = printRows(cmd, &out, rows, "NAME\tCONNECTION\tMANAGEABLE\tSECRETS\tCERTS\tNEXT EXPIRY\tPOLICY\tSTATUS", func(r appRow) string {
				return fmt.Sprintf("%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s", r.Name, r.Connection, yesNo(r.Manageable), r.Secrets, r.Certs,
					orDash(r.NextExpiry, "2006-01-02 15:04"), cmp.Or(r.Policy, "-"), r.Status)
			})
			if err != nil || out.json() {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no applications match; run 'rotor sync' to fill the inventory")
			}
			return nil
		},
	}
	cf.register(list)
	out.register(list)
	list.Flags().StringVar(&expiring, "expiring", "", "only applications with a credential ending within this long (e.g. 30d, 12h)")
	list.Flags().StringVar(&connection, "connection", "", "only this connection's applications")
	list.Flags().BoolVar(&manageable, "manageable", false, "only applications rotor's rotation identity owns")
	list.Flags().StringVar(&prefix, "prefix", "", "only applications whose display name starts with this")
	apps.AddCommand(list)
	return apps
}

func listAppRows(ctx context.Context, srv *server.Server, p store.ListApplicationsParams, now time.Time) ([]appRow, error) {
	rows := []appRow{}
	p.Limit = 1000
	for {
		apps, err := srv.Store().ListApplications(ctx, p)
		if err != nil {
			return nil, err
		}
		decs, err := srv.Engine().Decisions(ctx, p.Org, apps, srv)
		if err != nil {
			return nil, err
		}
		for i, a := range apps {
			dec, pol := decs[i], srv.PolicyFor(a)
			r := appRow{Name: a.DisplayName, AppID: a.AppID, ObjectID: a.ObjectID, Connection: strings.Join(a.Connections(), ","), Manageable: a.Manageable, Status: statusOf(dec, now)}
			if pol != nil {
				r.Policy = pol.Name
			}
			if !dec.DueAt.IsZero() {
				r.DueAt = dec.DueAt
			}
			for _, c := range a.Credentials {
				if c.Kind == domain.KindSecret {
					r.Secrets++
				} else {
					r.Certs++
				}
				if c.End.After(now) && (r.NextExpiry.IsZero() || c.End.Before(r.NextExpiry)) {
					r.NextExpiry = c.End
				}
			}
			rows = append(rows, r)
		}
		if len(apps) < p.Limit {
			return rows, nil
		}
		last := apps[len(apps)-1]
		p.AfterName, p.AfterObjectID = last.DisplayName, last.ObjectID
	}
}

// decide runs the same chain of checks the planner runs, for one app.
func decide(ctx context.Context, srv *server.Server, a domain.Application) (domain.Decision, error) {
	decs, err := srv.Engine().Decisions(ctx, srv.Config().Organization, []domain.Application{a}, srv)
	if err != nil {
		return domain.Decision{}, err
	}
	return decs[0], nil
}

func statusOf(d domain.Decision, now time.Time) string {
	switch {
	case d.Due:
		return "due now (" + string(d.Trigger) + ")"
	case d.Reason == "NotYetDue":
		return "due in " + domain.HumanDuration(d.DueAt.Sub(now))
	case d.Reason == "FailureBackoff":
		return "last run failed; retry in " + domain.HumanDuration(d.DueAt.Sub(now))
	}
	return strings.ToLower(splitCamel(d.Reason))
}

func splitCamel(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newExplainCmd() *cobra.Command {
	var (
		cf  configFlag
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "explain APP",
		Short: "Say why an application is or is not due for rotation",
		Long: `Explain runs the same chain of named checks the planner runs for one
application (by display name, app id or object id) and prints each with its
outcome: which policy selects it, whether rotor owns it, whether a run is in
progress, which credential rotor made last and when it is due.`,
		Example: `  rotor explain web-storefront
  rotor explain 3f2a9c1e-… -o json`,
		Args: exactArgs(1, "APP (a display name, app id or object id)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := cf.openReading(cmd, &out)
			if err != nil {
				return err
			}
			defer srv.Close()
			app, err := srv.Store().GetApplication(cmd.Context(), srv.Config().Organization, args[0])
			if err != nil {
				return appLookupError(args[0], err)
			}
			dec, err := decide(cmd.Context(), srv, *app)
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"application": appSummary(app), "decision": dec})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s (app id %s, object id %s, %s)\n\n", app.DisplayName, app.AppID, app.ObjectID, describeAccess(app.Access))
			printCredentials(w, app, srv.Clock().Now())
			for _, ch := range dec.Checks {
				mark := map[domain.CheckResult]string{domain.CheckPass: "✓", domain.CheckStop: "→", domain.CheckInfo: "·"}[ch.Result]
				fmt.Fprintf(w, "  %s %-20s %s\n", mark, ch.Name, ch.Message)
			}
			fmt.Fprintln(w)
			switch {
			case dec.Due:
				fmt.Fprintf(w, "Due now (%s): the planner will rotate it within a minute, or run 'rotor rotate %s'.\n", dec.Trigger, appRef(cmd.Context(), srv, app))
			case !dec.DueAt.IsZero():
				fmt.Fprintf(w, "Not due: next rotation at %s.\n", dec.DueAt.Local().Format(time.RFC1123))
			default:
				fmt.Fprintf(w, "rotor will not rotate it: %s.\n", dec.Message)
			}
			return nil
		},
	}
	cf.register(c)
	out.register(c)
	return c
}

// printCredentials lists the application's credentials as the inventory
// last saw them, newest end first, so the checks below can be read against
// them.
func printCredentials(w io.Writer, app *domain.Application, now time.Time) {
	if len(app.Credentials) == 0 {
		fmt.Fprintf(w, "No credentials (inventory synced %s).\n\n", app.SyncedAt.Local().Format("2006-01-02 15:04"))
		return
	}
	fmt.Fprintf(w, "Credentials (inventory synced %s):\n", app.SyncedAt.Local().Format("2006-01-02 15:04"))
	creds := slices.Clone(app.Credentials)
	slices.SortFunc(creds, func(a, b domain.Credential) int { return b.End.Compare(a.End) })
	tw := newTable(w)
	fmt.Fprintln(tw, "  KIND\tKEY\tDISPLAY NAME\tHINT\tENDS\tMADE BY ROTOR")
	for _, c := range creds {
		ends := c.End.Local().Format("2006-01-02 15:04")
		if !c.End.After(now) {
			ends += " (expired)"
		} else {
			ends += " (in " + domain.HumanDuration(c.End.Sub(now)) + ")"
		}
		hint := c.Hint
		if hint == "" {
			hint = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.Kind, short(c.KeyID), c.DisplayName, hint, ends, yesNo(c.RotorCreated()))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

func appSummary(a *domain.Application) map[string]any {
	creds := make([]map[string]any, 0, len(a.Credentials))
	for _, c := range a.Credentials {
		creds = append(creds, map[string]any{"key_id": c.KeyID, "kind": c.Kind, "display_name": c.DisplayName, "hint": c.Hint, "start": c.Start, "end": c.End, "created_by_rotor": c.RotorCreated()})
	}
	return map[string]any{"name": a.DisplayName, "app_id": a.AppID, "object_id": a.ObjectID, "tenant_id": a.TenantID, "access": a.Access, "manageable": a.Manageable, "credentials": creds}
}

// describeAccess says which connections see an application and which of
// them may change it: "seen by contoso (may change), contoso-read".
func describeAccess(access []domain.Access) string {
	if len(access) == 0 {
		return "seen by no connection"
	}
	parts := make([]string, len(access))
	for i, a := range access {
		parts[i] = a.Connection
		if a.CanChange {
			parts[i] += " (may change)"
		}
	}
	return "seen by " + strings.Join(parts, ", ")
}

// appRef is how to name app on the command line: its display name, or its
// object id when the name does not find it alone (another application,
// e.g. in another connection, has the same name).
func appRef(ctx context.Context, srv *server.Server, a *domain.Application) string {
	if got, err := srv.Store().GetApplication(ctx, srv.Config().Organization, a.DisplayName); err != nil || got.ObjectID != a.ObjectID {
		return a.ObjectID
	}
	return a.DisplayName
}

func appLookupError(ref string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no application %q in the inventory: check the name, or run 'rotor sync' first", ref)
	}
	return err
}

// noArgs refuses positional arguments as a usage error (exit 2, with the
// pointer to --help); cobra.NoArgs would call an argument an "unknown
// command" and exit 1.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))}
	}
	return nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("expected %s", what)}
		}
		return nil
	}
}

// progressPrinter reports sync progress: rewriting one line on a terminal,
// and a line every two seconds (plus the last) when stderr is a file or a
// pipe, so CI logs stay readable.
func progressPrinter(w io.Writer) func(inventory.Progress) {
	tty := isTerminal(w)
	var last time.Time
	var lastConn string
	return func(p inventory.Progress) {
		line := fmt.Sprintf("%s: %d applications seen, %d changed (%s)", p.Connection, p.Seen, p.Changed, p.Elapsed.Round(100*time.Millisecond))
		if tty {
			fmt.Fprintf(w, "\r%s   ", line)
			return
		}
		if p.Connection != lastConn || time.Since(last) >= 2*time.Second {
			if lastConn != "" && p.Connection != lastConn {
				fmt.Fprintln(w)
			}
			fmt.Fprint(w, line, "\n")
			last, lastConn = time.Now(), p.Connection
		}
	}
}

func isTerminal(w io.Writer) bool {
	if sw, ok := w.(safeWriter); ok {
		w = sw.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
