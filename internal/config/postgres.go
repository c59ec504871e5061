package config

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

func isPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// sslModes are libpq's (and pgx's) sslmode values.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// postgres checks database.url and database.migrate_url as PostgreSQL
// URLs, and their passwords as secret references. A URL must not carry a
// password: the configuration, its environment and logs show URLs, so the
// password comes apart, from {env: …} or {file: …}. Messages show a URL
// only with any password it holds redacted.
func (b *builder) postgres(raw rawDatabase) {
	top := scope{}
	db := &b.cfg.Database
	db.URL = b.postgresURL("database.url", raw.URL)
	if raw.MigrateURL != "" {
		if !isPostgresURL(raw.MigrateURL) {
			b.bad(top, "database.migrate_url", 0, "database.migrate_url must be a postgres:// URL (the owner role's), like database.url")
		} else {
			db.MigrateURL = b.postgresURL("database.migrate_url", raw.MigrateURL)
		}
	}
	db.Password = b.databaseSecret("database.password", raw.Password)
	db.MigratePassword = b.databaseSecret("database.migrate_password", raw.MigratePassword)
	if raw.MigratePassword != nil && raw.MigrateURL == "" {
		b.bad(top, "database.migrate_password", 0, "database.migrate_password is set without database.migrate_url")
	}
}

// postgresURL checks one URL and returns it ("" when it is unusable).
func (b *builder) postgresURL(key, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the URL, password and all.
		var reason string
		if ue, ok := err.(*url.Error); ok {
			reason = ue.Err.Error()
		}
		b.bad(scope{}, key, 0, "%s is not a URL (%s): write postgres://user@host:5432/database?sslmode=verify-full", key, reason)
		return ""
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		b.bad(scope{}, key, 0, "%s %s carries a password: take it out, and give it as %s: {env: NAME} or {file: PATH}",
			key, redactURL(u), strings.Replace(key, "url", "password", 1))
		return ""
	}
	if u.User.Username() == "" {
		b.bad(scope{}, key, 0, "%s %s names no user: name the role, postgres://ROLE@host/database", key, redactURL(u))
	}
	if u.Path == "" || u.Path == "/" {
		b.bad(scope{}, key, 0, "%s %s names no database: postgres://role@host/DATABASE", key, redactURL(u))
	}
	q := u.Query()
	if m := q.Get("sslmode"); q.Has("sslmode") && !slices.Contains(sslModes, m) {
		b.bad(scope{}, key, 0, "%s: sslmode %q is not known: use %s", key, m, strings.Join(sslModes, ", "))
	}
	if v := q.Get("pool_max_conns"); q.Has("pool_max_conns") {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			b.bad(scope{}, key, 0, "%s: pool_max_conns %q must be a number from 1 to 1000", key, v)
		}
	}
	return raw
}

// databaseSecret loads a database password reference: {env: …}, {file: …}
// or, discouraged, inline. A Key Vault reference would need rotor's host
// identity before the database opens, which it does not have yet.
func (b *builder) databaseSecret(key string, r *SecretRef) *SecretRef {
	if r == nil {
		return nil
	}
	if r.kind == refKeyVault {
		b.bad(scope{}, key, r.line, "%s: a Key Vault reference is not supported for the database password: use {env: NAME} or {file: PATH}", key)
		return nil
	}
	if msg := r.load(b.opts.Getenv, b.baseDir); msg != "" {
		b.bad(scope{}, key, r.line, "%s: %s", key, msg)
		return nil
	}
	if r.kind == refInline {
		b.note("%s is written inline in the configuration file (line %d), so anyone who can read the file or a copy of it has the database password; use %s: {env: NAME} or {file: PATH} instead", key, r.line, key)
	}
	return r
}

// redactURL is u with any password masked, in the user info or as a
// password parameter (url.URL.Redacted masks only the first).
func redactURL(u *url.URL) string {
	c := *u
	if _, has := c.User.Password(); has {
		c.User = url.UserPassword(c.User.Username(), "xxxxx")
	}
	if q := c.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		c.RawQuery = q.Encode()
	}
	return c.String()
}
