package ui

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/sink"
)

// The Sinks page: a picker for every sink kind that can list what its
// settings could be (sink.Discoverer, through app.DiscoverSink), ending in
// the `sinks:` block to paste into a policy in rotor.yaml (sinks other
// than an application's own Key Vault are configured there).
//
//	GET  /sinks                         the kinds: which settings each can list
//	GET  /sinks/{type}?connection=NAME&set=K=V…[&key=K]
//	                                    the kind's listable settings, one step
//	                                    each; the current one's choices as links;
//	                                    the settings so far; the snippet
//	POST /sinks/{type}                  add a typed setting (k, v) and 303 back:
//	                                    a POST, so a credential typed by mistake
//	                                    never lands in a URL (it is refused)
//	GET  /sinks/{type}/choices?key=K&…  the choices as <datalist id="sink-choices">,
//	                                    for the step's input (htmx, on focus)
//
// Settings travel as `rotor sinks discover --set` takes them (sinksyaml.go).
// Listing reaches out to the service, so it is the operator's (the
// application layer decides); the connection must be the organization's.

// sinkKindRow is one kind on the kinds page.
type sinkKindRow struct {
	Type string
	// Keys are its listable settings, in the order they are chosen.
	Keys []string
	URL  string
	Doc  string
	// Error is why its settings could not be asked for.
	Error string
}

type sinkKindsView struct {
	layout
	Kinds []sinkKindRow
	// Denied says the person's role may not list (the kinds are still
	// named).
	Denied string
}

// sinkStep is one listable setting of the kind.
type sinkStep struct {
	N   int
	Key string
	// List is whether several choices are kept (a list setting).
	List bool
	// Chosen are its values so far (as YAML).
	Chosen  []string
	Current bool
	// URL lists its choices (again).
	URL string
}

// sinkChoiceRow is one choice of the current step, with the link that
// chooses it.
type sinkChoiceRow struct {
	sink.Choice
	URL string
	// Chosen: a list setting holds it already (URL removes it).
	Chosen bool
}

// sinkSettingRow is one chosen setting with its remove link.
type sinkSettingRow struct {
	Key, Raw, RemoveURL string
}

// hiddenField carries the page's state through its forms.
type hiddenField struct{ Name, Value string }

type sinkPickView struct {
	layout
	Type string
	Doc  string
	// Keys are the kind's listable settings; none: it lists nothing.
	Keys        []string
	Connection  string
	Connections []app.Connection
	Settings    []sinkSettingRow
	Steps       []sinkStep
	Current     *sinkStep
	Choices     []sinkChoiceRow
	// ChoicesURL is the current step's datalist fragment.
	ChoicesURL string
	// Open are listable settings not chosen yet.
	Open []string
	// Hidden is the state every form carries (connection, sinkSettings).
	Hidden []hiddenField
	// Error is why the current step's choices could not be listed;
	// FormError why a setting was not taken. Rotor's words, never a
	// secret.
	Error, FormError string
	// FormKey is the refused setting's name, to type again (its value is
	// never echoed: it might be a pasted credential).
	FormKey string
	Snippet string
	// Denied: the role may not list; the page says so and offers nothing.
	Denied bool
}

// sinkDeniedText is what the pages say to a role that may not list.
const sinkDeniedText = "Your role does not allow this: listing a sink's choices reaches out to the service as the organization, which takes the operator role."

func (u *UI) sinkRoutes() {
	u.mux.HandleFunc("GET "+u.base+"/sinks", u.withScope(u.sinkKinds))
	u.mux.HandleFunc("GET "+u.base+"/sinks/{type}", u.withScope(u.sinkPick))
	u.mux.HandleFunc("POST "+u.base+"/sinks/{type}", u.withScope(u.sinkSet))
	u.mux.HandleFunc("GET "+u.base+"/sinks/{type}/choices", u.withScope(u.sinkChoices))
}

func sinkDoc(typ string) string {
	if typ == "keyvault" {
		return "docs/configuration.md (Key Vault)"
	}
	return "docs/sinks/" + typ + ".md"
}

// sinkKinds lists every registered kind and what it can list.
func (u *UI) sinkKinds(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	v := sinkKindsView{layout: u.frame(r, "sinks", "Sinks")}
	for _, typ := range u.sinkTypes {
		row := sinkKindRow{Type: typ, URL: u.base + "/sinks/" + url.PathEscape(typ), Doc: sinkDoc(typ)}
		if v.Denied == "" {
			res, err := u.app.DiscoverSink(r.Context(), scope, app.DiscoverSinkRequest{Type: typ})
			var denied *app.DeniedError
			switch {
			case errors.As(err, &denied):
				v.Denied = sinkDeniedText
			case err != nil:
				_, row.Error = u.sinkErrorText(r, "", err)
			default:
				row.Keys = res.Keys
			}
		}
		v.Kinds = append(v.Kinds, row)
	}
	u.render(w, r, http.StatusOK, "sinks", "layout.html", v)
}

// sinkType is the path's kind, if rotor has it.
func (u *UI) sinkType(w http.ResponseWriter, r *http.Request) (string, bool) {
	typ := r.PathValue("type")
	if !slices.Contains(u.sinkTypes, typ) {
		u.errorPage(w, r, http.StatusNotFound, "rotor has no sink kind "+typ+"; the kinds it has: "+strings.Join(u.sinkTypes, ", ")+".")
		return "", false
	}
	return typ, true
}

// sinkURL is the page of typ with conn and ss, listing key ("": the first
// one not chosen).
func (u *UI) sinkURL(typ, conn string, ss sinkSettings, key string) string {
	return u.base + "/sinks/" + url.PathEscape(typ) + "?" + ss.query(url.Values{"connection": {conn}, "key": {key}}).Encode()
}

// choose is ss with key set to s, for typ whose listable settings are
// keys: choosing a setting again forgets the listable ones after it (a
// Secret chosen in another namespace is not in this one).
func chooseSink(typ string, keys []string, ss sinkSettings, s sinkSetting) sinkSettings {
	if !isListKey(typ, s.Key) {
		if i := slices.Index(keys, s.Key); i >= 0 {
			for _, later := range keys[i+1:] {
				ss = ss.without(later, "")
			}
		}
	}
	return ss.with(s)
}

// sinkPick is a kind's page. A step's typed value arrives as k and v (a
// GET: a listable setting is never a credential) and is answered 303 to
// the page that holds it.
func (u *UI) sinkPick(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	typ, ok := u.sinkType(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	conn := strings.TrimSpace(q.Get("connection"))
	ss, err := parseSinkSettings(q)
	if err != nil {
		u.renderPick(w, r, scope, pickRequest{typ: typ, conn: conn, status: http.StatusBadRequest, formErr: err.Error()})
		return
	}
	if k := strings.TrimSpace(q.Get("k")); k != "" {
		if isCredentialKey(k) {
			// Said without the value, which is already in this URL: a
			// credential is added with the POST form only.
			u.renderPick(w, r, scope, pickRequest{typ: typ, conn: conn, ss: ss, status: http.StatusBadRequest, formKey: k,
				formErr: (&errNotReference{key: k}).Error() + ". Add credentials with the form below."})
			return
		}
		// A step's value is typed as it is, a name or a template, not
		// YAML: written back quoted where YAML needs it.
		val := strings.TrimSpace(q.Get("v"))
		s, err := newSinkSetting(k, yamlScalar(val))
		if err != nil || val == "" {
			msg := "type a value for " + k
			if err != nil {
				msg = err.Error()
			}
			u.renderPick(w, r, scope, pickRequest{typ: typ, conn: conn, ss: ss, status: http.StatusBadRequest, formKey: k, formErr: msg})
			return
		}
		keys, _ := u.sinkKeys(r, scope, typ)
		http.Redirect(w, r, u.sinkURL(typ, conn, chooseSink(typ, keys, ss, s), ""), http.StatusSeeOther)
		return
	}
	u.renderPick(w, r, scope, pickRequest{typ: typ, conn: conn, ss: ss, key: q.Get("key"), status: http.StatusOK})
}

// sinkSet adds the setting typed into the page's form and answers 303 to
// the page with it, or the page with why it was not taken (422).
func (u *UI) sinkSet(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	typ, ok := u.sinkType(w, r)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		u.errorPage(w, r, http.StatusBadRequest, "rotor could not read the form.")
		return
	}
	conn := strings.TrimSpace(r.PostForm.Get("connection"))
	ss, err := parseSinkSettings(r.PostForm)
	if err != nil {
		u.renderPick(w, r, scope, pickRequest{typ: typ, conn: conn, status: http.StatusUnprocessableEntity, formErr: err.Error()})
		return
	}
	k := strings.TrimSpace(r.PostForm.Get("k"))
	s, err := newSinkSetting(k, r.PostForm.Get("v"))
	if err != nil {
		u.renderPick(w, r, scope, pickRequest{typ: typ, conn: conn, ss: ss, status: http.StatusUnprocessableEntity, formKey: k, formErr: err.Error()})
		return
	}
	keys, _ := u.sinkKeys(r, scope, typ)
	http.Redirect(w, r, u.sinkURL(typ, conn, chooseSink(typ, keys, ss, s), ""), http.StatusSeeOther)
}

// sinkKeys are typ's listable settings, as the application layer says.
func (u *UI) sinkKeys(r *http.Request, scope app.Scope, typ string) ([]string, error) {
	res, err := u.app.DiscoverSink(r.Context(), scope, app.DiscoverSinkRequest{Type: typ})
	if err != nil {
		return nil, err
	}
	return res.Keys, nil
}

type pickRequest struct {
	typ, conn string
	ss        sinkSettings
	// key is the step asked for ("": the first not chosen).
	key     string
	status  int
	formErr string
	formKey string
}

// renderPick renders a kind's page: its steps, the current step's
// choices (one call to the service), the settings so far and the
// snippet.
func (u *UI) renderPick(w http.ResponseWriter, r *http.Request, scope app.Scope, p pickRequest) {
	v := sinkPickView{layout: u.frame(r, "sinks", "Sink "+p.typ), Type: p.typ, Doc: sinkDoc(p.typ), Connection: p.conn,
		FormError: p.formErr, FormKey: p.formKey}
	status := p.status
	keys, err := u.sinkKeys(r, scope, p.typ)
	var denied *app.DeniedError
	if errors.As(err, &denied) {
		v.Denied, v.Error = true, sinkDeniedText
		u.render(w, r, http.StatusForbidden, "sinks-kind", "layout.html", v)
		return
	}
	// The form's refusal is the answer's status; a listing's failure
	// is only when nothing else went wrong. A listing the settings do
	// not allow yet (one missing, a token refused: the application
	// layer's InvalidError) is no failure of the page, which says what
	// to set: 200, as a step of a form is.
	fail := func(key string, err error) {
		st, msg := u.sinkErrorText(r, key, err)
		v.Error = msg
		var invalid *app.InvalidError
		if status == http.StatusOK && !errors.As(err, &invalid) {
			status = st
		}
	}
	if err != nil {
		fail("", err)
	}
	v.Keys = keys
	if conns, err := u.app.ListConnections(r.Context(), scope); err == nil {
		v.Connections = conns
	} else {
		u.log.ErrorContext(r.Context(), "ui: sinks: list connections", "err", err)
	}
	v.Hidden = append(v.Hidden, hiddenField{"connection", p.conn})
	for _, s := range p.ss {
		v.Settings = append(v.Settings, sinkSettingRow{Key: s.Key, Raw: s.Raw, RemoveURL: u.sinkURL(p.typ, p.conn, p.ss.without(s.Key, s.Raw), "")})
		v.Hidden = append(v.Hidden, hiddenField{"set", s.Key + "=" + s.Raw})
	}
	current := ""
	if slices.Contains(keys, p.key) {
		current = p.key
	} else {
		for _, k := range keys {
			if !p.ss.has(k) {
				current = k
				break
			}
		}
	}
	for i, k := range keys {
		st := sinkStep{N: i + 1, Key: k, List: isListKey(p.typ, k), Chosen: p.ss.values(k), Current: k == current, URL: u.sinkURL(p.typ, p.conn, p.ss, k)}
		if len(st.Chosen) == 0 {
			v.Open = append(v.Open, k)
		}
		v.Steps = append(v.Steps, st)
	}
	for i := range v.Steps {
		if v.Steps[i].Current {
			v.Current = &v.Steps[i]
		}
	}
	_, spec := p.ss.spec(p.typ)
	if v.Current != nil && v.Error == "" {
		res, err := u.app.DiscoverSink(r.Context(), scope, app.DiscoverSinkRequest{Type: p.typ, Key: current, Connection: p.conn, Settings: spec})
		if err != nil {
			fail(current, err)
		} else {
			for _, c := range res.Choices {
				raw := yamlScalar(c.Value)
				row := sinkChoiceRow{Choice: c}
				if v.Current.List && slices.Contains(v.Current.Chosen, raw) {
					row.Chosen, row.URL = true, u.sinkURL(p.typ, p.conn, p.ss.without(current, raw), current)
				} else {
					next := ""
					if v.Current.List {
						next = current
					}
					row.URL = u.sinkURL(p.typ, p.conn, chooseSink(p.typ, keys, p.ss, sinkSetting{Key: current, Raw: raw, Item: c.Value}), next)
				}
				v.Choices = append(v.Choices, row)
			}
			v.ChoicesURL = u.base + "/sinks/" + url.PathEscape(p.typ) + "/choices?" + p.ss.query(url.Values{"connection": {p.conn}, "key": {current}}).Encode()
		}
	}
	if v.Snippet, err = sinkSnippet(p.typ, p.conn, p.ss); err != nil {
		u.log.ErrorContext(r.Context(), "ui: sinks: snippet", "err", err)
	}
	u.render(w, r, status, "sinks-kind", "layout.html", v)
}

// sinkChoices serves the current step's choices as a datalist.
func (u *UI) sinkChoices(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	typ, ok := u.sinkType(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	key := strings.TrimSpace(q.Get("key"))
	ss, err := parseSinkSettings(q)
	if err != nil {
		u.sinkFragmentError(w, r, key, &app.InvalidError{Field: "settings", Message: err.Error()})
		return
	}
	if key == "" {
		u.sinkFragmentError(w, r, key, &app.InvalidError{Field: "key", Message: "name the setting whose choices to list"})
		return
	}
	_, spec := ss.spec(typ)
	res, err := u.app.DiscoverSink(r.Context(), scope, app.DiscoverSinkRequest{Type: typ, Key: key, Connection: strings.TrimSpace(q.Get("connection")), Settings: spec})
	if err != nil {
		u.sinkFragmentError(w, r, key, err)
		return
	}
	u.render(w, r, http.StatusOK, "sinks-kind", "sink-choices", res)
}

// sinkErrorText is an error's status and the text the page shows: the
// application layer's own words for what the person can act on (a setting
// missing, a token refused, a connection not the organization's), only
// that listing failed otherwise (the error is logged).
func (u *UI) sinkErrorText(r *http.Request, key string, err error) (int, string) {
	status := app.HTTPStatus(err)
	var denied *app.DeniedError
	switch {
	case errors.As(err, &denied):
		return status, sinkDeniedText
	case status >= 500:
		u.log.ErrorContext(r.Context(), "ui: sink listing failed", "key", key, "err", err)
		what := "the choices"
		if key != "" {
			what = "the choices for " + key
		}
		return status, "rotor could not list " + what + ": the service did not answer as expected. Try again; the error is in rotor's log."
	}
	return status, err.Error()
}

// sinkFragmentError answers a fragment's failure with its status and the
// message as a paragraph (htmx swaps only 2xx answers, so the input keeps
// the list it has).
func (u *UI) sinkFragmentError(w http.ResponseWriter, r *http.Request, key string, err error) {
	status, msg := u.sinkErrorText(r, key, err)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<p class="sink-error" role="alert">` + template.HTMLEscapeString(msg) + "</p>\n"))
}
