// Package keyvault is the "keyvault" sink: it writes a rotated client secret
// into an Azure Key Vault secret through Microsoft's azsecrets client, and
// only ever overwrites a secret rotor owns (tag managed-by=rotor) unless the
// spec says adopt: true. A certificate credential goes into the secret as
// Key Vault stores its own certificates' secrets (PEM by default, PKCS#12
// with certificate_format: pkcs12), or, with as: certificate, is imported
// as a Key Vault certificate through azcertificates (certificate.go;
// docs/sinks/keyvault.md).
//
// A spec looks like:
//
//	sinks:
//	  - type: keyvault
//	    vault_url: https://payroll-kv.vault.azure.net/
//	    secret: "{{ .App.DisplayName | slug }}-client-secret"
//	    adopt: false               # take over an existing secret rotor did not write
//	    content_type: text/plain   # the default
//	    connection: kv-writer      # default: the policy's connection
//
// Each delivery writes a new version whose tags say which credential it
// holds (rotor-key-id), so a retried delivery of the same credential is a
// no-op, and whose expiry is the credential's own end.
//
// The sink never reads a secret value: it learns what the secret holds from
// the versions' properties (list), and the only value it handles is the one
// it is delivering. Its identity needs secrets list, set and recover, never
// get.
//
// A soft-deleted secret keeps its name: Key Vault refuses a new version
// (409 Conflict) until it is recovered or purged. The sink finds it in the
// vault's deleted-secret list (list permission; reading the one deleted
// secret would need get) and treats it by its latest version's tags, which
// Key Vault keeps: rotor's own for this application is recovered by
// Deliver, right before the new version is written; anything else is
// refused, and Validate says so before anything is created in Entra.
//
// A sink's target id is keyvault:https://<vault host>/secrets/<name>, in
// lower case (TargetFor). Built for a pinned target, the sink writes there
// whatever the template renders today, so renaming an application does not
// move its secret; Builder.Resolve tells what the template renders now.
//
// Validate is ready for an absent secret or rotor's own, soft-deleted or
// not (list works; set and recover cannot be proven without writing),
// failed for a foreign or disabled one, soft-deleted or not, or a refused
// identity, and unknown when the vault or Entra cannot be asked. Every
// error is a sink.Classified.
package keyvault

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Type is the spec type this package builds.
const Type = "keyvault"

// Tags rotor puts on every secret version it writes. TagManagedBy with
// value ManagedByRotor is the ownership mark the sink checks before
// overwriting; the rotor-* tags say which credential the version holds.
const (
	TagManagedBy   = "managed-by"
	ManagedByRotor = "rotor"
	TagAppID       = "rotor-app-id"
	TagObjectID    = "rotor-object-id"
	TagKeyID       = "rotor-key-id"
	TagRunID       = "rotor-run-id"
	TagTenantID    = "rotor-tenant-id"
)

// maxTags is Key Vault's limit on tags per secret.
const maxTags = 15

// SecretsAPI is the part of *azsecrets.Client the sink uses. It is the
// SDK's own signature so production passes the real client unchanged.
// There is deliberately no GetSecret: the sink reads versions' properties
// (never a value) and writes new versions. Nor is there GetDeletedSecret:
// Key Vault wants the get permission for it, so a soft-deleted secret is
// found in the deleted list, which list allows.
type SecretsAPI interface {
	NewListSecretPropertiesVersionsPager(name string, options *azsecrets.ListSecretPropertiesVersionsOptions) *runtime.Pager[azsecrets.ListSecretPropertiesVersionsResponse]
	SetSecret(ctx context.Context, name string, parameters azsecrets.SetSecretParameters, options *azsecrets.SetSecretOptions) (azsecrets.SetSecretResponse, error)
	NewListDeletedSecretPropertiesPager(options *azsecrets.ListDeletedSecretPropertiesOptions) *runtime.Pager[azsecrets.ListDeletedSecretPropertiesResponse]
	RecoverDeletedSecret(ctx context.Context, name string, options *azsecrets.RecoverDeletedSecretOptions) (azsecrets.RecoverDeletedSecretResponse, error)
}

var _ SecretsAPI = (*azsecrets.Client)(nil)

// Kind is the "keyvault" sink kind: it checks specs and makes the Builder.
type Kind struct{}

var (
	_ sink.Kind          = Kind{}
	_ sink.Builder       = (*Builder)(nil)
	_ sink.Sink          = (*Sink)(nil)
	_ sink.Validator     = (*Sink)(nil)
	_ sink.Holder        = (*Sink)(nil)
	_ sink.VersionReader = (*Sink)(nil)
)

// Type returns "keyvault".
func (Kind) Type() string { return Type }

// CheckSpec validates the settings without I/O: unknown and missing keys,
// the vault URL, and the secret template (its syntax, its fields, and
// that it renders a valid name for a sample application). All problems
// are reported at once; each *SpecError names its key.
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

var _ sink.SharedTargets = Kind{}

// SharesTarget implements sink.SharedTargets: the secret name rendered for
// two applications that share nothing is the same (the template names no
// property of the application).
func (Kind) SharesTarget(spec domain.SinkSpec) bool {
	st, err := parseSpec(spec)
	if err != nil {
		return false
	}
	a, errA := st.resolve(domain.Application{TenantID: "aaaaaaaa-0000-4000-8000-000000000001", ObjectID: "aaaaaaaa-0000-4000-8000-000000000002",
		AppID: "aaaaaaaa-0000-4000-8000-000000000003", DisplayName: "first-app"})
	b, errB := st.resolve(domain.Application{TenantID: "bbbbbbbb-0000-4000-8000-000000000001", ObjectID: "bbbbbbbb-0000-4000-8000-000000000002",
		AppID: "bbbbbbbb-0000-4000-8000-000000000003", DisplayName: "second-app"})
	return errA == nil && errB == nil && a == b
}

// NewBuilder returns the builder. Key Vault sinks need deps.Credentials
// (the vault is written as a connection's identity); the logger is
// optional.
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	if deps.Credentials == nil {
		return nil, errors.New("keyvault sink needs token credentials")
	}
	creds := deps.Credentials
	b := newBuilder(deps.Logger, func(org domain.OrgID, connection, vaultURL string) (SecretsAPI, error) {
		id, err := creds.TokenCredential(org, connection)
		if err != nil {
			return nil, err
		}
		return azsecrets.NewClient(vaultURL, id.Credential, &azsecrets.ClientOptions{
			ClientOptions: id.ClientOptions,
			// The simulator's vaults live on loopback ports, not under
			// vault.azure.net, so the challenge's resource cannot match.
			DisableChallengeResourceVerification: id.Simulator,
		})
	})
	b.newCerts = func(org domain.OrgID, connection, vaultURL string) (CertificatesAPI, error) {
		id, err := creds.TokenCredential(org, connection)
		if err != nil {
			return nil, err
		}
		return azcertificates.NewClient(vaultURL, id.Credential, &azcertificates.ClientOptions{
			ClientOptions: id.ClientOptions, DisableChallengeResourceVerification: id.Simulator,
		})
	}
	return b, nil
}

func newBuilder(log *slog.Logger, newClient func(org domain.OrgID, connection, vaultURL string) (SecretsAPI, error)) *Builder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Builder{log: log, newClient: newClient, clients: map[[3]string]SecretsAPI{}, certClients: map[[3]string]CertificatesAPI{}}
}

// Builder builds Key Vault sinks. It keeps one azsecrets client per
// (organization, connection, vault): a client remembers the vault's authentication
// challenge, so reusing it saves a 401 round trip on every rotation.
type Builder struct {
	log *slog.Logger
	// newClient makes the client of a vault acting as a connection; tests
	// replace it with an in-memory vault.
	newClient func(org domain.OrgID, connection, vaultURL string) (SecretsAPI, error)

	// newCerts makes the certificates client of as: certificate sinks;
	// nil in tests that use only secrets.
	newCerts func(org domain.OrgID, connection, vaultURL string) (CertificatesAPI, error)

	mu          sync.Mutex
	clients     map[[3]string]SecretsAPI
	certClients map[[3]string]CertificatesAPI
}

func (b *Builder) certClient(org domain.OrgID, connection, vaultURL string) (CertificatesAPI, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := [3]string{string(org), connection, vaultURL}
	if c, ok := b.certClients[k]; ok {
		return c, nil
	}
	if b.newCerts == nil {
		return nil, errors.New("this builder has no certificates client")
	}
	c, err := b.newCerts(org, connection, vaultURL)
	if err != nil {
		return nil, err
	}
	b.certClients[k] = c
	return c, nil
}

// Resolve renders the spec's secret name for req.App and returns its
// target, ignoring req.Pinned.
func (b *Builder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return sink.TargetID{}, err
	}
	return st.resolve(req.App)
}

// resolve renders the secret name for app.
func (st settings) resolve(app domain.Application) (sink.TargetID, error) {
	name, err := render(st.nameTmpl, TemplateData{App: app, TenantID: app.TenantID, ClientID: app.AppID})
	if err != nil {
		return sink.TargetID{}, &SpecError{Key: st.nameKey(), Msg: fmt.Sprintf("template %q for application %q: %v", st.nameSrc, app.DisplayName, err)}
	}
	if !secretNamePattern.MatchString(name) {
		return sink.TargetID{}, &SpecError{Key: st.nameKey(), Msg: nameProblem(name, st.nameSrc, app)}
	}
	if st.as == AsCertificate {
		return CertificateTargetFor(st.vaultURL, name)
	}
	return TargetFor(st.vaultURL, name)
}

// nameKey is the setting that names the target.
func (st settings) nameKey() string {
	if st.as == AsCertificate {
		return KeyCertificate
	}
	return KeySecret
}

// Build returns the sink of req.App: on the pinned target when there is
// one (the secret keeps its name when the application is renamed), else
// on the rendered name; with the client of the sink's connection (the
// spec's connection, else the policy's).
func (b *Builder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	target := req.Pinned
	if target.IsZero() {
		if target, err = st.resolve(req.App); err != nil {
			return nil, err
		}
	}
	vaultURL, collection, name, err := ParseObjectTarget(target)
	if err != nil {
		return nil, err
	}
	if want := st.collection(); collection != want {
		return nil, &SpecError{Key: KeyAs, Msg: fmt.Sprintf("the sink writes %s but its pinned target %s is in %s; "+
			"changing %s moves the target, which must be done explicitly", want, target, collection, KeyAs)}
	}
	connection := cmp.Or(st.connection, req.Connection)
	if connection == "" {
		return nil, &SpecError{Key: KeyConnection, Msg: "no connection: set connection on the sink or on its policy"}
	}
	c, err := b.client(req.App.Org, connection, vaultURL)
	if err != nil {
		return nil, fmt.Errorf("keyvault sink: client for %s (connection %q): %w", vaultURL, connection, err)
	}
	out := &Sink{
		client:         c,
		target:         target,
		vaultURL:       vaultURL,
		name:           name,
		adopt:          st.adopt,
		contentType:    st.contentType,
		contentTypeSet: st.contentTypeSet,
		as:             st.as,
		format:         st.format,
		connection:     connection,
		app:            req.App,
	}
	if st.as == AsCertificate {
		if out.certs, err = b.certClient(req.App.Org, connection, vaultURL); err != nil {
			return nil, fmt.Errorf("keyvault sink: certificates client for %s (connection %q): %w", vaultURL, connection, err)
		}
	}
	return out, nil
}

// collection is the path segment of the sink's targets.
func (st settings) collection() string {
	if st.as == AsCertificate {
		return "certificates"
	}
	return "secrets"
}

func (b *Builder) client(org domain.OrgID, connection, vaultURL string) (SecretsAPI, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := [3]string{string(org), connection, vaultURL}
	if c, ok := b.clients[k]; ok {
		return c, nil
	}
	c, err := b.newClient(org, connection, vaultURL)
	if err != nil {
		return nil, err
	}
	b.clients[k] = c
	b.log.Debug("key vault client created", "connection", connection, "vault", vaultURL)
	return c, nil
}

// TargetFor is the target id of secret name in the vault at vaultURL
// ("https://host[:port]/"): "keyvault:https://host/secrets/name", with the
// host and the name in lower case, since Key Vault compares both without
// regard to case.
func TargetFor(vaultURL, name string) (sink.TargetID, error) {
	u, err := checkVaultURL(vaultURL)
	if err != nil {
		return sink.TargetID{}, &SpecError{Key: KeyVaultURL, Msg: err.Error()}
	}
	if !secretNamePattern.MatchString(name) {
		return sink.TargetID{}, &SpecError{Key: KeySecret, Msg: fmt.Sprintf("%q is not a Key Vault secret name (1-127 characters of 0-9, a-z, A-Z and '-')", name)}
	}
	return sink.NewTargetID(Type, strings.ToLower(u)+"secrets/"+strings.ToLower(name))
}

// CertificateTargetFor is the target id of certificate name in the vault
// at vaultURL: "keyvault:https://host/certificates/name", in lower case.
func CertificateTargetFor(vaultURL, name string) (sink.TargetID, error) {
	u, err := checkVaultURL(vaultURL)
	if err != nil {
		return sink.TargetID{}, &SpecError{Key: KeyVaultURL, Msg: err.Error()}
	}
	if !secretNamePattern.MatchString(name) {
		return sink.TargetID{}, &SpecError{Key: KeyCertificate, Msg: fmt.Sprintf("%q is not a Key Vault certificate name (1-127 characters of 0-9, a-z, A-Z and '-')", name)}
	}
	return sink.NewTargetID(Type, strings.ToLower(u)+"certificates/"+strings.ToLower(name))
}

// ParseTarget returns the vault URL (with a trailing slash) and the secret
// or certificate name of a Key Vault target.
func ParseTarget(t sink.TargetID) (vaultURL, name string, err error) {
	vaultURL, _, name, err = ParseObjectTarget(t)
	return vaultURL, name, err
}

// ParseObjectTarget returns the vault URL, the collection ("secrets" or
// "certificates") and the name of a Key Vault target.
func ParseObjectTarget(t sink.TargetID) (vaultURL, collection, name string, err error) {
	const want = "want keyvault:https://<vault host>/secrets/<name> or …/certificates/<name>"
	if t.Kind() != Type {
		return "", "", "", fmt.Errorf("%w: %q is not a %s target", sink.ErrBadTargetID, t.String(), Type)
	}
	for _, coll := range []string{"secrets", "certificates"} {
		base, name, ok := strings.Cut(t.Ref(), "/"+coll+"/")
		if !ok || strings.Contains(name, "/") {
			continue
		}
		canonFor := TargetFor
		if coll == "certificates" {
			canonFor = CertificateTargetFor
		}
		canon, err := canonFor(base+"/", name)
		if err != nil || canon != t {
			return "", "", "", fmt.Errorf("%w: %q: %s, in lower case", sink.ErrBadTargetID, t.String(), want)
		}
		return base + "/", coll, name, nil
	}
	return "", "", "", fmt.Errorf("%w: %q: %s", sink.ErrBadTargetID, t.String(), want)
}

// Sink writes one application's client secret to one Key Vault secret.
type Sink struct {
	client      SecretsAPI
	target      sink.TargetID
	vaultURL    string
	name        string
	adopt       bool
	contentType string
	connection  string
	app         domain.Application
	// contentTypeSet, as and format: see settings. certs is the
	// certificates client of an as: certificate sink.
	contentTypeSet bool
	as, format     string
	certs          CertificatesAPI

	// recovered is the note of a recovery made by a delivery that then
	// failed (Key Vault still restoring, say), for the retry of the same
	// delivery to report: that retry finds the secret live, and the
	// journal must still hear that rotor recovered it.
	mu        sync.Mutex
	recovered struct{ keyID, note string }
}

// Target is the secret's target id.
func (s *Sink) Target() sink.TargetID { return s.target }

// Describe names the target, e.g. `Key Vault secret "payroll-secret" in https://kv.vault.azure.net/`.
func (s *Sink) Describe() string {
	return fmt.Sprintf("Key Vault %s %q in %s", s.object(), s.name, s.vaultURL)
}

// object is what the sink writes: "secret" or "certificate".
func (s *Sink) object() string {
	if s.as == AsCertificate {
		return AsCertificate
	}
	return AsSecret
}

// VaultURL is the vault the sink writes to.
func (s *Sink) VaultURL() string { return s.vaultURL }

// SecretName is the rendered secret name.
func (s *Sink) SecretName() string { return s.name }

// current is what the sink knows about the secret's latest version. The
// value is never kept.
type current struct {
	exists  bool
	id      string
	enabled bool
	tags    map[string]string
	// everKeyIDs are the rotor-key-id tags of every version (lower case).
	everKeyIDs map[string]bool
	// thumbprint is the latest certificate version's hex SHA-1 (as:
	// certificate only).
	thumbprint string
}

// get reads the latest version's id, attributes and tags from the secret's
// version list, which carries properties only, never a value. A missing
// secret (404, or no versions) is not an error.
func (s *Sink) get(ctx context.Context) (current, error) {
	return latestOf(ctx, s, s.client.NewListSecretPropertiesVersionsPager(s.name, nil),
		func(r azsecrets.ListSecretPropertiesVersionsResponse) []*azsecrets.SecretProperties { return r.Value },
		secretVersion)
}

// secretVersion is p as a version.
func secretVersion(p *azsecrets.SecretProperties) version {
	v := version{id: derefID(p.ID), enabled: true, tags: strs(p.Tags)}
	if a := p.Attributes; a != nil {
		v.created, v.updated, v.enabled = derefTime(a.Created), derefTime(a.Updated), derefBool(a.Enabled, true)
	}
	return v
}

// owned checks that rotor may write over c: nil, or a *NotOwnedError.
func (s *Sink) owned(c current) error {
	if !c.exists {
		return nil
	}
	if c.tags[TagManagedBy] != ManagedByRotor {
		if s.adopt {
			return nil
		}
		return &NotOwnedError{Vault: s.vaultURL, Secret: s.name, Object: s.objectTag(), AppID: s.app.AppID}
	}
	// Rotor's, but perhaps another application's: display names are not
	// unique, so two apps can render the same name. adopt does not override
	// this, or the two would overwrite each other on every rotation.
	if owner := c.tags[TagAppID]; owner != "" && !strings.EqualFold(owner, s.app.AppID) {
		return &NotOwnedError{Vault: s.vaultURL, Secret: s.name, Object: s.objectTag(), OwnerAppID: owner, AppID: s.app.AppID}
	}
	return nil
}

// writable checks that rotor may add a version to c: nil, a
// *NotOwnedError, or a *DisabledError when the latest version is disabled
// (someone turned it off; writing a new enabled version would undo that, so
// a person decides).
func (s *Sink) writable(c current) error {
	if err := s.owned(c); err != nil {
		return err
	}
	if c.exists && !c.enabled {
		return &DisabledError{Vault: s.vaultURL, Secret: s.name, Object: s.objectTag(), ID: c.id}
	}
	return nil
}

// Deliver writes d's secret as a new version of the secret, unless the
// latest version already holds d's credential (same rotor-key-id), in which
// case it changes nothing. It never overwrites a secret rotor does not own
// (see NotOwnedError) nor one whose latest version is disabled (see
// DisabledError). It reads the secret's version properties, never a value.
//
// A secret that is soft-deleted is recovered first when it is rotor's own
// for this application (Result.Note says so), and refused otherwise (see
// DeletedError). The rotation journals the write before Deliver runs, so a
// crash between the recovery and the new version leaves a journal naming
// the target and a recovered secret that does not hold d's credential:
// Holds says so, and the crashed run's credential is removed at once.
//
// Errors carry the vault and secret name and never the value; each says
// whether it is permanent (sink.Classified).
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	if s.as == AsCertificate {
		return s.deliverCertificate(ctx, d)
	}
	switch {
	case d.Material.Certificate != nil:
		if err := checkCertificate(d.Material.Certificate); err != nil {
			return sink.Result{}, sink.Permanent(fmt.Errorf("keyvault sink %s: delivery of key %s: %w", s.Describe(), d.KeyID, err))
		}
	case d.Material.Secret.IsZero():
		return sink.Result{}, sink.Permanent(fmt.Errorf("keyvault sink %s: delivery of key %s has no value", s.Describe(), d.KeyID))
	case d.KeyID == "":
		return sink.Result{}, sink.Permanent(fmt.Errorf("keyvault sink %s: delivery has no key id", s.Describe()))
	case !strings.EqualFold(d.App.AppID, s.app.AppID):
		return sink.Result{}, sink.Permanent(fmt.Errorf("keyvault sink %s: built for application %s, asked to deliver for %s", s.Describe(), s.app.AppID, d.App.AppID))
	}

	cur, note, err := s.prepare(ctx, d.KeyID)
	if err != nil {
		return sink.Result{}, err
	}
	fail := func(err error) (sink.Result, error) {
		s.rememberRecovery(d.KeyID, note)
		return sink.Result{}, err
	}
	if cur.exists && cur.enabled && cur.tags[TagManagedBy] == ManagedByRotor &&
		cur.tags[TagKeyID] == d.KeyID && strings.EqualFold(cur.tags[TagAppID], d.App.AppID) {
		s.rememberRecovery("", "")
		if note != "" {
			// The recovery was the change: consumers can read the
			// credential again.
			return sink.Result{Changed: true, Location: cur.id, Note: note + "; its latest version already held this credential", Version: cur.id}, nil
		}
		return sink.Result{Changed: false, Location: cur.id, Version: cur.id}, nil
	}

	attrs := &azsecrets.SecretAttributes{Enabled: to.Ptr(true)}
	if !d.End.IsZero() {
		attrs.Expires = to.Ptr(d.End.UTC())
	}
	value, contentType, err := s.secretValue(d.Material)
	if err != nil {
		return fail(sink.Permanent(fmt.Errorf("keyvault sink %s: delivery of key %s: %w", s.Describe(), d.KeyID, err)))
	}
	resp, err := s.client.SetSecret(ctx, s.name, azsecrets.SetSecretParameters{
		Value:            &value,
		ContentType:      to.Ptr(contentType),
		SecretAttributes: attrs,
		Tags:             tagsFor(d, cur.tags),
	}, nil)
	if err != nil {
		err = s.classify("set", err, value)
		var re *RequestError
		if note != "" && errors.As(err, &re) && re.StatusCode == http.StatusConflict {
			// Key Vault recovers in the background; until it is done the
			// name still conflicts. The rotation retries (409 is not
			// permanent), and the next attempt finds the secret live.
			re.Hint = "the secret was just recovered from soft delete and Key Vault is still restoring it; the write may pass shortly"
		}
		return fail(err)
	}
	s.rememberRecovery("", "")
	res := sink.Result{Changed: true, Note: note}
	if resp.ID != nil {
		res.Location = string(*resp.ID)
		res.Version = res.Location
	}
	return res, nil
}

// Version is the id of the secret's latest version (its URL with the
// version), read from the version list, which carries no value; "" when
// the secret does not exist (a soft-deleted one included). A new version
// written by anyone but rotor shows as drift.
func (s *Sink) Version(ctx context.Context) (string, error) {
	cur, err := s.latest(ctx)
	if err != nil {
		return "", err
	}
	return cur.id, nil
}

// latest is get or, for as: certificate, getCert.
func (s *Sink) latest(ctx context.Context) (current, error) {
	if s.as == AsCertificate {
		return s.getCert(ctx)
	}
	return s.get(ctx)
}

// deleted is findDeleted or, for as: certificate, findDeletedCert.
func (s *Sink) deleted(ctx context.Context) (deletedSecret, error) {
	if s.as == AsCertificate {
		return s.findDeletedCert(ctx)
	}
	return s.findDeleted(ctx)
}

// prepare is Deliver's first step for either object: what the target's
// latest version holds, after recovering rotor's own soft-deleted object
// (recoverOwn, recoverOwnCert), and the note the journal should hear beside
// the write: that a soft-deleted object was recovered first, by this call
// or by an earlier attempt at delivering keyID. It fails when rotor may
// not write (writable), remembering the note for the retry.
func (s *Sink) prepare(ctx context.Context, keyID string) (current, string, error) {
	cur, err := s.latest(ctx)
	if err != nil {
		return current{}, "", err
	}
	var note string
	if !cur.exists {
		recoverOwn := s.recoverOwn
		if s.as == AsCertificate {
			recoverOwn = s.recoverOwnCert
		}
		if cur, note, err = recoverOwn(ctx); err != nil {
			return current{}, "", err
		}
	}
	note = s.recoveryNote(keyID, note)
	if err := s.writable(cur); err != nil {
		s.rememberRecovery(keyID, note)
		return current{}, "", err
	}
	return cur, note, nil
}

// recoveryNote is note, or else the note of a recovery an earlier failed
// attempt at delivering keyID made.
func (s *Sink) recoveryNote(keyID, note string) string {
	if note != "" {
		return note
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recovered.keyID == keyID {
		return s.recovered.note
	}
	return ""
}

// rememberRecovery keeps note for a retry of the delivery of keyID; an
// empty note forgets it.
func (s *Sink) rememberRecovery(keyID, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if note == "" {
		keyID = ""
	}
	s.recovered.keyID, s.recovered.note = keyID, note
}

// tagsFor returns the tags of the new version: rotor's own, plus the tags
// someone else put on the previous version (Key Vault keeps tags per
// version, so not carrying them over would silently drop them), up to Key
// Vault's limit of 15 in name order.
func tagsFor(d sink.Delivery, previous map[string]string) map[string]*string {
	out := map[string]*string{
		TagManagedBy: to.Ptr(ManagedByRotor),
		TagAppID:     to.Ptr(d.App.AppID),
		TagObjectID:  to.Ptr(d.App.ObjectID),
		TagKeyID:     to.Ptr(d.KeyID),
		TagRunID:     to.Ptr(d.RunID),
		TagTenantID:  to.Ptr(cmp.Or(d.TenantID, d.App.TenantID)),
	}
	for _, k := range slices.Sorted(maps.Keys(previous)) {
		if len(out) >= maxTags {
			break
		}
		if k == TagManagedBy || strings.HasPrefix(k, "rotor-") {
			continue
		}
		out[k] = to.Ptr(previous[k])
	}
	return out
}

// Validate checks that the vault answers with the sink's identity and that
// the secret is absent, or rotor's for this application (or adopted) with
// an enabled latest version. An absent secret may be soft-deleted, holding
// the name: then it must be rotor's for this application with an enabled
// latest version (Deliver recovers it), or the answer is failed with a
// *DeletedError that names the fix. It reads no value and writes nothing.
//
// Ready means as far as can be told: Key Vault has no "may I set?" query,
// so Validate proves list permission (which Deliver also needs) and
// ownership, not set or recover permission. Failed is a foreign or
// disabled secret, soft-deleted or not, or a denied identity; unknown is a
// vault (or Entra) that could not be asked. An as: certificate sink is
// checked the same way on its certificate's versions (certificates list).
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	cert := s.as == AsCertificate
	cur, err := s.latest(ctx)
	if err != nil {
		return sink.FromError(err, "")
	}
	if err := s.writable(cur); err != nil {
		return sink.Failed("", err)
	}
	if !cur.exists {
		d, err := s.deleted(ctx)
		if err != nil {
			return sink.FromError(err, "")
		}
		if d.found {
			if err := s.recoverable(d); err != nil {
				return sink.Failed("", err)
			}
			if cert {
				return sink.Ready(fmt.Sprintf("%s is soft-deleted and is rotor's; rotor recovers it and then imports the new certificate, "+
					"which needs the certificates recover permission besides get, list and import", s.Describe()))
			}
			return sink.Ready(fmt.Sprintf("%s is soft-deleted and is rotor's (its latest version holds credential %s); "+
				"rotor recovers it and then writes the new version, which needs the recover permission besides list and set",
				s.Describe(), cmp.Or(d.tags[TagKeyID], "(none)")))
		}
	}
	switch {
	case !cur.exists && cert:
		return sink.Ready(fmt.Sprintf("%s does not exist yet; rotor will import it (listing works; the permission to import shows at the first write)", s.Describe()))
	case !cur.exists:
		return sink.Ready(fmt.Sprintf("%s does not exist yet; rotor will create it (listing works; the permission to set secrets shows at the first write)", s.Describe()))
	case cur.tags[TagManagedBy] != ManagedByRotor:
		return sink.Ready(fmt.Sprintf("%s is not managed by rotor; adopt is on, so rotor takes it over at the next rotation", s.Describe()))
	}
	held := "its latest version holds credential " + cmp.Or(cur.tags[TagKeyID], "(none)")
	if cert {
		held += fmt.Sprintf(" (thumbprint %s)", cmp.Or(cur.thumbprint, "(none)"))
	}
	return sink.Ready(fmt.Sprintf("%s is managed by rotor; %s", s.Describe(), held))
}

// Holds reports whether any version of the secret carries the credential
// keyID (its rotor-key-id tag), enabled or not: a disabled version may
// still have reached consumers before it was disabled. It reads the
// versions' properties, never a value. Recovery asks this of a crashed
// run's sinks:
// a credential no sink holds never reached a consumer and can be removed at
// once instead of living through the overlap.
//
// A soft-deleted secret held what its latest version holds (the deleted
// list shows no older ones): consumers may have read it before the
// deletion, and recovering it brings it back. The same holds for an
// as: certificate sink's certificate versions.
func (s *Sink) Holds(ctx context.Context, keyID string) (bool, error) {
	cur, err := s.latest(ctx)
	if err != nil {
		return false, err
	}
	if !cur.exists {
		d, err := s.deleted(ctx)
		if err != nil {
			return false, err
		}
		return d.found && strings.EqualFold(d.tags[TagKeyID], keyID), nil
	}
	// Any version, not only the latest: a version that ever carried the
	// credential means a consumer may have read it. This also stays right
	// when two versions share a creation second and "latest" is a guess.
	return cur.everKeyIDs[strings.ToLower(keyID)], nil
}
