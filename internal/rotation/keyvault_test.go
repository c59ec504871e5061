package rotation

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/certgen"
	"github.com/rotor-dev/rotor/internal/domain"
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

func (v *memVaultKeys) CreateKey(context.Context, string, int, bool, map[string]string) (VaultSigner, error) {
	return nil, fmt.Errorf("not used")
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
		p, err := e.vaultProver(b.ctx, b.dir, &memVaultKeys{}, spec, app)
		require.NoError(t, err)
		require.Nil(t, p)
	})
}
