package azure_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
)

// attempts records what a RequestObserver is told.
type attempts struct {
	mu  sync.Mutex
	got []azure.Attempt
}

func (a *attempts) ObserveAttempt(at azure.Attempt) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, at)
}

func (a *attempts) take() []azure.Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.got
	a.got = nil
	return out
}

func TestServiceClassifier(t *testing.T) {
	t.Parallel()
	public, err := azure.ResolveEndpoints(azure.Public, "")
	require.NoError(t, err)
	usgov, err := azure.ResolveEndpoints(azure.USGov, "")
	require.NoError(t, err)
	// The simulator's shape: Entra, Graph and ARM on one port, each vault
	// on a port of its own.
	sim := azure.Endpoints{
		Cloud: azure.Sim, AuthorityHost: "https://127.0.0.1:8443/", GraphURL: "https://127.0.0.1:8443/graph/v1.0",
		ARMURL: "https://127.0.0.1:8443/arm/", ManagedIdentityEndpoint: "http://127.0.0.1:9000/msi/token",
	}
	cases := map[string]struct {
		ep   azure.Endpoints
		url  string
		want azure.Service
	}{
		"public graph":                 {public, "https://graph.microsoft.com/v1.0/applications?$top=999", azure.ServiceGraph},
		"public graph beta":            {public, "https://graph.microsoft.com/beta/applications", azure.ServiceGraph},
		"public graph host in caps":    {public, "https://GRAPH.microsoft.com/v1.0/$batch", azure.ServiceGraph},
		"public token":                 {public, "https://login.microsoftonline.com/tenant/oauth2/v2.0/token", azure.ServiceEntra},
		"public vault":                 {public, "https://contoso-kv.vault.azure.net/secrets/x?api-version=7.5", azure.ServiceKeyVault},
		"public arm":                   {public, "https://management.azure.com/subscriptions/s", azure.ServiceARM},
		"imds":                         {public, "http://169.254.169.254/metadata/identity/oauth2/token", azure.ServiceEntra},
		"another cloud's vault":        {public, "https://contoso-kv.vault.usgovcloudapi.net/secrets/x", azure.ServiceOther},
		"public unknown":               {public, "https://example.com/secrets/x", azure.ServiceOther},
		"usgov graph":                  {usgov, "https://graph.microsoft.us/v1.0/applications", azure.ServiceGraph},
		"usgov vault":                  {usgov, "https://kv.vault.usgovcloudapi.net/secrets/x", azure.ServiceKeyVault},
		"sim graph":                    {sim, "https://127.0.0.1:8443/graph/v1.0/applications", azure.ServiceGraph},
		"sim graph prefix is a path":   {sim, "https://127.0.0.1:8443/graphs/x", azure.ServiceEntra},
		"sim arm":                      {sim, "https://127.0.0.1:8443/arm/subscriptions", azure.ServiceARM},
		"sim token":                    {sim, "https://127.0.0.1:8443/tenant/oauth2/v2.0/token", azure.ServiceEntra},
		"sim managed identity":         {sim, "http://127.0.0.1:9000/msi/token?resource=x", azure.ServiceEntra},
		"sim vault":                    {sim, "https://127.0.0.1:9443/secrets/app-secret?api-version=7.5", azure.ServiceKeyVault},
		"sim vault listing":            {sim, "https://127.0.0.1:9443/secrets?api-version=7.5", azure.ServiceKeyVault},
		"sim something else":           {sim, "https://127.0.0.1:9443/other", azure.ServiceOther},
		"vault path shape off the sim": {public, "https://127.0.0.1:9443/secrets/x", azure.ServiceOther},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(c.url)
			require.NoError(t, err)
			require.Equal(t, c.want, azure.ServiceClassifier(c.ep)(u))
		})
	}
}

// scripted answers each request with the next of its answers: a status,
// or a transport error for 0.
type scripted struct {
	mu      sync.Mutex
	answers []int
}

func (s *scripted) Do(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.answers) == 0 {
		return nil, errors.New("scripted: no answer left")
	}
	code := s.answers[0]
	s.answers = s.answers[1:]
	if code == 0 {
		return nil, errors.New("scripted: connection reset")
	}
	h := http.Header{}
	if code == http.StatusTooManyRequests {
		// azcore honours retry-after-ms: the test does not wait a second.
		h.Set("retry-after-ms", "1")
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

// TestObserverSeesEveryAttempt drives azcore's own retry policy, with
// rotor's client options, through a transport that answers as the test
// says (nothing real throttles on cue), and checks what the observer is
// told: one attempt per trip to the wire, retries marked as such only
// after an answer azcore retries.
func TestObserverSeesEveryAttempt(t *testing.T) {
	t.Parallel()
	ep, err := azure.ResolveEndpoints(azure.Public, "")
	require.NoError(t, err)
	rec := &attempts{}
	ep.Observer = rec
	tr := &scripted{}
	opts := azure.ClientOptions(ep)
	opts.Transport = tr
	opts.Retry.RetryDelay, opts.Retry.MaxRetryDelay = time.Millisecond, 5*time.Millisecond
	pl := runtime.NewPipeline("rotor/test", "v0.0.0", runtime.PipelineOptions{}, &opts)
	call := func(t *testing.T, u string, answers ...int) (int, error) {
		t.Helper()
		tr.mu.Lock()
		tr.answers = answers
		tr.mu.Unlock()
		req, err := runtime.NewRequest(context.Background(), http.MethodGet, u)
		require.NoError(t, err)
		resp, err := pl.Do(req)
		if err != nil {
			return 0, err
		}
		runtime.Drain(resp)
		return resp.StatusCode, nil
	}
	const graphURL = "https://graph.microsoft.com/v1.0/applications"

	code, err := call(t, graphURL, 429, 503, 0, 200)
	require.NoError(t, err)
	require.Equal(t, 200, code)
	require.Equal(t, []azure.Attempt{
		{Service: azure.ServiceGraph, Status: 429},
		{Service: azure.ServiceGraph, Status: 503, Retry: true},
		{Service: azure.ServiceGraph, Status: 0, Retry: true},
		{Service: azure.ServiceGraph, Status: 200, Retry: true},
	}, rec.take(), "a throttled, a failed and a dropped attempt, each retried")

	code, err = call(t, graphURL, 200)
	require.NoError(t, err)
	require.Equal(t, 200, code)
	require.Equal(t, []azure.Attempt{{Service: azure.ServiceGraph, Status: 200}}, rec.take(), "a new call starts afresh")

	code, err = call(t, "https://kv.vault.azure.net/secrets/x", 404)
	require.NoError(t, err)
	require.Equal(t, 404, code)
	require.Equal(t, []azure.Attempt{{Service: azure.ServiceKeyVault, Status: 404}}, rec.take(), "a 404 is not retried")

	require.Empty(t, func() []azure.Attempt {
		ep := ep
		ep.Observer = nil
		o := azure.ClientOptions(ep)
		o.Transport = &scripted{answers: []int{200}}
		req, err := runtime.NewRequest(context.Background(), http.MethodGet, graphURL)
		require.NoError(t, err)
		resp, err := runtime.NewPipeline("rotor/test", "v0.0.0", runtime.PipelineOptions{}, &o).Do(req)
		require.NoError(t, err)
		runtime.Drain(resp)
		return rec.take()
	}(), "no observer, no policy")
}

// TestSimKeyVaultAttempts: an azsecrets client built on rotor's client
// options against the simulator reports Key Vault's authentication
// challenge (a 401, then the same request with a token) as two attempts
// and no retry, and the token request between them as Entra's.
func TestSimKeyVaultAttempts(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	rec := &attempts{}
	ep := e.ep
	ep.Observer = rec
	cred, err := azure.NewCredential(e.rotationConn(), ep)
	require.NoError(t, err)
	kv, err := azure.NewSecretsClient(e.tenant.KeyVaults[0].URL, cred, ep)
	require.NoError(t, err)
	_, err = kv.SetSecret(t.Context(), "observed", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil)
	require.NoError(t, err)

	got := rec.take()
	var kvs []azure.Attempt
	entra := 0
	for _, a := range got {
		switch a.Service {
		case azure.ServiceKeyVault:
			kvs = append(kvs, a)
		case azure.ServiceEntra:
			require.Equal(t, http.StatusOK, a.Status)
			entra++
		default:
			t.Fatalf("unexpected attempt %+v", a)
		}
	}
	require.Equal(t, []azure.Attempt{
		{Service: azure.ServiceKeyVault, Status: http.StatusUnauthorized},
		{Service: azure.ServiceKeyVault, Status: http.StatusOK},
	}, kvs)
	require.Positive(t, entra, "the token request is Entra's")
}
