package postgres

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
	now := s.clock.Now()
	err := s.inOrg(ctx, org, func(tx pgx.Tx) error { return ensureOrg(ctx, tx, org, name, now) })
	if err != nil {
		return fmt.Errorf("ensure org %s: %w", org, err)
	}
	return nil
}

func ensureOrg(ctx context.Context, tx pgx.Tx, org domain.OrgID, name string, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
		string(org), name, tz(now))
	return err
}

const (
	// sqlPageFingerprints reads the stored fingerprints of a page. A join
	// with the page, not object_id = ANY($3): with statistics of a table
	// that was empty when the sync began (a first sync), PostgreSQL's
	// generic plan for ANY scans the whole table and compares each row
	// with each of the page's thousands of ids.
	sqlPageFingerprints = `SELECT a.object_id, a.fingerprint FROM unnest($3::text[]) AS p (object_id)
		JOIN applications a ON a.org_id = $1 AND a.tenant_id = $2 AND a.object_id = p.object_id`
	// sqlAccess records that a connection saw these applications now
	// ($5: may change them or not). The stamp only moves forward: two
	// overlapping syncs of one connection must not let the one that
	// started earlier, writing last, stamp a row older than the later
	// one's start, or the later one's FinishSync would delete an
	// application both saw.
	//
	// With $7 (KeepCanChange) an existing view keeps its can_change: the
	// page does not know it yet, and ReconcileManageable settles it.
	sqlAccess = `INSERT INTO app_access (org_id, tenant_id, object_id, connection, can_change, synced_at)
		SELECT $1, $2, o, $3, $5, $4 FROM unnest($6::text[]) AS o
		ON CONFLICT (org_id, tenant_id, object_id, connection) DO UPDATE SET
			can_change = CASE WHEN $7::boolean THEN app_access.can_change ELSE excluded.can_change END,
			synced_at = greatest(app_access.synced_at, excluded.synced_at)`
	// sqlUpsertApps writes applications' content (one array per column,
	// each application once) unless a sync that started later already
	// wrote it (content_at) or saw it (an access row stamped later: that
	// listing found it unchanged): an older listing never replaces a newer
	// one. It returns the applications it wrote.
	sqlUpsertApps = `INSERT INTO applications (org_id, tenant_id, object_id, app_id, display_name,
			sign_in_audience, created_at, owners, fingerprint, min_end, content_at)
		SELECT $1, a.tenant_id, a.object_id, a.app_id, a.display_name, a.sign_in_audience, a.created_at,
				ARRAY(SELECT jsonb_array_elements_text(a.owners::jsonb)), a.fingerprint, a.min_end, $2
			FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
				$9::text[], $10::bytea[], $11::timestamptz[])
				AS a (tenant_id, object_id, app_id, display_name, sign_in_audience, created_at, owners, fingerprint, min_end)
		ON CONFLICT (org_id, tenant_id, object_id) DO UPDATE SET
			app_id = excluded.app_id, display_name = excluded.display_name,
			sign_in_audience = excluded.sign_in_audience, created_at = excluded.created_at,
			owners = excluded.owners, fingerprint = excluded.fingerprint, min_end = excluded.min_end,
			content_at = excluded.content_at
		WHERE (applications.content_at IS NULL OR applications.content_at <= excluded.content_at)
			AND excluded.content_at >= coalesce((SELECT max(x.synced_at) FROM app_access x
				WHERE x.org_id = excluded.org_id AND x.tenant_id = excluded.tenant_id AND x.object_id = excluded.object_id), '-infinity')
		RETURNING tenant_id, object_id`
	// sqlDeleteAppsCreds deletes the credentials of many applications.
	sqlDeleteAppsCreds = `DELETE FROM credentials c USING unnest($2::text[], $3::text[]) AS a (tenant_id, object_id)
		WHERE c.org_id = $1 AND c.tenant_id = a.tenant_id AND c.app_object_id = a.object_id`
	// sqlInsertAppsCreds inserts the credentials of many applications.
	sqlInsertAppsCreds = `INSERT INTO credentials (org_id, tenant_id, app_object_id, key_id, kind, display_name,
			hint, thumbprint, start_at, end_at)
		SELECT $1, c.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::timestamptz[], $10::timestamptz[]) AS c`
	sqlDeleteCreds = `DELETE FROM credentials WHERE org_id = $1 AND tenant_id = $2 AND app_object_id = $3`
	// sqlInsertCreds writes any number of an application's credentials
	// in one statement, one array per column.
	sqlInsertCreds = `INSERT INTO credentials (org_id, tenant_id, app_object_id, key_id, kind, display_name,
			hint, thumbprint, start_at, end_at)
		SELECT $1, $2, $3, c.* FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::timestamptz[], $10::timestamptz[]) AS c`
)

// insertCreds writes creds for one application.
func insertCreds(ctx context.Context, tx pgx.Tx, org domain.OrgID, tenant, object string, creds []domain.Credential) error {
	if len(creds) == 0 {
		return nil
	}
	n := len(creds)
	keys, kinds, names, hints, thumbs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	starts, ends := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	for i, c := range creds {
		keys[i], kinds[i], names[i], hints[i], thumbs[i] = c.KeyID, string(c.Kind), c.DisplayName, c.Hint, c.Thumbprint
		starts[i], ends[i] = tz(c.Start), tz(c.End)
	}
	_, err := tx.Exec(ctx, sqlInsertCreds, string(org), tenant, object, keys, kinds, names, hints, thumbs, starts, ends)
	return err
}

// upsertRows are applications to write, one slice per column.
type upsertRows struct {
	tenant, object, appID, name, audience, owners []string
	created, minEnd                               []pgtype.Timestamptz
	sum                                           [][]byte
}

// add adds an application; owners is the JSON of its sorted owners.
func (u *upsertRows) add(a *domain.Application, owners string, sum []byte) {
	u.tenant, u.object, u.appID = append(u.tenant, a.TenantID), append(u.object, a.ObjectID), append(u.appID, a.AppID)
	u.name, u.audience = append(u.name, a.DisplayName), append(u.audience, a.SignInAudience)
	u.owners, u.sum = append(u.owners, owners), append(u.sum, sum)
	u.created, u.minEnd = append(u.created, tz(a.CreatedAt)), append(u.minEnd, tz(codec.MinEnd(a.Credentials)))
}

// credRows are credentials to insert, one slice per column.
type credRows struct {
	tenant, object, key, kind, name, hint, thumb []string
	start, end                                   []pgtype.Timestamptz
}

func (r *credRows) add(tenant, object string, c domain.Credential) {
	r.tenant, r.object, r.key = append(r.tenant, tenant), append(r.object, object), append(r.key, c.KeyID)
	r.kind, r.name, r.hint, r.thumb = append(r.kind, string(c.Kind)), append(r.name, c.DisplayName), append(r.hint, c.Hint), append(r.thumb, c.Thumbprint)
	r.start, r.end = append(r.start, tz(c.Start)), append(r.end, tz(c.End))
}

// ownersKey is the owners' form the fingerprint covers: the JSON of the
// sorted list (the form SQLite stores), so ["a,b"] and ["a", "b"] differ.
func ownersKey(sorted []string) (string, error) {
	b, err := json.Marshal(sorted)
	if err != nil {
		return "", fmt.Errorf("encode owners: %w", err)
	}
	return string(b), nil
}

// SyncApplications writes one page in one transaction. It reads the
// stored fingerprints of the page with one query per tenant, rewrites
// only the applications whose Entra content changed (the row, then its
// credentials, deleted and inserted again with one statement each), and
// records the connection's view of every application of the page with
// one statement per tenant and kind of access. It holds the org's
// inventory lock (lockInventory): the fingerprints it read stay true until
// it commits, and overlapping syncs by two processes take their turns.
func (s *Store) SyncApplications(ctx context.Context, p store.SyncApplicationsParams) (int, error) {
	if err := codec.ValidateSync(&p); err != nil {
		return 0, fmt.Errorf("sync applications: %w", err)
	}
	if len(p.Applications) == 0 {
		return 0, nil
	}
	// Key order, keeping a page's later copy of an application after its
	// earlier one: the later copy wins.
	apps := slices.Clone(p.Applications)
	slices.SortStableFunc(apps, func(x, y domain.Application) int {
		return cmp.Or(strings.Compare(x.TenantID, y.TenantID), strings.Compare(x.ObjectID, y.ObjectID))
	})
	var changed int
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockInventory, string(p.Org)); err != nil {
			return err
		}
		var err error
		changed, err = syncPage(ctx, tx, &p, apps)
		return err
	})
	if err != nil {
		if isOrgMissing(err) {
			return 0, fmt.Errorf("sync applications: organization %q: %w (call EnsureOrg first)", p.Org, store.ErrNotFound)
		}
		return 0, fmt.Errorf("sync applications of %s/%s: %w", p.Org, p.Connection, err)
	}
	return changed, nil
}

type appKey struct{ tenant, object string }

func syncPage(ctx context.Context, tx pgx.Tx, p *store.SyncApplicationsParams, apps []domain.Application) (int, error) {
	org := string(p.Org)
	synced := tz(p.SyncStarted)

	// The stored fingerprints of the page, one query per tenant (a page
	// normally holds one), and each application's last copy's access.
	var tenants []string
	byTenant := map[string][]string{}
	last := map[appKey]bool{} // the page's last copy's Manageable
	for i := range apps {
		a := &apps[i]
		if _, ok := byTenant[a.TenantID]; !ok {
			tenants = append(tenants, a.TenantID)
		}
		byTenant[a.TenantID] = append(byTenant[a.TenantID], a.ObjectID)
		last[appKey{a.TenantID, a.ObjectID}] = a.Manageable
	}
	stored := make(map[appKey][]byte, len(apps))
	for _, tenant := range tenants {
		rows, err := tx.Query(ctx, sqlPageFingerprints, org, tenant, byTenant[tenant])
		if err != nil {
			return 0, err
		}
		var object string
		var fp []byte
		_, err = pgx.ForEachRow(rows, []any{&object, &fp}, func() error {
			stored[appKey{tenant, object}] = slices.Clone(fp)
			return nil
		})
		if err != nil {
			return 0, err
		}
	}

	// Only the applications whose Entra content changed are written: the
	// page's last copy of each (apps is in key order with later copies
	// after earlier ones), all of them with one statement, then their old
	// credentials deleted and the new ones inserted with one statement
	// each. One round trip per application would make a first sync of
	// 100,000 applications cost 200,000 of them.
	var (
		f       codec.Fingerprinter
		up      upsertRows
		written = map[appKey]bool{}
	)
	for i := range apps {
		a := &apps[i]
		key := appKey{a.TenantID, a.ObjectID}
		if i+1 < len(apps) && apps[i+1].TenantID == a.TenantID && apps[i+1].ObjectID == a.ObjectID {
			continue // a later copy in the page wins
		}
		ok, err := ownersKey(codec.SortedOwners(a.Owners))
		if err != nil {
			return 0, err
		}
		sum := f.Sum(a, ok)
		if old, exists := stored[key]; exists && bytes.Equal(old, sum) {
			continue
		}
		up.add(a, ok, sum)
	}
	if len(up.tenant) > 0 {
		rows, err := tx.Query(ctx, sqlUpsertApps, org, synced, up.tenant, up.object, up.appID, up.name,
			up.audience, up.created, up.owners, up.sum, up.minEnd)
		if err != nil {
			return 0, err
		}
		var tenant, object string
		if _, err := pgx.ForEachRow(rows, []any{&tenant, &object}, func() error {
			written[appKey{tenant, object}] = true
			return nil
		}); err != nil {
			return 0, err
		}
	}
	if len(written) > 0 {
		var del, creds credRows
		for i := range apps {
			a := &apps[i]
			key := appKey{a.TenantID, a.ObjectID}
			if !written[key] || (i+1 < len(apps) && apps[i+1].TenantID == a.TenantID && apps[i+1].ObjectID == a.ObjectID) {
				continue
			}
			if _, exists := stored[key]; exists {
				del.tenant, del.object = append(del.tenant, a.TenantID), append(del.object, a.ObjectID)
			}
			for _, c := range a.Credentials {
				creds.add(a.TenantID, a.ObjectID, c)
			}
		}
		if len(del.tenant) > 0 {
			if _, err := tx.Exec(ctx, sqlDeleteAppsCreds, org, del.tenant, del.object); err != nil {
				return 0, err
			}
		}
		if len(creds.tenant) > 0 {
			if _, err := tx.Exec(ctx, sqlInsertAppsCreds, org, creds.tenant, creds.object, creds.key, creds.kind,
				creds.name, creds.hint, creds.thumb, creds.start, creds.end); err != nil {
				return 0, err
			}
		}
	}
	changed := len(written)
	// The connection's view, by tenant and access, each application once
	// (an upsert may not touch a row twice), in key order.
	for _, tenant := range tenants {
		var views [2][]string // [0] may not change, [1] may
		seen := map[string]bool{}
		for _, object := range byTenant[tenant] {
			if seen[object] {
				continue
			}
			seen[object] = true
			if last[appKey{tenant, object}] && !p.KeepCanChange {
				views[1] = append(views[1], object)
			} else {
				views[0] = append(views[0], object)
			}
		}
		for canChange, objects := range views {
			if len(objects) == 0 {
				continue
			}
			if _, err := tx.Exec(ctx, sqlAccess, org, tenant, p.Connection, synced, canChange == 1, objects, p.KeepCanChange); err != nil {
				return 0, err
			}
		}
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
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockInventory, string(p.Org)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM app_access WHERE org_id = $1 AND connection = $2 AND synced_at < $3`,
			string(p.Org), p.Connection, tz(p.SyncStarted))
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		return deleteUnseen(ctx, tx, p.Org)
	})
	if err != nil {
		return 0, fmt.Errorf("finish sync of %s/%s: %w", p.Org, p.Connection, err)
	}
	return int(n), nil
}

// deleteUnseen deletes the org's applications no connection sees, and
// their credentials (no foreign key cascades: migration 0004).
func deleteUnseen(ctx context.Context, tx pgx.Tx, org domain.OrgID) error {
	_, err := tx.Exec(ctx, `WITH gone AS (
			DELETE FROM applications a WHERE a.org_id = $1 AND NOT EXISTS
				(SELECT 1 FROM app_access x WHERE x.org_id = $1 AND x.tenant_id = a.tenant_id AND x.object_id = a.object_id)
			RETURNING a.tenant_id, a.object_id)
		DELETE FROM credentials c USING gone g
			WHERE c.org_id = $1 AND c.tenant_id = g.tenant_id AND c.app_object_id = g.object_id`, string(org))
	return err
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
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockInventory, org); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE applications SET fingerprint = '\x', min_end = $1
			WHERE org_id = $2 AND tenant_id = $3 AND object_id = $4`, tz(codec.MinEnd(p.Credentials)), org, p.TenantID, p.ObjectID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		if _, err := tx.Exec(ctx, sqlDeleteCreds, org, p.TenantID, p.ObjectID); err != nil {
			return err
		}
		return insertCreds(ctx, tx, p.Org, p.TenantID, p.ObjectID, p.Credentials)
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
	ids := []string{ref, ref}
	if u, err := uuid.Parse(ref); err == nil {
		ids[1] = u.String()
	}
	lookups := []struct {
		field, where string
		arg          any
	}{
		{"object id", "object_id = ANY($%d::text[])", ids},
		{"app id", "app_id = ANY($%d::text[])", ids},
		{"display name", "display_name = $%d", ref},
	}
	for _, l := range lookups {
		apps, err := s.queryApps(ctx, org, []string{l.where}, []any{l.arg}, 0)
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
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if p.Connection != "" {
		add("EXISTS (SELECT 1 FROM app_access x WHERE x.org_id = a.org_id AND x.tenant_id = a.tenant_id AND x.object_id = a.object_id AND x.connection = $%d)", p.Connection)
	}
	if !p.ExpiringBefore.IsZero() {
		add("a.min_end < $%d", tz(p.ExpiringBefore))
	}
	if p.ManageableOnly {
		add("EXISTS (SELECT 1 FROM app_access x WHERE x.org_id = a.org_id AND x.tenant_id = a.tenant_id AND x.object_id = a.object_id AND x.can_change)")
	}
	if p.NamePrefix != "" {
		// A range on the name index: every string that starts with the
		// prefix, and only those, sorts in [prefix, successor).
		if succ, ok := prefixSuccessor(p.NamePrefix); ok {
			add("a.display_name >= $%d AND a.display_name < $%d", p.NamePrefix, succ)
		} else {
			add("a.display_name >= $%d", p.NamePrefix)
		}
	}
	if !p.RenewableBefore.IsZero() {
		if err := codec.CheckTime("RenewableBefore", p.RenewableBefore); err != nil {
			return nil, fmt.Errorf("list applications: %w", err)
		}
		add(`NOT EXISTS (SELECT 1 FROM credentials c WHERE c.org_id = a.org_id AND c.tenant_id = a.tenant_id
			AND c.app_object_id = a.object_id AND starts_with(c.display_name, $%d) AND c.end_at > $%d)`,
			domain.RotorPrefix, tz(p.RenewableBefore))
	}
	if p.ObjectIDs != nil {
		if len(p.ObjectIDs) == 0 {
			return nil, nil
		}
		add("a.object_id = ANY($%d::text[])", p.ObjectIDs)
	}
	after := p.AfterName != "" || p.AfterObjectID != ""
	order := "a.display_name, a.object_id, a.tenant_id"
	switch p.Order {
	case store.OrderByName:
		if after {
			add("(a.display_name, a.object_id) > ($%d, $%d)", p.AfterName, p.AfterObjectID)
		}
	case store.OrderByExpiry:
		order = "a.min_end NULLS LAST, a.display_name, a.object_id, a.tenant_id"
		switch {
		case after && p.AfterMinEnd.IsZero():
			add("a.min_end IS NULL AND (a.display_name, a.object_id) > ($%d, $%d)", p.AfterName, p.AfterObjectID)
		case after:
			add("(a.min_end IS NULL OR (a.min_end, a.display_name, a.object_id) > ($%d, $%d, $%d))", tz(p.AfterMinEnd), p.AfterName, p.AfterObjectID)
		}
	default:
		return nil, fmt.Errorf("list applications: unknown order %q", p.Order)
	}
	apps, err := s.selectApps(ctx, p.Org, where, args, p.Limit, order)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return apps, nil
}

// prefixSuccessor returns the smallest valid UTF-8 string greater than
// every string that starts with prefix, in byte order (COLLATE "C", which
// for UTF-8 is code point order): the prefix with its last character
// replaced by the next one. PostgreSQL refuses invalid UTF-8, so the
// SQLite store's trick of incrementing the last byte will not do. ok is
// false when no such string exists (the prefix is all U+10FFFF).
func prefixSuccessor(prefix string) (string, bool) {
	for p := prefix; p != ""; {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		next := r + 1
		if next == 0xD800 { // surrogates are not characters
			next = 0xE000
		}
		if next <= utf8.MaxRune {
			return p + string(next), true
		}
	}
	return "", false
}

// queryApps selects applications of org matching every condition of
// where (each with %d verbs for its arguments' placeholders), ordered by
// display name and object id, at most limit (0: all), each with its
// access and credentials.
func (s *Store) queryApps(ctx context.Context, org domain.OrgID, where []string, args []any, limit int) ([]domain.Application, error) {
	return s.selectApps(ctx, org, where, args, limit, "a.display_name, a.object_id, a.tenant_id")
}

// selectApps is queryApps in order: columns of applications a.
func (s *Store) selectApps(ctx context.Context, org domain.OrgID, where []string, args []any, limit int, order string) ([]domain.Application, error) {
	all := []any{string(org)}
	conds := []string{"a.org_id = $1"}
	for _, w := range where {
		n := strings.Count(w, "%d")
		nums := make([]any, n)
		for i := range nums {
			nums[i] = len(all) + 1 + i
		}
		conds = append(conds, fmt.Sprintf(w, nums...))
		all = append(all, args[:n]...)
		args = args[n:]
	}
	var limitSQL string
	if limit > 0 {
		all = append(all, limit)
		limitSQL = " LIMIT $" + strconv.Itoa(len(all))
	}
	// Each application's access comes as two arrays ordered by connection.
	// It was last seen when the latest of its views was: a view is as of
	// its own stamp or, when later, its connection's last successful sync
	// (an incremental sync stamps only what changed, and every view it
	// left alone was unchanged then).
	q := `WITH page AS (
			SELECT a.tenant_id, a.object_id, a.app_id, a.display_name, a.sign_in_audience, a.created_at, a.owners, a.min_end
			FROM applications a
			WHERE ` + strings.Join(conds, " AND ") + `
			ORDER BY ` + order + limitSQL + `)
		SELECT p.tenant_id, p.object_id, p.app_id, p.display_name, p.sign_in_audience, p.created_at, p.owners,
			acc.conns, acc.changes, acc.synced_at,
			c.key_id, c.kind, c.display_name, c.hint, c.thumbprint, c.start_at, c.end_at,
			d.thumbprint_sha1, d.thumbprint_sha256, d.subject, d.issuer, d.key_algorithm, d.key_size,
			d.not_before, d.not_after
		FROM page p
		CROSS JOIN LATERAL (
			SELECT coalesce(array_agg(x.connection ORDER BY x.connection), '{}') AS conns,
				coalesce(array_agg(x.can_change ORDER BY x.connection), '{}') AS changes,
				max(greatest(x.synced_at, s.synced_at)) AS synced_at
			FROM app_access x
			LEFT JOIN inventory_syncs s ON s.org_id = x.org_id AND s.connection = x.connection
			WHERE x.org_id = $1 AND x.tenant_id = p.tenant_id AND x.object_id = p.object_id) acc
		LEFT JOIN credentials c
			ON c.org_id = $1 AND c.tenant_id = p.tenant_id AND c.app_object_id = p.object_id
		LEFT JOIN certificate_details d
			ON d.org_id = c.org_id AND d.tenant_id = c.tenant_id AND d.app_object_id = c.app_object_id AND d.key_id = c.key_id
		ORDER BY ` + strings.ReplaceAll(order, "a.", "p.") + `, c.end_at NULLS FIRST, c.key_id`

	var out []domain.Application
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, q, all...)
		if err != nil {
			return err
		}
		var (
			tenant, object, appID, name, audience string
			createdAt, syncedAt, startAt, endAt   pgtype.Timestamptz
			owners, conns                         []string
			changes                               []bool
			keyID, kind, cname, hint, thumb       pgtype.Text
			dSHA1, dSHA256, dSubject, dIssuer     pgtype.Text
			dAlg                                  pgtype.Text
			dSize                                 pgtype.Int4
			dNotBefore, dNotAfter                 pgtype.Timestamptz
		)
		_, err = pgx.ForEachRow(rows, []any{&tenant, &object, &appID, &name, &audience, &createdAt, &owners,
			&conns, &changes, &syncedAt, &keyID, &kind, &cname, &hint, &thumb, &startAt, &endAt,
			&dSHA1, &dSHA256, &dSubject, &dIssuer, &dAlg, &dSize, &dNotBefore, &dNotAfter}, func() error {
			if n := len(out); n == 0 || out[n-1].TenantID != tenant || out[n-1].ObjectID != object {
				a := domain.Application{
					Org: org, TenantID: tenant, ObjectID: object, AppID: appID,
					DisplayName: name, SignInAudience: audience,
					CreatedAt: fromTZ(createdAt), SyncedAt: fromTZ(syncedAt),
				}
				if len(owners) > 0 {
					a.Owners = slices.Clone(owners)
				}
				if len(conns) != len(changes) {
					return fmt.Errorf("application %s: %d connections, %d access flags", object, len(conns), len(changes))
				}
				a.Access = make([]domain.Access, len(conns))
				for i := range conns {
					a.Access[i] = domain.Access{Connection: conns[i], CanChange: changes[i]}
					a.Manageable = a.Manageable || changes[i]
				}
				out = append(out, a)
			}
			if !keyID.Valid {
				return nil
			}
			a := &out[len(out)-1]
			c := domain.Credential{
				KeyID: keyID.String, Kind: domain.CredentialKind(kind.String), DisplayName: cname.String,
				Hint: hint.String, Thumbprint: thumb.String, Start: fromTZ(startAt), End: fromTZ(endAt),
			}
			if dSHA1.Valid {
				c.Certificate = &domain.CertificateInfo{ThumbprintSHA1: dSHA1.String, ThumbprintSHA256: dSHA256.String,
					Subject: dSubject.String, Issuer: dIssuer.String, KeyAlgorithm: dAlg.String, KeySize: int(dSize.Int32),
					NotBefore: fromTZ(dNotBefore), NotAfter: fromTZ(dNotAfter)}
			}
			a.Credentials = append(a.Credentials, c)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CountOwnedApplications counts the connection's views that may change
// their application.
func (s *Store) CountOwnedApplications(ctx context.Context, org domain.OrgID, connection string) (int, error) {
	var n int
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM app_access WHERE org_id = $1 AND connection = $2 AND can_change`,
			string(org), connection).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count applications %s owns in %s: %w", connection, org, err)
	}
	return n, nil
}

// CountCredentialsByExpiry counts with one aggregate per bound, in one
// pass over the organization's credentials.
func (s *Store) CountCredentialsByExpiry(ctx context.Context, p store.CountCredentialsByExpiryParams) ([]int, error) {
	if len(p.Bounds) == 0 {
		return []int{}, nil
	}
	if len(p.Bounds) > store.MaxExpiryBounds {
		return nil, fmt.Errorf("count credentials by expiry: %d bounds, at most %d", len(p.Bounds), store.MaxExpiryBounds)
	}
	cols := make([]string, len(p.Bounds))
	args := []any{string(p.Org)}
	for i, b := range p.Bounds {
		if err := codec.CheckTime("Bounds", b); err != nil || b.IsZero() {
			return nil, fmt.Errorf("count credentials by expiry: bound %d: %v", i, cmp.Or(err, errors.New("zero time")))
		}
		args = append(args, tz(b))
		cols[i] = "count(*) FILTER (WHERE end_at <= $" + strconv.Itoa(len(args)) + ")"
	}
	// Only credentials ending by the last bound count at all: a range of
	// the (org_id, end_at) index.
	args = append(args, tz(slices.MaxFunc(p.Bounds, time.Time.Compare)))
	q := "SELECT " + strings.Join(cols, ", ") + " FROM credentials WHERE org_id = $1 AND end_at <= $" + strconv.Itoa(len(args))
	if p.ObjectIDs != nil {
		args = append(args, nonNil(p.ObjectIDs))
		q += " AND app_object_id = ANY($" + strconv.Itoa(len(args)) + "::text[])"
	}
	counts := make([]int64, len(p.Bounds))
	dest := make([]any, len(counts))
	for i := range counts {
		dest[i] = &counts[i]
	}
	err := s.readOrg(ctx, p.Org, func(tx pgx.Tx) error { return tx.QueryRow(ctx, q, args...).Scan(dest...) })
	if err != nil {
		return nil, fmt.Errorf("count credentials of %s by expiry: %w", p.Org, err)
	}
	out := make([]int, len(counts))
	for i, n := range counts {
		out[i] = int(n)
	}
	return out, nil
}

// CountApplications counts an org's applications, per connection when
// connection is not empty.
func (s *Store) CountApplications(ctx context.Context, org domain.OrgID, connection string) (int, error) {
	q := `SELECT count(*) FROM applications WHERE org_id = $1`
	args := []any{string(org)}
	if connection != "" {
		q = `SELECT count(*) FROM app_access WHERE org_id = $1 AND connection = $2`
		args = append(args, connection)
	}
	var n int
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error { return tx.QueryRow(ctx, q, args...).Scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("count applications of %s: %w", org, err)
	}
	return n, nil
}
