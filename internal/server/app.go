package server

import (
	"context"
	"fmt"
	"slices"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
)

// The adapters below give internal/app what it declares, from today's
// sources: policies and connections from rotor.yaml (one organization),
// the sync and the job system of this Server. When organizations own
// their policies and connections in the store, only these change.

// newApp builds the application layer on this Server.
func (s *Server) newApp(opts Options) *app.Service {
	return app.New(app.Deps{
		Store:       s.store,
		Engine:      s.engine,
		Syncer:      appSyncer{s},
		Policies:    configPolicies{s.cfg},
		Connections: configConnections{s.cfg},
		Jobs:        appJobs{s},
		Clock:       s.clock,
		Logger:      s.log,
		Authorizer:  opts.Authorizer,
		Auditor:     opts.Auditor,
	})
}

// configPolicies serves the configuration's policies to its organization;
// any other organization has none.
type configPolicies struct{ cfg *config.Config }

var _ app.PolicySource = configPolicies{}

func (p configPolicies) OrgPolicies(_ context.Context, org domain.OrgID) (app.Policies, error) {
	if org != p.cfg.Organization {
		return noPolicies{}, nil
	}
	return cfgPolicySet{p.cfg}, nil
}

type cfgPolicySet struct{ cfg *config.Config }

func (c cfgPolicySet) PolicyFor(a domain.Application) *domain.Policy { return c.cfg.PolicyFor(a) }
func (c cfgPolicySet) List() []domain.Policy                         { return slices.Clone(c.cfg.Policies) }

type noPolicies struct{}

func (noPolicies) PolicyFor(domain.Application) *domain.Policy { return nil }
func (noPolicies) List() []domain.Policy                       { return nil }

// configConnections lists the configuration's connections, without their
// secrets, to its organization.
type configConnections struct{ cfg *config.Config }

var _ app.ConnectionSource = configConnections{}

func (c configConnections) OrgConnections(_ context.Context, org domain.OrgID) ([]app.Connection, error) {
	if org != c.cfg.Organization {
		return nil, nil
	}
	out := make([]app.Connection, 0, len(c.cfg.Connections))
	for _, cc := range c.cfg.Connections {
		id := cc.Identity
		clientID := id.ClientID
		if clientID == "" {
			clientID = id.ManagedIdentityClientID
		}
		out = append(out, app.Connection{
			Name: cc.Name, TenantID: cc.TenantID, Purpose: string(cc.Purpose), Cloud: string(cc.Cloud),
			Identity: string(id.Method), ClientID: clientID, AuxiliaryTenants: slices.Clone(cc.AuxiliaryTenants),
			Provisioned: true,
		})
	}
	return out, nil
}

// appSyncer syncs the configuration's connections for its organization.
type appSyncer struct{ s *Server }

func (a appSyncer) SyncOrg(ctx context.Context, org domain.OrgID, progress func(inventory.Progress)) error {
	if org != a.s.cfg.Organization {
		return fmt.Errorf("organization %q has no connections in this rotor", org)
	}
	return a.s.Sync(ctx, progress)
}

// appJobs enqueues on this Server's job system.
type appJobs struct{ s *Server }

func (a appJobs) EnqueueRotation(ctx context.Context, org domain.OrgID, ap domain.Application) error {
	if err := a.s.openJobs(ctx, 0); err != nil {
		return err
	}
	return a.s.jobs.RotateNow(ctx, org, ap)
}
