// Package msgraph_test is an interop test of `rotor sim` against Microsoft's
// own SDKs: azidentity, msgraph-sdk-go (kiota) and azsecrets. It is a separate
// module so msgraph-sdk-go's heavy build never touches rotor's main module,
// and it deliberately does not import rotor: the client is configured from
// sim.json alone, as a third party's would be.
package msgraph_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	auth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipals"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// simInfo is the part of sim.json this client needs, declared here rather
// than imported so the test proves the file is enough on its own.
type simInfo struct {
	AuthorityHost    string `json:"authority_host"`
	GraphURL         string `json:"graph_url"`
	GraphAudience    string `json:"graph_audience"`
	KeyVaultAudience string `json:"keyvault_audience"`
	CAFile           string `json:"ca_file"`
	// The App Service style managed identity endpoint, and the consumer
	// identity it serves per tenant (the one that may read vault values).
	ManagedIdentityEndpoint string `json:"managed_identity_endpoint"`
	ManagedIdentityHeader   string `json:"managed_identity_header"`
	Tenants                 []struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Consumer *struct {
			ClientID string `json:"client_id"`
		} `json:"consumer"`
		Rotation struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
			ObjectID     string `json:"object_id"`
			AppObjectID  string `json:"app_object_id"`
		} `json:"rotation"`
		KeyVaults []struct {
			Name string `json:"name"`
			URL  string `json:"url"`
		} `json:"key_vaults"`
	} `json:"tenants"`
}

// trace records every request the SDKs send and what came back, so a
// failure shows the exact exchange with the simulator.
type trace struct {
	mu    sync.Mutex
	lines []string
}

func (tr *trace) add(format string, a ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.lines = append(tr.lines, fmt.Sprintf(format, a...))
}

func (tr *trace) dump(t *testing.T) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	t.Logf("HTTP exchanges with the simulator:\n%s", strings.Join(tr.lines, "\n"))
}

// tracingTransport is the TLS transport trusting the simulator's CA, with a
// log of each exchange (error bodies included, secrets are not logged).
type tracingTransport struct {
	base http.RoundTripper
	tr   *trace
}

func (tt *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Hostname() != "127.0.0.1" && req.URL.Hostname() != "localhost" && req.URL.Hostname() != "::1" {
		// Never let an SDK default (login.microsoftonline.com, graph.microsoft.com,
		// instance discovery…) leave the machine.
		tt.tr.add("BLOCKED %s %s", req.Method, req.URL)
		return nil, fmt.Errorf("interop test: refusing non-loopback request to %s", req.URL.Host)
	}
	resp, err := tt.base.RoundTrip(req)
	if err != nil {
		tt.tr.add("%s %s -> error %v", req.Method, req.URL.RequestURI(), err)
		return resp, err
	}
	line := fmt.Sprintf("%s %s -> %d", req.Method, req.URL.RequestURI(), resp.StatusCode)
	if req.ContentLength > 0 || req.Header.Get("Content-Encoding") != "" {
		line = fmt.Sprintf("%s %s [Content-Type: %s; Content-Encoding: %s; %d bytes] -> %d", req.Method, req.URL.RequestURI(),
			req.Header.Get("Content-Type"), req.Header.Get("Content-Encoding"), req.ContentLength, resp.StatusCode)
	}
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		line += " " + string(body)
	}
	tt.tr.add("%s", line)
	return resp, nil
}

// env is a running simulator and the SDK plumbing every step shares.
type env struct {
	info       simInfo
	tenantID   string
	http       *http.Client // plain client (CA-trusting transport) for azidentity/azsecrets
	graphHTTP  *http.Client // kiota middleware pipeline over the same transport
	rotCred    *azidentity.ClientSecretCredential
	graph      *msgraphsdk.GraphServiceClient
	adapter    *msgraphsdk.GraphRequestAdapter
	trace      *trace
	graphScope string
}

// startSim builds rotor from the main module, starts `rotor sim --seed demo`
// in a temp state dir and waits for sim.json.
func startSim(t *testing.T) simInfo {
	t.Helper()
	mainDir, err := filepath.Abs("../..")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "rotor")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rotor")
	build.Dir = mainDir
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build rotor:\n%s", out)

	state := t.TempDir()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "sim", "--state", state, "--seed", "demo")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("rotor sim output:\n%s", logs.String())
		}
	})

	path := filepath.Join(state, "sim.json")
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			var info simInfo
			require.NoError(t, json.Unmarshal(b, &info), "sim.json: %s", b)
			return info
		}
		select {
		case err := <-done:
			t.Fatalf("rotor sim exited before writing sim.json: %v\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sim.json after 60s\n%s", logs.String())
		}
	}
}

func newEnv(t *testing.T, info simInfo) *env {
	t.Helper()
	require.NotEmpty(t, info.AuthorityHost, "sim.json authority_host")
	require.NotEmpty(t, info.GraphURL, "sim.json graph_url")
	require.NotEmpty(t, info.GraphAudience, "sim.json graph_audience")
	require.NotEmpty(t, info.CAFile, "sim.json ca_file")
	require.NotEmpty(t, info.Tenants, "sim.json tenants")

	pem, err := os.ReadFile(info.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem), "ca_file holds no PEM certificate")
	tr := &trace{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("INTEROP_TRACE") != "" {
			tr.dump(t)
		}
	})
	base := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Proxy:           nil, // loopback only, whatever HTTPS_PROXY says
	}
	rt := &tracingTransport{base: base, tr: tr}

	e := &env{info: info, tenantID: info.Tenants[0].ID, trace: tr, graphScope: strings.TrimSuffix(info.GraphAudience, "/") + "/.default"}
	e.http = &http.Client{Transport: rt, Timeout: 60 * time.Second}

	e.rotCred = e.secretCred(t, info.Tenants[0].Rotation.ClientID, info.Tenants[0].Rotation.ClientSecret)

	// The Graph client: msgraph's own middleware pipeline (retry, redirect,
	// telemetry, …) over the CA-trusting transport.
	opts := msgraphsdk.GetDefaultClientOptions()
	e.graphHTTP = msgraphcore.GetDefaultClient(&opts)
	e.graphHTTP.Transport = khttp.NewCustomTransportWithParentTransport(rt, msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)...)

	authProvider, err := auth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(e.rotCred, []string{e.graphScope}, []string{"127.0.0.1"})
	require.NoError(t, err)
	e.adapter, err = msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(authProvider, nil, nil, e.graphHTTP)
	require.NoError(t, err)
	e.adapter.SetBaseUrl(strings.TrimSuffix(info.GraphURL, "/"))
	e.graph = msgraphsdk.NewGraphServiceClient(e.adapter)
	return e
}

// secretCred is a ClientSecretCredential for the simulator's authority.
func (e *env) secretCred(t *testing.T, clientID, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(e.tenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.info.AuthorityHost},
			Transport: e.http,
		},
		DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	return cred
}

// tryToken asks for a Graph token with a fresh credential (no MSAL cache
// shared between attempts).
func (e *env) tryToken(ctx context.Context, t *testing.T, clientID, secret string) (azcore.AccessToken, error) {
	cred := e.secretCred(t, clientID, secret)
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{e.graphScope}})
}

// odataErr unwraps a Graph error from the SDK.
func odataErr(t *testing.T, err error) (status int, code, msg string) {
	t.Helper()
	var oe *odataerrors.ODataError
	require.True(t, errors.As(err, &oe), "want *odataerrors.ODataError, got %T: %v", err, err)
	status = oe.ResponseStatusCode
	if main := oe.GetErrorEscaped(); main != nil {
		if c := main.GetCode(); c != nil {
			code = *c
		}
		if m := main.GetMessage(); m != nil {
			msg = *m
		}
	}
	return status, code, msg
}

func describe(err error) string {
	if err == nil {
		return ""
	}
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) && oe.GetErrorEscaped() != nil {
		m := oe.GetErrorEscaped()
		return fmt.Sprintf("HTTP %d %s: %s", oe.ResponseStatusCode, deref(m.GetCode()), deref(m.GetMessage()))
	}
	return err.Error()
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("interop test builds rotor and runs the simulator")
	}
	info := startSim(t) // builds rotor first: minutes on a cold cache
	e := newEnv(t, info)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rot := info.Tenants[0].Rotation
	t.Logf("tenant %s (%s), authority %s, graph %s", info.Tenants[0].Name, e.tenantID, info.AuthorityHost, info.GraphURL)

	// (1) A token for the rotation identity through azidentity.
	ok := t.Run("token", func(t *testing.T) {
		tok, err := e.rotCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{e.graphScope}})
		require.NoError(t, err)
		require.NotEmpty(t, tok.Token)
		assert.True(t, tok.ExpiresOn.After(time.Now().Add(5*time.Minute)), "token expires %v", tok.ExpiresOn)
		assert.Len(t, strings.Split(tok.Token, "."), 3, "access token is a JWT")
	})
	require.True(t, ok, "no token: nothing else can work")

	// (2) List applications with $top=10, page by page: the number of pages
	// and the total must match what the tenant says it has.
	all := map[string]models.Applicationable{}
	t.Run("list applications page by page", func(t *testing.T) {
		top := int32(10)
		cfg := &applications.ApplicationsRequestBuilderGetRequestConfiguration{
			QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{
				Top:    &top,
				Select: []string{"id", "appId", "displayName", "passwordCredentials"},
			},
		}
		page, err := e.graph.Applications().Get(ctx, cfg)
		require.NoError(t, err, describe(err))

		// Manually, following @odata.nextLink unchanged.
		pages, manual := 0, 0
		for p := page; ; {
			pages++
			require.LessOrEqual(t, len(p.GetValue()), 10, "page %d exceeds $top", pages)
			for _, a := range p.GetValue() {
				require.NotNil(t, a.GetId())
				require.NotNil(t, a.GetAppId())
				require.NotContains(t, all, *a.GetId(), "application %s returned twice", *a.GetId())
				all[*a.GetId()] = a
				manual++
			}
			next := p.GetOdataNextLink()
			if next == nil {
				break
			}
			require.Less(t, pages, 1000, "runaway paging")
			p, err = e.graph.Applications().WithUrl(*next).Get(ctx, nil)
			require.NoError(t, err, "next page %d (%s): %s", pages+1, *next, describe(err))
		}
		assert.Greater(t, pages, 1, "$top=10 must give more than one page")

		// And with msgraph-sdk-go-core's PageIterator.
		first, err := e.graph.Applications().Get(ctx, cfg)
		require.NoError(t, err, describe(err))
		it, err := msgraphcore.NewPageIterator[models.Applicationable](first, e.adapter, models.CreateApplicationCollectionResponseFromDiscriminatorValue)
		require.NoError(t, err)
		iterated := 0
		require.NoError(t, it.Iterate(ctx, func(a models.Applicationable) bool {
			iterated++
			return true
		}))
		assert.Equal(t, manual, iterated, "PageIterator and manual paging disagree")

		// What the tenant says it has: /applications/$count (an advanced
		// query: ConsistencyLevel: eventual).
		h := abstractions.NewRequestHeaders()
		h.Add("ConsistencyLevel", "eventual")
		count, err := e.graph.Applications().Count().Get(ctx, &applications.CountRequestBuilderGetRequestConfiguration{Headers: h})
		require.NoError(t, err, "/applications/$count: %s", describe(err))
		require.NotNil(t, count)
		assert.Equal(t, int(*count), manual, "paged total vs /applications/$count")

		// And $count=true on the list itself (@odata.count).
		tru := true
		withCount, err := e.graph.Applications().Get(ctx, &applications.ApplicationsRequestBuilderGetRequestConfiguration{
			Headers:         h,
			QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{Top: &top, Count: &tru, Select: []string{"id"}},
		})
		require.NoError(t, err, "$count=true: %s", describe(err))
		require.NotNil(t, withCount.GetOdataCount(), "@odata.count missing with $count=true")
		assert.Equal(t, int64(manual), *withCount.GetOdataCount(), "paged total vs @odata.count")
		t.Logf("%d applications in %d pages", manual, pages)
	})
	require.NotEmpty(t, all, "no applications listed")

	// (3) What the rotation identity owns: /servicePrincipals/{id}/ownedObjects.
	owned := map[string]models.Applicationable{}
	t.Run("owned objects", func(t *testing.T) {
		require.NotEmpty(t, rot.ObjectID, "sim.json tenants[0].rotation.object_id")
		res, err := e.graph.ServicePrincipals().ByServicePrincipalId(rot.ObjectID).OwnedObjects().Get(ctx, nil)
		require.NoError(t, err, describe(err))
		it, err := msgraphcore.NewPageIterator[models.DirectoryObjectable](res, e.adapter, models.CreateDirectoryObjectCollectionResponseFromDiscriminatorValue)
		require.NoError(t, err)
		require.NoError(t, it.Iterate(ctx, func(o models.DirectoryObjectable) bool {
			a, ok := o.(models.Applicationable)
			if assert.True(t, ok, "owned object %s decoded as %T (missing or wrong @odata.type?)", deref(o.GetId()), o) {
				owned[*a.GetId()] = a
			}
			return true
		}))
		require.NotEmpty(t, owned, "the demo seed gives the rotation identity some applications")
		for id := range owned {
			assert.Contains(t, all, id, "owned application %s was not in the list", id)
		}
		t.Logf("rotation identity owns %d of %d applications", len(owned), len(all))
	})

	// The typed cast msgraph-sdk-go offers for the same question.
	t.Run("owned objects cast to application", func(t *testing.T) {
		top := int32(999)
		res, err := e.graph.ServicePrincipals().ByServicePrincipalId(rot.ObjectID).OwnedObjects().GraphApplication().Get(ctx,
			&serviceprincipals.ItemOwnedObjectsGraphApplicationRequestBuilderGetRequestConfiguration{
				QueryParameters: &serviceprincipals.ItemOwnedObjectsGraphApplicationRequestBuilderGetQueryParameters{Top: &top},
			})
		require.NoError(t, err, "GET ownedObjects/graph.application: %s", describe(err))
		ids := map[string]bool{}
		for _, a := range res.GetValue() {
			ids[deref(a.GetId())] = true
		}
		assert.Len(t, ids, len(owned))
		for id := range owned {
			assert.True(t, ids[id], "%s missing from ownedObjects/graph.application", id)
		}
	})
	require.NotEmpty(t, owned, "nothing owned: cannot go on")

	// Alternate keys, as a client that only knows client ids addresses things.
	t.Run("lookup by appId", func(t *testing.T) {
		sp, err := e.graph.ServicePrincipalsWithAppId(&rot.ClientID).Get(ctx, nil)
		require.NoError(t, err, "servicePrincipals(appId=): %s", describe(err))
		assert.Equal(t, rot.ObjectID, deref(sp.GetId()))
		for id, a := range owned {
			got, err := e.graph.ApplicationsWithAppId(a.GetAppId()).Get(ctx, nil)
			require.NoError(t, err, "applications(appId=): %s", describe(err))
			assert.Equal(t, id, deref(got.GetId()))
			break
		}
	})

	// Pick an owned application (with a service principal, so it can sign in)
	// and one the rotation identity does not own.
	var target, foreign models.Applicationable
	for _, a := range all {
		if _, ok := owned[*a.GetId()]; ok {
			if target == nil || deref(a.GetDisplayName()) < deref(target.GetDisplayName()) {
				target = a
			}
		} else if *a.GetAppId() != rot.ClientID && (foreign == nil || deref(a.GetDisplayName()) < deref(foreign.GetDisplayName())) {
			foreign = a
		}
	}
	require.NotNil(t, target)
	t.Logf("owned target: %s (%s), not owned: %v", deref(target.GetDisplayName()), *target.GetAppId(), foreign != nil)

	// (4) addPassword on the owned app; the new secret is refused until the
	// replication delay has passed, then accepted.
	var (
		newCred models.PasswordCredentialable
		addedAt time.Time
	)
	ok = t.Run("addPassword on owned application", func(t *testing.T) {
		pc := models.NewPasswordCredential()
		name := "interop msgraph-sdk-go"
		pc.SetDisplayName(&name)
		end := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
		pc.SetEndDateTime(&end)
		body := applications.NewItemAddPasswordPostRequestBody()
		body.SetPasswordCredential(pc)
		res, err := e.graph.Applications().ByApplicationId(*target.GetId()).AddPassword().Post(ctx, body, nil)
		require.NoError(t, err, describe(err))
		addedAt = time.Now()
		require.NotNil(t, res.GetKeyId(), "keyId")
		require.NotNil(t, res.GetSecretText(), "secretText")
		assert.GreaterOrEqual(t, len(*res.GetSecretText()), 16)
		require.NotNil(t, res.GetHint(), "hint")
		assert.Equal(t, (*res.GetSecretText())[:3], *res.GetHint())
		assert.Equal(t, name, deref(res.GetDisplayName()))
		require.NotNil(t, res.GetEndDateTime())
		assert.WithinDuration(t, end, *res.GetEndDateTime(), time.Second)
		require.NotNil(t, res.GetStartDateTime())
		newCred = res

		// The credential is visible in a GET at once, without secretText.
		app, err := e.graph.Applications().ByApplicationId(*target.GetId()).Get(ctx, nil)
		require.NoError(t, err, describe(err))
		found := false
		for _, p := range app.GetPasswordCredentials() {
			if p.GetKeyId() != nil && *p.GetKeyId() == *res.GetKeyId() {
				found = true
				assert.Nil(t, p.GetSecretText(), "secretText must not come back in GET")
			}
		}
		assert.True(t, found, "new password %s not in GET /applications/{id}", res.GetKeyId())
	})
	require.True(t, ok)

	secret := *newCred.GetSecretText()
	appID := *target.GetAppId()
	t.Run("new secret refused, then accepted after replication", func(t *testing.T) {
		_, err := e.tryToken(ctx, t, appID, secret)
		if since := time.Since(addedAt); since < 2*time.Second {
			require.Error(t, err, "a brand-new secret should not work before replication (the demo seed delays it ~3s)")
			assert.Contains(t, err.Error(), "AADSTS7000215")
			var afe *azidentity.AuthenticationFailedError
			if assert.True(t, errors.As(err, &afe), "want AuthenticationFailedError, got %T", err) && afe.RawResponse != nil {
				assert.Equal(t, http.StatusUnauthorized, afe.RawResponse.StatusCode)
			}
		} else {
			t.Logf("first try came %v after addPassword (slow machine): not checking the refusal", since)
		}
		var tok azcore.AccessToken
		require.Eventually(t, func() bool {
			tok, err = e.tryToken(ctx, t, appID, secret)
			return err == nil
		}, 60*time.Second, 500*time.Millisecond, "the new secret never started working")
		require.NotEmpty(t, tok.Token)
		t.Logf("secret accepted %v after addPassword", time.Since(addedAt).Round(100*time.Millisecond))
	})

	// (5) removePassword: the secret is refused again.
	t.Run("removePassword then refused", func(t *testing.T) {
		body := applications.NewItemRemovePasswordPostRequestBody()
		body.SetKeyId(newCred.GetKeyId())
		err := e.graph.Applications().ByApplicationId(*target.GetId()).RemovePassword().Post(ctx, body, nil)
		require.NoError(t, err, describe(err))
		app, err := e.graph.Applications().ByApplicationId(*target.GetId()).Get(ctx, nil)
		require.NoError(t, err, describe(err))
		for _, p := range app.GetPasswordCredentials() {
			assert.NotEqual(t, *newCred.GetKeyId(), deref2(p.GetKeyId()), "removed password still listed")
		}
		var lastErr error
		require.Eventually(t, func() bool {
			_, lastErr = e.tryToken(ctx, t, appID, secret)
			return lastErr != nil
		}, 60*time.Second, 500*time.Millisecond, "a removed secret kept working")
		assert.Contains(t, lastErr.Error(), "AADSTS7000215")
	})

	// (6) addPassword on an application the rotation identity does not own.
	t.Run("addPassword on foreign application refused", func(t *testing.T) {
		require.NotNil(t, foreign, "the demo seed has applications the rotation identity does not own")
		pc := models.NewPasswordCredential()
		end := time.Now().Add(30 * 24 * time.Hour)
		pc.SetEndDateTime(&end)
		body := applications.NewItemAddPasswordPostRequestBody()
		body.SetPasswordCredential(pc)
		_, err := e.graph.Applications().ByApplicationId(*foreign.GetId()).AddPassword().Post(ctx, body, nil)
		require.Error(t, err, "addPassword on %s (not owned) must be refused", deref(foreign.GetDisplayName()))
		status, code, msg := odataErr(t, err)
		assert.Equal(t, http.StatusForbidden, status)
		assert.Equal(t, "Authorization_RequestDenied", code)
		t.Logf("refused: %d %s %s", status, code, msg)
	})

	// (7) Key Vault through azsecrets: set, then get the same value back.
	t.Run("key vault set and get", func(t *testing.T) {
		require.NotEmpty(t, info.Tenants[0].KeyVaults, "sim.json tenants[0].key_vaults")
		vaultURL := info.Tenants[0].KeyVaults[0].URL
		_, err := url.Parse(vaultURL)
		require.NoError(t, err)
		kv, err := azsecrets.NewClient(vaultURL, e.rotCred, &azsecrets.ClientOptions{
			ClientOptions:                        azcore.ClientOptions{Transport: e.http},
			DisableChallengeResourceVerification: true,
		})
		require.NoError(t, err)
		name, value := "interop-msgraph", "s3cr3t-"+time.Now().Format(time.RFC3339Nano)
		ct := "text/plain"
		set, err := kv.SetSecret(ctx, name, azsecrets.SetSecretParameters{
			Value: &value, ContentType: &ct, Tags: map[string]*string{"owner": ptr("interop")},
		}, nil)
		require.NoError(t, err)
		require.NotNil(t, set.ID)
		assert.Equal(t, name, set.ID.Name())
		assert.NotEmpty(t, set.ID.Version())
		assert.Equal(t, value, deref(set.Value))

		// rotor's rotation identity may list, set and recover, never read a value
		// (as rotor is deployed); the application reading its secret is
		// the consumer, a user-assigned managed identity whose tokens
		// azidentity gets from the App Service style endpoint sim.json
		// names.
		_, err = kv.GetSecret(ctx, name, "", nil)
		var denied *azcore.ResponseError
		require.True(t, errors.As(err, &denied), "the rotation identity reads no value: got %v", err)
		assert.Equal(t, http.StatusForbidden, denied.StatusCode)
		require.NotNil(t, info.Tenants[0].Consumer, "sim.json tenants[0].consumer")
		t.Setenv("IDENTITY_ENDPOINT", info.ManagedIdentityEndpoint)
		t.Setenv("IDENTITY_HEADER", info.ManagedIdentityHeader)
		consumer, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ID: azidentity.ClientID(info.Tenants[0].Consumer.ClientID),
		})
		require.NoError(t, err)
		kv, err = azsecrets.NewClient(vaultURL, consumer, &azsecrets.ClientOptions{
			ClientOptions:                        azcore.ClientOptions{Transport: e.http},
			DisableChallengeResourceVerification: true,
		})
		require.NoError(t, err)

		got, err := kv.GetSecret(ctx, name, "", nil)
		require.NoError(t, err)
		assert.Equal(t, value, deref(got.Value))
		assert.Equal(t, ct, deref(got.ContentType))
		assert.Equal(t, "interop", deref(got.Tags["owner"]))
		require.NotNil(t, got.ID)
		assert.Equal(t, set.ID.Version(), got.ID.Version())

		byVersion, err := kv.GetSecret(ctx, name, set.ID.Version(), nil)
		require.NoError(t, err)
		assert.Equal(t, value, deref(byVersion.Value))

		listed := false
		pager := kv.NewListSecretPropertiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			require.NoError(t, err)
			for _, p := range page.Value {
				if p.ID != nil && p.ID.Name() == name {
					listed = true
				}
			}
		}
		assert.True(t, listed, "%s not in the secret list", name)

		_, err = kv.GetSecret(ctx, "interop-no-such-secret", "", nil)
		var re *azcore.ResponseError
		if assert.True(t, errors.As(err, &re), "missing secret: got %v", err) {
			assert.Equal(t, http.StatusNotFound, re.StatusCode)
			assert.Equal(t, "SecretNotFound", re.ErrorCode)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func deref2[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
