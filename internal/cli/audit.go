package cli

import (
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
	group.AddCommand(newAuditVerifyCmd(), newAuditExportCmd())
	return group
}

func newAuditVerifyCmd() *cobra.Command {
	var (
		cf      configFlag
		of      orgFlag
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
  rotor audit verify -o json`,
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
			srv, err := cf.openReading(cmd, &out)
			if err != nil {
				return err
			}
			defer srv.Close()
			sc := of.scope(srv)
			res, err := srv.App().AuditVerify(cmd.Context(), sc, opts)
			if err != nil {
				return explainError(err)
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
	of.register(c)
	out.register(c)
	c.Flags().StringArrayVar(&anchors, "anchor", nil, "a head printed earlier, SEQ:HASH, that the trail must still contain (repeatable)")
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
