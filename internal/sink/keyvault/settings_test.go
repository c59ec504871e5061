package keyvault

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

// TestApplicationSettingsNameThisSinksKeys: domain.AppSettings replaces
// the vault and the secret of a Key Vault sink by these names (domain
// imports nothing of rotor's, so it spells them itself), and what it
// writes is a spec this package accepts.
func TestApplicationSettingsNameThisSinksKeys(t *testing.T) {
	t.Parallel()
	require.Equal(t, Type, domain.KeyVaultSinkType)
	require.Equal(t, KeyVaultURL, domain.KeyVaultSettingURL)
	require.Equal(t, KeySecret, domain.KeyVaultSettingKey)
	require.Equal(t, KeyAs, domain.KeyVaultSettingAs)
	require.Equal(t, AsCertificate, domain.KeyVaultAsCertificate)
	require.Equal(t, KeyCertificate, domain.KeyVaultSettingCertificate)

	u, n := "https://other.vault.azure.net/", "payroll-secret"
	p := domain.Policy{Lifetime: domain.DefaultLifetime, RenewBefore: domain.DefaultRenewBefore(domain.DefaultLifetime),
		Sinks: []domain.SinkSpec{{Type: Type, Settings: map[string]any{KeyVaultURL: "https://kv.vault.azure.net/", KeySecret: "{{ .App.DisplayName | slug }}"}}}}
	got := domain.AppSettings{KeyVaultURL: &u, KeyVaultSecret: &n}.Apply(p)
	s, err := parseSpec(got.Sinks[0])
	require.NoError(t, err)
	require.Equal(t, u, s.vaultURL)
	name, err := render(s.nameTmpl, sampleApp)
	require.NoError(t, err)
	require.Equal(t, n, name)
}

// TestApplicationSettingsNameACertificateSinksTarget: for an as:
// certificate sink, the application's Key Vault name replaces the
// certificate's name, and the spec stays valid.
func TestApplicationSettingsNameACertificateSinksTarget(t *testing.T) {
	t.Parallel()
	n := "payroll-tls"
	p := domain.Policy{Lifetime: domain.DefaultLifetime, RenewBefore: domain.DefaultRenewBefore(domain.DefaultLifetime),
		Sinks: []domain.SinkSpec{{Type: Type, Settings: map[string]any{KeyVaultURL: "https://kv.vault.azure.net/", KeyAs: AsCertificate, KeyCertificate: "{{ .App.DisplayName | slug }}"}}}}
	_, before := p.KeyVaultTarget()
	require.Equal(t, "{{ .App.DisplayName | slug }}", before)
	got := domain.AppSettings{KeyVaultSecret: &n}.Apply(p)
	s, err := parseSpec(got.Sinks[0])
	require.NoError(t, err)
	require.Equal(t, AsCertificate, s.as)
	name, err := render(s.nameTmpl, sampleApp)
	require.NoError(t, err)
	require.Equal(t, n, name)
}
