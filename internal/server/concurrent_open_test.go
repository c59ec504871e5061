package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// TestProcessesStartingAtOnceShareOneFreshDatabase: several rotor
// processes opened at the same moment on an empty data directory all
// start (before the migration lock, River's migrator raced and one exited
// with "table river_migration already exists").
func TestProcessesStartingAtOnceShareOneFreshDatabase(t *testing.T) {
	t.Parallel()
	st := simtest.Start(t, simtest.Options{Seed: "apps=1,tenants=1"})
	dir := t.TempDir()
	yaml, err := config.SimulatorYAML(st.Info, config.SimulatorConfig{
		SimFile: filepath.Join(filepath.Dir(st.Info.CAFile), simfile.FileName), DataDir: filepath.Join(dir, "data"),
		Secret: func(simfile.Tenant) string { return "{env: S}" },
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))

	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			srv, err := Open(context.Background(), cfgPath, Options{Logger: slog.New(slog.DiscardHandler), Getenv: envMap{"S": "x"}.get})
			if err == nil {
				err = srv.openJobs(context.Background(), 0)
				srv.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "process %d", i)
	}
}
