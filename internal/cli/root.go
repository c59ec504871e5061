// Package cli is rotor's command line: one cobra command per verb, each a
// thin layer over internal/app, where the use cases and their rules live.
// The CLI keeps flags, formatting and narration: listings print a table or,
// with --output json, the application layer's result types as JSON; errors
// print one clear line, never a stack.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Execute runs the CLI with args and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	stdout, stderr = safeWriter{stdout}, safeWriter{stderr}
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "rotor: %v\nRun '%s --help' for usage.\n", err, ue.cmd)
			return 2
		}
		var ee *exitError
		if errors.As(err, &ee) {
			fmt.Fprintf(stderr, "rotor: %v\n", err)
			return ee.code
		}
		fmt.Fprintf(stderr, "rotor: %v\n", err)
		return 1
	}
	return 0
}

// groupArgs validates the arguments of a command that only groups
// subcommands (rotor, rotor apps, rotor runs): anything left over is an
// unknown subcommand, a usage error with cobra's suggestions. Without it
// cobra reports an untyped error for the root and prints help with exit 0
// for the groups.
func groupArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return &usageError{cmd: c.CommandPath(), err: errors.New(msg)}
}

// showHelp is the RunE of a group: with no subcommand, print its help.
func showHelp(c *cobra.Command, _ []string) error { return c.Help() }

type usageError struct {
	cmd string
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitError is a failure that exits with its own code ('rotor audit
// verify' exits 3 on a trail that is not intact, so that a script tells
// it from 1, "could not check").
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "rotor",
		Short: "Keep Entra ID application credentials fresh",
		Long: `rotor rotates Microsoft Entra ID application client secrets before they
expire, puts each new value everywhere it is used (Key Vault, …), proves it
works by getting a token with it, and only then retires the old one.

Start with 'rotor demo' to watch it work against the built-in Azure
simulator, then write a rotor.yaml (docs/configuration.md) and run
'rotor serve --config rotor.yaml'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          groupArgs,
		RunE:          showHelp,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{cmd: c.CommandPath(), err: err}
	})
	root.AddCommand(
		newSimCmd(),
		newServeCmd(),
		newDemoCmd(),
		newSyncCmd(),
		newAppsCmd(),
		newExplainCmd(),
		newRotateCmd(),
		newRunsCmd(),
		newPoliciesCmd(),
		newConnectionsCmd(),
		newTargetsCmd(),
		newMigrateCmd(),
		newBackupCmd(),
		newAuditCmd(),
		newAPIKeyCmd(),
		newVaultsCmd(),
		newSinksCmd(),
		newPlanCmd(),
		newLoginCmd(),
		newLogoutCmd(),
	)
	return root
}

// outputFlag adds --output table|json to a listing command.
type outputFlag struct{ format string }

func (o *outputFlag) register(c *cobra.Command) {
	c.Flags().StringVarP(&o.format, "output", "o", "table", "output format: table or json")
}

func (o *outputFlag) validate(c *cobra.Command) error {
	if o.format != "table" && o.format != "json" {
		return &usageError{cmd: c.CommandPath(), err: fmt.Errorf("--output must be table or json, not %q", o.format)}
	}
	return nil
}

func (o *outputFlag) json() bool { return o.format == "json" }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// printRows prints a listing: JSON with --output json, else a table with
// header and one line per row (tab-separated cells).
func printRows[T any](cmd *cobra.Command, out *outputFlag, rows []T, header string, line func(T) string) error {
	if out.json() {
		return writeJSON(cmd.OutOrStdout(), rows)
	}
	tw := newTable(cmd.OutOrStdout())
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, line(r))
	}
	return tw.Flush()
}

// orDash formats t, or "-" when it is zero.
func orDash(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(layout)
}
