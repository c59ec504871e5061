package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/api"
	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/sink"
)

func newSinksCmd() *cobra.Command {
	sinks := &cobra.Command{
		Use:   "sinks",
		Short: "Find what a sink's settings could be (service connections, repositories, projects …)",
		Long: `Before writing a sink into a policy, ask the service what exists: the
service connections of an Azure DevOps project, the repositories of an owner,
the Deployments of a namespace. 'sinks discover TYPE' says which settings the
sink type can list; 'sinks discover TYPE KEY' lists one, given the settings
chosen so far (--set, as in rotor.yaml; tokens only as references such as
{env: NAME}). It reads only, and never a secret value: what the application
page's pickers show.`,
		Args: groupArgs, RunE: showHelp,
	}
	var (
		cf   configFlag
		rf   remoteFlag
		out  outputFlag
		conn string
		sets []string
	)
	discover := &cobra.Command{
		Use:   "discover TYPE [KEY] [--set KEY=VALUE]... [--connection NAME]",
		Short: "List the choices of one setting of a sink type",
		Example: `  rotor sinks discover adoconnection
  rotor sinks discover adoconnection project --set organization_url=https://dev.azure.com/contoso --set 'pat={env: ADO_PAT}'
  rotor sinks discover kubernetes secret --set kubeconfig=~/.kube/config --set namespace=payments -o json`,
		Args: rangeArgs(1, 2, "TYPE and optionally KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := app.DiscoverSinkRequest{Type: args[0], Connection: conn, Settings: map[string]any{}}
			if len(args) == 2 {
				req.Key = args[1]
			}
			for _, kv := range sets {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--set %q: want KEY=VALUE, e.g. --set namespace=payments", kv)}
				}
				var val any
				if err := yaml.Unmarshal([]byte(v), &val); err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--set %s: the value is not YAML: %v", k, err)}
				}
				req.Settings[k] = val
			}
			res, err := readWith(cmd, &cf, &rf, &out, func(r *remote, ctx context.Context) (*app.SinkChoices, error) {
				return r.discoverSink(ctx, req)
			}, func(srv *server.Server, sc app.Scope) (*app.SinkChoices, error) {
				return srv.App().DiscoverSink(cmd.Context(), sc, req)
			})
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			if req.Key == "" {
				if len(res.Keys) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "A %s sink lists no choices; write its settings as docs/sinks/%s.md describes.\n", res.Type, res.Type)
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "A %s sink can list choices for: %s\nAsk for one: rotor sinks discover %s %s\n", res.Type, strings.Join(res.Keys, ", "), res.Type, res.Keys[0])
				return nil
			}
			return printRows(cmd, &out, res.Choices, "VALUE\tLABEL\tDETAIL", func(c sink.Choice) string {
				return fmt.Sprintf("%s\t%s\t%s", c.Value, c.Label, c.Detail)
			})
		},
	}
	cf.register(discover)
	rf.register(discover)
	out.register(discover)
	discover.Flags().StringVar(&conn, "connection", "", "the organization's connection the sink acts as (for sinks that act as one)")
	discover.Flags().StringArrayVar(&sets, "set", nil, "a setting chosen so far, KEY=VALUE (the value is YAML: --set 'pat={env: ADO_PAT}')")
	sinks.AddCommand(discover)
	return sinks
}

// discoverSink asks the server for a sink setting's choices.
func (r *remote) discoverSink(ctx context.Context, req app.DiscoverSinkRequest) (*app.SinkChoices, error) {
	in := map[string]any{"key": req.Key, "connection": req.Connection, "settings": req.Settings}
	var got api.SinkChoices
	if err := r.do(ctx, http.MethodPost, r.orgPath("sinks", req.Type, "discover"), nil, in, &got); err != nil {
		return nil, err
	}
	out := &app.SinkChoices{Type: got.Type, Keys: got.Keys, Key: got.Key, Choices: make([]sink.Choice, 0, len(got.Choices))}
	for _, c := range got.Choices {
		out.Choices = append(out.Choices, sink.Choice{Value: c.Value, Label: c.Label, Detail: c.Detail})
	}
	return out, nil
}
