package ui_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

var (
	barRect   = regexp.MustCompile(`<rect class="bar" x="\d+" y="\d+" width="\d+" height="\d+" fill="#[0-9a-f]{6}"/>`)
	barTitle  = regexp.MustCompile(`<g class="week">\s*<title>[A-Z][a-z]{2} \d+ – [A-Z][a-z]{2} \d+: (\d+) credentials? ends?</title>`)
	tableRow  = regexp.MustCompile(`<tr><td>[^<]+ – [^<]+</td><td>(\d+)</td></tr>`)
	countLink = regexp.MustCompile(`<a href="([^"]+)" id="count-([^"]+)"><span class="n">(\d+)</span>`)
)

// TestDashboard: /ui/ is the dashboard, readable with a plain GET (no
// JavaScript): the expiry counts the application layer computes, each
// linking to the filtered list; the timeline as inline SVG (a bar and a
// hover title per week, no style attribute) with the same numbers in a
// table; a failed run no success replaced, linking to its run and its
// application; the plan; a failing connection's warning. Markup an
// application's owner put in its name stays text.
func TestDashboard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	st := b.srv.Store()
	now := b.srv.Clock().Now()

	// A permanent failure of the rotated application, after its success.
	a, err := b.app.GetApplication(ctx, b.scope, b.runApp)
	require.NoError(t, err)
	run := &domain.Run{Org: b.scope.Org, ID: "run-dash-failed", Connection: a.Access[0].Connection, TenantID: a.TenantID, AppObjectID: a.ObjectID,
		AppID: a.AppID, AppName: a.Name, Policy: "owned", Kind: domain.KindSecret, Trigger: domain.TriggerManual}
	// The rotation's run holds the application until it retires; the
	// failed one is journaled as what came after it.
	runs, err := b.app.ListRuns(ctx, b.scope, app.RunFilter{App: b.runApp})
	require.NoError(t, err)
	require.NotEmpty(t, runs)
	if !runs[0].State.Terminal() && runs[0].State != domain.RunRetiring {
		t.Fatalf("the setup's run is still %s", runs[0].State)
	}
	require.NoError(t, st.CreateRun(ctx, run))
	require.NoError(t, st.TransitionRun(ctx, store.TransitionRunParams{Org: b.scope.Org, RunID: run.ID, From: []domain.RunState{domain.RunPlanned},
		To: domain.RunFailed, Error: "Graph refused: Insufficient privileges", Failure: domain.FailurePermanent, Event: domain.RunEvent{Message: "failed"}}))
	// A connection whose last sign-in failed.
	conns, err := b.app.ListConnections(ctx, b.scope)
	require.NoError(t, err)
	require.NoError(t, st.RecordConnectionHealth(ctx, store.ConnectionHealth{Org: b.scope.Org, Connection: conns[0].Name, Failure: true,
		At: now.Add(time.Minute), Message: "AADSTS7000215: Invalid client secret provided."}))

	res := b.get("/")
	require.Equal(t, http.StatusOK, res.status, res.body)
	body := res.body
	require.Contains(t, body, "<h1>Dashboard</h1>")
	require.Contains(t, body, `<a href="/" aria-current="page">Dashboard</a>`)
	require.NotContains(t, body, "style=")
	require.NotContains(t, body, evilName)

	d, err := b.app.Dashboard(ctx, b.scope)
	require.NoError(t, err)

	// The counts, each a link to the list filtered that way.
	links := countLink.FindAllStringSubmatch(body, -1)
	require.Len(t, links, 4, body)
	require.Equal(t, "/applications?sort=expiry", html.UnescapeString(links[0][1]))
	require.Equal(t, fmt.Sprint(d.Expired), links[0][3])
	for i, w := range d.Expiring {
		require.Equal(t, fmt.Sprintf("/applications?expiring=%d&sort=expiry", w.Days), html.UnescapeString(links[i+1][1]))
		require.Equal(t, fmt.Sprint(w.Count), links[i+1][3])
		require.Equal(t, http.StatusOK, b.get(html.UnescapeString(links[i+1][1])).status, "the list takes the link")
	}
	require.Contains(t, body, "cumulative")
	total := d.Expired
	for _, wk := range d.Weeks {
		total += wk.Count
	}
	require.Positive(t, total, "the demo's credentials end within the timeline")

	// The timeline: inline SVG, one bar and one hover title per week, the
	// same numbers in the table.
	require.Contains(t, body, `<svg class="timeline" id="timeline" role="img"`)
	require.Len(t, barRect.FindAllString(body, -1), 13)
	titles := barTitle.FindAllStringSubmatch(body, -1)
	rows := tableRow.FindAllStringSubmatch(body, -1)
	require.Len(t, titles, 13)
	require.Len(t, rows, 13)
	for i, wk := range d.Weeks {
		require.Equal(t, fmt.Sprint(wk.Count), titles[i][1])
		require.Equal(t, fmt.Sprint(wk.Count), rows[i][1])
	}
	require.Contains(t, body, `<details id="timeline-table">`)

	// The failed run, with links to its page and its application's.
	require.Contains(t, body, `href="/runs/run-dash-failed"`)
	require.Contains(t, body, `href="/applications/`+a.ObjectID+`">`+html.EscapeString(a.Name)+`</a>`)
	require.Contains(t, body, "Graph refused: Insufficient privileges")
	require.Contains(t, body, "needs a human")

	// The plan, as the application layer has it.
	require.Contains(t, body, "Next 24 hours")
	require.Contains(t, body, "Next 7 days")
	require.NotEmpty(t, d.Next7d.Items, "the demo's unrotated applications are due (adoption)")
	for _, it := range d.Next7d.Items {
		require.Contains(t, body, `href="/applications/`+it.Application.ObjectID+`"`)
	}
	require.Contains(t, body, fmt.Sprintf("Next 7 days <span class=\"days\">(%d)", d.Next7d.Total))

	// The failing connection's warning.
	require.Contains(t, body, `id="failing-connections"`)
	require.Contains(t, body, "AADSTS7000215: Invalid client secret provided.")

	// Without a session: 401, nothing of the organization.
	anon := b.get("/", "X-Test-Anonymous", "1")
	require.Equal(t, http.StatusUnauthorized, anon.status)
	require.NotContains(t, anon.body, a.ObjectID)
	require.False(t, strings.Contains(anon.body, "Dashboard</h1>"))
}
