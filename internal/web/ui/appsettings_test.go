package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/web/csrf"
	"github.com/rotor-dev/rotor/internal/web/ui"
)

// settingsRig is the UI as serve mounts it for a signed-in person: the
// CSRF protector in front, and the request's principal (an operator or,
// with X-Test-Role: viewer, a viewer) in its context, so the application
// layer's roles decide.
type settingsRig struct {
	*bundle
	url    string
	client *http.Client
}

func newSettingsRig(t *testing.T) *settingsRig {
	b := setup(t)
	org := b.scope.Org
	principal := func(r *http.Request) *auth.Principal {
		role, id := app.RoleOperator, "u-operator"
		if r.Header.Get("X-Test-Role") == "viewer" {
			role, id = app.RoleViewer, "u-viewer"
		}
		return &auth.Principal{Actor: app.Actor{Kind: app.ActorUser, ID: id}, Method: auth.MethodSession, Roles: map[domain.OrgID]app.Role{org: role}}
	}
	h := ui.New(ui.Deps{
		App: b.app, Logger: slog.New(slog.DiscardHandler), Clock: b.srv.Clock(), CSRFField: csrf.Field,
		Scope: func(r *http.Request) (app.Scope, bool) {
			p, _ := auth.FromContext(r.Context())
			return p.Scope(org, ""), true
		},
	})
	withPrincipal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), principal(r))))
	})
	hs := httptest.NewServer(csrf.New(csrf.Options{Insecure: true}).Handler(withPrincipal))
	t.Cleanup(hs.Close)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &settingsRig{bundle: b, url: hs.URL, client: c}
}

// tokenField (runs_test.go) finds a form's CSRF token.

func (s *settingsRig) do(t *testing.T, method, path string, form url.Values, role string) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.url+path, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if role != "" {
		req.Header.Set("X-Test-Role", role)
	}
	res, err := s.client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{status: res.StatusCode, header: res.Header, body: string(data)}
}

// token is the form token of the page at path, as a browser gets it.
func (s *settingsRig) token(t *testing.T, path string) string {
	t.Helper()
	res := s.do(t, http.MethodGet, path, nil, "")
	require.Equal(t, http.StatusOK, res.status, res.body)
	m := tokenField.FindStringSubmatch(res.body)
	require.NotNil(t, m, "the form carries the CSRF field")
	return m[1]
}

func TestApplicationSettingsForm(t *testing.T) {
	t.Parallel()
	s := newSettingsRig(t)
	page := "/applications/" + url.PathEscape(s.runApp)
	ctx := context.Background()

	res := s.do(t, http.MethodGet, page, nil, "")
	require.Equal(t, http.StatusOK, res.status, res.body)
	for _, want := range []string{`<form id="settings" method="post" action="/applications/` + s.runApp + `/settings">`,
		`name="lifetime_days"`, `name="renew_before_hours"`, `name="overlap_hours"`, `name="enabled"`, `name="notify"`,
		`name="keyvault_url" list="kv-vaults"`, `name="keyvault_secret" list="kv-secrets"`, `<datalist id="kv-vaults"></datalist>`, `<datalist id="kv-secrets"></datalist>`,
		`id="save-settings"`, `id="test-sinks"`, `<details id="owners">`, "Secret last updated", "inherited from policy", `placeholder="30"`} {
		require.Contains(t, res.body, want)
	}
	require.NotContains(t, res.body, `id="settings-saved"`)
	require.NotContains(t, res.body, "style=")

	t.Run("SaveWithTheFormToken", func(t *testing.T) {
		form := url.Values{"csrf_token": {s.token(t, page)}, "enabled": {"1"}, "notify": {"1"},
			"lifetime_days": {"20"}, "renew_before_hours": {"48"}, "overlap_hours": {"2"}}
		res := s.do(t, http.MethodPost, page+"/settings", form, "")
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		require.Equal(t, "/applications/"+s.runApp+"?saved=1", res.header.Get("Location"))

		got, err := s.app.GetApplicationSettings(ctx, s.scope, s.runApp)
		require.NoError(t, err)
		require.Equal(t, app.Setting{Value: "20d", Source: app.SourceApplication, Policy: "30d"}, got.Lifetime)
		require.Equal(t, "2d", got.RenewBefore.Value, "48h, spelt as the configuration spells it")
		require.Equal(t, "2h", got.Overlap.Value)
		require.Equal(t, app.SourcePolicy, got.Enabled.Source, "a box left as the policy has it inherits")
		require.Equal(t, "user:u-operator", got.UpdatedBy)

		back := s.do(t, http.MethodGet, res.header.Get("Location"), nil, "")
		require.Contains(t, back.body, `id="settings-saved"`)
		require.Contains(t, back.body, `value="20"`)
		require.Contains(t, back.body, "set here; policy says 30d")
		require.Contains(t, back.body, "lifetime 20d (this application&#39;s setting; policy says 30d)", "explain's chain says it")
	})
	t.Run("NoTokenIsRefused", func(t *testing.T) {
		res := s.do(t, http.MethodPost, page+"/settings", url.Values{"lifetime_days": {"5"}}, "")
		require.Equal(t, http.StatusForbidden, res.status)
		got, err := s.app.GetApplicationSettings(ctx, s.scope, s.runApp)
		require.NoError(t, err)
		require.NotEqual(t, "5d", got.Lifetime.Value)
	})
	t.Run("BadInputIs422WithTheFieldsError", func(t *testing.T) {
		for field, form := range map[string]url.Values{
			"lifetime_days":      {"lifetime_days": {"soon"}},
			"renew_before_hours": {"lifetime_days": {"2"}, "renew_before_hours": {"72"}},
			"overlap_hours":      {"overlap_hours": {"1000"}},
			"keyvault_url":       {"keyvault_url": {"http://kv.example/"}},
		} {
			form.Set("csrf_token", s.token(t, page))
			res := s.do(t, http.MethodPost, page+"/settings", form, "")
			require.Equal(t, http.StatusUnprocessableEntity, res.status, field)
			require.Contains(t, res.body, `id="error-`+field+`"`, field)
			require.Contains(t, res.body, `<form id="settings"`, "the form again, with what was posted")
			require.Contains(t, res.body, `value="`+form.Get(field)+`"`, field)
		}
		got, err := s.app.GetApplicationSettings(ctx, s.scope, s.runApp)
		require.NoError(t, err)
		require.Equal(t, "20d", got.Lifetime.Value, "nothing bad was saved")
	})
	t.Run("ViewerSeesValuesWithoutAForm", func(t *testing.T) {
		res := s.do(t, http.MethodGet, page, nil, "viewer")
		require.Equal(t, http.StatusOK, res.status, res.body)
		require.NotContains(t, res.body, `<form id="settings"`)
		require.NotContains(t, res.body, `id="test-sinks"`)
		require.Contains(t, res.body, `id="settings-readonly"`)
		require.Contains(t, res.body, "20d")
		tok := tokenField.FindStringSubmatch(res.body)
		var form url.Values
		if tok != nil {
			form = url.Values{"csrf_token": {tok[1]}, "lifetime_days": {"9"}}
		} else {
			form = url.Values{"csrf_token": {s.token(t, page)}, "lifetime_days": {"9"}}
		}
		res = s.do(t, http.MethodPost, page+"/settings", form, "viewer")
		require.Equal(t, http.StatusForbidden, res.status, "the application layer refuses a viewer")
		res = s.do(t, http.MethodPost, page+"/sinks/test", url.Values{"csrf_token": form["csrf_token"]}, "viewer")
		require.Equal(t, http.StatusForbidden, res.status)
	})
	t.Run("TestSinksShowsEachAnswer", func(t *testing.T) {
		res := s.do(t, http.MethodPost, page+"/sinks/test", url.Values{"csrf_token": {s.token(t, page)}}, "")
		require.Equal(t, http.StatusOK, res.status, res.body)
		require.Contains(t, res.body, `id="sink-results"`)
		tests, err := s.app.TestSinks(ctx, s.scope, s.runApp)
		require.NoError(t, err)
		require.NotEmpty(t, tests.Sinks, "the demo policy delivers to Key Vault")
		for _, st := range tests.Sinks {
			require.Contains(t, res.body, `<td class="status">`+string(st.Status)+`</td>`)
		}
	})
}

// An application no policy selects shows its boxes unchecked because
// nothing is set: saving another field with them left so sets neither
// (it does not turn rotation off for when a policy selects it), while a
// box checked there is set.
func TestSettingsFormWithoutAPolicySetsOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	s := newSettingsRig(t)
	ctx := context.Background()
	rows, err := s.app.ListApplications(ctx, s.scope, app.ApplicationFilter{})
	require.NoError(t, err)
	ref := ""
	for _, row := range rows {
		if v, err := s.app.GetApplicationSettings(ctx, s.scope, row.ObjectID); err == nil && v.Policy == "" {
			ref = row.ObjectID
			break
		}
	}
	require.NotEmpty(t, ref, "the rig has an application no policy selects")
	page := "/applications/" + url.PathEscape(ref)
	res := s.do(t, http.MethodPost, page+"/settings", url.Values{csrf.FieldName: {s.token(t, page)}, "lifetime_days": {"60"}}, "")
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	v, err := s.app.GetApplicationSettings(ctx, s.scope, ref)
	require.NoError(t, err)
	require.NotNil(t, v.Stored.Lifetime)
	require.Nil(t, v.Stored.Enabled, "unchecked and unset: not set to off")
	require.Nil(t, v.Stored.Notify)

	res = s.do(t, http.MethodPost, page+"/settings", url.Values{csrf.FieldName: {s.token(t, page)}, "lifetime_days": {"60"}, "notify": {"1"}}, "")
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	v, err = s.app.GetApplicationSettings(ctx, s.scope, ref)
	require.NoError(t, err)
	require.NotNil(t, v.Stored.Notify)
	require.True(t, *v.Stored.Notify, "a box checked is set")
}
