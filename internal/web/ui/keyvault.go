package ui

import (
	"cmp"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/rotor-dev/rotor/internal/app"
)

// The Key Vault picker. The application page's vault and secret inputs
// (list="kv-vaults", list="kv-secrets") are filled from two fragments,
// each a <datalist> swapped in by htmx when the input is focused or
// changed:
//
//	GET /keyvault/vaults?connection=NAME           → <datalist id="kv-vaults">
//	GET /keyvault/secrets?connection=NAME&vault=URL → <datalist id="kv-secrets">
//
// and, for a browser without JavaScript, one page that lists the vaults
// as links and then the chosen vault's secrets: GET /keyvault?connection=
// NAME[&vault=URL]. Everything is read through the application layer,
// which lists only vaults the connection's identity sees and a vault's
// secrets only when it is one of them.

// kvView is the Key Vault page and its fragments.
type kvView struct {
	layout
	Connection  string
	Connections []app.Connection
	Vaults      []app.Vault
	// Vault is the chosen vault's URL; Chosen its entry in Vaults.
	Vault   string
	Chosen  *app.Vault
	Secrets []app.VaultSecret
	// Error is why a listing failed (rotor's words; never a secret).
	Error string
}

// VaultURL is the page's link to a vault's secrets.
func (v kvView) VaultURL(vault string) string {
	return v.Base + "/keyvault?" + url.Values{"connection": {v.Connection}, "vault": {vault}}.Encode()
}

// ConnectionURL is the page's link to a connection's vaults.
func (v kvView) ConnectionURL(conn string) string {
	return v.Base + "/keyvault?" + url.Values{"connection": {conn}}.Encode()
}

// SecretLabel is what the picker says of a secret: whether the Key Vault
// sink would write to it.
func SecretLabel(s app.VaultSecret) string {
	switch {
	case s.ManagedByRotor && s.AppID != "":
		return "managed by rotor for application " + s.AppID + " (rotor writes to it only for that application)"
	case s.ManagedByRotor:
		return "managed by rotor"
	}
	return "not rotor's: rotor will refuse to overwrite it unless the sink sets adopt: true"
}

// VaultLabel is a vault's option text: name (subscription/resource group).
func VaultLabel(v app.Vault) string {
	sub := v.Subscription
	if sub == "" {
		sub = v.SubscriptionID
	}
	return v.Name + " (" + sub + "/" + v.ResourceGroup + ")"
}

func (u *UI) kvFrame(r *http.Request) kvView {
	return kvView{layout: u.frame(r, "connections", "Key Vaults"), Connection: strings.TrimSpace(r.URL.Query().Get("connection"))}
}

// kvVaults serves the vault datalist of a connection.
func (u *UI) kvVaults(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	v := u.kvFrame(r)
	if v.Connection == "" {
		u.kvFragmentError(w, r, &app.InvalidError{Field: "connection", Message: "name the connection whose vaults to list"})
		return
	}
	vaults, err := u.app.ListVaults(r.Context(), scope, v.Connection)
	if err != nil {
		u.kvFragmentError(w, r, err)
		return
	}
	v.Vaults = vaults
	u.render(w, r, http.StatusOK, "keyvault", "kv-vaults", v)
}

// kvSecrets serves the secret datalist of a vault a connection sees.
func (u *UI) kvSecrets(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	v := u.kvFrame(r)
	// The application page's secret field sends the vault field with it
	// (hx-include), under its own name.
	v.Vault = strings.TrimSpace(cmp.Or(r.URL.Query().Get("vault"), r.URL.Query().Get("keyvault_url")))
	if v.Connection == "" {
		u.kvFragmentError(w, r, &app.InvalidError{Field: "connection", Message: "name the connection whose vault to list"})
		return
	}
	secrets, err := u.app.ListVaultSecrets(r.Context(), scope, v.Connection, v.Vault)
	if err != nil {
		u.kvFragmentError(w, r, err)
		return
	}
	v.Secrets = secrets
	u.render(w, r, http.StatusOK, "keyvault", "kv-secrets", v)
}

// kvPage is the picker as a page: the connections (none chosen), a
// connection's vaults, then a chosen vault's secrets.
func (u *UI) kvPage(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	v := u.kvFrame(r)
	v.Vault = strings.TrimSpace(r.URL.Query().Get("vault"))
	status := http.StatusOK
	if v.Connection == "" {
		conns, err := u.app.ListConnections(r.Context(), scope)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		v.Connections = conns
		u.render(w, r, status, "keyvault", "layout.html", v)
		return
	}
	vaults, err := u.app.ListVaults(r.Context(), scope, v.Connection)
	if err != nil {
		if status, v.Error = u.kvErrorText(r, err); status == http.StatusNotFound || status == http.StatusForbidden {
			u.fail(w, r, err)
			return
		}
		u.render(w, r, status, "keyvault", "layout.html", v)
		return
	}
	v.Vaults = vaults
	if v.Vault != "" {
		for i := range vaults {
			if strings.EqualFold(strings.TrimSuffix(vaults[i].URL, "/"), strings.TrimSuffix(v.Vault, "/")) {
				v.Chosen = &vaults[i]
			}
		}
		secrets, err := u.app.ListVaultSecrets(r.Context(), scope, v.Connection, v.Vault)
		if err != nil {
			status, v.Error = u.kvErrorText(r, err)
		}
		v.Secrets = secrets
	}
	u.render(w, r, status, "keyvault", "layout.html", v)
}

// kvErrorText is an error's status and the text the picker shows: the
// application layer's own words for what the person can act on (Azure's
// refusal says which right the identity lacks), only that it failed
// otherwise (the error is logged).
func (u *UI) kvErrorText(r *http.Request, err error) (int, string) {
	status := app.HTTPStatus(err)
	var denied *app.DeniedError
	switch {
	case errors.As(err, &denied):
		return status, "Your role does not allow this: listing vaults takes the operator role."
	case status >= 500:
		u.log.ErrorContext(r.Context(), "ui: key vault listing failed", "err", err)
		return status, "rotor could not list the vaults; the error is in rotor's log."
	}
	return status, err.Error()
}

// kvFragmentError answers a fragment's failure with its status and the
// message as a paragraph: htmx leaves the datalist as it was (it swaps
// only 2xx answers) and a page that asks may show the text.
func (u *UI) kvFragmentError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := u.kvErrorText(r, err)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<p class="kv-error" role="alert">` + template.HTMLEscapeString(msg) + "</p>\n"))
}
