package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// TestCrashesWithDayLongOverlap is the crash test as an operator would run
// it with production settings: a 24 h overlap (so no retirement happens
// during the test), a 3 s replication delay, and `rotor serve` SIGKILLed
// at arbitrary moments (fixed delays after start, not journal steps) while
// the first wave runs. Once rotor has finished the wave undisturbed:
//   - every application's Key Vault secret gets a token (Microsoft's SDKs);
//   - the vault holds the application's newest rotor credential;
//   - every other rotor credential still on an application belongs to an
//     abandoned run whose journal shows a sink write — a consumer may hold
//     it, so it must live through the overlap — and a newer run that will
//     retire it is scheduled. Nothing else is left over.
func TestCrashesWithDayLongOverlap(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end crash test; run without -short")
	}
	r := newRig(t, simtest.Options{Seed: "apps=40,tenants=2,expiring=1h,replication=3s"}, config.SimulatorConfig{
		Rotation: config.SimulatorRotation{Jitter: "5s", LeaseTTL: "3s"},
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "21d", RenewBefore: "1h", Overlap: "24h"}},
	})
	bin, cfgPath, env, info, dir, dataDir := r.bin, r.cfgPath, r.env, r.info, r.logDir, r.dataDir

	for i := 0; i < 8; i++ {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		cmd.Env = env
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("serve-%d.log", i)))
		require.NoError(t, err)
		cmd.Stdout, cmd.Stderr = logf, logf
		require.NoError(t, cmd.Start())
		time.Sleep(time.Duration(2500+i*600) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		logf.Close()
	}

	ctx := context.Background()
	graphs := r.graphs
	stop := startServe(t, bin, cfgPath, env, filepath.Join(dir, "serve-final.log"))
	eventually(t, 3*time.Minute, "every vault secret to hold its application's newest rotor credential", func() (bool, string) {
		return vaultsHoldNewest(ctx, t, info, graphs)
	})
	stop()

	st, err := sqlite.Open(ctx, filepath.Join(dataDir, "rotor.db"))
	require.NoError(t, err)
	defer st.Close()
	snap := snapshot(ctx, t, info, graphs)
	leftovers := 0
	for _, tn := range info.Tenants {
		kv := vaultClient(t, info, tn)
		for oid, app := range snap[tn.ID] {
			resp, err := kv.GetSecret(ctx, app.name+"-secret", "", nil)
			require.NoError(t, err, app.name)
			require.NoError(t, getToken(ctx, t, info, tn.ID, appIDOf(ctx, t, graphs[tn.ID], oid), *resp.Value), "%s: the vault's secret must get a token", app.name)

			newest, ok := domain.NewestRotorCredential(app.creds, domain.KindSecret)
			require.True(t, ok, app.name)
			newestRun, err := st.GetRun(ctx, domain.DefaultOrg, newest.RunID())
			require.NoError(t, err, app.name)
			require.Contains(t, []domain.RunState{domain.RunRetiring, domain.RunDone}, newestRun.State, app.name)
			for _, c := range app.creds {
				if !c.RotorCreated() || c.KeyID == newest.KeyID {
					continue
				}
				leftovers++
				run, err := st.GetRun(ctx, domain.DefaultOrg, c.RunID())
				require.NoError(t, err, "%s: rotor credential %s has no run", app.name, c.KeyID)
				require.Equal(t, domain.RunAbandoned, run.State, "%s: only an abandoned run's credential may wait for the overlap", app.name)
				require.True(t, journaledSinkWrite(run), "%s: credential %s of run %s reached no sink, so it should have been removed at recovery", app.name, c.KeyID, run.ID)
				require.True(t, newestRun.CreatedAt.After(run.CreatedAt), "%s: a newer run retires it", app.name)
			}
		}
	}
	t.Logf("credentials of abandoned runs that reached a sink, waiting for the 24 h overlap: %d", leftovers)
}

func journaledSinkWrite(r *domain.Run) bool {
	for _, ev := range r.Events {
		if ev.Step.IsSinkWrite() {
			return true
		}
	}
	return false
}

// vaultsHoldNewest reports whether every application's vault secret carries
// its newest rotor credential and that credential's run has verified.
func vaultsHoldNewest(ctx context.Context, t *testing.T, info *simfile.Info, graphs map[string]*graph.Client) (bool, string) {
	snap := snapshot(ctx, t, info, graphs)
	pending, example := 0, ""
	for _, tn := range info.Tenants {
		kv := vaultClient(t, info, tn)
		for _, app := range snap[tn.ID] {
			newest, ok := domain.NewestRotorCredential(app.creds, domain.KindSecret)
			if ok {
				resp, err := kv.GetSecret(ctx, app.name+"-secret", "", nil)
				ok = err == nil && tag(resp.Tags, "rotor-key-id") == newest.KeyID
			}
			if !ok {
				pending++
				example = app.name
			}
		}
	}
	return pending == 0, fmt.Sprintf("%d applications pending (e.g. %s)", pending, example)
}
