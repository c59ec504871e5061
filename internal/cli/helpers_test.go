package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// env is one simulator, one rotor.yaml and one data directory. Everything
// the CLI prints through run is kept, and at the end of the test checked
// (with the data directory) for every secret value the simulator issued and
// every rotation identity's secret.
type env struct {
	t       *testing.T
	sim     *sim.Server
	info    *simfile.Info
	dir     string
	cfg     string
	dataDir string

	mu      sync.Mutex
	issued  []string
	outputs []*lockedBuffer
}

// newEnv starts an in-process simulator with seed and writes rotor.yaml for
// it. replication overrides the seeded tenants' replication delay (demo
// seeds 3s; 0 keeps rotations fast).
func newEnv(t *testing.T, seed string, replication time.Duration) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, cfg: filepath.Join(dir, "rotor.yaml"), dataDir: filepath.Join(dir, "data")}
	simDir := filepath.Join(dir, "sim")
	s := simtest.Start(t, simtest.Options{
		StateDir:         simDir,
		Seed:             seed,
		ReplicationDelay: &replication,
		OnSecretIssued: func(_, _, _, value string) {
			e.mu.Lock()
			e.issued = append(e.issued, value)
			e.mu.Unlock()
		},
	})
	e.sim, e.info = s.Server, s.Info

	secrets := filepath.Join(dir, "secrets")
	require.NoError(t, os.MkdirAll(secrets, 0o700))
	for _, tn := range e.info.Tenants {
		require.NoError(t, os.WriteFile(filepath.Join(secrets, tn.Name), []byte(tn.Rotation.ClientSecret+"\n"), 0o600))
	}
	// Secrets are {file: …} references, so no test touches the environment.
	// Each tenant gets a narrow "web-" policy first (it selects applications
	// rotor does not own too, so explain can say "not owned") and a broad
	// all_owned one after it.
	cfg, err := config.SimulatorYAML(e.info, config.SimulatorConfig{
		SimFile: filepath.Join(simDir, simfile.FileName), DataDir: e.dataDir, LogLevel: "info",
		Secret:   func(tn simfile.Tenant) string { return "{file: " + filepath.Join(secrets, tn.Name) + "}" },
		Rotation: config.SimulatorRotation{Jitter: "1s", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m"},
		Policies: []config.SimulatorPolicy{
			{Name: "web", Applications: `{name_prefix: "web-"}`, Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"},
			{Name: "owned", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"},
		},
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(e.cfg, cfg, 0o600))

	// Registered after the simulator's cleanup, so it runs before it.
	t.Cleanup(e.checkNoSecretLeaked)
	return e
}

// run executes rotor with args and --config, in-process.
func (e *env) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	return e.runCtx(context.Background(), append(args, "--config", e.cfg)...)
}

func (e *env) runCtx(ctx context.Context, args ...string) (int, string, string) {
	e.t.Helper()
	out, errOut := e.newBuffer(), e.newBuffer()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	code := cli.Execute(ctx, args, out, errOut)
	return code, out.String(), errOut.String()
}

func (e *env) newBuffer() *lockedBuffer {
	b := &lockedBuffer{}
	e.mu.Lock()
	e.outputs = append(e.outputs, b)
	e.mu.Unlock()
	return b
}

// mustRun runs rotor and requires exit code 0.
func (e *env) mustRun(args ...string) (stdout, stderr string) {
	e.t.Helper()
	code, out, errOut := e.run(args...)
	require.Equal(e.t, 0, code, "rotor %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errOut)
	return out, errOut
}

// mustJSON runs rotor with -o json and decodes stdout into v.
func (e *env) mustJSON(v any, args ...string) {
	e.t.Helper()
	out, _ := e.mustRun(append(args, "-o", "json")...)
	require.NoError(e.t, json.Unmarshal([]byte(out), v), "rotor %s -o json printed invalid JSON:\n%s", strings.Join(args, " "), out)
}

// secretValues is every secret value that must never appear in rotor's
// output or data: the rotation identities' secrets and every secret the
// simulator issued (to rotor's rotations).
func (e *env) secretValues() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	vals := append([]string(nil), e.issued...)
	for _, tn := range e.info.Tenants {
		vals = append(vals, tn.Rotation.ClientSecret)
	}
	return vals
}

func (e *env) checkNoSecretLeaked() {
	t := e.t
	vals := e.secretValues()
	e.mu.Lock()
	outputs := append([]*lockedBuffer(nil), e.outputs...)
	e.mu.Unlock()
	for i, b := range outputs {
		s := b.String()
		for _, v := range vals {
			if v != "" && strings.Contains(s, v) {
				t.Errorf("a secret value appeared in captured output #%d of the CLI", i)
			}
		}
	}
	err := filepath.WalkDir(e.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == e.dataDir {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, v := range vals {
			if v != "" && bytes.Contains(b, []byte(v)) {
				t.Errorf("a secret value was found at rest in %s", path)
			}
		}
		return nil
	})
	require.NoError(t, err)
}

// issuedCount is how many secrets the simulator has issued so far.
func (e *env) issuedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.issued)
}

// simApp is what the simulator holds for one application.
type simApp struct {
	tenant, objectID, appID, name string
	owned                         bool
	minEnd                        time.Time
}

// apps lists every application of every simulated tenant.
func (e *env) apps() []simApp {
	var out []simApp
	tenants := e.sim.World().Tenants()
	e.sim.World().Update(func() {
		for _, tn := range tenants {
			rot := e.rotationSP(tn.Name)
			for _, a := range tn.Apps {
				sa := simApp{tenant: tn.Name, objectID: a.ObjectID, appID: a.AppID, name: a.DisplayName, owned: a.OwnedBy(rot)}
				for _, p := range a.Passwords {
					if sa.minEnd.IsZero() || p.End.Before(sa.minEnd) {
						sa.minEnd = p.End
					}
				}
				for _, k := range a.Keys {
					if sa.minEnd.IsZero() || k.End.Before(sa.minEnd) {
						sa.minEnd = k.End
					}
				}
				out = append(out, sa)
			}
		}
	})
	return out
}

func (e *env) rotationSP(tenant string) string {
	for _, tn := range e.info.Tenants {
		if tn.Name == tenant {
			return tn.Rotation.ObjectID
		}
	}
	e.t.Fatalf("no tenant %s", tenant)
	return ""
}

// app finds one simulated application by tenant and display name.
func (e *env) app(tenant, name string) simApp {
	e.t.Helper()
	for _, a := range e.apps() {
		if a.tenant == tenant && a.name == name {
			return a
		}
	}
	e.t.Fatalf("the simulator has no application %s in %s", name, tenant)
	return simApp{}
}

// lockedBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// noStack fails if s looks like a panic or a stack trace.
func noStack(t *testing.T, s string) {
	t.Helper()
	for _, bad := range []string{"panic", "goroutine ", ".go:", "runtime/"} {
		require.NotContains(t, s, bad, "output must not contain a stack trace")
	}
}

func countLines(s string) int { return len(strings.Split(strings.TrimRight(s, "\n"), "\n")) }

// runExecute is cli.Execute with writers, for a command run in a goroutine.
func runExecute(ctx context.Context, args []string, stdout, stderr *lockedBuffer) int {
	return cli.Execute(ctx, args, stdout, stderr)
}
