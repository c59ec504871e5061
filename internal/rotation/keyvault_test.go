package rotation

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/certgen"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// memVaultKeys is a vault of RSA key versions held in memory (test only:
// the real one, against the simulator, is internal/server's).
type memVaultKeys struct {
	versions []memKeyVersion // newest first
	signed   int
}

type memKeyVersion struct {
	VaultKeyVersion
	key *rsa.PrivateKey
}

type memVaultSigner struct {
	*rsa.PrivateKey
	kid string
}

func (s memVaultSigner) KID() string                             { return s.kid }
func (s memVaultSigner) WithContext(context.Context) VaultSigner { return s }

var _ Vault = (*memVaultKeys)(nil)

func (v *memVaultKeys) CreateKey(_ context.Context, name string, bits int, _ bool, tags map[string]string) (VaultSigner, error) {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	kid := fmt.Sprintf("https://kv.example/keys/%s/v%d", name, len(v.versions)+1)
	v.versions = append([]memKeyVersion{{VaultKeyVersion{kid, tags, true}, k}}, v.versions...)
	return memVaultSigner{k, kid}, nil
}
func (v *memVaultKeys) CreateCertificate(context.Context, string, VaultCertificateRequest) (*x509.Certificate, VaultSigner, error) {
	return nil, nil, fmt.Errorf("not used")
}
func (v *memVaultKeys) LatestTags(context.Context, string, bool) (map[string]string, bool, error) {
	return nil, false, nil
}
func (v *memVaultKeys) KeyVersions(context.Context, string) ([]VaultKeyVersion, error) {
	out := make([]VaultKeyVersion, len(v.versions))
	for i, kv := range v.versions {
		out[i] = kv.VaultKeyVersion
	}
	return out, nil
}
func (v *memVaultKeys) Signer(_ context.Context, kid string) (VaultSigner, error) {
	v.signed++
	for _, kv := range v.versions {
		if kv.KID == kid {
			return memVaultSigner{kv.key, kid}, nil
		}
	}
	return nil, fmt.Errorf("no key %s", kid)
}

// certReader is a Directory that reads certificates with their data.
type certReader struct {
	Directory
	regs []RegisteredCertificate
}

func (c certReader) Certificates(context.Context, string) ([]RegisteredCertificate, error) {
	return c.regs, nil
}

// TestVaultProverPicksTheCurrentRotorKey: the prover is the newest enabled
// version rotor made for this application whose public key is that of a
// currently valid certificate of the application; versions tagged by
// someone else or for another application, disabled ones and expired
// certificates never prove.
func TestVaultProverPicksTheCurrentRotorKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	app := b.app
	spec := domain.CertificateSpec{KeySource: domain.KeySourceKeyVaultKey, VaultURL: "https://kv.example/"}
	mine := map[string]string{TagManagedBy: ManagedByRotor, TagAppID: app.AppID}
	newKey := func(t *testing.T) *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		return k
	}
	certOver := func(t *testing.T, k *rsa.PrivateKey, from, to time.Time) RegisteredCertificate {
		c, err := certgen.SelfSign(certgen.Request{Subject: pkixName("x"), NotBefore: from, NotAfter: to}, k)
		require.NoError(t, err)
		return RegisteredCertificate{KeyID: c.SerialNumber.String(), Cert: c, Start: from, End: to}
	}
	valid := func(t *testing.T, k *rsa.PrivateKey) RegisteredCertificate {
		return certOver(t, k, t0.Add(-time.Hour), t0.Add(30*24*time.Hour))
	}
	for _, tc := range []struct {
		name string
		// build returns the vault, the application's certificates and the
		// index of the version expected to prove (-1: none).
		build func(t *testing.T) (*memVaultKeys, []RegisteredCertificate, int)
	}{
		{"newest of two registered", func(t *testing.T) (*memVaultKeys, []RegisteredCertificate, int) {
			k1, k2 := newKey(t), newKey(t)
			return &memVaultKeys{versions: []memKeyVersion{{VaultKeyVersion{"v2", mine, true}, k2}, {VaultKeyVersion{"v1", mine, true}, k1}}},
				[]RegisteredCertificate{valid(t, k1), valid(t, k2)}, 0
		}},
		{"a newer version not registered (a crashed run's)", func(t *testing.T) (*memVaultKeys, []RegisteredCertificate, int) {
			k1, k2 := newKey(t), newKey(t)
			return &memVaultKeys{versions: []memKeyVersion{{VaultKeyVersion{"v2", mine, true}, k2}, {VaultKeyVersion{"v1", mine, true}, k1}}},
				[]RegisteredCertificate{valid(t, k1)}, 1
		}},
		{"not rotor's", func(t *testing.T) (*memVaultKeys, []RegisteredCertificate, int) {
			k := newKey(t)
			return &memVaultKeys{versions: []memKeyVersion{{VaultKeyVersion{"v1", map[string]string{"owner": "ops"}, true}, k}}}, []RegisteredCertificate{valid(t, k)}, -1
		}},
		{"another application's", func(t *testing.T) (*memVaultKeys, []RegisteredCertificate, int) {
			k := newKey(t)
			other := map[string]string{TagManagedBy: ManagedByRotor, TagAppID: "someone-else"}
			return &memVaultKeys{versions: []memKeyVersion{{VaultKeyVersion{"v1", other, true}, k}}}, []RegisteredCertificate{valid(t, k)}, -1
		}},
		{"disabled", func(t *testing.T) (*memVaultKeys, []RegisteredCertificate, int) {
			k := newKey(t)
			return &memVaultKeys{versions: []memKeyVersion{{VaultKeyVersion{"v1", mine, false}, k}}}, []RegisteredCertificate{valid(t, k)}, -1
		}},
		{"its certificate expired", func(t *testing.T) (*memVaultKeys, []RegisteredCertificate, int) {
			k := newKey(t)
			return &memVaultKeys{versions: []memKeyVersion{{VaultKeyVersion{"v1", mine, true}, k}}},
				[]RegisteredCertificate{certOver(t, k, t0.Add(-60*24*time.Hour), t0.Add(-time.Hour))}, -1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, regs, want := tc.build(t)
			p, err := e.vaultProver(b.ctx, certReader{Directory: b.dir, regs: regs}, v, spec, app)
			require.NoError(t, err)
			if want < 0 {
				require.Nil(t, p)
				return
			}
			require.NotNil(t, p)
			require.Equal(t, v.versions[want].KID, p.Key.Signer().(VaultSigner).KID())
			require.True(t, v.versions[want].key.PublicKey.Equal(p.Cert.PublicKey))
		})
	}

	t.Run("a directory that cannot read certificates has no prover", func(t *testing.T) {
		t.Parallel()
		k := newKey(t)
		v := &memVaultKeys{versions: []memKeyVersion{{VaultKeyVersion{"v1", mine, true}, k}}}
		p, err := e.vaultProver(b.ctx, struct{ Directory }{b.dir}, v, spec, app)
		require.NoError(t, err)
		require.Nil(t, p)
	})
}

// vaultConns are the test's connections with a vault.
type vaultConns struct {
	*memDirectory
	v *memVaultKeys
}

func (c vaultConns) Vault(domain.OrgID, string, string) (Vault, error) { return c.v, nil }

// Certificates is memDirectory reading its certificates with their
// data, as Graph's $select=keyCredentials does.
func (d *memDirectory) Certificates(_ context.Context, objectID string) ([]RegisteredCertificate, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []RegisteredCertificate
	for _, c := range d.apps[objectID] {
		if c.Kind != domain.KindCertificate || c.der == nil {
			continue
		}
		x, err := x509.ParseCertificate(c.der)
		if err != nil {
			return nil, err
		}
		out = append(out, RegisteredCertificate{KeyID: c.KeyID, Cert: x, Start: c.Start, End: c.End})
	}
	return out, nil
}

// TestVaultKeyCrashRecovery: a run whose key is in Key Vault crashes
// after Entra has the certificate and before any sink; recovery removes
// the certificate from the application (by a keyCredentials update: it
// does not look for the vault's key), the vault keeps the crashed run's
// version (tagged with its run id), the fresh run finds no prover in it
// (its certificate is gone from the application) and registers by
// update, and its retirement proves possession with the fresh run's vault
// key (removeKey). No sink ever holds a private key.
func TestVaultKeyCrashRecovery(t *testing.T) {
	t.Parallel()
	b, _ := certSetup(t, false)
	b.policy.Certificate = domain.CertificateSpec{KeySource: domain.KeySourceKeyVaultKey, VaultURL: "https://kv.example/"}
	require.NoError(t, b.policy.Validate())
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: []domain.Application{b.app}})
	require.NoError(t, err)
	v := &memVaultKeys{}
	var crashed domain.Run
	b.hooks.AfterJournal = func(r domain.Run, st domain.Step) {
		if st.String() == "sink:0:writing" {
			crashed = r
			panic(crash{st.String()})
		}
	}
	e := b.engine(t)
	e.conns = vaultConns{b.dir, v}
	require.True(t, runUntilCrash(func() { _, _ = e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue) }))
	require.Len(t, v.versions, 1)
	require.Equal(t, crashed.ID, v.versions[0].Tags[TagRun])
	b.die(e)
	b.hooks = Hooks{}
	e = b.engine(t)
	e.conns = vaultConns{b.dir, v}
	e.policies = onePolicy{&b.policy}
	abandoned, err := e.Recover(b.ctx, b.org)
	require.NoError(t, err)
	require.Len(t, abandoned, 1)
	require.Equal(t, []string{"patch", "patch"}, b.dir.certOps, "registered, then removed by recovery")

	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue, Replacing(crashed.ID))
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State, run.Error)
	require.Len(t, v.versions, 2, "the crashed run's version stays; the fresh run adds one")
	require.Equal(t, run.ID, v.versions[0].Tags[TagRun])
	b.clock.Advance(b.policy.Overlap + time.Minute)
	require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	require.Equal(t, []string{"patch", "patch", "patch", "removeKey"}, b.dir.certOps, "retirement proves with the fresh run's vault key")
	for _, s := range []string{"kv", "ado"} {
		val, _ := b.vault.get(s, b.app.ObjectID)
		require.True(t, strings.HasPrefix(val.Reveal(), "thumbprint:"), "sink %s got the chain only", s)
	}
}
