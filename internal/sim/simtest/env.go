package simtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/require"
)

// Env is a simulator as the simulator's own tests (internal/sim and its
// service packages) use it: Sim, plus clients that fail fast. Those tests
// check the simulator's answers themselves, so a refusal or an injected
// fault must show up as the one answer it is, not as whatever is left
// after the SDK's retries, and a hung answer must fail the test after 10 s
// instead of stalling it. Tests of rotor against the simulator, which want
// a client configured as rotor's is, use Sim's own HTTP and ClientOptions.
type Env struct {
	*Sim
	// Client is HTTP with a 10 s timeout: it trusts the simulator's CA and
	// never retries.
	Client *http.Client
	// NoRetry is ClientOptions over Client with the SDK's retries off.
	NoRetry azcore.ClientOptions
}

// StartEnv starts a simulator for t as Start does, with the zero Options
// changed by each tweak in turn.
func StartEnv(t testing.TB, tweaks ...func(*Options)) *Env {
	t.Helper()
	var opts Options
	for _, f := range tweaks {
		f(&opts)
	}
	s := Start(t, opts)
	hc := s.httpWithTimeout()
	client := s.ClientOptions
	client.Transport = hc
	client.Retry = policy.RetryOptions{MaxRetries: -1}
	return &Env{Sim: s, Client: hc, NoRetry: client}
}

// RotationCredential is Sim.RotationCredential over NoRetry: like every
// client an Env makes, it does not retry.
func (e *Env) RotationCredential(t testing.TB, tenant string) azcore.TokenCredential {
	t.Helper()
	tn := e.Tenant(t, tenant)
	cred, err := azidentity.NewClientSecretCredential(tn.ID, tn.Rotation.ClientID, tn.Rotation.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: e.NoRetry, DisableInstanceDiscovery: true})
	require.NoError(t, err)
	return cred
}

// rsaKeys are made once per test binary and only when first asked for:
// generating a 2048-bit key takes a noticeable part of a second.
var rsaKeys = [2]func() *rsa.PrivateKey{sync.OnceValue(newRSAKey), sync.OnceValue(newRSAKey)}

func newRSAKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// RSAKey is the i-th (0 or 1) of two RSA keys shared by a test binary: for
// tests that register a certificate on an app and sign with its key, and
// need a second key only to be a different one.
func RSAKey(i int) *rsa.PrivateKey { return rsaKeys[i]() }

// SelfSignedCert is a self-signed certificate of key for cn, valid from
// notBefore to notAfter, with a serial number from the wall clock.
func SelfSignedCert(t testing.TB, key *rsa.PrivateKey, cn string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert
}
