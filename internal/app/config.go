package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// PolicyRow is a policy as the interfaces show it. Sinks are listed by
// type only: their settings may name secret references, and what a sink
// delivers to is shown per application (pinned targets), not here.
type PolicyRow struct {
	Name       string                `json:"name"`
	Connection string                `json:"connection"`
	Selector   string                `json:"applications"`
	Enabled    bool                  `json:"enabled"`
	Kind       domain.CredentialKind `json:"kind"`
	// Lifetime, RenewBefore, Overlap and NotifyBefore are spelt like the
	// configuration (90d, 36h).
	Lifetime        string   `json:"lifetime"`
	RenewBefore     string   `json:"renew_before"`
	Overlap         string   `json:"overlap"`
	NotifyBefore    string   `json:"notify_before"`
	Verify          bool     `json:"verify"`
	RetireUnmanaged bool     `json:"retire_unmanaged"`
	Sinks           []string `json:"sinks"`
	// Certificate is how a kind: certificate policy makes its
	// certificates; nil for a secret policy.
	Certificate *CertificateRow `json:"certificate,omitempty"`
}

// CertificateRow is a certificate policy's settings as the interfaces
// show them. The bootstrap certificate is said to be configured or not,
// never where it is kept.
type CertificateRow struct {
	KeyType   string   `json:"key_type"`
	Subject   string   `json:"subject"`
	DNSNames  []string `json:"dns_names"`
	KeySource string   `json:"key_source"`
	VaultURL  string   `json:"vault_url,omitempty"`
	VaultName string   `json:"vault_name,omitempty"`
	HSM       bool     `json:"hsm,omitempty"`
	Bootstrap bool     `json:"bootstrap"`
}

// ListPolicies lists the organization's policies in the order that decides
// which one governs an application (the first that selects it).
func (s *Service) ListPolicies(ctx context.Context, scope Scope) ([]PolicyRow, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectPolicies); err != nil {
		return nil, err
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	list := pols.List()
	rows := make([]PolicyRow, 0, len(list))
	for _, p := range list {
		rows = append(rows, policyRow(p))
	}
	return rows, nil
}

// GetPolicy returns one of the organization's policies by name.
func (s *Service) GetPolicy(ctx context.Context, scope Scope, name string) (*PolicyRow, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectPolicies+":"+name); err != nil {
		return nil, err
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	for _, p := range pols.List() {
		if p.Name == name {
			r := policyRow(p)
			return &r, nil
		}
	}
	return nil, &NotFoundError{Kind: "policy", Ref: name}
}

func policyRow(p domain.Policy) PolicyRow {
	r := PolicyRow{
		Name: p.Name, Connection: p.Connection, Selector: p.Selector.String(), Enabled: p.Enabled, Kind: p.Kind,
		Lifetime: domain.FormatDuration(p.Lifetime), RenewBefore: domain.FormatDuration(p.RenewBefore),
		Overlap: domain.FormatDuration(p.Overlap), NotifyBefore: domain.FormatDuration(p.NotifyBefore),
		Verify: p.Verify, RetireUnmanaged: p.RetireUnmanaged, Sinks: make([]string, 0, len(p.Sinks)),
	}
	for _, sk := range p.Sinks {
		r.Sinks = append(r.Sinks, sk.Type)
	}
	if p.Kind == domain.KindCertificate {
		c := p.Certificate
		r.Certificate = &CertificateRow{
			KeyType: cmp.Or(c.KeyType, "rsa-2048"), Subject: cmp.Or(c.Subject, "CN=<application display name>"),
			DNSNames: append([]string{}, c.DNSNames...), KeySource: cmp.Or(string(c.KeySource), "local"),
			VaultURL: c.VaultURL, VaultName: c.VaultName, HSM: c.HSM, Bootstrap: c.Bootstrap != nil,
		}
	}
	return r
}

// Connection is how rotor reaches one tenant for one purpose, as the
// interfaces may show it: who and where, never a secret or where one is
// kept.
type Connection struct {
	Name     string `json:"name"`
	TenantID string `json:"tenant_id"`
	// Purpose is rotation, read, automation or vm.
	Purpose string `json:"purpose"`
	// Cloud is public, usgov, china or sim.
	Cloud string `json:"cloud"`
	// Identity is how it signs in: client_secret, certificate,
	// managed_identity or workload_identity.
	Identity string `json:"identity"`
	// ClientID is the identity's app (client) id, when it has one.
	ClientID         string   `json:"client_id,omitempty"`
	AuxiliaryTenants []string `json:"auxiliary_tenants,omitempty"`
	// Provisioned is true for connections rotor.yaml declares (read-only
	// elsewhere).
	Provisioned bool `json:"provisioned"`
	// LastSuccess and LastFailure are when any rotor process last signed
	// it in or synced through it, and last failed to; Failure says how
	// (Entra's AADSTS code and message; never a secret) and AADSTS is
	// the code, 0 when the failure was not Entra's refusal.
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	Failure     string    `json:"failure,omitempty"`
	AADSTS      int       `json:"aadsts,omitempty"`
	// Failing is true when the last failure is newer than the last
	// success.
	Failing bool `json:"failing"`
	// Roles are the Graph application roles its last token carried.
	Roles []string `json:"roles"`
	// PasswordLifetimeLimit is the tenant's app management policy cap on
	// client secret lifetimes, when rotor knows it (the simulator's
	// sim.json says it; for real clouds it is learnt only when Entra
	// refuses a secret); 0 when unknown.
	PasswordLifetimeLimit time.Duration `json:"-"`
}

// ListConnections lists the organization's connections.
func (s *Service) ListConnections(ctx context.Context, scope Scope) ([]Connection, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectConnections); err != nil {
		return nil, err
	}
	if s.conns == nil {
		return []Connection{}, nil
	}
	list, err := s.conns.OrgConnections(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	if list == nil {
		list = []Connection{}
	}
	return list, nil
}

// GetConnection returns one of the organization's connections by name,
// with its health.
func (s *Service) GetConnection(ctx context.Context, scope Scope, name string) (*Connection, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectConnections+":"+name); err != nil {
		return nil, err
	}
	if s.conns != nil {
		list, err := s.conns.OrgConnections(ctx, scope.Org)
		if err != nil {
			return nil, fmt.Errorf("list connections: %w", err)
		}
		for i := range list {
			if list[i].Name == name {
				return &list[i], nil
			}
		}
	}
	return nil, &NotFoundError{Kind: "connection", Ref: name}
}

// SignIn is what signing a connection in proved: who it is, in which
// tenant, and the Graph application roles its token carries.
type SignIn struct {
	Connection string   `json:"connection"`
	TenantID   string   `json:"tenant_id"`
	AppID      string   `json:"app_id,omitempty"`
	ObjectID   string   `json:"object_id,omitempty"`
	Roles      []string `json:"roles"`
	// Owned counts the applications the connection may change (its
	// identity owns them) as of its last sync: what a rotation connection
	// can rotate. Reported whether or not the sign-in worked.
	Owned int `json:"owned"`
}

// TestConnection signs the named connection in now (the UI's Test
// button): it reports the identity and the roles its token carries, or
// the refusal with Entra's AADSTS code (an *azure.TokenError in the chain).
func (s *Service) TestConnection(ctx context.Context, scope Scope, name string) (SignIn, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectConnections+":"+name); err != nil {
		return SignIn{}, err
	}
	if s.conns == nil {
		return SignIn{}, &UnavailableError{What: "connections"}
	}
	list, err := s.conns.OrgConnections(ctx, scope.Org)
	if err != nil {
		return SignIn{}, fmt.Errorf("list connections: %w", err)
	}
	found := false
	for _, c := range list {
		found = found || c.Name == name
	}
	if !found {
		return SignIn{}, &NotFoundError{Kind: "connection", Ref: name}
	}
	in, err := s.conns.TestConnection(ctx, scope.Org, name)
	if in.Roles == nil {
		in.Roles = []string{}
	}
	in.Connection = name
	owned, cerr := s.store.CountOwnedApplications(ctx, scope.Org, name)
	if cerr != nil {
		return in, errors.Join(err, fmt.Errorf("count the applications %s owns: %w", name, cerr))
	}
	in.Owned = owned
	return in, err
}
