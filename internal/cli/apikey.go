package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/server"
)

func newAPIKeyCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "apikey",
		Short: "Make, list and revoke API keys for machine access to rotor",
		Long: `API keys let automation call rotor's API without an Entra token: each is
scoped to one organization and one role (viewer, operator or admin), expires,
and can be revoked at once. rotor keeps only a hash of a key, so a key is
shown once, when it is made. docs/api-auth.md says how callers present one.`,
		Args: groupArgs,
		RunE: showHelp,
	}
	keys.AddCommand(newAPIKeyCreateCmd(), newAPIKeyListCmd(), newAPIKeyRevokeCmd())
	return keys
}

func newAPIKeyCreateCmd() *cobra.Command {
	var (
		cf      configFlag
		rf      remoteFlag
		role    string
		name    string
		expires string
	)
	c := &cobra.Command{
		Use:   "create --role ROLE --name NAME [--expires 90d]",
		Short: "Make an API key and print it once",
		Long: `Make an API key for the configuration's organization with the given role:
viewer reads, operator also syncs and rotates, admin also manages API keys.
The key is printed once on standard output; store it where its user will read
it (a pipeline secret, a Key Vault secret). rotor keeps only its hash and
cannot show it again: a lost key is revoked and replaced.`,
		Example: `  rotor apikey create --role operator --name ci-deploy
  rotor apikey create --role viewer --name dashboards --expires 30d
  rotor apikey create --role operator --name ci-deploy --server https://rotor.example.com   # as a signed-in admin`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--name is required: say what the key is for")}
			}
			r, err := app.ParseRole(role)
			if err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--role: %w", err)}
			}
			var life time.Duration
			if expires != "" {
				if life, err = config.ParseDuration(expires); err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--expires: %w", err)}
				}
				if life <= 0 {
					return &usageError{cmd: cmd.CommandPath(), err: errors.New("--expires must be positive")}
				}
			}
			var (
				row app.APIKeyRow
				key string
				org domain.OrgID
			)
			if rf.set() {
				c, err := rf.client(cmd.Context())
				if err != nil {
					return err
				}
				if row, key, err = c.createAPIKey(cmd.Context(), name, r, expires); err != nil {
					return err
				}
				org = domain.OrgID(c.org)
			} else {
				srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "apikey")
				if err != nil {
					return err
				}
				defer srv.Close()
				sc := rf.localScope(srv)
				made, err := srv.App().CreateAPIKey(cmd.Context(), sc, app.NewAPIKey{Name: name, Role: r, Lifetime: life})
				if err != nil {
					return explainError(err)
				}
				row, key, org = made.APIKeyRow, made.Key.Reveal(), sc.Org
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			fmt.Fprintf(cmd.ErrOrStderr(), "API key %s (%s, role %s in %s) expires %s.\nThis is the only time it is shown: store it now.\n",
				row.ID, row.Name, row.Role, org, row.ExpiresAt.Local().Format("2006-01-02 15:04"))
			return nil
		},
	}
	cf.register(c)
	rf.register(c)
	c.Flags().StringVar(&role, "role", "", "viewer, operator or admin (required)")
	c.Flags().StringVar(&name, "name", "", "what the key is for, e.g. ci-deploy (required)")
	c.Flags().StringVar(&expires, "expires", "", "how long the key works, e.g. 30d or 12h (default 90d, at most 730d)")
	return c
}

func newAPIKeyListCmd() *cobra.Command {
	var (
		cf  configFlag
		rf  remoteFlag
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never the keys themselves)",
		Long: `List the organization's API keys, oldest first: id, name, role, when each
was made and by whom, when it expires, and its status (active, expired or
revoked). The keys themselves are not kept, so they are never shown.`,
		Example: `  rotor apikey list
  rotor apikey list -o json
  rotor apikey list --server https://rotor.example.com`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := readWith(cmd, &cf, &rf, &out, (*remote).apiKeys, func(srv *server.Server, sc app.Scope) ([]app.APIKeyRow, error) {
				return srv.App().ListAPIKeys(cmd.Context(), sc)
			})
			if err != nil {
				return err
			}
			return printRows(cmd, &out, rows, "ID\tNAME\tROLE\tSTATUS\tCREATED\tEXPIRES\tCREATED BY", func(k app.APIKeyRow) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", k.ID, k.Name, k.Role, k.Status,
					orDash(k.CreatedAt, "2006-01-02 15:04"), orDash(k.ExpiresAt, "2006-01-02 15:04"), k.CreatedBy)
			})
		},
	}
	cf.register(c)
	rf.register(c)
	out.register(c)
	return c
}

func newAPIKeyRevokeCmd() *cobra.Command {
	var (
		cf configFlag
		rf remoteFlag
	)
	c := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key at once",
		Long: `Revoke an API key by its id (as 'rotor apikey list' shows it): every rotor
process refuses it from its next request on. Revoking a revoked key succeeds.`,
		Example: `  rotor apikey revoke 7hq2m4c5d6e7f2ab
  rotor apikey revoke 7hq2m4c5d6e7f2ab --server https://rotor.example.com`,
		Args: exactArgs(1, "ID (a key id, as 'rotor apikey list' shows it)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rf.set() {
				c, err := rf.client(cmd.Context())
				if err != nil {
					return err
				}
				if err := c.revokeAPIKey(cmd.Context(), args[0]); err != nil {
					if isNotFound(err) {
						return fmt.Errorf("no API key %q in organization %s: list them with 'rotor apikey list --server %s'", args[0], c.org, c.server)
					}
					return err
				}
			} else {
				srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "apikey")
				if err != nil {
					return err
				}
				defer srv.Close()
				if err := srv.App().RevokeAPIKey(cmd.Context(), rf.localScope(srv), args[0]); err != nil {
					return explainError(err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "API key %s revoked\n", args[0])
			return nil
		},
	}
	cf.register(c)
	rf.register(c)
	return c
}
