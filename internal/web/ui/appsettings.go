package ui

import (
	"errors"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
)

// The application page's settings form: the application's own settings,
// layered over its policy (app.UpdateApplicationSettings). A number left
// empty inherits the policy's value (shown as the placeholder); a checkbox
// left as the policy has it inherits it too, so only what differs from
// the policy is set here.

// Form field names (stable: the browser tests fill them).
const (
	fieldEnabled     = "enabled"
	fieldNotify      = "notify"
	fieldLifetime    = "lifetime_days"
	fieldRenewBefore = "renew_before_hours"
	fieldOverlap     = "overlap_hours"
	fieldVaultURL    = "keyvault_url"
	fieldVaultSecret = "keyvault_secret"
)

// formField maps the application layer's field names to the form's.
var formField = map[string]string{
	"enabled": fieldEnabled, "notify": fieldNotify, "lifetime": fieldLifetime, "renew_before": fieldRenewBefore,
	"overlap": fieldOverlap, "keyvault_url": fieldVaultURL, "keyvault_secret": fieldVaultSecret,
}

// appSettingsView is the settings section of the application page.
type appSettingsView struct {
	*app.SettingsView
	// Action and TestAction are where the forms post.
	Action, TestAction string
	// Form holds each input's value: what is set, or what was posted
	// when the page comes back with an error.
	Form map[string]string
	// Enabled and Notify are the checkboxes' states.
	Enabled, Notify bool
	// Placeholder shows what an empty input inherits.
	Placeholder map[string]string
	// Errors are messages by form field; Error the first one.
	Errors map[string]string
	Saved  bool
	// Tests are the sinks' answers after the Test button.
	Tests *app.SinkTests
	// CSRFField is the page's form token field.
	CSRFField template.HTML
	// Base is the UI's base path (the vault picker's fragments).
	Base string
}

func (u *UI) newSettingsView(s *app.SettingsView, objectID string) appSettingsView {
	base := u.appURL(objectID)
	v := appSettingsView{SettingsView: s, Action: base + "/settings", TestAction: base + "/sinks/test", Base: u.base,
		Form: map[string]string{}, Placeholder: map[string]string{}, Errors: map[string]string{},
		Enabled: s.Enabled.Value == "true", Notify: s.Notify.Value == "true"}
	st := s.Stored
	if st.Lifetime != nil {
		v.Form[fieldLifetime] = days(*st.Lifetime)
	}
	if st.RenewBefore != nil {
		v.Form[fieldRenewBefore] = hours(*st.RenewBefore)
	}
	if st.Overlap != nil {
		v.Form[fieldOverlap] = hours(*st.Overlap)
	}
	if st.KeyVaultURL != nil {
		v.Form[fieldVaultURL] = *st.KeyVaultURL
	}
	if st.KeyVaultSecret != nil {
		v.Form[fieldVaultSecret] = *st.KeyVaultSecret
	}
	in := s.Inherited
	ph := func(field string, d *time.Duration, conv func(time.Duration) string) {
		if d != nil {
			v.Placeholder[field] = conv(*d)
		}
	}
	ph(fieldLifetime, in.Lifetime, days)
	ph(fieldRenewBefore, in.RenewBefore, hours)
	ph(fieldOverlap, in.Overlap, hours)
	// The vault's URL is shown as text, not as a placeholder: no
	// attribute of a page names another host (ui_test).
	if in.KeyVaultSecret != nil {
		v.Placeholder[fieldVaultSecret] = *in.KeyVaultSecret
	}
	return v
}

func days(d time.Duration) string  { return strconv.FormatFloat(d.Hours()/24, 'f', -1, 64) }
func hours(d time.Duration) string { return strconv.FormatFloat(d.Hours(), 'f', -1, 64) }

// parseSettings reads the form into the settings to set. Inputs left
// empty, and checkboxes left as the policy has them, inherit.
func parseSettings(r *http.Request, current *app.SettingsView) (app.ApplicationSettings, error) {
	var out app.ApplicationSettings
	num := func(field string, unit time.Duration, dst **time.Duration) error {
		s := strings.TrimSpace(r.PostFormValue(field))
		if s == "" {
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 10*365*24 {
			return &app.InvalidError{Field: field, Message: "must be a number"}
		}
		d := time.Duration(math.Round(f * float64(unit)))
		*dst = &d
		return nil
	}
	if err := num(fieldLifetime, 24*time.Hour, &out.Lifetime); err != nil {
		return out, err
	}
	if err := num(fieldRenewBefore, time.Hour, &out.RenewBefore); err != nil {
		return out, err
	}
	if err := num(fieldOverlap, time.Hour, &out.Overlap); err != nil {
		return out, err
	}
	check := func(field string, set app.Setting) *bool {
		on := r.PostFormValue(field) != ""
		switch {
		case current.Policy != "" && strconv.FormatBool(on) == set.Policy:
			return nil // as the policy has it: inherit
		case current.Policy == "" && set.Source != app.SourceApplication && !on:
			// No policy to inherit from: the box showed unchecked because
			// nothing is set, and left so it sets nothing (not "off",
			// which would disable the application once a policy selects it).
			return nil
		}
		return &on
	}
	out.Enabled = check(fieldEnabled, current.Enabled)
	out.Notify = check(fieldNotify, current.Notify)
	str := func(field string) *string {
		s := strings.TrimSpace(r.PostFormValue(field))
		if s == "" {
			return nil
		}
		return &s
	}
	out.KeyVaultURL, out.KeyVaultSecret = str(fieldVaultURL), str(fieldVaultSecret)
	return out, nil
}

// saveSettings takes the settings form: 303 back to the page with a
// confirmation, or the page again with 422 and the field's error.
func (u *UI) saveSettings(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	ref := r.PathValue("ref")
	current, err := u.app.GetApplicationSettings(r.Context(), scope, ref)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	in, err := parseSettings(r, current)
	if err == nil {
		_, err = u.app.UpdateApplicationSettings(r.Context(), scope, current.Application.ObjectID, in)
	}
	var invalid *app.InvalidError
	if errors.As(err, &invalid) {
		field := formField[invalid.Field]
		if field == "" {
			field = invalid.Field
		}
		u.applicationPage(w, r, scope, http.StatusUnprocessableEntity, func(v *appView) {
			for _, f := range []string{fieldLifetime, fieldRenewBefore, fieldOverlap, fieldVaultURL, fieldVaultSecret} {
				v.Settings.Form[f] = r.PostFormValue(f)
			}
			v.Settings.Enabled, v.Settings.Notify = r.PostFormValue(fieldEnabled) != "", r.PostFormValue(fieldNotify) != ""
			v.Settings.Errors[field] = invalid.Message
		})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, u.appURL(current.Application.ObjectID)+"?saved=1", http.StatusSeeOther)
}

// testSinks asks the application's sinks whether a delivery would work
// and shows their answers on the page. It changes nothing, so the answer
// is the page itself rather than a redirect.
func (u *UI) testSinks(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	res, err := u.app.TestSinks(r.Context(), scope, r.PathValue("ref"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.applicationPage(w, r, scope, http.StatusOK, func(v *appView) { v.Settings.Tests = res })
}
