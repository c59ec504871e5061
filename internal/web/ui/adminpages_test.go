package ui_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"html"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/web/breakglass"
	"github.com/rotor-dev/rotor/internal/web/ui"
)

// otherOrg is a second organization in the same store: nothing of it may
// show on the first organization's pages.
const otherOrg domain.OrgID = "other-org"

// csrfField is the token field the admin pages' UI renders in every form.
const csrfField = `<input type="hidden" name="csrf" value="test-token">`

// adminBundle is the ui tests' bundle (a synced, rotated demo rotor) with
// a second organization holding a connection, an audit record and an API
// key of its own, and a UI whose requests act as a person with the role
// the X-Test-Role header names, held to it by rotor's own Authorizer.
type adminBundle struct {
	*bundle
	org       domain.OrgID
	url       string
	client    *http.Client // does not follow redirects
	otherConn string
	otherKey  string
	mappings  []ui.RoleMapping
}

func person(role string) app.Actor {
	return app.Actor{Kind: app.ActorUser, ID: role + "-oid", Name: role + "@contoso.example"}
}

func setupAdmin(t *testing.T) *adminBundle {
	t.Helper()
	b := &adminBundle{bundle: setup(t)}
	b.org = b.scope.Org
	ctx := context.Background()
	st := b.srv.Store()

	// The other organization: a copy of one of ours' connections, a record
	// in its trail, and an API key.
	conns, err := st.ListConnections(ctx, b.org)
	require.NoError(t, err)
	require.NotEmpty(t, conns)
	c := conns[0]
	c.Org, c.Name, c.Provisioned, c.Source = otherOrg, "other-secret-conn", true, "test"
	_, err = st.Provision(ctx, store.ProvisionParams{Org: otherOrg, Name: "Other", Source: "test", Connections: []store.Connection{c}})
	require.NoError(t, err)
	b.otherConn = c.Name
	_, err = st.AppendAudit(ctx, audit.Record{Org: otherOrg, Actor: audit.Actor{Kind: audit.ActorUser, ID: "intruder-oid", Name: "intruder@other.example"},
		Action: "rotate", Object: "application:other-secret-app", Outcome: audit.OutcomeOK})
	require.NoError(t, err)
	key, err := b.app.CreateAPIKey(ctx, app.Scope{Org: otherOrg, Actor: app.CLI}, app.NewAPIKey{Name: "other-secret-key", Role: app.RoleAdmin})
	require.NoError(t, err)
	b.otherKey = key.ID

	b.mappings = []ui.RoleMapping{
		{AppRole: "Rotor.Admin", Organization: string(b.org), Role: app.RoleAdmin},
		{Group: "0b6f7a4e-0000-4000-8000-000000000001", Organization: string(b.org), Role: app.RoleViewer},
		{AppRole: "Other.Secret.Role", Organization: string(otherOrg), Role: app.RoleAdmin},
	}
	h := ui.New(ui.Deps{
		App: b.app, Logger: slog.New(slog.DiscardHandler), Clock: b.srv.Clock(), RoleMappings: b.mappings, SinkTypes: b.srv.SinkTypes(),
		Scope: func(r *http.Request) (app.Scope, bool) {
			role := r.Header.Get("X-Test-Role")
			if role == "" {
				return app.Scope{}, false
			}
			return app.Scope{Org: b.org, Actor: person(role), RequestID: "req-" + role}, true
		},
		Who: func(r *http.Request) (ui.Who, bool) {
			role := r.Header.Get("X-Test-Role")
			a := person(role)
			return ui.Who{Name: a.Name, Actor: a.String(), Role: app.Role(role), Org: string(b.org)}, role != ""
		},
		LogoutPath: "/logout",
		CSRFField:  func(*http.Request) template.HTML { return csrfField },
	})
	// As session's middleware does: the principal, with its role in the
	// organization, in the request's context.
	withPrincipal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if role := r.Header.Get("X-Test-Role"); role != "" {
			r = r.WithContext(auth.WithPrincipal(r.Context(), &auth.Principal{
				Actor: person(role), Method: auth.MethodSession, Roles: map[domain.OrgID]app.Role{b.org: app.Role(role)},
			}))
		}
		h.ServeHTTP(w, r)
	})
	hs := httptest.NewServer(withPrincipal)
	t.Cleanup(hs.Close)
	b.url = hs.URL
	b.client = hs.Client()
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return b
}

// do sends a request as role ("" for no one signed in).
func (b *adminBundle) do(method, path, role string, form url.Values, header ...string) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.url+path, body)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if role != "" {
		req.Header.Set("X-Test-Role", role)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return response{status: res.StatusCode, header: res.Header, body: string(out)}
}

func (b *adminBundle) page(path, role string) string {
	b.t.Helper()
	res := b.do(http.MethodGet, path, role, nil)
	require.Equal(b.t, http.StatusOK, res.status, "%s as %s: %s", path, role, res.body)
	return res.body
}

var (
	auditRowRe = regexp.MustCompile(`<tr class="audit-row outcome-([a-z]+)" data-action="([^"]*)" data-actor="([^"]*)" data-seq="(\d+)">`)
	// olderLink (runs_test.go) finds a page's "Older" link.
)

type shownRecord struct {
	seq                    int64
	outcome, action, actor string
}

func auditRows(t *testing.T, body string) []shownRecord {
	t.Helper()
	out := []shownRecord{}
	for _, m := range auditRowRe.FindAllStringSubmatch(body, -1) {
		seq, err := strconv.ParseInt(m[4], 10, 64)
		require.NoError(t, err)
		out = append(out, shownRecord{seq: seq, outcome: m[1], action: html.UnescapeString(m[2]), actor: html.UnescapeString(m[3])})
	}
	return out
}

// walkAudit follows the Older links from path to the end.
func (b *adminBundle) walkAudit(path, role string) []shownRecord {
	b.t.Helper()
	all := []shownRecord{}
	for range 1000 {
		body := b.page(path, role)
		all = append(all, auditRows(b.t, body)...)
		m := olderLink.FindStringSubmatch(body)
		if m == nil {
			return all
		}
		path = html.UnescapeString(m[1])
	}
	b.t.Fatal("paging does not end")
	return nil
}

func (b *adminBundle) trail(f app.AuditFilter) []audit.Record {
	b.t.Helper()
	f.Limit = app.MaxAuditLimit
	recs, err := b.app.AuditList(context.Background(), b.scope, f)
	require.NoError(b.t, err)
	return recs
}

func seqsOf(rs []shownRecord) []int64 {
	out := make([]int64, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.seq)
	}
	return out
}

func TestAuditPage(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	// A viewer's forced API key creation: refused, and a denied record.
	require.Equal(t, http.StatusForbidden, b.do(http.MethodPost, "/settings/api-keys", "viewer", url.Values{"name": {"x"}, "role": {"admin"}}).status)
	// More than a page: people syncing.
	for i := range ui.AuditPageSize + 10 {
		_, err := b.srv.Store().AppendAudit(context.Background(), audit.Record{
			Org: b.org, At: b.srv.Clock().Now(), Actor: audit.Actor{Kind: audit.ActorUser, ID: "bulk-oid-" + strconv.Itoa(i%3), Name: "bulk@contoso.example"},
			Action: "sync", Object: "inventory", Outcome: audit.OutcomeOK,
		})
		require.NoError(t, err)
	}

	all := b.trail(app.AuditFilter{})
	require.Greater(t, len(all), ui.AuditPageSize, "the sync and rotation left more than a page")

	t.Run("EveryRecordNewestFirstAcrossPages", func(t *testing.T) {
		body := b.page("/audit", "viewer")
		require.Contains(t, body, `<table id="audit"`)
		require.Contains(t, body, `<form id="audit-filter"`)
		require.Contains(t, body, `id="verify-audit"`)
		require.Len(t, auditRows(t, body), ui.AuditPageSize)
		got := b.walkAudit("/audit", "viewer")
		want := []int64{}
		for i := len(all) - 1; i >= 0; i-- {
			want = append(want, all[i].Seq)
		}
		require.Equal(t, want, seqsOf(got), "newest first; the Older links neither skip nor repeat")
		newest := all[len(all)-1]
		require.Equal(t, shownRecord{seq: newest.Seq, outcome: newest.Outcome, action: newest.Action, actor: newest.Actor.String()}, got[0])
	})
	t.Run("RowShowsTheRecord", func(t *testing.T) {
		var rot audit.Record
		for _, r := range all {
			if r.Action == string(app.ActionRotate) {
				rot = r
			}
		}
		require.NotZero(t, rot.Seq, "the setup's rotation was recorded")
		body := b.page("/audit?action=rotate", "viewer")
		require.Contains(t, body, `data-seq="`+strconv.FormatInt(rot.Seq, 10)+`"`)
		require.Contains(t, body, html.EscapeString(rot.Object))
		kind, ref, _ := strings.Cut(rot.Object, ":")
		require.Equal(t, "application", kind)
		require.Contains(t, body, `<a href="/applications/`+url.PathEscape(ref)+`">`, "the application links to its page")
		require.NotEmpty(t, rot.Runs)
		for _, id := range rot.Runs {
			require.Contains(t, body, `<a class="run" href="/runs/`+id+`">run `+id+`</a>`, "the runs it started link to theirs")
		}
		steps := b.page("/audit?action="+audit.ActionRotationStep, "viewer")
		require.Regexp(t, `<a class="run" href="/runs/[^"]+">run `, steps, "a rotation step links to its run")
		denied := b.page("/audit?outcome=denied", "viewer")
		rows := auditRows(t, denied)
		require.NotEmpty(t, rows)
		require.Equal(t, person("viewer").String(), rows[0].actor)
		require.Contains(t, denied, "req-viewer", "the request id")
		require.Contains(t, denied, "viewer@contoso.example", "the actor's name")
		require.Contains(t, denied, ">denied</td>", "the error class")
	})
	t.Run("Filters", func(t *testing.T) {
		today := b.srv.Clock().Now().UTC().Format("2006-01-02")
		yesterday := b.srv.Clock().Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
		for name, c := range map[string]struct {
			query string
			keep  func(audit.Record) bool
		}{
			"Action":         {"action=rotate", func(r audit.Record) bool { return r.Action == "rotate" }},
			"Outcome":        {"outcome=denied", func(r audit.Record) bool { return r.Outcome == "denied" }},
			"ActorNamePart":  {"actor=VIEWER%40contoso", func(r audit.Record) bool { return r.Actor.Name == "viewer@contoso.example" }},
			"ActorKindAndID": {"actor=" + url.QueryEscape(app.CLI.String()), func(r audit.Record) bool { return r.Actor.String() == app.CLI.String() }},
			"ActorIDPart": {"actor=rot", func(r audit.Record) bool {
				return strings.Contains(r.Actor.ID, "rot") || strings.Contains(r.Actor.Name, "rot")
			}},
			"Object":          {"object=" + url.QueryEscape(app.ApplicationObject(b.runApp)), func(r audit.Record) bool { return r.Object == app.ApplicationObject(b.runApp) }},
			"FromToday":       {"from=" + today, func(audit.Record) bool { return true }},
			"UntilYesterday":  {"to=" + yesterday, func(audit.Record) bool { return false }},
			"TodayOnly":       {"from=" + today + "&to=" + today, func(audit.Record) bool { return true }},
			"Combined":        {"action=rotate&outcome=denied", func(audit.Record) bool { return false }},
			"NothingMatching": {"action=no-such-action", func(audit.Record) bool { return false }},
		} {
			want := []int64{}
			for i := len(all) - 1; i >= 0; i-- {
				if c.keep(all[i]) {
					want = append(want, all[i].Seq)
				}
			}
			require.Equal(t, want, seqsOf(b.walkAudit("/audit?"+c.query, "viewer")), name)
		}
		require.NotEmpty(t, seqsOf(b.walkAudit("/audit?actor=rot", "viewer")), "rotor's own steps")
		require.Contains(t, b.page("/audit?action=no-such-action", "viewer"), "No audit records match.")
		// The form shows what it filters by, escaped.
		body := b.page("/audit?actor="+url.QueryEscape(`"><b>x</b>`)+"&outcome=failed&from="+today, "viewer")
		require.NotContains(t, body, "<b>x</b>")
		require.Contains(t, body, `value="&#34;&gt;&lt;b&gt;x&lt;/b&gt;"`)
		require.Contains(t, body, `<option value="failed" selected>`)
		require.Contains(t, body, `name="from" value="`+today+`"`)
	})
	t.Run("BadQueries", func(t *testing.T) {
		for _, q := range []string{"from=yesterday", "to=2030-13-01", "before=x", "before=-1", "outcome=maybe", "from=2030-01-02&to=2030-01-01"} {
			res := b.do(http.MethodGet, "/audit?"+q, "viewer", nil)
			require.Equal(t, http.StatusBadRequest, res.status, q)
		}
	})
	t.Run("HtmxGetsTheResultsOnly", func(t *testing.T) {
		part := b.do(http.MethodGet, "/audit?action=rotate", "viewer", nil, "HX-Request", "true")
		require.Equal(t, http.StatusOK, part.status)
		require.NotContains(t, part.body, "<html")
		require.Contains(t, part.body, `<table id="audit"`)
		require.Equal(t, auditRows(t, b.page("/audit?action=rotate", "viewer")), auditRows(t, part.body))
	})
	t.Run("VerifyChain", func(t *testing.T) {
		res, err := b.app.AuditVerify(context.Background(), b.scope, app.AuditVerifyOptions{})
		require.NoError(t, err)
		require.True(t, res.Intact)
		plain := b.page("/audit", "viewer")
		require.NotContains(t, plain, `id="audit-verify-result"`, "verifying is asked for")
		require.Regexp(t, `<form method="get" action="/audit"[^>]*>\s*<input type="hidden" name="verify" value="1">\s*<button type="submit" id="verify-audit">`, plain)
		body := b.page("/audit?verify=1&action=rotate", "viewer")
		require.Contains(t, body, `<div id="audit-verify-result" class="ok">`)
		require.Contains(t, body, "Intact.")
		require.Contains(t, body, res.Head.String())
		require.NotEmpty(t, auditRows(t, body), "the filtered list is still shown")
		// The button keeps the filters.
		filtered := b.page("/audit?action=rotate", "viewer")
		require.Regexp(t, `<input type="hidden" name="action" value="rotate">\s*<input type="hidden" name="verify" value="1">`, filtered)
	})
	t.Run("Export", func(t *testing.T) {
		body := b.page("/audit", "viewer")
		require.Contains(t, body, `id="audit-export" href="/audit/export"`)
		res := b.do(http.MethodGet, "/audit/export", "viewer", nil)
		require.Equal(t, http.StatusOK, res.status)
		require.Equal(t, "application/jsonl; charset=utf-8", res.header.Get("Content-Type"))
		require.Contains(t, res.header.Get("Content-Disposition"), "attachment")
		require.Equal(t, "no-store", res.header.Get("Cache-Control"))
		// Exactly the records, oldest first, as 'rotor audit export'
		// writes them: each line checks against the chain.
		got := readJSONLines(t, res.body)
		now := b.trail(app.AuditFilter{})
		require.Equal(t, now[:len(got)], got)
		require.GreaterOrEqual(t, len(got), len(all))
		var prev audit.Hash
		for _, r := range got {
			require.Equal(t, audit.Link(prev, r), r.Hash)
			prev = r.Hash
		}
		filtered := readJSONLines(t, b.do(http.MethodGet, "/audit/export?action=rotate", "viewer", nil).body)
		require.NotEmpty(t, filtered)
		for _, r := range filtered {
			require.Equal(t, "rotate", r.Action)
		}
		require.Contains(t, b.page("/audit?action=rotate", "viewer"), `href="/audit/export?action=rotate"`, "the link exports what the filters keep")
		require.Equal(t, http.StatusBadRequest, b.do(http.MethodGet, "/audit/export?outcome=maybe", "viewer", nil).status)
		require.Equal(t, http.StatusUnauthorized, b.do(http.MethodGet, "/audit/export", "", nil).status)
	})
	t.Run("OtherOrganizationNeverShown", func(t *testing.T) {
		for _, path := range []string{"/audit", "/audit?actor=intruder", "/audit?object=application%3Aother-secret-app", "/audit/export", "/audit?verify=1"} {
			res := b.do(http.MethodGet, path, "viewer", nil)
			require.Equal(t, http.StatusOK, res.status, path)
			require.NotContains(t, res.body, "intruder-oid", path)
			require.NotContains(t, res.body, "intruder@other", path)
			require.NotContains(t, res.body, ">application:other-secret-app</", path)
			require.NotContains(t, res.body, `"object":"application:other-secret-app"`, path)
		}
		require.Empty(t, b.walkAudit("/audit?actor=intruder", "viewer"))
		require.Empty(t, b.walkAudit("/audit?object=application%3Aother-secret-app", "viewer"))
	})
	t.Run("TamperedChainIsNamed", func(t *testing.T) {
		// Someone with the database file changes what record 3 says.
		db, err := sql.Open("sqlite", filepath.Join(b.srv.DataDir(), "rotor.db")+"?_pragma=busy_timeout(10000)")
		require.NoError(t, err)
		defer db.Close()
		for _, q := range []string{
			`DROP TRIGGER audit_events_append_only_update`,
			`UPDATE audit_events SET actor_name = 'someone-else' WHERE seq = 3 AND org_id = '` + string(b.org) + `'`,
		} {
			_, err := db.Exec(q)
			require.NoError(t, err, q)
		}
		body := b.page("/audit?verify=1", "viewer")
		require.Contains(t, body, `<div id="audit-verify-result" class="error">`)
		require.Contains(t, body, `NOT intact.</strong> First bad record: seq <span class="seq">3</span> (edited)`)
	})
	t.Run("SignInRequired", func(t *testing.T) {
		res := b.do(http.MethodGet, "/audit", "", nil)
		require.Equal(t, http.StatusUnauthorized, res.status)
		require.NotContains(t, res.body, `<table id="audit"`)
	})
}

func readJSONLines(t *testing.T, body string) []audit.Record {
	t.Helper()
	out := []audit.Record{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r audit.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	return out
}

var (
	connRowRe  = regexp.MustCompile(`<tr class="connection( failing)?" data-connection="([^"]+)">`)
	testFormRe = regexp.MustCompile(`<form method="post" action="([^"]+)" hx-post="[^"]+" hx-target="#connection-test-result">` + regexp.QuoteMeta(csrfField) + `<button type="submit" class="test-connection">Test</button></form>`)
)

func TestConnectionsPage(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	ctx := context.Background()
	conns, err := b.app.ListConnections(ctx, b.scope)
	require.NoError(t, err)
	require.NotEmpty(t, conns)

	t.Run("Renders", func(t *testing.T) {
		body := b.page("/connections", "viewer")
		require.Contains(t, body, `<table id="connections"`)
		require.Contains(t, body, `<div id="connection-test-result"`)
		names := []string{}
		for _, m := range connRowRe.FindAllStringSubmatch(body, -1) {
			names = append(names, html.UnescapeString(m[2]))
		}
		want := []string{}
		for _, c := range conns {
			want = append(want, c.Name)
		}
		require.Equal(t, want, names)
		require.Len(t, testFormRe.FindAllString(body, -1), len(conns), "every row has a Test button in a form with the token")
		for _, c := range conns {
			for _, s := range []string{c.TenantID, c.Purpose, c.Cloud, c.Identity} {
				require.Contains(t, body, s)
			}
			if c.ClientID != "" {
				require.Contains(t, body, c.ClientID)
			}
			for _, r := range c.Roles {
				require.Contains(t, body, r)
			}
		}
		require.Contains(t, body, "yes (rotor.yaml)")
		require.NotContains(t, body, b.otherConn, "another organization's connection")
	})
	t.Run("TestSignsInNow", func(t *testing.T) {
		var rot app.Connection
		for _, c := range conns {
			if c.Purpose == "rotation" {
				rot = c
			}
		}
		require.NotEmpty(t, rot.Name)
		owned, err := b.srv.Store().CountOwnedApplications(ctx, b.org, rot.Name)
		require.NoError(t, err)
		require.Positive(t, owned, "the demo's rotation identity owns applications")

		path := "/connections/" + url.PathEscape(rot.Name) + "/test"
		res := b.do(http.MethodPost, path, "viewer", url.Values{"csrf": {"test-token"}})
		require.Equal(t, http.StatusOK, res.status, res.body)
		require.Equal(t, "no-store", res.header.Get("Cache-Control"))
		require.Contains(t, res.body, `<table id="connections"`, "the whole page, for a browser without JavaScript")
		result := regexp.MustCompile(`(?s)<div id="connection-test-result"[^>]*>(.*?)</div>\s*</div>`).FindStringSubmatch(res.body)
		require.NotNil(t, result, res.body)
		require.Contains(t, result[1], html.EscapeString(rot.Name)+" signed in.")
		require.Contains(t, result[1], `<span class="owned">`+strconv.Itoa(owned)+`</span>`)
		in, err := b.app.TestConnection(ctx, b.scope, rot.Name)
		require.NoError(t, err)
		require.NotEmpty(t, in.Roles)
		for _, r := range in.Roles {
			require.Contains(t, result[1], r)
		}
		require.Contains(t, result[1], in.AppID)
		require.Equal(t, owned, in.Owned)

		part := b.do(http.MethodPost, path, "viewer", url.Values{"csrf": {"test-token"}}, "HX-Request", "true")
		require.Equal(t, http.StatusOK, part.status)
		require.NotContains(t, part.body, "<html")
		require.NotContains(t, part.body, `<table id="connections"`)
		require.Contains(t, part.body, "signed in.")
	})
	t.Run("AnotherOrganizationsOrNoneIsNotFound", func(t *testing.T) {
		for _, name := range []string{b.otherConn, "no-such-connection", `<b>x</b>`} {
			res := b.do(http.MethodPost, "/connections/"+url.PathEscape(name)+"/test", "admin", url.Values{"csrf": {"test-token"}})
			require.Equal(t, http.StatusNotFound, res.status, name)
			require.NotContains(t, res.body, "<b>x</b>")
		}
	})
	t.Run("Roles", func(t *testing.T) {
		// Testing is reading (the application layer's ActionRead), so
		// every role may press it; no one signed in may not.
		for _, role := range []string{"viewer", "operator", "admin"} {
			require.Len(t, testFormRe.FindAllString(b.page("/connections", role), -1), len(conns), role)
		}
		res := b.do(http.MethodPost, "/connections/"+url.PathEscape(conns[0].Name)+"/test", "", url.Values{})
		require.Equal(t, http.StatusUnauthorized, res.status)
		res = b.do(http.MethodPost, "/connections/"+url.PathEscape(conns[0].Name)+"/test", "nobody", url.Values{})
		require.Equal(t, http.StatusForbidden, res.status, "a principal with no role in the organization")
	})
}

var (
	mappingRowRe = regexp.MustCompile(`(?s)<table id="role-mappings">.*?<tbody>(.*?)</tbody>`)
	keyRowRe     = regexp.MustCompile(`<tr class="api-key status-([a-z]+)" data-key="([^"]+)">`)
	revokeFormRe = regexp.MustCompile(`<form method="post" action="(/settings/api-keys/[^"]+/revoke)">` + regexp.QuoteMeta(csrfField))
	keyValueRe   = regexp.MustCompile(`<output id="api-key-value" class="secret">([^<]+)</output>`)
)

func TestSettingsPage(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	ctx := context.Background()

	t.Run("Organization", func(t *testing.T) {
		body := b.page("/settings", "viewer")
		require.Contains(t, body, `<dd class="id" id="org-id">`+string(b.org)+`</dd>`)
		require.Contains(t, body, "none (a sign-in role makes someone admin")
		made, err := breakglass.Ensure(ctx, b.srv.Store(), b.org, b.srv.Clock(), io.Discard, "https://rotor.example/login/local")
		require.NoError(t, err)
		require.True(t, made)
		body = b.page("/settings", "viewer")
		require.Contains(t, body, `<dd id="break-glass">yes: <span class="id">`+breakglass.Name+`</span>`)
		require.Contains(t, body, "never used")
		la, err := b.srv.Store().GetLocalAdmin(ctx, b.org, breakglass.Name)
		require.NoError(t, err)
		require.NotContains(t, body, la.PasswordHash)
		require.NotContains(t, body, "argon2")
	})
	t.Run("RoleMappingsOfThisOrganizationOnly", func(t *testing.T) {
		for _, role := range []string{"viewer", "operator", "admin"} {
			body := b.page("/settings", role)
			m := mappingRowRe.FindStringSubmatch(body)
			require.NotNil(t, m, role)
			require.Equal(t, 2, strings.Count(m[1], "<tr>"), role)
			require.Contains(t, m[1], "<td>Rotor.Admin</td><td class=\"id\">—</td><td>admin</td>")
			require.Contains(t, m[1], "<td>—</td><td class=\"id\">0b6f7a4e-0000-4000-8000-000000000001</td><td>viewer</td>")
			require.NotContains(t, body, "Other.Secret.Role")
		}
	})
	t.Run("NonAdminsSeeNoKeysNorForms", func(t *testing.T) {
		for _, role := range []string{"viewer", "operator"} {
			body := b.page("/settings", role)
			require.Contains(t, body, `id="api-keys-admins-only"`, role)
			require.Contains(t, body, "Only admins of this organization manage API keys.")
			require.NotContains(t, body, `id="create-api-key"`, role)
			require.NotContains(t, body, "/revoke", role)
		}
	})
	t.Run("AdminCreatesAKeyShownOnce", func(t *testing.T) {
		body := b.page("/settings", "admin")
		require.Regexp(t, `<form id="create-api-key" method="post" action="/settings/api-keys">\s*`+regexp.QuoteMeta(csrfField), body)
		require.NotContains(t, body, `id="api-keys-admins-only"`)

		res := b.do(http.MethodPost, "/settings/api-keys", "admin", url.Values{"csrf": {"test-token"}, "name": {"ci-deploy"}, "role": {"operator"}, "expires": {"30"}})
		require.Equal(t, http.StatusOK, res.status, res.body)
		require.Equal(t, "no-store", res.header.Get("Cache-Control"))
		require.Contains(t, res.body, `id="created-api-key"`)
		require.Contains(t, res.body, "This is the only time it is shown")
		m := keyValueRe.FindStringSubmatch(res.body)
		require.NotNil(t, m)
		text := html.UnescapeString(m[1])

		// The key works: rotor's API key lookup knows it, as an operator
		// of this organization, for 30 days.
		keys, err := b.app.ListAPIKeys(ctx, b.scope)
		require.NoError(t, err)
		i := slices.IndexFunc(keys, func(k app.APIKeyRow) bool { return k.Name == "ci-deploy" })
		require.GreaterOrEqual(t, i, 0)
		k := keys[i]
		require.Equal(t, app.RoleOperator, k.Role)
		require.Equal(t, "active", k.Status)
		require.Equal(t, person("admin").String(), k.CreatedBy)
		require.Equal(t, 30*24.0, k.ExpiresAt.Sub(k.CreatedAt).Hours())
		require.Contains(t, text, k.ID, "the key names its id")
		p, err := auth.NewAPIKeys(b.srv.Store(), auth.WithClock(b.srv.Clock())).Authenticate(ctx, text)
		require.NoError(t, err)
		require.Equal(t, map[domain.OrgID]app.Role{b.org: app.RoleOperator}, p.Roles)

		// Never again: not on the page, not in the trail.
		again := b.page("/settings", "admin")
		require.NotContains(t, again, text)
		require.NotContains(t, again, `id="created-api-key"`)
		require.Contains(t, again, `data-key="`+k.ID+`"`)
		exp := b.do(http.MethodGet, "/audit/export", "admin", nil)
		require.NotContains(t, exp.body, text)
		require.Contains(t, exp.body, app.APIKeyObject(k.ID), "its creation is audited, by id")
	})
	t.Run("AdminRevokes", func(t *testing.T) {
		made, err := b.app.CreateAPIKey(ctx, b.scope, app.NewAPIKey{Name: "to-revoke", Role: app.RoleViewer})
		require.NoError(t, err)
		body := b.page("/settings", "admin")
		var action string
		for _, m := range revokeFormRe.FindAllStringSubmatch(body, -1) {
			if strings.Contains(m[1], made.ID) {
				action = html.UnescapeString(m[1])
			}
		}
		require.NotEmpty(t, action, "a revoke button with the token")
		res := b.do(http.MethodPost, action, "admin", url.Values{"csrf": {"test-token"}})
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		require.Equal(t, "/settings#api-keys", res.header.Get("Location"))
		after := b.page("/settings", "admin")
		require.Contains(t, after, `<tr class="api-key status-revoked" data-key="`+made.ID+`">`)
		for _, m := range revokeFormRe.FindAllStringSubmatch(after, -1) {
			require.NotContains(t, m[1], made.ID, "a revoked key has no button")
		}
	})
	t.Run("OtherOrganizationsKeys", func(t *testing.T) {
		body := b.page("/settings", "admin")
		require.NotContains(t, body, b.otherKey)
		require.NotContains(t, body, "other-secret-key")
		for _, m := range keyRowRe.FindAllStringSubmatch(body, -1) {
			require.NotEqual(t, b.otherKey, m[2])
		}
		res := b.do(http.MethodPost, "/settings/api-keys/"+b.otherKey+"/revoke", "admin", url.Values{"csrf": {"test-token"}})
		require.Equal(t, http.StatusNotFound, res.status, res.body)
		other, err := b.app.ListAPIKeys(ctx, app.Scope{Org: otherOrg, Actor: app.CLI})
		require.NoError(t, err)
		require.Equal(t, "active", other[0].Status, "untouched")
		require.Equal(t, http.StatusBadRequest, b.do(http.MethodPost, "/settings/api-keys/not-a-key/revoke", "admin", url.Values{}).status)
	})
	t.Run("ForcedPostsByNonAdminsAreRefused", func(t *testing.T) {
		made, err := b.app.CreateAPIKey(ctx, b.scope, app.NewAPIKey{Name: "kept", Role: app.RoleViewer})
		require.NoError(t, err)
		for _, role := range []string{"viewer", "operator"} {
			res := b.do(http.MethodPost, "/settings/api-keys", role, url.Values{"csrf": {"test-token"}, "name": {"sneaky-" + role}, "role": {"admin"}})
			require.Equal(t, http.StatusForbidden, res.status, role)
			require.Contains(t, res.body, "Your role does not allow this.")
			require.NotContains(t, res.body, `id="api-key-value"`)
			res = b.do(http.MethodPost, "/settings/api-keys/"+made.ID+"/revoke", role, url.Values{"csrf": {"test-token"}})
			require.Equal(t, http.StatusForbidden, res.status, role)
		}
		keys, err := b.app.ListAPIKeys(ctx, b.scope)
		require.NoError(t, err)
		for _, k := range keys {
			require.False(t, strings.HasPrefix(k.Name, "sneaky-"))
			if k.ID == made.ID {
				require.Equal(t, "active", k.Status)
			}
		}
		denied := b.walkAudit("/audit?outcome=denied&action=manage-api-keys", "viewer")
		require.Len(t, denied, 4, "each refusal is in the trail")
	})
	t.Run("BadCreate", func(t *testing.T) {
		for name, form := range map[string]url.Values{
			"NoName":       {"role": {"viewer"}},
			"BadRole":      {"name": {"x"}, "role": {"root"}},
			"BadExpiry":    {"name": {"x"}, "role": {"viewer"}, "expires": {"soon"}},
			"TooLong":      {"name": {"x"}, "role": {"viewer"}, "expires": {"1000"}},
			"ScriptInName": {"name": {"<script>\x01"}, "role": {"viewer"}},
		} {
			res := b.do(http.MethodPost, "/settings/api-keys", "admin", form)
			require.Equal(t, http.StatusBadRequest, res.status, name)
			require.NotContains(t, res.body, "<script>", name)
			require.NotContains(t, res.body, `id="api-key-value"`, name)
		}
	})
}

// TestAdminPagesAreSelfContained holds the new pages to the CSP rules the
// other pages keep: no inline script or style, no event handler, nothing
// fetched from elsewhere; every form posts with the token.
func TestAdminPagesAreSelfContained(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	formRe := regexp.MustCompile(`(?s)<form\b[^>]*>.*?</form>`)
	for _, path := range []string{"/audit", "/audit?verify=1", "/connections", "/settings"} {
		for _, role := range []string{"viewer", "admin"} {
			res := b.do(http.MethodGet, path, role, nil)
			require.Equal(t, http.StatusOK, res.status)
			require.Equal(t, ui.ContentSecurityPolicy, res.header.Get("Content-Security-Policy"))
			for _, m := range urlAttr.FindAllStringSubmatch(res.body, -1) {
				require.True(t, strings.HasPrefix(m[2], "/") && !strings.HasPrefix(m[2], "//"), "%s: %s=%q", path, m[1], m[2])
			}
			for _, tag := range scriptTag.FindAllString(res.body, -1) {
				require.Regexp(t, srcAttr, tag, path)
			}
			require.NotRegexp(t, handlerAt, res.body, path)
			require.NotContains(t, res.body, "style=", path)
			for _, f := range formRe.FindAllString(res.body, -1) {
				if strings.Contains(f, `method="post"`) {
					require.Contains(t, f, csrfField, "%s: %s", path, f)
				} else {
					require.Contains(t, f, `method="get"`, "%s: a form either posts with the token or only reads", path)
				}
			}
		}
	}
	nav := b.page("/settings", "viewer")
	require.Contains(t, nav, `<a href="/settings" aria-current="page">Settings</a>`)
	require.Contains(t, b.page("/audit", "viewer"), `<a href="/audit" aria-current="page">Audit log</a>`)
	require.Contains(t, b.page("/connections", "viewer"), `<a href="/connections" aria-current="page">Connections</a>`)
}
