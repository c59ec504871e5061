package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// rotorBinary builds cmd/rotor once per test process.
func rotorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rotor-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rotor")
		// The SIGKILL hook (ROTOR_CRASH_AT) exists only with this tag.
		cmd := exec.Command("go", "build", "-tags", "rotor_crashhook", "-o", binPath, "github.com/rotor-dev/rotor/cmd/rotor")
		cmd.Stderr = os.Stderr
		buildErr = cmd.Run()
	})
	require.NoError(t, buildErr, "build rotor")
	return binPath
}

// startSim runs a simulator in-process for the test.
func startSim(t *testing.T, opts simtest.Options) (*sim.Server, *simfile.Info) {
	t.Helper()
	s := simtest.Start(t, opts)
	return s.Server, s.Info
}

// sdkClientOptions configures Microsoft's SDK clients from sim.json alone.
func sdkClientOptions(t *testing.T, info *simfile.Info) azcore.ClientOptions {
	t.Helper()
	pem, err := os.ReadFile(info.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: info.AuthorityHost},
		Transport: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		Retry:     policy.RetryOptions{MaxRetries: 3},
	}
}

func secretCredential(t *testing.T, info *simfile.Info, tenantID, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            sdkClientOptions(t, info),
		DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	return cred
}

// vaultClient reads the tenant's vault as the consumer identity: rotor's
// rotation identity may list, set and recover there but never read a value.
func vaultClient(t *testing.T, info *simfile.Info, tenant simfile.Tenant) *azsecrets.Client {
	t.Helper()
	cred, err := simtest.NewConsumerCredential(info, tenant.ID)
	require.NoError(t, err)
	c, err := azsecrets.NewClient(tenant.KeyVaults[0].URL, cred, &azsecrets.ClientOptions{
		ClientOptions:                        sdkClientOptions(t, info),
		DisableChallengeResourceVerification: true,
	})
	require.NoError(t, err)
	return c
}

// getToken tries a client-credentials token for the Graph scope.
func getToken(ctx context.Context, t *testing.T, info *simfile.Info, tenantID, clientID, secret string) error {
	cred := secretCredential(t, info, tenantID, clientID, secret)
	_, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.GraphAudience + "/.default"}})
	return err
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, last)
}

// rig is one end-to-end scene: a simulator, the rotor binary, a rotor.yaml
// for it (secrets passed as environment variables) and what it was written
// from (cfg), where data and logs go, and a Graph client per tenant to
// check Entra with. db is the PostgreSQL schema rotor keeps its state in,
// nil on SQLite (in dataDir).
type rig struct {
	bin, cfgPath, dataDir, logDir string
	cfg                           config.SimulatorConfig
	info                          *simfile.Info
	env                           []string
	graphs                        map[string]*graph.Client
	db                            *pgtest.DB
}

// storeKind is where a rig's rotor keeps its state.
type storeKind string

const (
	onSQLite   storeKind = "sqlite"
	onPostgres storeKind = "postgres"
)

// newRig starts the simulator with opts and writes rotor.yaml with cfg
// (SimFile, DataDir, LogLevel and Secret are filled in), rotor's state in
// SQLite in the data directory.
func newRig(t *testing.T, opts simtest.Options, cfg config.SimulatorConfig) *rig {
	t.Helper()
	return newRigOn(t, onSQLite, opts, cfg)
}

// newRigOn is newRig with rotor's state where kind says: on PostgreSQL, in
// a schema of its own (pgtest.New, which skips the test loudly when no
// cluster is configured), the application role in database.url and the
// owner in migrate_url, both passwords by {env: …} reference.
func newRigOn(t *testing.T, kind storeKind, opts simtest.Options, cfg config.SimulatorConfig) *rig {
	t.Helper()
	r := &rig{}
	r.env = os.Environ()
	switch kind {
	case onSQLite:
	case onPostgres:
		r.db = pgtest.New(t)
		cfg.Database = &config.SimulatorDatabase{
			URL: r.db.AppURL, Password: "{env: ROTOR_DB_PASSWORD}",
			MigrateURL: r.db.OwnerURL, MigratePassword: "{env: ROTOR_DB_OWNER_PASSWORD}",
		}
		r.env = append(r.env, "ROTOR_DB_PASSWORD="+r.db.AppPassword, "ROTOR_DB_OWNER_PASSWORD="+r.db.OwnerPassword)
	default:
		t.Fatalf("unknown store kind %q", kind)
	}
	r.bin = rotorBinary(t)
	_, r.info = startSim(t, opts)
	dir := t.TempDir()
	r.dataDir, r.logDir = filepath.Join(dir, "data"), filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(r.logDir, 0o700))
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, r.logDir)
		}
	})
	cfg.SimFile = filepath.Join(filepath.Dir(r.info.CAFile), simfile.FileName)
	cfg.DataDir, cfg.LogLevel = r.dataDir, "info"
	cfg.Secret = func(tn simfile.Tenant) string { return "{env: SECRET_" + tn.Name + "}" }
	r.cfgPath = filepath.Join(dir, "rotor.yaml")
	r.cfg = cfg
	r.writeConfig(t)
	r.graphs = map[string]*graph.Client{}
	for _, tn := range r.info.Tenants {
		r.env = append(r.env, "SECRET_"+tn.Name+"="+tn.Rotation.ClientSecret)
		r.graphs[tn.ID] = graphClient(t, r.info, tn)
	}
	return r
}

// writeConfig writes rotor.yaml from r.cfg.
func (r *rig) writeConfig(t *testing.T) {
	t.Helper()
	yaml, err := config.SimulatorYAML(r.info, r.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(r.cfgPath, yaml, 0o600))
}

// reconfigure changes rotor.yaml, as an operator edits it between two
// starts of rotor: the next process provisions what edit made of r.cfg.
func (r *rig) reconfigure(t *testing.T, edit func(*config.SimulatorConfig)) {
	t.Helper()
	edit(&r.cfg)
	r.writeConfig(t)
}

// requireNoValueAtRest fails the test if any of values (every secret the
// simulator issued) is anywhere rotor keeps state or writes: the data
// directory (the SQLite database, its WAL and journal), the logs, and on
// PostgreSQL every row of the rig's schema. The database passwords must
// not be in the logs either.
func (r *rig) requireNoValueAtRest(t *testing.T, values []string) {
	t.Helper()
	roots := []string{r.logDir}
	if _, err := os.Stat(r.dataDir); err == nil {
		roots = append(roots, r.dataDir)
	}
	requireNoValueAtRest(t, values, roots...)
	if r.db != nil {
		requireNoValueInSchema(t, r.db, values)
		requireNoValueAtRest(t, []string{r.db.AppPassword, r.db.OwnerPassword}, r.logDir)
	}
}

// requireNoValueInSchema fails the test if any of values is in a row of
// any table of db's schema, read as the superuser (past row-level
// security), each row as its text form, where a bytea column shows as hex.
func requireNoValueInSchema(t *testing.T, db *pgtest.DB, values []string) {
	t.Helper()
	require.NotEmpty(t, values)
	ctx := t.Context()
	admin := pgtest.Admin(t)
	rows, err := admin.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'`, db.Schema)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, tables, "runs", "the schema rotor migrated")
	needles := make([]string, 0, 2*len(values))
	for _, v := range values {
		needles = append(needles, v, hex.EncodeToString([]byte(v)))
	}
	n := 0
	for _, table := range tables {
		rows, err := admin.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{db.Schema, table}.Sanitize()+` t`)
		require.NoError(t, err)
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err, table)
		for _, row := range texts {
			n++
			for _, v := range needles {
				if strings.Contains(row, v) {
					t.Fatalf("an issued secret value was found in a row of table %s", table)
				}
			}
		}
	}
	t.Logf("no issued secret value in %d rows of %d tables of schema %s", n, len(tables), db.Schema)
}

// dumpLogs prints what a failed scene's processes said that a human would
// look for — every warning and error, then each log's last lines — since
// the temporary directory is gone once the test ends (in CI, the only
// trace).
func dumpLogs(t *testing.T, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		var notable []string
		for _, l := range lines {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				notable = append(notable, l)
			}
		}
		t.Logf("=== %s: %d lines, %d warnings/errors (last 40 shown), then its last 10 lines", e.Name(), len(lines), len(notable))
		for _, l := range notable[max(0, len(notable)-40):] {
			t.Log(l)
		}
		t.Log("---")
		for _, l := range lines[max(0, len(lines)-10):] {
			t.Log(l)
		}
	}
}

// log is the path of a log file in the rig's log directory.
func (r *rig) log(name string) string { return filepath.Join(r.logDir, name) }

// requireNoValueAtRest fails the test if any of values (every secret the
// simulator issued) is in any file under roots: the database, its WAL and
// journal, the logs.
func requireNoValueAtRest(t *testing.T, values []string, roots ...string) {
	t.Helper()
	require.NotEmpty(t, values)
	for _, root := range roots {
		require.NoError(t, filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, v := range values {
				if bytes.Contains(b, []byte(v)) {
					return fmt.Errorf("an issued secret value was found in %s", path)
				}
			}
			return nil
		}))
	}
}

// requireOneRotorCredentialForeignUntouched checks the end state the
// rotation protocol promises for every application of before: the
// credentials rotor did not create are exactly as they were, and exactly
// one rotor credential remains.
func requireOneRotorCredentialForeignUntouched(t *testing.T, before, after map[string]map[string]credSnapshot) {
	t.Helper()
	for tid, apps := range before {
		for oid, b := range apps {
			var foreignBefore, foreignAfter, rotorCreds []domain.Credential
			for _, c := range b.creds {
				if !c.RotorCreated() {
					foreignBefore = append(foreignBefore, c)
				}
			}
			for _, c := range after[tid][oid].creds {
				if c.RotorCreated() {
					rotorCreds = append(rotorCreds, c)
				} else {
					foreignAfter = append(foreignAfter, c)
				}
			}
			require.Equal(t, foreignBefore, foreignAfter, "%s: credentials rotor did not create must be untouched", b.name)
			require.Len(t, rotorCreds, 1, "%s: exactly one rotor credential must remain", b.name)
		}
	}
}
