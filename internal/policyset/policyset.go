// Package policyset answers which policy governs an application, from its
// organization's policies and connections in the store. It is the
// rotation's PolicySource for every organization at once: each
// application says its organization (Application.Org), and a policy
// never reaches an application of another organization.
package policyset

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Store is what the set reads.
type Store interface {
	ListPolicies(ctx context.Context, org domain.OrgID) ([]store.Policy, error)
	ListConnections(ctx context.Context, org domain.OrgID) ([]store.Connection, error)
	ListApplicationSettings(ctx context.Context, org domain.OrgID) ([]store.ApplicationSettings, error)
}

// DefaultTTL is how long an organization's policies are used before they
// are read again (outside a plan, which reads them afresh).
const DefaultTTL = 10 * time.Second

// readTimeout bounds a read that PolicyFor, which has no context, makes.
const readTimeout = 10 * time.Second

// Set is a store-backed, cached rotation.PolicySource.
type Set struct {
	st    Store
	clock clock.Clock
	log   *slog.Logger
	ttl   time.Duration

	mu   sync.Mutex
	orgs map[domain.OrgID]*orgPolicies
}

// orgPolicies is one organization's policies as last read.
type orgPolicies struct {
	policies []domain.Policy
	// tenants maps each connection to its tenant.
	tenants map[string]string
	// settings are the applications' own settings, by object id: read
	// with the policies, so they are cached as long.
	settings map[string]domain.AppSettings
	read     time.Time
}

// New returns a set reading st. A zero ttl is DefaultTTL.
func New(st Store, c clock.Clock, log *slog.Logger, ttl time.Duration) *Set {
	return &Set{
		st: st, clock: cmp.Or[clock.Clock](c, clock.Real{}), log: cmp.Or(log, slog.New(slog.DiscardHandler)),
		ttl: cmp.Or(ttl, DefaultTTL), orgs: map[domain.OrgID]*orgPolicies{},
	}
}

// Refresh reads org's policies afresh; the planner calls it at the start
// of each plan, so one plan decides with one consistent set.
func (s *Set) Refresh(ctx context.Context, org domain.OrgID) error {
	_, err := s.load(ctx, org)
	return err
}

// Policies returns org's policies in order (cached up to the TTL).
func (s *Set) Policies(ctx context.Context, org domain.OrgID) ([]domain.Policy, error) {
	op, err := s.get(ctx, org)
	if err != nil {
		return nil, err
	}
	return op.policies, nil
}

func (s *Set) get(ctx context.Context, org domain.OrgID) (*orgPolicies, error) {
	s.mu.Lock()
	op := s.orgs[org]
	s.mu.Unlock()
	if op != nil && s.clock.Now().Sub(op.read) < s.ttl {
		return op, nil
	}
	fresh, err := s.load(ctx, org)
	if err != nil && op != nil {
		// Keep deciding with what was read last rather than with nothing.
		s.log.Warn("reading policies failed; using the ones read before", "org", org, "error", err)
		return op, nil
	}
	return fresh, err
}

func (s *Set) load(ctx context.Context, org domain.OrgID) (*orgPolicies, error) {
	pols, err := s.st.ListPolicies(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("policies of organization %s: %w", org, err)
	}
	conns, err := s.st.ListConnections(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("connections of organization %s: %w", org, err)
	}
	sets, err := s.st.ListApplicationSettings(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("application settings of organization %s: %w", org, err)
	}
	op := &orgPolicies{tenants: make(map[string]string, len(conns)), settings: make(map[string]domain.AppSettings, len(sets)), read: s.clock.Now()}
	for _, a := range sets {
		op.settings[a.ObjectID] = a.Settings
	}
	for _, p := range pols {
		op.policies = append(op.policies, p.Policy)
	}
	for _, c := range conns {
		// Only a rotation connection may rotate: a policy (made in the UI)
		// that names a read, vm or automation connection governs nothing,
		// rather than driving addPassword through an identity meant for
		// something else.
		if c.Purpose == "rotation" {
			op.tenants[c.Name] = c.TenantID
		}
	}
	s.mu.Lock()
	s.orgs[org] = op
	s.mu.Unlock()
	return op, nil
}

// PolicyFor implements rotation.PolicySource: the policy of app's
// organization that governs it (Select), with the application's own
// settings applied to a copy of it (domain.AppSettings.Apply: Name stays
// the policy's, Overrides says what changed), or nil. Settings never make
// an application governed: one no policy selects gets none. An
// application without an organization is governed by nothing.
func (s *Set) PolicyFor(app domain.Application) *domain.Policy {
	p, op := s.governing(app)
	if p == nil {
		return nil
	}
	if st, ok := op.settings[app.ObjectID]; ok && !st.IsZero() {
		q := st.Apply(*p)
		return &q
	}
	return p
}

// GoverningPolicy is the policy that governs app as configured, without
// the application's own settings: what the settings are layered over,
// and what a page shows as "the policy says". Nil when none.
func (s *Set) GoverningPolicy(app domain.Application) *domain.Policy {
	p, _ := s.governing(app)
	return p
}

func (s *Set) governing(app domain.Application) (*domain.Policy, *orgPolicies) {
	if app.Org == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	op, err := s.get(ctx, app.Org)
	if err != nil {
		s.log.Error("no policy can be chosen: reading policies failed", "org", app.Org, "app", app.ObjectID, "error", err)
		return nil, nil
	}
	return Select(op.policies, func(c string) (string, bool) { t, ok := op.tenants[c]; return t, ok }, app), op
}

// Select is the rule that picks an application's policy: the first policy
// in order whose connection reaches the application's tenant and whose
// selector matches (all_owned: owned by that connection's identity). A
// disabled policy still counts, so disabling a narrow policy pauses its
// applications instead of handing them to a broader one further down.
// tenantOf says which tenant a connection reaches.
func Select(policies []domain.Policy, tenantOf func(connection string) (string, bool), app domain.Application) *domain.Policy {
	for i := range policies {
		p := &policies[i]
		tenant, ok := tenantOf(p.Connection)
		if !ok || !strings.EqualFold(tenant, app.TenantID) {
			continue
		}
		if p.Selector.Matches(app, p.Connection) {
			return p
		}
	}
	return nil
}
