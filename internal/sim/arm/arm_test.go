package arm_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

const (
	subsVersion   = "2022-12-01"
	vaultsVersion = "2024-11-01"
)

// bundle is a started simulator with bearer headers for contoso's
// rotation identity (a Reader on kv-contoso only) and its consumer (no
// role anywhere), and fabrikam's rotation identity.
type bundle struct {
	e        *simtest.Env
	tn, fab  *simfile.Tenant
	rotation map[string]string
	consumer map[string]string
	fabRot   map[string]string
}

func setup(t *testing.T) bundle {
	t.Helper()
	e := simtest.StartEnv(t)
	tn, fab := e.Tenant(t, "contoso"), e.Tenant(t, "fabrikam")
	bearer := func(tenant, client string) map[string]string {
		tok, err := e.Server.MintToken(tenant, client, e.Info.ARMAudience)
		require.NoError(t, err)
		return map[string]string{"Authorization": "Bearer " + tok}
	}
	return bundle{e: e, tn: tn, fab: fab,
		rotation: bearer(tn.ID, tn.Rotation.ClientID), consumer: bearer(tn.ID, tn.Consumer.ClientID),
		fabRot: bearer(fab.ID, fab.Rotation.ClientID)}
}

func (b bundle) vaultsURL(sub string, q string) string {
	return fmt.Sprintf("%ssubscriptions/%s/providers/Microsoft.KeyVault/vaults?api-version=%s%s", b.e.Info.ARMURL, sub, vaultsVersion, q)
}

func names(body map[string]any) []string {
	out := []string{}
	vals, _ := body["value"].([]any)
	for _, v := range vals {
		out = append(out, v.(map[string]any)["name"].(string))
	}
	return out
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestARMAnswersUnimplementedPathsNotFoundInARMShape(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, body := b.e.Do(t, http.MethodGet, b.e.Info.ARMURL+"subscriptions/"+b.tn.Subscriptions[0].ID+"/resourceGroups?api-version=2021-04-01", nil, b.rotation)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, "NotFound", errCode(body))
}

// TestARMRefusesBadTokens checks ARM's 401 shapes: a missing header, a
// token for another audience, and a token whose header has no kid.
func TestARMRefusesBadTokens(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Info.Tenants[0]
	graphTok, err := e.Server.MintToken(tn.ID, tn.Rotation.ClientID, e.Info.GraphAudience)
	require.NoError(t, err)
	armTok, err := e.Server.MintToken(tn.ID, tn.Rotation.ClientID, e.Info.ARMAudience)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, auth, code, msg string
	}{
		{"no header", "", "AuthenticationFailed", "header is missing"},
		{"graph token", "Bearer " + graphTok, "InvalidAuthenticationToken", "Invalid audience"},
		{"no kid", "Bearer " + simtest.WithoutKid(t, armTok), "InvalidAuthenticationToken", "no kid"},
	} {
		hdr := map[string]string{}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		status, body := e.Do(t, http.MethodGet, e.Info.ARMURL+"subscriptions?api-version=2022-12-01", nil, hdr)
		require.Equal(t, http.StatusUnauthorized, status, tc.name)
		errObj, _ := body["error"].(map[string]any)
		require.Equal(t, tc.code, errObj["code"], tc.name)
		require.Contains(t, errObj["message"], tc.msg, tc.name)
	}
}

func TestSubscriptionsListOnlyThoseTheCallerHasARoleIn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Len(t, b.tn.Subscriptions, 1)
	sub := b.tn.Subscriptions[0]

	status, body := b.e.Do(t, http.MethodGet, b.e.Info.ARMURL+"subscriptions?api-version="+subsVersion, nil, b.rotation)
	require.Equal(t, http.StatusOK, status, body)
	vals := body["value"].([]any)
	require.Len(t, vals, 1)
	got := vals[0].(map[string]any)
	require.Equal(t, "/subscriptions/"+sub.ID, got["id"])
	require.Equal(t, sub.ID, got["subscriptionId"])
	require.Equal(t, b.tn.ID, got["tenantId"])
	require.Equal(t, sub.DisplayName, got["displayName"])
	require.Equal(t, "Enabled", got["state"])

	// The consumer holds secret permissions but no role: ARM lists nothing.
	status, body = b.e.Do(t, http.MethodGet, b.e.Info.ARMURL+"subscriptions?api-version="+subsVersion, nil, b.consumer)
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, body["value"])

	// Get answers the one subscription.
	status, body = b.e.Do(t, http.MethodGet, b.e.Info.ARMURL+"subscriptions/"+sub.ID+"?api-version="+subsVersion, nil, b.rotation)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, sub.ID, body["subscriptionId"])
}

func TestVaultsListFiltersByRoleAssignment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sub := b.tn.Subscriptions[0].ID
	require.Len(t, b.tn.KeyVaults, 2, "the demo seeds rotor's vault and one rotor cannot see")
	mine, hidden := b.tn.KeyVaults[0], b.tn.KeyVaults[1]
	require.Contains(t, mine.ReadableBy, b.tn.Rotation.ObjectID)
	require.Empty(t, hidden.ReadableBy)

	status, body := b.e.Do(t, http.MethodGet, b.vaultsURL(sub, ""), nil, b.rotation)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, []string{"kv-contoso"}, names(body))
	require.Nil(t, body["nextLink"])
	v := body["value"].([]any)[0].(map[string]any)
	require.Equal(t, mine.ResourceID, v["id"])
	require.Equal(t, fmt.Sprintf("/subscriptions/%s/resourceGroups/rg-rotor/providers/Microsoft.KeyVault/vaults/kv-contoso", sub), v["id"])
	require.Equal(t, "Microsoft.KeyVault/vaults", v["type"])
	require.Equal(t, "westeurope", v["location"])
	require.Equal(t, map[string]any{"env": "demo"}, v["tags"])
	props := v["properties"].(map[string]any)
	require.Equal(t, mine.URL, props["vaultUri"])
	require.Equal(t, b.tn.ID, props["tenantId"])
	require.Equal(t, "standard", props["sku"].(map[string]any)["name"])
	var rotorPolicy map[string]any
	for _, p := range props["accessPolicies"].([]any) {
		if p.(map[string]any)["objectId"] == b.tn.Rotation.ObjectID {
			rotorPolicy = p.(map[string]any)["permissions"].(map[string]any)
		}
	}
	require.NotNil(t, rotorPolicy, "the access policy lists rotor's identity")
	require.ElementsMatch(t, []any{"list", "set", "recover"}, rotorPolicy["secrets"])
	require.ElementsMatch(t, []any{"get", "list", "create", "sign"}, rotorPolicy["keys"])
	require.ElementsMatch(t, []any{"get", "list", "create", "import", "update", "recover"}, rotorPolicy["certificates"])

	// A Reader on the subscription sees both; one on rg-finance only
	// that resource group's vault.
	b.e.Server.World().Update(func() {
		w := b.e.Server.World().TenantLocked(b.tn.ID)
		w.AssignRole(b.tn.Consumer.PrincipalID, sim.RoleReader, "/subscriptions/"+sub+"/resourceGroups/RG-FINANCE")
	})
	status, body = b.e.Do(t, http.MethodGet, b.vaultsURL(sub, ""), nil, b.consumer)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, []string{"kv-contoso-finance"}, names(body))
	b.e.Server.World().Update(func() {
		b.e.Server.World().TenantLocked(b.tn.ID).AssignRole(b.tn.Consumer.PrincipalID, sim.RoleReader, "/subscriptions/"+sub)
	})
	_, body = b.e.Do(t, http.MethodGet, b.vaultsURL(sub, ""), nil, b.consumer)
	require.Equal(t, []string{"kv-contoso", "kv-contoso-finance"}, names(body))
}

func TestVaultsListPagesWithTopAndNextLink(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sub := b.tn.Subscriptions[0].ID
	b.e.Server.World().Update(func() {
		tn := b.e.Server.World().TenantLocked(b.tn.ID)
		for _, n := range []string{"kv-a", "kv-b", "kv-c", "kv-d"} {
			v := &sim.Vault{Name: n, TenantID: tn.ID, SubscriptionID: sub, ResourceGroup: "rg-more", Location: "northeurope"}
			tn.Vaults[n] = v
		}
		tn.AssignRole(b.tn.Rotation.ObjectID, sim.RoleReader, "/subscriptions/"+sub+"/resourceGroups/rg-more")
	})
	var all []string
	next := b.vaultsURL(sub, "&$top=2")
	pages := 0
	for next != "" {
		status, body := b.e.Do(t, http.MethodGet, next, nil, b.rotation)
		require.Equal(t, http.StatusOK, status, body)
		got := names(body)
		require.LessOrEqual(t, len(got), 2)
		all = append(all, got...)
		pages++
		next, _ = body["nextLink"].(string)
		if next != "" {
			u, err := url.Parse(next)
			require.NoError(t, err)
			require.Equal(t, "2", u.Query().Get("$top"))
			require.Equal(t, vaultsVersion, u.Query().Get("api-version"))
		}
	}
	require.Equal(t, []string{"kv-a", "kv-b", "kv-c", "kv-contoso", "kv-d"}, all)
	require.Equal(t, 3, pages)
}

func TestARMErrorShapes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sub := b.tn.Subscriptions[0].ID
	for _, tc := range []struct {
		name   string
		url    string
		hdr    map[string]string
		status int
		code   string
		msg    string
	}{
		{"unknown subscription", b.vaultsURL("00000000-0000-0000-0000-000000000000", ""), b.rotation,
			http.StatusNotFound, "SubscriptionNotFound", "could not be found"},
		{"no role in the subscription", b.vaultsURL(sub, ""), b.consumer,
			http.StatusForbidden, "AuthorizationFailed", "'Microsoft.KeyVault/vaults/read' over scope '/subscriptions/" + sub + "'"},
		{"another tenant's subscription", b.vaultsURL(sub, ""), b.fabRot,
			http.StatusUnauthorized, "InvalidAuthenticationTokenTenant", "wrong issuer"},
		{"no api-version", b.e.Info.ARMURL + "subscriptions", b.rotation,
			http.StatusBadRequest, "MissingApiVersionParameter", "api-version"},
		{"unknown api-version", b.e.Info.ARMURL + "subscriptions/" + sub + "/providers/Microsoft.KeyVault/vaults?api-version=1999-01-01", b.rotation,
			http.StatusBadRequest, "InvalidApiVersionParameter", "2024-11-01"},
		{"bad $top", b.vaultsURL(sub, "&$top=0"), b.rotation,
			http.StatusBadRequest, "InvalidTopValue", "$top"},
	} {
		status, body := b.e.Do(t, http.MethodGet, tc.url, nil, tc.hdr)
		require.Equal(t, tc.status, status, tc.name)
		require.Equal(t, tc.code, errCode(body), tc.name)
		require.Contains(t, body["error"].(map[string]any)["message"], tc.msg, tc.name)
	}
}
