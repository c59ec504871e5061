// Package metrics owns rotor's Prometheus endpoint: what /metrics serves,
// under which names and labels (docs/metrics.md is the list).
//
// Everything is labelled by what a team alerts on and nothing finer:
// organization, connection, outcome, service, status class, AADSTS code.
// Never by an application's name or id (tens of thousands of series, and
// a name can say more than its owner wants a monitoring system to keep),
// never by a URL, and never with a secret: the hooks that feed this
// package (rotation.Observer, azure.RequestObserver, the connections'
// sign-in counter) are given nothing else to label with.
//
// The rest of rotor does not import Prometheus: the rotation engine and
// the Azure clients report through their own narrow interfaces, which
// Metrics implements, and the inventory is read from the store at scrape
// time by a collector of this package. Each Metrics has its own registry,
// not Prometheus' global one, so several rotors in one process (tests,
// `rotor demo`) never share counters.
package metrics

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
)

// Label names, the same everywhere.
const (
	labelOrg         = "org"
	labelConnection  = "connection"
	labelOutcome     = "outcome"
	labelService     = "service"
	labelStatusClass = "status_class"
	labelAADSTS      = "aadsts"
	labelWindow      = "window"
	labelTenant      = "tenant"
	labelPurpose     = "purpose"
	labelCloud       = "cloud"
)

// countedServices are the services whose throttling and retry counters
// start at zero for each connection; others appear when first counted.
var countedServices = []azure.Service{azure.ServiceGraph, azure.ServiceKeyVault, azure.ServiceEntra}

// rotationBuckets span a rotation from planned to retiring: seconds when
// Entra replicates at once, minutes while it does not (verify_timeout is
// 5m by default and at most 45m).
var rotationBuckets = []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 2700}

// Options build a Metrics.
type Options struct {
	// Inventory is read at scrape time for the expiry gauges; nil leaves
	// them out.
	Inventory Inventory
	// Health reports every connection's health as this process knows it;
	// nil leaves the connection gauges out.
	Health func() []ConnectionHealth
	// Clock is what "expiring within 7 days" is measured from.
	Clock clock.Clock
	// InventoryTTL is how long one reading of the inventory serves
	// scrapes (default 30s): a large inventory is read once per TTL, not
	// once per scrape of every Prometheus replica.
	InventoryTTL time.Duration
	// Logger receives what goes wrong while serving a scrape.
	Logger *slog.Logger
}

// Metrics is rotor's registry and the counters the rest of rotor reports
// to. It implements rotation.Observer; Requests gives the Azure clients of
// one connection their azure.RequestObserver. It is safe for concurrent
// use.
type Metrics struct {
	reg     *prometheus.Registry
	log     *slog.Logger
	handler http.Handler

	runs      *prometheus.CounterVec
	rotation  *prometheus.HistogramVec
	requests  *prometheus.CounterVec
	throttled *prometheus.CounterVec
	retries   *prometheus.CounterVec
	signIns   *prometheus.CounterVec
}

var _ rotation.Observer = (*Metrics)(nil)

// New builds a Metrics with its own registry: rotor's metrics, Go's
// runtime and the process's.
func New(o Options) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: cmp.Or(o.Logger, slog.New(slog.DiscardHandler)),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_runs_total",
			Help: "Rotation runs by how they ended (done, failed_transient, failed_permanent, failed_removed, abandoned), and Rotate calls that found the application busy or lost the run to another process (busy, lease_lost). Counted by the process that decided it.",
		}, []string{labelOrg, labelConnection, labelOutcome}),
		rotation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rotor_rotation_duration_seconds",
			Help:    "Time from a run's planned step to retiring: the new secret is in every sink and Entra accepts it.",
			Buckets: rotationBuckets,
		}, []string{labelOrg, labelConnection}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_azure_requests_total",
			Help: "HTTP attempts (retries included) rotor's Azure clients made, by service (graph, keyvault, entra, arm, other) and status class (2xx, 4xx, 5xx, …; error when no answer came).",
		}, []string{labelOrg, labelConnection, labelService, labelStatusClass}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_azure_throttled_total",
			Help: "HTTP attempts answered 429 Too Many Requests, by service.",
		}, []string{labelOrg, labelConnection, labelService}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_azure_retries_total",
			Help: "HTTP attempts that repeated one answered 408, 429 or 5xx or not answered at all (azcore's retries), by service.",
		}, []string{labelOrg, labelConnection, labelService}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_connection_signin_failures_total",
			Help: "Token requests of a connection's identity that failed, by Entra's AADSTS code (none when Entra did not answer with one: network, timeout).",
		}, []string{labelOrg, labelConnection, labelAADSTS}),
	}
	m.reg.MustRegister(m.runs, m.rotation, m.requests, m.throttled, m.retries, m.signIns,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if o.Inventory != nil {
		m.reg.MustRegister(newInventoryCollector(o.Inventory, cmp.Or[clock.Clock](o.Clock, clock.Real{}), cmp.Or(o.InventoryTTL, 30*time.Second), m.log))
	}
	if o.Health != nil {
		m.reg.MustRegister(healthCollector{health: o.Health})
	}
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrintln{m.log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	}))
	return m
}

// Handler serves the registry in Prometheus' text format (or OpenMetrics
// or protobuf, as the scraper asks). A collector that fails is logged and
// left out; the rest is still served (rotor_inventory_up says when the
// inventory could not be read).
func (m *Metrics) Handler() http.Handler { return m.handler }

// Gatherer is the registry, for tests and for serving it elsewhere.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// AddConnection starts a connection's counters at zero, so that an alert
// on their increase sees the first failed run or the first 429 (a series
// that appears at 1 has no increase to see).
func (m *Metrics) AddConnection(org domain.OrgID, connection string) {
	o := string(org)
	for _, out := range rotation.RunOutcomes() {
		m.runs.WithLabelValues(o, connection, string(out))
	}
	m.rotation.WithLabelValues(o, connection)
	for _, s := range countedServices {
		m.throttled.WithLabelValues(o, connection, string(s))
		m.retries.WithLabelValues(o, connection, string(s))
	}
}

// ForgetConnection drops every series of a connection that no longer
// exists.
func (m *Metrics) ForgetConnection(org domain.OrgID, connection string) {
	l := prometheus.Labels{labelOrg: string(org), labelConnection: connection}
	m.runs.DeletePartialMatch(l)
	m.rotation.DeletePartialMatch(l)
	m.requests.DeletePartialMatch(l)
	m.throttled.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
	m.signIns.DeletePartialMatch(l)
}

// Observe implements rotation.Observer: one run outcome.
func (m *Metrics) Observe(org domain.OrgID, connection string, outcome rotation.RunOutcome) {
	m.runs.WithLabelValues(string(org), connection, string(outcome)).Inc()
}

// Rotated implements rotation.Observer: a run reached retiring after d.
func (m *Metrics) Rotated(org domain.OrgID, connection string, d time.Duration) {
	m.rotation.WithLabelValues(string(org), connection).Observe(d.Seconds())
}

// SignInFailed counts one failed token request of a connection's identity;
// aadsts is Entra's code, 0 when Entra gave none.
func (m *Metrics) SignInFailed(org domain.OrgID, connection string, aadsts int) {
	code := "none"
	if aadsts > 0 {
		code = strconv.Itoa(aadsts)
	}
	m.signIns.WithLabelValues(string(org), connection, code).Inc()
}

// Requests is the azure.RequestObserver of one connection's clients.
func (m *Metrics) Requests(org domain.OrgID, connection string) azure.RequestObserver {
	return connRequests{m: m, org: string(org), conn: connection}
}

// connRequests counts one connection's HTTP attempts.
type connRequests struct {
	m         *Metrics
	org, conn string
}

var _ azure.RequestObserver = connRequests{}

func (r connRequests) ObserveAttempt(a azure.Attempt) {
	svc := string(a.Service)
	r.m.requests.WithLabelValues(r.org, r.conn, svc, statusClass(a.Status)).Inc()
	if a.Status == http.StatusTooManyRequests {
		r.m.throttled.WithLabelValues(r.org, r.conn, svc).Inc()
	}
	if a.Retry {
		r.m.retries.WithLabelValues(r.org, r.conn, svc).Inc()
	}
}

// statusClass is "2xx" for 200-299 and so on; "error" when no answer came.
func statusClass(status int) string {
	switch {
	case status == 0:
		return "error"
	case status >= 100 && status < 600:
		return fmt.Sprintf("%dxx", status/100)
	}
	return "other"
}

// slogPrintln is promhttp's error log on rotor's logger.
type slogPrintln struct{ log *slog.Logger }

func (l slogPrintln) Println(v ...any) {
	l.log.Error("serving /metrics", "error", fmt.Sprint(v...))
}
