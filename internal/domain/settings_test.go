package domain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAppSettingsApply(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	yes, no := true, false
	d := func(v time.Duration) *time.Duration { return &v }
	s := func(v string) *string { return &v }
	base := func() Policy {
		return Policy{Name: "web", Enabled: true, Kind: KindSecret, Lifetime: 90 * day, RenewBefore: 30 * day, Overlap: day, NotifyBefore: 14 * day,
			Sinks: []SinkSpec{{Type: "webhook"}, {Type: KeyVaultSinkType, Settings: map[string]any{KeyVaultSettingURL: "https://a.vault.azure.net/", KeyVaultSettingKey: "{{ .App.AppID }}"}}}}
	}
	for name, c := range map[string]struct {
		set   AppSettings
		check func(t *testing.T, p Policy)
	}{
		"NothingSetChangesNothing": {AppSettings{}, func(t *testing.T, p Policy) {
			require.Equal(t, base(), p)
		}},
		"Lifetime": {AppSettings{Lifetime: d(30 * day)}, func(t *testing.T, p Policy) {
			require.Equal(t, 30*day, p.Lifetime)
			require.Equal(t, 10*day, p.RenewBefore, "the policy's renew_before 30d is not shorter than 30d: a third of it")
			require.Equal(t, "lifetime 30d (this application's setting; policy says 90d)", p.Overrides[0].Message())
			require.Equal(t, "renew_before", p.Overrides[1].Field)
			require.Contains(t, p.Overrides[1].Message(), "a third of lifetime 30d")
			require.Equal(t, day, p.Overlap)
		}},
		"LifetimeAndRenewBefore": {AppSettings{Lifetime: d(30 * day), RenewBefore: d(36 * time.Hour)}, func(t *testing.T, p Policy) {
			require.Equal(t, 36*time.Hour, p.RenewBefore)
			require.Len(t, p.Overrides, 2)
		}},
		"NotifyOnUnderAPolicyWithout": {AppSettings{Notify: &yes}, func(t *testing.T, p Policy) {
			require.Equal(t, 14*day, p.NotifyBefore, "kept")
			off := base()
			off.NotifyBefore = 0
			require.Equal(t, DefaultNotifyBefore, AppSettings{Notify: &yes}.Apply(off).NotifyBefore)
		}},
		"DisabledHere": {AppSettings{Enabled: &no}, func(t *testing.T, p Policy) {
			require.False(t, p.Enabled)
			o, ok := p.Overridden("enabled")
			require.True(t, ok)
			require.Equal(t, Override{Field: "enabled", Value: "false", Policy: "true"}, o)
		}},
		"NotifyOff": {AppSettings{Notify: &no}, func(t *testing.T, p Policy) { require.Zero(t, p.NotifyBefore) }},
		"KeyVault": {AppSettings{KeyVaultURL: s("https://b.vault.azure.net/"), KeyVaultSecret: s("web-secret")}, func(t *testing.T, p Policy) {
			require.Equal(t, "https://b.vault.azure.net/", p.Sinks[1].Settings[KeyVaultSettingURL])
			require.Equal(t, "web-secret", p.Sinks[1].Settings[KeyVaultSettingKey])
			require.Len(t, p.Overrides, 2)
		}},
	} {
		t.Run(name, func(t *testing.T) {
			in := base()
			c.check(t, c.set.Apply(in))
			require.Equal(t, base(), in, "the policy applied to is not changed")
		})
	}
}
