package cli

import (
	"cmp"
	"fmt"
	"strings"

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
		Short: "List the connections: tenant, purpose, cloud and identity (never a secret)",
		Long: `List how rotor reaches each Entra tenant: the tenant id, the purpose (rotation
changes credentials of the applications its identity owns; read only reads),
the cloud, and how the identity signs in. Secrets, and where they are kept,
are never shown.`,
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
			return printRows(cmd, &out, rows, "NAME\tTENANT\tPURPOSE\tCLOUD\tIDENTITY\tCLIENT ID", func(c app.Connection) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", c.Name, c.TenantID, c.Purpose, c.Cloud, c.Identity, cmp.Or(c.ClientID, "-"))
			})
		},
	}
	cf.register(list)
	out.register(list)
	conns.AddCommand(list)
	return conns
}
