package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Inventory is what the expiry gauges are read from: every organization,
// its connections, and its applications a page at a time. The store
// implements it.
type Inventory interface {
	ListOrgs(ctx context.Context) ([]store.Org, error)
	ListConnections(ctx context.Context, org domain.OrgID) ([]store.Connection, error)
	ListApplications(ctx context.Context, p store.ListApplicationsParams) ([]domain.Application, error)
}

var _ Inventory = store.Store(nil)

// ConnectionHealth is one connection's health as the server tracks it
// (the same that /readyz answers from).
type ConnectionHealth struct {
	Org        domain.OrgID
	Connection string
	// Failing is true while the connection cannot sign in or sync.
	Failing bool
	// LastSuccess is when it last signed in or synced; zero if never.
	LastSuccess time.Time
}

// expiryWindows are the "expiring within" windows the gauges count, with
// their label values: a week to act, a month to plan, a quarter to see.
var expiryWindows = []struct {
	label string
	d     time.Duration
}{
	{"7d", 7 * 24 * time.Hour},
	{"30d", 30 * 24 * time.Hour},
	{"90d", 90 * 24 * time.Hour},
}

// inventoryPage is how many applications one store read returns.
const inventoryPage = 1000

// inventoryReadTimeout bounds one reading of the inventory: a scrape
// should fail rather than hang on a locked database.
const inventoryReadTimeout = 20 * time.Second

var (
	descNextExpiry = prometheus.NewDesc("rotor_credentials_next_expiry_timestamp_seconds",
		"Soonest end (Unix seconds) of a credential still valid, over the applications the connection sees (with an all_owned policy: those it governs). Absent when it sees none.",
		[]string{labelOrg, labelConnection}, nil)
	descExpiring = prometheus.NewDesc("rotor_credentials_expiring",
		"Credentials still valid that end within the window (7d, 30d, 90d; each includes the shorter), over the applications the connection sees.",
		[]string{labelOrg, labelConnection, labelWindow}, nil)
	descExpired = prometheus.NewDesc("rotor_credentials_expired",
		"Credentials whose end has passed and that are still on an application the connection sees.",
		[]string{labelOrg, labelConnection}, nil)
	descApplications = prometheus.NewDesc("rotor_applications",
		"Applications in the inventory that the connection sees.",
		[]string{labelOrg, labelConnection}, nil)
	descManageable = prometheus.NewDesc("rotor_applications_manageable",
		"Applications in the inventory whose credentials the connection may change (its identity owns them).",
		[]string{labelOrg, labelConnection}, nil)
	descConnectionInfo = prometheus.NewDesc("rotor_connection_info",
		"One per connection in the store, always 1: its tenant, purpose and cloud, to join on.",
		[]string{labelOrg, labelConnection, labelTenant, labelPurpose, labelCloud}, nil)
	descInventoryUp = prometheus.NewDesc("rotor_inventory_up",
		"1 when the inventory gauges could be read from the store at this scrape (or within the cache's 30s), 0 when the read failed.",
		nil, nil)
)

// inventoryCollector computes the expiry gauges at scrape time in one
// paged pass over the store, and serves that reading for ttl.
type inventoryCollector struct {
	inv   Inventory
	clock clock.Clock
	ttl   time.Duration
	log   *slog.Logger
	// page is how many applications one store read asks for.
	page int

	mu   sync.Mutex
	at   time.Time
	last []prometheus.Metric
}

func newInventoryCollector(inv Inventory, c clock.Clock, ttl time.Duration, log *slog.Logger) *inventoryCollector {
	return &inventoryCollector{inv: inv, clock: c, ttl: ttl, log: log, page: inventoryPage}
}

// Describe implements prometheus.Collector.
func (c *inventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNextExpiry, descExpiring, descExpired, descApplications, descManageable, descConnectionInfo, descInventoryUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Concurrent scrapes wait for one
// reading rather than each reading the store.
func (c *inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if c.last == nil || now.Sub(c.at) >= c.ttl || now.Before(c.at) {
		ctx, cancel := context.WithTimeout(context.Background(), inventoryReadTimeout)
		ms, err := c.read(ctx, now)
		cancel()
		if err != nil {
			c.log.Error("reading the inventory for /metrics failed; its gauges are left out of this scrape", "error", err)
			c.last = nil
			ch <- prometheus.MustNewConstMetric(descInventoryUp, prometheus.GaugeValue, 0)
			return
		}
		c.last, c.at = ms, now
	}
	for _, m := range c.last {
		ch <- m
	}
}

// connTally is what one connection sees of the inventory.
type connTally struct {
	apps, manageable int
	next             time.Time
	expiring         []int // by expiryWindows
	expired          int
}

func newTally() *connTally { return &connTally{expiring: make([]int, len(expiryWindows))} }

// read reads every organization's connections and applications once.
func (c *inventoryCollector) read(ctx context.Context, now time.Time) ([]prometheus.Metric, error) {
	orgs, err := c.inv.ListOrgs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	out := []prometheus.Metric{prometheus.MustNewConstMetric(descInventoryUp, prometheus.GaugeValue, 1)}
	for _, o := range orgs {
		ms, err := c.readOrg(ctx, o.ID, now)
		if err != nil {
			return nil, fmt.Errorf("organization %s: %w", o.ID, err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

func (c *inventoryCollector) readOrg(ctx context.Context, org domain.OrgID, now time.Time) ([]prometheus.Metric, error) {
	conns, err := c.inv.ListConnections(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	var out []prometheus.Metric
	o := string(org)
	tallies := map[string]*connTally{}
	for _, cn := range conns {
		out = append(out, prometheus.MustNewConstMetric(descConnectionInfo, prometheus.GaugeValue, 1, o, cn.Name, cn.TenantID, cn.Purpose, cn.Cloud))
		// Connections that read applications have their gauges even when
		// they see none, so "0 expiring" is a value, not a gap.
		if cn.Purpose == "rotation" || cn.Purpose == "read" {
			tallies[cn.Name] = newTally()
		}
	}
	p := store.ListApplicationsParams{Org: org, Limit: c.page}
	for {
		apps, err := c.inv.ListApplications(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("list applications: %w", err)
		}
		for i := range apps {
			tallyApp(tallies, &apps[i], now)
		}
		if len(apps) < p.Limit {
			break
		}
		last := apps[len(apps)-1]
		p.AfterName, p.AfterObjectID = last.DisplayName, last.ObjectID
	}
	names := make([]string, 0, len(tallies))
	for n := range tallies {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := tallies[n]
		out = append(out,
			prometheus.MustNewConstMetric(descApplications, prometheus.GaugeValue, float64(t.apps), o, n),
			prometheus.MustNewConstMetric(descManageable, prometheus.GaugeValue, float64(t.manageable), o, n),
			prometheus.MustNewConstMetric(descExpired, prometheus.GaugeValue, float64(t.expired), o, n))
		for i, w := range expiryWindows {
			out = append(out, prometheus.MustNewConstMetric(descExpiring, prometheus.GaugeValue, float64(t.expiring[i]), o, n, w.label))
		}
		if !t.next.IsZero() {
			out = append(out, prometheus.MustNewConstMetric(descNextExpiry, prometheus.GaugeValue, float64(t.next.Unix()), o, n))
		}
	}
	return out, nil
}

// tallyApp counts one application's credentials for every connection that
// sees it. An application two connections see counts for both: the
// gauges are per connection, and summing them over connections counts it
// twice.
func tallyApp(tallies map[string]*connTally, a *domain.Application, now time.Time) {
	for _, acc := range a.Access {
		t := tallies[acc.Connection]
		if t == nil {
			t = newTally()
			tallies[acc.Connection] = t
		}
		t.apps++
		if acc.CanChange {
			t.manageable++
		}
		for _, cr := range a.Credentials {
			if !cr.End.After(now) {
				t.expired++
				continue
			}
			if t.next.IsZero() || cr.End.Before(t.next) {
				t.next = cr.End
			}
			for i, w := range expiryWindows {
				if !cr.End.After(now.Add(w.d)) {
					t.expiring[i]++
				}
			}
		}
	}
}

// healthCollector reports the connections' health at scrape time.
type healthCollector struct {
	health func() []ConnectionHealth
}

var (
	descFailing = prometheus.NewDesc("rotor_connection_failing",
		"1 while the connection cannot sign in or sync (the same that makes /readyz answer 503), 0 once it works. Present once the connection was first tried.",
		[]string{labelOrg, labelConnection}, nil)
	descLastSuccess = prometheus.NewDesc("rotor_connection_last_success_timestamp_seconds",
		"When (Unix seconds) the connection last signed in or synced in this process.",
		[]string{labelOrg, labelConnection}, nil)
)

// Describe implements prometheus.Collector.
func (healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descFailing
	ch <- descLastSuccess
}

// Collect implements prometheus.Collector.
func (h healthCollector) Collect(ch chan<- prometheus.Metric) {
	for _, c := range h.health() {
		failing := 0.0
		if c.Failing {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, failing, string(c.Org), c.Connection)
		if !c.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue, float64(c.LastSuccess.Unix()), string(c.Org), c.Connection)
		}
	}
}
