package rotation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/certgen"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
)

var (
	_ CertificateDirectory = (*memDirectory)(nil)
	_ CertificateVerifier  = (*memDirectory)(nil)
)

// pemOf is what a memory sink keeps of a certificate: its PEM certificate
// and private key, as a consumer would read them.
func pemOf(c *sink.Certificate) string {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key.Signer())
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Chain[0].Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// validProver reports whether p is a currently valid certificate of the
// application (Graph accepts its proof). Called with d.mu held.
func (d *memDirectory) validProver(objectID string, p *Prover) bool {
	if p == nil {
		return false
	}
	now := d.clock.Now()
	for _, c := range d.apps[objectID] {
		if c.Kind == domain.KindCertificate && bytes.Equal(c.der, p.Cert.Raw) && !now.Before(c.Start) && now.Before(c.End) {
			return true
		}
	}
	return false
}

func (d *memDirectory) AddCertificate(_ context.Context, objectID, displayName string, cert *x509.Certificate, p *Prover) (NewKey, error) {
	d.mu.Lock()
	d.addCount++
	n := d.addCount
	d.mu.Unlock()
	if d.addErr != nil {
		if err := d.addErr(n); err != nil {
			return NewKey{}, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.apps[objectID]; !ok {
		return NewKey{}, fmt.Errorf("application %s not found", objectID)
	}
	for _, c := range d.apps[objectID] {
		if bytes.Equal(c.der, cert.Raw) {
			return NewKey{KeyID: c.KeyID, Start: c.Start, End: c.End}, nil
		}
	}
	op := "patch"
	if d.validProver(objectID, p) {
		op = "addKey"
	}
	d.certOps = append(d.certOps, op)
	c := &memCred{Credential: domain.Credential{
		KeyID: uuid.NewString(), Kind: domain.KindCertificate, DisplayName: displayName, Thumbprint: Thumbprint(cert),
		Start: cert.NotBefore, End: cert.NotAfter,
	}, der: cert.Raw, pendingLeft: d.replication}
	d.apps[objectID] = append(d.apps[objectID], c)
	return NewKey{KeyID: c.KeyID, Start: c.Start, End: c.End}, nil
}

func (d *memDirectory) RemoveCertificate(_ context.Context, objectID, keyID string, p *Prover) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.removeErrFor[keyID]; err != nil {
		return err
	}
	if !slices.ContainsFunc(d.apps[objectID], func(c *memCred) bool { return c.KeyID == keyID }) {
		return nil
	}
	op := "patch"
	if d.validProver(objectID, p) {
		op = "removeKey"
	}
	d.certOps = append(d.certOps, op)
	d.apps[objectID] = slices.DeleteFunc(d.apps[objectID], func(c *memCred) bool { return c.KeyID == keyID })
	d.removed = append(d.removed, keyID)
	return nil
}

// VerifyCertificate is Entra's client-assertion check: the leaf must be a
// certificate of the application and the key must sign for it.
func (d *memDirectory) VerifyCertificate(_ context.Context, _, clientID string, c *sink.Certificate) error {
	if c == nil || len(c.Chain) == 0 || c.Key.IsZero() {
		return errors.New("no certificate")
	}
	digest := sha256.Sum256([]byte("assertion"))
	sig, err := c.Key.Signer().Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return err
	}
	if err := rsa.VerifyPKCS1v15(c.Chain[0].PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("AADSTS700027: signature does not verify: %w", errPolicy)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.verifyErr != nil {
		return d.verifyErr
	}
	for _, cr := range d.apps[d.appID[clientID]] {
		if bytes.Equal(cr.der, c.Chain[0].Raw) {
			if cr.pendingLeft > 0 {
				cr.pendingLeft--
				return errPending
			}
			return nil
		}
	}
	return errPending
}

// fileSecrets resolves {file} references, as rotor's resolver does.
type fileSecrets struct{}

func (fileSecrets) Resolve(_ context.Context, ref sink.SecretRef) (secret.Value, error) {
	b, err := os.ReadFile(ref.File)
	if err != nil {
		return secret.Value{}, err
	}
	return secret.New(string(b)), nil
}

// certBundle is setup for certificates: the application also holds a
// foreign certificate and an older rotor certificate, and the policy is
// of kind certificate. bootstrap, when true, makes the foreign one the
// policy's bootstrap certificate (its PEM in a file).
func certSetup(t *testing.T, bootstrap bool) (*bundle, *sink.Certificate) {
	t.Helper()
	b := setup(t)
	mk := func(cn string, from, to time.Time) *sink.Certificate {
		c, err := certgen.Generate(certgen.Request{Subject: pkixName(cn), NotBefore: from, NotAfter: to})
		require.NoError(t, err)
		return c
	}
	foreign := mk("by hand", t0.Add(-100*24*time.Hour), t0.Add(200*24*time.Hour))
	oldRotor := mk("old", t0.Add(-80*24*time.Hour), t0.Add(5*24*time.Hour))
	for _, c := range []struct {
		id, name string
		cert     *sink.Certificate
	}{{"foreign-cert", "made by ops", foreign}, {"old-rotor-cert", domain.DisplayNameFor("0190aaaa-0000-7000-8000-000000000001"), oldRotor}} {
		cred := domain.Credential{KeyID: c.id, Kind: domain.KindCertificate, DisplayName: c.name, Thumbprint: Thumbprint(c.cert.Chain[0]),
			Start: c.cert.Chain[0].NotBefore, End: c.cert.Chain[0].NotAfter}
		b.app.Credentials = append(b.app.Credentials, cred)
		b.dir.mu.Lock()
		b.dir.apps[b.app.ObjectID] = append(b.dir.apps[b.app.ObjectID], &memCred{Credential: cred, der: c.cert.Chain[0].Raw})
		b.dir.mu.Unlock()
	}
	b.policy.Kind = domain.KindCertificate
	if bootstrap {
		path := filepath.Join(t.TempDir(), "bootstrap.pem")
		require.NoError(t, os.WriteFile(path, []byte(pemOf(foreign)), 0o600))
		b.policy.Certificate.Bootstrap = map[string]any{"file": path}
	}
	return b, foreign
}

// certAssertions: what a certificate rotation must leave — exactly one
// rotor certificate (the run's), the foreign certificate and every secret
// untouched, each sink holding a PEM whose key gets a token, and no
// private key in the journal or the logs.
func assertCertConverged(t *testing.T, b *bundle, runID string) {
	t.Helper()
	var rotorCerts []domain.Credential
	kinds := map[string]bool{}
	for _, c := range b.dir.creds(b.app.ObjectID) {
		kinds[c.KeyID] = true
		if c.Kind == domain.KindCertificate && c.RotorCreated() {
			rotorCerts = append(rotorCerts, c)
		}
	}
	require.True(t, kinds["foreign-cert"], "the certificate rotor did not make stays")
	require.True(t, kinds["foreign"], "the foreign secret stays")
	require.True(t, kinds["old-rotor"], "a rotor secret is not the certificate policy's business")
	require.Len(t, rotorCerts, 1, "exactly one rotor certificate: %v", rotorCerts)
	require.Equal(t, runID, rotorCerts[0].RunID())
	full, err := b.store.GetRun(b.ctx, b.org, runID)
	require.NoError(t, err)
	for _, s := range []string{"kv", "ado"} {
		v, keyID := b.vault.get(s, b.app.ObjectID)
		require.Equal(t, rotorCerts[0].KeyID, keyID, "sink %s holds the surviving certificate", s)
		p, err := ParseProver([]byte(v.Reveal()))
		require.NoError(t, err, "sink %s holds a PEM certificate and key", s)
		require.NoError(t, b.dir.VerifyCertificate(b.ctx, tenant, b.app.AppID, &sink.Certificate{Chain: []*x509.Certificate{p.Cert}, Key: p.Key}))
		// The private key is nowhere at rest: not in the journal, not in the logs.
		keyPEM := v.Reveal()[strings.Index(v.Reveal(), "-----BEGIN PRIVATE KEY-----"):]
		body := strings.Split(keyPEM, "\n")[1]
		require.NotContains(t, b.logs.String(), body)
		require.NotContains(t, full.Error, body)
		for _, ev := range full.Events {
			require.NotContains(t, ev.Message, body)
		}
	}
}

func TestCertificateRotation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		bootstrap bool
		wantOps   []string // add, then retire
	}{
		{"without a bootstrap certificate: keyCredentials updates", false, []string{"patch", "patch"}},
		{"with a bootstrap certificate: addKey and removeKey", true, []string{"addKey", "removeKey"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, _ := certSetup(t, tc.bootstrap)
			b.dir.replication = 3 // Entra is slow to accept the new certificate
			e := b.engine(t)
			e.secrets = fileSecrets{}
			run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
			require.NoError(t, err)
			require.Equal(t, domain.RunRetiring, run.State)
			require.Equal(t, domain.KindCertificate, run.Kind)
			full, err := b.store.GetRun(b.ctx, b.org, run.ID)
			require.NoError(t, err)
			created := full.Events[slices.IndexFunc(full.Events, func(ev domain.RunEvent) bool { return ev.Step == domain.StepCreated.Step() })]
			require.Contains(t, created.Message, "created certificate "+run.NewKeyID)
			require.Contains(t, created.Message, "subject CN=web-storefront")

			b.clock.Advance(b.policy.Overlap + time.Minute)
			require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
			done, err := b.store.GetRun(b.ctx, b.org, run.ID)
			require.NoError(t, err)
			require.Equal(t, domain.RunDone, done.State)
			require.Equal(t, tc.wantOps, b.dir.certOps)
			require.NotContains(t, b.dir.creds(b.app.ObjectID), "old-rotor-cert")
			assertCertConverged(t, b, run.ID)
		})
	}
}

// TestCertificateFailureRemovesIt: a certificate Entra never accepts is
// removed before any sink got it — by removeKey, proving possession with
// the run's own new certificate, whose key only the run holds.
func TestCertificateFailureRemovesIt(t *testing.T) {
	t.Parallel()
	b, _ := certSetup(t, false)
	b.dir.verifyErr = fmt.Errorf("AADSTS700027: %w", errPolicy)
	e := b.engine(t)
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.True(t, IsPermanentFailure(err), "%v", err)
	require.Equal(t, domain.RunFailed, run.State)
	require.Equal(t, []string{"patch", "removeKey"}, b.dir.certOps)
	for _, c := range b.dir.creds(b.app.ObjectID) {
		require.NotEqual(t, run.ID, c.RunID(), "the failed run's certificate is gone")
	}
	require.Len(t, b.dir.creds(b.app.ObjectID), 4, "nothing else was touched")
}

// TestCertificateCrashRecovery: a process killed after registering the
// certificate and before any sink holds it leaves it for Recover, which
// removes it (by a keyCredentials update: its key died with the process);
// the fresh run then converges.
func TestCertificateCrashRecovery(t *testing.T) {
	t.Parallel()
	b, _ := certSetup(t, false)
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: []domain.Application{b.app}})
	require.NoError(t, err)
	var crashed domain.Run
	b.hooks.AfterJournal = func(r domain.Run, st domain.Step) {
		if st.String() == "sink:0:writing" {
			crashed = r
			panic(crash{st.String()})
		}
	}
	e := b.engine(t)
	require.True(t, runUntilCrash(func() { _, _ = e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue) }))
	require.NotEmpty(t, crashed.NewKeyID)
	b.die(e)
	b.hooks = Hooks{}
	e = b.engine(t)
	e.policies = onePolicy{&b.policy}
	abandoned, err := e.Recover(b.ctx, b.org)
	require.NoError(t, err)
	require.Len(t, abandoned, 1)
	got, err := b.store.GetRun(b.ctx, b.org, crashed.ID)
	require.NoError(t, err)
	require.Contains(t, got.Error, "no sink holds its certificate")
	require.Equal(t, []string{"patch", "patch"}, b.dir.certOps)

	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue, Replacing(crashed.ID))
	require.NoError(t, err)
	b.clock.Advance(b.policy.Overlap + time.Minute)
	require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	assertCertConverged(t, b, run.ID)
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }
