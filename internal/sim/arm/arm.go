// Package arm is the simulated Azure Resource Manager: the bearer token
// checked as ARM checks it, and the listings a client needs to find Key
// Vaults (Subscriptions - List and Get, api-version 2022-12-01 and older;
// Vaults - List By Subscription, Microsoft.KeyVault 2023-07-01 and
// 2024-11-01), filtered by the caller's role assignments and paged with
// nextLink. Every other path answers ARM's 404 shape; more ARM surfaces
// (VMs, Automation, …) go here as routes or a package of their own.
//
// What the REST reference and Microsoft's Go SDK were checked for is
// written down in docs/azure-arm.md.
package arm

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// Service is the simulated Resource Manager.
type Service struct {
	*core.Core
	// res holds the Automation accounts and API connections
	// (resources.go).
	res resources
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

// prefix is where ARM is served on the main listener.
const prefix = "/arm/"

// Register serves ARM under /arm/ on the main listener.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	s.seedResources()
	services.Store(c, s)
	r.Handle(prefix, s.WithFaults(nil, http.HandlerFunc(s.serveARM)))
	return nil
}

// Started publishes ARM's base URL and audience.
func (s *Service) Started(info *simfile.Info) error {
	info.ARMURL = info.AuthorityHost + "arm/"
	info.ARMAudience = core.ARMResource
	info.ARMResources = s.publishedResources()
	return nil
}

// The api-versions each listing accepts: those Microsoft's SDKs send
// today and the ones before them with the same shape.
var (
	subscriptionVersions = []string{"2016-06-01", "2018-06-01", "2019-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01"}
	vaultVersions        = []string{"2019-09-01", "2021-10-01", "2022-07-01", "2023-02-01", "2023-07-01", "2024-11-01"}
)

const (
	// defaultPageSize is how many vaults one page holds without $top
	// (the simulator's choice; ARM's is the resource provider's).
	defaultPageSize = 25
	// maxTop is the largest $top accepted.
	maxTop = 1000
)

// call is one ARM request.
type call struct {
	s      *Service
	w      http.ResponseWriter
	r      *http.Request
	caller *core.Caller
}

// serveARM checks the bearer token first, as ARM does, so a bad token is
// never mistaken for a missing resource, then routes.
func (s *Service) serveARM(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-ms-request-id", uuid.NewString())
	w.Header().Set("x-ms-correlation-request-id", uuid.NewString())
	if r.Header.Get("Authorization") == "" {
		armUnauthorized(w, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return
	}
	caller, err := s.Authenticate(r, core.ARMResource)
	if err != nil {
		msg := "The access token is invalid."
		var ae *core.AuthError
		if errors.As(err, &ae) && ae.Message != "" {
			msg = ae.Message
		}
		armUnauthorized(w, "InvalidAuthenticationToken", msg)
		return
	}
	c := &call{s: s, w: w, r: r, caller: caller}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/"), "/")
	if c.serveResource(segs) {
		return
	}
	switch {
	case r.Method != http.MethodGet:
		c.notImplemented()
	case len(segs) == 1 && strings.EqualFold(segs[0], "subscriptions"):
		if c.apiVersion(subscriptionVersions, "subscriptions") {
			c.listSubscriptions()
		}
	case len(segs) == 2 && strings.EqualFold(segs[0], "subscriptions"):
		if c.apiVersion(subscriptionVersions, "subscriptions") {
			c.getSubscription(segs[1])
		}
	case len(segs) == 5 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "providers") &&
		strings.EqualFold(segs[3], "Microsoft.KeyVault") && strings.EqualFold(segs[4], "vaults"):
		if c.apiVersion(vaultVersions, "vaults") {
			c.listVaults(segs[1])
		}
	default:
		c.notImplemented()
	}
}

func (c *call) notImplemented() {
	armError(c.w, http.StatusNotFound, "NotFound", fmt.Sprintf("The simulator does not implement %s %s.", c.r.Method, c.r.URL.Path))
}

// apiVersion checks the api-version parameter as ARM does: required, and
// one the resource type supports.
func (c *call) apiVersion(supported []string, resourceType string) bool {
	v := c.r.URL.Query().Get("api-version")
	if v == "" {
		armError(c.w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return false
	}
	if !slices.Contains(supported, v) {
		armError(c.w, http.StatusBadRequest, "InvalidApiVersionParameter", fmt.Sprintf(
			"The api-version '%s' is invalid. The supported versions for resource type '%s' are '%s'.", v, resourceType, strings.Join(supported, ",")))
		return false
	}
	return true
}

// subscriptionJSON is a Subscription as 2022-12-01 shapes it.
type subscriptionJSON struct {
	ID                   string            `json:"id"`
	AuthorizationSource  string            `json:"authorizationSource"`
	ManagedByTenants     []any             `json:"managedByTenants"`
	SubscriptionID       string            `json:"subscriptionId"`
	TenantID             string            `json:"tenantId"`
	DisplayName          string            `json:"displayName"`
	State                string            `json:"state"`
	SubscriptionPolicies map[string]string `json:"subscriptionPolicies"`
}

func toSubscriptionJSON(s *core.Subscription) subscriptionJSON {
	return subscriptionJSON{
		ID: s.ResourceID(), AuthorizationSource: "RoleBased", ManagedByTenants: []any{},
		SubscriptionID: s.ID, TenantID: s.TenantID, DisplayName: s.DisplayName, State: s.State,
		SubscriptionPolicies: map[string]string{
			"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off",
		},
	}
}

// listSubscriptions serves GET /subscriptions: the subscriptions of the
// token's tenant in which the caller holds any role, in one page.
func (c *call) listSubscriptions() {
	w := c.s.World()
	w.RLock()
	out := []subscriptionJSON{}
	if t := w.TenantLocked(c.caller.TenantID); t != nil {
		for _, sub := range t.Subscriptions {
			if t.HasRoleIn(c.caller.ObjectID, sub.ID) {
				out = append(out, toSubscriptionJSON(sub))
			}
		}
	}
	w.RUnlock()
	core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, map[string]any{
		"value": out, "count": map[string]any{"type": "Total", "value": len(out)},
	})
}

// getSubscription serves GET /subscriptions/{id}.
func (c *call) getSubscription(id string) {
	w := c.s.World()
	w.RLock()
	_, sub, fail := c.subscription(id, "Microsoft.Resources/subscriptions/read")
	var body subscriptionJSON
	if fail == nil {
		body = toSubscriptionJSON(sub)
	}
	w.RUnlock()
	if fail != nil {
		fail()
		return
	}
	core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, body)
}

// subscription finds the subscription a call names and checks the caller
// may act in it. Otherwise it returns ARM's refusal, for the caller to
// write once it has released the lock: 404 SubscriptionNotFound for an id
// no tenant has, 401 InvalidAuthenticationTokenTenant for another
// tenant's, 403 AuthorizationFailed when the caller holds no role in it.
// Callers hold the world's read lock.
func (c *call) subscription(id, action string) (*core.Tenant, *core.Subscription, func()) {
	t, sub := c.s.World().SubscriptionLocked(id)
	switch {
	case sub == nil:
		return nil, nil, func() {
			armError(c.w, http.StatusNotFound, "SubscriptionNotFound", fmt.Sprintf("The subscription '%s' could not be found.", id))
		}
	case !strings.EqualFold(t.ID, c.caller.TenantID):
		msg := fmt.Sprintf("The access token is from the wrong issuer '%s'. It must match the tenant '%s' associated with this subscription. "+
			"Please use the authority (URL) 'https://login.windows.net/%s' to get the token.",
			core.StsIssuer(c.caller.TenantID), core.StsIssuer(t.ID), t.ID)
		return nil, nil, func() { armUnauthorized(c.w, "InvalidAuthenticationTokenTenant", msg) }
	case !t.HasRoleIn(c.caller.ObjectID, sub.ID):
		msg := fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. "+
			"If access was recently granted, please refresh your credentials.",
			c.caller.AppID, c.caller.ObjectID, action, sub.ResourceID())
		return nil, nil, func() { armError(c.w, http.StatusForbidden, "AuthorizationFailed", msg) }
	}
	return t, sub, nil
}

// vaultJSON is a Vault as Microsoft.KeyVault 2024-11-01 shapes it (the
// properties a listing carries; access policies as the vault holds them).
type vaultJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties vaultProperties   `json:"properties"`
}

type vaultProperties struct {
	SKU                       map[string]string `json:"sku"`
	TenantID                  string            `json:"tenantId"`
	AccessPolicies            []accessPolicy    `json:"accessPolicies"`
	EnabledForDeployment      bool              `json:"enabledForDeployment"`
	EnableSoftDelete          bool              `json:"enableSoftDelete"`
	SoftDeleteRetentionInDays int               `json:"softDeleteRetentionInDays"`
	EnableRbacAuthorization   bool              `json:"enableRbacAuthorization"`
	VaultURI                  string            `json:"vaultUri"`
	ProvisioningState         string            `json:"provisioningState"`
	PublicNetworkAccess       string            `json:"publicNetworkAccess"`
}

type accessPolicy struct {
	TenantID    string              `json:"tenantId"`
	ObjectID    string              `json:"objectId"`
	Permissions map[string][]string `json:"permissions"`
}

// keysOf is the set of a map's keys.
func keysOf[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// names renders permissions as strings; never nil, as ARM lists [].
func names[P ~string](perms []P) []string {
	out := make([]string, 0, len(perms))
	for _, p := range perms {
		out = append(out, string(p))
	}
	return out
}

func toVaultJSON(v *core.Vault) vaultJSON {
	tags := map[string]string{}
	for k, val := range v.Tags {
		tags[k] = val
	}
	policies := []accessPolicy{}
	oids := map[string]bool{}
	for _, m := range []map[string]bool{keysOf(v.Access), keysOf(v.KeyAccess), keysOf(v.CertificateAccess)} {
		for oid := range m {
			oids[oid] = true
		}
	}
	for _, oid := range core.SortedKeys(oids) {
		policies = append(policies, accessPolicy{TenantID: v.TenantID, ObjectID: oid,
			Permissions: map[string][]string{"keys": names(v.KeyAccess[oid]), "secrets": names(v.Access[oid]), "certificates": names(v.CertificateAccess[oid])}})
	}
	sku := "standard"
	if v.Premium() {
		sku = core.VaultSKUPremium
	}
	return vaultJSON{
		ID: v.VaultResourceID(), Name: v.Name, Type: "Microsoft.KeyVault/vaults", Location: v.Location, Tags: tags,
		Properties: vaultProperties{
			SKU: map[string]string{"family": "A", "name": sku}, TenantID: v.TenantID, AccessPolicies: policies,
			EnableSoftDelete: true, SoftDeleteRetentionInDays: 90, VaultURI: v.URL,
			ProvisioningState: "Succeeded", PublicNetworkAccess: "Enabled",
		},
	}
}

// listVaults serves GET /subscriptions/{id}/providers/Microsoft.KeyVault/vaults:
// the subscription's vaults the caller may read (a role on the vault, its
// resource group or the subscription), by name, $top to a page, the rest
// behind nextLink with a $skiptoken.
func (c *call) listVaults(subID string) {
	q := c.r.URL.Query()
	size := defaultPageSize
	if top := q.Get("$top"); top != "" {
		n, err := strconv.Atoi(top)
		if err != nil || n < 1 || n > maxTop {
			armError(c.w, http.StatusBadRequest, "InvalidTopValue", fmt.Sprintf("The value '%s' of $top is invalid: it must be an integer from 1 to %d.", top, maxTop))
			return
		}
		size = n
	}
	after := ""
	if tok := q.Get("$skiptoken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			armError(c.w, http.StatusBadRequest, "InvalidSkipToken", "The $skiptoken is invalid.")
			return
		}
		after = string(b)
	}
	w := c.s.World()
	w.RLock()
	t, sub, fail := c.subscription(subID, "Microsoft.KeyVault/vaults/read")
	if fail != nil {
		w.RUnlock()
		fail()
		return
	}
	var page []vaultJSON
	more := false
	for _, name := range core.SortedKeys(t.Vaults) {
		v := t.Vaults[name]
		if !strings.EqualFold(v.SubscriptionID, sub.ID) || !t.CanRead(c.caller.ObjectID, v.VaultResourceID()) {
			continue
		}
		if after != "" && name <= after {
			continue
		}
		if len(page) == size {
			more = true
			break
		}
		page = append(page, toVaultJSON(v))
	}
	w.RUnlock()
	body := map[string]any{"value": page}
	if page == nil {
		body["value"] = []vaultJSON{}
	}
	if more {
		next := q
		next.Set("$top", strconv.Itoa(size))
		next.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte(page[len(page)-1].Name)))
		body["nextLink"] = "https://" + c.r.Host + c.r.URL.Path + "?" + next.Encode()
	}
	core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, body)
}

// armError is ARM's error body.
func armError(w http.ResponseWriter, status int, code, msg string) {
	core.WriteJSON(w, status, core.PlainJSON, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// armUnauthorized is ARM's 401: the error body and the bearer challenge
// naming the authority, as management.azure.com sends them.
func armUnauthorized(w http.ResponseWriter, code, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="`+strings.ReplaceAll(msg, `"`, `'`)+`"`)
	armError(w, http.StatusUnauthorized, code, msg)
}
