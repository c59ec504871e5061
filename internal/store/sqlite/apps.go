package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
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
		keys := make(map[string]struct{}, len(a.Credentials))
		for _, c := range a.Credentials {
			if c.KeyID == "" {
				return fmt.Errorf("application %s: a credential has no key id", a.ObjectID)
			}
			if _, dup := keys[c.KeyID]; dup {
				return fmt.Errorf("application %s: key id %s appears twice", a.ObjectID, c.KeyID)
			}
			keys[c.KeyID] = struct{}{}
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

// syncStmts are the statements of one sync page, prepared once per page.
type syncStmts struct {
	fingerprint, touch, upsert, deleteCreds, insertCred *sql.Stmt
}

func prepareSync(ctx context.Context, tx *sql.Tx) (*syncStmts, error) {
	var st syncStmts
	var err error
	prep := func(dst **sql.Stmt, q string) {
		if err == nil {
			*dst, err = tx.PrepareContext(ctx, q)
		}
	}
	prep(&st.fingerprint, `SELECT fingerprint FROM applications WHERE org_id = ? AND tenant_id = ? AND object_id = ?`)
	prep(&st.touch, `UPDATE applications SET synced_at = ? WHERE org_id = ? AND tenant_id = ? AND object_id = ?`)
	prep(&st.upsert, `INSERT INTO applications (org_id, tenant_id, object_id, connection, app_id, display_name,
			sign_in_audience, created_at, manageable, owners, fingerprint, synced_at, min_end)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, tenant_id, object_id) DO UPDATE SET
			connection = excluded.connection, app_id = excluded.app_id, display_name = excluded.display_name,
			sign_in_audience = excluded.sign_in_audience, created_at = excluded.created_at,
			manageable = excluded.manageable, owners = excluded.owners, fingerprint = excluded.fingerprint,
			synced_at = excluded.synced_at, min_end = excluded.min_end`)
	prep(&st.deleteCreds, `DELETE FROM credentials WHERE org_id = ? AND tenant_id = ? AND app_object_id = ?`)
	prep(&st.insertCred, `INSERT INTO credentials (org_id, tenant_id, app_object_id, key_id, kind, display_name,
			hint, thumbprint, start_at, end_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		st.close()
		return nil, err
	}
	return &st, nil
}

func (st *syncStmts) close() {
	for _, s := range []*sql.Stmt{st.fingerprint, st.touch, st.upsert, st.deleteCreds, st.insertCred} {
		if s != nil {
			_ = s.Close()
		}
	}
}

// SyncApplications writes one page in one transaction. An application
// whose fingerprint matches the stored one only has synced_at moved.
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

func (s *Store) syncPage(ctx context.Context, p *store.SyncApplicationsParams) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	st, err := prepareSync(ctx, tx)
	if err != nil {
		return 0, err
	}
	defer st.close()

	org := string(p.Org)
	synced := encTime(p.SyncStarted)
	var fp fingerprinter
	var old []byte
	changed := 0
	for i := range p.Applications {
		a := &p.Applications[i]
		owners, err := encOwners(a.Owners)
		if err != nil {
			return 0, err
		}
		sum := fp.sum(p.Connection, a, owners)
		exists := true
		switch err := st.fingerprint.QueryRowContext(ctx, org, a.TenantID, a.ObjectID).Scan(&old); {
		case errors.Is(err, sql.ErrNoRows):
			exists = false
		case err != nil:
			return 0, err
		case bytes.Equal(old, sum):
			if _, err := st.touch.ExecContext(ctx, synced, org, a.TenantID, a.ObjectID); err != nil {
				return 0, err
			}
			continue
		}
		if _, err := st.upsert.ExecContext(ctx, org, a.TenantID, a.ObjectID, p.Connection, a.AppID, a.DisplayName,
			a.SignInAudience, encTime(a.CreatedAt), a.Manageable, owners, sum, synced, encTime(minEnd(a.Credentials))); err != nil {
			return 0, err
		}
		if exists {
			if _, err := st.deleteCreds.ExecContext(ctx, org, a.TenantID, a.ObjectID); err != nil {
				return 0, err
			}
		}
		for _, c := range a.Credentials {
			if _, err := st.insertCred.ExecContext(ctx, org, a.TenantID, a.ObjectID, c.KeyID, string(c.Kind),
				c.DisplayName, c.Hint, c.Thumbprint, encTime(c.Start), encTime(c.End)); err != nil {
				return 0, err
			}
		}
		changed++
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
