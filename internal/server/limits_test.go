package server

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// TestRotationWithinEntrasLimits runs the real engine, Graph client and
// Key Vault sink against a simulator that answers as Entra does when
// pushed: applications that admit personal Microsoft accounts hold at
// most two secrets, and a write to an application right after another
// write to it is refused with 409 Directory_ConcurrencyViolation.
//
//   - An application holding its working foreign secret and an expired
//     rotor one: the rotation removes the expired one first (journaled),
//     retries the 409 that the immediate addPassword meets, and ends with
//     two secrets, the vault's getting a token (azsecrets + azidentity).
//   - An application holding two working secrets is not due (reason
//     PasswordLimit, with the fix), and a manual rotation fails before
//     creating anything.
func TestRotationWithinEntrasLimits(t *testing.T) {
	t.Parallel()
	r := newSimRig(t, simtest.Options{Seed: "apps=2,tenants=1,expiring=1h,replication=0s"}, config.SimulatorRotation{})
	ctx, srv, org, tn, simSrv := r.ctx, r.srv, r.org, r.tn, r.st.Server
	var err error

	// Both applications admit personal accounts and already hold two
	// secrets: the seed's working "bulk" one and one rotor made — expired
	// on the first, still working on the second.
	world := simSrv.World().Tenant(tn.ID)
	var roomy, full *sim.Application
	now := time.Now().UTC()
	simSrv.World().Update(func() {
		for _, a := range world.Apps {
			if !slices.Contains(a.Owners, tn.Rotation.ObjectID) {
				continue
			}
			end := now.Add(-24 * time.Hour)
			if roomy == nil {
				roomy = a
			} else if full == nil {
				full, end = a, now.Add(time.Hour)
			} else {
				continue
			}
			a.SignInAudience = "AzureADandPersonalMicrosoftAccount"
			a.Passwords = append(a.Passwords, &sim.Password{KeyID: uuid.NewString(), DisplayName: domain.DisplayNameFor(uuid.NewString()),
				Start: now.AddDate(0, -1, 0), End: end, AddedAt: now.AddDate(0, -1, 0)})
		}
	})
	require.NotNil(t, full)
	require.NoError(t, srv.Sync(ctx, nil))
	require.NoError(t, simSrv.SetFaults(sim.FaultConfig{ConcurrencyWindow: time.Second}))
	passwords := func(a *sim.Application) (keys []string, foreign int) {
		simSrv.World().Update(func() {
			for _, p := range a.Passwords {
				keys = append(keys, p.KeyID)
				if !(domain.Credential{DisplayName: p.DisplayName}).RotorCreated() {
					foreign++
				}
			}
		})
		return keys, foreign
	}

	// The full one: not due, and why.
	app, err := srv.Store().GetApplication(ctx, org, full.ObjectID)
	require.NoError(t, err)
	pol := srv.PolicyFor(*app)
	require.NotNil(t, pol)
	d, err := srv.Engine().Decide(ctx, org, *app, pol)
	require.NoError(t, err)
	require.False(t, d.Due, d.Message)
	require.Equal(t, "PasswordLimit", d.Reason)
	require.Contains(t, d.Message, "at most 2 secrets")
	before, _ := passwords(full)
	_, err = srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.True(t, rotation.IsPermanentFailure(err), "%v", err)
	require.Contains(t, err.Error(), "none was created")
	after, _ := passwords(full)
	require.Equal(t, before, after, "nothing created, nothing removed")

	// The roomy one: due, and rotated within the limit.
	app, err = srv.Store().GetApplication(ctx, org, roomy.ObjectID)
	require.NoError(t, err)
	d, err = srv.Engine().Decide(ctx, org, *app, pol)
	require.NoError(t, err)
	require.True(t, d.Due, d.Message)
	run, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerDue)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State)
	stored, err := srv.Store().GetRun(ctx, org, run.ID)
	require.NoError(t, err)
	var kinds []domain.StepKind
	for _, ev := range stored.Events {
		kinds = append(kinds, ev.Step.Kind)
	}
	require.Contains(t, kinds, domain.StepMakeRoom)
	require.Less(t, slices.Index(kinds, domain.StepMakeRoom), slices.Index(kinds, domain.StepCreated), "room is made before the new secret is created")
	keys, foreign := passwords(roomy)
	require.Len(t, keys, 2)
	require.Equal(t, 1, foreign, "the working foreign secret stays")
	require.Contains(t, keys, run.NewKeyID)
	require.Positive(t, simSrv.Stats().Conflicts, "the addPassword right after the removal met a 409 and was retried")

	require.NoError(t, r.consumerSignsIn(r.vault(), app.DisplayName, app.AppID), "the vault's secret gets a token")
}
