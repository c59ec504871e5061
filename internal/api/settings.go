package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
)

// An application's own settings, layered over its policy (docs/policies.md).

func (a *API) settingsRoutes(tags []string) {
	huma.Register(a.huma, a.op(http.MethodGet, "/orgs/{org}/applications/{ref}/settings", "getApplicationSettings", "An application's settings",
		"The values rotor uses for the application (enabled, notifications, lifetime, renew_before, overlap, Key Vault destination), each with its source: "+
			"the governing policy, or this application's own setting. Viewer.", tags, http.StatusConflict), a.getSettings)
	huma.Register(a.huma, a.op(http.MethodPut, "/orgs/{org}/applications/{ref}/settings", "putApplicationSettings", "Set an application's settings",
		"Replaces the application's own settings, layered over its policy: a field left out (or null) inherits the policy's value. "+
			"The policy itself is not changed (provisioned policies stay read-only). Operator; audited.", tags, http.StatusConflict), a.putSettings)
	huma.Register(a.huma, a.op(http.MethodPost, "/orgs/{org}/applications/{ref}/sinks/test", "testApplicationSinks", "Test an application's sinks",
		"Asks each sink of the governing policy whether a delivery would work, where a rotation would deliver (ready, unknown or failed, with the reason). "+
			"Writes nothing and reads no secret. Operator.", tags, http.StatusConflict, http.StatusUnprocessableEntity), a.testSinks)
}

// SettingsBody is what PUT sets: every field, null or absent inheriting
// the policy's value.
type SettingsBody struct {
	Enabled        *bool   `json:"enabled,omitempty" doc:"Rotate this application (true) or not (false), whatever the policy says."`
	Notify         *bool   `json:"notify,omitempty" doc:"Expiry notifications on or off."`
	Lifetime       *string `json:"lifetime,omitempty" maxLength:"32" doc:"Lifetime of each new credential, spelt as the configuration spells it (30d, 720h): 1d up to the tenant's limit (2y when unknown)."`
	RenewBefore    *string `json:"renew_before,omitempty" maxLength:"32" doc:"Rotate this long before the credential ends (36h); shorter than the lifetime."`
	Overlap        *string `json:"overlap,omitempty" maxLength:"32" doc:"How long the previous credential stays valid after a rotation (24h); shorter than the lifetime."`
	KeyVaultURL    *string `json:"keyvault_url,omitempty" maxLength:"256" doc:"The vault the policy's Key Vault sink writes to for this application (https://NAME.vault.azure.net/)."`
	KeyVaultSecret *string `json:"keyvault_secret,omitempty" maxLength:"127" doc:"The secret name the Key Vault sink writes for this application (a name, not a template)."`
}

// Setting is one effective value and where it comes from.
type Setting struct {
	Value  string `json:"value" doc:"What rotor uses (durations spelt as the configuration spells them)."`
	Source string `json:"source" enum:"policy,application,none" doc:"policy: inherited; application: set here; none: no policy governs the application and nothing is set."`
	Policy string `json:"policy,omitempty" doc:"The policy's value."`
}

// Settings is an application's effective settings.
type Settings struct {
	Application    ApplicationRef `json:"application"`
	Policy         string         `json:"policy,omitempty" doc:"The governing policy; absent when none selects the application (its settings then wait for one)."`
	Enabled        Setting        `json:"enabled"`
	Notify         Setting        `json:"notify"`
	Lifetime       Setting        `json:"lifetime"`
	RenewBefore    Setting        `json:"renew_before"`
	Overlap        Setting        `json:"overlap"`
	KeyVaultURL    Setting        `json:"keyvault_url"`
	KeyVaultSecret Setting        `json:"keyvault_secret"`
	KeyVaultSink   bool           `json:"keyvault_sink" doc:"The policy has a Key Vault sink (its first one is what the Key Vault settings change)."`
	LifetimeLimit  string         `json:"lifetime_limit" doc:"The longest lifetime allowed."`
	Notes          []string       `json:"notes" doc:"What else the values came to."`
	UpdatedAt      time.Time      `json:"updated_at,omitzero" doc:"When the application's settings were last set."`
	UpdatedBy      string         `json:"updated_by,omitempty" doc:"Who set them (kind:id)."`
}

func settingOf(s app.Setting) Setting {
	return Setting{Value: s.Value, Source: s.Source, Policy: s.Policy}
}

func settingsOf(v *app.SettingsView) Settings {
	return Settings{Application: refOf(v.Application), Policy: v.Policy,
		Enabled: settingOf(v.Enabled), Notify: settingOf(v.Notify), Lifetime: settingOf(v.Lifetime), RenewBefore: settingOf(v.RenewBefore),
		Overlap: settingOf(v.Overlap), KeyVaultURL: settingOf(v.KeyVaultURL), KeyVaultSecret: settingOf(v.KeyVaultSecret),
		KeyVaultSink: v.KeyVaultSink, LifetimeLimit: v.LifetimeLimit, Notes: append([]string{}, v.Notes...), UpdatedAt: v.UpdatedAt, UpdatedBy: v.UpdatedBy}
}

type settingsOutput struct{ Body Settings }

func (a *API) getSettings(ctx context.Context, in *appInput) (*settingsOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	v, err := a.app.GetApplicationSettings(ctx, scope, in.Ref)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &settingsOutput{Body: settingsOf(v)}, nil
}

type putSettingsInput struct {
	Org  string `path:"org" doc:"The organization's id. One the caller holds no role in is answered 404, as one that does not exist."`
	Ref  string `path:"ref" maxLength:"256" doc:"The application's object id, app id or display name."`
	Body SettingsBody
}

func (a *API) putSettings(ctx context.Context, in *putSettingsInput) (*settingsOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	set := app.ApplicationSettings{Enabled: in.Body.Enabled, Notify: in.Body.Notify, KeyVaultURL: in.Body.KeyVaultURL, KeyVaultSecret: in.Body.KeyVaultSecret}
	for _, d := range []struct {
		field string
		in    *string
		out   **time.Duration
	}{{"lifetime", in.Body.Lifetime, &set.Lifetime}, {"renew_before", in.Body.RenewBefore, &set.RenewBefore}, {"overlap", in.Body.Overlap, &set.Overlap}} {
		if d.in == nil {
			continue
		}
		v, err := config.ParseDuration(*d.in)
		if err != nil {
			return nil, newProblem(http.StatusBadRequest, string(app.ClassInvalid), d.field+": "+`"`+clipRef(*d.in)+`" is not a duration such as 30d or 36h`)
		}
		*d.out = &v
	}
	v, err := a.app.UpdateApplicationSettings(ctx, scope, in.Ref, set)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &settingsOutput{Body: settingsOf(v)}, nil
}

// SinkTest is one sink's answer.
type SinkTest struct {
	Index  int    `json:"index" doc:"The sink's index in the policy, from 0."`
	Type   string `json:"type" doc:"The sink's type (keyvault, …)."`
	Target string `json:"target" doc:"Where it delivers, for people."`
	Status string `json:"status" enum:"ready,unknown,failed" doc:"ready: a delivery would work; unknown: the target could not be asked; failed: a delivery would fail until someone changes something."`
	Reason string `json:"reason" doc:"Why."`
	// LastDelivery is what rotor last delivered there.
	LastDelivery *SinkDelivery `json:"last_delivery,omitempty" doc:"What rotor last delivered to this target; absent when it never did."`
	// Drift says whether the target changed since.
	Drift *SinkDrift `json:"drift,omitempty" doc:"Whether the target changed since rotor's last delivery; absent when the sink cannot tell (it reads no versions, or none was recorded)."`
}

// SinkDelivery is what rotor last delivered to a target; never a value.
type SinkDelivery struct {
	KeyID   string    `json:"key_id" doc:"The credential's key id."`
	Version string    `json:"version,omitempty" doc:"The target's version after the write (a Key Vault version id, a resourceVersion, a timestamp)."`
	RunID   string    `json:"run_id,omitempty" doc:"The run that delivered it."`
	At      time.Time `json:"at" doc:"When."`
}

// SinkDrift is a target's drift since rotor's last delivery.
type SinkDrift struct {
	Drifted bool   `json:"drifted" doc:"True when the target's version is no longer the one rotor's last delivery left, or the target is gone."`
	Reason  string `json:"reason" doc:"What changed, for people."`
	Current string `json:"current,omitempty" doc:"The version read now."`
}

// SinkTests is what testing an application's sinks found.
type SinkTests struct {
	Application ApplicationRef `json:"application"`
	Policy      string         `json:"policy"`
	Sinks       []SinkTest     `json:"sinks"`
	At          time.Time      `json:"at"`
}

type sinkTestsOutput struct{ Body SinkTests }

func (a *API) testSinks(ctx context.Context, in *appInput) (*sinkTestsOutput, error) {
	scope, err := a.scope(ctx, in.Org)
	if err != nil {
		return nil, err
	}
	r, err := a.app.TestSinks(ctx, scope, in.Ref)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &sinkTestsOutput{Body: SinkTests{Application: refOf(r.Application), Policy: r.Policy, Sinks: make([]SinkTest, 0, len(r.Sinks)), At: r.At}}
	for _, s := range r.Sinks {
		t := SinkTest{Index: s.Index, Type: s.Type, Target: s.Target, Status: string(s.Status), Reason: s.Reason}
		t.LastDelivery, t.Drift = sinkDeliveryOf(s.LastDelivery), sinkDriftOf(s.Drift)
		out.Body.Sinks = append(out.Body.Sinks, t)
	}
	return out, nil
}
