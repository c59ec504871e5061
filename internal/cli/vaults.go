package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
)

func newVaultsCmd() *cobra.Command {
	vaults := &cobra.Command{
		Use:   "vaults",
		Short: "Find the Key Vaults a connection's identity can see, and their secrets' names",
		Long: `Where can an application's secret go? 'vaults list' asks Azure Resource
Manager, as the connection's identity, for the Key Vaults it can see (a role
on the vault, its resource group or its subscription; Reader is enough).
'vaults secrets' lists a vault's secrets by name, saying which ones rotor
manages (its managed-by tag): never a value. Both are what the application
page's vault picker shows.`,
		Args: groupArgs, RunE: showHelp,
	}
	var (
		cf, cfs   configFlag
		out, outs outputFlag
		conn      string
		connS     string
		vault     string
	)
	list := &cobra.Command{
		Use:     "list --connection NAME",
		Short:   "The Key Vaults the connection's identity can see",
		Example: "  rotor vaults list --connection contoso\n  rotor vaults list --connection contoso -o json",
		Args:    exactArgs(0, "no arguments (flags only)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if conn == "" {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--connection NAME is required")}
			}
			srv, err := cf.openReading(cmd, &out)
			if err != nil {
				return err
			}
			defer srv.Close()
			list, err := srv.App().ListVaults(cmd.Context(), scope(srv), conn)
			if err != nil {
				return vaultsError(err)
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			return printRows(cmd, &out, list, "NAME\tURL\tSUBSCRIPTION\tRESOURCE GROUP\tLOCATION", func(v app.Vault) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", v.Name, v.URL, v.Subscription, v.ResourceGroup, v.Location)
			})
		},
	}
	cf.register(list)
	out.register(list)
	list.Flags().StringVar(&conn, "connection", "", "the connection whose identity looks")

	secrets := &cobra.Command{
		Use:   "secrets --connection NAME --vault URL",
		Short: "The secrets of a vault the connection's identity can see, by name",
		Long: `The names of the vault's secrets, whether each is rotor's (it carries the
managed-by=rotor tag; the Key Vault sink refuses to overwrite any other unless
the sink sets adopt: true), and when it was last written. Never a value: the
listing needs the secrets list permission only. The vault must be one
'vaults list' shows for the connection.`,
		Example: "  rotor vaults secrets --connection contoso --vault https://kv-contoso.vault.azure.net/",
		Args:    exactArgs(0, "no arguments (flags only)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if connS == "" || vault == "" {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--connection NAME and --vault URL are required")}
			}
			srv, err := cfs.openReading(cmd, &outs)
			if err != nil {
				return err
			}
			defer srv.Close()
			list, err := srv.App().ListVaultSecrets(cmd.Context(), scope(srv), connS, vault)
			if err != nil {
				return vaultsError(err)
			}
			if outs.json() {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			return printRows(cmd, &outs, list, "NAME\tROTOR'S\tENABLED\tUPDATED", func(s app.VaultSecret) string {
				mine := "no: rotor will not overwrite it unless the sink sets adopt: true"
				if s.ManagedByRotor {
					mine = "yes"
					if s.AppID != "" {
						mine += " (application " + s.AppID + ")"
					}
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s", s.Name, mine, yesNo(s.Enabled), when(s.Updated))
			})
		},
	}
	cfs.register(secrets)
	outs.register(secrets)
	secrets.Flags().StringVar(&connS, "connection", "", "the connection whose identity looks")
	secrets.Flags().StringVar(&vault, "vault", "", "the vault's URL, as 'vaults list' shows it")
	vaults.AddCommand(list, secrets)
	return vaults
}

// vaultsError says what to do about a vault listing's failure.
func vaultsError(err error) error {
	var nf *app.NotFoundError
	switch {
	case errors.As(err, &nf) && nf.Kind == "connection":
		return fmt.Errorf("no connection %q: list them with 'rotor connections list'", nf.Ref)
	case errors.As(err, &nf):
		return fmt.Errorf("%s is not a vault the connection's identity can see: list them with 'rotor vaults list'", nf.Ref)
	}
	return explainError(err)
}
