package sink

import (
	"log/slog"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
)

// Deps is everything a sink builder may need from the rest of rotor. The
// composition root (internal/server/sinks.go) makes one and hands it to
// every Kind; a kind takes what it uses and ignores the rest. Nothing in it
// is half-built: it exists only once the connections do.
type Deps struct {
	// Credentials act as a connection, for sinks that write to Azure
	// (Key Vault, Azure DevOps, Automation, Logic Apps).
	Credentials TokenCredentials
	// Secrets resolves a sink's own credentials (a PAT, a GitHub token, a
	// webhook signing key) from references in its spec, at use.
	Secrets SecretResolver
	// HTTPClient is for sinks that speak plain HTTP to a non-Azure service
	// (Vercel, GitHub, webhooks). When rotor runs against its simulator it
	// trusts only the simulator's CA and never uses a proxy, so nothing
	// leaves loopback.
	HTTPClient *http.Client
	// Clock is the time every decision is made with.
	Clock clock.Clock
	// Logger is the sink kind's logger; it never receives a secret value.
	Logger *slog.Logger
}

// TokenCredentials hands out the Azure identity of a connection, by name.
//
// This is the one place package sink names an Azure SDK type, and it names
// only azcore's TokenCredential interface and ClientOptions struct: they
// are what every Azure SDK client takes, so a sink passes them to
// azsecrets or an ARM client unchanged, and wrapping them in rotor types
// would only be copied back out. azcore is the SDK's small core (no
// identity library, no service client), so the rotation and the
// configuration, which import this package, stay free of both; internal/
// azure builds the real credentials and endpoints.
//
// One credential serves every scope of its connection: an SDK client asks
// for its own scope (Key Vault's comes from the vault's challenge), a REST
// sink passes its own to GetToken (Azure DevOps'
// 499b84ac-1321-427f-aa17-267ca6975798/.default), and azidentity caches a
// token per scope.
//
// Connections are an organization's own: the organization is the
// application's (BuildRequest.App.Org), and a sink never acts as another
// organization's connection.
type TokenCredentials interface {
	TokenCredential(org domain.OrgID, connection string) (AzureIdentity, error)
}

// AzureIdentity is how a sink acts as one connection.
type AzureIdentity struct {
	// Credential gets tokens for the connection's identity.
	Credential azcore.TokenCredential
	// ClientOptions are the connection's cloud, transport (the simulator's
	// CA for cloud sim) and retry settings, for every SDK client.
	ClientOptions azcore.ClientOptions
	// Simulator is true when the connection reaches rotor's simulator,
	// whose services live on loopback ports rather than under Azure's DNS
	// names: checks that assume those names (azsecrets' challenge resource
	// verification) must be relaxed.
	Simulator bool
	// AuxiliaryTenants are the connection's other tenants (at most three):
	// a Resource Manager client given them in arm.ClientOptions sends
	// x-ms-authorization-auxiliary tokens for them, which ARM needs when a
	// request touches resources linked in another tenant.
	AuxiliaryTenants []string
}
