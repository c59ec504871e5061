package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/server"
)

func newPoliciesCmd() *cobra.Command {
	pols := &cobra.Command{Use: "policies", Short: "Look at the rotation policies", Args: groupArgs, RunE: showHelp}
	var (
		cf  configFlag
		rf  remoteFlag
		out outputFlag
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the policies, in the order that decides which one governs an application",
		Long: `List the rotation policies: which applications each selects, through which
connection it rotates, the lifetimes and thresholds, and the sinks (by type)
each new secret is delivered to. An application is governed by the first
policy that selects it; 'rotor explain APP' says which one that is.`,
		Example: `  rotor policies list
  rotor policies list -o json
  rotor policies list --server https://rotor.example.com`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := readWith(cmd, &cf, &rf, &out, (*remote).policies, func(srv *server.Server, sc app.Scope) ([]app.PolicyRow, error) {
				return srv.App().ListPolicies(cmd.Context(), sc)
			})
			if err != nil {
				return err
			}
			return printRows(cmd, &out, rows, "NAME\tCONNECTION\tAPPLICATIONS\tENABLED\tKIND\tLIFETIME\tRENEW BEFORE\tOVERLAP\tSINKS", func(p app.PolicyRow) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", p.Name, p.Connection, p.Selector, yesNo(p.Enabled), p.Kind,
					p.Lifetime, p.RenewBefore, p.Overlap, cmp.Or(strings.Join(p.Sinks, ","), "-"))
			})
		},
	}
	cf.register(list)
	rf.register(list)
	out.register(list)

	var (
		scf  configFlag
		srf  remoteFlag
		sout outputFlag
	)
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one policy",
		Example: `  rotor policies show owned
  rotor policies show owned -o json --server https://rotor.example.com`,
		Args: exactArgs(1, "NAME (a policy's name)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := readWith(cmd, &scf, &srf, &sout, func(r *remote, ctx context.Context) (*app.PolicyRow, error) { return r.policy(ctx, args[0]) },
				func(srv *server.Server, sc app.Scope) (*app.PolicyRow, error) {
					return srv.App().GetPolicy(cmd.Context(), sc, args[0])
				})
			if err != nil {
				return err
			}
			if sout.json() {
				return writeJSON(cmd.OutOrStdout(), p)
			}
			tw := newTable(cmd.OutOrStdout())
			for _, kv := range [][2]string{{"name", p.Name}, {"connection", p.Connection}, {"applications", p.Selector}, {"enabled", yesNo(p.Enabled)},
				{"kind", string(p.Kind)}, {"lifetime", p.Lifetime}, {"renew before", p.RenewBefore}, {"overlap", p.Overlap},
				{"notify before", cmp.Or(p.NotifyBefore, "-")}, {"verify", yesNo(p.Verify)}, {"retire unmanaged", yesNo(p.RetireUnmanaged)},
				{"sinks", cmp.Or(strings.Join(p.Sinks, ", "), "-")}} {
				fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
			}
			if c := p.Certificate; c != nil {
				for _, kv := range [][2]string{{"certificate key", c.KeyType}, {"certificate subject", c.Subject},
					{"certificate dns names", cmp.Or(strings.Join(c.DNSNames, ", "), "-")}, {"key source", c.KeySource},
					{"key vault", cmp.Or(c.VaultURL, "-")}, {"bootstrap certificate", yesNo(c.Bootstrap)}} {
					fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
				}
			}
			return tw.Flush()
		},
	}
	scf.register(show)
	srf.register(show)
	sout.register(show)
	pols.AddCommand(list, show)
	return pols
}

// readWith runs a reading command's use case: remote's with --server,
// else local's on the store, the errors of each said for the command
// line.
func readWith[T any](cmd *cobra.Command, cf *configFlag, rf *remoteFlag, out *outputFlag, remoteRead func(*remote, context.Context) (T, error),
	localRead func(*server.Server, app.Scope) (T, error)) (T, error) {
	var zero T
	if err := out.validate(cmd); err != nil {
		return zero, err
	}
	if rf.set() {
		r, err := rf.client(cmd.Context())
		if err != nil {
			return zero, err
		}
		return remoteRead(r, cmd.Context())
	}
	srv, err := cf.openReading(cmd, out)
	if err != nil {
		return zero, err
	}
	defer srv.Close()
	v, err := localRead(srv, rf.localScope(srv))
	if err != nil {
		return zero, explainError(err)
	}
	return v, nil
}

func newConnectionsCmd() *cobra.Command {
	conns := &cobra.Command{Use: "connections", Short: "Look at the connections to Entra tenants", Args: groupArgs, RunE: showHelp}
	var (
		cf  configFlag
		rf  remoteFlag
		out outputFlag
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the connections: tenant, purpose, identity and health (never a secret)",
		Long: `List how rotor reaches each Entra tenant: the tenant id, the purpose (rotation
changes credentials of the applications its identity owns; read only reads),
the cloud, how the identity signs in, and when any rotor process last signed
it in or synced through it (LAST OK) and last failed to (LAST FAILURE, with
Entra's AADSTS code; FAILING when no success came after it). -o json adds
the failure's text and the Graph roles the last token carried. Secrets, and
where they are kept, are never shown.`,
		Example: `  rotor connections list
  rotor connections list -o json
  rotor connections list --server https://rotor.example.com`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := readWith(cmd, &cf, &rf, &out, (*remote).connections, func(srv *server.Server, sc app.Scope) ([]app.Connection, error) {
				return srv.App().ListConnections(cmd.Context(), sc)
			})
			if err != nil {
				return err
			}
			return printRows(cmd, &out, rows, "NAME\tTENANT\tPURPOSE\tCLOUD\tIDENTITY\tCLIENT ID\tLAST OK\tLAST FAILURE", func(c app.Connection) string {
				failure := whenOrDash(c.LastFailure)
				if c.AADSTS != 0 {
					failure += fmt.Sprintf(" (AADSTS%d)", c.AADSTS)
				}
				if c.Failing {
					failure += " FAILING"
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", c.Name, c.TenantID, c.Purpose, c.Cloud, c.Identity, cmp.Or(c.ClientID, "-"),
					whenOrDash(c.LastSuccess), failure)
			})
		},
	}
	cf.register(list)
	rf.register(list)
	out.register(list)

	var (
		scf  configFlag
		srf  remoteFlag
		sout outputFlag
	)
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one connection with its health (never a secret)",
		Example: `  rotor connections show contoso
  rotor connections show contoso -o json --server https://rotor.example.com`,
		Args: exactArgs(1, "NAME (a connection's name)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := readWith(cmd, &scf, &srf, &sout, func(r *remote, ctx context.Context) (*app.Connection, error) { return r.connection(ctx, args[0]) },
				func(srv *server.Server, sc app.Scope) (*app.Connection, error) {
					return srv.App().GetConnection(cmd.Context(), sc, args[0])
				})
			if err != nil {
				var nf *app.NotFoundError
				if errors.As(err, &nf) || isNotFound(err) {
					return fmt.Errorf("no connection %q: list them with 'rotor connections list'", args[0])
				}
				return err
			}
			if sout.json() {
				return writeJSON(cmd.OutOrStdout(), c)
			}
			failure := whenOrDash(c.LastFailure)
			if c.Failure != "" {
				failure += " (" + c.Failure + ")"
			}
			tw := newTable(cmd.OutOrStdout())
			for _, kv := range [][2]string{{"name", c.Name}, {"tenant", c.TenantID}, {"purpose", c.Purpose}, {"cloud", c.Cloud},
				{"identity", c.Identity}, {"client id", cmp.Or(c.ClientID, "-")}, {"auxiliary tenants", cmp.Or(strings.Join(c.AuxiliaryTenants, ", "), "-")},
				{"provisioned", yesNo(c.Provisioned)}, {"last ok", whenOrDash(c.LastSuccess)}, {"last failure", failure}, {"failing", yesNo(c.Failing)},
				{"roles", cmp.Or(strings.Join(c.Roles, ", "), "-")}} {
				fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
			}
			return tw.Flush()
		},
	}
	scf.register(show)
	srf.register(show)
	sout.register(show)

	var (
		tcf  configFlag
		trf  remoteFlag
		tout outputFlag
	)
	test := &cobra.Command{
		Use:   "test NAME",
		Short: "Sign a connection in now and show who it is and what its token may do",
		Long: `Sign the connection NAME in with its identity, as rotor would, and show the
identity's app id and object id, the tenant, and the Graph application roles
its token carries (a rotation connection needs Application.ReadWrite.OwnedBy,
a read connection Application.Read.All). A refusal shows Entra's AADSTS code
and exits 1. Secrets are never shown.`,
		Example: `  rotor connections test contoso
  rotor connections test contoso -o json
  rotor connections test contoso --server https://rotor.example.com`,
		Args: exactArgs(1, "NAME (a connection's name)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tout.validate(cmd); err != nil {
				return err
			}
			var in app.SignIn
			var err error
			if trf.set() {
				r, cerr := trf.client(cmd.Context())
				if cerr != nil {
					return cerr
				}
				in, err = r.testConnection(cmd.Context(), args[0])
				var re *remoteError
				if errors.As(err, &re) && re.status != http.StatusNotFound {
					return err
				}
			} else {
				srv, oerr := tcf.openReading(cmd, &tout)
				if oerr != nil {
					return oerr
				}
				defer srv.Close()
				in, err = srv.App().TestConnection(cmd.Context(), trf.localScope(srv), args[0])
			}
			if err != nil {
				var nf *app.NotFoundError
				if errors.As(err, &nf) || isNotFound(err) {
					return fmt.Errorf("no connection %q: list them with 'rotor connections list'", args[0])
				}
				return fmt.Errorf("connection %s cannot sign in: %w", args[0], err)
			}
			if tout.json() {
				return writeJSON(cmd.OutOrStdout(), in)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Connection %s signs in.\n  tenant     %s\n  app id     %s\n  object id  %s\n  roles      %s\n",
				args[0], in.TenantID, cmp.Or(in.AppID, "-"), cmp.Or(in.ObjectID, "-"), cmp.Or(strings.Join(in.Roles, ", "), "(none)"))
			return nil
		},
	}
	tcf.register(test)
	trf.register(test)
	tout.register(test)
	conns.AddCommand(list, show, test)
	return conns
}

// whenOrDash formats t for a table cell in UTC, or "-" when it is zero.
func whenOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
