package server

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/policyset"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/web/breakglass"
)

// The adapters below give internal/app what it declares, from this
// Server: every organization's policies and connections from the store
// (provisioned from rotor.yaml or made in the UI), its sync and its job
// system.

// newApp builds the application layer on this Server.
func (s *Server) newApp(opts Options) *app.Service {
	auditor := s.auditor()
	authz := opts.Authorizer
	if authz == nil {
		authz = auth.Authorizer{}
	}
	return app.New(app.Deps{
		Store:       s.store,
		Engine:      s.engine,
		Syncer:      s,
		Policies:    storePolicies{s},
		Connections: storeConnections{s},
		Jobs:        appJobs{s},
		Clock:       s.clock,
		Logger:      s.log,
		Authorizer:  authz,
		Auditor:     auditor,
		APIKeys:     s.store,
		Vaults:      vaultFinder{s},
		BreakGlass:  storeBreakGlass{s},
	})
}

// auditor records in the store's audit trail, and tells Options.Auditor
// too when one is set: the application layer's and sign-in's.
func (s *Server) auditor() app.Auditor {
	var a app.Auditor = app.TrailAuditor{Trail: s.trail}
	if s.opts.Auditor != nil {
		a = app.Auditors{a, s.opts.Auditor}
	}
	return a
}

// storePolicies serves an organization's policies, read from the store
// once per call.
type storePolicies struct{ s *Server }

var _ app.PolicySource = storePolicies{}

func (p storePolicies) OrgPolicies(ctx context.Context, org domain.OrgID) (app.Policies, error) {
	if err := p.s.policies.Refresh(ctx, org); err != nil {
		return nil, err
	}
	list, err := p.s.policies.Policies(ctx, org)
	if err != nil {
		return nil, err
	}
	return orgPolicySet{set: p.s.policies, list: list}, nil
}

type orgPolicySet struct {
	set  *policyset.Set
	list []domain.Policy
}

func (o orgPolicySet) PolicyFor(a domain.Application) *domain.Policy { return o.set.PolicyFor(a) }
func (o orgPolicySet) GoverningPolicy(a domain.Application) *domain.Policy {
	return o.set.GoverningPolicy(a)
}
func (o orgPolicySet) List() []domain.Policy { return slices.Clone(o.list) }

// storeConnections lists an organization's connections from the store,
// never with a secret: only the form of the reference is stored anyway.
type storeConnections struct{ s *Server }

var _ app.ConnectionSource = storeConnections{}

func (c storeConnections) OrgConnections(ctx context.Context, org domain.OrgID) ([]app.Connection, error) {
	list, err := c.s.store.ListConnections(ctx, org)
	if err != nil {
		return nil, err
	}
	hs, err := c.s.store.ListConnectionHealth(ctx, org)
	if err != nil {
		return nil, err
	}
	health := make(map[string]store.ConnectionHealth, len(hs))
	for _, h := range hs {
		health[h.Connection] = h
	}
	out := make([]app.Connection, 0, len(list))
	for _, cc := range list {
		id := cc.Identity
		clientID := cmp.Or(id.ClientID, id.ManagedIdentityClientID)
		h := health[cc.Name]
		if h.Roles == nil {
			h.Roles = []string{}
		}
		out = append(out, app.Connection{
			Name: cc.Name, TenantID: cc.TenantID, Purpose: cc.Purpose, Cloud: cc.Cloud,
			Identity: id.Method, ClientID: clientID, AuxiliaryTenants: slices.Clone(cc.AuxiliaryTenants),
			Provisioned: cc.Provisioned,
			LastSuccess: h.LastSuccess, LastFailure: h.LastFailure, Failure: h.Message, AADSTS: h.AADSTS,
			Failing: h.LastFailure.After(h.LastSuccess), Roles: h.Roles,
			PasswordLifetimeLimit: passwordLifetimeLimit(cc),
		})
	}
	return out, nil
}

// passwordLifetimeLimit is the tenant's cap on client secret lifetimes
// when rotor can know it before Entra refuses a secret: a simulator's
// sim.json says it (config.Connection.PasswordLifetimeLimit is learnt the
// same way, for rotor.yaml's connections). 0 when unknown.
func passwordLifetimeLimit(c store.Connection) time.Duration {
	if c.Cloud != string(azure.Sim) || c.SimFile == "" {
		return 0
	}
	info, err := simfile.Load(c.SimFile)
	if err != nil {
		return 0
	}
	t, ok := info.Tenant(c.TenantID)
	if !ok || t.PasswordLifetimeLimit == "" {
		return 0
	}
	d, err := config.ParseDuration(t.PasswordLifetimeLimit)
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

// appJobs enqueues on this Server's job system.
type appJobs struct{ s *Server }

func (a appJobs) EnqueueRotation(ctx context.Context, org domain.OrgID, ap domain.Application) error {
	if err := a.s.openJobs(ctx, 0); err != nil {
		return err
	}
	return a.s.jobs.RotateNow(ctx, org, ap)
}

func (c storeConnections) TestConnection(ctx context.Context, org domain.OrgID, name string) (app.SignIn, error) {
	in, err := c.s.TestConnection(ctx, org, name)
	return app.SignIn{TenantID: in.TenantID, AppID: in.AppID, ObjectID: in.ObjectID, Roles: in.Roles}, err
}

// storeBreakGlass tells the application layer whether an organization has
// its break-glass admin, from the store (never the password's hash).
type storeBreakGlass struct{ s *Server }

var _ app.BreakGlassSource = storeBreakGlass{}

func (b storeBreakGlass) BreakGlassAdmin(ctx context.Context, org domain.OrgID) (*app.BreakGlassAdmin, error) {
	a, err := b.s.store.GetLocalAdmin(ctx, org, breakglass.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &app.BreakGlassAdmin{Name: a.Name, CreatedAt: a.CreatedAt, LastLoginAt: a.LastLoginAt, LockedUntil: a.LockedUntil}, nil
}
