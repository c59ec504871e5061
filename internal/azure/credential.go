package azure

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/rotor-dev/rotor/internal/secret"
)

// AuthMethod is how a Connection's identity proves itself to Entra.
type AuthMethod string

// The identity kinds rotor supports.
const (
	ClientSecret     AuthMethod = "client_secret"
	Certificate      AuthMethod = "certificate"
	ManagedIdentity  AuthMethod = "managed_identity"
	WorkloadIdentity AuthMethod = "workload_identity"
)

// Identity is the credential material of a Connection. Only the fields of
// its Method are used.
type Identity struct {
	Method AuthMethod
	// ClientID is the app (client) id; for workload identity it falls back to
	// AZURE_CLIENT_ID.
	ClientID     string
	ClientSecret secret.Value
	// CertificatePath is a PEM or PFX file holding the certificate (chain)
	// and its private key.
	CertificatePath     string
	CertificatePassword secret.Value
	// SendCertificateChain sends x5c, needed for subject name/issuer auth.
	SendCertificateChain bool
	// ManagedIdentityClientID selects a user-assigned managed identity;
	// empty means system-assigned.
	ManagedIdentityClientID string
	// FederatedTokenFile is the projected service account token; falls back
	// to AZURE_FEDERATED_TOKEN_FILE.
	FederatedTokenFile string
}

// Connection is how rotor reaches one Entra tenant for one purpose.
type Connection struct {
	Name     string
	TenantID string
	Cloud    Cloud
	// SimFile is the path of sim.json when Cloud is Sim.
	SimFile  string
	Identity Identity
	// AuxiliaryTenants are the other tenants the identity may get tokens
	// for (cross-tenant ARM calls with x-ms-authorization-auxiliary).
	AuxiliaryTenants []string
}

// tenantIDPattern is what MSAL accepts as a tenant; checking here gives a
// clearer error than MSAL's.
var tenantIDPattern = regexp.MustCompile(`^[0-9a-zA-Z-.]+$`)

// retryStatuses are the statuses ClientOptions' retry policy retries (and
// so, to the observer, an attempt after one of them is a retry).
var retryStatuses = []int{
	http.StatusRequestTimeout,
	http.StatusTooManyRequests,
	http.StatusInternalServerError,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
}

// ClientOptions are the azcore options every rotor client of ep uses.
//
// Retries: up to 6 retries, 800 ms base delay doubling with ±20 % jitter, a
// 60 s cap, on 408, 429, 500, 502, 503, 504 and on transport errors (dropped
// connections). azcore's retry policy honours Retry-After, retry-after-ms and
// x-ms-retry-after-ms before falling back to its backoff, which is exactly
// what Graph's and ARM's throttling asks of clients (and what Graph's
// identity 429s without Retry-After need); that is why rotor builds on azcore
// rather than writing its own HTTP loop. A Retry-After longer than the cap is
// not waited for: the 429 is returned so the caller can reschedule.
//
// Each try is bounded by TryTimeout so a hung connection is retried rather
// than waited on forever.
//
// When ep has an Observer, every attempt (retries included) is reported to
// it, with the service it went to (ServiceClassifier).
func ClientOptions(ep Endpoints) azcore.ClientOptions {
	o := azcore.ClientOptions{
		Cloud: ep.CloudConfiguration(),
		Retry: policy.RetryOptions{
			MaxRetries:    6,
			TryTimeout:    60 * time.Second,
			RetryDelay:    800 * time.Millisecond,
			MaxRetryDelay: 60 * time.Second,
			StatusCodes:   slices.Clone(retryStatuses),
		},
	}
	if ep.HTTPClient != nil {
		o.Transport = ep.HTTPClient
	}
	if ep.Observer != nil {
		o.PerRetryPolicies = append(o.PerRetryPolicies, observePolicy{obs: ep.Observer, classify: ServiceClassifier(ep)})
	}
	return o
}

// NewCredential builds the azidentity credential for conn. Errors name the
// connection and the missing or bad field, never a secret's value.
func NewCredential(conn Connection, ep Endpoints) (azcore.TokenCredential, error) {
	id := conn.Identity
	if conn.TenantID == "" && id.Method != ManagedIdentity {
		return nil, fmt.Errorf("connection %q: tenant_id is empty", conn.Name)
	}
	if conn.TenantID != "" && !tenantIDPattern.MatchString(conn.TenantID) {
		return nil, fmt.Errorf("connection %q: tenant_id %q is not a valid tenant id or domain", conn.Name, conn.TenantID)
	}
	for _, t := range conn.AuxiliaryTenants {
		if !tenantIDPattern.MatchString(t) {
			return nil, fmt.Errorf("connection %q: auxiliary tenant %q is not a valid tenant id or domain", conn.Name, t)
		}
	}
	if ep.AuthorityHost == "" {
		return nil, fmt.Errorf("connection %q: endpoints have no authority host", conn.Name)
	}
	co := ClientOptions(ep)
	disableDiscovery := ep.DisableInstanceDiscovery || conn.Cloud == Sim

	switch id.Method {
	case ClientSecret:
		if id.ClientID == "" {
			return nil, fmt.Errorf("connection %q: client_id is empty", conn.Name)
		}
		if id.ClientSecret.IsZero() {
			return nil, fmt.Errorf("connection %q: client_secret is empty", conn.Name)
		}
		c, err := azidentity.NewClientSecretCredential(conn.TenantID, id.ClientID, id.ClientSecret.Reveal(),
			&azidentity.ClientSecretCredentialOptions{
				ClientOptions:              co,
				AdditionallyAllowedTenants: conn.AuxiliaryTenants,
				DisableInstanceDiscovery:   disableDiscovery,
			})
		if err != nil {
			return nil, fmt.Errorf("connection %q: client secret credential: %w", conn.Name, err)
		}
		return c, nil

	case Certificate:
		if id.ClientID == "" {
			return nil, fmt.Errorf("connection %q: client_id is empty", conn.Name)
		}
		if id.CertificatePath == "" {
			return nil, fmt.Errorf("connection %q: certificate_path is empty", conn.Name)
		}
		data, err := os.ReadFile(id.CertificatePath)
		if err != nil {
			return nil, fmt.Errorf("connection %q: read certificate: %w", conn.Name, err)
		}
		var pw []byte
		if !id.CertificatePassword.IsZero() {
			pw = []byte(id.CertificatePassword.Reveal())
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			// ParseCertificates' errors describe the format, never the password.
			return nil, fmt.Errorf("connection %q: certificate %s: %w", conn.Name, id.CertificatePath, err)
		}
		if key == nil {
			return nil, fmt.Errorf("connection %q: certificate %s holds no private key", conn.Name, id.CertificatePath)
		}
		c, err := azidentity.NewClientCertificateCredential(conn.TenantID, id.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{
				ClientOptions:              co,
				AdditionallyAllowedTenants: conn.AuxiliaryTenants,
				DisableInstanceDiscovery:   disableDiscovery,
				SendCertificateChain:       id.SendCertificateChain,
			})
		if err != nil {
			return nil, fmt.Errorf("connection %q: certificate credential: %w", conn.Name, err)
		}
		return c, nil

	case ManagedIdentity:
		if err := prepareManagedIdentity(conn, ep); err != nil {
			return nil, err
		}
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if id.ManagedIdentityClientID != "" {
			o.ID = azidentity.ClientID(id.ManagedIdentityClientID)
		}
		c, err := azidentity.NewManagedIdentityCredential(o)
		if err != nil {
			return nil, fmt.Errorf("connection %q: managed identity credential: %w", conn.Name, err)
		}
		return c, nil

	case WorkloadIdentity:
		if id.ClientID == "" && os.Getenv("AZURE_CLIENT_ID") == "" {
			return nil, fmt.Errorf("connection %q: client_id is empty and AZURE_CLIENT_ID is not set", conn.Name)
		}
		if id.FederatedTokenFile == "" && os.Getenv("AZURE_FEDERATED_TOKEN_FILE") == "" {
			return nil, fmt.Errorf("connection %q: federated_token_file is empty and AZURE_FEDERATED_TOKEN_FILE is not set", conn.Name)
		}
		c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions:              co,
			AdditionallyAllowedTenants: conn.AuxiliaryTenants,
			ClientID:                   id.ClientID,
			TenantID:                   conn.TenantID,
			TokenFilePath:              id.FederatedTokenFile,
			DisableInstanceDiscovery:   disableDiscovery,
		})
		if err != nil {
			return nil, fmt.Errorf("connection %q: workload identity credential: %w", conn.Name, err)
		}
		return c, nil

	case "":
		return nil, fmt.Errorf("connection %q: identity method is empty", conn.Name)
	}
	return nil, fmt.Errorf("connection %q: unknown identity method %q (want client_secret, certificate, managed_identity or workload_identity)", conn.Name, id.Method)
}

// prepareManagedIdentity points azidentity at the simulator's managed
// identity endpoint. azidentity (through MSAL) finds the managed identity
// source only in the process environment, the way App Service provides it,
// so for Sim this sets IDENTITY_ENDPOINT and IDENTITY_HEADER when they are
// unset — the simulator plays the hosting environment. It refuses to run
// against the simulator with no endpoint, which would otherwise fall back to
// IMDS at 169.254.169.254.
func prepareManagedIdentity(conn Connection, ep Endpoints) error {
	if conn.Cloud != Sim && ep.Cloud != Sim {
		return nil
	}
	if ep.ManagedIdentityEndpoint == "" {
		return fmt.Errorf("connection %q: the simulator offers no managed identity endpoint", conn.Name)
	}
	cur := os.Getenv("IDENTITY_ENDPOINT")
	switch {
	case cur == "":
		if err := os.Setenv("IDENTITY_ENDPOINT", ep.ManagedIdentityEndpoint); err != nil {
			return fmt.Errorf("connection %q: set IDENTITY_ENDPOINT: %w", conn.Name, err)
		}
		if err := os.Setenv("IDENTITY_HEADER", ep.ManagedIdentityHeader.Reveal()); err != nil {
			return fmt.Errorf("connection %q: set IDENTITY_HEADER: %w", conn.Name, err)
		}
	case strings.TrimSuffix(cur, "/") != strings.TrimSuffix(ep.ManagedIdentityEndpoint, "/"):
		return fmt.Errorf("connection %q: IDENTITY_ENDPOINT is %s, not the simulator's managed identity endpoint %s",
			conn.Name, cur, ep.ManagedIdentityEndpoint)
	}
	return nil
}
