package server

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
)

// conn is one connection of an organization with its clients, built once.
type conn struct {
	org     domain.OrgID
	purpose string
	cfg     azure.Connection
	ep      azure.Endpoints
	graph   *graph.Client
	// cred is the connection's identity, for Graph and for sinks.
	cred azcore.TokenCredential
	// callerOID returns the object id of the connection identity's service
	// principal, from a fresh token.
	callerOID func(ctx context.Context) (string, error)

	// stamp is the stored connection's UpdatedAt: a newer one is rebuilt.
	stamp time.Time

	// spID caches the service principal's object id once found; failures
	// are not cached, so a transient error does not disable the connection.
	spMu sync.Mutex
	spID string
}

// connKey names a connection: names are an organization's own.
type connKey struct {
	org  domain.OrgID
	name string
}

// Conns holds every organization's connections with their Azure clients,
// keyed by organization and name. It implements rotation.Connections,
// feeds the inventory, and gives sinks a connection's identity
// (sink.TokenCredentials).
//
// Connections are added, replaced and removed while rotor runs (an
// organization's connections change in the store); a run that already
// holds a connection's clients keeps them.
type Conns struct {
	mu    sync.RWMutex
	byKey map[connKey]*conn
	// order is the connections in the order they were added.
	order []connKey
	// pacers give every Graph client of one identity in one tenant the
	// same throttling budget; nil is no pacing.
	pacers *pacer.Registry
	// clock dates Graph's proofs of possession (rotor's clock, so a
	// simulator whose clock is advanced accepts them).
	clock clock.Clock
}

var (
	_ rotation.Connections  = (*Conns)(nil)
	_ sink.TokenCredentials = (*Conns)(nil)
)

// ConnSpec is one connection to build.
type ConnSpec struct {
	Org domain.OrgID
	// Purpose is rotation, automation, vm or read.
	Purpose string
	Conn    azure.Connection
	// Secret, when set, supplies a client secret connection's secret at
	// each token request (azure.NewSourcedCredential) instead of
	// Conn.Identity.ClientSecret, so a secret rotated at its source (a
	// file, a Key Vault secret) is picked up without a restart.
	Secret azure.SecretSource
	// Stamp is the stored connection's UpdatedAt, to notice a change.
	Stamp time.Time
	// Observer, when set, is told of the connection's HTTP attempts and
	// failed sign-ins (rotor's metrics).
	Observer ConnObserver
}

// NewConns builds credentials and Graph clients for every connection. No
// network call is made here: a bad secret shows up at the first use.
func NewConns(list []ConnSpec) (*Conns, error) {
	cs := newConns()
	for _, c := range list {
		if err := cs.add(c); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

func newConns() *Conns { return &Conns{byKey: map[connKey]*conn{}} }

// add builds one new connection.
func (cs *Conns) add(spec ConnSpec) error {
	k := connKey{spec.Org, spec.Conn.Name}
	cs.mu.RLock()
	_, dup := cs.byKey[k]
	cs.mu.RUnlock()
	if dup {
		return fmt.Errorf("organization %s: connection %q twice", spec.Org, spec.Conn.Name)
	}
	c, err := build(spec, cs.pacers)
	if err != nil {
		return err
	}
	cs.put(c)
	return nil
}

// put adds or replaces a built connection.
func (cs *Conns) put(c *conn) {
	k := connKey{c.org, c.cfg.Name}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if _, ok := cs.byKey[k]; !ok {
		cs.order = append(cs.order, k)
	}
	cs.byKey[k] = c
}

// remove forgets a connection.
func (cs *Conns) remove(org domain.OrgID, name string) {
	k := connKey{org, name}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.byKey, k)
	cs.order = slices.DeleteFunc(cs.order, func(x connKey) bool { return x == k })
}

// stamp is the Stamp a connection was built from, if it exists.
func (cs *Conns) stamp(org domain.OrgID, name string) (time.Time, bool) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	c, ok := cs.byKey[connKey{org, name}]
	if !ok {
		return time.Time{}, false
	}
	return c.stamp, true
}

// build makes a connection's credential and clients. Its Graph client
// draws on the pacer of its identity and tenant in pacers (nil: none).
func build(spec ConnSpec, pacers *pacer.Registry) (*conn, error) {
	c := spec.Conn
	if spec.Org == "" {
		return nil, fmt.Errorf("connection %q: no organization", c.Name)
	}
	ep, err := azure.ResolveEndpoints(c.Cloud, c.SimFile)
	if err != nil {
		return nil, fmt.Errorf("organization %s: connection %q: %w", spec.Org, c.Name, err)
	}
	if spec.Observer != nil {
		// Every client built from ep below (the credential's token
		// requests, Graph, the sinks' Key Vault clients) reports its
		// attempts as this connection's.
		ep.Observer = spec.Observer.Requests(spec.Org, c.Name)
	}
	var cred azcore.TokenCredential
	if spec.Secret != nil && c.Identity.Method == azure.ClientSecret {
		cred, err = azure.NewSourcedCredential(c, ep, spec.Secret)
	} else {
		cred, err = azure.NewCredential(c, ep)
	}
	if err != nil {
		return nil, fmt.Errorf("organization %s: %w", spec.Org, err)
	}
	if spec.Observer != nil {
		cred = signInCounter{inner: cred, obs: spec.Observer, org: spec.Org, name: c.Name}
	}
	var gopts []graph.Option
	if pacers != nil {
		gopts = append(gopts, graph.WithPacer(pacers.For(pacerKey(c))))
	}
	g, err := graph.New(cred, ep, gopts...)
	if err != nil {
		return nil, fmt.Errorf("organization %s: connection %q: %w", spec.Org, c.Name, err)
	}
	return &conn{
		org: spec.Org, purpose: spec.Purpose, cfg: c, ep: ep, graph: g, cred: cred, stamp: spec.Stamp,
		callerOID: func(ctx context.Context) (string, error) {
			return azure.CallerObjectID(ctx, cred, ep.GraphScope)
		},
	}, nil
}

// pacerKey is the identity Graph meters a connection's requests by: its
// client id in its tenant. A system-assigned managed identity has no
// configured client id, and a workload identity may take its from
// AZURE_CLIENT_ID; a host has one of each, so one key stands for it in
// every connection that uses it.
func pacerKey(c azure.Connection) pacer.Key {
	id := c.Identity
	client := id.ClientID
	switch {
	case id.Method == azure.ManagedIdentity:
		client = cmp.Or(id.ManagedIdentityClientID, "system-assigned managed identity")
	case client == "":
		client = "AZURE_CLIENT_ID"
	}
	return pacer.Key{TenantID: c.TenantID, ClientID: client}
}

func (cs *Conns) get(org domain.OrgID, name string) (*conn, error) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	c, ok := cs.byKey[connKey{org, name}]
	if !ok {
		return nil, fmt.Errorf("organization %s has no connection %q", org, name)
	}
	return c, nil
}

// of lists an organization's connections in the order they were added.
func (cs *Conns) of(org domain.OrgID) []*conn {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	var out []*conn
	for _, k := range cs.order {
		if k.org == org {
			out = append(out, cs.byKey[k])
		}
	}
	return out
}

// all returns every organization's connections, in the order they were
// added.
func (cs *Conns) all() []*conn {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]*conn, 0, len(cs.order))
	for _, k := range cs.order {
		out = append(out, cs.byKey[k])
	}
	return out
}

// Graph returns the Graph client of a connection.
func (cs *Conns) Graph(org domain.OrgID, name string) (*graph.Client, error) {
	c, err := cs.get(org, name)
	if err != nil {
		return nil, err
	}
	return c.graph, nil
}

// RotationSPObjectID returns the object id of the connection identity's
// service principal (looked up once by its app id).
func (cs *Conns) RotationSPObjectID(ctx context.Context, org domain.OrgID, name string) (string, error) {
	c, err := cs.get(org, name)
	if err != nil {
		return "", err
	}
	c.spMu.Lock()
	defer c.spMu.Unlock()
	if c.spID != "" {
		return c.spID, nil
	}
	id := c.cfg.Identity
	appID := id.ClientID
	if id.Method == azure.ManagedIdentity {
		appID = id.ManagedIdentityClientID
	}
	if appID == "" {
		// A system-assigned managed identity: its token says who it is.
		oid, err := c.callerOID(ctx)
		if err != nil {
			return "", fmt.Errorf("connection %q: find rotor's own service principal: %w", name, err)
		}
		c.spID = oid
		return oid, nil
	}
	sp, err := c.graph.GetServicePrincipalByAppID(ctx, appID)
	if err != nil {
		return "", fmt.Errorf("connection %q: find the service principal of client %s: %w", name, appID, err)
	}
	c.spID = sp.ID
	return c.spID, nil
}

// Directory implements rotation.Connections.
func (cs *Conns) Directory(org domain.OrgID, name string) (rotation.Directory, error) {
	c, err := cs.get(org, name)
	if err != nil {
		return nil, err
	}
	return graphDirectory{g: c.graph, clock: cs.clock}, nil
}

// Verifier implements rotation.Connections.
func (cs *Conns) Verifier(org domain.OrgID, name string) (rotation.Verifier, error) {
	c, err := cs.get(org, name)
	if err != nil {
		return nil, err
	}
	return verifier{ep: c.ep, clock: cs.clock}, nil
}

// Vault implements rotation.VaultConnections: the Key Vault a policy's
// certificates keep their private keys in (certificate.key_source), as the
// connection's identity reaches it (docs/adr/0037).
func (cs *Conns) Vault(org domain.OrgID, connection, vaultURL string) (rotation.Vault, error) {
	id, err := cs.TokenCredential(org, connection)
	if err != nil {
		return nil, err
	}
	v, err := azure.NewVaultKeys(vaultURL, id.Credential, id.ClientOptions, id.Simulator)
	if err != nil {
		return nil, err
	}
	return vaultKeys{v}, nil
}

// vaultKeys adapts azure.VaultKeys to rotation.Vault.
type vaultKeys struct{ v *azure.VaultKeys }

var (
	_ rotation.Vault             = vaultKeys{}
	_ rotation.VaultConnections  = (*Conns)(nil)
	_ rotation.CertificateReader = graphDirectory{}
	_ rotation.VaultSigner       = vaultSigner{}
)

// vaultSigner is an azure.Signer as a rotation.VaultSigner.
type vaultSigner struct {
	*azure.Signer
	v   *azure.VaultKeys
	key azure.VaultKey
}

func (s vaultSigner) WithContext(ctx context.Context) rotation.VaultSigner {
	return vaultSigner{Signer: s.v.Signer(ctx, s.key), v: s.v, key: s.key}
}

func (k vaultKeys) signer(ctx context.Context, key azure.VaultKey) vaultSigner {
	return vaultSigner{Signer: k.v.Signer(ctx, key), v: k.v, key: key}
}

func (k vaultKeys) CreateKey(ctx context.Context, name string, bits int, hsm bool, tags map[string]string) (rotation.VaultSigner, error) {
	key, err := k.v.CreateKey(ctx, name, azure.KeyRequest{Bits: bits, HSM: hsm, Tags: tags})
	if err != nil {
		return nil, err
	}
	return k.signer(ctx, key), nil
}

func (k vaultKeys) CreateCertificate(ctx context.Context, name string, req rotation.VaultCertificateRequest) (*x509.Certificate, rotation.VaultSigner, error) {
	vc, err := k.v.CreateSelfSignedCertificate(ctx, name, azure.CertificateRequest{Subject: req.Subject, DNSNames: req.DNSNames,
		ValidityMonths: req.ValidityMonths, Bits: req.Bits, HSM: req.HSM, Tags: req.Tags})
	if err != nil {
		return nil, nil, err
	}
	return vc.Cert, k.signer(ctx, vc.Key), nil
}

func (k vaultKeys) LatestTags(ctx context.Context, name string, certificate bool) (map[string]string, bool, error) {
	if certificate {
		return k.v.CertificateTags(ctx, name)
	}
	key, err := k.v.Key(ctx, name, "")
	if err != nil {
		if azure.IsVaultNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return key.Tags, true, nil
}

func (k vaultKeys) KeyVersions(ctx context.Context, name string) ([]rotation.VaultKeyVersion, error) {
	list, err := k.v.KeyVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]rotation.VaultKeyVersion, 0, len(list))
	for _, kv := range list {
		out = append(out, rotation.VaultKeyVersion{KID: kv.KID, Tags: kv.Tags, Enabled: kv.Enabled})
	}
	return out, nil
}

func (k vaultKeys) Signer(ctx context.Context, kid string) (rotation.VaultSigner, error) {
	ref := azure.VaultKey{KID: kid}
	key, err := k.v.Key(ctx, ref.Name(), ref.Version())
	if err != nil {
		return nil, err
	}
	return k.signer(ctx, key), nil
}

// Certificates implements rotation.CertificateReader: the application's
// certificates with their data ($select=keyCredentials is what makes
// Graph include key). One that does not parse is left out.
func (d graphDirectory) Certificates(ctx context.Context, objectID string) ([]rotation.RegisteredCertificate, error) {
	app, err := d.g.GetApplication(ctx, objectID, []string{"id", "keyCredentials"})
	if err != nil {
		return nil, err
	}
	var out []rotation.RegisteredCertificate
	for _, kc := range app.KeyCredentials {
		c, err := x509.ParseCertificate(kc.Key)
		if err != nil {
			continue
		}
		out = append(out, rotation.RegisteredCertificate{KeyID: kc.KeyID, Cert: c, Start: kc.StartDateTime, End: kc.EndDateTime})
	}
	return out, nil
}

// TokenCredential implements sink.TokenCredentials: a sink acts as the
// named connection of the organization, on its cloud's transport and
// retries. Sinks keep their SDK clients, so the credential follows the
// connection: when the connection is rebuilt (edited in the store), the
// sink's next token is the new identity's; when it is deleted, the sink's
// next token request fails.
func (cs *Conns) TokenCredential(org domain.OrgID, connection string) (sink.AzureIdentity, error) {
	c, err := cs.get(org, connection)
	if err != nil {
		return sink.AzureIdentity{}, err
	}
	return sink.AzureIdentity{
		Credential:    liveCredential{cs: cs, org: org, name: connection},
		ClientOptions: azure.ClientOptions(c.ep),
		Simulator:     c.ep.Cloud == azure.Sim,
		// The connection's as configured (tenant ids or domains).
		AuxiliaryTenants: slices.Clone(c.cfg.AuxiliaryTenants),
	}, nil
}

// liveCredential is the current credential of a connection.
type liveCredential struct {
	cs   *Conns
	org  domain.OrgID
	name string
}

var _ azcore.TokenCredential = liveCredential{}

func (l liveCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c, err := l.cs.get(l.org, l.name)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return c.cred.GetToken(ctx, opts)
}

// endpoints are the connections' clouds.
func (cs *Conns) endpoints() []azure.Endpoints {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]azure.Endpoints, 0, len(cs.order))
	for _, k := range cs.order {
		out = append(out, cs.byKey[k].ep)
	}
	return out
}

// tenants is how many distinct tenants the connections reach.
func (cs *Conns) tenants() int {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	seen := map[string]bool{}
	for _, c := range cs.byKey {
		seen[c.cfg.TenantID] = true
	}
	return len(seen)
}

// graphDirectory adapts the Graph client to the rotation's Directory and
// CertificateDirectory. clock dates the proofs of possession.
type graphDirectory struct {
	g     *graph.Client
	clock clock.Clock
}

var (
	_ rotation.Directory            = graphDirectory{}
	_ rotation.CertificateDirectory = graphDirectory{}
	_ rotation.CertificateVerifier  = verifier{}
)

func (d graphDirectory) now() time.Time {
	if d.clock == nil {
		return time.Now()
	}
	return d.clock.Now()
}

func graphProver(p *rotation.Prover) *graph.Prover {
	if p == nil || p.Cert == nil || p.Key.IsZero() {
		return nil
	}
	return &graph.Prover{Cert: p.Cert, Key: p.Key.Signer()}
}

func (d graphDirectory) AddCertificate(ctx context.Context, objectID, displayName string, cert *x509.Certificate, p *rotation.Prover) (rotation.NewKey, error) {
	kc, err := d.g.AddCertificate(ctx, objectID, graph.KeyCredential{
		DisplayName: displayName, Key: cert.Raw, StartDateTime: cert.NotBefore, EndDateTime: cert.NotAfter,
	}, graphProver(p), d.now())
	if err != nil {
		return rotation.NewKey{}, err
	}
	return rotation.NewKey{KeyID: kc.KeyID, Start: kc.StartDateTime, End: kc.EndDateTime}, nil
}

func (d graphDirectory) RemoveCertificate(ctx context.Context, objectID, keyID string, p *rotation.Prover) error {
	return d.g.RemoveCertificate(ctx, objectID, keyID, graphProver(p), d.now())
}

func (d graphDirectory) Credentials(ctx context.Context, objectID string) ([]domain.Credential, error) {
	app, err := d.g.GetApplication(ctx, objectID, []string{"id", "passwordCredentials", "keyCredentials"})
	if err != nil {
		return nil, err
	}
	return inventory.Credentials(app), nil
}

func (d graphDirectory) AddPassword(ctx context.Context, objectID, displayName string, end time.Time) (rotation.NewPassword, error) {
	pc, err := d.g.AddPassword(ctx, objectID, graph.AddPasswordRequest{DisplayName: displayName, EndDateTime: end})
	if err != nil {
		return rotation.NewPassword{}, err
	}
	return rotation.NewPassword{KeyID: pc.KeyID, Start: pc.StartDateTime, End: pc.EndDateTime, Value: pc.SecretText}, nil
}

func (d graphDirectory) RemovePassword(ctx context.Context, objectID, keyID string) error {
	return d.g.RemovePassword(ctx, objectID, keyID)
}

type verifier struct {
	ep    azure.Endpoints
	clock clock.Clock
}

func (v verifier) Verify(ctx context.Context, tenantID, clientID string, s secret.Value) error {
	return azure.VerifySecret(ctx, v.ep, tenantID, clientID, s)
}

func (v verifier) VerifyCertificate(ctx context.Context, tenantID, clientID string, c *sink.Certificate) error {
	if c == nil {
		return azure.VerifyCertificate(ctx, v.ep, tenantID, clientID, nil, nil)
	}
	if _, inVault := c.Key.Signer().(rotation.VaultSigner); inVault && len(c.Chain) > 0 {
		// The key is not rotor's to hold (Key Vault's): the assertion is
		// built here and signed by its Signer.
		now := time.Now
		if v.clock != nil {
			now = v.clock.Now
		}
		return azure.VerifyCertificateSigner(ctx, v.ep, tenantID, clientID, c.Chain[0], c.Key.Signer(), now)
	}
	return azure.VerifyCertificate(ctx, v.ep, tenantID, clientID, c.Chain, c.Key.Signer())
}
