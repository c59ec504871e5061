package domain

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// AppSettings are one application's own settings, layered over the policy
// that governs it: what a person changes on the application's page without
// touching the policy (which may be provisioned from rotor.yaml, and so
// read-only elsewhere). A nil field inherits the policy's value.
//
// They never make an application governed: an application no policy
// selects stays unmanaged whatever its settings say.
type AppSettings struct {
	Enabled *bool
	// Notify turns expiry notifications on or off (NotifyBefore 0: off).
	Notify      *bool
	Lifetime    *time.Duration
	RenewBefore *time.Duration
	Overlap     *time.Duration
	// KeyVaultURL and KeyVaultSecret replace the vault and the secret name
	// of the governing policy's first Key Vault sink, for this application
	// only. The secret name is a literal name, not a template.
	KeyVaultURL    *string
	KeyVaultSecret *string
}

// IsZero reports whether nothing is set: the application inherits all.
func (s AppSettings) IsZero() bool {
	return s.Enabled == nil && s.Notify == nil && s.Lifetime == nil && s.RenewBefore == nil && s.Overlap == nil &&
		s.KeyVaultURL == nil && s.KeyVaultSecret == nil
}

// Override is one value an application's settings changed in its
// policy, for the "why" chain: explain shows each.
type Override struct {
	// Field is the setting's name as the API spells it ("lifetime",
	// "renew_before", "overlap", "enabled", "notify", "keyvault_url",
	// "keyvault_secret").
	Field string `json:"field"`
	// Value is the application's value; Policy the policy's, both spelt
	// as the configuration spells them (30d, 36h, true).
	Value  string `json:"value"`
	Policy string `json:"policy"`
	// Note says why rotor used a value nobody set, when it had to (a
	// policy changed under an application's setting); empty otherwise.
	Note string `json:"note,omitempty"`
}

// Message says it for people: "lifetime 30d (this application's setting;
// policy says 90d)".
func (o Override) Message() string {
	if o.Note != "" {
		return fmt.Sprintf("%s %s (%s; policy says %s)", o.Field, o.Value, o.Note, o.Policy)
	}
	return fmt.Sprintf("%s %s (this application's setting; policy says %s)", o.Field, o.Value, o.Policy)
}

// DefaultNotifyBefore is how long before expiry notifications warn when an
// application turns them on under a policy that has them off.
const DefaultNotifyBefore = 14 * 24 * time.Hour

// The Key Vault sink's type and setting keys (internal/sink/keyvault's
// Type, KeyVaultURL and KeySecret; a test there keeps them equal). domain
// imports nothing of rotor's, so it names them itself.
const (
	KeyVaultSinkType   = "keyvault"
	KeyVaultSettingURL = "vault_url"
	KeyVaultSettingKey = "secret"
	// A sink with as: certificate names its target with "certificate"
	// instead of "secret" (KeyAs, AsCertificate, KeyCertificate there).
	KeyVaultSettingAs          = "as"
	KeyVaultAsCertificate      = "certificate"
	KeyVaultSettingCertificate = "certificate"
)

// keyVaultNameKey is the setting that names a Key Vault sink's target.
func keyVaultNameKey(spec SinkSpec) string {
	if as, _ := spec.Settings[KeyVaultSettingAs].(string); as == KeyVaultAsCertificate {
		return KeyVaultSettingCertificate
	}
	return KeyVaultSettingKey
}

// KeyVaultSink returns the index of the policy's first Key Vault sink: the
// one an application's Key Vault settings replace; false when it has none.
func (p Policy) KeyVaultSink() (int, bool) {
	for i, s := range p.Sinks {
		if s.Type == KeyVaultSinkType {
			return i, true
		}
	}
	return 0, false
}

// KeyVaultTarget is what the policy's first Key Vault sink names: its vault
// URL and secret (or, for an as: certificate sink, certificate: a name or
// a name template); empty when it has none.
func (p Policy) KeyVaultTarget() (vaultURL, secret string) {
	i, ok := p.KeyVaultSink()
	if !ok {
		return "", ""
	}
	u, _ := p.Sinks[i].Settings[KeyVaultSettingURL].(string)
	s, _ := p.Sinks[i].Settings[keyVaultNameKey(p.Sinks[i])].(string)
	return u, s
}

// Apply returns a copy of p with s layered over it, and every value s
// changed recorded in Overrides. p itself (a cached, shared policy) is
// not changed: its sinks' settings are copied before any is replaced.
//
// A policy may change under settings that were valid when they were made
// (its lifetime shortened below the application's renew_before); Apply
// then keeps the result valid rather than rotate under an impossible
// policy: a renew_before or overlap not shorter than the lifetime becomes
// a third of it, with a note saying so.
func (s AppSettings) Apply(p Policy) Policy {
	out := p
	out.Sinks = slices.Clone(p.Sinks)
	out.Overrides = slices.Clone(p.Overrides)
	add := func(field, value, policy string) {
		out.Overrides = append(out.Overrides, Override{Field: field, Value: value, Policy: policy})
	}
	if s.Enabled != nil {
		out.Enabled = *s.Enabled
		add("enabled", strconv.FormatBool(*s.Enabled), strconv.FormatBool(p.Enabled))
	}
	if s.Notify != nil {
		switch {
		case !*s.Notify:
			out.NotifyBefore = 0
		case p.NotifyBefore == 0:
			out.NotifyBefore = DefaultNotifyBefore
		}
		add("notify", strconv.FormatBool(*s.Notify), strconv.FormatBool(p.NotifyBefore > 0))
	}
	dur := func(field string, v *time.Duration, dst *time.Duration, policy time.Duration) {
		if v == nil {
			return
		}
		*dst = *v
		add(field, FormatDuration(*v), FormatDuration(policy))
	}
	dur("lifetime", s.Lifetime, &out.Lifetime, p.Lifetime)
	dur("renew_before", s.RenewBefore, &out.RenewBefore, p.RenewBefore)
	dur("overlap", s.Overlap, &out.Overlap, p.Overlap)
	if out.Lifetime > 0 {
		fix := func(field string, v *time.Duration, policy time.Duration) {
			if *v < out.Lifetime {
				return
			}
			*v = out.Lifetime / 3
			out.Overrides = append(out.Overrides, Override{Field: field, Value: FormatDuration(*v), Policy: FormatDuration(policy),
				Note: fmt.Sprintf("a third of lifetime %s: the %s set is not shorter than it", FormatDuration(out.Lifetime), field)})
		}
		fix("renew_before", &out.RenewBefore, p.RenewBefore)
		fix("overlap", &out.Overlap, p.Overlap)
	}
	if i, ok := p.KeyVaultSink(); ok && (s.KeyVaultURL != nil || s.KeyVaultSecret != nil) {
		u, n := p.KeyVaultTarget()
		spec := SinkSpec{Type: p.Sinks[i].Type, Settings: maps.Clone(p.Sinks[i].Settings)}
		if spec.Settings == nil {
			spec.Settings = map[string]any{}
		}
		if s.KeyVaultURL != nil {
			spec.Settings[KeyVaultSettingURL] = *s.KeyVaultURL
			add("keyvault_url", *s.KeyVaultURL, u)
		}
		if s.KeyVaultSecret != nil {
			spec.Settings[keyVaultNameKey(spec)] = *s.KeyVaultSecret
			add("keyvault_secret", *s.KeyVaultSecret, n)
		}
		out.Sinks[i] = spec
	}
	return out
}
