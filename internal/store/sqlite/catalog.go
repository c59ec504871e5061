package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// querier is what both a pool and a transaction offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }

// catalogKind is how one catalog table (connections, policies) is read.
type catalogKind[T any] struct {
	what string // "connection", "policy"
	sql  string // SELECT … FROM … WHERE org_id = ?
	scan func(org domain.OrgID, sc rowScanner) (T, error)
}

var (
	connKind   = catalogKind[store.Connection]{what: "connection", sql: `SELECT ` + connCols + ` FROM connections WHERE org_id = ?`, scan: scanConn}
	policyKind = catalogKind[store.Policy]{what: "policy", sql: `SELECT ` + policyCols + ` FROM policies WHERE org_id = ?`, scan: scanPolicy}
)

// list reads every row of the org in order.
func (k catalogKind[T]) list(ctx context.Context, q querier, org domain.OrgID, order string) ([]T, error) {
	rows, err := q.QueryContext(ctx, k.sql+` ORDER BY `+order, string(org))
	if err != nil {
		return nil, fmt.Errorf("list %s rows of %s: %w", k.what, org, err)
	}
	defer func() { _ = rows.Close() }()
	var out []T
	for rows.Next() {
		v, err := k.scan(org, rows)
		if err != nil {
			return nil, fmt.Errorf("list %s rows of %s: %w", k.what, org, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// get reads one row of the org by name; ErrNotFound when there is none.
func (k catalogKind[T]) get(ctx context.Context, q querier, org domain.OrgID, name string) (*T, error) {
	v, err := k.scan(org, q.QueryRowContext(ctx, k.sql+` AND name = ?`, string(org), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s %q of %s: %w", k.what, name, org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %q of %s: %w", k.what, name, org, err)
	}
	return &v, nil
}

// ListOrgs lists every organization by id.
func (s *Store) ListOrgs(ctx context.Context) ([]store.Org, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, created_at FROM organizations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []store.Org
	for rows.Next() {
		var o store.Org
		var id string
		var at sql.NullString
		if err := rows.Scan(&id, &o.Name, &at); err != nil {
			return nil, fmt.Errorf("list orgs: %w", err)
		}
		o.ID = domain.OrgID(id)
		if o.CreatedAt, err = decTime(at); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

const connCols = `name, tenant_id, cloud, purpose, sim_file, auth_method, identity, client_secret, cert_password,
	auxiliary_tenants, provisioned, source, created_at, updated_at`

func scanConn(org domain.OrgID, sc rowScanner) (store.Connection, error) {
	c := store.Connection{Org: org}
	var r codec.ConnRow
	var prov int
	var created, updated sql.NullString
	if err := sc.Scan(&c.Name, &r.Tenant, &r.Cloud, &r.Purpose, &r.SimFile, &r.Method, &r.Identity,
		&r.ClientSecret, &r.CertPassword, &r.Aux, &prov, &c.Source, &created, &updated); err != nil {
		return c, err
	}
	c.Provisioned = prov == 1
	if err := r.Decode(&c); err != nil {
		return c, err
	}
	var err error
	if c.CreatedAt, err = decTime(created); err != nil {
		return c, err
	}
	if c.UpdatedAt, err = decTime(updated); err != nil {
		return c, err
	}
	return c, nil
}

// ListConnections lists an org's connections by name.
func (s *Store) ListConnections(ctx context.Context, org domain.OrgID) ([]store.Connection, error) {
	return listConns(ctx, s.r, org)
}

func listConns(ctx context.Context, q querier, org domain.OrgID) ([]store.Connection, error) {
	return connKind.list(ctx, q, org, "name")
}

// GetConnection returns one connection of an org.
func (s *Store) GetConnection(ctx context.Context, org domain.OrgID, name string) (*store.Connection, error) {
	return getConn(ctx, s.r, org, name)
}

func getConn(ctx context.Context, q querier, org domain.OrgID, name string) (*store.Connection, error) {
	return connKind.get(ctx, q, org, name)
}

// UpsertConnection creates or replaces a connection.
func (s *Store) UpsertConnection(ctx context.Context, p store.UpsertConnectionParams) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := upsertConn(ctx, tx, s.clock.Now(), p)
		return err
	})
}

// change is what an upsert did.
type change int

const (
	unchanged change = iota
	created
	updated
)

func upsertConn(ctx context.Context, tx *sql.Tx, now time.Time, p store.UpsertConnectionParams) (change, error) {
	c := p.Connection
	if err := c.Validate(); err != nil {
		return 0, fmt.Errorf("upsert connection: %w", err)
	}
	row, err := codec.EncConn(&c)
	if err != nil {
		return 0, fmt.Errorf("upsert connection %q: %w", c.Name, err)
	}
	old, err := getConn(ctx, tx, c.Org, c.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		old = nil
	case err != nil:
		return 0, err
	}
	prov := 0
	if p.ProvisionedBy != "" {
		prov = 1
	}
	if old != nil {
		if err := codec.Guard("connection", c.Org, c.Name, old.Provisioned, old.Source, p.ProvisionedBy); err != nil {
			return 0, err
		}
		if oldRow, err := codec.EncConn(old); err == nil && oldRow == row && old.Source == p.ProvisionedBy {
			return unchanged, nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE connections SET tenant_id = ?, cloud = ?, purpose = ?, sim_file = ?,
			auth_method = ?, identity = ?, client_secret = ?, cert_password = ?, auxiliary_tenants = ?,
			provisioned = ?, source = ?, updated_at = ? WHERE org_id = ? AND name = ?`,
			row.Tenant, row.Cloud, row.Purpose, row.SimFile, row.Method, row.Identity, row.ClientSecret, row.CertPassword,
			row.Aux, prov, p.ProvisionedBy, encTime(now), string(c.Org), c.Name)
		if err != nil {
			return 0, fmt.Errorf("update connection %q of %s: %w", c.Name, c.Org, err)
		}
		return updated, nil
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO connections (org_id, `+connCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(c.Org), c.Name, row.Tenant, row.Cloud, row.Purpose, row.SimFile, row.Method, row.Identity,
		row.ClientSecret, row.CertPassword, row.Aux, prov, p.ProvisionedBy, encTime(now), encTime(now))
	if err != nil {
		if isForeignKeyViolation(err) {
			return 0, fmt.Errorf("upsert connection %q: organization %q: %w", c.Name, c.Org, store.ErrNotFound)
		}
		return 0, fmt.Errorf("insert connection %q of %s: %w", c.Name, c.Org, err)
	}
	return created, nil
}

// DeleteConnection deletes a connection of an org.
func (s *Store) DeleteConnection(ctx context.Context, p store.DeleteParams) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return deleteObj(ctx, tx, "connection", p) })
}

func deleteObj(ctx context.Context, tx *sql.Tx, kind string, p store.DeleteParams) error {
	table := map[string]string{"connection": "connections", "policy": "policies"}[kind]
	var prov int
	var source string
	err := tx.QueryRowContext(ctx, `SELECT provisioned, source FROM `+table+` WHERE org_id = ? AND name = ?`,
		string(p.Org), p.Name).Scan(&prov, &source)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("delete %s %q of %s: %w", kind, p.Name, p.Org, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete %s %q of %s: %w", kind, p.Name, p.Org, err)
	}
	if err := codec.Guard(kind, p.Org, p.Name, prov == 1, source, p.ProvisionedBy); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE org_id = ? AND name = ?`, string(p.Org), p.Name); err != nil {
		return fmt.Errorf("delete %s %q of %s: %w", kind, p.Name, p.Org, err)
	}
	if kind == "connection" {
		// The connection's view of the inventory goes with it, and the
		// applications no connection sees any more.
		if _, err := tx.ExecContext(ctx, `DELETE FROM app_access WHERE org_id = ? AND connection = ?`, string(p.Org), p.Name); err != nil {
			return fmt.Errorf("delete connection %q of %s: its inventory view: %w", p.Name, p.Org, err)
		}
		// And its health: a connection made again under the name may be
		// another tenant's or another identity's.
		if _, err := tx.ExecContext(ctx, `DELETE FROM connection_health WHERE org_id = ? AND connection = ?`, string(p.Org), p.Name); err != nil {
			return fmt.Errorf("delete connection %q of %s: its health: %w", p.Name, p.Org, err)
		}
		// And its sync state: a connection made again under the name may
		// reach another tenant, where the old delta link means nothing.
		if _, err := tx.ExecContext(ctx, `DELETE FROM inventory_syncs WHERE org_id = ? AND connection = ?`, string(p.Org), p.Name); err != nil {
			return fmt.Errorf("delete connection %q of %s: its sync state: %w", p.Name, p.Org, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM applications WHERE org_id = ?1 AND NOT EXISTS
			(SELECT 1 FROM app_access x WHERE x.org_id = ?1 AND x.tenant_id = applications.tenant_id
				AND x.object_id = applications.object_id)`, string(p.Org)); err != nil {
			return fmt.Errorf("delete connection %q of %s: applications no connection sees: %w", p.Name, p.Org, err)
		}
	}
	return nil
}

const policyCols = `name, position, connection, enabled, kind, selector, lifetime_ns, renew_before_ns, overlap_ns,
	notify_before_ns, verify, retire_unmanaged, sinks, provisioned, source, created_at, updated_at, certificate`

func scanPolicy(org domain.OrgID, sc rowScanner) (store.Policy, error) {
	out := store.Policy{Org: org}
	p := &out.Policy
	var r codec.PolicyRow
	var prov int
	var created, updated sql.NullString
	if err := sc.Scan(&p.Name, &out.Position, &p.Connection, &p.Enabled, &r.Kind, &r.Selector, &r.Lifetime, &r.Renew,
		&r.Overlap, &r.Notify, &p.Verify, &p.RetireUnmanaged, &r.Sinks, &prov, &out.Source, &created, &updated, &r.Certificate); err != nil {
		return out, err
	}
	out.Provisioned = prov == 1
	if err := r.Decode(p); err != nil {
		return out, err
	}
	var err error
	if out.CreatedAt, err = decTime(created); err != nil {
		return out, err
	}
	if out.UpdatedAt, err = decTime(updated); err != nil {
		return out, err
	}
	return out, nil
}

// ListPolicies lists an org's policies in order.
func (s *Store) ListPolicies(ctx context.Context, org domain.OrgID) ([]store.Policy, error) {
	return listPolicies(ctx, s.r, org)
}

func listPolicies(ctx context.Context, q querier, org domain.OrgID) ([]store.Policy, error) {
	return policyKind.list(ctx, q, org, "provisioned DESC, position, name")
}

// GetPolicy returns one policy of an org.
func (s *Store) GetPolicy(ctx context.Context, org domain.OrgID, name string) (*store.Policy, error) {
	return getPolicy(ctx, s.r, org, name)
}

func getPolicy(ctx context.Context, q querier, org domain.OrgID, name string) (*store.Policy, error) {
	return policyKind.get(ctx, q, org, name)
}

// UpsertPolicy creates or replaces a policy.
func (s *Store) UpsertPolicy(ctx context.Context, p store.UpsertPolicyParams) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := upsertPolicy(ctx, tx, s.clock.Now(), p)
		return err
	})
}

func upsertPolicy(ctx context.Context, tx *sql.Tx, now time.Time, p store.UpsertPolicyParams) (change, error) {
	pol := p.Policy
	if p.Org == "" {
		return 0, errors.New("upsert policy: org must be set")
	}
	if err := pol.Validate(); err != nil {
		return 0, fmt.Errorf("upsert policy %q: %w", pol.Name, err)
	}
	if pol.Connection == "" {
		return 0, fmt.Errorf("upsert policy %q: connection must be set", pol.Name)
	}
	if _, err := getConn(ctx, tx, p.Org, pol.Connection); err != nil {
		return 0, fmt.Errorf("upsert policy %q: %w", pol.Name, err)
	}
	row, err := codec.EncPolicy(&pol, p.Position)
	if err != nil {
		return 0, fmt.Errorf("upsert policy %q: %w", pol.Name, err)
	}
	old, err := getPolicy(ctx, tx, p.Org, pol.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		old = nil
	case err != nil:
		return 0, err
	}
	prov := 0
	if p.ProvisionedBy != "" {
		prov = 1
	}
	if old != nil {
		if err := codec.Guard("policy", p.Org, pol.Name, old.Provisioned, old.Source, p.ProvisionedBy); err != nil {
			return 0, err
		}
		if oldRow, err := codec.EncPolicy(&old.Policy, old.Position); err == nil && oldRow == row && old.Source == p.ProvisionedBy {
			return unchanged, nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE policies SET position = ?, connection = ?, enabled = ?, kind = ?, selector = ?,
			lifetime_ns = ?, renew_before_ns = ?, overlap_ns = ?, notify_before_ns = ?, verify = ?, retire_unmanaged = ?,
			sinks = ?, provisioned = ?, source = ?, updated_at = ?, certificate = ? WHERE org_id = ? AND name = ?`,
			row.Position, row.Connection, row.Enabled, row.Kind, row.Selector, row.Lifetime, row.Renew, row.Overlap, row.Notify,
			row.Verify, row.RetireUn, row.Sinks, prov, p.ProvisionedBy, encTime(now), row.Certificate, string(p.Org), pol.Name)
		if err != nil {
			return 0, fmt.Errorf("update policy %q of %s: %w", pol.Name, p.Org, err)
		}
		return updated, nil
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO policies (org_id, `+policyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(p.Org), pol.Name, row.Position, row.Connection, row.Enabled, row.Kind, row.Selector, row.Lifetime, row.Renew,
		row.Overlap, row.Notify, row.Verify, row.RetireUn, row.Sinks, prov, p.ProvisionedBy, encTime(now), encTime(now), row.Certificate)
	if err != nil {
		return 0, fmt.Errorf("insert policy %q of %s: %w", pol.Name, p.Org, err)
	}
	return created, nil
}

// DeletePolicy deletes a policy of an org.
func (s *Store) DeletePolicy(ctx context.Context, p store.DeleteParams) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return deleteObj(ctx, tx, "policy", p) })
}

// Provision makes an org's provisioned set exactly p's, in one
// transaction.
func (s *Store) Provision(ctx context.Context, p store.ProvisionParams) (store.ProvisionResult, error) {
	res := store.ProvisionResult{Org: p.Org}
	if p.Org == "" || p.Source == "" {
		return res, errors.New("provision: org and source must be set")
	}
	now := s.clock.Now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			string(p.Org), cmp.Or(p.Name, string(p.Org)), encTime(now)); err != nil {
			return fmt.Errorf("provision org %s: %w", p.Org, err)
		}
		// One file provisions one organization: a second file (an old
		// copy, another operator's) would otherwise rewrite the first's
		// policies and delete those it lacks.
		var other string
		switch err := tx.QueryRowContext(ctx, `SELECT source FROM connections WHERE org_id = ?1 AND provisioned = 1 AND source <> ?2
			UNION SELECT source FROM policies WHERE org_id = ?1 AND provisioned = 1 AND source <> ?2 LIMIT 1`,
			string(p.Org), p.Source).Scan(&other); {
		case err == nil:
			return fmt.Errorf("organization %s is provisioned from %s, not %s: one configuration file provisions an organization (every replica uses the same path); run rotor with that file, or give this one another organization (%w)",
				p.Org, other, p.Source, store.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		keepConns := map[string]bool{}
		for _, c := range p.Connections {
			c.Org = p.Org
			keepConns[c.Name] = true
			ch, err := upsertConn(ctx, tx, now, store.UpsertConnectionParams{Connection: c, ProvisionedBy: p.Source})
			if err != nil {
				return err
			}
			tally(ch, c.Name, &res.ConnectionsCreated, &res.ConnectionsUpdated, &res.ConnectionsUnchanged)
		}
		keepPols := map[string]bool{}
		for i, pol := range p.Policies {
			keepPols[pol.Name] = true
			ch, err := upsertPolicy(ctx, tx, now, store.UpsertPolicyParams{Org: p.Org, Policy: pol, Position: i, ProvisionedBy: p.Source})
			if err != nil {
				return err
			}
			tally(ch, pol.Name, &res.PoliciesCreated, &res.PoliciesUpdated, &res.PoliciesUnchanged)
		}
		pols, err := listPolicies(ctx, tx, p.Org)
		if err != nil {
			return err
		}
		for _, old := range pols {
			if old.Provisioned && !keepPols[old.Policy.Name] {
				if err := deleteObj(ctx, tx, "policy", store.DeleteParams{Org: p.Org, Name: old.Policy.Name, ProvisionedBy: p.Source}); err != nil {
					return err
				}
				res.PoliciesDeleted = append(res.PoliciesDeleted, old.Policy.Name)
			}
		}
		conns, err := listConns(ctx, tx, p.Org)
		if err != nil {
			return err
		}
		for _, old := range conns {
			if old.Provisioned && !keepConns[old.Name] {
				if err := deleteObj(ctx, tx, "connection", store.DeleteParams{Org: p.Org, Name: old.Name, ProvisionedBy: p.Source}); err != nil {
					return err
				}
				res.ConnectionsDeleted = append(res.ConnectionsDeleted, old.Name)
			}
		}
		return nil
	})
	if err != nil {
		return store.ProvisionResult{Org: p.Org}, err
	}
	return res, nil
}

func tally(ch change, name string, created_, updated_, unchanged_ *[]string) {
	switch ch {
	case created:
		*created_ = append(*created_, name)
	case updated:
		*updated_ = append(*updated_, name)
	default:
		*unchanged_ = append(*unchanged_, name)
	}
}
