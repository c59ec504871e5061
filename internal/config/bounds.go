package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// Bounds of the numeric and duration keys. A value outside them is either
// a typo (a missing unit, an extra zero) or would be refused, overflow or
// misbehave further down — in River, net.Listen or the engine — after
// rotor had started. docs/configuration.md lists each with its reason.
const (
	// MaxConcurrencyPerTenant: Graph throttles writes per tenant well
	// before 64 concurrent rotations; more only queue behind 429s. The
	// engine also sizes a semaphore by it.
	MaxConcurrencyPerTenant = 64
	// MaxRotationWorkers caps tenants × concurrency_per_tenant (the
	// engine's semaphores) and rotation.max_in_flight, which becomes the
	// number of River rotate workers. River refuses more than 10,000
	// workers in a queue (QueueNumWorkersMax); half of that keeps well
	// inside, and is more rotations at once than one SQLite-backed
	// process can journal anyway.
	MaxRotationWorkers = 5000
)

// span is the range a duration key accepts. low and high say what goes
// wrong below min and above max; they end the message.
type span struct {
	min, max  time.Duration
	low, high string
}

var (
	jitterSpan = span{0, day,
		"0s turns jitter off",
		"a due rotation would wait up to that long before it starts"}
	planIntervalSpan = span{time.Second, day,
		"the planner reads every application of the store each time; more often than once a second is busy work",
		"a credential that falls due would wait up to that long to be rotated"}
	syncIntervalSpan = span{time.Minute, day,
		"each sync reads every application of every tenant from Graph and would spend the tenants' throttling budget",
		"applications and credentials added outside rotor would be unseen for over a day"}
	// full_sync_interval's maximum is a day: Graph keeps change state for
	// seven days, and a listing now and then mends what change tracking
	// missed (a change Graph did not report, an overlapping sync's late
	// write).
	fullSyncIntervalSpan = span{0, day,
		"0s makes every sync a full listing",
		"a change Graph's change tracking did not report would stay unseen for over a day"}
	// ownership_interval's maximum is a day, as the full sync's: change
	// tracking does not report owners, so an application rotor was made
	// an owner of, or stopped owning, and that nothing else changed on,
	// is known only at the next reading.
	ownershipIntervalSpan = span{0, day,
		"0s reads the ownership at every sync",
		"an application rotor was made an owner of would wait over a day to be rotated"}
	// verify_timeout's maximum keeps a rotate job inside River's stuck-job
	// rescue: the job's timeout is verify_timeout + 10m (internal/jobs),
	// and River runs a job again once it has run for an hour
	// (RescueStuckJobsAfter's default), while the first run may still be
	// writing sinks.
	verifyTimeoutSpan = span{10 * time.Second, 45 * time.Minute,
		"Entra often takes tens of seconds to accept a new secret, so good rotations would fail",
		"a rotation's job may run verify_timeout + 10m, and the job system runs a job again once it has run an hour; a secret Entra has not accepted in 45 minutes will not be"}
	lifetimeSpan = span{time.Hour, 3650 * day,
		"Entra takes minutes to accept a new secret, and each rotation must finish well inside the lifetime",
		"a credential valid for over ten years is effectively permanent; Microsoft recommends under a year"}
	leaseTTLSpan = span{2 * time.Second, 10 * time.Minute,
		"a busy database could make a live process miss its heartbeat and lose its rotations",
		"a dead process's rotations would wait that long to be taken over"}
	retryAfterSpan = span{time.Second, time.Hour,
		"a failing run would be retried in a tight loop, spending Graph's throttling budget",
		"a throttled rotation would wait that long although its secret may be about to end"}
	retryPermanentAfterSpan = span{time.Minute, day,
		"a run a human must mend would be retried over and over, each time perhaps leaving a secret",
		"rotor would not look again for over a day after a human fixed the cause"}
	notifyBeforeSpan = span{0, 3650 * day,
		"0s warns only once a credential has expired",
		"no credential lives that long"}
)

// durIn is dur for a key with bounds: a value outside sp is reported and
// not usable.
func (b *builder) durIn(s scope, k string, d duration, def time.Duration, sp span) (time.Duration, bool, bool) {
	v, set, ok := b.dur(s, k, d, def)
	if !ok {
		return v, set, false
	}
	at := domain.FormatDuration(v)
	if d.src != "" && set {
		at += ", " + d.src
	}
	switch {
	case v < sp.min && sp.min == 0:
		b.bad(s, k, d.line, "%s (%s) must not be negative; %s", k, at, sp.low)
	case v < sp.min:
		b.bad(s, k, d.line, "%s (%s) is too short: use at least %s; %s", k, at, domain.FormatDuration(sp.min), sp.low)
	case v > sp.max:
		b.bad(s, k, d.line, "%s (%s) is too long: use at most %s; %s", k, at, domain.FormatDuration(sp.max), sp.high)
	default:
		return v, set, true
	}
	return v, set, false
}

// rotationWorkers checks that tenants × concurrency_per_tenant stays
// within MaxRotationWorkers. Tenants are counted as server.workers counts
// them: distinct tenant ids over every connection.
func (b *builder) rotationWorkers() {
	tenants := map[string]bool{}
	for _, c := range b.cfg.Connections {
		tenants[c.TenantID] = true
	}
	per := b.cfg.Rotation.ConcurrencyPerTenant
	if n := len(tenants); n*per > MaxRotationWorkers {
		b.bad(scope{}, "rotation.concurrency_per_tenant", 0,
			"rotation.concurrency_per_tenant (%d) × %d tenants is %d rotations at once, over rotor's limit of %d: lower concurrency_per_tenant to at most %d, or run several rotor processes",
			per, n, n*per, MaxRotationWorkers, MaxRotationWorkers/n)
	}
}

// hostnameLabel reports whether l is one label of a DNS host name.
func hostnameLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, r := range l {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// checkListen says what is wrong with a listen address, or "". It accepts
// what net.Listen("tcp", …) would: an empty host (every interface), an
// IP address (IPv6 in brackets, with an optional zone) or a host name, and
// a numeric port 0–65535 (0 picks a free one). Service names such as
// ":http" are refused: a number says which port without a lookup.
func checkListen(addr string) string {
	const eg = "e.g. 127.0.0.1:8080, [::1]:8080 or :8080"
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("listen %q must be host:port, %s", addr, eg)
	}
	var problems []string
	switch n, err := strconv.ParseUint(port, 10, 64); {
	case port == "":
		problems = append(problems, "the port is missing")
	case err != nil && strings.Trim(port, "0123456789") == "":
		problems = append(problems, fmt.Sprintf("port %s is not a port number (0-65535)", port))
	case err != nil:
		problems = append(problems, fmt.Sprintf("port %q must be a number 0-65535 (0 picks a free port)", port))
	case n > 65535:
		problems = append(problems, fmt.Sprintf("port %d is not a port number (0-65535)", n))
	}
	if host != "" && !validHost(host) {
		problems = append(problems, fmt.Sprintf("host %q is not an IP address or host name", host))
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("listen %q: %s; use host:port, %s", addr, strings.Join(problems, " and "), eg)
}

func validHost(h string) bool {
	ip, zone, _ := strings.Cut(h, "%")
	if net.ParseIP(ip) != nil {
		return zone == "" || strings.Contains(ip, ":")
	}
	if len(h) > 253 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	numeric := true
	for _, l := range labels {
		if !hostnameLabel(l) {
			return false
		}
		numeric = numeric && strings.Trim(l, "0123456789") == ""
	}
	// All digits but not an IP (300.1.1.1, 1.2.3): a mistyped address.
	return !numeric
}
