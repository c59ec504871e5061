// Package provision writes what rotor.yaml declares into the store at
// start: its organization, that organization's connections and its
// policies, as provisioned objects (read-only to the UI and the API, as
// Grafana's provisioning works). It is declarative and idempotent: objects
// the file holds are created or updated, provisioned objects that left the
// file are deleted, objects made elsewhere are never touched, and a second
// start with the same file writes nothing.
package provision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// DefaultSource marks objects provisioned from a configuration that was
// not read from a file (config.Parse).
const DefaultSource = "rotor.yaml"

// Report says what provisioning changed.
type Report struct {
	// Source is the file the objects are marked with.
	Source string
	// Org is the file's organization; Result what happened to it.
	Result store.ProvisionResult
	// Elsewhere lists, per other organization, the objects this file had
	// provisioned there before its organization changed, now deleted.
	Elsewhere map[domain.OrgID][]string
}

// Changed reports whether anything was written.
func (r Report) Changed() bool { return r.Result.Changed() || len(r.Elsewhere) > 0 }

// String summarises the report for the start-up log.
func (r Report) String() string {
	res := r.Result
	part := func(what string, names []string) string {
		if len(names) == 0 {
			return ""
		}
		return fmt.Sprintf("%s %s", what, strings.Join(names, ", "))
	}
	var parts []string
	for _, p := range []string{
		part("created connections", res.ConnectionsCreated), part("updated connections", res.ConnectionsUpdated),
		part("deleted connections", res.ConnectionsDeleted), part("created policies", res.PoliciesCreated),
		part("updated policies", res.PoliciesUpdated), part("deleted policies", res.PoliciesDeleted),
	} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	for _, org := range slices.Sorted(maps.Keys(r.Elsewhere)) {
		parts = append(parts, fmt.Sprintf("deleted from organization %s: %s", org, strings.Join(r.Elsewhere[org], ", ")))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("organization %s: nothing changed", res.Org)
	}
	return fmt.Sprintf("organization %s: %s", res.Org, strings.Join(parts, "; "))
}

// Provision writes cfg's organization, connections and policies into st,
// in one transaction for the organization. Objects this same file had
// provisioned in another organization (the file's organization was
// renamed) are deleted too. A name the file shares with an object made in
// rotor fails with store.ErrConflict and changes nothing.
func Provision(ctx context.Context, st store.Store, cfg *config.Config) (Report, error) {
	src := cmp.Or(cfg.Source, DefaultSource)
	org := cmp.Or(cfg.Organization, domain.DefaultOrg)
	rep := Report{Source: src}
	conns := make([]store.Connection, 0, len(cfg.Connections))
	for i := range cfg.Connections {
		conns = append(conns, Connection(org, &cfg.Connections[i]))
	}
	res, err := st.Provision(ctx, store.ProvisionParams{
		Org: org, Name: string(org), Source: src, Connections: conns, Policies: cfg.Policies,
	})
	if err != nil {
		return rep, fmt.Errorf("provision organization %s from %s: %w", org, src, err)
	}
	rep.Result = res

	orgs, err := st.ListOrgs(ctx)
	if err != nil {
		return rep, fmt.Errorf("provision from %s: %w", src, err)
	}
	var errs []error
	for _, o := range orgs {
		if o.ID == org {
			continue
		}
		gone, err := removeFrom(ctx, st, o.ID, src)
		if err != nil {
			errs = append(errs, err)
		}
		if len(gone) > 0 {
			if rep.Elsewhere == nil {
				rep.Elsewhere = map[domain.OrgID][]string{}
			}
			rep.Elsewhere[o.ID] = gone
		}
	}
	return rep, errors.Join(errs...)
}

// removeFrom deletes what src provisioned in org: policies first, then
// connections.
func removeFrom(ctx context.Context, st store.Store, org domain.OrgID, src string) ([]string, error) {
	var gone []string
	pols, err := st.ListPolicies(ctx, org)
	if err != nil {
		return nil, err
	}
	for _, p := range pols {
		if p.Provisioned && p.Source == src {
			if err := st.DeletePolicy(ctx, store.DeleteParams{Org: org, Name: p.Policy.Name, ProvisionedBy: src}); err != nil && !errors.Is(err, store.ErrNotFound) {
				return gone, err
			}
			gone = append(gone, "policy "+p.Policy.Name)
		}
	}
	conns, err := st.ListConnections(ctx, org)
	if err != nil {
		return gone, err
	}
	for _, c := range conns {
		if c.Provisioned && c.Source == src {
			if err := st.DeleteConnection(ctx, store.DeleteParams{Org: org, Name: c.Name, ProvisionedBy: src}); err != nil && !errors.Is(err, store.ErrNotFound) {
				return gone, err
			}
			gone = append(gone, "connection "+c.Name)
		}
	}
	return gone, nil
}

// Connection is how the store keeps a configured connection of org: its
// non-secret settings and references to its secrets, never their values.
func Connection(org domain.OrgID, c *config.Connection) store.Connection {
	id := c.Identity
	return store.Connection{
		Org: org, Name: c.Name, TenantID: c.TenantID, Cloud: string(c.Cloud), Purpose: string(c.Purpose),
		SimFile: c.SimFile, AuxiliaryTenants: c.AuxiliaryTenants,
		Identity: store.ConnectionIdentity{
			Method:                  string(id.Method),
			ClientID:                id.ClientID,
			ClientSecret:            c.ClientSecretRef.StoreRef(),
			CertificateFile:         id.CertificatePath,
			CertificatePassword:     c.CertificatePasswordRef.StoreRef(),
			SendCertificateChain:    id.SendCertificateChain,
			ManagedIdentityClientID: id.ManagedIdentityClientID,
			FederatedTokenFile:      id.FederatedTokenFile,
		},
	}
}
