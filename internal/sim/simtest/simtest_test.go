package simtest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
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
