package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// TestCertificateCrashSafety is TestCrashSafety for kind: certificate
// (issue 11): a certificate policy over every owned application of two
// tenants, delivered to Key Vault as PEM, `rotor serve` SIGKILLed at one
// step after another and restarted each time, through two waves: the
// adoption, then — after an operator lengthens the policy's renew_before
// so that every certificate is due again — a renewal whose retirements
// remove the first wave's certificates. A certificate's private key dies
// with the process that made it, so recovery cannot finish a run that no
// sink holds: its certificate is removed at once (a keyCredentials
// update), and a kill in the middle of that removal is one of the steps.
// Every third application also holds a certificate a person added before
// the first wave. Once rotor has finished undisturbed and the overlap has
// passed:
//   - every application's vault PEM signs in as the application
//     (azidentity.ParseCertificates, ClientCertificateCredential), and it
//     is the certificate Entra holds under the newest rotor key id;
//   - no rotor:<run id> certificate but that one remains, and rotor made
//     no secret;
//   - the person's certificates, and every secret, are as they were;
//   - no private key rotor delivered (every version of every vault
//     secret) is in the data directory or the logs;
//   - the journal shows the removals happened: by recovery (cleanup) and
//     by retirement.
func TestCertificateCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end crash test; run without -short")
	}
	// 40 applications: every rotation makes an RSA 2048 key (≈ 0.1 s of
	// CPU, BenchmarkGenerate in internal/certgen), and each wave must
	// still have work when its later crash points come: 8 at once.
	r := newRig(t, simtest.Options{Seed: "apps=20,tenants=2,expiring=1h,replication=300ms"}, config.SimulatorConfig{
		Rotation: config.SimulatorRotation{Jitter: "2s", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m", ConcurrencyPerTenant: 4, MaxInFlight: 8, LeaseTTL: "2s"},
		Policies: []config.SimulatorPolicy{{Name: "certs", Kind: "certificate", Lifetime: "30d", RenewBefore: "10d", Overlap: "4s"}},
	})
	ctx, began := context.Background(), time.Now()
	people := addPeoplesCertificates(ctx, t, r, 3)
	before := snapshot(ctx, t, r.info, r.graphs)
	requireForeignCertificates(t, before, people)

	// The adoption. Ordered as in TestCrashSafety, with a kill in
	// recovery's removal of a crashed run's certificate (cleanup::1: the
	// next process recovers created:4's runs at its start). A kill after
	// a sink write is resumed, not replaced: the vault holds the run's
	// certificate. A pause longer than the lease after each kill, so that
	// each start takes over what the last kill left (crashAtSteps).
	pause := 3 * time.Second
	r.crashAtSteps(t, "wave1", []string{"planned:3", "created:4", "cleanup::1", "sink:0:written:3", "propagated:4", "verified:5"}, 20*time.Second, pause)
	r.finishWave(ctx, t, "wave1", domain.KindCertificate, nil)
	t.Logf("wave 1 converged after %s", time.Since(began).Round(time.Second))
	wave1 := snapshot(ctx, t, r.info, r.graphs)
	requireOneRotorCredentialForeignUntouched(t, before, wave1)
	firstWave := map[string]bool{}
	for _, apps := range wave1 {
		for _, app := range apps {
			c, ok := domain.NewestRotorCredential(app.creds, domain.KindCertificate)
			require.True(t, ok, app.name)
			firstWave[c.KeyID] = true
		}
	}

	// The renewal: every certificate ends in 30 days, so with renew_before
	// 40d all are due at once; their retirement after the overlap removes
	// the first wave's certificates, beside the people's, with a
	// keyCredentials update each. verified:30 leaves most runs retiring;
	// the next start reschedules their retirement (now due: the pause
	// outlasts the overlap) and is killed in its removals (retire::N counts
	// removing and removed), twice; the undisturbed one finishes them.
	r.reconfigure(t, func(c *config.SimulatorConfig) { c.Policies[0].Lifetime, c.Policies[0].RenewBefore = "60d", "40d" })
	r.crashAtSteps(t, "wave2", []string{"created:5", "verified:30", "retire::3", "retire::6"}, 30*time.Second, pause+2*time.Second)
	r.finishWave(ctx, t, "wave2", domain.KindCertificate, firstWave)
	t.Logf("wave 2 converged after %s", time.Since(began).Round(time.Second))

	after := snapshot(ctx, t, r.info, r.graphs)
	requireOneRotorCredentialForeignUntouched(t, before, after)
	requireForeignCertificates(t, after, people)
	for tid, apps := range after {
		for oid, app := range apps {
			for _, c := range app.creds {
				require.False(t, c.RotorCreated() && c.Kind != domain.KindCertificate, "%s: a certificate policy made a %s", app.name, c.Kind)
			}
			old, _ := domain.NewestRotorCredential(wave1[tid][oid].creds, domain.KindCertificate)
			now, _ := domain.NewestRotorCredential(app.creds, domain.KindCertificate)
			require.NotEqual(t, old.KeyID, now.KeyID, "%s: renewed in the second wave", app.name)
		}
	}
	requireConsumersWork(ctx, t, r.info, r.graphs, after, domain.KindCertificate)
	t.Logf("every vault PEM signs in; %s since the start", time.Since(began).Round(time.Second))

	runs := r.journalCounts(ctx, t)
	t.Logf("journal: %+v", runs)
	require.Positive(t, runs.cleanupRemoved, "recovery removed a crashed run's certificate that no sink held")
	require.Positive(t, runs.retireRemoved, "retirement removed older rotor certificates")

	keys, versions := deliveredPrivateKeys(ctx, t, r.info, after)
	t.Logf("%d certificates delivered to the vaults", versions)
	r.requireNoValueAtRest(t, keys)
}

// addPeoplesCertificates gives every nth owned application (by object id,
// in each tenant) a certificate a person uploaded with a keyCredentials
// PATCH, beside whatever it holds, before rotor runs: rotor did not create
// it, so it must outlive every rotation. It returns their display names
// per tenant and application object id.
func addPeoplesCertificates(ctx context.Context, t *testing.T, r *rig, nth int) map[string]map[string]string {
	t.Helper()
	snap := snapshot(ctx, t, r.info, r.graphs)
	out := map[string]map[string]string{}
	for _, tn := range r.info.Tenants {
		g := r.graphs[tn.ID]
		oids := make([]string, 0, len(snap[tn.ID]))
		for oid := range snap[tn.ID] {
			oids = append(oids, oid)
		}
		sort.Strings(oids)
		out[tn.ID] = map[string]string{}
		for i, oid := range oids {
			if i%nth != 0 {
				continue
			}
			app, err := g.GetApplication(ctx, oid, []string{"id", "keyCredentials"})
			require.NoError(t, err)
			keys := app.KeyCredentials
			for _, k := range keys {
				require.NotEmpty(t, k.Key, "a certificate already there must come back whole, or the PATCH would drop it")
			}
			name := "uploaded by ops " + path.Base(oid)
			keys = append(keys, graph.KeyCredential{Type: "AsymmetricX509Cert", Usage: "Verify", Key: selfSigned(t, "ops-"+oid), DisplayName: name})
			require.NoError(t, g.UpdateKeyCredentials(ctx, oid, keys))
			out[tn.ID][oid] = name
		}
	}
	return out
}

// requireForeignCertificates checks that snap holds each person's
// certificate on its application, so the "untouched" check compares
// something.
func requireForeignCertificates(t *testing.T, snap map[string]map[string]credSnapshot, people map[string]map[string]string) {
	t.Helper()
	n := 0
	for tid, apps := range people {
		for oid, name := range apps {
			found := false
			for _, c := range snap[tid][oid].creds {
				found = found || (c.Kind == domain.KindCertificate && c.DisplayName == name)
			}
			require.True(t, found, "%s: the certificate %q a person added", snap[tid][oid].name, name)
			n++
		}
	}
	require.Positive(t, n)
}

// selfSigned is a person's certificate: an RSA 2048 self-signed DER,
// valid for a year, whose key nobody keeps.
func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return der
}

// requireCertificateSignsIn checks a vault PEM as its consumer would use
// it: azidentity parses it (certificate chain and key) and a
// ClientCertificateCredential gets a token as the application; and its
// leaf is the certificate Entra holds under want's key id.
func requireCertificateSignsIn(ctx context.Context, t *testing.T, info *simfile.Info, g *graph.Client, tenantID, objectID, appID, pemData string, want domain.Credential, name string) {
	t.Helper()
	certs, key, err := azidentity.ParseCertificates([]byte(pemData), nil)
	require.NoError(t, err, "%s: azidentity must read the vault's PEM", name)
	require.NotEmpty(t, certs, name)
	cred, err := azidentity.NewClientCertificateCredential(tenantID, appID, certs, key, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions: sdkClientOptions(t, info), DisableInstanceDiscovery: true,
	})
	require.NoError(t, err, name)
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.GraphAudience + "/.default"}})
	require.NoError(t, err, "%s: the vault's certificate must get a token", name)

	app, err := g.GetApplication(ctx, objectID, []string{"id", "keyCredentials"})
	require.NoError(t, err, name)
	var der []byte
	for _, k := range app.KeyCredentials {
		if k.KeyID == want.KeyID {
			der = k.Key
		}
	}
	require.NotEmpty(t, der, "%s: Entra holds rotor's newest certificate %s with its body", name, want.KeyID)
	require.True(t, bytes.Equal(der, certs[0].Raw), "%s: the vault holds the certificate Entra has under key id %s", name, want.KeyID)
}

// deliveredPrivateKeys reads every version of every application's vault
// secret as the consumer and returns, for each private key in them, what
// would give it away at rest: the first line of its PEM body and its DER.
// It also returns how many versions there were.
func deliveredPrivateKeys(ctx context.Context, t *testing.T, info *simfile.Info, apps map[string]map[string]credSnapshot) ([]string, int) {
	t.Helper()
	var out []string
	versions := 0
	for _, tn := range info.Tenants {
		kv := vaultClient(t, info, tn)
		for _, app := range apps[tn.ID] {
			name := app.name + "-secret"
			pager := kv.NewListSecretPropertiesVersionsPager(name, nil)
			for pager.More() {
				page, err := pager.NextPage(ctx)
				require.NoError(t, err, name)
				for _, p := range page.Value {
					require.NotNil(t, p.ID, name)
					resp, err := kv.GetSecret(ctx, name, p.ID.Version(), nil)
					require.NoError(t, err, name)
					require.NotNil(t, resp.Value, name)
					versions++
					found := false
					for rest := []byte(*resp.Value); ; {
						var b *pem.Block
						b, rest = pem.Decode(rest)
						if b == nil {
							break
						}
						if b.Type != "PRIVATE KEY" {
							continue
						}
						found = true
						body := pem.EncodeToMemory(b)
						lines := bytes.Split(body, []byte("\n"))
						out = append(out, string(lines[1]), string(b.Bytes))
					}
					require.True(t, found, "%s version %s: a PEM with a PRIVATE KEY", name, p.ID.Version())
				}
			}
		}
	}
	require.NotEmpty(t, out)
	return out, versions
}

// journalTally is what a scene's runs came to.
type journalTally struct {
	runs                          int
	states                        map[domain.RunState]int
	cleanupRemoved, retireRemoved int // removals journaled as done
	abandonedAfterSinkWrite       int
}

// journalCounts reads every run of the rig's SQLite store with its
// journal.
func (r *rig) journalCounts(ctx context.Context, t *testing.T) journalTally {
	t.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(r.dataDir, "rotor.db"))
	require.NoError(t, err)
	defer st.Close()
	runs, err := st.ListRuns(ctx, store.ListRunsParams{Org: domain.DefaultOrg})
	require.NoError(t, err)
	out := journalTally{runs: len(runs), states: map[domain.RunState]int{}}
	for _, run := range runs {
		out.states[run.State]++
		full, err := st.GetRun(ctx, domain.DefaultOrg, run.ID)
		require.NoError(t, err)
		for _, ev := range full.Events {
			switch {
			case ev.Step.Kind == domain.StepCleanup && ev.Step.Phase == domain.PhaseRemoved:
				out.cleanupRemoved++
			case ev.Step.Kind == domain.StepRetire && ev.Step.Phase == domain.PhaseRemoved:
				out.retireRemoved++
			}
		}
		if run.State == domain.RunAbandoned && journaledSinkWrite(full) {
			out.abandonedAfterSinkWrite++
		}
	}
	return out
}
