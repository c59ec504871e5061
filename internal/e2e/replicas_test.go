package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
)

// TestReplicasOnPostgres is issue 8's judgement: three `rotor serve`
// replicas share one PostgreSQL during a rotation wave over two tenants,
// and are SIGKILLed one at a time, each kill at its own rotation step
// (ROTOR_CRASH_AT, armed through ROTOR_CRASH_GATE when its turn comes),
// the killed replica restarted at once and serving again before the next
// kill, so that three are alive at every kill; then they run undisturbed
// until the wave is done. Afterwards:
//   - every application's Key Vault secret gets a token (Microsoft's SDKs);
//   - exactly one rotor credential per application remains after the
//     overlap, and nothing rotor did not create changed;
//   - no issued secret value is at rest: not in the logs, not in any row
//     of the schema;
//   - no rotation was doubled: no two runs of one application were active
//     at the same time, every secret Entra issued was asked for by the one
//     run active for its application then, no run got more than one
//     (but for its logged retries), and no application more than it has
//     runs;
//   - no run of a live replica was ever taken over (checked after every
//     kill, so that a broken lease check fails at once);
//   - the replicas shared the work: more than one did rotations, and runs
//     of killed replicas were taken over by others.
func TestReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	var issued issuedSecrets
	r := newRigOn(t, onPostgres, simtest.Options{Seed: "apps=40,tenants=2,expiring=1h,replication=300ms", OnSecretIssued: issued.add}, config.SimulatorConfig{
		// Two rotations at once per replica, so that the wave of 80
		// lasts long enough for the kills, one after the other, to come
		// during it. No jitter: a jittered rotation is a scheduled River
		// job, which only River's leader makes available, and a killed
		// leader is replaced only after River's leader TTL (15 s) — the
		// wave would stall at every third kill. Retirements are scheduled
		// jobs all the same, so the kills during them (done, retire) may
		// wait for a new leader.
		Rotation: config.SimulatorRotation{Jitter: "0s", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m", ConcurrencyPerTenant: 2, MaxInFlight: 2, LeaseTTL: "2s"},
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "4s"}},
	})
	ctx := context.Background()
	before := snapshot(ctx, t, r.info, r.graphs)

	// The kills, in order: which replica, at which step (counted from
	// when its turn comes). Every step differs; "retire:" is a removal
	// of an older credential (plain "retire" would count "retiring").
	kills := []struct {
		slot int
		at   string
	}{
		{0, "planned:2"}, {1, "created:3"}, {2, "sink:3"},
		{0, "propagated:2"}, {1, "verifying:3"}, {2, "verified:2"},
		{0, "retiring:2"}, {1, "done:2"}, {2, "retire::1"},
	}
	// nextKill is the step a replica's next process is armed for: its
	// first kill after the k-th ("" when none is left: it runs on).
	nextKill := func(slot, k int) string {
		for _, kl := range kills[k+1:] {
			if kl.slot == slot {
				return kl.at
			}
		}
		return ""
	}
	const replicas = 3
	var procs [replicas]*serveProc
	var lives []*serveProc
	for slot := range replicas {
		procs[slot] = r.startReplica(t, slot, 0, nextKill(slot, -1))
		lives = append(lives, procs[slot])
	}
	// After each kill the journal is checked for takeovers of live
	// processes' runs: a broken lease check shows there at once, before
	// it stalls the wave.
	start := time.Now()
	missed := 0
	for k, kl := range kills {
		p := procs[kl.slot]
		require.Equal(t, kl.at, p.crashAt)
		if strings.HasPrefix(kl.at, "done:") || strings.HasPrefix(kl.at, "retire:") {
			waitRetirementsFlowing(t, r.db, 30*time.Second)
		}
		require.NoError(t, os.WriteFile(p.gate, nil, 0o600), "arm replica %d", kl.slot)
		byHook, err := p.waitKilled(25 * time.Second)
		require.NoError(t, err)
		t.Logf("%5.1fs: replica %d (pid %d) killed at %s %s", time.Since(start).Seconds(), kl.slot, p.pid, kl.at,
			map[bool]string{true: "by its crash hook", false: "by the test: the step did not come within 25s"}[byHook])
		procs[kl.slot] = r.startReplica(t, kl.slot, k+1, nextKill(kl.slot, k))
		lives = append(lives, procs[kl.slot])
		require.NoError(t, procs[kl.slot].waitServing(30*time.Second))
		_, _ = requireOnlyDeadRunsTaken(t, r.db, processOf(t, r.db, lives))
		if !byHook {
			missed++
			require.LessOrEqual(t, missed, 2, "the kills must come at their rotation steps, during the wave: the wave stalled or ended before them")
		}
	}
	eventually(t, time.Minute, "every owned application to hold exactly one rotor credential, delivered to Key Vault", func() (bool, string) {
		return converged(ctx, t, r.info, r.graphs, domain.KindSecret, nil)
	})
	t.Logf("%5.1fs: converged", time.Since(start).Seconds())
	for _, p := range procs {
		require.NoError(t, p.stop(30*time.Second))
	}

	after := snapshot(ctx, t, r.info, r.graphs)
	requireOneRotorCredentialForeignUntouched(t, before, after)
	requireConsumersWork(ctx, t, r.info, r.graphs, after, domain.KindSecret)
	r.requireNoValueAtRest(t, issued.all())

	runs := readRuns(t, r.db)
	requireNoRotationDoubled(t, runs, issued.list(), lives)
	procOf := processOf(t, r.db, lives)
	// A dead process's runs are taken over once its lease expires, by
	// the periodic recovery (River's leader runs it every lease_ttl) or a
	// restarted process's; when the leader itself died, only after River
	// has elected another (its leader TTL is 15 s).
	taken, delays := requireOnlyDeadRunsTaken(t, r.db, procOf)
	t.Logf("runs taken over: %d; after each killed process's death, its first after %v", taken, delays)
	require.Positive(t, taken, "the kills left runs that were taken over")
	requireSharedWork(t, procOf, lives)
}

// serveProc is one `rotor serve` process of a replica: its log, its pid
// and, when armed, the step it is to die at and the gate file that arms
// it (ROTOR_CRASH_GATE).
type serveProc struct {
	slot               int
	log, crashAt, gate string
	pid                int
	cmd                *exec.Cmd
	done               chan error
	exited             bool
	exitErr            error
	// diedAt is when the test saw it die of SIGKILL.
	diedAt time.Time
}

// startReplica starts process n of replica slot, armed for crashAt unless
// it is "" (the hook counts only once the gate file exists). It is
// SIGKILLed when the test ends if it is still running then.
func (r *rig) startReplica(t *testing.T, slot, n int, crashAt string) *serveProc {
	t.Helper()
	p := &serveProc{slot: slot, crashAt: crashAt, log: r.log(fmt.Sprintf("replica%d-%d.log", slot, n)), done: make(chan error, 1)}
	logf, err := os.Create(p.log)
	require.NoError(t, err)
	p.cmd = exec.Command(r.bin, "serve", "--config", r.cfgPath)
	p.cmd.Env = r.env
	if crashAt != "" {
		p.gate = filepath.Join(filepath.Dir(r.cfgPath), fmt.Sprintf("armed-%d-%d", slot, n))
		p.cmd.Env = append(slices.Clone(r.env), "ROTOR_CRASH_AT="+crashAt, "ROTOR_CRASH_GATE="+p.gate)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	require.NoError(t, p.cmd.Start())
	p.pid = p.cmd.Process.Pid
	go func() {
		p.done <- p.cmd.Wait()
		logf.Close()
	}()
	t.Cleanup(func() {
		if !p.exited {
			_ = p.cmd.Process.Kill()
			p.wait()
		}
	})
	return p
}

func (p *serveProc) wait() error {
	if !p.exited {
		p.exitErr, p.exited = <-p.done, true
	}
	return p.exitErr
}

// waitKilled waits for an armed process to die of its crash hook
// (byHook), or SIGKILLs it after timeout; either way it must have died of
// SIGKILL.
func (p *serveProc) waitKilled(timeout time.Duration) (byHook bool, err error) {
	byHook = true
	select {
	case <-time.After(timeout):
		byHook = false
		_ = p.cmd.Process.Kill()
	case err := <-p.done:
		p.exitErr, p.exited = err, true
	}
	err = p.wait()
	p.diedAt = time.Now()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return byHook, nil
		}
	}
	return false, fmt.Errorf("replica %d (ROTOR_CRASH_AT=%s) exited without being killed: %v\n%s", p.slot, p.crashAt, err, tail(p.log))
}

// waitServing waits until the process logs that it serves: it has
// recovered what dead processes left and its jobs run.
func (p *serveProc) waitServing(timeout time.Duration) error {
	serving, exited, err := waitForServing(p.log, p.done, timeout)
	switch {
	case exited:
		p.exitErr, p.exited = err, true
		return fmt.Errorf("replica %d exited before serving: %v\n%s", p.slot, err, tail(p.log))
	case !serving:
		return fmt.Errorf("replica %d did not serve within %s\n%s", p.slot, timeout, tail(p.log))
	}
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serveProc) stop(timeout time.Duration) error {
	if p.exited {
		return fmt.Errorf("replica %d had exited before it was stopped: %v\n%s", p.slot, p.exitErr, tail(p.log))
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.exitErr, p.exited = err, true
	case <-time.After(timeout):
		return fmt.Errorf("replica %d did not stop within %s of SIGTERM", p.slot, timeout)
	}
	if p.exitErr != nil {
		return fmt.Errorf("replica %d must exit cleanly on SIGTERM: %v\n%s", p.slot, p.exitErr, tail(p.log))
	}
	return nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	return lastLines(string(b), 30)
}

// waitRetirementsFlowing waits, up to timeout, until runs are being
// retired right now (more are done than a moment ago), so that a kill at
// a retirement step is armed while there are retirements to kill it: the
// retirements come in bursts, since a retire job is a scheduled River job
// and only River's leader makes those available; a killed leader stops
// them until River elects another (its leader TTL is 15 s).
func waitRetirementsFlowing(t *testing.T, db *pgtest.DB, timeout time.Duration) {
	t.Helper()
	q := `SELECT count(*) FROM ` + pgx.Identifier{db.Schema, "runs"}.Sanitize() + ` WHERE state = 'done'`
	admin := pgtest.Admin(t)
	last := -1
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var n int
		require.NoError(t, admin.QueryRow(t.Context(), q).Scan(&n))
		if last >= 0 && n > last {
			return
		}
		last = n
	}
	t.Logf("no run was retired for %s; arming all the same", timeout)
}

// journaledRun is one run as the runs and run_events tables hold it.
type journaledRun struct {
	id, tenantID, appObjectID string
	// newKeyID is the key id of the secret it journaled as created.
	newKeyID string
	// start is its first journal line (planned, written before anything
	// is asked of Entra); end the line that took it out of the active
	// states (retiring, done, failed, abandoned), zero while it is active.
	start, end time.Time
}

func (j journaledRun) app() string { return j.tenantID + "/" + j.appObjectID }

// activeAt reports whether the run was active at t.
func (j journaledRun) activeAt(t time.Time) bool {
	return !t.Before(j.start) && (j.end.IsZero() || !t.After(j.end))
}

// readRuns reads every run and its journal from db's schema, as the
// superuser (past row-level security).
func readRuns(t *testing.T, db *pgtest.DB) []journaledRun {
	t.Helper()
	ctx := t.Context()
	admin := pgtest.Admin(t)
	table := func(name string) string { return pgx.Identifier{db.Schema, name}.Sanitize() }
	rows, err := admin.Query(ctx, `SELECT r.id, r.tenant_id, r.app_object_id, r.new_key_id,
			min(e.at), min(e.at) FILTER (WHERE e.state NOT IN ('planned', 'created', 'propagated', 'verified'))
		FROM `+table("runs")+` r JOIN `+table("run_events")+` e ON e.org_id = r.org_id AND e.run_id = r.id
		GROUP BY r.org_id, r.id`)
	require.NoError(t, err)
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (journaledRun, error) {
		var j journaledRun
		var end *time.Time
		err := row.Scan(&j.id, &j.tenantID, &j.appObjectID, &j.newKeyID, &j.start, &end)
		if end != nil {
			j.end = *end
		}
		return j, err
	})
	require.NoError(t, err)
	require.NotEmpty(t, runs)
	return runs
}

// requireNoRotationDoubled checks that no rotation happened twice: per
// application, runs were active one after the other, never two at once;
// every secret Entra issued for it came while one of its runs was active
// (a process that lost its run and wrote on would issue one outside, or
// inside the next run's); no run was given more than one, but for the
// addPassword retries it logged; and no application more than it has
// runs. A run's journaled key id is that of a secret issued while it was
// active, which checks the attribution by time.
func requireNoRotationDoubled(t *testing.T, runs []journaledRun, issued []issuedSecret, lives []*serveProc) {
	t.Helper()
	byApp := map[string][]journaledRun{}
	for _, j := range runs {
		byApp[j.app()] = append(byApp[j.app()], j)
	}
	for app, rs := range byApp {
		slices.SortFunc(rs, func(a, b journaledRun) int { return a.start.Compare(b.start) })
		for i := 1; i < len(rs); i++ {
			prev, next := rs[i-1], rs[i]
			require.False(t, prev.end.IsZero() || next.start.Before(prev.end),
				"%s: run %s started at %s while run %s was active (%s to %s)", app, next.id, next.start.Format(time.StampMicro), prev.id, prev.start.Format(time.StampMicro), prev.end.Format(time.StampMicro))
		}
	}

	retries := map[string]int{}
	for _, l := range lives {
		for _, line := range logLines(t, l.log, "creating the secret failed; retrying") {
			retries[logField(line, "run")]++
		}
	}
	perRun := map[string]int{}
	perApp := map[string]int{}
	issuedTo := map[string]string{} // key id → run
	for _, s := range issued {
		app := s.tenantID + "/" + s.appObjectID
		perApp[app]++
		i := slices.IndexFunc(byApp[app], func(j journaledRun) bool { return j.activeAt(s.at) })
		require.GreaterOrEqual(t, i, 0, "%s: secret %s was issued at %s, when no run of the application was active", app, s.keyID, s.at.Format(time.StampMicro))
		perRun[byApp[app][i].id]++
		issuedTo[s.keyID] = byApp[app][i].id
	}
	for _, j := range runs {
		if j.newKeyID != "" {
			require.Equal(t, j.id, issuedTo[j.newKeyID], "run %s journaled secret %s, which was not issued while it was active", j.id, j.newKeyID)
		}
	}
	for id, n := range perRun {
		require.LessOrEqual(t, n, 1+retries[id], "run %s was given %d secrets, with %d addPassword retries logged", id, n, retries[id])
	}
	for app, n := range perApp {
		require.LessOrEqual(t, n, len(byApp[app]), "%s was given %d secrets in %d runs", app, n, len(byApp[app]))
	}
	t.Logf("%d secrets issued to %d applications in %d runs; %d addPassword retries logged", len(issued), len(perApp), len(runs), len(retries))
}

// processOf maps each lease holder in db to the test's process that held
// it, by the pid in the lease's description.
func processOf(t *testing.T, db *pgtest.DB, lives []*serveProc) map[string]*serveProc {
	t.Helper()
	byPid := map[int]*serveProc{}
	for _, p := range lives {
		byPid[p.pid] = p
	}
	rows, err := pgtest.Admin(t).Query(t.Context(), `SELECT holder, description FROM `+pgx.Identifier{db.Schema, "leases"}.Sanitize())
	require.NoError(t, err)
	pidRE := regexp.MustCompile(`rotor serve, pid (\d+) `)
	out := map[string]*serveProc{}
	for rows.Next() {
		var holder, desc string
		require.NoError(t, rows.Scan(&holder, &desc))
		m := pidRE.FindStringSubmatch(desc)
		require.NotNil(t, m, "lease %s: %q", holder, desc)
		pid, _ := strconv.Atoi(m[1])
		p, ok := byPid[pid]
		require.True(t, ok, "lease %s is of pid %d, which the test did not start", holder, pid)
		out[holder] = p
	}
	require.NoError(t, rows.Err())
	return out
}

// requireOnlyDeadRunsTaken checks the journal's takeovers: every run taken
// over was held by a process that had been killed by then. A run of a
// live process is never touched (the lease's promise); here every replica
// renews its lease every TTL/3 until it is killed. It returns how many
// runs were taken over, and how long after its death each killed process
// whose runs were taken over lost its first.
func requireOnlyDeadRunsTaken(t *testing.T, db *pgtest.DB, procOf map[string]*serveProc) (int, []time.Duration) {
	t.Helper()
	rows, err := pgtest.Admin(t).Query(t.Context(), `SELECT run_id, at, message FROM `+pgx.Identifier{db.Schema, "run_events"}.Sanitize()+` WHERE step = 'taken-over'`)
	require.NoError(t, err)
	fromRE := regexp.MustCompile(`taken over from process (\S+), whose lease expired`)
	n := 0
	first := map[*serveProc]time.Duration{}
	for rows.Next() {
		var runID, msg string
		var at time.Time
		require.NoError(t, rows.Scan(&runID, &at, &msg))
		m := fromRE.FindStringSubmatch(msg)
		if m == nil {
			continue // the run had no holder: nobody's
		}
		p := procOf[m[1]]
		require.NotNil(t, p, "run %s was taken over from %s, which no process of the test held", runID, m[1])
		if p.diedAt.IsZero() || at.Before(p.diedAt) {
			when := "has not been killed"
			if !p.diedAt.IsZero() {
				when = "was killed only at " + p.diedAt.Format(time.StampMicro)
			}
			t.Fatalf("run %s was taken over at %s from replica %d (pid %d), which was alive then: it %s", runID, at.Format(time.StampMicro), p.slot, p.pid, when)
		}
		n++
		if d, ok := first[p]; !ok || at.Sub(p.diedAt) < d {
			first[p] = at.Sub(p.diedAt)
		}
	}
	require.NoError(t, rows.Err())
	delays := make([]time.Duration, 0, len(first))
	for _, d := range first {
		delays = append(delays, d.Round(100*time.Millisecond))
	}
	slices.Sort(delays)
	return n, delays
}

// requireSharedWork checks that the replicas shared the wave: more than
// one of them completed rotations, and runs of killed processes were
// taken over by a process of another replica.
func requireSharedWork(t *testing.T, procOf map[string]*serveProc, lives []*serveProc) {
	t.Helper()
	rotated := map[int]int{}
	for _, p := range lives {
		rotated[p.slot] += len(logLines(t, p.log, `msg="rotation verified; retirement scheduled" run=`))
	}
	across := 0
	for _, p := range lives {
		for _, line := range logLines(t, p.log, `msg="run abandoned"`) {
			if prev := procOf[logField(line, "previous_holder")]; prev != nil && prev.slot != p.slot {
				across++
			}
		}
	}
	t.Logf("rotations completed per replica: %v; runs taken over from another replica: %d", rotated, across)
	working := 0
	for _, n := range rotated {
		if n > 0 {
			working++
		}
	}
	require.Greater(t, working, 1, "more than one replica must have done rotation work: %v", rotated)
	require.Positive(t, across, "a killed replica's runs must be taken over by another replica")
}

// logLines is the lines of a log file that contain substr.
func logLines(t *testing.T, path, substr string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// logField is the value of key=value in a text log line ("" when absent).
func logField(line, key string) string {
	_, rest, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, " ")
	return strings.Trim(v, `"`)
}
