package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/store"
)

// keyVaultTTL is how long a secret read from Key Vault is used before it is
// read again. Short, so a secret rotated in the vault is picked up within
// minutes even when Entra has not refused the old one yet; long enough
// that token refreshes across many connections do not hammer the vault.
const keyVaultTTL = 5 * time.Minute

// errNoHostIdentity says why a Key Vault reference cannot be read.
var errNoHostIdentity = errors.New("Key Vault references ({keyvault: …}) are read with rotor's own identity: set host_identity in rotor.yaml (see docs/configuration.md)")

// secrets resolves connections' secret references at use: environment
// variables and files are read each time, Key Vault secrets through the
// host identity with a short cache, and inline values from the memory of
// this process (the configuration it loaded). It is also the Key Vault
// resolver of sinks' own references.
type secrets struct {
	getenv func(string) string
	// vault reads Key Vault as the host identity; nil without one.
	vault config.SecretResolver
	clock clock.Clock
	ttl   time.Duration

	// simFiles are the simulators rotor.yaml's connections and host
	// identity use: the only ones other connections may use.
	simFiles map[string]bool
	// inline holds the values rotor.yaml wrote literally, which the store
	// only marks (store.SecretInline).
	inline map[inlineKey]secret.Value

	mu    sync.Mutex
	cache map[[2]string]cachedSecret
}

type inlineKey struct {
	org  domain.OrgID
	conn string
	// field is "client_secret" or "certificate.password".
	field string
}

type cachedSecret struct {
	v  secret.Value
	at time.Time
}

var _ config.SecretResolver = (*secrets)(nil)

func newSecrets(cfg *config.Config, getenv func(string) string, vault config.SecretResolver, c clock.Clock) *secrets {
	s := &secrets{getenv: getenv, vault: vault, clock: c, ttl: keyVaultTTL,
		inline: map[inlineKey]secret.Value{}, cache: map[[2]string]cachedSecret{}, simFiles: map[string]bool{}}
	if h := cfg.HostIdentity; h != nil && h.SimFile != "" {
		s.simFiles[h.SimFile] = true
	}
	for _, cc := range cfg.Connections {
		if cc.SimFile != "" {
			s.simFiles[cc.SimFile] = true
		}
		if r := cc.ClientSecretRef.StoreRef(); r != nil && r.Kind == store.SecretInline {
			s.inline[inlineKey{cfg.Organization, cc.Name, "client_secret"}] = cc.Identity.ClientSecret
		}
		if r := cc.CertificatePasswordRef.StoreRef(); r != nil && r.Kind == store.SecretInline {
			s.inline[inlineKey{cfg.Organization, cc.Name, "certificate.password"}] = cc.Identity.CertificatePassword
		}
	}
	return s
}

// KeyVaultSecret implements config.SecretResolver with the cache.
func (s *secrets) KeyVaultSecret(ctx context.Context, vaultURL, name string) (secret.Value, error) {
	return s.keyVault(ctx, vaultURL, name, false)
}

func (s *secrets) keyVault(ctx context.Context, vaultURL, name string, fresh bool) (secret.Value, error) {
	if s.vault == nil {
		return secret.Value{}, errNoHostIdentity
	}
	k := [2]string{vaultURL, name}
	now := s.clock.Now()
	if !fresh {
		s.mu.Lock()
		c, ok := s.cache[k]
		s.mu.Unlock()
		if ok && now.Sub(c.at) < s.ttl {
			return c.v, nil
		}
	}
	v, err := s.vault.KeyVaultSecret(ctx, vaultURL, name)
	if err != nil {
		return secret.Value{}, err
	}
	s.mu.Lock()
	s.cache[k] = cachedSecret{v: v, at: now}
	s.mu.Unlock()
	return v, nil
}

// resolve reads the secret ref points to for a connection's field.
func (s *secrets) resolve(ctx context.Context, org domain.OrgID, conn, field string, ref store.SecretRef, fresh bool) (secret.Value, error) {
	switch ref.Kind {
	case store.SecretEnv:
		v := s.getenv(ref.Env)
		if v == "" {
			return secret.Value{}, fmt.Errorf("%s is not set or is empty", ref)
		}
		return secret.New(v), nil
	case store.SecretFile:
		b, err := os.ReadFile(ref.File)
		if err != nil {
			return secret.Value{}, fmt.Errorf("read %s: %w", ref, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return secret.Value{}, fmt.Errorf("%s is empty", ref)
		}
		return secret.New(v), nil
	case store.SecretKeyVault:
		v, err := s.keyVault(ctx, ref.VaultURL, ref.Secret, fresh)
		if err != nil {
			return secret.Value{}, fmt.Errorf("%s: %w", ref, err)
		}
		return v, nil
	case store.SecretInline:
		v, ok := s.inline[inlineKey{org, conn, field}]
		if !ok || v.IsZero() {
			return secret.Value{}, fmt.Errorf("the %s is %s, which this process did not load: give it as {env: …}, {file: …} or {keyvault: …}", field, ref)
		}
		return v, nil
	}
	return secret.Value{}, fmt.Errorf("secret reference of kind %q is not known", ref.Kind)
}

// source is the azure.SecretSource of a connection's client secret.
func (s *secrets) source(org domain.OrgID, conn string, ref store.SecretRef) azure.SecretSource {
	return func(ctx context.Context, fresh bool) (secret.Value, error) {
		return s.resolve(ctx, org, conn, "client_secret", ref, fresh)
	}
}

// fromOutside refuses what only the operator's own rotor.yaml may ask of
// rotor: reading its environment, its files, or any Key Vault secret with
// its host identity. A connection made in the UI or the API belongs to an
// organization's admins, who must not be able to send rotor's own secrets
// (ROTOR_HOST_IDENTITY_CLIENT_SECRET, a mounted token) to a tenant of
// their choosing, nor have the host identity read another organization's
// secret from a vault it can read (a confused deputy). Until an
// organization names a vault of its own that rotor may read for it, such
// connections cannot hold a secret at all.
//
// Nor may they act as rotor's host (a managed identity is the host's), or
// point rotor at a simulator other than one rotor.yaml uses (the
// simulator's file names the endpoints and the CA rotor would trust).
func (s *secrets) fromOutside(c store.Connection) error {
	if c.Provisioned {
		return nil
	}
	if c.Identity.Method == string(azure.ManagedIdentity) {
		return fmt.Errorf("connection %q: a managed identity is rotor's host's own; only rotor.yaml may give it to a connection", c.Name)
	}
	if c.Identity.Method == string(azure.WorkloadIdentity) {
		// The federated token is rotor's host's own (its service account):
		// any application that trusts it could be signed in as by every
		// organization otherwise.
		return fmt.Errorf("connection %q: workload identity federation signs in with rotor's host token; only rotor.yaml may give it to a connection", c.Name)
	}
	if c.Cloud == string(azure.Sim) && !s.simFiles[c.SimFile] {
		return fmt.Errorf("connection %q: sim_file %s is not a simulator rotor.yaml uses", c.Name, c.SimFile)
	}
	for field, r := range map[string]*store.SecretRef{"client_secret": c.Identity.ClientSecret, "certificate.password": c.Identity.CertificatePassword} {
		if r == nil {
			continue
		}
		if r.Kind == store.SecretKeyVault {
			return fmt.Errorf("connection %q: %s is a Key Vault secret, but rotor reads Key Vault with its host identity only for connections provisioned by rotor.yaml (another organization's secret may sit in a vault the host can read); provision the connection in rotor.yaml", c.Name, field)
		}
		return fmt.Errorf("connection %q: %s is %s, but only connections provisioned by rotor.yaml may read rotor's environment or files", c.Name, field, r)
	}
	if c.Identity.CertificateFile != "" || c.Identity.FederatedTokenFile != "" {
		return fmt.Errorf("connection %q: only connections provisioned by rotor.yaml may use files of rotor's host (certificate or token files)", c.Name)
	}
	return nil
}

// connSpec turns a stored connection into what NewConns builds, checking
// at once that its secrets can be read (start-up resolution); the client
// secret is read again at every token request.
func (s *secrets) connSpec(ctx context.Context, c store.Connection) (ConnSpec, error) {
	cloud, err := azure.ParseCloud(c.Cloud)
	if err != nil {
		return ConnSpec{}, fmt.Errorf("connection %q: %w", c.Name, err)
	}
	id := c.Identity
	ac := azure.Connection{
		Name: c.Name, TenantID: c.TenantID, Cloud: cloud, SimFile: c.SimFile, AuxiliaryTenants: c.AuxiliaryTenants,
		Identity: azure.Identity{
			Method: azure.AuthMethod(id.Method), ClientID: id.ClientID, CertificatePath: id.CertificateFile,
			SendCertificateChain: id.SendCertificateChain, ManagedIdentityClientID: id.ManagedIdentityClientID,
			FederatedTokenFile: id.FederatedTokenFile,
		},
	}
	spec := ConnSpec{Org: c.Org, Purpose: c.Purpose, Conn: ac}
	if err := s.fromOutside(c); err != nil {
		return ConnSpec{}, err
	}
	if id.ClientSecret != nil {
		src := s.source(c.Org, c.Name, *id.ClientSecret)
		v, err := src(ctx, false)
		if err != nil {
			return ConnSpec{}, fmt.Errorf("connection %q: client_secret: %w", c.Name, err)
		}
		// The value read now serves until the first token request, which
		// asks the source again.
		spec.Conn.Identity.ClientSecret = v
		spec.Secret = src
	}
	if id.CertificatePassword != nil {
		v, err := s.resolve(ctx, c.Org, c.Name, "certificate.password", *id.CertificatePassword, false)
		if err != nil {
			return ConnSpec{}, fmt.Errorf("connection %q: certificate.password: %w", c.Name, err)
		}
		spec.Conn.Identity.CertificatePassword = v
	}
	return spec, nil
}
