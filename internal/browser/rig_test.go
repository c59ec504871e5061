package browser_test

// The rig: rotor started as `rotor demo` starts it (cli.StartDemo), and a
// headless Chromium per test, whose console is watched: a JavaScript
// exception, a console.error or a browser-log error (a CSP violation is
// one) fails the test unless the test said it expects it.
//
// A flow reads like what a person does:
//
//	p := newPage(t, sharedDemo(t).URL)
//	p.signIn("oscar")               // on the simulator's Entra page
//	p.open("/ui/applications")
//	p.click(`a[href="/ui/audit"]`) // waits for the page, returns its status
//	p.shot("audit.png")

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/cli"
)

// pageTimeout bounds each test's browser: a flow that hangs fails.
const pageTimeout = 150 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	demos.closeAll()
	os.Exit(code)
}

// rotorDemo is a demo serving on loopback.
type rotorDemo struct {
	// URL is rotor's base URL (http://127.0.0.1:port).
	URL string
	// Out is what the demo printed: stdout's narration and the console's
	// one-time lines (the break-glass password).
	Out *syncBuffer
	d   *cli.Demo
	// stop ends Serve; served reports Serve's end.
	stop   context.CancelFunc
	served chan error
}

// demoSet holds the demos the package started, closed by TestMain.
type demoSet struct {
	mu     sync.Mutex
	shared *rotorDemo
	err    error
	all    []*rotorDemo
}

var demos demoSet

// sharedDemo is the package's demo, as a newcomer gets it (started once,
// by the first test that needs it).
func sharedDemo(t *testing.T) *rotorDemo {
	t.Helper()
	browserPath(t) // no browser: skip (or fail) before starting anything
	demos.mu.Lock()
	defer demos.mu.Unlock()
	if demos.shared == nil && demos.err == nil {
		demos.shared, demos.err = startDemo(cli.DemoOptions{})
		if demos.shared != nil {
			demos.all = append(demos.all, demos.shared)
		}
	}
	require.NoError(t, demos.err, "the demo did not start")
	return demos.shared
}

// ownDemo starts a demo for one test, with o, stopped when the test ends.
func ownDemo(t *testing.T, o cli.DemoOptions) *rotorDemo {
	t.Helper()
	browserPath(t)
	d, err := startDemo(o)
	require.NoError(t, err, "the demo did not start")
	t.Cleanup(d.close)
	return d
}

func (s *demoSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.all {
		d.close()
	}
	s.all = nil
}

// startDemo runs cli.StartDemo on a free loopback port and serves it until
// close.
func startDemo(o cli.DemoOptions) (*rotorDemo, error) {
	out := &syncBuffer{}
	o.Addr = "127.0.0.1:0"
	o.Stdout, o.Console = out, out
	ctx, cancel := context.WithCancel(context.Background())
	d, err := cli.StartDemo(ctx, o)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start the demo: %w\n%s", err, out.String())
	}
	rd := &rotorDemo{Out: out, d: d, stop: cancel, served: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		rd.served <- d.Rotor.Serve(ctx, func(addr string) { ready <- addr })
	}()
	select {
	case addr := <-ready:
		rd.URL = "http://" + addr
		return rd, nil
	case err := <-rd.served:
		cancel()
		d.Close()
		return nil, fmt.Errorf("the demo stopped before serving: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		rd.close()
		return nil, fmt.Errorf("the demo did not serve within 60s\n%s", out.String())
	}
}

// logOf is what rotor logged of one application (its object id) or run,
// the last n lines: what a failing test shows of the demo's side.
func (d *rotorDemo) logOf(id string, n int) string {
	b, err := os.ReadFile(filepath.Join(d.d.Dir, "rotor.log"))
	if err != nil {
		return fmt.Sprintf("rotor's log: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, id) {
			lines = append(lines, l)
		}
	}
	lines = lines[max(0, len(lines)-n):]
	return fmt.Sprintf("rotor's log of %s (last %d lines):\n%s", id, len(lines), strings.Join(lines, "\n"))
}

func (d *rotorDemo) close() {
	d.stop()
	select {
	case <-d.served:
	case <-time.After(30 * time.Second):
	}
	d.d.Close()
}

// breakGlassLine is what rotor prints once, on its console, when it makes
// an organization's break-glass admin (internal/web/breakglass.Ensure).
var breakGlassLine = regexp.MustCompile(`no one can administer organization (\S+) yet, so it has a break-glass admin\.\n\s+Sign in at (\S+) with this password\. It is shown only now and kept only as a hash:\n\n\s+(\S+)\n`)

// breakGlass reads the break-glass admin's organization, sign-in URL and
// password from what the demo printed.
func (d *rotorDemo) breakGlass(t *testing.T) (org, loginURL, password string) {
	t.Helper()
	m := breakGlassLine.FindStringSubmatch(d.Out.String())
	require.NotNil(t, m, "the demo printed no break-glass password:\n%s", d.Out.String())
	return m[1], m[2], m[3]
}

// browserPath is the Chromium to drive: ROTOR_BROWSER, or one on PATH.
// None: the test is skipped, unless ROTOR_REQUIRE_BROWSER is set (CI sets
// it: a browser test skipped there has not run).
func browserPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ROTOR_BROWSER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("ROTOR_BROWSER=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ROTOR_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium found (ROTOR_BROWSER, or chromium, chromium-browser, google-chrome on PATH) and ROTOR_REQUIRE_BROWSER is set")
	}
	t.Skip("no Chromium found: set ROTOR_BROWSER or install chromium (ROTOR_REQUIRE_BROWSER=1 makes this a failure)")
	return ""
}

// page is one headless Chromium, with a fresh profile, driving one tab
// for one test.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu sync.Mutex
	// console holds every message the page wrote; allowed says which
	// errors the test expects.
	console []chromedp.ConsoleMessage
	allowed []func(chromedp.ConsoleMessage) bool
	// docs are the responses that loaded a document, in order; loads
	// counts the pages that finished loading.
	docs  []docResponse
	loads int
}

type docResponse struct {
	URL    string
	Status int64
}

// pageOption changes how newPage starts the browser.
type pageOption func(*pageConfig)

type pageConfig struct{ noScript bool }

// withoutJavaScript runs the page with JavaScript off, as a person who
// turned it off sees rotor.
func withoutJavaScript() pageOption { return func(c *pageConfig) { c.noScript = true } }

// newPage starts Chromium for the test, its paths relative to base (a
// demo's URL). When the test ends the browser stops, and every console
// error the test did not allow fails it.
func newPage(t *testing.T, base string, opts ...pageOption) *page {
	t.Helper()
	var cfg pageConfig
	for _, o := range opts {
		o(&cfg)
	}
	exe := browserPath(t)
	aopts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		// The simulator's HTTPS has a certificate authority of its own,
		// which this fresh profile does not know (as a newcomer's browser
		// would not).
		chromedp.IgnoreCertErrors,
	}
	if os.Geteuid() == 0 {
		aopts = append(aopts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), pageTimeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, aopts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	p := &page{t: t, ctx: bctx, base: base}
	// The browser asks for /favicon.ico by itself; rotor has none. That
	// is the browser's request, not a page's error.
	p.allow(func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && strings.HasSuffix(m.URL, "/favicon.ico")
	})
	// Subscribed before the first page: nothing it says is lost.
	messages := chromedp.Console(bctx) // starts the browser
	responses := chromedp.Events(bctx, network.ResponseReceived)
	loaded := chromedp.Events(bctx, cdppage.LoadEventFired)
	var collectors sync.WaitGroup
	collectors.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m)
			p.mu.Unlock()
		}
	})
	collectors.Go(func() {
		for ev, err := range responses {
			if err != nil {
				return
			}
			if ev.Type == network.ResourceTypeDocument {
				p.mu.Lock()
				p.docs = append(p.docs, docResponse{ev.Response.URL, ev.Response.Status})
				p.mu.Unlock()
			}
		}
	})
	collectors.Go(func() {
		for _, err := range loaded {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.loads++
			p.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
		collectors.Wait()
		p.checkConsole()
	})
	require.NoError(t, chromedp.Do(bctx, chromedp.EmulateViewport(1280, 800)), "start Chromium (%s)", exe)
	if cfg.noScript {
		_, err := chromedp.Call(bctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		require.NoError(t, err, "turn JavaScript off")
	}
	return p
}

// isError is whether a console message is one a page must not cause: an
// exception, console.error, or an error in the browser's log (a CSP
// violation, a failed load).
func isError(m chromedp.ConsoleMessage) bool {
	return m.IsException() || m.Type == chromedp.ConsoleError
}

// allow lets the console report errors f matches without failing the
// test (a page that is expected to answer 404, say).
func (p *page) allow(f func(chromedp.ConsoleMessage) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed = append(p.allowed, f)
}

// consoleErrors are the errors the page reported that no allow matched.
func (p *page) consoleErrors() []chromedp.ConsoleMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []chromedp.ConsoleMessage
next:
	for _, m := range p.console {
		if !isError(m) {
			continue
		}
		for _, f := range p.allowed {
			if f(m) {
				continue next
			}
		}
		errs = append(errs, m)
	}
	return errs
}

func (p *page) checkConsole() {
	for _, m := range p.consoleErrors() {
		p.t.Errorf("browser console: %s (source %q, at %s:%d)", m, m.Source, m.URL, m.Line)
	}
}

// url is path on rotor.
func (p *page) url(path string) string {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	return p.base + path
}

// open loads path (on rotor, or a full URL) and returns the status of
// the page it ends on (after redirects).
func (p *page) open(path string) int64 {
	p.t.Helper()
	return p.navigate("open "+path, chromedp.Navigate(p.url(path)), nil)
}

// navigate runs step, which loads a page (a click on a link, a form's
// submission, a navigation), waits until a page has loaded at a location
// at accepts (nil: any; a page that moves on by itself, like sign-in's,
// passes through several) and returns the status it was served with.
func (p *page) navigate(what string, step chromedp.Action[chromedp.Void], at func(path string) bool) int64 {
	p.t.Helper()
	p.mu.Lock()
	before := p.loads
	p.mu.Unlock()
	require.NoError(p.t, chromedp.Do(p.ctx, step), what)
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Between two sites the tab changes process, and for a moment
		// has no page to ask.
		loc, err := p.tryLocation()
		p.mu.Lock()
		loads, docs := p.loads, p.docs
		p.mu.Unlock()
		if err == nil && loads > before && (at == nil || at(loc)) && len(docs) > 0 && docs[len(docs)-1].URL == p.url(loc) {
			return docs[len(docs)-1].Status
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no page loaded within 20s; at %s (%v)", what, loc, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// click clicks the first element sel (CSS) matches and waits for the page
// it loads; it returns the page's status.
func (p *page) click(sel string) int64 {
	p.t.Helper()
	return p.navigate("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible), nil)
}

// do runs steps that load no page.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, steps...))
}

// text is the visible text of the first element sel matches.
func (p *page) text(sel string) string {
	p.t.Helper()
	var (
		s   string
		err error
	)
	// A page that has just loaded may still replace its document (the
	// sign-in callback's page moves on by itself): a node found in the
	// old one is gone by the time its text is asked for. Ask again.
	for range 5 {
		s, err = chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err == nil || !strings.Contains(err.Error(), "No node with given id") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(p.t, err, "text of %s", sel)
	return strings.TrimSpace(s)
}

// tryText is the text of sel when the page has it (no waiting).
func (p *page) tryText(sel string) (string, error) {
	return chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf("document.querySelector(%q)?.textContent.trim() ?? ''", sel)))
}

// textContent is the text of the first element sel matches, hidden or
// not (a datalist's options are never visible).
func (p *page) textContent(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf("document.querySelector(%q).textContent", sel))
}

// count is how many elements sel matches now.
func (p *page) count(sel string) int {
	p.t.Helper()
	return eval[int](p, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// location is the page's URL, without rotor's base. It asks the
// browser's history, not the page's scripts, so it works with JavaScript
// off.
func (p *page) location() string {
	p.t.Helper()
	loc, err := p.tryLocation()
	require.NoError(p.t, err)
	return loc
}

// tryLocation is location, with the error a page in the middle of
// loading may give.
func (p *page) tryLocation() (string, error) {
	h, err := chromedp.Run(p.ctx, chromedp.NavigationEntries())
	if err != nil {
		return "", err
	}
	if len(h.Entries) == 0 {
		return "", errors.New("no history")
	}
	return strings.TrimPrefix(h.Entries[h.CurrentIndex].URL, p.base), nil
}

// waitFor waits until the JavaScript expression js is true (JavaScript
// must be on).
func (p *page) waitFor(what, js string) {
	p.t.Helper()
	p.waitForWithin(what, js, 15*time.Second)
}

// waitForWithin is waitFor with its own limit (a rotation takes longer
// than a swap).
func (p *page) waitForWithin(what, js string, limit time.Duration) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(limit)))
	require.NoError(p.t, err, "waiting for %s (%s)", what, js)
}

// waitLocation waits until the tab is at a path at accepts, across the
// page loads it takes to get there (a page that reloads itself).
func (p *page) waitLocation(what string, at func(path string) bool, limit time.Duration, explain ...func() string) string {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if loc, err := p.tryLocation(); err == nil && at(loc) {
			return loc
		}
		if time.Now().After(deadline) {
			loc, _ := p.tryLocation()
			main, _ := p.tryText("main")
			why := ""
			for _, f := range explain {
				why += "\n" + f()
			}
			p.t.Fatalf("waited %s for %s; the tab is at %s:\n%s%s", limit, what, loc, main, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitTrue evaluates js (a boolean expression) until it is true, in
// whatever page the tab has loaded by then: a page that moves on by
// itself does not break it, as it does a poll inside one page.
func (p *page) waitTrue(what, js string, limit time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited %s for %s (%s): %v", limit, what, js, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eval evaluates js in the page (JavaScript on).
func eval[T any](p *page, js string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](js))
	require.NoError(p.t, err, "evaluate %s", js)
	return v
}

// links are the hrefs of the elements sel matches, read from the DOM
// (works with JavaScript off: the protocol reads the DOM, not the page's
// scripts).
func (p *page) links(sel string) []string {
	p.t.Helper()
	attrs, err := chromedp.Run(p.ctx, chromedp.AttributesAll(chromedp.CSSAll(sel)))
	require.NoError(p.t, err, "links %s", sel)
	var hrefs []string
	for _, a := range attrs {
		hrefs = append(hrefs, a["href"])
	}
	return hrefs
}

// signIn signs in to rotor through the simulator's Entra as user (ada,
// oscar or vera: the account button on the simulator's page whose
// account is user@…), starting from /ui/, and returns the status of the
// page it lands on.
func (p *page) signIn(user string) int64 {
	p.t.Helper()
	p.open("/ui/")
	require.True(p.t, p.onSimulatorSignIn(), "opening /ui/ signed out leads to the simulator's sign-in page, not %s", p.location())
	p.shot("signin-simulator.png")
	// The button's text is "Display Name · user@domain": XPath can match
	// it, CSS cannot.
	return p.navigate("pick "+user, chromedp.Click(fmt.Sprintf(`//form[@id="pick"]/button[contains(., " · %s@")]`, user), chromedp.NodeVisible),
		func(loc string) bool { return strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "/auth/") })
}

// onSimulatorSignIn says whether the page is the simulator's Entra
// sign-in page.
func (p *page) onSimulatorSignIn() bool {
	p.t.Helper()
	return strings.Contains(p.location(), "/oauth2/v2.0/authorize") && p.exists("form#pick")
}

// exists says whether sel (CSS) matches anything now.
func (p *page) exists(sel string) bool {
	p.t.Helper()
	ids, err := chromedp.Run(p.ctx, chromedp.QueryNodeIDs(chromedp.CSSAll(sel), chromedp.AtLeast(0)))
	require.NoError(p.t, err, "query %s", sel)
	return len(ids) > 0
}

// shot saves a full-page PNG (1280 wide, 256 colours) of the page as
// name in ROTOR_SCREENSHOTS (if set).
func (p *page) shot(name string) {
	p.t.Helper()
	dir := os.Getenv("ROTOR_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	require.NoError(p.t, err, "screenshot %s", name)
	png, err = smallPNG(png)
	require.NoError(p.t, err, "screenshot %s", name)
	require.NoError(p.t, os.MkdirAll(dir, 0o755))
	require.NoError(p.t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
}

// loadCount is how many pages have finished loading in the tab.
func (p *page) loadCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loads
}

// value is the value of the form field sel.
func (p *page) value(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Value(chromedp.CSS(sel)))
	require.NoError(p.t, err, "value of %s", sel)
	return v
}

// columnTexts are the trimmed texts of every element sel matches.
func (p *page) columnTexts(sel string) []string {
	p.t.Helper()
	return eval[[]string](p, fmt.Sprintf("Array.from(document.querySelectorAll(%q), e => e.textContent.trim())", sel))
}

// query is the page's URL's query.
func (p *page) query() url.Values {
	p.t.Helper()
	u, err := url.Parse(p.location())
	require.NoError(p.t, err)
	return u.Query()
}

// shotName is the screenshot's name for a page of the UI: its path under
// /ui/ ("dashboard" for /ui/ itself).
func shotName(path string) string {
	name := strings.Trim(strings.TrimPrefix(path, "/ui"), "/")
	if name == "" {
		name = "dashboard"
	}
	return strings.ReplaceAll(name, "/", "-") + ".png"
}

// waitUntil waits, in the test's goroutine, for cond, at most 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// cspTestServer serves a page that breaks its own CSP (an inline script)
// and loads a script that throws: what the rig must catch.
func cspTestServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!doctype html><title>rig</title><script>document.title = "inline ran"</script><script src="/boom.js"></script>`)
	})
	mux.HandleFunc("GET /boom.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, `document.documentElement.dataset.ran = "yes"; throw new Error("rig-test-boom");`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// syncBuffer is a bytes.Buffer safe for the demo's goroutines to write
// while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
