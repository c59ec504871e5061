package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// credSnapshot is what Entra holds for one application, secrets excluded.
type credSnapshot struct {
	name  string
	creds []domain.Credential
}

// TestCrashSafety kills `rotor serve` with SIGKILL at every step of a
// rotation wave over 120 applications in two tenants, restarts it each
// time, and then checks what DESIGN.md promises: every application's Key
// Vault secret gets a token, no rotor: credential but the newest remains,
// nothing rotor did not create was touched, and no issued secret value is
// anywhere in the data directory or the logs. rotor keeps its state in
// SQLite here, in PostgreSQL in TestCrashSafetyPostgres.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end crash test; run without -short")
	}
	testCrashSafety(t, onSQLite)
}

// TestCrashSafetyPostgres is TestCrashSafety with rotor's state in
// PostgreSQL (and River's jobs on riverpgxv5); no value at rest also
// means in no row of the schema. It skips, loudly, when
// ROTOR_TEST_DATABASE_URL is not set.
func TestCrashSafetyPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end crash test; run without -short")
	}
	testCrashSafety(t, onPostgres)
}

func testCrashSafety(t *testing.T, kind storeKind) {
	var issued issuedSecrets
	r := newRigOn(t, kind, simtest.Options{Seed: "apps=60,tenants=2,expiring=1h,replication=300ms", OnSecretIssued: issued.add}, config.SimulatorConfig{
		// 18 rotations at once, as many as this test had workers before
		// rotation.max_in_flight: with all 120 at once the first rounds
		// finish the work and the later crash points are never reached
		// (each then waits out its 45 s).
		Rotation: config.SimulatorRotation{Jitter: "2s", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m", ConcurrencyPerTenant: 8, MaxInFlight: 18, LeaseTTL: "2s"},
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "4s"}},
	})
	ctx := context.Background()
	before := snapshot(ctx, t, r.info, r.graphs)

	// One kill per step of the wave, each at a different point of it.
	// Ordered so each is reached while its kind of step still has work: a
	// run whose every sink holds its secret is resumed, not replaced (ADR
	// 19), so the wave has few fresh runs after the first kills, and ends
	// in retirements that remove nothing (the seed's secrets are not
	// rotor's) and so journal done, not retire. A kill at a removal
	// (retire) is TestCrashAtEveryStep's (internal/rotation).
	r.crashAtSteps(t, "wave", []string{"planned:3", "created:7", "sink:11", "created:25", "propagated:5", "verifying:9", "verified:13", "retiring:6", "sink:5", "done:4"}, 45*time.Second, 0)

	// Now let rotor finish the wave undisturbed.
	r.finishWave(ctx, t, "wave", domain.KindSecret, nil)

	after := snapshot(ctx, t, r.info, r.graphs)
	requireOneRotorCredentialForeignUntouched(t, before, after)

	requireConsumersWork(ctx, t, r.info, r.graphs, after, domain.KindSecret)

	// No issued secret value at rest outside the vault: not in the data
	// directory (database, WAL, journal), not in PostgreSQL's rows and
	// not in any log.
	r.requireNoValueAtRest(t, issued.all())
}

// requireConsumersWork checks every application of after from its
// consumer's side: its vault secret is rotor's, holds the one remaining
// rotor credential of kind, and what it holds gets a token — checked with
// Microsoft's SDKs: the value with ClientSecretCredential, or the PEM
// (certificate and key) with azidentity.ParseCertificates and
// ClientCertificateCredential.
func requireConsumersWork(ctx context.Context, t *testing.T, info *simfile.Info, graphs map[string]*graph.Client, after map[string]map[string]credSnapshot, kind domain.CredentialKind) {
	t.Helper()
	for _, tn := range info.Tenants {
		kv := vaultClient(t, info, tn)
		for oid, app := range after[tn.ID] {
			resp, err := kv.GetSecret(ctx, app.name+"-secret", "", nil)
			require.NoError(t, err, app.name)
			require.NotNil(t, resp.Value, app.name)
			require.Equal(t, "rotor", tag(resp.Tags, "managed-by"), app.name)
			require.Equal(t, oid, tag(resp.Tags, "rotor-object-id"), app.name)
			newest, ok := domain.NewestRotorCredential(app.creds, kind)
			require.True(t, ok, app.name)
			require.Equal(t, newest.KeyID, tag(resp.Tags, "rotor-key-id"), "%s: the vault must hold the surviving credential", app.name)
			appID := appIDOf(ctx, t, graphs[tn.ID], oid)
			if kind == domain.KindCertificate {
				require.NotNil(t, resp.ContentType, app.name)
				require.Equal(t, "application/x-pem-file", *resp.ContentType, app.name)
				requireCertificateSignsIn(ctx, t, info, graphs[tn.ID], tn.ID, oid, appID, *resp.Value, newest, app.name)
				continue
			}
			require.NoError(t, getToken(ctx, t, info, tn.ID, appID, *resp.Value), "%s: the vault's secret must get a token", app.name)
		}
	}
}

func tag(tags map[string]*string, k string) string {
	if v, ok := tags[k]; ok && v != nil {
		return *v
	}
	return ""
}

// issuedSecrets records every secret the simulator hands out: to which
// application, and when (by the test's clock, which is rotor's: the same
// machine's).
type issuedSecrets struct {
	mu      sync.Mutex
	secrets []issuedSecret
}

// issuedSecret is one password addPassword handed out.
type issuedSecret struct {
	tenantID, appObjectID, keyID, value string
	at                                  time.Time
}

func (s *issuedSecrets) add(tenantID, appObjectID, keyID, value string) {
	at := time.Now()
	s.mu.Lock()
	s.secrets = append(s.secrets, issuedSecret{tenantID: tenantID, appObjectID: appObjectID, keyID: keyID, value: value, at: at})
	s.mu.Unlock()
}

// all is every value issued.
func (s *issuedSecrets) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.secrets))
	for i, x := range s.secrets {
		out[i] = x.value
	}
	return out
}

// list is every secret issued, in order.
func (s *issuedSecrets) list() []issuedSecret {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]issuedSecret(nil), s.secrets...)
}

func graphClient(t *testing.T, info *simfile.Info, tn simfile.Tenant) *graph.Client {
	t.Helper()
	ep, err := azure.ResolveEndpoints(azure.Sim, filepath.Join(filepath.Dir(info.CAFile), simfile.FileName))
	require.NoError(t, err)
	cred, err := azure.NewCredential(azure.Connection{Name: tn.Name, TenantID: tn.ID, Cloud: azure.Sim, Identity: azure.Identity{Method: azure.ClientSecret, ClientID: tn.Rotation.ClientID, ClientSecret: secret.New(tn.Rotation.ClientSecret)}}, ep)
	require.NoError(t, err)
	g, err := graph.New(cred, ep)
	require.NoError(t, err)
	return g
}

func appIDOf(ctx context.Context, t *testing.T, g *graph.Client, oid string) string {
	t.Helper()
	app, err := g.GetApplication(ctx, oid, []string{"id", "appId"})
	require.NoError(t, err)
	return app.AppID
}

// snapshot lists every application the rotation identity can see, with
// its credentials, per tenant and object id.
func snapshot(ctx context.Context, t *testing.T, info *simfile.Info, graphs map[string]*graph.Client) map[string]map[string]credSnapshot {
	t.Helper()
	out := map[string]map[string]credSnapshot{}
	for _, tn := range info.Tenants {
		out[tn.ID] = map[string]credSnapshot{}
		apps, err := graphs[tn.ID].ListApplications(graph.ListOptions{Top: 999, Select: []string{"id", "appId", "displayName", "passwordCredentials", "keyCredentials"}}).Collect(ctx)
		require.NoError(t, err)
		for _, a := range apps {
			if a.AppID == tn.Rotation.ClientID {
				continue
			}
			out[tn.ID][a.ID] = credSnapshot{name: a.DisplayName, creds: sortCreds(inventory.Credentials(&a))}
		}
	}
	return out
}

func sortCreds(c []domain.Credential) []domain.Credential {
	sort.Slice(c, func(i, j int) bool { return c[i].KeyID < c[j].KeyID })
	return c
}

// converged reports whether every application holds exactly one rotor
// credential, of kind, none of whose key ids is in gone, and its vault
// secret carries that credential's key id.
func converged(ctx context.Context, t *testing.T, info *simfile.Info, graphs map[string]*graph.Client, kind domain.CredentialKind, gone map[string]bool) (bool, string) {
	snap := snapshot(ctx, t, info, graphs)
	pending := 0
	example := ""
	for _, tn := range info.Tenants {
		kv := vaultClient(t, info, tn)
		for _, app := range snap[tn.ID] {
			n, stale := 0, false
			for _, c := range app.creds {
				if c.RotorCreated() {
					n++
				}
				stale = stale || gone[c.KeyID]
			}
			newest, ok := domain.NewestRotorCredential(app.creds, kind)
			ok = ok && n == 1 && !stale
			if ok {
				props, err := kv.GetSecret(ctx, app.name+"-secret", "", nil)
				ok = err == nil && tag(props.Tags, "rotor-key-id") == newest.KeyID
			}
			if !ok {
				pending++
				example = fmt.Sprintf("%s has %d rotor credentials (an earlier wave's among them: %v)", app.name, n, stale)
			}
		}
	}
	return pending == 0, fmt.Sprintf("%d applications not converged (e.g. %s)", pending, example)
}

// crashAtSteps runs `rotor serve` once per entry of crashes (a
// ROTOR_CRASH_AT spec, STEP:N), each until the hook SIGKILLs it right
// after that journal write, or until timeout passes (then the test kills
// it: the wave had no more such steps). Each run has its own log, named
// for the scene. pause is how long to wait after each kill: a process
// recovers at its start only the runs whose lease has expired (the rest
// wait for the periodic recovery, which runs on River's leader, elected
// only once the dead leader's term ends), so a pause longer than
// rotation.lease_ttl makes each start take over what the last kill left.
func (r *rig) crashAtSteps(t *testing.T, name string, crashes []string, timeout, pause time.Duration) {
	t.Helper()
	for i, at := range crashes {
		logf := r.log(fmt.Sprintf("%s-serve-%02d.log", name, i))
		start := time.Now()
		killed := runServe(t, r.bin, r.cfgPath, r.env, logf, "ROTOR_CRASH_AT="+at, timeout)
		t.Logf("%s: crash %d at %s: killed=%v after %.1fs", name, i, at, killed, time.Since(start).Seconds())
		time.Sleep(pause)
	}
}

// finishWave lets one `rotor serve` finish the wave undisturbed, until
// every owned application has converged on one rotor credential of kind
// delivered to its vault, and holds no credential whose key id is in gone
// (an earlier wave's, which this one must retire), then stops it with
// SIGTERM. name names its log.
func (r *rig) finishWave(ctx context.Context, t *testing.T, name string, kind domain.CredentialKind, gone map[string]bool) {
	t.Helper()
	stop := startServe(t, r.bin, r.cfgPath, r.env, r.log(name+"-serve-final.log"))
	eventually(t, 3*time.Minute, "every owned application to hold exactly one rotor credential, delivered to Key Vault", func() (bool, string) {
		return converged(ctx, t, r.info, r.graphs, kind, gone)
	})
	stop()
}

// runServe runs `rotor serve` with extra environment until it exits or
// timeout passes (then it is SIGKILLed by the test). It fails the test
// unless the process died of SIGKILL.
func runServe(t *testing.T, bin, cfg string, env []string, logPath, extra string, timeout time.Duration) bool {
	t.Helper()
	require.NoError(t, serveUntilKilled(t, bin, cfg, env, logPath, extra, timeout))
	return true
}

// serveUntilKilled is runServe for other goroutines than the test's: it
// returns what went wrong instead of failing the test.
func serveUntilKilled(t *testing.T, bin, cfg string, env []string, logPath, extra string, timeout time.Duration) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = append(append([]string{}, env...), extra)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		err = <-done
		t.Logf("%s: step not reached within %s; killed by the test instead", extra, timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	b, _ := os.ReadFile(logPath)
	return fmt.Errorf("rotor serve (%s) exited without being killed: %v\n%s", extra, err, lastLines(string(b), 30))
}

// startServe runs `rotor serve` in the background; stop sends SIGTERM and
// waits for a clean exit.
func startServe(t *testing.T, bin, cfg string, env []string, logPath string) (stop func()) {
	t.Helper()
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait until it serves: a SIGTERM that arrives before main has installed
	// its handler kills the process the default way ("signal: terminated"),
	// which is the kernel's doing, not rotor's. A test whose condition holds
	// at once (the crashed processes already did the work) would otherwise
	// stop it within milliseconds of its start.
	if serving, exited, err := waitForServing(logPath, done, time.Minute); !serving {
		b, _ := os.ReadFile(logPath)
		if exited {
			done <- err // for the cleanup's wait
			t.Fatalf("rotor serve exited before serving: %v\n%s", err, lastLines(string(b), 30))
		}
		t.Fatalf("rotor serve did not say it serves within a minute\n%s", lastLines(string(b), 30))
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			logf.Close()
			require.NoError(t, err, "rotor serve must exit cleanly on SIGTERM")
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			logf.Close()
			t.Fatal("rotor serve did not stop within 30s of SIGTERM")
		}
	}
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-done
			logf.Close()
		}
	})
	return stop
}

// waitForServing polls logPath until rotor logs that it serves (it has
// recovered what dead processes left and its jobs run), for at most
// timeout. If the process exits first (done), exited is true with its
// exit error; the caller owns that error from then on.
func waitForServing(logPath string, done <-chan error, timeout time.Duration) (serving, exited bool, exitErr error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), `msg="rotor is serving"`) {
			return true, false, nil
		}
		select {
		case err := <-done:
			return false, true, err
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false, false, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
