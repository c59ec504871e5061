package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// ListOrgs lists every organization by id: the one read across
// organizations, through rotor_list_organizations (SECURITY DEFINER),
// since row-level security shows the application role only the org it set.
func (s *Store) ListOrgs(ctx context.Context) ([]store.Org, error) {
	var out []store.Org
	err := s.tx(ctx, "", pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT id, name, created_at FROM rotor_list_organizations()`)
		if err != nil {
			return err
		}
		var id, name string
		var at pgtype.Timestamptz
		_, err = pgx.ForEachRow(rows, []any{&id, &name, &at}, func() error {
			out = append(out, store.Org{ID: domain.OrgID(id), Name: name, CreatedAt: fromTZ(at)})
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	return out, nil
}

const connCols = `name, tenant_id, cloud, purpose, sim_file, auth_method, identity, client_secret, cert_password,
	auxiliary_tenants, provisioned, source, created_at, updated_at`

func scanConn(org domain.OrgID, row pgx.Row) (store.Connection, error) {
	c := store.Connection{Org: org}
	var r codec.ConnRow
	var created, updated pgtype.Timestamptz
	if err := row.Scan(&c.Name, &r.Tenant, &r.Cloud, &r.Purpose, &r.SimFile, &r.Method, &r.Identity,
		&r.ClientSecret, &r.CertPassword, &r.Aux, &c.Provisioned, &c.Source, &created, &updated); err != nil {
		return c, err
	}
	if err := r.Decode(&c); err != nil {
		return c, err
	}
	c.CreatedAt, c.UpdatedAt = fromTZ(created), fromTZ(updated)
	return c, nil
}

const policyCols = `name, position, connection, enabled, kind, selector, lifetime_ns, renew_before_ns, overlap_ns,
	notify_before_ns, verify, retire_unmanaged, sinks, provisioned, source, created_at, updated_at, certificate`

func scanPolicy(org domain.OrgID, row pgx.Row) (store.Policy, error) {
	out := store.Policy{Org: org}
	p := &out.Policy
	var r codec.PolicyRow
	var created, updated pgtype.Timestamptz
	if err := row.Scan(&p.Name, &out.Position, &p.Connection, &p.Enabled, &r.Kind, &r.Selector, &r.Lifetime, &r.Renew,
		&r.Overlap, &r.Notify, &p.Verify, &p.RetireUnmanaged, &r.Sinks, &out.Provisioned, &out.Source, &created, &updated, &r.Certificate); err != nil {
		return out, err
	}
	if err := r.Decode(p); err != nil {
		return out, err
	}
	out.CreatedAt, out.UpdatedAt = fromTZ(created), fromTZ(updated)
	return out, nil
}

// catalogKind is how one catalog table (connections, policies) is read.
type catalogKind[T any] struct {
	what string // "connection", "policy"
	sql  string // SELECT … FROM … WHERE org_id = $1
	scan func(org domain.OrgID, row pgx.Row) (T, error)
}

var (
	connKind   = catalogKind[store.Connection]{what: "connection", sql: `SELECT ` + connCols + ` FROM connections WHERE org_id = $1`, scan: scanConn}
	policyKind = catalogKind[store.Policy]{what: "policy", sql: `SELECT ` + policyCols + ` FROM policies WHERE org_id = $1`, scan: scanPolicy}
)

// list reads every row of the org in order.
func (k catalogKind[T]) list(ctx context.Context, tx pgx.Tx, org domain.OrgID, order string) ([]T, error) {
	rows, err := tx.Query(ctx, k.sql+` ORDER BY `+order, string(org))
	if err != nil {
		return nil, fmt.Errorf("list %s rows of %s: %w", k.what, org, err)
	}
	defer rows.Close()
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
func (k catalogKind[T]) get(ctx context.Context, tx pgx.Tx, org domain.OrgID, name string) (*T, error) {
	v, err := k.scan(org, tx.QueryRow(ctx, k.sql+` AND name = $2`, string(org), name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s %q of %s: %w", k.what, name, org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %q of %s: %w", k.what, name, org, err)
	}
	return &v, nil
}

func listConns(ctx context.Context, tx pgx.Tx, org domain.OrgID) ([]store.Connection, error) {
	return connKind.list(ctx, tx, org, "name")
}

func getConn(ctx context.Context, tx pgx.Tx, org domain.OrgID, name string) (*store.Connection, error) {
	return connKind.get(ctx, tx, org, name)
}

func listPolicies(ctx context.Context, tx pgx.Tx, org domain.OrgID) ([]store.Policy, error) {
	return policyKind.list(ctx, tx, org, "provisioned DESC, position, name")
}

func getPolicy(ctx context.Context, tx pgx.Tx, org domain.OrgID, name string) (*store.Policy, error) {
	return policyKind.get(ctx, tx, org, name)
}

// ListConnections lists an org's connections by name.
func (s *Store) ListConnections(ctx context.Context, org domain.OrgID) ([]store.Connection, error) {
	var out []store.Connection
	err := s.readOrg(ctx, org, func(tx pgx.Tx) (err error) {
		out, err = listConns(ctx, tx, org)
		return err
	})
	return out, err
}

// GetConnection returns one connection of an org.
func (s *Store) GetConnection(ctx context.Context, org domain.OrgID, name string) (*store.Connection, error) {
	var out *store.Connection
	err := s.readOrg(ctx, org, func(tx pgx.Tx) (err error) {
		out, err = getConn(ctx, tx, org, name)
		return err
	})
	return out, err
}

// ListPolicies lists an org's policies in order.
func (s *Store) ListPolicies(ctx context.Context, org domain.OrgID) ([]store.Policy, error) {
	var out []store.Policy
	err := s.readOrg(ctx, org, func(tx pgx.Tx) (err error) {
		out, err = listPolicies(ctx, tx, org)
		return err
	})
	return out, err
}

// GetPolicy returns one policy of an org.
func (s *Store) GetPolicy(ctx context.Context, org domain.OrgID, name string) (*store.Policy, error) {
	var out *store.Policy
	err := s.readOrg(ctx, org, func(tx pgx.Tx) (err error) {
		out, err = getPolicy(ctx, tx, org, name)
		return err
	})
	return out, err
}

// change is what an upsert did.
type change int

const (
	unchanged change = iota
	created
	updated
)

// UpsertConnection creates or replaces a connection.
func (s *Store) UpsertConnection(ctx context.Context, p store.UpsertConnectionParams) error {
	now := s.clock.Now()
	return s.inOrg(ctx, p.Connection.Org, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockCatalog, string(p.Connection.Org)); err != nil {
			return err
		}
		_, err := upsertConn(ctx, tx, now, p)
		return err
	})
}

func upsertConn(ctx context.Context, tx pgx.Tx, now time.Time, p store.UpsertConnectionParams) (change, error) {
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
	prov := p.ProvisionedBy != ""
	if old != nil {
		if err := codec.Guard("connection", c.Org, c.Name, old.Provisioned, old.Source, p.ProvisionedBy); err != nil {
			return 0, err
		}
		if oldRow, err := codec.EncConn(old); err == nil && oldRow == row && old.Source == p.ProvisionedBy {
			return unchanged, nil
		}
		_, err = tx.Exec(ctx, `UPDATE connections SET tenant_id = $1, cloud = $2, purpose = $3, sim_file = $4,
			auth_method = $5, identity = $6, client_secret = $7, cert_password = $8, auxiliary_tenants = $9,
			provisioned = $10, source = $11, updated_at = $12 WHERE org_id = $13 AND name = $14`,
			row.Tenant, row.Cloud, row.Purpose, row.SimFile, row.Method, row.Identity, row.ClientSecret, row.CertPassword,
			row.Aux, prov, p.ProvisionedBy, tz(now), string(c.Org), c.Name)
		if err != nil {
			return 0, fmt.Errorf("update connection %q of %s: %w", c.Name, c.Org, err)
		}
		return updated, nil
	}
	_, err = tx.Exec(ctx, `INSERT INTO connections (org_id, `+connCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		string(c.Org), c.Name, row.Tenant, row.Cloud, row.Purpose, row.SimFile, row.Method, row.Identity,
		row.ClientSecret, row.CertPassword, row.Aux, prov, p.ProvisionedBy, tz(now), tz(now))
	if err != nil {
		if isOrgMissing(err) {
			return 0, fmt.Errorf("upsert connection %q: organization %q: %w", c.Name, c.Org, store.ErrNotFound)
		}
		return 0, fmt.Errorf("insert connection %q of %s: %w", c.Name, c.Org, err)
	}
	return created, nil
}

// DeleteConnection deletes a connection of an org.
func (s *Store) DeleteConnection(ctx context.Context, p store.DeleteParams) error {
	return s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockCatalog, string(p.Org)); err != nil {
			return err
		}
		return deleteObj(ctx, tx, "connection", p)
	})
}

func deleteObj(ctx context.Context, tx pgx.Tx, kind string, p store.DeleteParams) error {
	table := map[string]string{"connection": "connections", "policy": "policies"}[kind]
	var prov bool
	var source string
	err := tx.QueryRow(ctx, `SELECT provisioned, source FROM `+table+` WHERE org_id = $1 AND name = $2`,
		string(p.Org), p.Name).Scan(&prov, &source)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("delete %s %q of %s: %w", kind, p.Name, p.Org, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete %s %q of %s: %w", kind, p.Name, p.Org, err)
	}
	if err := codec.Guard(kind, p.Org, p.Name, prov, source, p.ProvisionedBy); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE org_id = $1 AND name = $2`, string(p.Org), p.Name); err != nil {
		return fmt.Errorf("delete %s %q of %s: %w", kind, p.Name, p.Org, err)
	}
	if kind == "connection" {
		// The connection's view of the inventory goes with it, and the
		// applications no connection sees any more.
		if err := lock(ctx, tx, lockInventory, string(p.Org)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM app_access WHERE org_id = $1 AND connection = $2`, string(p.Org), p.Name); err != nil {
			return fmt.Errorf("delete connection %q of %s: its inventory view: %w", p.Name, p.Org, err)
		}
		// And its health: a connection made again under the name may be
		// another tenant's or another identity's.
		if _, err := tx.Exec(ctx, `DELETE FROM connection_health WHERE org_id = $1 AND connection = $2`, string(p.Org), p.Name); err != nil {
			return fmt.Errorf("delete connection %q of %s: its health: %w", p.Name, p.Org, err)
		}
		// And its sync state: a connection made again under the name may
		// reach another tenant, where the old delta link means nothing.
		if _, err := tx.Exec(ctx, `DELETE FROM inventory_syncs WHERE org_id = $1 AND connection = $2`, string(p.Org), p.Name); err != nil {
			return fmt.Errorf("delete connection %q of %s: its sync state: %w", p.Name, p.Org, err)
		}
		if err := deleteUnseen(ctx, tx, p.Org); err != nil {
			return fmt.Errorf("delete connection %q of %s: applications no connection sees: %w", p.Name, p.Org, err)
		}
	}
	return nil
}

// UpsertPolicy creates or replaces a policy.
func (s *Store) UpsertPolicy(ctx context.Context, p store.UpsertPolicyParams) error {
	now := s.clock.Now()
	return s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockCatalog, string(p.Org)); err != nil {
			return err
		}
		_, err := upsertPolicy(ctx, tx, now, p)
		return err
	})
}

func upsertPolicy(ctx context.Context, tx pgx.Tx, now time.Time, p store.UpsertPolicyParams) (change, error) {
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
	prov := p.ProvisionedBy != ""
	if old != nil {
		if err := codec.Guard("policy", p.Org, pol.Name, old.Provisioned, old.Source, p.ProvisionedBy); err != nil {
			return 0, err
		}
		if oldRow, err := codec.EncPolicy(&old.Policy, old.Position); err == nil && oldRow == row && old.Source == p.ProvisionedBy {
			return unchanged, nil
		}
		_, err = tx.Exec(ctx, `UPDATE policies SET position = $1, connection = $2, enabled = $3, kind = $4, selector = $5,
			lifetime_ns = $6, renew_before_ns = $7, overlap_ns = $8, notify_before_ns = $9, verify = $10, retire_unmanaged = $11,
			sinks = $12, provisioned = $13, source = $14, updated_at = $15, certificate = $16 WHERE org_id = $17 AND name = $18`,
			row.Position, row.Connection, row.Enabled, row.Kind, row.Selector, row.Lifetime, row.Renew, row.Overlap, row.Notify,
			row.Verify, row.RetireUn, row.Sinks, prov, p.ProvisionedBy, tz(now), row.Certificate, string(p.Org), pol.Name)
		if err != nil {
			return 0, fmt.Errorf("update policy %q of %s: %w", pol.Name, p.Org, err)
		}
		return updated, nil
	}
	_, err = tx.Exec(ctx, `INSERT INTO policies (org_id, `+policyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		string(p.Org), pol.Name, row.Position, row.Connection, row.Enabled, row.Kind, row.Selector, row.Lifetime, row.Renew,
		row.Overlap, row.Notify, row.Verify, row.RetireUn, row.Sinks, prov, p.ProvisionedBy, tz(now), tz(now), row.Certificate)
	if err != nil {
		return 0, fmt.Errorf("insert policy %q of %s: %w", pol.Name, p.Org, err)
	}
	return created, nil
}

// DeletePolicy deletes a policy of an org.
func (s *Store) DeletePolicy(ctx context.Context, p store.DeleteParams) error {
	return s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockCatalog, string(p.Org)); err != nil {
			return err
		}
		return deleteObj(ctx, tx, "policy", p)
	})
}

// Provision makes an org's provisioned set exactly p's, in one
// transaction.
func (s *Store) Provision(ctx context.Context, p store.ProvisionParams) (store.ProvisionResult, error) {
	if p.Org == "" || p.Source == "" {
		return store.ProvisionResult{Org: p.Org}, errors.New("provision: org and source must be set")
	}
	now := s.clock.Now()
	var res store.ProvisionResult
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		res = store.ProvisionResult{Org: p.Org}
		if err := lock(ctx, tx, lockCatalog, string(p.Org)); err != nil {
			return err
		}
		if err := ensureOrg(ctx, tx, p.Org, cmp.Or(p.Name, string(p.Org)), now); err != nil {
			return fmt.Errorf("provision org %s: %w", p.Org, err)
		}
		// One file provisions one organization: a second file (an old
		// copy, another operator's) would otherwise rewrite the first's
		// policies and delete those it lacks.
		var other string
		switch err := tx.QueryRow(ctx, `SELECT source FROM connections WHERE org_id = $1 AND provisioned AND source <> $2
			UNION SELECT source FROM policies WHERE org_id = $1 AND provisioned AND source <> $2 LIMIT 1`,
			string(p.Org), p.Source).Scan(&other); {
		case err == nil:
			return fmt.Errorf("organization %s is provisioned from %s, not %s: one configuration file provisions an organization (every replica uses the same path); run rotor with that file, or give this one another organization (%w)",
				p.Org, other, p.Source, store.ErrConflict)
		case !errors.Is(err, pgx.ErrNoRows):
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
