package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
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

// SyncApplications writes one page in one transaction. It reads the
// stored fingerprints of the whole page with one query, rewrites only the
// applications whose Entra content changed (the row, then its credentials,
// deleted and inserted again with one statement), and records the
// connection's view of every application of the page (app_access: seen
// now, may change it or not) with two statements per tenant.
func (s *Store) SyncApplications(ctx context.Context, p store.SyncApplicationsParams) (int, error) {
	if err := codec.ValidateSync(&p); err != nil {
		return 0, fmt.Errorf("sync applications: %w", err)
	}
	if len(p.Applications) == 0 {
		return 0, nil
	}
	changed, err := s.syncPage(ctx, &p)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("sync applications: %w", err)
		}
		return 0, fmt.Errorf("sync applications of %s/%s: %w", p.Org, p.Connection, err)
	}
	return changed, nil
}

const (
	sqlPageFingerprints = `SELECT object_id, fingerprint FROM applications
		WHERE org_id = ? AND tenant_id = ? AND object_id IN (SELECT value FROM json_each(?))`
	// sqlAccessUpdate and sqlAccessInsert record that a connection saw
	// these applications now (?5: may change them or not): the views it
	// had are re-stamped, the new ones inserted. The stamp only moves
	// forward: two overlapping syncs of one connection (two rotor
	// processes) must not let the one that started earlier, writing last,
	// stamp a row older than the later one's start, or the later one's
	// FinishSync would delete an application both saw.
	//
	// With ?7 (KeepCanChange) an existing view keeps its can_change: the
	// page does not know it yet, and ReconcileManageable settles it.
	//
	// Two statements, not an upsert: an upsert's DO UPDATE cannot be told
	// to roll back instead of abort, so SQLite would keep a statement
	// journal for it (see withoutForeignKeys).
	sqlAccessUpdate = `UPDATE OR ROLLBACK app_access SET
			can_change = CASE WHEN ?7 THEN can_change ELSE ?5 END,
			synced_at = max(synced_at, ?4)
		WHERE org_id = ?1 AND tenant_id = ?2 AND object_id IN (SELECT value FROM json_each(?6)) AND connection = ?3`
	sqlAccessInsert = `INSERT OR ROLLBACK INTO app_access (org_id, tenant_id, object_id, connection, can_change, synced_at)
		SELECT DISTINCT ?1, ?2, j.value, ?3, ?5, ?4 FROM json_each(?6) j
		WHERE NOT EXISTS (SELECT 1 FROM app_access x
			WHERE x.org_id = ?1 AND x.tenant_id = ?2 AND x.object_id = j.value AND x.connection = ?3)`
	// sqlUpsertApp writes an application's content unless a sync that
	// started later already wrote it (content_at) or saw it (an access row
	// stamped later: that listing found it unchanged): an older listing
	// never replaces a newer one.
	sqlUpsertApp = `INSERT INTO applications (org_id, tenant_id, object_id, app_id, display_name,
			sign_in_audience, created_at, owners, fingerprint, min_end, content_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, tenant_id, object_id) DO UPDATE SET
			app_id = excluded.app_id, display_name = excluded.display_name,
			sign_in_audience = excluded.sign_in_audience, created_at = excluded.created_at,
			owners = excluded.owners, fingerprint = excluded.fingerprint, min_end = excluded.min_end,
			content_at = excluded.content_at
		WHERE (applications.content_at IS NULL OR applications.content_at <= excluded.content_at)
			AND excluded.content_at >= coalesce((SELECT max(x.synced_at) FROM app_access x
				WHERE x.org_id = excluded.org_id AND x.tenant_id = excluded.tenant_id AND x.object_id = excluded.object_id), '')`
	sqlDeleteCreds = `DELETE FROM credentials WHERE org_id = ? AND tenant_id = ? AND app_object_id = ?`
	sqlInsertCreds = `INSERT OR ROLLBACK INTO credentials (org_id, tenant_id, app_object_id, key_id, kind, display_name,
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
	fp     codec.Fingerprinter
	insert map[rowsKey]string // INSERTs of many rows, by statement head and row count
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

// execN is exec that returns the rows affected.
func (t *syncTx) execN(q string, args ...any) (int64, error) {
	st, err := t.stmt(q)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(t.ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
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
func (t *syncTx) insertCredsSQL(n int) string { return t.rowsSQL(sqlInsertCreds, 10, n) }

// rowsSQL is the statement head followed by n rows of cols parameters,
// made once per transaction.
func (t *syncTx) rowsSQL(head string, cols, n int) string {
	k := rowsKey{head, n}
	if q, ok := t.insert[k]; ok {
		return q
	}
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	q := b.String()
	t.insert[k] = q
	return q
}

type rowsKey struct {
	head string
	n    int
}

type appKey struct{ tenant, object string }

// newApp is an application the store does not hold yet, with its encoded
// owners and fingerprint.
type newApp struct {
	a      *domain.Application
	owners string
	sum    []byte
}

// Multi-row inserts of new applications: a first sync of 100,000
// applications would otherwise pay SQLite's per-statement cost 200,000
// times. 11 parameters a row; rows go in object id order, so that each
// page of the primary key is visited once.
const (
	maxAppsPerInsert = 64
	sqlInsertApps    = `INSERT OR ROLLBACK INTO applications (org_id, tenant_id, object_id, app_id, display_name,
			sign_in_audience, created_at, owners, fingerprint, min_end, content_at) VALUES `
)

// insertNew inserts applications that are new to the store, and their
// credentials. Nothing can have inserted them since the page's
// fingerprints were read: that read is in this write transaction.
func (t *syncTx) insertNew(org string, synced any, fresh []newApp) error {
	slices.SortFunc(fresh, func(x, y newApp) int {
		if c := strings.Compare(x.a.TenantID, y.a.TenantID); c != 0 {
			return c
		}
		return strings.Compare(x.a.ObjectID, y.a.ObjectID)
	})
	for chunk := range slices.Chunk(fresh, maxAppsPerInsert) {
		args := t.args[:0]
		for _, n := range chunk {
			a := n.a
			args = append(args, org, a.TenantID, a.ObjectID, a.AppID, a.DisplayName,
				a.SignInAudience, encTime(a.CreatedAt), n.owners, n.sum, encTime(codec.MinEnd(a.Credentials)), synced)
		}
		t.args = args
		if err := t.exec(t.rowsSQL(sqlInsertApps, 11, len(chunk)), args...); err != nil {
			return err
		}
	}
	var creds []any
	rows := 0
	flush := func() error {
		if rows == 0 {
			return nil
		}
		err := t.exec(t.insertCredsSQL(rows), creds...)
		creds, rows = creds[:0], 0
		return err
	}
	for _, n := range fresh {
		a := n.a
		for _, c := range a.Credentials {
			creds = append(creds, org, a.TenantID, a.ObjectID, c.KeyID, string(c.Kind),
				c.DisplayName, c.Hint, c.Thumbprint, encTime(c.Start), encTime(c.End))
			if rows++; rows == maxCredsPerInsert {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

func (s *Store) syncPage(ctx context.Context, p *store.SyncApplicationsParams) (int, error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	restore, err := withoutForeignKeys(ctx, conn)
	if err != nil {
		return 0, err
	}
	defer restore()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	t := &syncTx{ctx: ctx, tx: tx, stmts: map[string]*sql.Stmt{}, insert: map[rowsKey]string{}}
	defer t.close()

	org := string(p.Org)
	synced := encTime(p.SyncStarted)
	// What the foreign key to organizations would have said.
	var known int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM organizations WHERE id = ?`, org).Scan(&known); err != nil {
		return 0, err
	}
	if known == 0 {
		return 0, fmt.Errorf("organization %q: %w (call EnsureOrg first)", p.Org, store.ErrNotFound)
	}

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

	// The connection's view, by tenant: [0] may not change, [1] may.
	access := map[string]*[2][]string{}
	changed := 0
	var fresh []newApp
	pending := map[appKey]int{}
	for i := range p.Applications {
		a := &p.Applications[i]
		key := appKey{a.TenantID, a.ObjectID}
		v := access[a.TenantID]
		if v == nil {
			v = &[2][]string{}
			access[a.TenantID] = v
		}
		if a.Manageable && !p.KeepCanChange {
			v[1] = append(v[1], a.ObjectID)
		} else {
			v[0] = append(v[0], a.ObjectID)
		}
		owners, err := encOwners(a.Owners)
		if err != nil {
			return 0, err
		}
		sum := t.fp.Sum(a, owners)
		old, exists := stored[key]
		if exists && bytes.Equal(old, sum) {
			continue
		}
		if !exists {
			// New to the store: inserted with the page's other new
			// ones, many rows to a statement. A later copy in the page
			// replaces an earlier one.
			if j, ok := pending[key]; ok {
				fresh[j] = newApp{a, owners, sum}
				continue
			}
			pending[key] = len(fresh)
			fresh = append(fresh, newApp{a, owners, sum})
			changed++
			continue
		}
		n, err := t.execN(sqlUpsertApp, org, a.TenantID, a.ObjectID, a.AppID, a.DisplayName,
			a.SignInAudience, encTime(a.CreatedAt), owners, sum, encTime(codec.MinEnd(a.Credentials)), synced)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			continue // a later sync's listing is already stored
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
	if err := t.insertNew(org, synced, fresh); err != nil {
		return 0, err
	}
	for tenant, v := range access {
		for canChange, objects := range v {
			if len(objects) == 0 {
				continue
			}
			ids, err := json.Marshal(objects)
			if err != nil {
				return 0, err
			}
			for _, q := range []string{sqlAccessUpdate, sqlAccessInsert} {
				if err := t.exec(q, org, tenant, p.Connection, synced, canChange, string(ids), p.KeepCanChange); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return changed, nil
}

// FinishSync forgets the connection's views last stamped by an earlier
// sync (rows stamped by a later, overlapping sync are kept), then deletes
// the applications no connection sees; their credentials go with them (ON
// DELETE CASCADE).
func (s *Store) FinishSync(ctx context.Context, p store.FinishSyncParams) (int, error) {
	if p.Org == "" || p.Connection == "" || p.SyncStarted.IsZero() {
		return 0, errors.New("finish sync: org, connection and SyncStarted must be set")
	}
	if err := codec.CheckTime("SyncStarted", p.SyncStarted); err != nil {
		return 0, fmt.Errorf("finish sync: %w", err)
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM app_access WHERE org_id = ? AND connection = ? AND synced_at < ?`,
			string(p.Org), p.Connection, encTime(p.SyncStarted))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM applications WHERE org_id = ?1 AND NOT EXISTS
			(SELECT 1 FROM app_access x WHERE x.org_id = ?1 AND x.tenant_id = applications.tenant_id
				AND x.object_id = applications.object_id)`, string(p.Org))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("finish sync of %s/%s: %w", p.Org, p.Connection, err)
	}
	return int(n), nil
}

// SetCredentials rewrites one application's credentials and clears its
// fingerprint, so the next sync rewrites the row from Entra whatever it
// holds.
func (s *Store) SetCredentials(ctx context.Context, p store.SetCredentialsParams) error {
	if p.Org == "" || p.TenantID == "" || p.ObjectID == "" {
		return errors.New("set credentials: org, tenant and object id must be set")
	}
	for _, c := range p.Credentials {
		if err := codec.CheckTimes(codec.NamedTime{Name: "start", T: c.Start}, codec.NamedTime{Name: "end", T: c.End}); err != nil {
			return fmt.Errorf("set credentials of %s: %w", p.ObjectID, err)
		}
	}
	org := string(p.Org)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE applications SET fingerprint = x'', min_end = ?
			WHERE org_id = ? AND tenant_id = ? AND object_id = ?`, encTime(codec.MinEnd(p.Credentials)), org, p.TenantID, p.ObjectID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return store.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, sqlDeleteCreds, org, p.TenantID, p.ObjectID); err != nil {
			return err
		}
		for _, c := range p.Credentials {
			if _, err := tx.ExecContext(ctx, sqlInsertCreds+"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", org, p.TenantID, p.ObjectID,
				c.KeyID, string(c.Kind), c.DisplayName, c.Hint, c.Thumbprint, encTime(c.Start), encTime(c.End)); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("set credentials of %s in org %s: %w", p.ObjectID, p.Org, store.ErrNotFound)
	default:
		return fmt.Errorf("set credentials of %s: %w", p.ObjectID, err)
	}
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
		index string
		where string
		args  []any
	}{
		{"object id", "applications_by_object_id", "object_id IN (?, ?)", ids},
		{"app id", "applications_by_app_id", "app_id IN (?, ?)", ids},
		{"display name", "applications_by_name", "display_name = ?", []any{ref}},
	}
	for _, l := range lookups {
		apps, err := s.lookupApps(ctx, org, l.index, l.where, l.args)
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
	if err := codec.CheckTime("ExpiringBefore", p.ExpiringBefore); err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	var where []string
	var args []any
	if p.Connection != "" {
		where = append(where, "EXISTS (SELECT 1 FROM app_access x WHERE x.org_id = applications.org_id AND x.tenant_id = applications.tenant_id AND x.object_id = applications.object_id AND x.connection = ?)")
		args = append(args, p.Connection)
	}
	if !p.ExpiringBefore.IsZero() {
		where = append(where, "min_end < ?")
		args = append(args, encTime(p.ExpiringBefore))
	}
	if p.ManageableOnly {
		where = append(where, "EXISTS (SELECT 1 FROM app_access x WHERE x.org_id = applications.org_id AND x.tenant_id = applications.tenant_id AND x.object_id = applications.object_id AND x.can_change = 1)")
	}
	if p.NamePrefix != "" {
		// A range on the name index: every string that starts with the
		// prefix, and only those, sorts in [prefix, successor).
		where = append(where, "display_name >= ? AND display_name < ?")
		args = append(args, p.NamePrefix, prefixSuccessor(p.NamePrefix))
	}
	if !p.RenewableBefore.IsZero() {
		if err := codec.CheckTime("RenewableBefore", p.RenewableBefore); err != nil {
			return nil, fmt.Errorf("list applications: %w", err)
		}
		// One lookup in the credentials' primary key per application. The
		// unary + keeps SQLite off the (org_id, end_at) index, which would
		// walk every credential ending after the bound for each
		// application.
		where = append(where, `NOT EXISTS (SELECT 1 FROM credentials c WHERE c.org_id = applications.org_id
			AND c.tenant_id = applications.tenant_id AND c.app_object_id = applications.object_id
			AND substr(c.display_name, 1, ?) = ? AND +c.end_at > ?)`)
		args = append(args, len(domain.RotorPrefix), domain.RotorPrefix, encTime(p.RenewableBefore))
	}
	if err := codec.CheckTime("AfterMinEnd", p.AfterMinEnd); err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	index := ""
	if p.ObjectIDs != nil {
		if len(p.ObjectIDs) == 0 {
			return nil, nil
		}
		// One JSON parameter however many ids; the object id index finds
		// the few a person owns, then they are sorted (walking the name
		// or expiry index instead would test every application).
		ids, err := idsJSON(p.ObjectIDs)
		if err != nil {
			return nil, fmt.Errorf("list applications: %w", err)
		}
		where = append(where, "object_id IN (SELECT value FROM json_each(?))")
		args = append(args, ids)
		index = " INDEXED BY applications_by_object_id"
	}
	after := p.AfterName != "" || p.AfterObjectID != ""
	order := "display_name, object_id, tenant_id"
	switch p.Order {
	case store.OrderByName:
		if after {
			where = append(where, "(display_name, object_id) > (?, ?)")
			args = append(args, p.AfterName, p.AfterObjectID)
		}
	case store.OrderByExpiry:
		return s.listByExpiry(ctx, p, where, args, after)
	default:
		return nil, fmt.Errorf("list applications: unknown order %q", p.Order)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = -1
	}
	apps, err := s.selectApps(ctx, p.Org, index, strings.Join(where, " AND "), args, limit, order)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return apps, nil
}

// listByExpiry is ListApplications in expiry order: applications with
// credentials by earliest end (then name), those without (NULL min_end)
// last, by name. It reads the two parts with two queries, each in an
// order the (org_id, min_end) and name indexes give, so a page stops
// after limit rows: one ORDER BY "(min_end IS NULL), min_end, …" sorted
// every application of the organization for every page (130 ms at
// 100,000). A page that ends the first part and begins the second reads
// both; each part is keyset-paged on its own key, so the walk still
// neither skips nor repeats.
func (s *Store) listByExpiry(ctx context.Context, p store.ListApplicationsParams, where []string, args []any, after bool) ([]domain.Application, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = -1
	}
	var apps []domain.Application
	if !after || !p.AfterMinEnd.IsZero() {
		w, a := append(slices.Clip(where), "min_end IS NOT NULL"), slices.Clip(args)
		if after {
			w = append(w, "(min_end, display_name, object_id) > (?, ?, ?)")
			a = append(a, encTime(p.AfterMinEnd), p.AfterName, p.AfterObjectID)
		}
		// Left to itself, SQLite's planner (without statistics) reads
		// the covering name index and sorts every row. Without a name
		// prefix the min_end index gives the order and the page stops
		// early; with one, the name index's range narrows the rows
		// first (walking the min_end index instead would test every
		// application's name: 0.8 s at 100,000 for a prefix none has),
		// and only those are sorted.
		index := " INDEXED BY applications_by_min_end"
		switch {
		case p.ObjectIDs != nil:
			index = " INDEXED BY applications_by_object_id"
		case p.NamePrefix != "":
			index = " INDEXED BY applications_by_name"
		}
		got, err := s.selectApps(ctx, p.Org, index, strings.Join(w, " AND "), a, limit, "min_end, display_name, object_id, tenant_id")
		if err != nil {
			return nil, fmt.Errorf("list applications: %w", err)
		}
		if limit > 0 && len(got) >= limit {
			return got, nil
		}
		apps = got
	}
	w, a := append(slices.Clip(where), "min_end IS NULL"), slices.Clip(args)
	if after && p.AfterMinEnd.IsZero() {
		w = append(w, "(display_name, object_id) > (?, ?)")
		a = append(a, p.AfterName, p.AfterObjectID)
	}
	rest := limit
	if limit > 0 {
		rest = limit - len(apps)
	}
	index := ""
	if p.ObjectIDs != nil {
		index = " INDEXED BY applications_by_object_id"
	}
	got, err := s.selectApps(ctx, p.Org, index, strings.Join(w, " AND "), a, rest, "display_name, object_id, tenant_id")
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return append(apps, got...), nil
}

// pageOrder is order applied to the page's columns: p.display_name for
// display_name or +display_name.
func pageOrder(order string) string {
	cols := strings.Split(order, ", ")
	for i, c := range cols {
		c = strings.TrimPrefix(c, "+")
		if strings.HasPrefix(c, "(") {
			cols[i] = "(p." + c[1:]
		} else {
			cols[i] = "p." + c
		}
	}
	return strings.Join(cols, ", ")
}

// prefixSuccessor returns the smallest string greater than every string
// that starts with prefix, in SQLite's BINARY (byte) order. UTF-8 never
// uses the byte 0xFF, so incrementing the last byte is always possible.
func prefixSuccessor(prefix string) string {
	b := []byte(prefix)
	b[len(b)-1]++
	return string(b)
}

// lookupApps is ListApplications' query for a condition that index narrows to a few
// rows (an object id, an app id, a name), named so: the few are sorted
// after the lookup. Left to itself, SQLite's planner walks the org's
// whole name index instead (0.9 s at 100,000 applications): without
// statistics it takes org_id = ? for a narrow condition, when every row
// of an organization matches it, and prefers the index that covers the
// query in name order.
func (s *Store) lookupApps(ctx context.Context, org domain.OrgID, index, where string, args []any) ([]domain.Application, error) {
	return s.selectApps(ctx, org, " INDEXED BY "+index, where, args, -1, "+display_name, +object_id, +tenant_id")
}

// selectApps reads the applications of org matching where (may be
// empty), ordered by order (columns of applications, a "+" before one
// keeping it from choosing an index), at most limit (-1: all), each with
// its access and credentials; indexedBy, if not empty, is the INDEXED BY
// clause the lookup uses.
func (s *Store) selectApps(ctx context.Context, org domain.OrgID, indexedBy, where string, args []any, limit int, order string) ([]domain.Application, error) {
	if where != "" {
		where = " AND " + where
	}
	// Each application's access comes as one JSON array of
	// [connection, can_change] pairs, sorted by connection. It was last
	// seen when the latest of its views was: a view is as of its own
	// stamp or, when later, its connection's last successful sync (an
	// incremental sync stamps only what changed, and every view it left
	// alone was unchanged then).
	q := `WITH page AS (
			SELECT tenant_id, object_id, app_id, display_name, sign_in_audience, created_at, owners, content_at, min_end
			FROM applications` + indexedBy + `
			WHERE org_id = ?` + where + `
			ORDER BY ` + order + `
			LIMIT ?),
		acc AS (
			SELECT p.tenant_id, p.object_id,
				(SELECT json_group_array(json_array(connection, can_change)) FROM
					(SELECT x.connection, x.can_change FROM app_access x
					 WHERE x.org_id = ?1 AND x.tenant_id = p.tenant_id AND x.object_id = p.object_id
					 ORDER BY x.connection)) AS access,
				(SELECT max(max(x.synced_at, coalesce(s.synced_at, ''))) FROM app_access x
				 LEFT JOIN inventory_syncs s ON s.org_id = x.org_id AND s.connection = x.connection
				 WHERE x.org_id = ?1 AND x.tenant_id = p.tenant_id AND x.object_id = p.object_id) AS synced_at
			FROM page p)
		SELECT p.tenant_id, p.object_id, a.access, p.app_id, p.display_name, p.sign_in_audience,
			p.created_at, p.owners, a.synced_at,
			c.key_id, c.kind, c.display_name, c.hint, c.thumbprint, c.start_at, c.end_at,
			d.thumbprint_sha1, d.thumbprint_sha256, d.subject, d.issuer, d.key_algorithm, d.key_size,
			d.not_before, d.not_after
		FROM page p
		JOIN acc a ON a.tenant_id = p.tenant_id AND a.object_id = p.object_id
		LEFT JOIN credentials c
			ON c.org_id = ? AND c.tenant_id = p.tenant_id AND c.app_object_id = p.object_id
		LEFT JOIN certificate_details d
			ON d.org_id = c.org_id AND d.tenant_id = c.tenant_id AND d.app_object_id = c.app_object_id AND d.key_id = c.key_id
		ORDER BY ` + pageOrder(order) + `, c.end_at, c.key_id`
	all := make([]any, 0, len(args)+3)
	all = append(all, string(org))
	all = append(all, args...)
	all = append(all, limit, string(org))
	// The ?1 of acc reuses the first parameter, the org; a plain ? takes
	// the number after the highest assigned so far, so the numbering of
	// the others is unchanged.
	rows, err := s.r.QueryContext(ctx, q, all...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()

	var (
		out                           []domain.Application
		tenant, object, owners        string
		createdAt, syncedAt           sql.NullString
		keyID, kind, cname, hint      sql.NullString
		thumb, startAt, endAt         sql.NullString
		access, appID, name, audience string
		cert                          certRow
	)
	for rows.Next() {
		if err := rows.Scan(&tenant, &object, &access, &appID, &name, &audience, &createdAt,
			&owners, &syncedAt, &keyID, &kind, &cname, &hint, &thumb, &startAt, &endAt,
			&cert.sha1, &cert.sha256, &cert.subject, &cert.issuer, &cert.alg, &cert.size, &cert.notBefore, &cert.notAfter); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].TenantID != tenant || out[n-1].ObjectID != object {
			a := domain.Application{
				Org: org, TenantID: tenant, ObjectID: object, AppID: appID,
				DisplayName: name, SignInAudience: audience,
			}
			if a.Access, err = decAccess(access); err != nil {
				return nil, err
			}
			for _, x := range a.Access {
				a.Manageable = a.Manageable || x.CanChange
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
		if c.Certificate, err = cert.info(); err != nil {
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

// CountOwnedApplications counts the connection's views that may change
// their application (the index on org, connection, object, can_change).
func (s *Store) CountOwnedApplications(ctx context.Context, org domain.OrgID, connection string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM app_access WHERE org_id = ? AND connection = ? AND can_change = 1`,
		string(org), connection).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count applications %s owns in %s: %w", connection, org, err)
	}
	return n, nil
}

// CountCredentialsByExpiry counts with one aggregate per bound, in one
// pass over the organization's credentials (their primary key's range).
func (s *Store) CountCredentialsByExpiry(ctx context.Context, p store.CountCredentialsByExpiryParams) ([]int, error) {
	if len(p.Bounds) == 0 {
		return []int{}, nil
	}
	if len(p.Bounds) > store.MaxExpiryBounds {
		return nil, fmt.Errorf("count credentials by expiry: %d bounds, at most %d", len(p.Bounds), store.MaxExpiryBounds)
	}
	cols := make([]string, len(p.Bounds))
	args := make([]any, 0, len(p.Bounds)+1)
	for i, b := range p.Bounds {
		if err := codec.CheckTime("Bounds", b); err != nil || b.IsZero() {
			return nil, fmt.Errorf("count credentials by expiry: bound %d: %v", i, cmp.Or(err, errors.New("zero time")))
		}
		cols[i] = "count(*) FILTER (WHERE end_at <= ?)"
		args = append(args, encTime(b))
	}
	// Only credentials ending by the last bound count at all: a range of
	// the (org_id, end_at) index.
	args = append(args, string(p.Org), encTime(slices.MaxFunc(p.Bounds, time.Time.Compare)))
	q := "SELECT " + strings.Join(cols, ", ") + " FROM credentials INDEXED BY credentials_by_end WHERE org_id = ? AND end_at <= ?"
	if p.ObjectIDs != nil {
		ids, err := idsJSON(p.ObjectIDs)
		if err != nil {
			return nil, fmt.Errorf("count credentials by expiry: %w", err)
		}
		q += " AND app_object_id IN (SELECT value FROM json_each(?))"
		args = append(args, ids)
	}
	out := make([]int, len(p.Bounds))
	dest := make([]any, len(out))
	for i := range out {
		dest[i] = &out[i]
	}
	if err := s.r.QueryRowContext(ctx, q, args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("count credentials of %s by expiry: %w", p.Org, err)
	}
	return out, nil
}

// CountApplications counts an org's applications, per connection when
// connection is not empty.
func (s *Store) CountApplications(ctx context.Context, org domain.OrgID, connection string) (int, error) {
	q := `SELECT count(*) FROM applications WHERE org_id = ?`
	args := []any{string(org)}
	if connection != "" {
		q = `SELECT count(*) FROM app_access WHERE org_id = ? AND connection = ?`
		args = append(args, connection)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count applications of %s: %w", org, err)
	}
	return n, nil
}

// idsJSON is a list of ids as one JSON array parameter, for
// "IN (SELECT value FROM json_each(?))": one bound value however many ids
// (SQLite caps a statement's parameters).
func idsJSON(ids []string) (string, error) {
	if ids == nil {
		ids = []string{}
	}
	b, err := json.Marshal(ids)
	return string(b), err
}
