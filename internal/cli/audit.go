package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/server"
)

// exitTampered is the exit code of 'rotor audit verify' when the trail is
// not intact (1 stays "could not check").
const exitTampered = 3

// orgFlag is --org: the organization to act in, instead of rotor.yaml's.
type orgFlag struct{ org string }

func (f *orgFlag) register(c *cobra.Command) {
	c.Flags().StringVar(&f.org, "org", "", "the organization (default: rotor.yaml's organization)")
}

func (f *orgFlag) scope(srv *server.Server) app.Scope {
	sc := scope(srv)
	if f.org != "" {
		sc.Org = domain.OrgID(f.org)
	}
	return sc
}

func newAuditCmd() *cobra.Command {
	group := &cobra.Command{
		Use:   "audit",
		Short: "Check and export the audit trail: who did what, when, and every rotation step",
		Long: `rotor keeps an audit trail per organization: every change made through rotor
(sync, rotate, retire, moving a sink target — by a user, an API token or rotor
itself, allowed or denied, with its outcome and request id) and every step of
every rotation run. Records are append-only and hash-chained: each one's
SHA-256 covers its content and the hash of the record before it, so an
edited, inserted or deleted record breaks the chain. No secret value is ever
in it. See docs/audit.md.`,
		Args: groupArgs,
		RunE: showHelp,
	}
	group.AddCommand(newAuditVerifyCmd(), newAuditListCmd(), newAuditExportCmd())
	return group
}

func newAuditVerifyCmd() *cobra.Command {
	var (
		cf      configFlag
		rf      remoteFlag
		out     outputFlag
		anchors []string
	)
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check that no audit record was edited, inserted or deleted",
		Long: `Verify walks the organization's audit trail from its first record, recomputes
every record's hash from its content and the hash before it, checks that the
numbers run 1, 2, 3, … without a gap, and that the newest record is the head
rotor keeps beside the trail (so deleting the newest records shows too).

Intact: it exits 0 and prints the head, SEQ:HASH. Keep that line somewhere
rotor and its database administrators cannot write (a ticket, your log store,
a signed commit) and pass it back later with --anchor: someone who can rewrite
the whole table and the head can forge a consistent chain, but not one that
still has the hash you kept.

Not intact: it exits 3, naming the first bad record (its seq) and what is
wrong with it: edited (its content no longer matches its hash), missing
(records were deleted: a gap, a shortened tail, renumbering), inserted (a
record the chain does not account for), or head-missing. Exit 1 means the
trail could not be read at all.`,
		Example: `  rotor audit verify
  rotor audit verify --org contoso --anchor 1834:5e0c…9a1f
  rotor audit verify -o json
  rotor audit verify --server https://rotor.example.com --anchor 1834:5e0c…9a1f`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(cmd); err != nil {
				return err
			}
			var opts app.AuditVerifyOptions
			for _, a := range anchors {
				h, err := audit.ParseHead(a)
				if err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--anchor: %w (give the head 'rotor audit verify' printed)", err)}
				}
				opts.Anchors = append(opts.Anchors, h)
			}
			res, err := readWith(cmd, &cf, &rf, &out, func(r *remote, ctx context.Context) (audit.Result, error) { return r.auditVerify(ctx, opts.Anchors) },
				func(srv *server.Server, sc app.Scope) (audit.Result, error) {
					return srv.App().AuditVerify(cmd.Context(), sc, opts)
				})
			if err != nil {
				return err
			}
			if out.json() {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printVerify(cmd.OutOrStdout(), res)
			}
			if !res.Intact {
				return &exitError{code: exitTampered, err: fmt.Errorf("the audit trail of organization %s is NOT intact: %v", res.Org, res.Problem)}
			}
			return nil
		},
	}
	cf.register(c)
	rf.register(c)
	out.register(c)
	c.Flags().StringArrayVar(&anchors, "anchor", nil, "a head printed earlier, SEQ:HASH, that the trail must still contain (repeatable)")
	return c
}

func newAuditListCmd() *cobra.Command {
	var (
		cf                 configFlag
		rf                 remoteFlag
		out                outputFlag
		since, until       string
		action, actor, run string
		object             string
		limit              int
		newest             bool
	)
	c := &cobra.Command{
		Use:   "list",
		Short: "List audit records: who did what, when, with what outcome",
		Long: `List the organization's audit records, oldest first (--newest: newest first),
at most --limit of them, filtered by time, actor, action, object or run.
--since and --until take what 'rotor audit export' takes: an RFC 3339 time,
a date, or a duration back from now (7d). For the whole trail as JSON lines,
use 'rotor audit export'.`,
		Example: `  rotor audit list --newest --limit 20
  rotor audit list --action rotate --since 7d -o json
  rotor audit list --run 01J… --server https://rotor.example.com`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := app.AuditFilter{Action: action, Actor: actor, Object: object, Run: run, Newest: newest, Limit: limit}
			if limit < 1 || limit > app.MaxAuditLimit {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--limit must be between 1 and %d", app.MaxAuditLimit)}
			}
			for flag, v := range map[string]string{"--since": since, "--until": until} {
				if _, err := parseWhen(v, time.Now()); err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s: %w", flag, err)}
				}
			}
			recs, err := readWith(cmd, &cf, &rf, &out, func(r *remote, ctx context.Context) ([]audit.Record, error) {
				f.Since, _ = parseWhen(since, time.Now())
				f.Until, _ = parseWhen(until, time.Now())
				return r.auditList(ctx, f)
			}, func(srv *server.Server, sc app.Scope) ([]audit.Record, error) {
				// Durations back are counted on rotor's clock, as export's.
				f.Since, _ = parseWhen(since, srv.Clock().Now())
				f.Until, _ = parseWhen(until, srv.Clock().Now())
				return srv.App().AuditList(cmd.Context(), sc, f)
			})
			if err != nil {
				var inv *app.InvalidError
				if errors.As(err, &inv) {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--%s: %s", inv.Field, inv.Message)}
				}
				return err
			}
			return printRows(cmd, &out, recs, "SEQ\tAT\tACTOR\tACTION\tOBJECT\tOUTCOME", func(r audit.Record) string {
				outcome := r.Outcome
				if r.Error != "" {
					outcome += " (" + r.Error + ")"
				}
				who := r.Actor.String()
				if r.Actor.Name != "" {
					who += " " + r.Actor.Name
				}
				return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", r.Seq, r.At.UTC().Format("2006-01-02 15:04:05Z"), who, r.Action, r.Object, outcome)
			})
		},
	}
	cf.register(c)
	rf.register(c)
	out.register(c)
	c.Flags().StringVar(&since, "since", "", "only records at or after this time (RFC 3339, a date, or a duration back: 7d)")
	c.Flags().StringVar(&until, "until", "", "only records before this time (same forms as --since)")
	c.Flags().StringVar(&action, "action", "", "only this action (sync, rotate, retire, move-target, manage-api-keys, sign-in, sign-out, rotation.step)")
	c.Flags().StringVar(&actor, "actor", "", "only this actor, by id (cli, rotor, an app id, a user's object id, apikey:ID)")
	c.Flags().StringVar(&object, "object", "", "only this object, as recorded (application:REF, run:ID, inventory, api-key:ID)")
	c.Flags().StringVar(&run, "run", "", "only the records of this run")
	c.Flags().IntVar(&limit, "limit", 50, "at most this many records")
	c.Flags().BoolVar(&newest, "newest", false, "newest first")
	return c
}

func printVerify(w io.Writer, res audit.Result) {
	if res.Intact {
		fmt.Fprintf(w, "The audit trail of organization %s is intact: %d %s.\n", res.Org, res.Records, plural(res.Records, "record", "records"))
		if res.Anchors > 0 {
			fmt.Fprintf(w, "It still holds every anchor given (%d).\n", res.Anchors)
		}
		if res.Head == nil {
			fmt.Fprintln(w, "It is empty: nothing has been recorded yet.")
			return
		}
		fmt.Fprintf(w, "head: %s (appended %s)\n", res.Head, res.Head.At.Local().Format(time.RFC3339))
		fmt.Fprintln(w, "Keep the head where rotor cannot write, and check against it later with --anchor.")
		return
	}
	p := res.Problem
	fmt.Fprintf(w, "The audit trail of organization %s is NOT intact.\n", res.Org)
	fmt.Fprintf(w, "first bad record: seq %d (%s)\n", p.Seq, p.Kind)
	fmt.Fprintf(w, "why: %s\n", p.Detail)
	fmt.Fprintf(w, "records verified before it: %d\n", res.Records)
	if res.Head != nil {
		fmt.Fprintf(w, "head stored: %s\n", res.Head)
	}
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func newAuditExportCmd() *cobra.Command {
	var (
		cf           configFlag
		of           orgFlag
		since, until string
		file         string
	)
	c := &cobra.Command{
		Use:   "export",
		Short: "Write the audit trail as JSON lines, one record per line",
		Long: `Export writes the organization's audit records, oldest first, one JSON object
per line: org, seq, at, actor (kind, id, name), action, object, outcome,
error (a class, never a message), request_id, runs, run_id and step (for a
rotation step), and hash. Feed it to your log store or SIEM; each line
carries its record's hash, so what you keep can be checked against the
chain (docs/audit.md shows how).

--since and --until take an RFC 3339 time (2030-01-31T00:00:00Z), a date
(2030-01-31, UTC), or a duration back from now (24h, 7d). Without -o the
records go to standard output; with -o FILE they are written to FILE.tmp
and renamed to FILE once complete, so a FILE is never half an export.`,
		Example: `  rotor audit export > audit.jsonl
  rotor audit export --since 7d -o audit-week.jsonl
  rotor audit export --org contoso --since 2030-01-01 --until 2030-02-01 -o january.jsonl`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "json" || file == "table" {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("-o names the file to write (export always writes JSON lines); for a file named %s, write ./%s", file, file)}
			}
			// Checked before the configuration is read; "7d" is then
			// counted back on rotor's clock, which the records' times are
			// on (the demo's runs ahead of the wall clock).
			for flag, v := range map[string]string{"--since": since, "--until": until} {
				if _, err := parseWhen(v, time.Now()); err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s: %w", flag, err)}
				}
			}
			srv, err := cf.openReading(cmd, &outputFlag{format: "table"})
			if err != nil {
				return err
			}
			defer srv.Close()
			now := srv.Clock().Now()
			var f app.AuditFilter
			f.Since, _ = parseWhen(since, now)
			f.Until, _ = parseWhen(until, now)
			sc := of.scope(srv)
			dest := cmd.OutOrStdout()
			var done func(ok bool) error
			if file != "" {
				dest, done, err = createAtomically(file)
				if err != nil {
					return err
				}
			}
			exp, err := srv.App().AuditExport(cmd.Context(), sc, f, dest)
			n, first, last := exp.Records, exp.First, exp.Last
			if done != nil {
				if derr := done(err == nil); err == nil {
					err = derr
				}
			}
			if err != nil {
				var inv *app.InvalidError
				if errors.As(err, &inv) {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--%s: %s", inv.Field, inv.Message)}
				}
				return explainError(err)
			}
			where := "standard output"
			if file != "" {
				where = file
			}
			if n == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "no audit records of organization %s match; wrote nothing to %s\n", sc.Org, where)
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d audit %s of organization %s (seq %d..%d) to %s\n", n, plural(n, "record", "records"), sc.Org, first, last, where)
			return nil
		},
	}
	cf.register(c)
	of.register(c)
	c.Flags().StringVar(&since, "since", "", "only records at or after this time (RFC 3339, a date, or a duration back: 7d)")
	c.Flags().StringVar(&until, "until", "", "only records before this time (same forms as --since)")
	c.Flags().StringVarP(&file, "out", "o", "", "write to FILE instead of standard output")
	return c
}

// createAtomically opens FILE.tmp beside file; done(true) syncs it and
// renames it to file, done(false) removes it.
func createAtomically(file string) (io.Writer, func(ok bool) error, error) {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", tmp, err)
	}
	return f, func(ok bool) error {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
			return nil
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("write %s: %w", tmp, err)
		}
		if err := os.Rename(tmp, file); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("rename %s to %s: %w", tmp, filepath.Base(file), err)
		}
		return nil
	}, nil
}

// parseWhen reads a time as --since takes it: RFC 3339, a date (UTC), or
// a duration back from now; "" is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2030-01-31T12:00:00Z), a date (2030-01-31) or a positive duration (24h, 7d)", s)
	}
	return now.Add(-d), nil
}
