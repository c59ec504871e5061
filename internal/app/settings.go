package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
)

// An application's own settings are layered over the policy that governs
// it (domain.AppSettings): the few values a person changes on the
// application's page in a minute, without touching the policy, which may
// be provisioned from rotor.yaml and so read-only elsewhere. They never
// make an application governed.

// ApplicationSettings are the values UpdateApplicationSettings sets, all
// of them: a nil field inherits the policy's value (so a field left out
// is cleared, as PUT replaces). An empty Key Vault URL or secret name is
// nil.
type ApplicationSettings struct {
	Enabled        *bool
	Notify         *bool
	Lifetime       *time.Duration
	RenewBefore    *time.Duration
	Overlap        *time.Duration
	KeyVaultURL    *string
	KeyVaultSecret *string
}

func (s ApplicationSettings) domain() domain.AppSettings {
	blank := func(p *string) *string {
		if p == nil || strings.TrimSpace(*p) == "" {
			return nil
		}
		v := strings.TrimSpace(*p)
		return &v
	}
	return domain.AppSettings{Enabled: s.Enabled, Notify: s.Notify, Lifetime: s.Lifetime, RenewBefore: s.RenewBefore, Overlap: s.Overlap,
		KeyVaultURL: blank(s.KeyVaultURL), KeyVaultSecret: blank(s.KeyVaultSecret)}
}

func settingsOf(d domain.AppSettings) ApplicationSettings {
	return ApplicationSettings{Enabled: d.Enabled, Notify: d.Notify, Lifetime: d.Lifetime, RenewBefore: d.RenewBefore, Overlap: d.Overlap,
		KeyVaultURL: d.KeyVaultURL, KeyVaultSecret: d.KeyVaultSecret}
}

// Sources of an effective setting.
const (
	// SourcePolicy: the governing policy's value (inherited).
	SourcePolicy = "policy"
	// SourceApplication: set on the application.
	SourceApplication = "application"
	// SourceNone: no policy governs the application and nothing is set.
	SourceNone = "none"
)

// Setting is one effective value: what rotor uses, where it comes from,
// and what the policy says. Durations are spelt as the configuration
// spells them (30d, 36h).
type Setting struct {
	Value string `json:"value"`
	// Source is policy, application or none.
	Source string `json:"source"`
	// Policy is the policy's value ("" without a governing policy).
	Policy string `json:"policy,omitempty"`
}

// Set reports whether the application sets it.
func (s Setting) Set() bool { return s.Source == SourceApplication }

// SettingsView is an application's effective settings: each value with
// its source, under the policy that governs it.
type SettingsView struct {
	Application ApplicationRef `json:"application"`
	// Policy names the governing policy; "" when none selects the
	// application (then its settings take effect once one does).
	Policy string `json:"policy,omitempty"`
	// Connection is the governing policy's connection: the identity whose
	// Key Vaults the picker lists.
	Connection     string  `json:"connection,omitempty"`
	Enabled        Setting `json:"enabled"`
	Notify         Setting `json:"notify"`
	Lifetime       Setting `json:"lifetime"`
	RenewBefore    Setting `json:"renew_before"`
	Overlap        Setting `json:"overlap"`
	KeyVaultURL    Setting `json:"keyvault_url"`
	KeyVaultSecret Setting `json:"keyvault_secret"`
	// KeyVaultSink says the governing policy has a Key Vault sink, which
	// the Key Vault settings change (its first one).
	KeyVaultSink bool `json:"keyvault_sink"`
	// Notes say what else the effective values came to (a value rotor had
	// to adjust, a setting the policy gives nothing to act on).
	Notes []string `json:"notes"`
	// LifetimeLimit is the longest lifetime the application may have (the
	// tenant's limit when rotor knows it, else 2 years), spelt as the
	// configuration spells it.
	LifetimeLimit string `json:"lifetime_limit"`
	// Editable says the caller may change them (Operator).
	Editable bool `json:"editable"`
	// Stored are the application's own settings, as set (nil: inherit);
	// Inherited the governing policy's values (all nil without one).
	Stored    ApplicationSettings `json:"-"`
	Inherited ApplicationSettings `json:"-"`
	UpdatedAt time.Time           `json:"updated_at,omitzero"`
	UpdatedBy string              `json:"updated_by,omitempty"`
}

// Bounds of an application's lifetime when the tenant's limit is unknown:
// one day (a shorter secret would be rotated all the time) to two years
// (Entra's own default and the longest an audit accepts).
const (
	MinLifetime = 24 * time.Hour
	MaxLifetime = 2 * 365 * 24 * time.Hour
)

// GetApplicationSettings returns one application's effective settings,
// each with its source (the policy or the application).
func (s *Service) GetApplicationSettings(ctx context.Context, scope Scope, ref string) (*SettingsView, error) {
	if err := s.begin(ctx, scope, ActionRead, ApplicationObject(ref)); err != nil {
		return nil, err
	}
	a, err := s.getApp(ctx, scope, ref)
	if err != nil {
		return nil, err
	}
	return s.settingsView(ctx, scope, a)
}

func (s *Service) settingsView(ctx context.Context, scope Scope, a *domain.Application) (*SettingsView, error) {
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	var stored store.ApplicationSettings
	switch got, err := s.store.GetApplicationSettings(ctx, scope.Org, a.ObjectID); {
	case err == nil:
		stored = *got
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("settings of %s: %w", a.DisplayName, err)
	}
	base := pols.GoverningPolicy(*a)
	limit, err := s.lifetimeLimit(ctx, scope.Org, base)
	if err != nil {
		return nil, err
	}
	v := &SettingsView{Application: refOf(a), Stored: settingsOf(stored.Settings), UpdatedAt: stored.UpdatedAt, UpdatedBy: stored.UpdatedBy,
		LifetimeLimit: domain.FormatDuration(limit), Notes: []string{},
		Editable: s.authz.Authorize(ctx, scope, ActionUpdateSettings, ApplicationObject(a.ObjectID)) == nil}
	set := stored.Settings
	var eff domain.Policy
	if base != nil {
		v.Policy, v.Connection = base.Name, base.Connection
		u, n := base.KeyVaultTarget()
		notify := base.NotifyBefore > 0
		v.Inherited = ApplicationSettings{Enabled: &base.Enabled, Notify: &notify, Lifetime: &base.Lifetime, RenewBefore: &base.RenewBefore,
			Overlap: &base.Overlap, KeyVaultURL: &u, KeyVaultSecret: &n}
		eff = set.Apply(*base)
		_, v.KeyVaultSink = base.KeyVaultSink()
		for _, o := range eff.Overrides {
			if o.Note != "" {
				v.Notes = append(v.Notes, o.Message())
			}
		}
	} else {
		v.Notes = append(v.Notes, "no policy selects this application, so rotor only watches it; its settings take effect once a policy selects it")
	}
	if base != nil && !v.KeyVaultSink && (set.KeyVaultURL != nil || set.KeyVaultSecret != nil) {
		v.Notes = append(v.Notes, fmt.Sprintf("policy %q has no Key Vault sink, so the Key Vault settings change nothing", base.Name))
	}
	pick := func(mine *string, effective, policy string) Setting {
		switch {
		case mine != nil:
			return Setting{Value: effective, Source: SourceApplication, Policy: policy}
		case base == nil:
			return Setting{Source: SourceNone}
		}
		return Setting{Value: effective, Source: SourcePolicy, Policy: policy}
	}
	str := func(p *bool) *string {
		if p == nil {
			return nil
		}
		x := strconv.FormatBool(*p)
		return &x
	}
	dur := func(p *time.Duration) *string {
		if p == nil {
			return nil
		}
		x := domain.FormatDuration(*p)
		return &x
	}
	var pol domain.Policy
	if base != nil {
		pol = *base
	}
	v.Enabled = pick(str(set.Enabled), strconv.FormatBool(eff.Enabled), strconv.FormatBool(pol.Enabled))
	v.Notify = pick(str(set.Notify), strconv.FormatBool(eff.NotifyBefore > 0), strconv.FormatBool(pol.NotifyBefore > 0))
	v.Lifetime = pick(dur(set.Lifetime), domain.FormatDuration(eff.Lifetime), domain.FormatDuration(pol.Lifetime))
	v.RenewBefore = pick(dur(set.RenewBefore), domain.FormatDuration(eff.RenewBefore), domain.FormatDuration(pol.RenewBefore))
	v.Overlap = pick(dur(set.Overlap), domain.FormatDuration(eff.Overlap), domain.FormatDuration(pol.Overlap))
	pu, ps := pol.KeyVaultTarget()
	eu, es := eff.KeyVaultTarget()
	v.KeyVaultURL = pick(set.KeyVaultURL, eu, pu)
	v.KeyVaultSecret = pick(set.KeyVaultSecret, es, ps)
	if base == nil {
		// Without a policy only what is set has a value.
		for _, x := range []struct {
			dst *Setting
			val *string
		}{{&v.Enabled, str(set.Enabled)}, {&v.Notify, str(set.Notify)}, {&v.Lifetime, dur(set.Lifetime)}, {&v.RenewBefore, dur(set.RenewBefore)},
			{&v.Overlap, dur(set.Overlap)}, {&v.KeyVaultURL, set.KeyVaultURL}, {&v.KeyVaultSecret, set.KeyVaultSecret}} {
			if x.val != nil {
				x.dst.Value = *x.val
			}
		}
	}
	return v, nil
}

// lifetimeLimit is the longest lifetime an application governed by pol
// may have: the tenant's client secret limit when rotor knows it (its
// app management policy, as the configuration loader applies it to
// policies), else MaxLifetime.
func (s *Service) lifetimeLimit(ctx context.Context, org domain.OrgID, pol *domain.Policy) (time.Duration, error) {
	if pol == nil || pol.Kind != domain.KindSecret || s.conns == nil {
		return MaxLifetime, nil
	}
	conns, err := s.conns.OrgConnections(ctx, org)
	if err != nil {
		return 0, fmt.Errorf("list connections: %w", err)
	}
	for _, c := range conns {
		if c.Name == pol.Connection && c.PasswordLifetimeLimit > 0 {
			return min(c.PasswordLifetimeLimit, MaxLifetime), nil
		}
	}
	return MaxLifetime, nil
}

// UpdateApplicationSettings replaces one application's own settings (every
// field: nil inherits the policy's) and returns the effective result.
// Values are checked against the policy they are layered over: lifetime
// from 1d to the tenant's limit (2y when unknown), renew_before positive
// and shorter than the lifetime, overlap not negative and shorter than the
// lifetime, a Key Vault URL and secret name Key Vault accepts, and only
// when the policy has a Key Vault sink. Operator; audited.
func (s *Service) UpdateApplicationSettings(ctx context.Context, scope Scope, ref string, in ApplicationSettings) (_ *SettingsView, err error) {
	object := ApplicationObject(ref)
	defer func() { s.record(ctx, scope, ActionUpdateSettings, object, err, nil) }()
	if err := s.begin(ctx, scope, ActionUpdateSettings, object); err != nil {
		return nil, err
	}
	a, err := s.getApp(ctx, scope, ref)
	if err != nil {
		return nil, err
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	base := pols.GoverningPolicy(*a)
	limit, err := s.lifetimeLimit(ctx, scope.Org, base)
	if err != nil {
		return nil, err
	}
	set := in.domain()
	if err := validateSettings(set, base, limit); err != nil {
		return nil, err
	}
	if err := s.checkVault(ctx, scope.Org, set, base); err != nil {
		return nil, err
	}
	if err := s.store.PutApplicationSettings(ctx, store.ApplicationSettings{Org: scope.Org, ObjectID: a.ObjectID, Settings: set,
		UpdatedAt: s.clock.Now(), UpdatedBy: scope.Actor.String()}); err != nil {
		return nil, fmt.Errorf("save settings of %s: %w", a.DisplayName, err)
	}
	return s.settingsView(ctx, scope, a)
}

// checkVault refuses a Key Vault URL that is not one of the vaults the
// policy's connection's identity sees through ARM (the picker's list):
// an operator chooses among the organization's vaults, and cannot point
// rotor, acting as the connection, at any other address. The URL is
// stored as Azure gives it. Without vault discovery (tests of the layer
// alone) the URL's form is all that is checked.
func (s *Service) checkVault(ctx context.Context, org domain.OrgID, set domain.AppSettings, base *domain.Policy) error {
	if set.KeyVaultURL == nil || base == nil || s.vaultFinder == nil {
		return nil
	}
	vaults, err := s.vaultsOf(ctx, org, base.Connection)
	if err != nil {
		return &InvalidError{Field: "keyvault_url", Message: fmt.Sprintf("rotor cannot tell which vaults connection %q sees, so it cannot accept one: %v", base.Connection, err)}
	}
	want := normalVaultURL(*set.KeyVaultURL)
	i := slices.IndexFunc(vaults, func(v Vault) bool { return normalVaultURL(v.URL) == want })
	if i < 0 {
		return &InvalidError{Field: "keyvault_url", Message: fmt.Sprintf("is not a vault connection %q sees through Azure Resource Manager; pick one it lists (its identity needs Reader on the vault, its resource group or subscription)", base.Connection)}
	}
	*set.KeyVaultURL = vaults[i].URL
	return nil
}

var vaultSecretName = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)

// validateSettings checks set as layered over base (nil: no policy
// governs the application; defaults stand in for its values), with
// lifetimes up to limit. The error names the field.
func validateSettings(set domain.AppSettings, base *domain.Policy, limit time.Duration) error {
	bad := func(field, format string, args ...any) error {
		return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	pol := domain.Policy{Lifetime: domain.DefaultLifetime, RenewBefore: domain.DefaultRenewBefore(domain.DefaultLifetime), Overlap: domain.DefaultOverlap}
	whose := "the default"
	if base != nil {
		pol, whose = *base, "policy "+strconv.Quote(base.Name)+"'s"
	}
	lifetime := pol.Lifetime
	if set.Lifetime != nil {
		lifetime = *set.Lifetime
		if lifetime < MinLifetime || lifetime > limit {
			why := ""
			if limit < MaxLifetime {
				why = " (the tenant's app management policy allows at most " + domain.FormatDuration(limit) + ")"
			}
			return bad("lifetime", "%s is outside 1d to %s%s", domain.FormatDuration(lifetime), domain.FormatDuration(limit), why)
		}
	}
	if set.RenewBefore != nil {
		if *set.RenewBefore <= 0 {
			return bad("renew_before", "must be positive")
		}
		if *set.RenewBefore >= lifetime {
			return bad("renew_before", "%s must be shorter than lifetime %s: a credential would be due the moment it is made", domain.FormatDuration(*set.RenewBefore), domain.FormatDuration(lifetime))
		}
	} else if set.Lifetime != nil && pol.RenewBefore >= lifetime {
		return bad("renew_before", "%s %s is not shorter than lifetime %s: set renew_before too", whose, domain.FormatDuration(pol.RenewBefore), domain.FormatDuration(lifetime))
	}
	if set.Overlap != nil {
		if *set.Overlap < 0 {
			return bad("overlap", "must not be negative")
		}
		if *set.Overlap >= lifetime {
			return bad("overlap", "%s must be shorter than lifetime %s", domain.FormatDuration(*set.Overlap), domain.FormatDuration(lifetime))
		}
	} else if set.Lifetime != nil && pol.Overlap >= lifetime {
		return bad("overlap", "%s %s is not shorter than lifetime %s: set overlap too", whose, domain.FormatDuration(pol.Overlap), domain.FormatDuration(lifetime))
	}
	if base != nil && (set.KeyVaultURL != nil || set.KeyVaultSecret != nil) {
		if _, ok := base.KeyVaultSink(); !ok {
			field := "keyvault_url"
			if set.KeyVaultURL == nil {
				field = "keyvault_secret"
			}
			return bad(field, "policy %q has no Key Vault sink to send it to", base.Name)
		}
	}
	if u := set.KeyVaultURL; u != nil {
		p, err := url.Parse(*u)
		if err != nil || p.Scheme != "https" || p.Hostname() == "" || p.User != nil || p.RawQuery != "" || p.Fragment != "" || (p.Path != "" && p.Path != "/") {
			return bad("keyvault_url", "must be a vault's https URL such as https://myvault.vault.azure.net/")
		}
	}
	if n := set.KeyVaultSecret; n != nil && !vaultSecretName.MatchString(*n) {
		return bad("keyvault_secret", "must be a Key Vault secret name: 1-127 letters, digits and dashes")
	}
	return nil
}

// SinkTest is one sink's answer to "would a delivery work?".
type SinkTest struct {
	Index int    `json:"index"`
	Type  string `json:"type"`
	// Target describes where it delivers, for people; never a secret.
	Target string `json:"target"`
	// Status is ready, unknown or failed (sink.Status); Reason says why.
	Status sink.Status `json:"status"`
	Reason string      `json:"reason"`
	// LastDelivery is what rotor last delivered there; absent when it
	// never did.
	LastDelivery *sink.Delivered `json:"last_delivery,omitempty"`
	// Drift says whether the target changed since that delivery; absent
	// when the sink cannot tell (it reads no versions, or none was
	// recorded).
	Drift *sink.Drift `json:"drift,omitempty"`
}

// SinkTests is what TestSinks found for an application.
type SinkTests struct {
	Application ApplicationRef `json:"application"`
	Policy      string         `json:"policy"`
	Sinks       []SinkTest     `json:"sinks"`
	At          time.Time      `json:"at"`
}

// TestSinks asks each sink of the policy governing the application (with
// its settings applied) whether a delivery would work, where a run would
// deliver: the Test button. It writes nothing and reads no secret
// (sink.Validator). Operator: it reaches out to every target.
func (s *Service) TestSinks(ctx context.Context, scope Scope, ref string) (*SinkTests, error) {
	if err := s.begin(ctx, scope, ActionTestSinks, ApplicationObject(ref)); err != nil {
		return nil, err
	}
	a, pol, err := s.governed(ctx, scope, ref)
	if err != nil {
		return nil, err
	}
	checks, err := s.engine.CheckSinks(ctx, scope.Org, *a, *pol)
	if err != nil {
		return nil, fmt.Errorf("check sinks of %s: %w", a.DisplayName, err)
	}
	out := &SinkTests{Application: refOf(a), Policy: pol.Name, Sinks: make([]SinkTest, 0, len(checks)), At: s.clock.Now()}
	for _, c := range checks {
		out.Sinks = append(out.Sinks, SinkTest{Index: c.Index, Type: c.Type, Target: c.Describe, Status: c.Validation.Status, Reason: c.Validation.Reason,
			LastDelivery: c.Last, Drift: c.Drift})
	}
	return out, nil
}
