package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// TestManyProcessesOneDatabase is issue 6's judgement, run as written:
// several rotor processes on one data directory — two `serve` started at
// the same moment on a fresh database, `rotate` of several applications
// beside them, SIGKILLs of each at different steps, then two undisturbed
// `serve` — with a read connection to each tenant beside the rotation one.
// Afterwards every owned application's Key Vault secret gets a token
// (checked with Microsoft's SDKs), exactly one rotor credential per
// application remains after the overlap, nothing rotor did not create
// changed, and no issued secret value is at rest.
func TestManyProcessesOneDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	var issued issuedSecrets
	r := newRig(t, simtest.Options{Seed: "apps=40,tenants=2,expiring=1h,replication=300ms", OnSecretIssued: issued.add}, config.SimulatorConfig{
		ReadConnections: true,
		Rotation:        config.SimulatorRotation{Jitter: "2s", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m", LeaseTTL: "2s"},
		Policies:        []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "4s"}},
	})
	bin, cfgPath, env, info, graphs, dataDir, logDir := r.bin, r.cfgPath, r.env, r.info, r.graphs, r.dataDir, r.logDir
	ctx := context.Background()
	before := snapshot(ctx, t, info, graphs)
	// Object ids: the seed gives both tenants the same display names.
	var names []string
	for _, tn := range info.Tenants {
		for oid := range before[tn.ID] {
			names = append(names, oid)
		}
	}
	require.GreaterOrEqual(t, len(names), 12)

	// The inventory first, through both connections of each tenant.
	out, err := runRotor(bin, env, filepath.Join(logDir, "sync.log"), "", "sync", "--config", cfgPath)
	require.NoError(t, err, "rotor sync:\n%s", out)

	// Round 1: two serves start at once on the fresh database and a rotate
	// of six applications runs beside them; each is killed at its own step.
	// Every process reports on a channel; the test goroutine asserts.
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	wg.Go(func() {
		errs <- serveUntilKilled(t, bin, cfgPath, env, filepath.Join(logDir, "serve-a1.log"), "ROTOR_CRASH_AT=sink:9", 60*time.Second)
	})
	wg.Go(func() {
		errs <- serveUntilKilled(t, bin, cfgPath, env, filepath.Join(logDir, "serve-b1.log"), "ROTOR_CRASH_AT=created:13", 60*time.Second)
	})
	wg.Go(func() {
		args := append([]string{"rotate", "--config", cfgPath}, names[:6]...)
		out, err := runRotor(bin, env, filepath.Join(logDir, "rotate-1.log"), "ROTOR_CRASH_AT=sink:3", args...)
		errs <- killedOrDone(out, err)
	})
	wg.Wait()
	for range 3 {
		require.NoError(t, <-errs)
	}

	// Round 2: one serve killed later in a rotation, one that runs on, and
	// a rotate of six other applications that is left to finish.
	stopA := startServe(t, bin, cfgPath, env, filepath.Join(logDir, "serve-a2.log"))
	wg.Go(func() {
		errs <- serveUntilKilled(t, bin, cfgPath, env, filepath.Join(logDir, "serve-b2.log"), "ROTOR_CRASH_AT=verified:5", 60*time.Second)
	})
	wg.Go(func() {
		args := append([]string{"rotate", "--config", cfgPath}, names[6:12]...)
		out, err := runRotor(bin, env, filepath.Join(logDir, "rotate-2.log"), "", args...)
		errs <- killedOrDone(out, err)
	})
	wg.Wait()
	for range 2 {
		require.NoError(t, <-errs)
	}

	// Then two serves, undisturbed, until every application converged.
	stopB := startServe(t, bin, cfgPath, env, filepath.Join(logDir, "serve-b3.log"))
	eventually(t, 3*time.Minute, "every owned application to hold exactly one rotor credential, delivered to Key Vault", func() (bool, string) {
		return converged(ctx, t, info, graphs, domain.KindSecret, nil)
	})
	stopA()
	stopB()

	after := snapshot(ctx, t, info, graphs)
	requireOneRotorCredentialForeignUntouched(t, before, after)
	for _, tn := range info.Tenants {
		kv := vaultClient(t, info, tn)
		for oid, app := range after[tn.ID] {
			resp, err := kv.GetSecret(ctx, app.name+"-secret", "", nil)
			require.NoError(t, err, app.name)
			newest, ok := domain.NewestRotorCredential(app.creds, domain.KindSecret)
			require.True(t, ok, app.name)
			require.Equal(t, newest.KeyID, tag(resp.Tags, "rotor-key-id"), "%s: the vault holds the surviving credential", app.name)
			require.NoError(t, getToken(ctx, t, info, tn.ID, appIDOf(ctx, t, graphs[tn.ID], oid), *resp.Value), "%s: the vault's secret gets a token", app.name)
		}
	}

	// The read connection beside the rotation one sees every application
	// and never took the rotation connection's view away.
	out, err = runRotor(bin, env, filepath.Join(logDir, "explain.log"), "", "explain", "--config", cfgPath, "-o", "json", names[0])
	require.NoError(t, err, out)
	var explained struct {
		Application struct {
			Access []domain.Access `json:"access"`
		} `json:"application"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &explained), out)
	require.Len(t, explained.Application.Access, 2, "seen by the rotation and the read connection: %s", out)

	// Several processes really held runs, and some were taken over.
	takenOver := 0
	for _, f := range []string{"serve-a2.log", "serve-b2.log", "serve-b3.log"} {
		b, err := os.ReadFile(filepath.Join(logDir, f))
		require.NoError(t, err)
		takenOver += bytes.Count(b, []byte("run abandoned"))
	}
	t.Logf("runs taken over from killed processes: %d", takenOver)
	require.Positive(t, takenOver, "the kills left runs that other processes took over")

	requireNoValueAtRest(t, issued.all(), dataDir, logDir)
}

// runRotor runs one rotor command to its end (at most two minutes), with
// extra in its environment, logging its output to logPath; it returns the
// output.
func runRotor(bin string, env []string, logPath, extra string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	if extra != "" {
		cmd.Env = append(append([]string{}, env...), extra)
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	_ = os.WriteFile(logPath, buf.Bytes(), 0o600)
	return buf.String(), err
}

// killedOrDone accepts a rotate that finished, was SIGKILLed by its crash
// hook, or found an application already being rotated by a serve.
func killedOrDone(out string, err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	if bytes.Contains([]byte(out), []byte("another run holds the application")) {
		return nil
	}
	return fmt.Errorf("rotor rotate failed: %v\n%s", err, out)
}
