package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
)

// PageSize is how many applications one list page shows.
const PageSize = 50

// expiringChoices are the "expiring within" filter's values, in days:
// the dashboard's windows, whose counts link to the list filtered so.
var expiringChoices = app.ExpiryWindows

// listQuery is the applications list's query string, parsed: what the
// form shows and what every link carries on.
type listQuery struct {
	Prefix     string
	Connection string
	Manageable bool
	// Expiring is 0 or one of expiringChoices (days).
	Expiring int
	Sort     app.ApplicationSort
	Cursor   string
}

func parseListQuery(v url.Values) (listQuery, error) {
	q := listQuery{Prefix: v.Get("q"), Connection: v.Get("connection"), Cursor: v.Get("cursor"), Sort: app.SortByName}
	switch m := v.Get("manageable"); m {
	case "", "0":
	case "1":
		q.Manageable = true
	default:
		return q, &app.InvalidError{Field: "manageable", Message: "must be 1 or absent"}
	}
	if e := v.Get("expiring"); e != "" {
		n, err := strconv.Atoi(e)
		if err != nil || !slices.Contains(expiringChoices, n) || strconv.Itoa(n) != e {
			return q, &app.InvalidError{Field: "expiring", Message: "must be 7, 30 or 90 (days)"}
		}
		q.Expiring = n
	}
	switch s := v.Get("sort"); s {
	case "", "name":
	case "expiry":
		q.Sort = app.SortByExpiry
	default:
		return q, &app.InvalidError{Field: "sort", Message: "must be name or expiry"}
	}
	return q, nil
}

// values is q as a query string, with cursor (none when empty).
func (q listQuery) values(cursor string) url.Values {
	v := url.Values{}
	if q.Prefix != "" {
		v.Set("q", q.Prefix)
	}
	if q.Connection != "" {
		v.Set("connection", q.Connection)
	}
	if q.Manageable {
		v.Set("manageable", "1")
	}
	if q.Expiring != 0 {
		v.Set("expiring", fmt.Sprint(q.Expiring))
	}
	if q.Sort != app.SortByName {
		v.Set("sort", string(q.Sort))
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	return v
}

func (q listQuery) filter() app.ApplicationFilter {
	return app.ApplicationFilter{
		NamePrefix: q.Prefix, Connection: q.Connection, ManageableOnly: q.Manageable,
		ExpiringWithin: time.Duration(q.Expiring) * 24 * time.Hour,
	}
}

type listView struct {
	layout
	Query       listQuery
	Connections []string
	Expiring    []int
	Rows        []rowView
	Now         time.Time
	// NextURL is the next page's link; FirstURL the first page's when
	// this is a later one.
	NextURL  string
	FirstURL string
}

type rowView struct {
	app.ApplicationRow
	URL string
}

func (u *UI) listURL(v url.Values) string {
	s := u.base + "/applications"
	if len(v) > 0 {
		s += "?" + v.Encode()
	}
	return s
}

func (u *UI) appURL(objectID string) string {
	return u.base + "/applications/" + url.PathEscape(objectID)
}

// applications is the list: a search by name prefix, filters and a sort,
// one keyset page at a time. htmx asks for the results block only.
func (u *UI) applications(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	q, err := parseListQuery(r.URL.Query())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	page, err := u.app.ListApplicationsPage(r.Context(), scope, q.filter(), app.ApplicationPageRequest{Sort: q.Sort, Cursor: q.Cursor, Limit: PageSize})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := listView{layout: u.frame(r, "applications", "Applications"), Query: q, Expiring: expiringChoices, Now: u.clock.Now(), Rows: make([]rowView, 0, len(page.Rows))}
	for _, row := range page.Rows {
		v.Rows = append(v.Rows, rowView{ApplicationRow: row, URL: u.appURL(row.ObjectID)})
	}
	if page.Next != "" {
		v.NextURL = u.listURL(q.values(page.Next))
	}
	if q.Cursor != "" {
		v.FirstURL = u.listURL(q.values(""))
	}
	if fragment(r) {
		u.render(w, r, http.StatusOK, "applications", "results", v)
		return
	}
	conns, err := u.app.ListConnections(r.Context(), scope)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, c := range conns {
		v.Connections = append(v.Connections, c.Name)
	}
	u.render(w, r, http.StatusOK, "applications", "layout.html", v)
}

// RecentRuns is how many runs the application page lists.
const RecentRuns = 10

type appView struct {
	layout
	Ex      *app.Explanation
	Runs    []app.RunRow
	Now     time.Time
	ListURL string
	// LastSecret is the newest start among the application's client
	// secrets ("secret last updated"); zero without one.
	LastSecret time.Time
	// Settings is the application's settings section (settings.go).
	Settings appSettingsView
	// PolicyRow is the governing policy (nil without one): what kind of
	// credential it makes, and for a certificate how.
	PolicyRow *app.PolicyRow
}

// PrivateKeyAdvice is what the "private key unknown" flag means and what
// to do about it.
func (appView) PrivateKeyAdvice() string { return app.PrivateKeyUnknownAdvice }

// application is one application: its ids, credentials (hints only, as
// Entra shows them), the planner's chain of checks, its settings, its
// recent runs.
func (u *UI) application(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	u.applicationPage(w, r, scope, http.StatusOK, func(v *appView) { v.Settings.Saved = r.URL.Query().Get("saved") == "1" })
}

// applicationPage renders the application page with status; tweak, when
// set, adds what a POST found (a form's errors, sink tests).
func (u *UI) applicationPage(w http.ResponseWriter, r *http.Request, scope app.Scope, status int, tweak func(*appView)) {
	ref := r.PathValue("ref")
	ex, err := u.app.Explain(r.Context(), scope, ref)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	runs, err := u.app.ListRuns(r.Context(), scope, app.RunFilter{App: ex.Application.ObjectID, Limit: RecentRuns})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	set, err := u.app.GetApplicationSettings(r.Context(), scope, ex.Application.ObjectID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := appView{
		layout: u.frame(r, "applications", ex.Application.Name), Ex: ex, Runs: runs, Now: ex.At, ListURL: u.listURL(nil),
		Settings: u.newSettingsView(set, ex.Application.ObjectID),
	}
	v.Settings.CSRFField = v.CSRF
	if ex.Policy != "" {
		if v.PolicyRow, err = u.app.GetPolicy(r.Context(), scope, ex.Policy); err != nil {
			u.fail(w, r, err)
			return
		}
	}
	for _, c := range ex.Application.Credentials {
		if c.Kind == domain.KindSecret && c.Start.After(v.LastSecret) {
			v.LastSecret = c.Start
		}
	}
	if tweak != nil {
		tweak(&v)
	}
	u.render(w, r, status, "application", "layout.html", v)
}

// fmtDate is how pages show an instant: UTC to the minute.
func fmtDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// expiry says how far t is from now in whole days, for people: "in 12
// days", "today", "expired 3 days ago".
func expiry(t, now time.Time) string {
	if t.IsZero() {
		return "no credentials"
	}
	d := t.Sub(now)
	days := int(d / (24 * time.Hour))
	switch {
	case d < 0 && days == 0:
		return "expired today"
	case d < 0:
		return fmt.Sprintf("expired %d %s ago", -days, plural(-days, "day"))
	case days == 0:
		return "expires today"
	}
	return fmt.Sprintf("in %d %s", days, plural(days, "day"))
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
