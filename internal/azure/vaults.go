package azure

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// This file finds Key Vaults and their secrets' names for the vault
// picker: Resource Manager lists the subscriptions a connection's identity
// has a role in and the vaults it may read in each (Microsoft's
// armsubscriptions and armkeyvault clients), and a vault's data plane
// lists its secrets' properties (azsecrets). Only names, tags and dates
// are read: listing needs the secrets list permission, never get, and no
// value is ever asked for.

// Vault is a Key Vault as Resource Manager lists it.
type Vault struct {
	Name string
	// URL is the vault's data-plane address (properties.vaultUri), with a
	// trailing slash.
	URL              string
	ResourceID       string
	SubscriptionID   string
	SubscriptionName string
	ResourceGroup    string
	Location         string
	Tags             map[string]string
}

// VaultSecret is one secret of a vault, by its properties only.
type VaultSecret struct {
	Name        string
	Tags        map[string]string
	Enabled     bool
	ContentType string
	// Updated is when its latest version was written (zero if Key Vault
	// did not say).
	Updated time.Time
}

// ListError is Resource Manager's or Key Vault's refusal of a listing,
// reduced to what a person needs to fix it: the service, what was being
// listed, the HTTP status and the service's error code and message
// (which name principals and scopes, never a token or a secret).
type ListError struct {
	// Service is "Resource Manager" or "Key Vault".
	Service string
	// Op is what was being listed: "subscriptions", "vaults in
	// subscription X", "secrets of vault URL".
	Op      string
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *ListError) Error() string {
	msg := fmt.Sprintf("%s: list %s: HTTP %d", e.Service, e.Op, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap returns the SDK's error.
func (e *ListError) Unwrap() error { return e.Err }

// listError wraps an SDK error: a service's answer becomes a *ListError,
// anything else (a token refusal, the network) is wrapped as it is.
func listError(service, op string, err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: list %s: %w", service, op, err)
	}
	le := &ListError{Service: service, Op: op, Status: re.StatusCode, Code: re.ErrorCode, Err: err}
	if re.RawResponse != nil {
		le.Message = serviceMessage(re)
	}
	return le
}

// serviceMessage is error.message of the error body, first line only
// (ARM's and Key Vault's bodies have that shape; azcore keeps the body
// readable after reading it for the error).
func serviceMessage(re *azcore.ResponseError) string {
	b, err := runtime.Payload(re.RawResponse)
	if err != nil {
		return ""
	}
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) != nil {
		return ""
	}
	msg, _, _ := strings.Cut(body.Error.Message, "\n")
	return strings.TrimSpace(msg)
}

// ListVaults lists every vault the credential may read, in every
// subscription it has a role in, ordered by name. opts are the
// connection's ClientOptions (their Cloud names the ARM endpoint and
// audience).
func ListVaults(ctx context.Context, cred azcore.TokenCredential, opts azcore.ClientOptions) ([]Vault, error) {
	o := &arm.ClientOptions{ClientOptions: opts}
	subs, err := armsubscriptions.NewClient(cred, o)
	if err != nil {
		return nil, fmt.Errorf("resource manager client: %w", err)
	}
	var out []Vault
	pager := subs.NewListPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, listError("Resource Manager", "subscriptions", err)
		}
		for _, s := range page.Value {
			if s == nil || s.SubscriptionID == nil {
				continue
			}
			vs, err := listSubscriptionVaults(ctx, cred, o, *s.SubscriptionID, deref(s.DisplayName))
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
	}
	slices.SortFunc(out, func(a, b Vault) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), strings.Compare(a.SubscriptionID, b.SubscriptionID))
	})
	return out, nil
}

func listSubscriptionVaults(ctx context.Context, cred azcore.TokenCredential, o *arm.ClientOptions, subID, subName string) ([]Vault, error) {
	vc, err := armkeyvault.NewVaultsClient(subID, cred, o)
	if err != nil {
		return nil, fmt.Errorf("key vault management client: %w", err)
	}
	var out []Vault
	pager := vc.NewListBySubscriptionPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, listError("Resource Manager", "vaults in subscription "+subID, err)
		}
		for _, v := range page.Value {
			if v == nil || v.Properties == nil || v.Properties.VaultURI == nil {
				continue
			}
			vault := Vault{
				Name: deref(v.Name), URL: *v.Properties.VaultURI, ResourceID: deref(v.ID),
				SubscriptionID: subID, SubscriptionName: subName, Location: deref(v.Location), Tags: tags(v.Tags),
			}
			if !strings.HasSuffix(vault.URL, "/") {
				vault.URL += "/"
			}
			if id, err := arm.ParseResourceID(vault.ResourceID); err == nil {
				vault.ResourceGroup = id.ResourceGroupName
			}
			out = append(out, vault)
		}
	}
	return out, nil
}

// ListVaultSecrets lists the secrets of the vault at vaultURL by name,
// with their tags and dates, never a value. Secrets Key Vault manages
// itself (those backing a certificate) are left out: nothing but Key
// Vault may write them. simulator relaxes the challenge resource check, as
// the Key Vault sink does for rotor's simulator.
func ListVaultSecrets(ctx context.Context, vaultURL string, cred azcore.TokenCredential, opts azcore.ClientOptions, simulator bool) ([]VaultSecret, error) {
	u, err := url.Parse(vaultURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("vault URL %q must be an https URL", vaultURL)
	}
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{
		ClientOptions:                        opts,
		DisableChallengeResourceVerification: simulator,
	})
	if err != nil {
		return nil, fmt.Errorf("key vault client for %s: %w", vaultURL, err)
	}
	var out []VaultSecret
	pager := c.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, listError("Key Vault", "secrets of "+vaultURL, err)
		}
		for _, p := range page.Value {
			if p == nil || p.ID == nil || (p.Managed != nil && *p.Managed) {
				continue
			}
			s := VaultSecret{Name: p.ID.Name(), Tags: tags(p.Tags), ContentType: deref(p.ContentType)}
			if a := p.Attributes; a != nil {
				s.Enabled = a.Enabled == nil || *a.Enabled
				if a.Updated != nil {
					s.Updated = a.Updated.UTC()
				}
			}
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b VaultSecret) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, nil
}

// IsForbidden reports whether err is a listing Azure refused for lack of
// rights (401 or 403).
func IsForbidden(err error) bool {
	var le *ListError
	return errors.As(err, &le) && (le.Status == http.StatusForbidden || le.Status == http.StatusUnauthorized)
}

func tags(m map[string]*string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
