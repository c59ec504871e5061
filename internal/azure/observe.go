package azure

import (
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Service names the Azure service an HTTP request went to. It is what
// rotor's metrics count requests by, so it is a short, fixed set: never a
// host name, a vault name or a URL (a URL may carry a query worth keeping
// out of a time series).
type Service string

// The services rotor talks to.
const (
	ServiceGraph    Service = "graph"
	ServiceKeyVault Service = "keyvault"
	// ServiceEntra is Entra's token endpoint and metadata, and managed
	// identity endpoints: every request for a token.
	ServiceEntra Service = "entra"
	ServiceARM   Service = "arm"
	// ServiceOther is anything the endpoints do not name.
	ServiceOther Service = "other"
)

// Attempt is one HTTP attempt an Azure client made: one trip to the wire,
// so a call azcore retried is several attempts.
type Attempt struct {
	Service Service
	// Status is the HTTP status of the answer, 0 when there was none
	// (a dropped connection, a per-try timeout).
	Status int
	// Retry is true when the attempt repeats one azcore's retry policy
	// retries: the previous attempt of the same call was throttled (429),
	// answered 408 or 5xx, or got no answer. The second leg of Key Vault's
	// authentication challenge (a 401 answered with a token) is not a
	// retry.
	Retry bool
}

// RequestObserver is told of every HTTP attempt of every Azure client
// built from Endpoints whose Observer it is (see ClientOptions). It is
// called on the request's goroutine once the attempt's answer (or its
// failure) is in, and must be quick and safe for concurrent use. internal/metrics
// implements it; azure knows nothing of how it counts.
type RequestObserver interface {
	ObserveAttempt(Attempt)
}

// observePolicy reports each attempt to an observer. It sits among the
// per-retry policies, so it sees every attempt, after the bearer token
// policy and anything else a client adds per try (a pacer): what goes to
// the wire.
type observePolicy struct {
	obs      RequestObserver
	classify func(*url.URL) Service
}

// callState is kept with one call's operation values, which every try of
// the call shares: what the attempt before this one got.
type callState struct {
	attempts int
	// retriable is true when the last attempt's answer is one azcore
	// retries.
	retriable bool
}

func (p observePolicy) Do(req *policy.Request) (*http.Response, error) {
	var st *callState
	if !req.OperationValue(&st) || st == nil {
		// The first attempt of the call. Operation values are a map the
		// tries' clones share, so the next try finds this one.
		st = &callState{}
		req.SetOperationValue(st)
	}
	retry := st.attempts > 0 && st.retriable
	st.attempts++
	resp, err := req.Next()
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	st.retriable = resp == nil || slices.Contains(retryStatuses, status)
	p.obs.ObserveAttempt(Attempt{Service: p.classify(req.Raw().URL), Status: status, Retry: retry})
	return resp, err
}

// serviceRoute maps a URL prefix (scheme://host[:port]/path, lower-case
// scheme and host) to its service.
type serviceRoute struct {
	prefix  string
	service Service
}

// keyVaultCollections are the first path segments of Key Vault's data
// plane: on the simulator, whose vaults listen on loopback ports rather
// than under a DNS suffix, they say a request is Key Vault's.
var keyVaultCollections = []string{"secrets", "deletedsecrets", "keys", "deletedkeys", "certificates", "deletedcertificates"}

// imdsHost is Azure's instance metadata service, where a virtual
// machine's managed identity gets its tokens.
const imdsHost = "169.254.169.254"

// ServiceClassifier returns the function that says which of ep's services
// a request URL is for: the longest matching endpoint prefix (Graph and
// ARM before the authority, which on the simulator shares their host), a
// Key Vault by the cloud's vault DNS suffix (on the simulator, by Key
// Vault's path shape), a managed identity endpoint as Entra, else
// ServiceOther.
func ServiceClassifier(ep Endpoints) func(*url.URL) Service {
	var routes []serviceRoute
	add := func(raw string, s Service) {
		if raw == "" {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return
		}
		routes = append(routes, serviceRoute{prefix: normalizedPrefix(u), service: s})
	}
	// Graph's version ("/v1.0") is left off so /beta counts as Graph too.
	add(strings.TrimSuffix(strings.TrimSuffix(ep.GraphURL, "/"), "/v1.0"), ServiceGraph)
	add(ep.ARMURL, ServiceARM)
	add(ep.AuthorityHost, ServiceEntra)
	add(ep.ManagedIdentityEndpoint, ServiceEntra)
	// App Service's and Azure Functions' managed identity endpoint.
	add(os.Getenv("IDENTITY_ENDPOINT"), ServiceEntra)
	add(os.Getenv("MSI_ENDPOINT"), ServiceEntra)
	// Longest first: the most specific endpoint wins.
	slices.SortStableFunc(routes, func(a, b serviceRoute) int { return len(b.prefix) - len(a.prefix) })
	kvSuffix := strings.ToLower(strings.TrimPrefix(ep.KeyVaultSuffix, "."))
	sim := ep.Cloud == Sim
	return func(u *url.URL) Service {
		if u == nil {
			return ServiceOther
		}
		s := normalizedPrefix(u)
		for _, r := range routes {
			if hasPathPrefix(s, r.prefix) {
				return r.service
			}
		}
		host := strings.ToLower(u.Hostname())
		switch {
		case kvSuffix != "" && strings.HasSuffix(host, "."+kvSuffix):
			return ServiceKeyVault
		case host == imdsHost:
			return ServiceEntra
		case sim && slices.Contains(keyVaultCollections, strings.ToLower(firstSegment(u.Path))):
			return ServiceKeyVault
		}
		return ServiceOther
	}
}

// normalizedPrefix is scheme://host[:port]/path with the scheme and host in
// lower case and no trailing slash, query or fragment.
func normalizedPrefix(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimSuffix(u.EscapedPath(), "/")
}

// hasPathPrefix reports whether s starts with prefix at a path boundary.
func hasPathPrefix(s, prefix string) bool {
	if !strings.HasPrefix(s, prefix) {
		return false
	}
	return len(s) == len(prefix) || s[len(prefix)] == '/'
}

func firstSegment(p string) string {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}
