package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/simfile"
)

func newSimCmd() *cobra.Command {
	var (
		state, addr, seed string
		faults            sim.FaultConfig
		replication       time.Duration
		verbose           bool
	)
	c := &cobra.Command{
		Use:   "sim --state DIR [--addr 127.0.0.1:PORT] [--seed SPEC]",
		Short: "Run the local Azure simulator (Entra ID, Graph, Key Vault)",
		Long: `Run rotor's Azure simulator: Entra ID's token endpoint, OpenID discovery and
managed identity endpoint, Microsoft Graph v1.0 applications, and Key Vault
secrets, over HTTPS on loopback with its own CA. Microsoft's SDK clients work
against it unchanged.

When it is ready it writes DIR/sim.json: the endpoints, the CA file, and each
tenant's rotation identity and key vaults. Point clients at it with only that
file. The control API's admin token is in DIR/admin-token.

Seeds:
  demo                                  two realistic tenants, ~40 apps each (default)
  apps=N,tenants=T,expiring=DURATION    N apps per tenant, all owned by the rotation
                                        identity, each with a secret expiring within
                                        DURATION; add replication=DURATION for Entra's
                                        replication delay (0 by default), owned=M to
                                        have the rotation identity own only M of them

Key Vault clients must set DisableChallengeResourceVerification: the simulated
vaults are served on loopback, not under vault.azure.net.

It runs until interrupted (Ctrl-C or SIGTERM).`,
		Example: `  rotor sim --state ./sim
  rotor sim --state ./sim --seed apps=100000,tenants=1,expiring=24h --latency 20ms --throttle`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--state DIR is required: the directory where sim.json is written")}
			}
			abs, err := filepath.Abs(state)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(abs, 0o700); err != nil {
				return fmt.Errorf("create state directory: %w", err)
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			opts := sim.Options{StateDir: abs, Addr: addr, Seed: seed, Logger: logger, Faults: faults}
			if cmd.Flags().Changed("replication-delay") {
				opts.ReplicationDelay = &replication
			}
			srv, err := sim.New(opts)
			if err != nil {
				return err
			}
			if err := srv.Start(cmd.Context()); err != nil {
				return err
			}
			info := srv.Info()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "rotor sim: ready — %s\n", filepath.Join(abs, simfile.FileName))
			fmt.Fprintf(out, "  authority  %s\n  graph      %s\n", info.AuthorityHost, info.GraphURL)
			for _, t := range info.Tenants {
				fmt.Fprintf(out, "  tenant     %s (%s)\n", t.Name, t.ID)
				for _, v := range t.KeyVaults {
					fmt.Fprintf(out, "    vault    %s %s\n", v.Name, v.URL)
				}
			}
			fmt.Fprintln(out, "Press Ctrl-C to stop.")
			<-cmd.Context().Done()
			return srv.Close()
		},
	}
	f := c.Flags()
	f.StringVar(&state, "state", "", "directory for sim.json, ca.pem and admin-token (required)")
	f.StringVar(&addr, "addr", "127.0.0.1:0", "listen address of the main HTTPS endpoint (port 0 picks a free one)")
	f.StringVar(&seed, "seed", "demo", "what to seed: demo, or apps=N,tenants=T,expiring=DURATION")
	f.DurationVar(&faults.Latency, "latency", 0, "latency added to every request (e.g. 20ms)")
	f.Float64Var(&faults.ErrorRate, "error-rate", 0, "fraction of requests answered 503 (0..1)")
	f.Float64Var(&faults.DropRate, "drop-rate", 0, "fraction of connections dropped without an answer (0..1)")
	f.BoolVar(&faults.Throttle, "throttle", false, "enforce Graph's per-app+tenant token bucket (429 + Retry-After)")
	f.DurationVar(&replication, "replication-delay", 0, "how long a new secret is refused by the token endpoint (overrides the seed)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log every request")
	return c
}
