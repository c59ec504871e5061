package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
)

func ptr[T any](v T) *T { return &v }

func days(n int) *time.Duration { d := time.Duration(n) * 24 * time.Hour; return &d }

func TestApplicationSettingsAreValidatedAgainstThePolicyAndTheTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.sync()
	storefront := b.simApp("contoso", "web-storefront") // policy web: 30d, renew 10d, overlap 1h; contoso allows 90d secrets
	hours := func(n int) *time.Duration { d := time.Duration(n) * time.Hour; return &d }
	for name, c := range map[string]struct {
		in    app.ApplicationSettings
		field string
		msg   string
	}{
		"LifetimeUnderADay":         {app.ApplicationSettings{Lifetime: hours(12)}, "lifetime", "outside 1d"},
		"LifetimeOverTheTenantsCap": {app.ApplicationSettings{Lifetime: days(91)}, "lifetime", "app management policy allows at most 90d"},
		"RenewBeforeNotShorter":     {app.ApplicationSettings{Lifetime: days(5), RenewBefore: days(5)}, "renew_before", "shorter than lifetime 5d"},
		"PolicysRenewBeforeTooLong": {app.ApplicationSettings{Lifetime: days(7)}, "renew_before", `policy "contoso-web"'s 10d`},
		"RenewBeforeZero":           {app.ApplicationSettings{RenewBefore: hours(0)}, "renew_before", "positive"},
		"OverlapNegative":           {app.ApplicationSettings{Overlap: hours(-1)}, "overlap", "negative"},
		"OverlapNotShorter":         {app.ApplicationSettings{Overlap: days(30)}, "overlap", "shorter than lifetime 30d"},
		"VaultNotHTTPS":             {app.ApplicationSettings{KeyVaultURL: ptr("http://kv.vault.azure.net/")}, "keyvault_url", "https"},
		"VaultWithAPath":            {app.ApplicationSettings{KeyVaultURL: ptr("https://kv.vault.azure.net/secrets/x")}, "keyvault_url", "https"},
		"SecretNameNotAName":        {app.ApplicationSettings{KeyVaultSecret: ptr("web_secret")}, "keyvault_secret", "secret name"},
	} {
		_, err := b.app.UpdateApplicationSettings(ctx, b.cli, storefront.ObjectID, c.in)
		var inv *app.InvalidError
		require.ErrorAs(t, err, &inv, name)
		require.Equal(t, c.field, inv.Field, name)
		require.Contains(t, inv.Message, c.msg, name)
		require.Equal(t, http.StatusBadRequest, app.HTTPStatus(err), name)
	}
	v, err := b.app.GetApplicationSettings(ctx, b.cli, storefront.ObjectID)
	require.NoError(t, err)
	require.Equal(t, app.SourcePolicy, v.Lifetime.Source, "nothing invalid was saved")
	require.Equal(t, "90d", v.LifetimeLimit)

	v, err = b.app.UpdateApplicationSettings(ctx, b.cli, storefront.ObjectID, app.ApplicationSettings{Lifetime: days(90), Overlap: ptr(time.Duration(0)), Notify: ptr(false)})
	require.NoError(t, err, "the tenant's cap itself, and no overlap, are allowed")
	require.Equal(t, app.Setting{Value: "90d", Source: app.SourceApplication, Policy: "30d"}, v.Lifetime)
	require.Equal(t, app.Setting{Value: "10d", Source: app.SourcePolicy, Policy: "10d"}, v.RenewBefore)
	require.Equal(t, app.Setting{Value: "0s", Source: app.SourceApplication, Policy: "1h"}, v.Overlap)
	require.Equal(t, "false", v.Notify.Value)
	require.True(t, v.Editable)
}

func TestApplicationSettingsNeedAnOperatorAndAreAudited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.sync()
	b.takeEvents()
	storefront := b.simApp("contoso", "web-storefront")
	viewer := app.Scope{Org: b.cli.Org, Actor: app.Actor{Kind: app.ActorUser, ID: "u-viewer"}, RequestID: "req-9"}
	operator := app.Scope{Org: b.cli.Org, Actor: app.Actor{Kind: app.ActorUser, ID: "u-operator"}}
	b.mu.Lock()
	// The roles table decides, as auth.Authorizer would for these people.
	b.deny = func(sc app.Scope, a app.Action, _ string) bool {
		role := app.RoleOperator
		if sc.Actor.ID == "u-viewer" {
			role = app.RoleViewer
		}
		return sc.Actor.Kind == app.ActorUser && !role.Permits(a)
	}
	b.mu.Unlock()

	v, err := b.app.GetApplicationSettings(ctx, viewer, storefront.ObjectID)
	require.NoError(t, err, "a viewer reads them")
	require.False(t, v.Editable)
	require.Empty(t, b.takeEvents(), "a read records nothing")

	_, err = b.app.UpdateApplicationSettings(ctx, viewer, storefront.ObjectID, app.ApplicationSettings{Lifetime: days(20)})
	var denied *app.DeniedError
	require.ErrorAs(t, err, &denied)
	require.Equal(t, app.ActionUpdateSettings, denied.Action)
	ev := b.takeEvents()
	require.Len(t, ev, 1)
	require.Equal(t, app.Event{At: ev[0].At, Org: b.cli.Org, Actor: viewer.Actor, Action: app.ActionUpdateSettings, Object: app.ApplicationObject(storefront.ObjectID),
		Outcome: app.OutcomeDenied, Error: app.ClassDenied, RequestID: "req-9"}, ev[0])
	_, err = b.app.TestSinks(ctx, viewer, storefront.ObjectID)
	require.ErrorAs(t, err, &denied)

	v, err = b.app.UpdateApplicationSettings(ctx, operator, storefront.ObjectID, app.ApplicationSettings{Lifetime: days(20)})
	require.NoError(t, err)
	require.Equal(t, "user:u-operator", v.UpdatedBy)
	ev = b.takeEvents()
	require.Len(t, ev, 1)
	require.Equal(t, app.OutcomeOK, ev[0].Outcome)
	require.Equal(t, app.ActionUpdateSettings, ev[0].Action)

	_, err = b.app.UpdateApplicationSettings(ctx, operator, storefront.ObjectID, app.ApplicationSettings{Lifetime: days(1000)})
	require.Error(t, err)
	ev = b.takeEvents()
	require.Len(t, ev, 1)
	require.Equal(t, app.OutcomeFailed, ev[0].Outcome)
	require.Equal(t, app.ClassInvalid, ev[0].Error)

	tests, err := b.app.TestSinks(ctx, operator, storefront.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "contoso-web", tests.Policy)
	require.Empty(t, b.takeEvents(), "testing sinks changes nothing and records nothing")

	// Another organization: the application is not found, whoever asks.
	other := app.Scope{Org: "other-org", Actor: app.CLI}
	var nf *app.NotFoundError
	_, err = b.app.GetApplicationSettings(ctx, other, storefront.ObjectID)
	require.ErrorAs(t, err, &nf)
	_, err = b.app.UpdateApplicationSettings(ctx, other, storefront.ObjectID, app.ApplicationSettings{Lifetime: days(3)})
	require.ErrorAs(t, err, &nf)
	_, err = b.app.TestSinks(ctx, other, storefront.ObjectID)
	require.ErrorAs(t, err, &nf)
	v, err = b.app.GetApplicationSettings(ctx, b.cli, storefront.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "20d", v.Lifetime.Value, "another organization's call changed nothing")
}

// TestRotationUsesTheApplicationsLifetime: a rotation of an application
// whose settings shorten its policy's lifetime makes a secret Entra ends
// then, and explain says why.
func TestRotationUsesTheApplicationsLifetime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.sync()
	storefront := b.simApp("contoso", "web-storefront")
	_, err := b.app.UpdateApplicationSettings(ctx, b.cli, storefront.ObjectID, app.ApplicationSettings{Lifetime: days(12), RenewBefore: days(3)})
	require.NoError(t, err)

	ex, err := b.app.Explain(ctx, b.cli, storefront.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "contoso-web", ex.Policy, "the policy's name stays")
	var msgs []string
	for _, c := range ex.Decision.Checks {
		msgs = append(msgs, c.Message)
	}
	require.Contains(t, strings.Join(msgs, "\n"), "lifetime 12d (this application's setting; policy says 30d)")

	start := b.sim.Clock().Now()
	res, err := b.app.Rotate(ctx, b.cli, []string{storefront.ObjectID}, nil)
	require.NoError(t, err)
	run, err := b.app.GetRun(ctx, b.cli, res[0].RunID)
	require.NoError(t, err)
	var end time.Time
	b.sim.World().Update(func() {
		for _, p := range storefront.Passwords {
			if p.KeyID == run.NewKeyID {
				end = p.End
			}
		}
	})
	require.False(t, end.IsZero(), "Entra holds the run's secret")
	require.WithinDuration(t, start.Add(12*24*time.Hour), end, time.Minute, "Entra ends it after the application's lifetime, not the policy's 30d")

	ex, err = b.app.Explain(ctx, b.cli, storefront.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "NotYetDue", ex.Decision.Reason)
	require.WithinDuration(t, end.Add(-3*24*time.Hour), ex.Decision.DueAt, time.Second, "due at end − the application's renew_before")

	// Turned off here: the policy still governs it, rotor does not rotate it.
	_, err = b.app.UpdateApplicationSettings(ctx, b.cli, storefront.ObjectID, app.ApplicationSettings{Enabled: ptr(false)})
	require.NoError(t, err)
	ex, err = b.app.Explain(ctx, b.cli, storefront.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "PolicyDisabled", ex.Decision.Reason)
	require.Contains(t, ex.Decision.Message, "this application's setting")
}

// TestApplicationVaultIsOneTheConnectionSees: an operator picks the Key
// Vault an application's secret goes to among the vaults the policy's
// connection's identity sees through ARM; any other address (a vault in
// the same subscription it has no role on, a host of the attacker's
// choosing) is refused before anything is saved, so rotor, acting as the
// connection, is never sent there.
func TestApplicationVaultIsOneTheConnectionSees(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.sync()
	storefront := b.simApp("contoso", "web-storefront")
	tn, ok := b.info.Tenant("contoso")
	require.True(t, ok)
	for name, u := range map[string]string{
		"AVaultWithoutARole": tn.KeyVaults[1].URL,
		"AnyOtherHost":       "https://169.254.169.254/",
	} {
		_, err := b.app.UpdateApplicationSettings(ctx, b.cli, storefront.ObjectID, app.ApplicationSettings{KeyVaultURL: ptr(u)})
		var inv *app.InvalidError
		require.ErrorAs(t, err, &inv, name)
		require.Equal(t, "keyvault_url", inv.Field, name)
		require.Contains(t, inv.Message, "is not a vault connection \"contoso\" sees", name)
	}
	v, err := b.app.GetApplicationSettings(ctx, b.cli, storefront.ObjectID)
	require.NoError(t, err)
	require.Equal(t, app.SourcePolicy, v.KeyVaultURL.Source, "nothing was saved")

	// The vault it sees, typed without its trailing slash and in capitals,
	// is stored as Azure gives it.
	typed := strings.ToUpper(strings.TrimSuffix(tn.KeyVaults[0].URL, "/"))
	v, err = b.app.UpdateApplicationSettings(ctx, b.cli, storefront.ObjectID, app.ApplicationSettings{KeyVaultURL: ptr(typed)})
	require.NoError(t, err)
	require.Equal(t, tn.KeyVaults[0].URL, v.KeyVaultURL.Value)
}
