package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/server"
)

func newPlanCmd() *cobra.Command {
	var (
		cf  configFlag
		rf  remoteFlag
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "plan",
		Short: "List what the planner would rotate now, and why (a dry run)",
		Long: `Plan runs the planner's checks over every application and lists those it
would rotate now, in name order: the policy that governs each, what makes it
due (adoption, due, expired, …) and the planner's reason ('rotor serve'
enqueues them earliest deadline first). Nothing is changed; 'rotor serve'
rotates them within its plan interval, 'rotor rotate APP' at once.
'rotor explain APP' gives the whole chain of checks for one.`,
		Example: `  rotor plan
  rotor plan -o json
  rotor plan --server https://rotor.example.com`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := readWith(cmd, &cf, &rf, &out, (*remote).plan, func(srv *server.Server, sc app.Scope) ([]app.DueApplication, error) {
				// Page by page, as a remote plan is read: the same order, and
				// rotor never holds the whole plan's decisions at once.
				var all []app.DueApplication
				req := app.DuePageRequest{Limit: app.MaxPageSize}
				for {
					page, err := srv.App().DuePageOf(cmd.Context(), sc, req)
					if err != nil {
						return nil, err
					}
					all = append(all, page.Rows...)
					if page.Next == "" {
						return all, nil
					}
					req.Cursor = page.Next
				}
			})
			if err != nil {
				return err
			}
			err = printRows(cmd, &out, rows, "NAME\tOBJECT ID\tPOLICY\tTRIGGER\tWHY", func(d app.DueApplication) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", d.Application.Name, d.Application.ObjectID, d.Policy, d.Decision.Trigger, d.Decision.Message)
			})
			if err != nil || out.json() {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "nothing is due now")
			}
			return nil
		},
	}
	cf.register(c)
	rf.register(c)
	out.register(c)
	return c
}
