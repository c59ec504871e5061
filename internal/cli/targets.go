package cli

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/rotation"
)

func newTargetsCmd() *cobra.Command {
	targets := &cobra.Command{
		Use:   "targets",
		Short: "Look at and move where an application's sinks deliver",
		Long: `Each sink's target (a Key Vault secret's name, …) is pinned when rotor first
delivers to it, so renaming an application in Entra, or editing a name
template, never moves the place its consumers read. 'targets list' shows the
pinned target beside what the configuration names today; 'targets move'
moves a renamed one explicitly.`,
		Args: groupArgs, RunE: showHelp,
	}
	var (
		cf    configFlag
		out   outputFlag
		cfm   configFlag
		sinkN int
	)
	list := &cobra.Command{
		Use:     "list APP",
		Short:   "Where each sink of APP's policy delivers, and whether a rename moved it",
		Example: "  rotor targets list web-storefront\n  rotor targets list web-storefront -o json",
		Args:    exactArgs(1, "APP (a display name, app id or object id)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := cf.openReading(cmd, &out)
			if err != nil {
				return err
			}
			defer srv.Close()
			res, err := srv.App().Targets(cmd.Context(), scope(srv), args[0])
			if err != nil {
				return explainError(err)
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			return printRows(cmd, &out, res.Targets, "SINK\tTYPE\tDELIVERS TO\tPINNED\tCONFIGURATION NAMES\tNOTE", func(v rotation.TargetView) string {
				note := "-"
				switch {
				case v.Moved:
					note = "renamed: 'rotor targets move' moves it"
				case !v.Previous.IsZero() && v.RetireOldAt.IsZero():
					note = fmt.Sprintf("moved; %s still updated until the next rotation's overlap has passed", v.Previous)
				case !v.Previous.IsZero():
					note = fmt.Sprintf("moved; %s still updated until %s", v.Previous, when(v.RetireOldAt))
				}
				return fmt.Sprintf("#%d\t%s\t%s\t%s\t%s\t%s", v.Index+1, v.Type, v.Target, yesNo(v.Pinned), v.Today, note)
			})
		},
	}
	cf.register(list)
	out.register(list)

	move := &cobra.Command{
		Use:   "move APP --sink N",
		Short: "Move a renamed sink target to what the configuration names today",
		Long: `Move sink N (1-based, in the policy's order) of APP to the target the
configuration resolves to today. New credentials go there from now on; the
previous target keeps receiving them until the next rotation's overlap has
passed, so consumers still reading it have that long to move. The new target
is empty until that rotation ('rotor rotate APP' runs one now). A target that
has not been renamed stays where it is.`,
		Example: "  rotor targets move web-storefront --sink 1",
		Args:    exactArgs(1, "APP (a display name, app id or object id)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sinkN < 1 {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--sink N is required: the sink's position in the policy, from 1")}
			}
			srv, err := cfm.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "targets")
			if err != nil {
				return err
			}
			defer srv.Close()
			v, err := srv.App().MoveTarget(cmd.Context(), scope(srv), args[0], sinkN-1)
			var inv *app.InvalidError
			if errors.As(err, &inv) {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--%s: %s", inv.Field, inv.Message)}
			}
			if err != nil {
				return explainError(err)
			}
			w := cmd.OutOrStdout()
			if v.Previous.IsZero() {
				fmt.Fprintf(w, "Sink #%d already delivers to %s, which the configuration names; nothing to move.\n", v.Index+1, v.Target)
				return nil
			}
			fmt.Fprintf(w, "Sink #%d now delivers to %s.\n%s keeps receiving new credentials until the next rotation's overlap has passed; move its consumers before then.\nThe new target is empty until that rotation: run 'rotor rotate %s' to fill both now.\n",
				v.Index+1, v.Target, v.Previous, args[0])
			return nil
		},
	}
	cfm.register(move)
	move.Flags().IntVar(&sinkN, "sink", 0, "the sink's position in the policy, from 1")
	targets.AddCommand(list, move)
	return targets
}
