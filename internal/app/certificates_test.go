package app_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// A certificate rotor created is flagged "private key unknown" while no
// sink delivery record holds it, and no longer once one does; a newer
// held certificate clears an older one (it waits out its overlap);
// certificates rotor did not create are never flagged. The details the
// inventory read come with the credential.
func TestCertificatePrivateKeyUnknown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rotor.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	const org domain.OrgID = "acme"
	require.NoError(t, st.EnsureOrg(ctx, org, "Acme"))
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cert := func(id, name string, age time.Duration) domain.Credential {
		return domain.Credential{KeyID: id, Kind: domain.KindCertificate, DisplayName: name, Thumbprint: "q83vEjRWeJq83vEjRWeJq83vEjQ=",
			Start: now.Add(-age), End: now.Add(90 * 24 * time.Hour)}
	}
	a := domain.Application{TenantID: "t1", ObjectID: "obj-1", AppID: "app-1", DisplayName: "payroll", Manageable: true,
		Credentials: []domain.Credential{cert("c-old", "rotor:run-1", 48*time.Hour), cert("c-theirs", "CN=by hand", 72*time.Hour)}}
	_, err = st.SyncApplications(ctx, store.SyncApplicationsParams{Org: org, Connection: "c", SyncStarted: now, Applications: []domain.Application{a}})
	require.NoError(t, err)
	require.NoError(t, st.PutCertificateDetails(ctx, store.PutCertificateDetailsParams{Org: org, TenantID: "t1",
		Details: []store.CertificateDetails{{AppObjectID: "obj-1", KeyID: "c-old", Info: domain.CertificateInfo{ThumbprintSHA1: "ABCDEF0123456789ABCDEF0123456789ABCDEF01",
			ThumbprintSHA256: "AA", Subject: "CN=payroll", Issuer: "CN=payroll", KeyAlgorithm: "RSA", KeySize: 2048}}}}))
	svc := app.New(app.Deps{Store: st, Engine: nopEngine{}, Policies: nopPolicies{}, Clock: clock.NewFake(now)})
	scope := app.Scope{Org: org, Actor: app.CLI}
	flags := func() map[string]app.CredentialInfo {
		t.Helper()
		d, err := svc.GetApplication(ctx, scope, "obj-1")
		require.NoError(t, err)
		out := map[string]app.CredentialInfo{}
		for _, c := range d.Credentials {
			out[c.KeyID] = c
		}
		return out
	}
	got := flags()
	require.True(t, got["c-old"].PrivateKeyUnknown, "no sink holds rotor's certificate")
	require.False(t, got["c-theirs"].PrivateKeyUnknown, "not rotor's")
	require.Equal(t, "ABCDEF0123456789ABCDEF0123456789ABCDEF01", got["c-old"].Thumbprint, "the parsed thumbprint wins")
	require.Equal(t, "ABCDEF123456789ABCDEF123456789ABCDEF1234", got["c-theirs"].Thumbprint, "else customKeyIdentifier, as hex")
	require.Equal(t, "CN=payroll", got["c-old"].Certificate.Subject)
	require.Nil(t, got["c-theirs"].Certificate, "not read yet")

	require.NoError(t, st.RecordSinkDelivery(ctx, store.RecordSinkDeliveryParams{Org: org, TenantID: "t1", AppObjectID: "obj-1",
		Delivery: store.SinkDelivery{Target: "kubernetes:namespaces/p/secrets/s@in-cluster", KeyID: "c-old", Version: "7", DeliveredAt: now}}))
	require.False(t, flags()["c-old"].PrivateKeyUnknown, "a sink holds it")

	// A newer rotor certificate that reached no sink is flagged; once it
	// is delivered, the older one, superseded, is not.
	a.Credentials = append(a.Credentials, cert("c-new", "rotor:run-2", time.Hour))
	_, err = st.SyncApplications(ctx, store.SyncApplicationsParams{Org: org, Connection: "c", SyncStarted: now.Add(time.Minute), Applications: []domain.Application{a}})
	require.NoError(t, err)
	got = flags()
	require.True(t, got["c-new"].PrivateKeyUnknown)
	require.False(t, got["c-old"].PrivateKeyUnknown)
	require.NoError(t, st.RecordSinkDelivery(ctx, store.RecordSinkDeliveryParams{Org: org, TenantID: "t1", AppObjectID: "obj-1",
		Delivery: store.SinkDelivery{Target: "kubernetes:namespaces/p/secrets/s@in-cluster", KeyID: "c-new", Version: "8", DeliveredAt: now}}))
	got = flags()
	require.False(t, got["c-new"].PrivateKeyUnknown)
	require.False(t, got["c-old"].PrivateKeyUnknown, "superseded, waiting out its overlap")
}
