package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// EnsureOrg creates the organization if it does not exist; an existing
// organization keeps its name.
func (s *Store) EnsureOrg(ctx context.Context, org domain.OrgID, name string) error {
	if org == "" {
		return errors.New("ensure org: empty org id")
	}
	if _, err := s.w.ExecContext(ctx,
		`INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		string(org), name, encTime(s.clock.Now())); err != nil {
		return fmt.Errorf("ensure org %s: %w", org, err)
	}
	return nil
}

func validateSync(p *store.SyncApplicationsParams) error {
	if p.Org == "" || p.Connection == "" {
		return errors.New("org and connection must be set")
	}
	if p.SyncStarted.IsZero() {
		return errors.New("SyncStarted must be set")
	}
	if err := checkTime("SyncStarted", p.SyncStarted); err != nil {
		return err
	}
	for i := range p.Applications {
		a := &p.Applications[i]
		if a.TenantID == "" || a.ObjectID == "" {
			return fmt.Errorf("application %d (%q): tenant id and object id must be set", i, a.DisplayName)
		}
		if a.Org != "" && a.Org != p.Org {
			return fmt.Errorf("application %s belongs to org %q, not %q", a.ObjectID, a.Org, p.Org)
		}
		if a.Connection != "" && a.Connection != p.Connection {
			return fmt.Errorf("application %s comes from connection %q, not %q", a.ObjectID, a.Connection, p.Connection)
		}
		if err := checkTime("application "+a.ObjectID+" createdDateTime", a.CreatedAt); err != nil {
			return err
		}
		for j, c := range a.Credentials {
			if c.KeyID == "" {
				return fmt.Errorf("application %s: a credential has no key id", a.ObjectID)
			}
			for _, prev := range a.Credentials[:j] {
				if prev.KeyID == c.KeyID {
					return fmt.Errorf("application %s: key id %s appears twice", a.ObjectID, c.KeyID)
				}
			}
			if err := checkTime("credential "+c.KeyID+" start", c.Start); err != nil {
				return err
			}
			if err := checkTime("credential "+c.KeyID+" end", c.End); err != nil {
				return err
			}
		}
	}
	return nil
}

// SyncApplications writes one page in one transaction. It reads the
// stored fingerprints of the whole page with one query, moves synced_at of
// every unchanged application with one statement per tenant, and rewrites
// only the applications that changed: the row, then its credentials
// (deleted, and inserted again with one statement).
func (s *Store) SyncApplications(ctx context.Context, p store.SyncApplicationsParams) (int, error) {
	if err := validateSync(&p); err != nil {
		return 0, fmt.Errorf("sync applications: %w", err)
	}
	if len(p.Applications) == 0 {
		return 0, nil
	}
	changed, err := s.syncPage(ctx, &p)
	if err != nil {
		if isForeignKeyViolation(err) {
			return 0, fmt.Errorf("sync applications: organization %q: %w (call EnsureOrg first)", p.Org, store.ErrNotFound)
		}
		return 0, fmt.Errorf("sync applications of %s/%s: %w", p.Org, p.Connection, err)
	}
	return changed, nil
}

const (
	sqlPageFingerprints = `SELECT object_id, fingerprint FROM applications
		WHERE org_id = ? AND tenant_id = ? AND object_id IN (SELECT value FROM json_each(?))`
	sqlTouch = `UPDATE applications SET synced_at = ?
		WHERE org_id = ? AND tenant_id = ? AND object_id IN (SELECT value FROM json_each(?))`
	sqlUpsertApp = `INSERT INTO applications (org_id, tenant_id, object_id, connection, app_id, display_name,
			sign_in_audience, created_at, manageable, owners, fingerprint, synced_at, min_end)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, tenant_id, object_id) DO UPDATE SET
			connection = excluded.connection, app_id = excluded.app_id, display_name = excluded.display_name,
			sign_in_audience = excluded.sign_in_audience, created_at = excluded.created_at,
			manageable = excluded.manageable, owners = excluded.owners, fingerprint = excluded.fingerprint,
			synced_at = excluded.synced_at, min_end = excluded.min_end`
	sqlDeleteCreds = `DELETE FROM credentials WHERE org_id = ? AND tenant_id = ? AND app_object_id = ?`
	sqlInsertCreds = `INSERT INTO credentials (org_id, tenant_id, app_object_id, key_id, kind, display_name,
			hint, thumbprint, start_at, end_at) VALUES `
	// maxCredsPerInsert keeps one INSERT's parameters (10 a row) far
	// below SQLite's limit of 32766.
	maxCredsPerInsert = 256
)

// syncTx holds one page's transaction and the statements it prepared.
type syncTx struct {
	ctx    context.Context
	tx     *sql.Tx
	stmts  map[string]*sql.Stmt
	args   []any
	fp     fingerprinter
	insert map[int]string // credential count → INSERT with that many rows
}

func (t *syncTx) stmt(q string) (*sql.Stmt, error) {
	if st, ok := t.stmts[q]; ok {
		return st, nil
	}
	st, err := t.tx.PrepareContext(t.ctx, q)
	if err != nil {
		return nil, err
	}
	t.stmts[q] = st
	return st, nil
}

func (t *syncTx) exec(q string, args ...any) error {
	st, err := t.stmt(q)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(t.ctx, args...)
	return err
}

func (t *syncTx) close() {
	for _, st := range t.stmts {
		_ = st.Close()
	}
}

// insertCredsSQL is the INSERT of n credential rows.
func (t *syncTx) insertCredsSQL(n int) string {
	if q, ok := t.insert[n]; ok {
		return q
	}
	var b strings.Builder
	b.WriteString(sqlInsertCreds)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	q := b.String()
	t.insert[n] = q
	return q
}

type appKey struct{ tenant, object string }

func (s *Store) syncPage(ctx context.Context, p *store.SyncApplicationsParams) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	t := &syncTx{ctx: ctx, tx: tx, stmts: map[string]*sql.Stmt{}, insert: map[int]string{}}
	defer t.close()

	org := string(p.Org)
	synced := encTime(p.SyncStarted)

	// The stored fingerprints of the page, one query per tenant (a page
	// normally holds one).
	byTenant := map[string][]string{}
	for i := range p.Applications {
		a := &p.Applications[i]
		byTenant[a.TenantID] = append(byTenant[a.TenantID], a.ObjectID)
	}
	stored := make(map[appKey][]byte, len(p.Applications))
	for tenant, objects := range byTenant {
		ids, err := json.Marshal(objects)
		if err != nil {
			return 0, err
		}
		st, err := t.stmt(sqlPageFingerprints)
		if err != nil {
			return 0, err
		}
		rows, err := st.QueryContext(ctx, org, tenant, string(ids))
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var object string
			var fp []byte
			if err := rows.Scan(&object, &fp); err != nil {
				_ = rows.Close()
				return 0, err
			}
			stored[appKey{tenant, object}] = fp
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
	}

	unchanged := map[string][]string{}
	changed := 0
	for i := range p.Applications {
		a := &p.Applications[i]
		key := appKey{a.TenantID, a.ObjectID}
		owners, err := encOwners(a.Owners)
		if err != nil {
			return 0, err
		}
		sum := t.fp.sum(p.Connection, a, owners)
		old, exists := stored[key]
		if exists && bytes.Equal(old, sum) {
			unchanged[a.TenantID] = append(unchanged[a.TenantID], a.ObjectID)
			continue
		}
		if err := t.exec(sqlUpsertApp, org, a.TenantID, a.ObjectID, p.Connection, a.AppID, a.DisplayName,
			a.SignInAudience, encTime(a.CreatedAt), a.Manageable, owners, sum, synced, encTime(minEnd(a.Credentials))); err != nil {
			return 0, err
		}
		if exists {
			if err := t.exec(sqlDeleteCreds, org, a.TenantID, a.ObjectID); err != nil {
				return 0, err
			}
		}
		for creds := range slices.Chunk(a.Credentials, maxCredsPerInsert) {
			args := t.args[:0]
			for _, c := range creds {
				args = append(args, org, a.TenantID, a.ObjectID, c.KeyID, string(c.Kind),
					c.DisplayName, c.Hint, c.Thumbprint, encTime(c.Start), encTime(c.End))
			}
			t.args = args
			if err := t.exec(t.insertCredsSQL(len(creds)), args...); err != nil {
				return 0, err
			}
		}
		// A page that lists an application twice: the second sees the first.
		stored[key] = sum
		changed++
	}
	for tenant, objects := range unchanged {
		ids, err := json.Marshal(objects)
		if err != nil {
			return 0, err
		}
		if err := t.exec(sqlTouch, synced, org, tenant, string(ids)); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return changed, nil
}

// FinishSync deletes the connection's applications last seen by an
// earlier sync. Rows stamped by a later, overlapping sync are kept.
// Credentials go with them (ON DELETE CASCADE).
func (s *Store) FinishSync(ctx context.Context, p store.FinishSyncParams) (int, error) {
	if p.Org == "" || p.Connection == "" || p.SyncStarted.IsZero() {
		return 0, errors.New("finish sync: org, connection and SyncStarted must be set")
	}
	if err := checkTime("SyncStarted", p.SyncStarted); err != nil {
		return 0, fmt.Errorf("finish sync: %w", err)
	}
	res, err := s.w.ExecContext(ctx,
		`DELETE FROM applications WHERE org_id = ? AND connection = ? AND synced_at < ?`,
		string(p.Org), p.Connection, encTime(p.SyncStarted))
	if err != nil {
		return 0, fmt.Errorf("finish sync of %s/%s: %w", p.Org, p.Connection, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("finish sync of %s/%s: %w", p.Org, p.Connection, err)
	}
	return int(n), nil
}

// GetApplication looks the reference up as an object id, then an app id,
// then an exact display name. Ids compare case-insensitively when the
// reference is a GUID (Graph writes them in lower case; people paste
// them in any case).
func (s *Store) GetApplication(ctx context.Context, org domain.OrgID, ref string) (*domain.Application, error) {
	if ref == "" {
		return nil, fmt.Errorf("application %q: %w", ref, store.ErrNotFound)
	}
	ids := []any{ref, ref}
	if u, err := uuid.Parse(ref); err == nil {
		ids[1] = u.String()
	}
	lookups := []struct {
		field string
		where string
		args  []any
	}{
		{"object id", "object_id IN (?, ?)", ids},
		{"app id", "app_id IN (?, ?)", ids},
		{"display name", "display_name = ?", []any{ref}},
	}
	for _, l := range lookups {
		apps, err := s.queryApps(ctx, org, l.where, l.args, -1)
		if err != nil {
			return nil, fmt.Errorf("get application %q: %w", ref, err)
		}
		switch len(apps) {
		case 0:
			continue
		case 1:
			return &apps[0], nil
		default:
			e := &store.AmbiguousError{Ref: ref, Field: l.field}
			for _, a := range apps {
				e.ObjectIDs = append(e.ObjectIDs, a.ObjectID)
			}
			return nil, e
		}
	}
	return nil, fmt.Errorf("application %q in org %s: %w", ref, org, store.ErrNotFound)
}

// ListApplications returns one page with credentials, in one query.
func (s *Store) ListApplications(ctx context.Context, p store.ListApplicationsParams) ([]domain.Application, error) {
	if err := checkTime("ExpiringBefore", p.ExpiringBefore); err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	var where []string
	var args []any
	if p.Connection != "" {
		where = append(where, "connection = ?")
		args = append(args, p.Connection)
	}
	if !p.ExpiringBefore.IsZero() {
		where = append(where, "min_end < ?")
		args = append(args, encTime(p.ExpiringBefore))
	}
	if p.ManageableOnly {
		where = append(where, "manageable = 1")
	}
	if p.NamePrefix != "" {
		// A range on the name index: every string that starts with the
		// prefix, and only those, sorts in [prefix, successor).
		where = append(where, "display_name >= ? AND display_name < ?")
		args = append(args, p.NamePrefix, prefixSuccessor(p.NamePrefix))
	}
	if p.AfterName != "" || p.AfterObjectID != "" {
		where = append(where, "(display_name, object_id) > (?, ?)")
		args = append(args, p.AfterName, p.AfterObjectID)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = -1
	}
	apps, err := s.queryApps(ctx, p.Org, strings.Join(where, " AND "), args, limit)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return apps, nil
}

// prefixSuccessor returns the smallest string greater than every string
// that starts with prefix, in SQLite's BINARY (byte) order. UTF-8 never
// uses the byte 0xFF, so incrementing the last byte is always possible.
func prefixSuccessor(prefix string) string {
	b := []byte(prefix)
	b[len(b)-1]++
	return string(b)
}

// queryApps selects applications of org matching where (may be empty),
// ordered by display name and object id, at most limit (-1: all), each
// with its credentials.
func (s *Store) queryApps(ctx context.Context, org domain.OrgID, where string, args []any, limit int) ([]domain.Application, error) {
	if where != "" {
		where = " AND " + where
	}
	q := `WITH page AS (
			SELECT tenant_id, object_id, connection, app_id, display_name, sign_in_audience, created_at,
				manageable, owners, synced_at
			FROM applications
			WHERE org_id = ?` + where + `
			ORDER BY display_name, object_id, tenant_id
			LIMIT ?)
		SELECT p.tenant_id, p.object_id, p.connection, p.app_id, p.display_name, p.sign_in_audience,
			p.created_at, p.manageable, p.owners, p.synced_at,
			c.key_id, c.kind, c.display_name, c.hint, c.thumbprint, c.start_at, c.end_at
		FROM page p
		LEFT JOIN credentials c
			ON c.org_id = ? AND c.tenant_id = p.tenant_id AND c.app_object_id = p.object_id
		ORDER BY p.display_name, p.object_id, p.tenant_id, c.end_at, c.key_id`
	all := make([]any, 0, len(args)+3)
	all = append(all, string(org))
	all = append(all, args...)
	all = append(all, limit, string(org))
	rows, err := s.r.QueryContext(ctx, q, all...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()

	var (
		out                         []domain.Application
		tenant, object, owners      string
		createdAt, syncedAt         sql.NullString
		keyID, kind, cname, hint    sql.NullString
		thumb, startAt, endAt       sql.NullString
		conn, appID, name, audience string
		manageable                  bool
	)
	for rows.Next() {
		if err := rows.Scan(&tenant, &object, &conn, &appID, &name, &audience, &createdAt, &manageable,
			&owners, &syncedAt, &keyID, &kind, &cname, &hint, &thumb, &startAt, &endAt); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].TenantID != tenant || out[n-1].ObjectID != object {
			a := domain.Application{
				Org: org, Connection: conn, TenantID: tenant, ObjectID: object, AppID: appID,
				DisplayName: name, SignInAudience: audience, Manageable: manageable,
			}
			if a.CreatedAt, err = decTime(createdAt); err != nil {
				return nil, err
			}
			if a.SyncedAt, err = decTime(syncedAt); err != nil {
				return nil, err
			}
			if a.Owners, err = decOwners(owners); err != nil {
				return nil, err
			}
			out = append(out, a)
		}
		if !keyID.Valid {
			continue
		}
		c := domain.Credential{KeyID: keyID.String, Kind: domain.CredentialKind(kind.String),
			DisplayName: cname.String, Hint: hint.String, Thumbprint: thumb.String}
		if c.Start, err = decTime(startAt); err != nil {
			return nil, err
		}
		if c.End, err = decTime(endAt); err != nil {
			return nil, err
		}
		a := &out[len(out)-1]
		a.Credentials = append(a.Credentials, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// CountApplications counts an org's applications, per connection when
// connection is not empty.
func (s *Store) CountApplications(ctx context.Context, org domain.OrgID, connection string) (int, error) {
	q := `SELECT count(*) FROM applications WHERE org_id = ?`
	args := []any{string(org)}
	if connection != "" {
		q += ` AND connection = ?`
		args = append(args, connection)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count applications of %s: %w", org, err)
	}
	return n, nil
}
