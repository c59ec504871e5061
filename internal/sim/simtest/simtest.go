// Package simtest starts rotor's Azure simulator for a test: the one way
// every test gets a simulator, so each one is configured the same way a
// real client is (from sim.json, trusting the simulator's CA), is closed
// when the test ends, and moves simulated time instead of sleeping.
//
// It is a test helper with Microsoft's SDK types in its API (azcore
// credentials and client options) because the tests it serves drive
// Microsoft's own SDK clients against the simulator.
package simtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// Options configure a test's simulator. The zero value is the demo seed
// on a fresh temp dir with a clock tests can advance.
type Options struct {
	// Seed is a seed spec as sim.Options.Seed; empty means "demo".
	Seed string
	// Clock is the simulated time source. It must be advanceable
	// (*clock.Offset or *clock.Fake) for AdvanceClock; nil means a new
	// *clock.Offset (wall time, movable forward).
	Clock Clock
	// Faults is the initial fault injection.
	Faults sim.FaultConfig
	// ReplicationDelay, when set, overrides every tenant's delay.
	ReplicationDelay *time.Duration
	// OnSecretIssued is passed to sim.Options.OnSecretIssued.
	OnSecretIssued func(tenantID, appObjectID, keyID, value string)
	// Logger receives the simulator's logs; nil discards them.
	Logger *slog.Logger
	// StateDir is where sim.json and the CA go; empty means t.TempDir().
	StateDir string
}

// Clock is a simulated clock a test can move forward: what AdvanceClock
// needs. *clock.Offset and *clock.Fake are Clocks.
type Clock interface {
	clock.Clock
	Advance(time.Duration)
}

// Sim is a running simulator and what a test needs to talk to it.
type Sim struct {
	// Server is the simulator itself (World, MintToken, SetFaults, Stats).
	Server *sim.Server
	// Info is sim.json as a client reads it back from disk.
	Info *simfile.Info
	// Dir is the state dir and File the path of its sim.json.
	Dir, File string
	// CAPool trusts the simulator's CA, and TLS is a client configuration
	// with it, for clients built by hand.
	CAPool *x509.CertPool
	TLS    *tls.Config
	// HTTP is an *http.Client that trusts the simulator (no proxy: only
	// loopback is reached).
	HTTP *http.Client
	// ClientOptions point Microsoft's SDK clients at the simulator: the
	// authority and a transport trusting its CA. Retry is the SDK default;
	// copy and change it where a test needs other retries.
	ClientOptions azcore.ClientOptions
	// AdminToken authorizes the /_sim/ control API.
	AdminToken string
	// Clock is the simulator's clock.
	Clock Clock
}

// Start builds and starts a simulator for t, waits until sim.json is
// written, and registers its shutdown with t.Cleanup.
func Start(t testing.TB, opts Options) *Sim {
	t.Helper()
	dir := opts.StateDir
	if dir == "" {
		dir = t.TempDir()
	}
	clk := opts.Clock
	if clk == nil {
		clk = &clock.Offset{}
	}
	srv, err := sim.New(sim.Options{
		StateDir: dir, Seed: opts.Seed, Clock: clk, Logger: opts.Logger,
		ReplicationDelay: opts.ReplicationDelay, Faults: opts.Faults, OnSecretIssued: opts.OnSecretIssued,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		cancel()
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		// Close before cancelling: cancelling makes the simulator close
		// itself in the background, and Close would then return before the
		// shutdown is over. A slow shutdown (a client still holding a
		// request open after its 5 s grace) is logged, not failed: it says
		// something about the client, not about the test's assertions.
		if err := srv.Close(); err != nil {
			t.Logf("simtest: simulator shutdown: %v", err)
		}
		cancel()
		<-srv.Done()
	})

	file := filepath.Join(dir, simfile.FileName)
	info, err := simfile.Load(file)
	require.NoError(t, err)
	pem, err := os.ReadFile(info.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem), "the simulator's CA parses")
	tlsConf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	// Proxy is nil: nothing but the simulator on loopback is reached.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	t.Cleanup(hc.CloseIdleConnections)
	return &Sim{
		Server: srv, Info: info, Dir: dir, File: file, CAPool: pool, TLS: tlsConf, HTTP: hc,
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: info.AuthorityHost},
			Transport: hc,
		},
		AdminToken: srv.AdminToken(),
		Clock:      clk,
	}
}

// Tenant returns the seeded tenant with the given id or name from
// sim.json, failing the test if there is none.
func (s *Sim) Tenant(t testing.TB, idOrName string) *simfile.Tenant {
	t.Helper()
	tn, ok := s.Info.Tenant(idOrName)
	require.True(t, ok, "tenant %s is seeded", idOrName)
	return tn
}

// Now is the simulator's time.
func (s *Sim) Now() time.Time { return s.Clock.Now() }

// AdvanceClock moves the simulator's clock forward by d: past a
// replication delay, an expiry or an overlap, instead of sleeping through
// it. It returns the new simulated time.
func (s *Sim) AdvanceClock(d time.Duration) time.Time {
	s.Clock.Advance(d)
	return s.Clock.Now()
}

// AdvancePastReplication moves the clock past the tenant's replication
// delay, so a password or key added just now is accepted at the token
// endpoint, as it would be in Entra once it has replicated.
func (s *Sim) AdvancePastReplication(t testing.TB, tenant string) time.Time {
	t.Helper()
	tn := s.Server.World().Tenant(tenant)
	require.NotNil(t, tn, "tenant %s is seeded", tenant)
	var d time.Duration
	s.Server.World().Update(func() { d = tn.ReplicationDelay })
	return s.AdvanceClock(d + time.Second)
}

// SecretCredential is a client-secret credential through the simulator's
// token endpoint, configured as a client would be from sim.json.
func (s *Sim) SecretCredential(t testing.TB, tenantID, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: s.ClientOptions, DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	return cred
}

// RotationCredential is the credential of the tenant's rotation identity
// (Graph OwnedBy and Read.All; list, set and recover on the tenant's vaults).
func (s *Sim) RotationCredential(t testing.TB, tenant string) azcore.TokenCredential {
	t.Helper()
	tn := s.Tenant(t, tenant)
	return s.SecretCredential(t, tn.ID, tn.Rotation.ClientID, tn.Rotation.ClientSecret)
}

// ConsumerCredential is the credential of the tenant's consumer identity,
// the one that may read secret values (get and list on the tenant's
// vaults): what a test uses to check what an application reading its
// secret would get. See NewConsumerCredential.
func (s *Sim) ConsumerCredential(t testing.TB, tenant string) azcore.TokenCredential {
	t.Helper()
	cred, err := NewConsumerCredential(s.Info, tenant)
	require.NoError(t, err)
	return cred
}

// NewConsumerCredential is the consumer identity's credential from sim.json
// alone, for tests that hold only the file. Tokens come from the
// simulator's managed identity endpoint, as a user-assigned managed
// identity's do, without touching the process environment (so tests using
// it can run in parallel, unlike azidentity's ManagedIdentityCredential).
func NewConsumerCredential(info *simfile.Info, tenant string) (azcore.TokenCredential, error) {
	tn, ok := info.Tenant(tenant)
	if !ok {
		return nil, fmt.Errorf("simtest: tenant %q is not in sim.json", tenant)
	}
	if tn.Consumer == nil {
		return nil, fmt.Errorf("simtest: tenant %s has no consumer identity in sim.json", tn.Name)
	}
	return &miCredential{
		endpoint: info.ManagedIdentityEndpoint, header: info.ManagedIdentityHeader, clientID: tn.Consumer.ClientID,
		// Plain HTTP on loopback, as App Service's endpoint; no proxy.
		http: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second},
	}, nil
}

// SecretsClient is an azsecrets client for vaultURL with cred, configured
// as rotor's own is: the simulator's transport, and no challenge resource
// verification (the simulated vaults listen on loopback ports, not under
// vault.azure.net).
func (s *Sim) SecretsClient(t testing.TB, vaultURL string, cred azcore.TokenCredential) *azsecrets.Client {
	t.Helper()
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{
		ClientOptions: s.ClientOptions, DisableChallengeResourceVerification: true,
	})
	require.NoError(t, err)
	return c
}

// KeysClient is an azkeys client for vaultURL with cred, configured as
// SecretsClient is.
func (s *Sim) KeysClient(t testing.TB, vaultURL string, cred azcore.TokenCredential) *azkeys.Client {
	t.Helper()
	c, err := azkeys.NewClient(vaultURL, cred, &azkeys.ClientOptions{
		ClientOptions: s.ClientOptions, DisableChallengeResourceVerification: true,
	})
	require.NoError(t, err)
	return c
}

// CertificatesClient is an azcertificates client for vaultURL with cred,
// configured as SecretsClient is.
func (s *Sim) CertificatesClient(t testing.TB, vaultURL string, cred azcore.TokenCredential) *azcertificates.Client {
	t.Helper()
	c, err := azcertificates.NewClient(vaultURL, cred, &azcertificates.ClientOptions{
		ClientOptions: s.ClientOptions, DisableChallengeResourceVerification: true,
	})
	require.NoError(t, err)
	return c
}

// GrantSecrets sets what the principal objectID may do in the tenant's
// vault (by name), replacing what it had: for tests that arrange a vault
// with rights the seeded identities deliberately lack.
func (s *Sim) GrantSecrets(t testing.TB, tenant, vault, objectID string, perms ...sim.SecretPermission) {
	t.Helper()
	require.NoError(t, s.Server.World().SetSecretPermissions(tenant, vault, objectID, perms...))
}

// miCredential gets tokens from the App Service style managed identity
// endpoint for one user-assigned identity.
type miCredential struct {
	endpoint, header, clientID string
	http                       *http.Client
}

var _ azcore.TokenCredential = (*miCredential)(nil)

// GetToken asks the endpoint for a token for the one scope's resource.
func (c *miCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(opts.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("simtest: managed identity needs exactly one scope, got %d", len(opts.Scopes))
	}
	q := url.Values{
		"api-version": {"2019-08-01"},
		"resource":    {strings.TrimSuffix(opts.Scopes[0], "/.default")},
		"client_id":   {c.clientID},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Header.Set("X-IDENTITY-HEADER", c.header)
	resp, err := c.http.Do(req)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("simtest: managed identity token: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
		Message     string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return azcore.AccessToken{}, fmt.Errorf("simtest: managed identity token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return azcore.AccessToken{}, fmt.Errorf("simtest: managed identity token: %d %s", resp.StatusCode, body.Message)
	}
	exp, err := strconv.ParseInt(body.ExpiresOn, 10, 64)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("simtest: managed identity token: expires_on %q", body.ExpiresOn)
	}
	return azcore.AccessToken{Token: body.AccessToken, ExpiresOn: time.Unix(exp, 0)}, nil
}
