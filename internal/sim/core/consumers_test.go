package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
)

func TestConsumersMatchIssuedCredentials(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := &Core{clock: clk, world: NewWorld()}
	tn := &Tenant{ID: "t1"}
	app := &Application{ObjectID: "o1", AppID: "a1", Passwords: []*Password{
		{KeyID: "k-live", SecretHash: HashSecret("live-value"), Start: clk.Now().Add(-time.Hour), End: clk.Now().Add(time.Hour)},
		{KeyID: "k-old", SecretHash: HashSecret("old-value"), Start: clk.Now().Add(-2 * time.Hour), End: clk.Now().Add(-time.Minute)},
	}}
	tn.Apps = append(tn.Apps, app)
	c.world.AddTenant(tn)

	c.RecordConsumer("ado", "conn-1", "", "live-value")
	c.RecordConsumer("github", "o/r/SECRET", "", "old-value")
	c.RecordConsumer("vercel", "prj/KEY", "", "typed-by-hand")
	c.RecordSealedConsumer("adogit", "repo/values.yaml", "clientSecret")

	got := c.Consumers()
	require.Len(t, got, 4)
	require.Equal(t, Consumer{Service: "ado", Target: "conn-1", WrittenAt: clk.Now(), TenantID: "t1", AppID: "a1", KeyID: "k-live", Valid: true}, got[0])
	require.Equal(t, "adogit", got[1].Service)
	require.True(t, got[1].Sealed)
	require.Empty(t, got[1].KeyID)
	require.Equal(t, "k-old", got[2].KeyID)
	require.False(t, got[2].Valid, "an expired credential gets no token")
	require.Empty(t, got[3].KeyID, "a value Entra never issued matches no credential")

	c.RecordConsumer("ado", "conn-1", "", "old-value")
	require.Equal(t, "k-old", c.Consumers()[0].KeyID, "the latest write wins")
	c.ForgetConsumer("ado", "conn-1", "")
	require.Len(t, c.Consumers(), 3)
}
