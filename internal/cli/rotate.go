package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
)

func newRotateCmd() *cobra.Command {
	var cf configFlag
	c := &cobra.Command{
		Use:   "rotate APP...",
		Short: "Rotate applications' secrets now, narrating each step",
		Long: `Rotate runs one rotation of each APP (display name, app id or object id) now,
in this process, under the policy that selects it: create a new secret named
rotor:<run id>, deliver it to every sink in order, verify it by getting a
token with it, and schedule the retirement of older rotor-made secrets after
the policy's overlap (a running 'rotor serve' carries that out). Several
applications rotate at once, within the per-tenant concurrency.

It is safe beside a running 'rotor serve' on the same database: each run is
held under this process's lease, so neither process touches the other's
runs, and if this process dies mid-way a 'rotor serve' takes its runs over
once the lease expires (rotation.lease_ttl).`,
		Example: `  rotor rotate web-storefront
  rotor rotate web-storefront api-orders 7d3c0f4e-…`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s needs at least one APP (a display name, app id or object id)", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "rotate")
			if err != nil {
				return err
			}
			defer srv.Close()
			_, err = srv.App().Rotate(cmd.Context(), scope(srv), args, &rotateNarrator{w: &lockedWriter{w: cmd.OutOrStdout()}})
			return explainError(err)
		},
	}
	cf.register(c)
	return c
}

// rotateNarrator prints a rotation as it happens: which policy, each
// journal step, and where the run ended.
type rotateNarrator struct{ w io.Writer }

func (n *rotateNarrator) Starting(a app.ApplicationRef, policy string) {
	fmt.Fprintf(n.w, "Rotating %s under policy %q\n", a.Name, policy)
}

func (n *rotateNarrator) Step(r domain.Run, step domain.Step) {
	fmt.Fprintf(n.w, "  %s  %-10s %s\n", time.Now().Format("15:04:05"), r.State, describeStep(r, step))
}

func (n *rotateNarrator) Finished(r app.RotateResult) {
	if r.Err != nil {
		return
	}
	fmt.Fprintf(n.w, "%s: run %s is %s; older rotor credentials retire at %s.\n", r.Application.Name, r.RunID, r.State, r.RetireAt.Local().Format(time.RFC1123))
}

// lockedWriter serialises writes of concurrent rotations' narration.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func describeStep(r domain.Run, step domain.Step) string {
	switch step.Kind {
	case domain.StepPlanned:
		return "journaled the intent; nothing touched yet"
	case domain.StepReplicating:
		return "waiting until Entra accepts the new secret, before any consumer can read it"
	case domain.StepCreated:
		return fmt.Sprintf("created secret %s in Entra (ends %s)", short(r.NewKeyID), r.NewEnd.Local().Format("2006-01-02"))
	case domain.StepSink:
		switch step.Phase {
		case domain.PhaseWriting:
			return fmt.Sprintf("delivering the new secret to sink #%d", step.Index+1)
		case domain.PhaseFailed:
			return fmt.Sprintf("sink #%d failed; the run goes on without it (on_failure: continue)", step.Index+1)
		case domain.PhaseSkipped:
			return fmt.Sprintf("sink #%d cannot take the new secret and is left out (on_failure: continue)", step.Index+1)
		case domain.PhaseDrifted:
			return fmt.Sprintf("sink #%d's target changed since rotor's last delivery (drift); rotor's write replaces it", step.Index+1)
		}
		return fmt.Sprintf("sink #%d holds the new secret", step.Index+1)
	case domain.StepPropagated:
		return "every sink holds the new secret"
	case domain.StepVerifying:
		return "getting a token with the new secret (Entra replicates it for a few seconds)"
	case domain.StepVerified:
		return "Entra accepts the new secret"
	case domain.StepRetiring:
		return "older rotor secrets retire at " + when(r.RetireAt)
	case domain.StepRetire:
		if step.Phase == domain.PhaseRemoved {
			return "removed old secret " + short(step.KeyID)
		}
		return "removing old secret " + short(step.KeyID) + " (the overlap has passed)"
	case domain.StepTakenOver:
		return "taken over from a rotor process that stopped (its lease expired)"
	case domain.StepDone:
		return "complete: only the newest rotor secret remains"
	case domain.StepAbandoned:
		return "stopped before it finished (crash or shutdown); a fresh run replaces it"
	}
	return step.String()
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func newRunsCmd() *cobra.Command {
	runs := &cobra.Command{Use: "runs", Short: "Look at rotation runs and their journals", Args: groupArgs, RunE: showHelp}
	var (
		cf     configFlag
		rf     remoteFlag
		out    outputFlag
		appRef string
		state  string
		limit  int
	)
	list := &cobra.Command{
		Use:     "list",
		Short:   "List rotation runs, newest first",
		Example: "  rotor runs list --state failed\n  rotor runs list --app web-storefront -o json\n  rotor runs list --server https://rotor.example.com --state failed",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(cmd); err != nil {
				return err
			}
			f := app.RunFilter{App: appRef, Limit: limit}
			if state != "" {
				for _, s := range strings.Split(state, ",") {
					f.States = append(f.States, domain.RunState(strings.TrimSpace(s)))
				}
			}
			var rows []app.RunRow
			var err error
			if rf.set() {
				if limit < 1 {
					return &usageError{cmd: cmd.CommandPath(), err: errors.New("--limit must be positive")}
				}
				r, cerr := rf.client(cmd.Context())
				if cerr != nil {
					return cerr
				}
				if rows, err = r.runs(cmd.Context(), f); err != nil {
					return err
				}
			} else {
				srv, oerr := cf.openReading(cmd, &out)
				if oerr != nil {
					return oerr
				}
				defer srv.Close()
				rows, err = srv.App().ListRuns(cmd.Context(), rf.localScope(srv), f)
			}
			if err != nil {
				var inv *app.InvalidError
				if errors.As(err, &inv) {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--%s: %s", inv.Field, inv.Message)}
				}
				return explainError(err)
			}
			return printRows(cmd, &out, rows, "RUN\tAPPLICATION\tTRIGGER\tSTATE\tNEW KEY\tSTARTED\tRETIRE AT", func(r app.RunRow) string {
				st := string(r.State)
				if r.Error != "" {
					st += ": " + r.Error
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", r.ID, r.App, r.Trigger, st, short(r.NewKeyID), r.CreatedAt.Local().Format("01-02 15:04:05"), orDash(r.RetireAt, "01-02 15:04"))
			})
		},
	}
	cf.register(list)
	rf.register(list)
	out.register(list)
	list.Flags().StringVar(&appRef, "app", "", "only this application's runs")
	list.Flags().StringVar(&state, "state", "", "only runs in these states (comma-separated: planned,created,propagated,verified,retiring,done,failed,abandoned)")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many runs")

	var showOut outputFlag
	var showCf configFlag
	var showRf remoteFlag
	show := &cobra.Command{
		Use:     "show RUN",
		Short:   "Show one run with its journal",
		Example: "  rotor runs show 01J…\n  rotor runs show 01J… -o json --server https://rotor.example.com",
		Args:    exactArgs(1, "RUN (a run id from 'rotor runs list')"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := showOut.validate(cmd); err != nil {
				return err
			}
			var r *domain.Run
			if showRf.set() {
				c, err := showRf.client(cmd.Context())
				if err != nil {
					return err
				}
				if r, err = c.run(cmd.Context(), args[0]); err != nil {
					return err
				}
			} else {
				srv, err := showCf.openReading(cmd, &showOut)
				if err != nil {
					return err
				}
				defer srv.Close()
				if r, err = srv.App().GetRun(cmd.Context(), showRf.localScope(srv), args[0]); err != nil {
					return explainError(err)
				}
			}
			if showOut.json() {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Run %s — %s (%s)\n  policy %s, trigger %s, state %s\n", r.ID, r.AppName, r.AppID, r.Policy, r.Trigger, r.State)
			if r.NewKeyID != "" {
				fmt.Fprintf(w, "  new secret %s ends %s\n", r.NewKeyID, r.NewEnd.Local().Format(time.RFC1123))
			}
			if r.Error != "" {
				fmt.Fprintf(w, "  error: %s\n", r.Error)
			}
			fmt.Fprintln(w)
			tw := newTable(w)
			fmt.Fprintln(tw, "TIME\tSTATE\tSTEP\tMESSAGE")
			for _, e := range r.Events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.At.Local().Format("15:04:05.000"), e.State, e.Step, e.Message)
			}
			return tw.Flush()
		},
	}
	showCf.register(show)
	showRf.register(show)
	showOut.register(show)
	runs.AddCommand(list, show)
	return runs
}

// when prints a time of day, with the date when it is not within the next
// twelve hours.
func when(t time.Time) string {
	if d := time.Until(t); d > -12*time.Hour && d < 12*time.Hour {
		return t.Local().Format("15:04:05")
	}
	return t.Local().Format("Mon 2 Jan 15:04")
}
