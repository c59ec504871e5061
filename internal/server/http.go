package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// handler serves the health endpoint and a read-only status page;
// HTTPHandler adds the REST API (internal/api), which authenticates every
// request itself, and with sign_in the sign-in routes and the UI's pages
// under /ui/ (signin.go; /ui/ itself is the dashboard).
//
// The status page, which names applications and shows run journals and
// predates sign-in, is served only when rotor listens on loopback, and only to
// requests whose Host is a loopback name (so a web page the operator opens
// cannot read it through DNS rebinding). /healthz and /readyz are always
// served, and so is /metrics (unless metrics.enabled is false): Prometheus
// scrapes from another host, and what it serves names organizations,
// connections and tenants, as /readyz does, never an application or a
// secret.
func (s *Server) handler(loopback bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	if loopback {
		mux.Handle("GET /{$}", loopbackHostOnly(http.HandlerFunc(s.statusPage)))
		mux.Handle("GET /runs/{id}", loopbackHostOnly(http.HandlerFunc(s.runPage)))
	}
	return mux
}

// loopbackHostOnly refuses requests whose Host header is not a loopback name.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !isLoopbackHost(host) {
			http.Error(w, "the status page answers only to localhost", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopbackHost reports whether host (no port) names this machine's
// loopback interface.
func isLoopbackHost(host string) bool {
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	if _, err := s.store.CountApplications(r.Context(), s.cfg.Organization, ""); err != nil {
		status, code = "store unavailable", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": status})
}

// maxSinkParts bounds the sink targets /readyz names.
const maxSinkParts = 20

// readyz answers 503 naming every failing part — the database, each
// connection that cannot sign in or sync (with Entra's AADSTS code), each
// sink target whose check before a rotation failed — and
// 200 when none is; /healthz stays liveness (the process answers). The
// names it gives are connection and organization names, never a secret.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	type part struct {
		Part       string       `json:"part"`
		Org        domain.OrgID `json:"org,omitempty"`
		Connection string       `json:"connection,omitempty"`
		Error      string       `json:"error"`
		AADSTS     int          `json:"aadsts,omitempty"`
		Policy     string       `json:"policy,omitempty"`
		Sink       *int         `json:"sink,omitempty"`
		Target     string       `json:"target,omitempty"`
		Since      time.Time    `json:"since,omitzero"`
	}
	var failing []part
	if _, err := s.store.CountApplications(r.Context(), s.cfg.Organization, ""); err != nil {
		failing = append(failing, part{Part: "database", Error: "the database cannot be read"})
	}
	for _, c := range s.health.snapshot() {
		if c.Failing {
			failing = append(failing, part{Part: "connection", Org: c.Org, Connection: c.Name, Error: c.Failure, AADSTS: c.AADSTS, Since: c.LastFailure})
		}
	}
	// A sink target rotor cannot write to (a foreign or soft-deleted
	// secret, a missing permission): the rotations to it fail until a
	// human acts. At most maxSinkParts are named; the count says how many.
	sinks := s.health.failingSinks()
	for i, sh := range sinks {
		if i == maxSinkParts {
			failing = append(failing, part{Part: "sink", Error: fmt.Sprintf("and %d more failing sink targets", len(sinks)-maxSinkParts)})
			break
		}
		failing = append(failing, part{Part: "sink", Org: sh.Org, Policy: sh.Policy, Sink: &sh.Index, Target: sh.Target, Error: sh.Reason, Since: sh.Since})
	}
	w.Header().Set("Content-Type", "application/json")
	if len(failing) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "unready", "failing": failing})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "ready"})
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		if d := time.Until(t); d > -12*time.Hour && d < 12*time.Hour {
			return t.Local().Format("15:04:05")
		}
		return t.Local().Format("Jan 2 15:04")
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rotor</title>
{{if .Refresh}}<meta http-equiv="refresh" content="2">{{end}}
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}
.done{color:#070}.failed,.abandoned{color:#b00}.retiring{color:#055}
code{font-size:12px}
</style></head><body>
<h1>rotor</h1>
{{if .Run}}
<p><a href="/">← all runs</a></p>
<h2>Run {{.Run.ID}}</h2>
<p>{{.Run.AppName}} ({{.Run.AppID}}) · policy {{.Run.Policy}} · trigger {{.Run.Trigger}} · state <b class="{{.Run.State}}">{{.Run.State}}</b>{{if .Run.Error}} · {{.Run.Error}}{{end}}</p>
<table><tr><th>time</th><th>state</th><th>step</th><th>what happened</th></tr>
{{range .Run.Events}}<tr><td>{{ts .At}}</td><td>{{.State}}</td><td><code>{{.Step}}</code></td><td>{{.Message}}</td></tr>{{end}}
</table>
{{else}}
<p>{{.Apps}} applications in the inventory. Rotation runs, newest first (this page refreshes itself; open a run to read its journal).</p>
<details><summary>How a rotation goes</summary><ol>
<li><b>planned</b> — the intent is journaled before anything in Azure is touched.</li>
<li><b>created</b> — a new client secret named <code>rotor:&lt;run id&gt;</code> exists in Entra ID; its key id is journaled.</li>
<li><b>replicating</b> (a journal step) — rotor waits until Entra accepts the new secret, so no consumer ever reads one that does not work yet.</li>
<li><b>propagated</b> — every sink (Key Vault, …) holds the new value, written in order.</li>
<li><b>verified</b> — Entra issues a token for the new secret, checked again after delivery.</li>
<li><b>retiring</b> — consumers get the overlap to pick the new value up; older secrets rotor made stay valid until then.</li>
<li><b>done</b> — older rotor secrets removed; secrets rotor did not create are never touched.</li>
</ol><p>If rotor dies mid-run, the run is marked <b>abandoned</b> at the next start and a fresh run replaces it; the old secret is only removed after a newer one is verified everywhere.</p></details>
<table><tr><th>started</th><th>application</th><th>trigger</th><th>state</th><th>new key</th><th>retire at</th></tr>
{{range .Runs}}<tr><td>{{ts .CreatedAt}}</td><td><a href="/runs/{{.ID}}">{{.AppName}}</a></td><td>{{.Trigger}}</td><td class="{{.State}}">{{.State}}{{if .Error}}: {{.Error}}{{end}}</td><td><code>{{.NewKeyID}}</code></td><td>{{ts .RetireAt}}</td></tr>{{end}}
</table>
{{end}}
</body></html>`))

type pageData struct {
	Refresh bool
	Apps    int
	Runs    []domain.Run
	Run     *domain.Run
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	runs, err := s.store.ListRuns(r.Context(), store.ListRunsParams{Org: s.cfg.Organization, Limit: 200})
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	n, err := s.store.CountApplications(r.Context(), s.cfg.Organization, "")
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, pageData{Refresh: true, Apps: n, Runs: runs})
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	run, err := s.store.GetRun(r.Context(), s.cfg.Organization, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, pageData{Refresh: !run.State.Terminal(), Run: run})
}
