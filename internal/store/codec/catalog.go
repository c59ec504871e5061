package codec

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// ConnRow is a connection's columns as a store keeps them, comparable so
// that an upsert can tell an unchanged connection. No field holds a
// secret: ClientSecret and CertPassword are JSON store.SecretRefs ("" when
// none).
type ConnRow struct {
	Tenant, Cloud, Purpose, SimFile, Method string
	// Identity is the JSON of the identity's non-secret parameters.
	Identity, ClientSecret, CertPassword string
	// Aux is the JSON array of auxiliary tenants.
	Aux string
}

// identityParams are the JSON of the identity column: non-secret only.
type identityParams struct {
	ClientID                string `json:"client_id,omitempty"`
	CertificateFile         string `json:"certificate_file,omitempty"`
	SendCertificateChain    bool   `json:"send_certificate_chain,omitempty"`
	ManagedIdentityClientID string `json:"managed_identity_client_id,omitempty"`
	FederatedTokenFile      string `json:"federated_token_file,omitempty"`
}

func encRef(r *store.SecretRef) (string, error) {
	if r == nil {
		return "", nil
	}
	b, err := json.Marshal(r)
	return string(b), err
}

func decRef(s string) (*store.SecretRef, error) {
	if s == "" {
		return nil, nil
	}
	var r store.SecretRef
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, fmt.Errorf("stored secret reference: %w", err)
	}
	return &r, nil
}

// EncConn is c's row.
func EncConn(c *store.Connection) (ConnRow, error) {
	id := c.Identity
	ip, err := json.Marshal(identityParams{
		ClientID: id.ClientID, CertificateFile: id.CertificateFile, SendCertificateChain: id.SendCertificateChain,
		ManagedIdentityClientID: id.ManagedIdentityClientID, FederatedTokenFile: id.FederatedTokenFile,
	})
	if err != nil {
		return ConnRow{}, err
	}
	cs, err := encRef(id.ClientSecret)
	if err != nil {
		return ConnRow{}, err
	}
	cp, err := encRef(id.CertificatePassword)
	if err != nil {
		return ConnRow{}, err
	}
	aux := c.AuxiliaryTenants
	if aux == nil {
		aux = []string{}
	}
	ab, err := json.Marshal(aux)
	if err != nil {
		return ConnRow{}, err
	}
	return ConnRow{
		Tenant: c.TenantID, Cloud: c.Cloud, Purpose: c.Purpose, SimFile: c.SimFile, Method: id.Method,
		Identity: string(ip), ClientSecret: cs, CertPassword: cp, Aux: string(ab),
	}, nil
}

// Decode fills c (whose Name is set) from the row.
func (r ConnRow) Decode(c *store.Connection) error {
	c.TenantID, c.Cloud, c.Purpose, c.SimFile = r.Tenant, r.Cloud, r.Purpose, r.SimFile
	var ip identityParams
	if err := json.Unmarshal([]byte(r.Identity), &ip); err != nil {
		return fmt.Errorf("stored identity of connection %q: %w", c.Name, err)
	}
	c.Identity = store.ConnectionIdentity{
		Method: r.Method, ClientID: ip.ClientID, CertificateFile: ip.CertificateFile,
		SendCertificateChain: ip.SendCertificateChain, ManagedIdentityClientID: ip.ManagedIdentityClientID,
		FederatedTokenFile: ip.FederatedTokenFile,
	}
	var err error
	if c.Identity.ClientSecret, err = decRef(r.ClientSecret); err != nil {
		return err
	}
	if c.Identity.CertificatePassword, err = decRef(r.CertPassword); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(r.Aux), &c.AuxiliaryTenants); err != nil {
		return fmt.Errorf("stored auxiliary tenants of connection %q: %w", c.Name, err)
	}
	if len(c.AuxiliaryTenants) == 0 {
		c.AuxiliaryTenants = nil
	}
	return nil
}

// PolicyRow is a policy's columns as a store keeps them, comparable.
// Durations are nanoseconds.
type PolicyRow struct {
	Connection       string
	Enabled          bool
	Kind             string
	Selector         string // JSON
	Lifetime, Renew  int64
	Overlap, Notify  int64
	Verify, RetireUn bool
	Sinks            string // JSON array of {type, settings}, in order
	Position         int
	// Certificate is the policy's domain.CertificateSpec as JSON; "{}"
	// is every default (and what rows from before the column hold).
	Certificate string
}

type certificateJSON struct {
	KeyType   string         `json:"key_type,omitempty"`
	Subject   string         `json:"subject,omitempty"`
	DNSNames  []string       `json:"dns_names,omitempty"`
	Bootstrap map[string]any `json:"bootstrap,omitempty"`
	KeySource string         `json:"key_source,omitempty"`
	VaultURL  string         `json:"vault_url,omitempty"`
	HSM       bool           `json:"hsm,omitempty"`
	VaultName string         `json:"vault_name,omitempty"`
}

type selectorJSON struct {
	NamePrefix string   `json:"name_prefix,omitempty"`
	IDs        []string `json:"ids,omitempty"`
	AllOwned   bool     `json:"all_owned,omitempty"`
}

type sinkJSON struct {
	Type     string         `json:"type"`
	Settings map[string]any `json:"settings"`
}

// EncPolicy is p's row at position.
func EncPolicy(p *domain.Policy, position int) (PolicyRow, error) {
	sel, err := json.Marshal(selectorJSON{NamePrefix: p.Selector.NamePrefix, IDs: p.Selector.IDs, AllOwned: p.Selector.AllOwned})
	if err != nil {
		return PolicyRow{}, err
	}
	sinks := make([]sinkJSON, len(p.Sinks))
	for i, sp := range p.Sinks {
		sinks[i] = sinkJSON{Type: sp.Type, Settings: sp.Settings}
		if sp.Settings == nil {
			sinks[i].Settings = map[string]any{}
		}
	}
	sb, err := json.Marshal(sinks)
	if err != nil {
		return PolicyRow{}, fmt.Errorf("sink settings: %w", err)
	}
	c := p.Certificate
	cb, err := json.Marshal(certificateJSON{KeyType: c.KeyType, Subject: c.Subject, DNSNames: c.DNSNames, Bootstrap: c.Bootstrap,
		KeySource: string(c.KeySource), VaultURL: c.VaultURL, HSM: c.HSM, VaultName: c.VaultName})
	if err != nil {
		return PolicyRow{}, fmt.Errorf("certificate settings: %w", err)
	}
	return PolicyRow{
		Connection: p.Connection, Enabled: p.Enabled, Kind: string(p.Kind), Selector: string(sel),
		Lifetime: int64(p.Lifetime), Renew: int64(p.RenewBefore), Overlap: int64(p.Overlap), Notify: int64(p.NotifyBefore),
		Verify: p.Verify, RetireUn: p.RetireUnmanaged, Sinks: string(sb), Position: position, Certificate: string(cb),
	}, nil
}

// Decode fills p (whose Name is set) from the row's kind, durations,
// selector and sinks (Connection, Enabled, Verify and RetireUnmanaged are
// scanned by the store straight into p).
func (r PolicyRow) Decode(p *domain.Policy) error {
	p.Kind = domain.CredentialKind(r.Kind)
	p.Lifetime, p.RenewBefore = time.Duration(r.Lifetime), time.Duration(r.Renew)
	p.Overlap, p.NotifyBefore = time.Duration(r.Overlap), time.Duration(r.Notify)
	var sel selectorJSON
	if err := json.Unmarshal([]byte(r.Selector), &sel); err != nil {
		return fmt.Errorf("stored selector of policy %q: %w", p.Name, err)
	}
	p.Selector = domain.Selector{NamePrefix: sel.NamePrefix, IDs: sel.IDs, AllOwned: sel.AllOwned}
	var sinks []sinkJSON
	if err := json.Unmarshal([]byte(r.Sinks), &sinks); err != nil {
		return fmt.Errorf("stored sinks of policy %q: %w", p.Name, err)
	}
	for _, sj := range sinks {
		p.Sinks = append(p.Sinks, domain.SinkSpec{Type: sj.Type, Settings: sj.Settings})
	}
	if r.Certificate != "" {
		var c certificateJSON
		if err := json.Unmarshal([]byte(r.Certificate), &c); err != nil {
			return fmt.Errorf("stored certificate settings of policy %q: %w", p.Name, err)
		}
		p.Certificate = domain.CertificateSpec{KeyType: c.KeyType, Subject: c.Subject, DNSNames: c.DNSNames, Bootstrap: c.Bootstrap,
			KeySource: domain.KeySource(c.KeySource), VaultURL: c.VaultURL, HSM: c.HSM, VaultName: c.VaultName}
	}
	return nil
}

// Guard says whether a write by provisionedBy ("" for the UI and the API)
// may touch an existing object of kind ("connection", "policy") that is
// provisioned (or not) from source.
func Guard(kind string, org domain.OrgID, name string, provisioned bool, source, provisionedBy string) error {
	switch {
	case provisioned && provisionedBy == "":
		return &store.ProvisionedError{Kind: kind, Org: org, Name: name, Source: source}
	case !provisioned && provisionedBy != "":
		return fmt.Errorf("%s %q of organization %s was made in rotor, not by %s: rename one of them, or delete rotor's (%w)",
			kind, name, org, provisionedBy, store.ErrConflict)
	}
	return nil
}

// MaxHealthMessage bounds a recorded failure: an error chain can be long,
// and the row is read by every `connections list`.
const MaxHealthMessage = 1024

// TruncateUTF8 cuts s to at most n bytes without splitting a character.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
