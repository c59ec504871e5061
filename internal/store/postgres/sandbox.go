package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sandbox is a schema and an application role made for one throwaway run
// of rotor (`rotor demo --postgres`) on a database the user gives one URL
// of. The role that URL names owns the schema and migrates it (what
// database.migrate_url is in production); the new application role, with
// a random password, is what rotor runs as. So the demo runs as
// production does, row-level security binding the role rotor runs as,
// instead of running as an owner or a superuser, which Open refuses.
type Sandbox struct {
	// Schema is the new schema, rotor_demo_ and random hex.
	Schema string
	// OwnerRole is the URL's role; OwnerURL is the URL without its
	// password, naming its role and database explicitly, with Schema as
	// the search_path.
	OwnerRole, OwnerURL string
	// AppRole is the new application role (Schema + "_app"); AppURL is
	// OwnerURL as AppRole. AppPassword is its password, random: pass it
	// apart from the URL, like any database password.
	AppRole, AppURL, AppPassword string

	admin *pgx.ConnConfig
}

// SandboxParams says where to make a Sandbox.
type SandboxParams struct {
	// URL is a postgres:// URL of a superuser, or of a role with
	// CREATEROLE that may create schemas in the database (CREATE on it).
	// It may carry a password.
	URL string
	// Password, when not empty, is the URL's role's password, given apart
	// from the URL (which must then carry none). With neither, libpq's
	// PGPASSWORD and ~/.pgpass apply.
	Password string
}

// SplitPassword returns a postgres:// URL without any password it holds
// (as user:password@ or a password parameter), and that password. Its
// errors never repeat the URL.
func SplitPassword(raw string) (clean, password string, err error) {
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return "", "", errors.New("not a postgres:// URL: write postgres://ROLE@HOST:5432/DATABASE")
	}
	u, err := url.Parse(raw)
	if err != nil {
		reason := "cannot be parsed"
		var ue *url.Error
		if errors.As(err, &ue) {
			reason = ue.Err.Error() // url.Error's own message quotes the URL
		}
		return "", "", fmt.Errorf("not a URL (%s): write postgres://ROLE@HOST:5432/DATABASE", reason)
	}
	if p, ok := u.User.Password(); ok {
		password = p
		u.User = url.User(u.User.Username())
	}
	if q := u.Query(); q.Has("password") {
		if password == "" {
			password = q.Get("password")
		}
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String(), password, nil
}

// NewSandbox connects as p.URL's role and creates, in one transaction, a
// schema it owns and an application role that may log in with a random
// password and may do nothing else until rotor's migrations grant it its
// tables. A role that may not create either is refused with what it
// lacks. Drop removes both.
func NewSandbox(ctx context.Context, p SandboxParams) (*Sandbox, error) {
	clean, urlPassword, err := SplitPassword(p.URL)
	if err != nil {
		return nil, err
	}
	if urlPassword != "" && p.Password != "" {
		return nil, errors.New("the URL carries a password and another is given apart from it: give one")
	}
	cc, err := pgx.ParseConfig(p.URL)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", redactParseError(err))
	}
	if p.Password != "" {
		cc.Password = p.Password
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 10 * time.Second
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "rotor demo"
	}
	u, err := url.Parse(clean)
	if err != nil {
		return nil, errors.New("database URL cannot be parsed")
	}
	name := "rotor_demo_" + randomHex(6)
	s := &Sandbox{Schema: name, OwnerRole: cc.User, AppRole: name + "_app", AppPassword: randomHex(16), admin: cc}
	// The URLs name their role and database, as rotor's configuration
	// wants, even where p.URL left them to libpq's defaults.
	u.Path = "/" + cc.Database
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	u.User = url.User(cc.User)
	s.OwnerURL = u.String()
	u.User = url.User(s.AppRole)
	s.AppURL = u.String()

	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	schema, app := pgx.Identifier{name}.Sanitize(), pgx.Identifier{s.AppRole}.Sanitize()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
			if pgCode(err) == "42501" { // insufficient_privilege
				return fmt.Errorf("role %s may not create a schema in database %s: give a superuser's URL, or grant the role CREATE on the database (GRANT CREATE ON DATABASE %s TO %s)",
					cc.User, cc.Database, pgx.Identifier{cc.Database}.Sanitize(), pgx.Identifier{cc.User}.Sanitize())
			}
			return fmt.Errorf("create schema %s: %w", name, err)
		}
		// A SCRAM verifier, not the password: utility statements take no
		// parameters, and PostgreSQL logs a statement that fails
		// (log_min_error_statement), so the password itself never goes
		// into one.
		verifier, err := scramVerifier(s.AppPassword)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE ROLE `+app+` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '`+verifier+`'`); err != nil {
			if pgCode(err) == "42501" {
				return fmt.Errorf("role %s may not create roles, and rotor runs as an application role of its own (never as the owner of its tables or a superuser, which row-level security does not bind): give a superuser's URL, or one of a role with CREATEROLE", cc.User)
			}
			return fmt.Errorf("create role %s: %w", s.AppRole, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Drop removes the schema, everything in it, and the application role.
// Close every connection of the application role first.
func (s *Sandbox) Drop(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.admin)
	if err != nil {
		return fmt.Errorf("connect to drop schema %s and role %s: %w", s.Schema, s.AppRole, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range []string{
			`DROP SCHEMA IF EXISTS ` + pgx.Identifier{s.Schema}.Sanitize() + ` CASCADE`,
			`DROP ROLE IF EXISTS ` + pgx.Identifier{s.AppRole}.Sanitize(),
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("drop schema %s and role %s: %w", s.Schema, s.AppRole, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// scramVerifier is the SCRAM-SHA-256 verifier PostgreSQL stores for
// password (RFC 5802, RFC 7677; PostgreSQL's own format and iteration
// count), which CREATE ROLE … PASSWORD accepts in place of the password.
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key"))), nil
}
