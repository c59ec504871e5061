package graph_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/secret"
)

// certApp is an owned application of fabrikam without certificates.
func certApp(t *testing.T, e *simEnv) graph.Application {
	t.Helper()
	for _, a := range e.ownedApps(t) {
		if len(a.KeyCredentials) == 0 {
			return a
		}
	}
	t.Fatal("no owned app without certificates")
	return graph.Application{}
}

func keyIDs(t *testing.T, e *simEnv, objectID string) []string {
	t.Helper()
	got, err := e.client.GetApplication(t.Context(), objectID, []string{"id", "keyCredentials"})
	require.NoError(t, err)
	var out []string
	for _, k := range got.KeyCredentials {
		out = append(out, k.KeyID)
	}
	return out
}

// TestSimAddRemoveCertificate: without a prover the first certificate goes
// in with PATCH and keeps a foreign one; with the first as prover the next
// goes in with addKey; removal with a prover uses removeKey, without one
// PATCH, and neither touches the foreign certificate. Retried calls are
// no-ops.
func TestSimAddRemoveCertificate(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "fabrikam")
	ctx := t.Context()
	app := certApp(t, e)
	now := time.Now()

	_, foreign := newCert(t, "foreign", now.Add(-time.Hour), now.Add(30*24*time.Hour))
	require.NoError(t, e.client.UpdateKeyCredentials(ctx, app.ID, []graph.KeyCredential{{Type: "AsymmetricX509Cert", Usage: "Verify", Key: foreign.Raw, DisplayName: "made by a human"}}))
	foreignID := keyIDs(t, e, app.ID)[0]

	key1, cert1 := newCert(t, "first", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	first, err := e.client.AddCertificate(ctx, app.ID, graph.KeyCredential{Key: cert1.Raw, DisplayName: "rotor:first"}, nil, time.Now())
	require.NoError(t, err)
	require.NotEmpty(t, first.KeyID)
	require.ElementsMatch(t, []string{foreignID, first.KeyID}, keyIDs(t, e, app.ID))
	again, err := e.client.AddCertificate(ctx, app.ID, graph.KeyCredential{Key: cert1.Raw, DisplayName: "rotor:first"}, nil, time.Now())
	require.NoError(t, err)
	require.Equal(t, first.KeyID, again.KeyID, "a retry finds the certificate instead of adding it twice")

	_, cert2 := newCert(t, "second", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	prover := &graph.Prover{Cert: cert1, Key: key1}
	second, err := e.client.AddCertificate(ctx, app.ID, graph.KeyCredential{Key: cert2.Raw, DisplayName: "rotor:second"}, prover, time.Now())
	require.NoError(t, err)
	require.ElementsMatch(t, []string{foreignID, first.KeyID, second.KeyID}, keyIDs(t, e, app.ID))

	// removeKey with the proof.
	require.NoError(t, e.client.RemoveCertificate(ctx, app.ID, first.KeyID, prover, time.Now()))
	require.ElementsMatch(t, []string{foreignID, second.KeyID}, keyIDs(t, e, app.ID))
	// Gone already: success. The prover is no longer on the app either.
	require.NoError(t, e.client.RemoveCertificate(ctx, app.ID, first.KeyID, prover, time.Now()))
	// Without a valid prover: PATCH, keeping the foreign certificate.
	require.NoError(t, e.client.RemoveCertificate(ctx, app.ID, second.KeyID, prover, time.Now()))
	require.Equal(t, []string{foreignID}, keyIDs(t, e, app.ID))
}

// keyWriter runs once, right after the first answer to a read of the
// application's keyCredentials: another writer adds its certificate
// between rotor's read and its write.
type keyWriter struct {
	objectID string
	fired    atomic.Bool
	write    func(*http.Request)
}

func (k *keyWriter) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	r := req.Raw()
	if err == nil && r.Method == http.MethodGet && strings.Contains(r.URL.Path, k.objectID) &&
		strings.Contains(r.URL.RawQuery, "keyCredentials") && k.fired.CompareAndSwap(false, true) {
		k.write(r)
	}
	return resp, err
}

// TestSimPatchKeepsAConcurrentWritersKey: a certificate another writer
// adds after rotor read keyCredentials survives rotor's PATCH (rotor reads
// again before writing and starts over on a change) — for an addition and
// for a removal.
func TestSimPatchKeepsAConcurrentWritersKey(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"add", "remove"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			e := setupSim(t, "fabrikam")
			ctx := t.Context()
			app := certApp(t, e)
			now := time.Now()
			_, mine := newCert(t, "rotor", now.Add(-time.Hour), now.Add(30*24*time.Hour))
			var mineID string
			if op == "remove" {
				k, err := e.client.AddCertificate(ctx, app.ID, graph.KeyCredential{Key: mine.Raw, DisplayName: "rotor:x"}, nil, now)
				require.NoError(t, err)
				mineID = k.KeyID
			}
			_, other := newCert(t, "other writer", now.Add(-time.Hour), now.Add(30*24*time.Hour))
			w := &keyWriter{objectID: app.ID, write: func(*http.Request) {
				// The other writer: its own PATCH from what it read.
				got, err := e.client.GetApplication(ctx, app.ID, []string{"id", "keyCredentials"})
				require.NoError(t, err)
				require.NoError(t, e.client.UpdateKeyCredentials(ctx, app.ID, append(got.KeyCredentials,
					graph.KeyCredential{Type: "AsymmetricX509Cert", Usage: "Verify", Key: other.Raw, DisplayName: "other writer"})))
			}}
			cred, err := azure.NewCredential(e.connection(e.tenant.Rotation.ClientID, secret.New(e.tenant.Rotation.ClientSecret)), e.ep)
			require.NoError(t, err)
			racy, err := graph.New(cred, e.ep, graph.WithPerRetryPolicy(w))
			require.NoError(t, err)

			if op == "add" {
				_, err = racy.AddCertificate(ctx, app.ID, graph.KeyCredential{Key: mine.Raw, DisplayName: "rotor:x"}, nil, time.Now())
			} else {
				err = racy.RemoveCertificate(ctx, app.ID, mineID, nil, time.Now())
			}
			require.NoError(t, err)
			require.True(t, w.fired.Load(), "the other writer ran")
			got, err := e.client.GetApplication(ctx, app.ID, []string{"id", "keyCredentials"})
			require.NoError(t, err)
			var names []string
			for _, k := range got.KeyCredentials {
				names = append(names, k.DisplayName)
			}
			if op == "add" {
				require.ElementsMatch(t, []string{"other writer", "rotor:x"}, names)
			} else {
				require.ElementsMatch(t, []string{"other writer"}, names)
			}
		})
	}
}
