package simtest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

func TestAdvanceClockMovesSimulatedTime(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, simtest.Options{Seed: "apps=2,tenants=1"})
	require.FileExists(t, s.File)
	require.NotEmpty(t, s.AdminToken)
	before := s.Now()
	after := s.AdvanceClock(25 * time.Hour)
	require.GreaterOrEqual(t, after.Sub(before), 25*time.Hour)
	require.GreaterOrEqual(t, s.Now().Sub(time.Now()), 24*time.Hour, "the simulator runs a day ahead of the wall clock")
}

// TestRotationWritesAndConsumerReads is the split the seeds promise: the
// rotation identity sets and lists but cannot read a value; the consumer
// reads it.
func TestRotationWritesAndConsumerReads(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, simtest.Options{Seed: "apps=2,tenants=1"})
	tn := s.Tenant(t, "tenant1")
	vault := tn.KeyVaults[0].URL
	rot := s.SecretsClient(t, vault, s.RotationCredential(t, tn.Name))
	consumer := s.SecretsClient(t, vault, s.ConsumerCredential(t, tn.Name))
	ctx := t.Context()

	_, err := rot.SetSecret(ctx, "app-secret", azsecrets.SetSecretParameters{Value: to.Ptr("v1")}, nil)
	require.NoError(t, err)
	_, err = rot.GetSecret(ctx, "app-secret", "", nil)
	var re *azcore.ResponseError
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusForbidden, re.StatusCode)

	got, err := consumer.GetSecret(ctx, "app-secret", "", nil)
	require.NoError(t, err)
	require.Equal(t, "v1", *got.Value)

	_, err = consumer.DeleteSecret(ctx, "app-secret", nil)
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusForbidden, re.StatusCode)
	s.GrantSecrets(t, tn.Name, tn.KeyVaults[0].Name, tn.Consumer.PrincipalID, sim.SecretGet, sim.SecretDelete)
	_, err = consumer.DeleteSecret(ctx, "app-secret", nil)
	require.NoError(t, err)
}

func TestStartEnvClientsFailFast(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t, func(o *simtest.Options) { o.Seed = "apps=2,tenants=1" })
	require.Equal(t, 10*time.Second, e.Client.Timeout)
	require.Same(t, e.Client, e.NoRetry.Transport)
	require.Equal(t, int32(-1), e.NoRetry.Retry.MaxRetries)
	require.Equal(t, e.ClientOptions.Cloud, e.NoRetry.Cloud)
	require.Zero(t, e.ClientOptions.Retry.MaxRetries, "Sim's own options keep the SDK default")
	tok, err := e.RotationCredential(t, "tenant1").GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{e.Info.GraphAudience + "/.default"}})
	require.NoError(t, err)
	require.NotEmpty(t, tok.Token)
}

func TestSelfSignedCertOverSharedKeys(t *testing.T) {
	t.Parallel()
	require.Same(t, simtest.RSAKey(0), simtest.RSAKey(0))
	require.NotEqual(t, simtest.RSAKey(0).N, simtest.RSAKey(1).N)
	nb := time.Now().Add(-time.Hour).Truncate(time.Second)
	c := simtest.SelfSignedCert(t, simtest.RSAKey(1), "cn", nb, nb.Add(2*time.Hour))
	require.Equal(t, "cn", c.Subject.CommonName)
	require.True(t, c.NotBefore.Equal(nb))
	require.True(t, c.NotAfter.Equal(nb.Add(2*time.Hour)))
	require.True(t, simtest.RSAKey(1).PublicKey.Equal(c.PublicKey))
	require.NoError(t, c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature), "self-signed")
}
