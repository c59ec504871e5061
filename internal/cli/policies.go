package cli

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
)

func newPoliciesCmd() *cobra.Command {
	pols := &cobra.Command{Use: "policies", Short: "Look at the rotation policies", Args: groupArgs, RunE: showHelp}
	var (
		cf  configFlag
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
  rotor policies list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := cf.openReading(cmd, &out)
			if err != nil {
				return err
			}
			defer srv.Close()
			rows, err := srv.App().ListPolicies(cmd.Context(), scope(srv))
			if err != nil {
				return explainError(err)
			}
			return printRows(cmd, &out, rows, "NAME\tCONNECTION\tAPPLICATIONS\tENABLED\tKIND\tLIFETIME\tRENEW BEFORE\tOVERLAP\tSINKS", func(p app.PolicyRow) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", p.Name, p.Connection, p.Selector, yesNo(p.Enabled), p.Kind,
					p.Lifetime, p.RenewBefore, p.Overlap, cmp.Or(strings.Join(p.Sinks, ","), "-"))
			})
		},
	}
	cf.register(list)
	out.register(list)
	pols.AddCommand(list)
	return pols
}

func newConnectionsCmd() *cobra.Command {
	conns := &cobra.Command{Use: "connections", Short: "Look at the connections to Entra tenants", Args: groupArgs, RunE: showHelp}
	var (
		cf  configFlag
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
  rotor connections list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := cf.openReading(cmd, &out)
			if err != nil {
				return err
			}
			defer srv.Close()
			rows, err := srv.App().ListConnections(cmd.Context(), scope(srv))
			if err != nil {
				return explainError(err)
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
	out.register(list)

	var (
		tcf  configFlag
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
  rotor connections test contoso -o json`,
		Args: exactArgs(1, "NAME (a connection's name)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := tcf.openReading(cmd, &tout)
			if err != nil {
				return err
			}
			defer srv.Close()
			in, err := srv.App().TestConnection(cmd.Context(), scope(srv), args[0])
			if err != nil {
				var nf *app.NotFoundError
				if errors.As(err, &nf) {
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
	tout.register(test)
	conns.AddCommand(list, test)
	return conns
}

// whenOrDash formats t for a table cell in UTC, or "-" when it is zero.
func whenOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
