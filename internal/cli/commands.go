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

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/server"
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
// reads (quiet logs).
func (f *configFlag) openReading(cmd *cobra.Command, out *outputFlag) (*server.Server, error) {
	if err := out.validate(cmd); err != nil {
		return nil, err
	}
	return f.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "reader")
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
func (f *configFlag) open(ctx context.Context, stderr io.Writer, level slog.Level, process string) (*server.Server, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return server.Open(ctx, f.path, server.Options{Logger: logger, Process: process})
}

// scope is what every command acts as: the configuration's organization,
// and the local CLI (whoever can read rotor.yaml holds its powers anyway).
func scope(srv *server.Server) app.Scope {
	return app.Scope{Org: srv.Config().Organization, Actor: app.CLI}
}

// explainError says what an application layer error means on the command
// line, and what to do about it; errors it does not know pass unchanged.
func explainError(err error) error {
	var (
		nf *app.NotFoundError
		np *app.NoPolicyError
		nm *app.NotManageableError
	)
	switch {
	case errors.As(err, &nf) && nf.Kind == "application":
		return fmt.Errorf("no application %q in the inventory: check the name, or run 'rotor sync' first", nf.Ref)
	case errors.As(err, &nf) && nf.Kind == "run":
		return fmt.Errorf("no run %q: list them with 'rotor runs list'", nf.Ref)
	case errors.As(err, &nf) && nf.Kind == "organization":
		return fmt.Errorf("no organization %q in rotor's store: check --org (without it, rotor.yaml's organization is used)", nf.Ref)
	case errors.As(err, &nf) && nf.Kind == "api key":
		return fmt.Errorf("no API key %q in this organization: list them with 'rotor apikey list'", nf.Ref)
	case errors.As(err, &np):
		return fmt.Errorf("no policy selects %s: add one to the configuration (policies[].applications)", np.App.Name)
	case errors.As(err, &nm):
		return fmt.Errorf("%s cannot be changed through connection %q (policy %q): its identity is not an owner, so Application.ReadWrite.OwnedBy cannot change it; add the identity as an owner and sync", nm.App.Name, nm.Connection, nm.Policy)
	}
	return err
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
				if cmd.Context().Err() != nil {
					// SIGINT or SIGTERM while opening (a migration,
					// the first connection): what failed is the
					// stop the operator asked for, and Open left
					// nothing running.
					fmt.Fprintln(cmd.ErrOrStderr(), "rotor: stopped before serving (signal received while starting)")
					return nil
				}
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
	hook, err := crashHooksFromEnv()
	if err != nil {
		return nil, err
	}
	srv, err := server.Open(cmd.Context(), f.path, server.Options{LogOutput: cmd.ErrOrStderr(), Process: "serve"})
	if err != nil {
		return nil, err
	}
	if hook != nil {
		// Installed before Serve starts anything: the hook sees every
		// journal write of this process.
		srv.App().Observe(hook)
	}
	return srv, nil
}

func newSyncCmd() *cobra.Command {
	var cf configFlag
	c := &cobra.Command{
		Use:   "sync --config FILE",
		Short: "Read every connection's applications and credentials into the inventory",
		Long: `Sync reads every connection's applications through Microsoft Graph, with
their credentials, and writes what changed into rotor's store. Applications
that rotor's rotation identity owns are marked manageable. The first sync of a
connection, and one at least every rotation.full_sync_interval, lists every
application; the others read only what changed since (Graph's delta query).
Progress is printed as pages arrive; a first sync of a large tenant (100,000
applications) takes a few minutes.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "sync")
			if err != nil {
				return err
			}
			defer srv.Close()
			out := cmd.ErrOrStderr()
			res, err := srv.App().Sync(cmd.Context(), scope(srv), progressPrinter(out))
			fmt.Fprintln(out)
			if err != nil {
				return explainError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "inventory holds %d applications\n", res.Applications)
			return nil
		},
	}
	cf.register(c)
	return c
}

func newAppsCmd() *cobra.Command {
	apps := &cobra.Command{Use: "apps", Short: "Look at the applications rotor knows", Args: groupArgs, RunE: showHelp}
	var (
		cf         configFlag
		rf         remoteFlag
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
  rotor apps list --connection contoso --manageable -o json
  rotor login --server https://rotor.example.com && rotor apps list --server https://rotor.example.com
  ROTOR_TOKEN=rtr_… rotor apps list --server https://rotor.example.com --org contoso`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(cmd); err != nil {
				return err
			}
			f := app.ApplicationFilter{Connection: connection, ManageableOnly: manageable, NamePrefix: prefix}
			if expiring != "" {
				d, err := config.ParseDuration(expiring)
				if err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--expiring: %w", err)}
				}
				f.ExpiringWithin = d
			}
			var rows []app.ApplicationRow
			if rf.set() {
				r, err := rf.client(cmd.Context())
				if err != nil {
					return err
				}
				if rows, err = r.applications(cmd.Context(), f); err != nil {
					return err
				}
			} else {
				srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "reader")
				if err != nil {
					return err
				}
				defer srv.Close()
				if rows, err = srv.App().ListApplications(cmd.Context(), rf.localScope(srv), f); err != nil {
					return explainError(err)
				}
			}
			err := printRows(cmd, &out, rows, "NAME\tCONNECTION\tMANAGEABLE\tSECRETS\tCERTS\tNEXT EXPIRY\tPOLICY\tSTATUS", func(r app.ApplicationRow) string {
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
	rf.register(list)
	out.register(list)
	list.Flags().StringVar(&expiring, "expiring", "", "only applications with a credential ending within this long (e.g. 30d, 12h)")
	list.Flags().StringVar(&connection, "connection", "", "only this connection's applications")
	list.Flags().BoolVar(&manageable, "manageable", false, "only applications rotor's rotation identity owns")
	list.Flags().StringVar(&prefix, "prefix", "", "only applications whose display name starts with this")
	apps.AddCommand(list, newAppsShowCmd(), newAppsSettingsCmd())
	return apps
}

func newAppsShowCmd() *cobra.Command {
	var (
		cf  configFlag
		rf  remoteFlag
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "show APP",
		Short: "Show one application with its credentials (hints only, never a value)",
		Long: `Show one application (by display name, app id or object id): its ids, which
connections see it and which may change it, and its credentials as the last
sync saw them, newest end first, with the hint Entra shows of a secret and
whether rotor made it. 'rotor explain APP' adds what rotor will do about it.`,
		Example: `  rotor apps show web-storefront
  rotor apps show 3f2a9c1e-… -o json --server https://rotor.example.com`,
		Args: exactArgs(1, "APP (a display name, app id or object id)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := readWith(cmd, &cf, &rf, &out, func(r *remote, ctx context.Context) (*app.ApplicationDetail, error) {
				return r.application(ctx, args[0])
			},
				func(srv *server.Server, sc app.Scope) (*app.ApplicationDetail, error) {
					return srv.App().GetApplication(cmd.Context(), sc, args[0])
				})
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s (app id %s, object id %s, tenant %s)\n  %s; %d %s\n\n", d.Name, d.AppID, d.ObjectID, d.TenantID,
				describeAccess(d.Access), d.Owners, plural(int64(d.Owners), "owner", "owners"))
			printCredentials(w, *d, time.Now())
			return nil
		},
	}
	cf.register(c)
	rf.register(c)
	out.register(c)
	return c
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
		rf  remoteFlag
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
  rotor explain 3f2a9c1e-… -o json
  rotor explain web-storefront --server https://rotor.example.com`,
		Args: exactArgs(1, "APP (a display name, app id or object id)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ex, err := readWith(cmd, &cf, &rf, &out, func(r *remote, ctx context.Context) (*app.Explanation, error) { return r.explain(ctx, args[0]) },
				func(srv *server.Server, sc app.Scope) (*app.Explanation, error) {
					return srv.App().Explain(cmd.Context(), sc, args[0])
				})
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), ex)
			}
			a, dec := ex.Application, ex.Decision
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s (app id %s, object id %s, %s)\n\n", a.Name, a.AppID, a.ObjectID, describeAccess(a.Access))
			printCredentials(w, a, ex.At)
			printTargets(w, ex.Targets)
			for _, ch := range dec.Checks {
				mark := map[domain.CheckResult]string{domain.CheckPass: "✓", domain.CheckStop: "→", domain.CheckInfo: "·"}[ch.Result]
				fmt.Fprintf(w, "  %s %-20s %s\n", mark, ch.Name, ch.Message)
			}
			fmt.Fprintln(w)
			switch {
			case dec.Due:
				fmt.Fprintf(w, "Due now (%s): the planner will rotate it within a minute, or run 'rotor rotate %s'.\n", dec.Trigger, ex.Ref)
			case !dec.DueAt.IsZero():
				fmt.Fprintf(w, "Not due: next rotation at %s.\n", dec.DueAt.Local().Format(time.RFC1123))
			default:
				fmt.Fprintf(w, "rotor will not rotate it: %s.\n", dec.Message)
			}
			return nil
		},
	}
	cf.register(c)
	rf.register(c)
	out.register(c)
	return c
}

// printCredentials lists the application's credentials as the inventory
// last saw them, newest end first, so the checks below can be read against
// them.
func printCredentials(w io.Writer, a app.ApplicationDetail, now time.Time) {
	if len(a.Credentials) == 0 {
		fmt.Fprintf(w, "No credentials (inventory synced %s).\n\n", a.SyncedAt.Local().Format("2006-01-02 15:04"))
		return
	}
	fmt.Fprintf(w, "Credentials (inventory synced %s):\n", a.SyncedAt.Local().Format("2006-01-02 15:04"))
	creds := slices.Clone(a.Credentials)
	slices.SortFunc(creds, func(a, b app.CredentialInfo) int { return b.End.Compare(a.End) })
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
		if c.Kind == domain.KindCertificate && c.Thumbprint != "" {
			hint = short(c.Thumbprint) // a certificate's hint is its thumbprint
		}
		if hint == "" {
			hint = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.Kind, short(c.KeyID), c.DisplayName, hint, ends, yesNo(c.CreatedByRotor))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	printCertificates(w, creds)
}

// printCertificates describes each certificate credential beside the
// table: thumbprints, names, key, and the posture flag with its advice.
func printCertificates(w io.Writer, creds []app.CredentialInfo) {
	var certs []app.CredentialInfo
	for _, c := range creds {
		if c.Kind == domain.KindCertificate {
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 {
		return
	}
	fmt.Fprintln(w, "Certificates:")
	for _, c := range certs {
		tp := c.Thumbprint
		if tp == "" {
			tp = "unknown"
		}
		fmt.Fprintf(w, "  %s thumbprint %s\n", short(c.KeyID), tp)
		if x := c.Certificate; x != nil {
			issuer := x.Issuer
			if x.Issuer == x.Subject {
				issuer += " (self-signed)"
			}
			fmt.Fprintf(w, "     SHA-256 %s\n     subject %s, issuer %s\n     key %s %d bits, valid %s to %s\n",
				x.ThumbprintSHA256, x.Subject, issuer, x.KeyAlgorithm, x.KeySize,
				x.NotBefore.UTC().Format("2006-01-02"), x.NotAfter.UTC().Format("2006-01-02"))
		} else {
			fmt.Fprintln(w, "     certificate not read yet (the next sync reads it)")
		}
		if c.PrivateKeyUnknown {
			fmt.Fprintf(w, "     PRIVATE KEY UNKNOWN: %s.\n", app.PrivateKeyUnknownAdvice)
		}
	}
	fmt.Fprintln(w)
}

// printTargets lists where the policy's sinks deliver for the
// application, when any has been delivered to.
func printTargets(w io.Writer, targets []app.PinnedTarget) {
	if len(targets) == 0 {
		return
	}
	fmt.Fprintln(w, "Sink targets (pinned at first delivery):")
	for _, t := range targets {
		line := fmt.Sprintf("  #%d %s", t.Sink+1, t.Target)
		if t.Previous != "" {
			line += fmt.Sprintf(" (moved from %s, still updated until %s)", t.Previous, t.RetireOldAt.Local().Format("2006-01-02 15:04"))
		}
		fmt.Fprintln(w, line)
		switch {
		case t.Drift != nil && t.Drift.Drifted:
			fmt.Fprintf(w, "     DRIFT: %s\n", t.Drift.Reason)
		case t.Drift != nil:
			fmt.Fprintf(w, "     %s\n", t.Drift.Reason)
		case t.LastDelivery != nil:
			fmt.Fprintf(w, "     rotor delivered credential %s at %s (this target reports no version to compare)\n", t.LastDelivery.KeyID, t.LastDelivery.At.Local().Format("2006-01-02 15:04"))
		}
	}
	fmt.Fprintln(w)
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

func rangeArgs(lo, hi int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("expected %s", what)}
		}
		return nil
	}
}

// progressPrinter reports sync progress: rewriting one line on a terminal,
// and a line every two seconds (plus the last) when stderr is a file or a
// pipe, so CI logs stay readable.
func progressPrinter(w io.Writer) func(app.SyncProgress) {
	tty := isTerminal(w)
	var last time.Time
	var lastConn string
	return func(p app.SyncProgress) {
		line := fmt.Sprintf("%s: %d applications seen, %d changed (%s)", p.Connection, p.Seen, p.Changed, p.Elapsed.Round(100*time.Millisecond))
		if p.Incremental {
			line = fmt.Sprintf("%s: %d changes since the last sync, %d written (%s)", p.Connection, p.Seen, p.Changed, p.Elapsed.Round(100*time.Millisecond))
		}
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
