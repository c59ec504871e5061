// Package azure is where rotor meets Microsoft's Go SDK: it turns a
// Connection (tenant, cloud, identity) into an azidentity credential, knows
// the endpoints of every sovereign cloud and of the local simulator, and
// builds the azcore client options every Azure client in rotor shares.
//
// Everything here is built on azcore rather than on hand-rolled HTTP because
// azcore's pipeline already does the hard, easy-to-get-wrong parts the way
// Microsoft's services expect: retries with jittered exponential backoff that
// honour Retry-After / retry-after-ms / x-ms-retry-after-ms, request body
// rewinding between tries, bearer-token caching and refresh, and the Key
// Vault challenge flow. Only this package (and internal/sink/*) imports Azure
// SDKs; the rest of rotor sees rotor's own types.
package azure

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// Cloud names an Azure cloud: one of the sovereign clouds or the simulator.
type Cloud string

// The clouds rotor can reach.
const (
	Public Cloud = "public"
	USGov  Cloud = "usgov"
	China  Cloud = "china"
	// Sim is rotor's local simulator (internal/sim), reached through the
	// endpoints and CA certificate written to its sim.json.
	Sim Cloud = "sim"
)

// ParseCloud parses a cloud name as found in configuration. It accepts a few
// common aliases (the names az CLI and azcore use) so that configuration
// copied from elsewhere works.
func ParseCloud(s string) (Cloud, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "public", "azurecloud", "azurepublic", "azurepubliccloud":
		return Public, nil
	case "usgov", "azureusgovernment", "azuregovernment", "usgovernment":
		return USGov, nil
	case "china", "azurechinacloud", "azurechina":
		return China, nil
	case "sim", "simulator":
		return Sim, nil
	}
	return "", fmt.Errorf("unknown cloud %q: want one of public, usgov, china, sim", s)
}

// Endpoints are the addresses and token scopes of one cloud. A zero
// HTTPClient means "use azcore's default transport" (the real clouds).
type Endpoints struct {
	// Cloud is the cloud these endpoints belong to.
	Cloud Cloud
	// AuthorityHost is the Entra authority, with a trailing slash, e.g.
	// "https://login.microsoftonline.com/".
	AuthorityHost string
	// GraphURL is the Microsoft Graph base including /v1.0, no trailing slash.
	GraphURL string
	// GraphScope is the scope of Graph tokens, e.g. "https://graph.microsoft.com/.default".
	GraphScope string
	// ARMURL is the Resource Manager endpoint, no trailing slash.
	ARMURL string
	// ARMScope is the scope of Resource Manager tokens.
	ARMScope string
	// KeyVaultScope is the scope of Key Vault tokens.
	KeyVaultScope string
	// KeyVaultSuffix is the DNS suffix of the cloud's vaults (no leading dot),
	// e.g. "vault.azure.net". Empty for the simulator, whose vaults listen on
	// loopback ports.
	KeyVaultSuffix string
	// HTTPClient is nil for the real clouds. For the simulator it is a client
	// whose TLS trusts only the simulator's CA (ca_file in sim.json) and
	// which ignores proxy settings, so nothing leaves loopback.
	HTTPClient *http.Client
	// DisableChallengeResourceVerification is true for the simulator: its
	// vaults are not under vault.azure.net, so azsecrets' check that the
	// vault host ends with the challenge resource's host would fail.
	DisableChallengeResourceVerification bool
	// DisableInstanceDiscovery is true for the simulator: otherwise MSAL asks
	// login.microsoftonline.com whether the authority is valid.
	DisableInstanceDiscovery bool
	// ManagedIdentityEndpoint and ManagedIdentityHeader are the simulator's
	// App Service style managed identity endpoint (empty for real clouds,
	// where the hosting environment provides IDENTITY_ENDPOINT itself).
	ManagedIdentityEndpoint string
	ManagedIdentityHeader   secret.Value
	// Observer, when set, is told of every HTTP attempt of every client
	// built from these endpoints (ClientOptions adds the policy that
	// tells it): rotor's metrics. The server sets one per connection, so
	// what it counts is labelled with the connection, not with a URL.
	Observer RequestObserver
}

// CloudConfiguration returns the azcore cloud configuration for ep, for SDK
// clients (such as ARM clients) that take one.
func (ep Endpoints) CloudConfiguration() cloud.Configuration {
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: ep.AuthorityHost,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {
				Audience: strings.TrimSuffix(ep.ARMScope, "/.default"),
				Endpoint: ep.ARMURL,
			},
		},
	}
}

// ResolveEndpoints returns the endpoints of cloud c. simFile (the path of a
// running simulator's sim.json) is read only for Sim.
func ResolveEndpoints(c Cloud, simFile string) (Endpoints, error) {
	switch c {
	case Public:
		return Endpoints{
			Cloud:          Public,
			AuthorityHost:  cloud.AzurePublic.ActiveDirectoryAuthorityHost,
			GraphURL:       "https://graph.microsoft.com/v1.0",
			GraphScope:     "https://graph.microsoft.com/.default",
			ARMURL:         "https://management.azure.com",
			ARMScope:       "https://management.azure.com/.default",
			KeyVaultScope:  "https://vault.azure.net/.default",
			KeyVaultSuffix: "vault.azure.net",
		}, nil
	case USGov:
		return Endpoints{
			Cloud:          USGov,
			AuthorityHost:  cloud.AzureGovernment.ActiveDirectoryAuthorityHost,
			GraphURL:       "https://graph.microsoft.us/v1.0",
			GraphScope:     "https://graph.microsoft.us/.default",
			ARMURL:         "https://management.usgovcloudapi.net",
			ARMScope:       "https://management.usgovcloudapi.net/.default",
			KeyVaultScope:  "https://vault.usgovcloudapi.net/.default",
			KeyVaultSuffix: "vault.usgovcloudapi.net",
		}, nil
	case China:
		return Endpoints{
			Cloud:          China,
			AuthorityHost:  cloud.AzureChina.ActiveDirectoryAuthorityHost,
			GraphURL:       "https://microsoftgraph.chinacloudapi.cn/v1.0",
			GraphScope:     "https://microsoftgraph.chinacloudapi.cn/.default",
			ARMURL:         "https://management.chinacloudapi.cn",
			ARMScope:       "https://management.chinacloudapi.cn/.default",
			KeyVaultScope:  "https://vault.azure.cn/.default",
			KeyVaultSuffix: "vault.azure.cn",
		}, nil
	case Sim:
		return simEndpoints(simFile)
	}
	return Endpoints{}, fmt.Errorf("unknown cloud %q", c)
}

func simEndpoints(simFile string) (Endpoints, error) {
	if simFile == "" {
		return Endpoints{}, fmt.Errorf("cloud %q needs the path of the simulator's %s", Sim, simfile.FileName)
	}
	info, err := simfile.Load(simFile)
	if err != nil {
		return Endpoints{}, err
	}
	hc, err := simHTTPClient(info.CAFile)
	if err != nil {
		return Endpoints{}, err
	}
	authority := info.AuthorityHost
	if !strings.HasSuffix(authority, "/") {
		authority += "/"
	}
	scope := func(aud, def string) string {
		if aud == "" {
			aud = def
		}
		return strings.TrimSuffix(aud, "/") + "/.default"
	}
	return Endpoints{
		Cloud:                                Sim,
		AuthorityHost:                        authority,
		GraphURL:                             strings.TrimSuffix(info.GraphURL, "/"),
		GraphScope:                           scope(info.GraphAudience, "https://graph.microsoft.com"),
		ARMURL:                               strings.TrimSuffix(info.ARMURL, "/"),
		ARMScope:                             scope(info.ARMAudience, "https://management.azure.com"),
		KeyVaultScope:                        scope(info.KeyVaultAudience, "https://vault.azure.net"),
		HTTPClient:                           hc,
		DisableChallengeResourceVerification: true,
		DisableInstanceDiscovery:             true,
		ManagedIdentityEndpoint:              info.ManagedIdentityEndpoint,
		ManagedIdentityHeader:                secret.New(info.ManagedIdentityHeader),
	}, nil
}

// simHTTPClient trusts only the simulator's CA and never uses a proxy.
func simHTTPClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read simulator CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("simulator CA %s holds no PEM certificate", caFile)
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}
	return &http.Client{Transport: tr}, nil
}
