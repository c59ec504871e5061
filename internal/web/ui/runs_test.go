package ui_test

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/web/csrf"
	"github.com/rotor-dev/rotor/internal/web/ui"
)

// runsRig is a UI over the bundle's real app service, behind the real
// CSRF middleware, whose requests act as the header says: X-Test-Org
// another organization, X-Test-Role a signed-in person with that role
// (none: the system actor, as the bundle's own UI).
type runsRig struct {
	*bundle
	ui   *ui.UI
	url  string
	http *http.Client
}

var tester = app.Actor{Kind: app.ActorUser, ID: "tester", Name: "tester@example.com"}

func newRunsRig(t *testing.T, b *bundle) *runsRig {
	t.Helper()
	who := func(r *http.Request) (app.Scope, app.Role) {
		s := b.scope
		if o := r.Header.Get("X-Test-Org"); o != "" {
			s.Org = domain.OrgID(o)
		}
		role := app.Role(r.Header.Get("X-Test-Role"))
		if role != "" {
			s.Actor = tester
		}
		return s, role
	}
	u := ui.New(ui.Deps{
		App: b.app, Logger: slog.New(slog.DiscardHandler), Clock: b.srv.Clock(), CSRFField: csrf.Field,
		Scope: func(r *http.Request) (app.Scope, bool) { s, _ := who(r); return s, true },
		Who: func(r *http.Request) (ui.Who, bool) {
			s, role := who(r)
			if role == "" {
				return ui.Who{}, false
			}
			return ui.Who{Name: s.Actor.Name, Actor: s.Actor.String(), Role: role, Org: string(s.Org)}, true
		},
	})
	signedIn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, role := who(r); role != "" {
			r = r.WithContext(auth.WithPrincipal(r.Context(), &auth.Principal{Actor: s.Actor, Roles: map[domain.OrgID]app.Role{s.Org: role}}))
		}
		u.ServeHTTP(w, r)
	})
	hs := httptest.NewServer(csrf.New(csrf.Options{Insecure: true}).Handler(signedIn))
	t.Cleanup(hs.Close)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := hs.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &runsRig{bundle: b, ui: u, url: hs.URL, http: c}
}

func (g *runsRig) do(method, path string, form url.Values, header ...string) response {
	g.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, g.url+path, body)
	require.NoError(g.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := g.http.Do(req)
	require.NoError(g.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(g.t, err)
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

var (
	runLink     = regexp.MustCompile(`<a class="run" href="/runs/([^"]+)">`)
	olderLink   = regexp.MustCompile(`<a rel="next" href="([^"]+)"`)
	tokenField  = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	rotateForm  = regexp.MustCompile(`<form id="rotate-now" method="post" action="([^"]+)">`)
	timelineRow = regexp.MustCompile(`<li id="step-(\d+)" class="step step-([a-z-]+)">`)
)

// walkRuns follows the history's "Older" links from path to the end,
// returning every run id in order.
func (g *runsRig) walkRuns(path string) []string {
	g.t.Helper()
	all := []string{}
	for range 100 {
		res := g.do(http.MethodGet, path, nil)
		require.Equal(g.t, http.StatusOK, res.status, res.body)
		got := runLink.FindAllStringSubmatch(res.body, -1)
		for _, m := range got {
			all = append(all, html.UnescapeString(m[1]))
		}
		m := olderLink.FindStringSubmatch(res.body)
		if m == nil {
			return all
		}
		require.Len(g.t, got, ui.RunPageSize, "only the last page is short")
		path = html.UnescapeString(m[1])
	}
	g.t.Fatal("paging does not end")
	return nil
}

// seedRuns journals n finished runs straight into the store, over the
// inventory's applications, every trigger and both failure and success,
// a minute apart; one more is left active (planned), on the last
// application used.
func seedRuns(t *testing.T, b *bundle, n int) (active domain.Run) {
	t.Helper()
	ctx := context.Background()
	apps, err := b.app.ListApplications(ctx, b.scope, app.ApplicationFilter{})
	require.NoError(t, err)
	apps = apps[:10]
	st := b.srv.Store()
	t0 := b.srv.Clock().Now().Add(-24 * time.Hour)
	mk := func(i int, a app.ApplicationRow) *domain.Run {
		at := t0.Add(time.Duration(i) * time.Minute)
		r := &domain.Run{Org: b.scope.Org, ID: fmt.Sprintf("seed-%03d", i), Connection: "seed", TenantID: a.TenantID, AppObjectID: a.ObjectID,
			AppID: a.AppID, AppName: a.Name, Policy: "web", Kind: domain.KindSecret, Trigger: app.RunTriggers[i%len(app.RunTriggers)],
			CreatedAt: at, UpdatedAt: at, Events: []domain.RunEvent{{At: at, State: domain.RunPlanned, Step: domain.StepPlanned.Step(), Message: "seeded"}}}
		require.NoError(t, st.CreateRun(ctx, r))
		return r
	}
	for i := range n {
		r := mk(i, apps[i%len(apps)])
		p := store.TransitionRunParams{Org: b.scope.Org, RunID: r.ID, From: []domain.RunState{domain.RunPlanned}, To: domain.RunDone,
			Event: domain.RunEvent{At: r.CreatedAt.Add(90 * time.Second), Step: domain.StepDone.Step(), Message: "seeded done"}}
		if i%3 == 0 {
			p.To, p.Error, p.Failure = domain.RunFailed, "Graph said 403: the rotation identity is not an owner <b>", domain.FailurePermanent
			p.Event = domain.RunEvent{At: r.CreatedAt.Add(3 * time.Second), Step: domain.StepFailed.Step(), Message: p.Error}
		}
		require.NoError(t, st.TransitionRun(ctx, p))
	}
	a := mk(n, apps[n%len(apps)])
	require.NoError(t, st.AppendRunEvent(ctx, store.AppendRunEventParams{Org: b.scope.Org, RunID: a.ID,
		Event: domain.RunEvent{At: a.CreatedAt.Add(time.Second), Step: domain.StepReplicating.Step(), Message: "waiting"}}))
	return *a
}

func TestRunsHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newRunsRig(t, b)
	active := seedRuns(t, b, 2*ui.RunPageSize+7)
	ctx := context.Background()
	want := func(f app.RunFilter) []string {
		t.Helper()
		out := []string{}
		page, err := b.app.ListRunsPage(ctx, b.scope, f, app.RunPageRequest{Limit: app.MaxPageSize})
		require.NoError(t, err)
		require.Empty(t, page.Next)
		for _, r := range page.Rows {
			out = append(out, r.ID)
		}
		return out
	}

	t.Run("EveryRunOnceNewestFirst", func(t *testing.T) {
		all := want(app.RunFilter{})
		require.Greater(t, len(all), 2*ui.RunPageSize)
		require.Less(t, slices.Index(all, active.ID), slices.Index(all, "seed-000"), "newest first")
		require.Less(t, slices.Index(all, "seed-001"), slices.Index(all, "seed-000"))
		require.Equal(t, all, g.walkRuns("/runs"))
	})
	t.Run("Filters", func(t *testing.T) {
		for name, c := range map[string]struct {
			query  string
			filter app.RunFilter
		}{
			"Failed":       {"state=failed", app.RunFilter{States: []domain.RunState{domain.RunFailed}}},
			"Active":       {"state=active", app.RunFilter{States: domain.ActiveStates}},
			"Manual":       {"trigger=manual", app.RunFilter{Triggers: []domain.Trigger{domain.TriggerManual}}},
			"AdoptionDone": {"trigger=adoption&state=done", app.RunFilter{Triggers: []domain.Trigger{domain.TriggerAdoption}, States: []domain.RunState{domain.RunDone}}},
			"OneApp":       {"app=" + url.QueryEscape(active.AppObjectID), app.RunFilter{App: active.AppObjectID}},
			"OneAppByName": {"app=" + url.QueryEscape(active.AppID) + "&state=failed", app.RunFilter{App: active.AppID, States: []domain.RunState{domain.RunFailed}}},
		} {
			w := want(c.filter)
			require.NotEmpty(t, w, name)
			require.Equal(t, w, g.walkRuns("/runs?"+c.query), name)
		}
		require.Equal(t, []string{active.ID}, g.walkRuns("/runs?state=active"))
		require.Less(t, len(want(app.RunFilter{Triggers: []domain.Trigger{domain.TriggerManual}})), len(want(app.RunFilter{})))
		res := g.do(http.MethodGet, "/runs?trigger=recovery&state=retiring", nil)
		require.Contains(t, res.body, "No rotations match.")
		require.Contains(t, res.body, `<option value="recovery" selected>`)
		require.Contains(t, res.body, `<option value="retiring" selected>`)
	})
	t.Run("Rows", func(t *testing.T) {
		res := g.do(http.MethodGet, "/runs?app="+url.QueryEscape(active.AppObjectID), nil)
		require.Contains(t, res.body, `<a href="/applications/`+active.AppObjectID+`">`, "each row links its application")
		require.Contains(t, res.body, "Waiting for Entra to replicate it", "an active run shows its current step")
		require.Contains(t, res.body, `<span class="failure">permanent</span>: Graph said 403: the rotation identity is not an owner &lt;b&gt;`)
		require.NotContains(t, res.body, "owner <b>")
		require.Contains(t, res.body, `aria-current="page">Rotations</a>`)
	})
	t.Run("BadQueries", func(t *testing.T) {
		for _, q := range []string{"state=running", "trigger=cron", "cursor=garbage", "app=no-such-app"} {
			res := g.do(http.MethodGet, "/runs?"+q, nil)
			require.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, res.status, q)
			require.NotContains(t, res.body, "<script>alert", q)
		}
	})
}

func TestRunPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newRunsRig(t, b)
	ctx := context.Background()
	rows, err := b.app.ListRuns(ctx, b.scope, app.RunFilter{App: b.runApp})
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	run, err := b.app.GetRun(ctx, b.scope, rows[0].ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State, "the bundle's rotation waits for its overlap")

	res := g.do(http.MethodGet, "/runs/"+run.ID, nil)
	require.Equal(t, http.StatusOK, res.status)
	body := res.body
	rowsSeen := timelineRow.FindAllStringSubmatch(body, -1)
	require.Len(t, rowsSeen, len(run.Events), "one timeline row per journal line")
	targets := 0
	for i, e := range run.Events {
		require.Equal(t, fmt.Sprint(i+1), rowsSeen[i][1])
		require.Equal(t, string(e.Step.Kind), rowsSeen[i][2])
		require.Contains(t, body, html.EscapeString(e.Message))
		if e.Target != "" {
			targets++
			require.Contains(t, body, `<span class="target id">`+html.EscapeString(e.Target)+`</span>`)
		}
	}
	require.Positive(t, targets, "the sink steps name their targets")
	require.Contains(t, body, `<span class="since">&#43;`, "each later step says how long after the previous it came")
	require.Contains(t, body, `<a href="/applications/`+run.AppObjectID+`">`)
	require.Contains(t, body, "done: new secret in place, old one retires at "+run.RetireAt.UTC().Format("2006-01-02 15:04 UTC"))
	require.Contains(t, body, `<a id="refresh" href="/runs/`+run.ID+`">Refresh</a>`)
	require.NotContains(t, body, "data-events", "a final run has nothing to stream")
	require.NotContains(t, body, "live.js")
	b.mu.Lock()
	for _, v := range b.issued {
		require.NotContains(t, body, v, "no secret value on the page")
	}
	b.mu.Unlock()

	// A run still going wires the stream, by a script file (the CSP
	// allows no inline script).
	active := seedRuns(t, b, 3)
	res = g.do(http.MethodGet, "/runs/"+active.ID, nil)
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, res.body, `data-events="/runs/`+active.ID+`/events?from=2"`)
	tags := scriptTag.FindAllString(res.body, -1)
	require.Len(t, tags, 2, "htmx and live.js")
	src := html.UnescapeString(srcAttr.FindStringSubmatch(tags[1])[1])
	require.Regexp(t, `^/static/[0-9a-f]+/live\.js$`, src)
	require.NotRegexp(t, handlerAt, res.body)
	require.NotContains(t, res.body, "style=")
	js := g.do(http.MethodGet, src, nil)
	require.Equal(t, http.StatusOK, js.status)
	require.Equal(t, "text/javascript; charset=utf-8", js.header.Get("Content-Type"))
	require.Contains(t, js.body, "new EventSource(")
	require.Contains(t, res.header.Get("Content-Security-Policy"), "connect-src 'self'")

	// A failed run says why, for people.
	failed := g.do(http.MethodGet, "/runs/seed-000", nil)
	require.Equal(t, http.StatusOK, failed.status)
	require.Contains(t, failed.body, `<p class="error" id="run-error">Graph said 403: the rotation identity is not an owner &lt;b&gt;</p>`)
	require.Contains(t, failed.body, "A person must change something first")
	require.Contains(t, failed.body, "failed: Graph said 403")

	require.Equal(t, http.StatusNotFound, g.do(http.MethodGet, "/runs/no-such-run", nil).status)
	require.Equal(t, http.StatusNotFound, g.do(http.MethodGet, "/runs/no-such-run/events", nil).status)
}

// Another organization's people never reach this one's runs: its ids are
// not found, its history does not list them.
func TestRunsStayInTheirOrganization(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newRunsRig(t, b)
	active := seedRuns(t, b, 4)
	other := []string{"X-Test-Org", "other-org", "X-Test-Role", string(app.RoleAdmin)}
	for _, path := range []string{"/runs/" + active.ID, "/runs/seed-001", "/runs/" + active.ID + "/events"} {
		res := g.do(http.MethodGet, path, nil, other...)
		require.Equal(t, http.StatusNotFound, res.status, path)
		require.NotContains(t, res.body, active.AppName, path)
	}
	for _, path := range []string{"/runs/" + active.ID, "/runs/seed-001"} {
		require.Equal(t, http.StatusOK, g.do(http.MethodGet, path, nil).status, "its own organization sees %s", path)
	}
	require.NotEmpty(t, g.walkRuns("/runs"))
	list := g.do(http.MethodGet, "/runs", nil, other...)
	require.Equal(t, http.StatusOK, list.status)
	require.Empty(t, runLink.FindAllString(list.body, -1))
	require.Equal(t, http.StatusNotFound, g.do(http.MethodGet, "/runs/live?app="+active.AppObjectID+"&after=0", nil, other...).status)
}

func TestRotateNow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newRunsRig(t, b)
	ctx := context.Background()
	operator := []string{"X-Test-Role", string(app.RoleOperator)}
	page := g.do(http.MethodGet, "/applications/"+b.runApp, nil, operator...)
	require.Equal(t, http.StatusOK, page.status)
	m := rotateForm.FindStringSubmatch(page.body)
	require.NotNil(t, m, "an operator sees Rotate now")
	require.Contains(t, page.body, `<button id="rotate-now-button"`)
	action := html.UnescapeString(m[1])
	require.Equal(t, "/applications/"+b.runApp+"/rotate", action)
	token := html.UnescapeString(tokenField.FindStringSubmatch(page.body)[1])

	t.Run("NeedsTheFormToken", func(t *testing.T) {
		for _, f := range []url.Values{{}, {csrf.FieldName: {"forged"}}} {
			res := g.do(http.MethodPost, action, f, operator...)
			require.Equal(t, http.StatusForbidden, res.status)
			require.Contains(t, res.body, "did not come from rotor")
		}
	})
	t.Run("ViewerMayNot", func(t *testing.T) {
		viewer := []string{"X-Test-Role", string(app.RoleViewer)}
		vp := g.do(http.MethodGet, "/applications/"+b.runApp, nil, viewer...)
		require.Equal(t, http.StatusOK, vp.status)
		require.NotContains(t, vp.body, `id="rotate-now"`, "a viewer gets no form")
		require.Contains(t, vp.body, "Rotation history")
		res := g.do(http.MethodPost, action, url.Values{csrf.FieldName: {token}}, viewer...)
		require.Equal(t, http.StatusForbidden, res.status)
		require.Contains(t, res.body, "Your role does not allow this.")
	})
	t.Run("QueuesAndLeadsToTheRun", func(t *testing.T) {
		before, err := b.app.LastRunSeq(ctx, b.scope, b.runApp)
		require.NoError(t, err)
		require.Positive(t, before)
		res := g.do(http.MethodPost, action, url.Values{csrf.FieldName: {token}}, operator...)
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		loc, err := url.Parse(res.header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "/runs/live", loc.Path)
		require.Equal(t, b.runApp, loc.Query().Get("app"))
		require.Equal(t, fmt.Sprint(before), loc.Query().Get("after"))

		// No job worker runs in this rig: the page waits, reloading.
		wait := g.do(http.MethodGet, loc.RequestURI(), nil, operator...)
		require.Equal(t, http.StatusOK, wait.status)
		require.Equal(t, "2", wait.header.Get("Refresh"))
		require.Contains(t, wait.body, "The rotation is queued")
		require.Contains(t, wait.body, `<a id="refresh" href="`+html.EscapeString(loc.RequestURI())+`">`)

		// Once a run of the application after "after" exists, whichever
		// process made it, the page leads there.
		results, err := b.app.Rotate(ctx, b.scope, []string{b.runApp}, nil)
		require.NoError(t, err)
		found := g.do(http.MethodGet, loc.RequestURI(), nil, operator...)
		require.Equal(t, http.StatusSeeOther, found.status)
		require.Equal(t, "/runs/"+results[0].RunID, found.header.Get("Location"))

		gaveUp := g.do(http.MethodGet, "/runs/live?app="+b.runApp+"&after=999999&at=1", nil, operator...)
		require.Equal(t, http.StatusOK, gaveUp.status)
		require.Empty(t, gaveUp.header.Get("Refresh"))
		require.Contains(t, gaveUp.body, "No rotation of this application has started")
	})
	t.Run("LeadsToTheRunUnderWay", func(t *testing.T) {
		// A run of the application already under way (another process's,
		// or the planner's): Rotate now shows it rather than queueing a job
		// that would find it and start nothing.
		rows, err := b.app.ListRuns(ctx, b.scope, app.RunFilter{App: b.runApp, Limit: 1})
		require.NoError(t, err)
		prev, err := b.app.GetRun(ctx, b.scope, rows[0].ID)
		require.NoError(t, err)
		active := domain.Run{Org: prev.Org, AppObjectID: prev.AppObjectID, AppID: prev.AppID, AppName: prev.AppName, TenantID: prev.TenantID,
			Policy: prev.Policy, Connection: prev.Connection, Kind: prev.Kind, Trigger: domain.TriggerManual}
		require.NoError(t, b.srv.Store().CreateRun(ctx, &active))
		res := g.do(http.MethodPost, action, url.Values{csrf.FieldName: {token}}, operator...)
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		require.Equal(t, "/runs/"+active.ID, res.header.Get("Location"))
	})
	t.Run("UnknownApplication", func(t *testing.T) {
		res := g.do(http.MethodPost, "/applications/no-such-app/rotate", url.Values{csrf.FieldName: {token}}, operator...)
		require.Equal(t, http.StatusNotFound, res.status)
	})
}

// sseEvent is one server-sent event (or comment) as a browser parses it.
type sseEvent struct {
	ID, Name, Data, Comment string
}

// readSSE parses r into events on out until r ends, then closes out.
func readSSE(r io.Reader, out chan<- sseEvent) {
	defer close(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			ev.Data = strings.Join(data, "\n")
			out <- ev
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			ev.Comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.Name = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		}
	}
}

// openStream GETs a run's event stream; cancel ends the request.
func openStream(t *testing.T, c *http.Client, rawURL string, header ...string) (events <-chan sseEvent, res *http.Response, cancel func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err = c.Do(req)
	require.NoError(t, err)
	ch := make(chan sseEvent, 64)
	go readSSE(res.Body, ch)
	t.Cleanup(func() { cancel(); _ = res.Body.Close() })
	return ch, res, cancel
}

// nextEvent is the stream's next event that is not a comment.
func nextEvent(t *testing.T, ch <-chan sseEvent, within time.Duration) sseEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			require.True(t, ok, "the stream ended early")
			if ev.Name == "" && ev.Comment != "" {
				continue
			}
			return ev
		case <-deadline:
			t.Fatalf("no event within %s", within)
		}
	}
}

// gate holds a rotation after each journal write until the test lets it
// go on: the stream is then seen to send each step as it is journaled,
// not the whole run at its end.
type gate struct {
	steps chan domain.Step
	runs  chan string
	next  chan struct{}
	once  sync.Once
	open  chan struct{}
}

func newGate() *gate {
	return &gate{steps: make(chan domain.Step, 64), runs: make(chan string, 64), next: make(chan struct{}), open: make(chan struct{})}
}

func (g *gate) Starting(app.ApplicationRef, string) {}
func (g *gate) Finished(app.RotateResult)           {}
func (g *gate) Step(run domain.Run, s domain.Step) {
	g.runs <- run.ID
	g.steps <- s
	select {
	case <-g.next:
	case <-g.open:
	}
}
func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// A real rotation, against the simulator, streams step by step and ends
// with the done event.
func TestRunEventsStreamARealRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newRunsRig(t, b)
	ui.SetLiveTimings(g.ui, 50*time.Millisecond, 0, 0)
	ctx := context.Background()

	gt := newGate()
	t.Cleanup(gt.release)
	done := make(chan error, 1)
	go func() {
		_, err := b.app.Rotate(ctx, b.scope, []string{b.runApp}, gt)
		done <- err
	}()
	first := <-gt.steps
	require.Equal(t, domain.StepPlanned, first.Kind)
	runID := <-gt.runs

	events, res, _ := openStream(t, g.http, g.url+"/runs/"+runID+"/events")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream; charset=utf-8", res.Header.Get("Content-Type"))
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	require.Equal(t, "no", res.Header.Get("X-Accel-Buffering"))

	ev := nextEvent(t, events, 5*time.Second)
	require.Equal(t, "step", ev.Name)
	require.Equal(t, "1", ev.ID)
	require.Contains(t, ev.Data, `<li id="step-1" class="step step-planned">`)
	require.Equal(t, "state", nextEvent(t, events, 5*time.Second).Name)

	// The next two steps: each arrives while the rotation is held after
	// it, so it was streamed as it was journaled.
	for n := 2; n <= 3; n++ {
		gt.next <- struct{}{}
		s := <-gt.steps
		<-gt.runs
		ev := nextEvent(t, events, 5*time.Second)
		for ev.Name == "state" {
			ev = nextEvent(t, events, 5*time.Second)
		}
		require.Equal(t, "step", ev.Name)
		require.Equal(t, fmt.Sprint(n), ev.ID)
		require.Contains(t, ev.Data, `class="step step-`+string(s.Kind)+`"`)
	}

	// Let it finish: every remaining step, then done.
	gt.release()
	go func() {
		for range gt.steps {
		}
	}()
	go func() {
		for range gt.runs {
		}
	}()
	var names, data []string
	for {
		ev := nextEvent(t, events, 90*time.Second)
		names = append(names, ev.Name)
		data = append(data, ev.Data)
		if ev.Name == "done" {
			break
		}
	}
	require.NoError(t, <-done)
	run, err := b.app.GetRun(ctx, b.scope, runID)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State)
	require.Equal(t, "done: new secret in place, old one retires at "+run.RetireAt.UTC().Format("2006-01-02 15:04 UTC"), data[len(data)-1])
	steps := 3
	for i, n := range names {
		if n == "step" {
			steps++
			require.Contains(t, data[i], fmt.Sprintf(`<li id="step-%d" `, steps))
		}
	}
	require.Equal(t, len(run.Events), steps, "every journal line streamed once")
	require.Contains(t, names, "state")
	for ev := range events {
		require.Empty(t, ev.Name, "nothing after done")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, v := range b.issued {
		for _, d := range data {
			require.NotContains(t, d, v, "no secret value in the stream")
		}
	}

	// A reconnecting EventSource resumes after the last event it got.
	again, _, _ := openStream(t, g.http, g.url+"/runs/"+runID+"/events", "Last-Event-ID", fmt.Sprint(len(run.Events)-1))
	ev = nextEvent(t, again, 5*time.Second)
	require.Equal(t, fmt.Sprint(len(run.Events)), ev.ID)
	require.Equal(t, "state", nextEvent(t, again, 5*time.Second).Name)
	require.Equal(t, "done", nextEvent(t, again, 5*time.Second).Name)
}

// fakeRuns is an app service whose one run the test journals by hand;
// only what the stream calls is implemented.
type fakeRuns struct {
	ui.Service
	mu       sync.Mutex
	run      domain.Run
	watchers int
	fns      map[int]func(domain.Run, domain.Step)
	next     int
}

func (f *fakeRuns) GetRun(_ context.Context, scope app.Scope, id string) (*domain.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if scope.Org != f.run.Org || id != f.run.ID {
		return nil, &app.NotFoundError{Kind: "run", Ref: id}
	}
	r := f.run
	r.Events = append([]domain.RunEvent(nil), f.run.Events...)
	return &r, nil
}

func (f *fakeRuns) Observe(fn func(domain.Run, domain.Step)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fns == nil {
		f.fns = map[int]func(domain.Run, domain.Step){}
	}
	id := f.next
	f.next++
	f.fns[id] = fn
	f.watchers++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.fns, id)
		f.watchers--
	}
}

func (f *fakeRuns) Watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watchers
}

// journal appends a step (and moves the run to state, if not empty), and
// tells the watchers only when wake says so.
func (f *fakeRuns) journal(s domain.Step, state domain.RunState, wake bool) {
	f.mu.Lock()
	if state != "" {
		f.run.State = state
	}
	f.run.Events = append(f.run.Events, domain.RunEvent{At: time.Date(2030, 1, 1, 0, 0, len(f.run.Events), 0, time.UTC), State: f.run.State, Step: s, Message: "step " + s.String()})
	run := f.run
	var fns []func(domain.Run, domain.Step)
	if wake {
		for _, fn := range f.fns {
			fns = append(fns, fn)
		}
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(run, s)
	}
}

func fakeRig(t *testing.T, timings func(*ui.UI)) (*fakeRuns, *httptest.Server) {
	t.Helper()
	return fakeRigAlive(t, timings, nil)
}

func fakeRigAlive(t *testing.T, timings func(*ui.UI), alive func(*http.Request) bool) (*fakeRuns, *httptest.Server) {
	t.Helper()
	f := &fakeRuns{run: domain.Run{Org: "org-1", ID: "run-1", AppName: "web-1", AppObjectID: "obj-1", State: domain.RunPlanned,
		RetireAt: time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC),
		Events:   []domain.RunEvent{{At: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), State: domain.RunPlanned, Step: domain.StepPlanned.Step(), Message: "planned"}}}}
	u := ui.New(ui.Deps{App: f, Logger: slog.New(slog.DiscardHandler), Alive: alive,
		Scope: func(*http.Request) (app.Scope, bool) { return app.Scope{Org: "org-1", Actor: app.CLI}, true }})
	timings(u)
	hs := httptest.NewUnstartedServer(u)
	return f, hs
}

// The stream sends what the store has, whether or not this process's
// relay says so (the run may be another replica's), and ends when the
// client goes away, leaving no goroutine behind.
func TestRunEventsEndWithTheClient(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f, hs := fakeRig(t, func(u *ui.UI) { ui.SetLiveTimings(u, 30*time.Millisecond, 0, 0) })
	hs.Start()
	defer hs.Close()
	c := hs.Client()
	defer c.CloseIdleConnections()

	events, _, cancel := openStream(t, c, hs.URL+"/runs/run-1/events?from=1")
	require.Equal(t, "state", nextEvent(t, events, 5*time.Second).Name, "the page's one step is not sent again")
	f.journal(domain.StepCreated.Step(), domain.RunCreated, false) // another replica's: no wake-up
	ev := nextEvent(t, events, 5*time.Second)
	require.Equal(t, "step", ev.Name)
	require.Equal(t, "2", ev.ID)
	require.Contains(t, ev.Data, "New secret created")
	require.Equal(t, 1, f.Watchers())

	cancel()
	require.Eventually(t, func() bool { return f.Watchers() == 0 }, 5*time.Second, 10*time.Millisecond, "the handler returns once the client is gone")
}

// The relay wakes the stream sooner than its poll; the run's final state
// ends it with the done event.
func TestRunEventsWakeAndDone(t *testing.T) {
	t.Parallel()
	f, hs := fakeRig(t, func(u *ui.UI) { ui.SetLiveTimings(u, time.Hour, 0, 0) })
	hs.Start()
	t.Cleanup(hs.Close)
	events, _, _ := openStream(t, hs.Client(), hs.URL+"/runs/run-1/events")
	require.Equal(t, "step", nextEvent(t, events, 5*time.Second).Name)
	require.Equal(t, "state", nextEvent(t, events, 5*time.Second).Name)
	require.Eventually(t, func() bool { return f.Watchers() == 1 }, 5*time.Second, 10*time.Millisecond)
	f.journal(domain.SinkStep(0, domain.PhaseWritten), domain.RunPropagated, true)
	ev := nextEvent(t, events, 5*time.Second)
	require.Equal(t, "step", ev.Name, "woken, not polled (the poll is an hour)")
	require.Contains(t, ev.Data, "Sink 1: written")
	state := nextEvent(t, events, 5*time.Second)
	require.Equal(t, sseEvent{Name: "state", Data: "propagated"}, state)
	f.journal(domain.StepRetiring.Step(), domain.RunRetiring, true)
	require.Equal(t, "step", nextEvent(t, events, 5*time.Second).Name)
	require.Equal(t, "retiring", nextEvent(t, events, 5*time.Second).Data)
	require.Equal(t, sseEvent{Name: "done", Data: "done: new secret in place, old one retires at 2030-01-02 03:04 UTC"}, nextEvent(t, events, 5*time.Second))
	_, open := <-events
	require.False(t, open, "the stream ends after done")
}

// A stream outlives the server's read and write timeouts (it replaces
// them by a deadline per write), sends heartbeats meanwhile, and stops at
// its limit.
func TestRunEventsOutliveServerTimeouts(t *testing.T) {
	t.Parallel()
	f, hs := fakeRig(t, func(u *ui.UI) {
		ui.SetLiveTimings(u, 20*time.Millisecond, 50*time.Millisecond, 1500*time.Millisecond)
	})
	hs.Config.ReadTimeout = 200 * time.Millisecond
	hs.Config.WriteTimeout = 200 * time.Millisecond
	hs.Start()
	t.Cleanup(hs.Close)
	start := time.Now()
	events, _, _ := openStream(t, hs.Client(), hs.URL+"/runs/run-1/events")
	require.Equal(t, "step", nextEvent(t, events, 5*time.Second).Name)
	beats := 0
	for time.Since(start) < 800*time.Millisecond {
		ev, ok := <-events
		require.True(t, ok, "the stream was cut after %s", time.Since(start))
		if ev.Comment == "heartbeat" {
			beats++
		}
	}
	require.Greater(t, beats, 3)
	f.journal(domain.StepCreated.Step(), domain.RunCreated, false)
	ev := nextEvent(t, events, 5*time.Second)
	require.Equal(t, "step", ev.Name, "a step after both timeouts still arrives")
	require.Equal(t, "state", nextEvent(t, events, 5*time.Second).Name)
	stopped := nextEvent(t, events, 5*time.Second)
	require.Equal(t, "stopped", stopped.Name)
	require.Contains(t, stopped.Data, "refresh the page")
	require.GreaterOrEqual(t, time.Since(start), 1500*time.Millisecond)
	_, open := <-events
	require.False(t, open)
}

// A person who signs out stops receiving the run they were watching: the
// stream reads the session again as it goes.
func TestRunEventsEndAtSignOut(t *testing.T) {
	t.Parallel()
	var signedOut atomic.Bool
	f, hs := fakeRigAlive(t, func(u *ui.UI) { ui.SetLiveTimings(u, 20*time.Millisecond, 0, 0) },
		func(*http.Request) bool { return !signedOut.Load() })
	hs.Start()
	t.Cleanup(hs.Close)
	events, _, _ := openStream(t, hs.Client(), hs.URL+"/runs/run-1/events")
	require.Equal(t, "step", nextEvent(t, events, 5*time.Second).Name)
	require.Equal(t, "state", nextEvent(t, events, 5*time.Second).Name)
	signedOut.Store(true)
	f.journal(domain.StepCreated.Step(), domain.RunCreated, true)
	require.Equal(t, sseEvent{Name: "stopped", Data: "You are signed out; sign in again to follow this run."}, nextEvent(t, events, 5*time.Second))
	_, open := <-events
	require.False(t, open, "the stream ends")
}
