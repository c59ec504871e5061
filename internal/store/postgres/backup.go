package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DumpParams says what Dump backs up and with which pg_dump.
type DumpParams struct {
	// URL and Password are the owner role's (database.migrate_url and its
	// password): row-level security hides every organization's rows from
	// the application role, so only the owner sees them all.
	URL, Password string
	// PgDump is the pg_dump program, a path or a name looked up in PATH
	// ("" is "pg_dump"). Its major version must be at least the server's.
	PgDump string
	// File is where the archive goes (pg_dump's custom format). It is
	// overwritten.
	File string
	// ShowFile is the file name DumpInfo.Command and PgDumpNotFoundError
	// show (default File): the caller's final name for a File that is
	// temporary.
	ShowFile string
}

// DumpInfo is what Dump backed up.
type DumpInfo struct {
	// Database and Schema are where rotor's tables (and River's) live.
	Database, Schema string
	// Role is the role the dump ran as.
	Role string
	// SchemaVersion is the newest of rotor's migrations the schema had.
	SchemaVersion int
	// Command is the pg_dump command line, without the password.
	Command string
}

// PgDumpNotFoundError says that pg_dump is not installed where rotor
// looked, with the command that would take the backup.
type PgDumpNotFoundError struct {
	PgDump  string
	Command string
}

func (e *PgDumpNotFoundError) Error() string {
	return fmt.Sprintf("%s was not found: install PostgreSQL's client programs (pg_dump of the server's major version or newer) and pass --pg-dump PATH if it is not on PATH, or take the backup yourself, with PGPASSWORD set to database.migrate_password: %s", e.PgDump, e.Command)
}

// DumpCommand is the pg_dump command line that backs up schema of the
// database url reaches into file, as Dump runs it. The password is not on
// it: Dump passes it in PGPASSWORD (an argument would show in ps).
func DumpCommand(pgDump, rawURL, schema, file string) (string, error) {
	args, err := dumpArgs(rawURL, schema, file)
	if err != nil {
		return "", err
	}
	parts := []string{shellQuote(pgDump)}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " "), nil
}

// Dump backs up rotor's schema (rotor's tables and River's, their data,
// row-level security policies and functions) with pg_dump, in its custom
// format, which pg_restore reads: a consistent snapshot (pg_dump reads in
// one repeatable-read transaction) taken while rotor runs. It first
// connects itself, to find the schema and check the role may see every
// row, so that a mistake is a clear error rather than pg_dump's.
func Dump(ctx context.Context, p DumpParams) (*DumpInfo, error) {
	cc, err := pgx.ParseConfig(p.URL)
	if err != nil {
		return nil, fmt.Errorf("database.migrate_url: %w", redactParseError(err))
	}
	if p.Password != "" {
		cc.Password = p.Password
	}
	cc.RuntimeParams["application_name"] = "rotor backup"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connect as database.migrate_url's role: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	info := &DumpInfo{}
	var sees bool
	err = conn.QueryRow(ctx, `SELECT current_database(), coalesce(current_schema(), ''), current_user,
		(SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
		OR coalesce((SELECT pg_has_role(current_user, tableowner, 'USAGE') FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'runs'), false)`).
		Scan(&info.Database, &info.Schema, &info.Role, &sees)
	if err != nil {
		return nil, fmt.Errorf("read where rotor's schema is: %w", err)
	}
	if info.Schema == "" {
		return nil, fmt.Errorf("no schema of database.migrate_url's search_path exists in database %s: nothing to back up", info.Database)
	}
	var v *int64
	if err := conn.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		if pgCode(err) == "42P01" {
			return nil, fmt.Errorf("schema %s of database %s has no rotor tables: nothing to back up (is database.migrate_url's search_path rotor's schema?)", info.Schema, info.Database)
		}
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	if v != nil {
		info.SchemaVersion = int(*v)
	}
	if !sees {
		return nil, fmt.Errorf("role %s does not own rotor's tables in schema %s: row-level security would hide every organization's rows from it, so back up as the owner role (database.migrate_url)", info.Role, info.Schema)
	}

	name := p.PgDump
	if name == "" {
		name = "pg_dump"
	}
	show := p.ShowFile
	if show == "" {
		show = p.File
	}
	if info.Command, err = DumpCommand(name, p.URL, info.Schema, show); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, &PgDumpNotFoundError{PgDump: name, Command: info.Command}
	}
	args, err := dumpArgs(p.URL, info.Schema, p.File)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = pgEnv(p.Password)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pg_dump failed (%v): %s", err, strings.TrimSpace(stderr.String()))
	}
	// pg_restore beside pg_dump reads the archive's table of contents: a
	// truncated or foreign file fails here, not at restore time.
	if restore := filepath.Join(filepath.Dir(bin), "pg_restore"); isFile(restore) {
		cmd := exec.CommandContext(ctx, restore, "--list", p.File)
		cmd.Env = pgEnv("")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("pg_restore --list cannot read the archive pg_dump wrote (%v): %s", err, strings.TrimSpace(string(out)))
		}
	}
	return info, nil
}

// pgEnv is the environment for PostgreSQL's client programs: ours, without
// any PGPASSWORD or PGOPTIONS of our own, and password in PGPASSWORD when
// set (an argument would show in ps).
func pgEnv(password string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PGPASSWORD=") || strings.HasPrefix(kv, "PGOPTIONS=")
	})
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	return env
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// dumpArgs is pg_dump's arguments: the custom format (compressed, read by
// pg_restore, which can restore it selectively and in parallel), rotor's
// schema only (the database may hold others), never a password prompt,
// and the URL as libpq takes it.
func dumpArgs(rawURL, schema, file string) ([]string, error) {
	conninfo, err := libpqURL(rawURL)
	if err != nil {
		return nil, err
	}
	return []string{
		"--format=custom",
		// A pattern in double quotes is the name as it is: no case
		// folding, no wildcards.
		`--schema="` + strings.ReplaceAll(schema, `"`, `""`) + `"`,
		"--no-password",
		"--file=" + file,
		"--dbname=" + conninfo,
	}, nil
}

// libpqParams are the URL query parameters libpq knows (PostgreSQL 17);
// pgx takes others (pool_max_conns, search_path and other run-time
// settings) that libpq refuses, and pg_dump needs none of them.
var libpqParams = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "passfile": true,
	"require_auth": true, "channel_binding": true, "connect_timeout": true, "client_encoding": true,
	"application_name": true, "fallback_application_name": true, "keepalives": true,
	"keepalives_idle": true, "keepalives_interval": true, "keepalives_count": true, "tcp_user_timeout": true,
	"sslmode": true, "sslnegotiation": true, "sslcompression": true, "sslcert": true, "sslkey": true,
	"sslcertmode": true, "sslrootcert": true, "sslcrl": true, "sslcrldir": true, "sslsni": true,
	"requirepeer": true, "ssl_min_protocol_version": true, "ssl_max_protocol_version": true,
	"gssencmode": true, "krbsrvname": true, "gsslib": true, "gssdelegation": true, "service": true,
	"target_session_attrs": true, "load_balance_hosts": true,
}

// libpqURL is rawURL as libpq's programs take it: no password (it goes in
// PGPASSWORD), and only the query parameters libpq knows.
func libpqURL(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("database.migrate_url must be a postgres:// URL to run pg_dump with")
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("sslpassword") {
		// libpq takes the client key's passphrase from the connection
		// string only: pg_dump would carry it on its command line, where
		// every user of the machine sees it, and rotor would print it.
		return "", errors.New("database.migrate_url has sslpassword, which pg_dump could only be given on its command line: " +
			"give rotor an unencrypted client key (sslkey) readable by it alone, or back up with pg_dump yourself")
	}
	for k := range q {
		if !libpqParams[k] {
			q.Del(k)
		}
	}
	q.Del("password")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
