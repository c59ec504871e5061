// Package browser_test drives rotor's UI in a real headless Chromium, the
// way a newcomer meets it after `go run ./cmd/rotor demo`: the demo's own
// configuration (sign-in with the simulator's Entra, its people ada,
// oscar and vera), the pages as the browser renders them under their CSP.
// Any JavaScript error or CSP violation in the console fails a test
// (ADR 27).
package browser_test

import (
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/cli"
)

// TestNewcomerFlow is the judged-by, in a real browser on the
// demo: oscar (an operator) signs in through the simulator's Entra, reads
// the dashboard, finds applications by name (htmx swaps the results in,
// no reload), finds the manageable credential that expires first, sets
// its application's own lifetime, sees the Key Vault picker's
// suggestions, presses Rotate now and watches the run reach verified live,
// finds himself in the audit log for both, and signs out.
func TestNewcomerFlow(t *testing.T) {
	demo := sharedDemo(t)
	p := newPage(t, demo.URL)

	require.EqualValues(t, 200, p.signIn("oscar"))
	require.Equal(t, "/ui/", p.location(), "sign-in returns to the page asked for")
	require.Contains(t, p.text("#name"), "Oscar", "the header names who signed in")
	// The dashboard: what expires when, what failed, what rotor will do.
	require.Equal(t, "Dashboard", p.text("main h1"))
	require.True(t, p.exists("svg#timeline"), "the expiry timeline is drawn")
	require.True(t, p.exists("#plan"), "the plan for the next day and week")
	within30 := p.text("#count-30d .n")
	require.NotEqual(t, "0", within30, "the demo has credentials expiring within 30 days")
	p.shot("dashboard.png")
	// Its count is a link to the applications list, filtered.
	require.EqualValues(t, 200, p.click("#count-30d"))
	require.Equal(t, "30", p.query().Get("expiring"), p.location())
	p.open("/ui/")

	require.EqualValues(t, 200, p.click(`a[href="/ui/applications"]`))
	require.Equal(t, "/ui/applications", p.location())
	require.Equal(t, "object", eval[string](p, "typeof htmx"), "htmx runs")
	all := p.count("#rows tr")
	require.Greater(t, all, 10, "the demo's applications are listed")
	p.shot("applications.png")

	// Searching swaps the results in place: the URL follows, the page is
	// not reloaded (the marker on window survives).
	loads := p.loadCount()
	p.do(chromedp.Evaluate[chromedp.Void](`window.rotorNoReload = true`),
		chromedp.SendKeys(chromedp.CSS("#q"), "web-"))
	p.waitFor("the search's results", `location.search.includes("q=web-") && document.querySelectorAll("#rows tr").length < `+itoa(all))
	names := p.columnTexts("#rows tr td:first-child")
	require.NotEmpty(t, names)
	for _, n := range names {
		require.True(t, strings.HasPrefix(n, "web-"), "search for web- shows %q", n)
	}
	require.True(t, eval[bool](p, `window.rotorNoReload === true`), "the search reloaded the page")
	require.Equal(t, loads, p.loadCount(), "the search loaded a page")
	p.shot("applications-search.png")

	// The credential that expires first: the expiring filter, soonest
	// first, manageable only, then its application.
	p.do(chromedp.SendKeys(chromedp.CSS("#q"), strings.Repeat(kb.Backspace, len("web-"))))
	p.waitFor("the whole list again", `!location.search.includes("q=web-") && document.querySelectorAll("#rows tr").length === `+itoa(all))
	p.do(chromedp.SetValue(chromedp.CSS(`select[name="expiring"]`), "30"),
		chromedp.SetValue(chromedp.CSS(`select[name="sort"]`), "expiry"),
		chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`), chromedp.NodeVisible))
	p.waitFor("the filtered list", `location.search.includes("expiring=30") && location.search.includes("sort=expiry")`)
	// ... of an application rotor may change (the others it only watches).
	p.do(chromedp.Click(chromedp.CSS(`input[name="manageable"]`), chromedp.NodeVisible),
		chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`), chromedp.NodeVisible))
	p.waitFor("the manageable ones", `location.search.includes("manageable=1")`)
	// The URL moves before the swap lands: wait for the rows themselves.
	p.waitFor("the filtered rows", `!document.querySelector(".htmx-request") && (document.querySelector("#rows tr:first-child td:first-child")?.innerText.trim() ?? "") !== ""`)
	require.Equal(t, loads, p.loadCount(), "the filters loaded a page")
	q := p.query()
	require.Equal(t, "30", q.Get("expiring"), p.location())
	require.Empty(t, q.Get("q"))
	first := p.text("#rows tr:first-child td:first-child")
	require.NotEqual(t, "No applications match.", first, "the demo has credentials expiring within 30 days")

	require.EqualValues(t, 200, p.click("#rows tr:first-child td:first-child a"))
	require.True(t, strings.HasPrefix(p.location(), "/ui/applications/"), p.location())
	require.Equal(t, first, p.text("main h1"))
	p.shot("application.png")

	// Set this application's own lifetime over its policy's 30 days:
	// the form posts, the page comes back saying so.
	p.do(chromedp.SetValue(chromedp.CSS("#lifetime_days"), "20"))
	status := p.click("#save-settings")
	require.EqualValues(t, 200, status, "saving the settings: %s", p.text("main"))
	require.True(t, p.exists("#settings-saved"), "the page confirms the save")
	require.Equal(t, "20", p.value("#lifetime_days"))
	require.Contains(t, p.text("form#settings"), "set here")
	p.shot("application-settings.png")

	// The Key Vault fields suggest the vaults the policy's connection
	// sees (ARM, through htmx), once the field has the focus.
	p.do(chromedp.Click(chromedp.CSS("#keyvault_url"), chromedp.NodeVisible))
	p.waitFor("the vault picker's suggestions", `document.querySelectorAll("#kv-vaults option").length > 0`)
	require.True(t, strings.HasPrefix(eval[string](p, `document.querySelector("#kv-vaults option").value`), "https://"), "a vault's URL")
	require.Contains(t, p.textContent("#kv-vaults"), "kv-contoso", "named as ARM names it")

	// Rotate now: the waiting page moves on to the run's page once a
	// rotor process has started the job, whose timeline fills in live
	// (server-sent events) until the new secret is delivered, verified
	// and the old ones wait to retire. The demo adopts its applications
	// in its first minute: when the planner's run of this one was already
	// under way, Rotate now shows that run (decided before the setting),
	// and pressing it again once that one is done rotates by hand.
	appPath := p.location()
	var runPath, timeline string
	for attempt := 1; ; attempt++ {
		require.EqualValues(t, 200, p.click("#rotate-now-button"))
		runPath = p.waitLocation("the run's page", func(path string) bool {
			return strings.HasPrefix(path, "/ui/runs/") && !strings.HasPrefix(path, "/ui/runs/live")
		}, 45*time.Second, func() string { return demo.logOf(path.Base(appPath), 40) })
		final := func() bool {
			st, err := p.tryText("#run-state")
			return err == nil && slices.Contains([]string{"retiring", "done", "failed", "abandoned"}, st)
		}
		for deadline := time.Now().Add(90 * time.Second); !final(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the run at %s did not finish within 90s:\n%s", runPath, p.text("main"))
			}
		}
		require.Contains(t, []string{"retiring", "done"}, p.text("#run-state"), "the run at %s: %s", runPath, p.text("main"))
		require.GreaterOrEqual(t, p.count("#timeline li"), 4, "the timeline shows the steps")
		timeline = p.text("#timeline")
		require.Contains(t, timeline, "Verified")
		if strings.Contains(timeline, "trigger manual") {
			break
		}
		require.Less(t, attempt, 2, "a second Rotate now rotates by hand:\n%s", timeline)
		require.EqualValues(t, 200, p.open(appPath))
	}
	// The new secret lives the application's 20 days, not the policy's 30.
	require.Contains(t, timeline, "valid until "+time.Now().UTC().Add(20*24*time.Hour).Format("2006-01-02"), timeline)
	p.shot("run.png")
	// The page as reloaded (what JavaScript-off readers see) has the same
	// steps the stream added.
	steps := p.count("#timeline li")
	require.EqualValues(t, 200, p.open(runPath))
	require.Equal(t, steps, p.count("#timeline li"))

	// Who did it: the audit log names oscar for the settings and the
	// rotation.
	require.EqualValues(t, 200, p.click(`header nav a[href="/ui/audit"]`))
	// rotor's own steps fill the newest page: ask for oscar's records.
	p.do(chromedp.SendKeys(chromedp.CSS(`form#audit-filter input[name="actor"]`), "oscar"))
	p.do(chromedp.Click(chromedp.CSS(`form#audit-filter button[type="submit"]`), chromedp.NodeVisible))
	p.waitFor("oscar's records, swapped in", `location.search.includes("actor=oscar") && document.querySelector('tr.audit-row[data-action="update-settings"]') !== null`)
	actors := map[string]string{}
	for _, a := range []string{"update-settings", "rotate"} {
		sel := `tr.audit-row[data-action="` + a + `"]`
		require.True(t, p.exists(sel), "the audit log has a %s record", a)
		actors[a] = eval[string](p, `document.querySelector('`+sel+`').dataset.actor`)
	}
	require.Equal(t, actors["update-settings"], actors["rotate"])
	require.True(t, strings.HasPrefix(actors["rotate"], "user:"), actors["rotate"])
	require.Contains(t, p.text(`tr.audit-row[data-action="update-settings"]`), "Oscar")
	p.shot("audit.png")

	// Sign out, and the pages want a sign-in again.
	require.EqualValues(t, 200, p.click("form#logout button"))
	require.Equal(t, "/login?signed_out=1", p.location())
	p.open("/ui/applications")
	require.True(t, p.onSimulatorSignIn(), "signed out, /ui/applications leads to sign-in, not %s", p.location())
}

// TestWithoutJavaScript: with JavaScript off, sign-in (the callback's page
// moves on by itself) and the applications search (the form submits as a
// page load) still work.
func TestWithoutJavaScript(t *testing.T) {
	p := newPage(t, sharedDemo(t).URL, withoutJavaScript())

	require.EqualValues(t, 200, p.signIn("vera"))
	require.Equal(t, "/ui/", p.location())
	require.Contains(t, p.text("#name"), "Vera")
	require.Equal(t, "undefined", eval[string](p, "typeof htmx"), "JavaScript is off: htmx did not run")

	require.EqualValues(t, 200, p.open("/ui/applications"))
	all := p.count("#rows tr")
	p.do(chromedp.SendKeys(chromedp.CSS("#q"), "web-"))
	loads := p.loadCount()
	require.EqualValues(t, 200, p.navigate("search", chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`), chromedp.NodeVisible), nil))
	require.Greater(t, p.loadCount(), loads, "without JavaScript the search is a page load")
	require.Equal(t, "web-", p.query().Get("q"))
	names := p.columnTexts("#rows tr td:first-child")
	require.NotEmpty(t, names)
	require.Less(t, len(names), all)
	for _, n := range names {
		require.True(t, strings.HasPrefix(n, "web-"), "search for web- shows %q", n)
	}
	p.shot("applications-nojs.png")
}

// TestBreakGlassAdmin: an organization no Entra role makes anyone admin
// of gets a break-glass admin, whose password rotor prints once on its
// console; with it the admin signs in at /login/local. The newcomer's
// demo binds Rotor.Admin (ada), so it prints none; this demo leaves that
// binding out.
func TestBreakGlassAdmin(t *testing.T) {
	require.NotContains(t, sharedDemo(t).Out.String(), "break-glass admin.\n", "the demo as shipped makes ada admin: no break-glass password")
	d := ownDemo(t, cli.DemoOptions{NoEntraAdmin: true})
	org, login, password := d.breakGlass(t)
	require.Equal(t, "default", org)
	require.Equal(t, d.URL+"/login/local", login, "the password's line says where to sign in")

	p := newPage(t, d.URL)
	require.EqualValues(t, 200, p.open(login+"?return_to=/ui/"))
	require.Equal(t, "default", p.value(`form#local input[name="org"]`))
	p.shot("signin-breakglass.png")
	p.do(chromedp.SendKeys(chromedp.CSS(`form#local input[name="password"]`), password))
	require.EqualValues(t, 200, p.click(`form#local button[type="submit"]`))
	require.Equal(t, "/ui/", p.location())
	require.Contains(t, p.text("#name"), "break-glass admin")
	require.Equal(t, "admin", p.text("#role"))
}

// TestNavigation follows every link of the header's navigation, as ada
// (admin, who may see every page): each renders (200) or is a clear 404
// (a section whose page is not built yet), and none breaks its CSP.
func TestNavigation(t *testing.T) {
	p := newPage(t, sharedDemo(t).URL)
	require.EqualValues(t, 200, p.signIn("ada"))
	require.EqualValues(t, 200, p.open("/ui/applications"))
	links := p.links("header nav a")
	require.GreaterOrEqual(t, len(links), 2, "the header has the navigation")
	for _, href := range links {
		u, err := url.Parse(href)
		require.NoError(t, err)
		require.Empty(t, u.Host, "the navigation stays on rotor: %s", href)
		// Chromium logs a 404 as a failed load: expected for this page.
		full := p.url(u.Path)
		p.allow(func(m chromedp.ConsoleMessage) bool {
			return m.Source == "network" && m.URL == full && strings.Contains(m.Text, "status of 404")
		})
		status := p.open(u.Path)
		require.Contains(t, []int64{200, 404}, status, "%s answers %d", href, status)
		require.Equal(t, u.Path, p.location(), "%s is where the link leads", href)
		if status == 404 {
			require.Contains(t, strings.ToLower(p.text("body")), "not found", "%s: a 404 says so", href)
			continue
		}
		p.shot(shotName(u.Path))
	}
}

// TestRigCatchesConsoleErrors: the rig itself notices what the flows rely
// on it to notice: a CSP violation and a JavaScript exception (a test
// that cannot fail is a defect).
func TestRigCatchesConsoleErrors(t *testing.T) {
	srv := cspTestServer(t)
	p := newPage(t, srv)
	require.EqualValues(t, 200, p.open("/"))
	p.waitFor("the script's exception", `document.documentElement.dataset.ran === "yes"`)
	var csp, exception bool
	waitUntil(t, "both errors in the console", func() bool {
		for _, m := range p.consoleErrors() {
			csp = csp || strings.Contains(m.Text, "Content Security Policy")
			exception = exception || (m.IsException() && strings.Contains(m.Text, "rig-test-boom"))
		}
		return csp && exception
	})
	// Both expected: the test's end does not fail on them.
	p.allow(func(chromedp.ConsoleMessage) bool { return true })
}
