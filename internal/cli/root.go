// Package cli is rotor's command line: one cobra command per verb, each a
// thin layer over the packages that do the work. Listings print a table or,
// with --output json, JSON; errors print one clear line, never a stack.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Execute runs the CLI with args and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		var ue *usageError
		// cobra reports an unknown subcommand of the root with an untyped
		// error ("unknown command \"x\" for \"rotor\"", maybe with
		// suggestions); it is a usage error like an unknown flag.
		if m := unknownCommand.FindStringSubmatch(err.Error()); m != nil {
			err = &usageError{cmd: m[1], err: errors.New(strings.TrimRight(err.Error(), "\n"))}
		}
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "rotor: %v\nRun '%s --help' for usage.\n", err, ue.cmd)
			return 2
		}
		fmt.Fprintf(stderr, "rotor: %v\n", err)
		return 1
	}
	return 0
}

// unknownCommand matches cobra's error for an unknown subcommand and
// captures the command it was given to.
var unknownCommand = regexp.MustCompile(`^unknown command "[^"]*" for "([^"]+)"`)

type usageError struct {
	cmd string
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

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
