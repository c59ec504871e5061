package graph_test

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// deltaRound is one round of change tracking as a client walks it.
type deltaRound struct {
	entries   []map[string]any
	pages     int
	deltaLink string
}

// walkDelta follows a round from first (a path below Graph's base, or a
// link) to its delta link, checking Graph's paging rules on every page:
// nextLink until the last page, which has the deltaLink, never both.
func (g *graphEnv) walkDelta(t *testing.T, token, first string) deltaRound {
	t.Helper()
	var out deltaRound
	next := first
	for next != "" {
		r := g.call(t, token, http.MethodGet, next, nil)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
		out.pages++
		nl, _ := r.body["@odata.nextLink"].(string)
		dl, _ := r.body["@odata.deltaLink"].(string)
		require.False(t, nl != "" && dl != "", "a page never carries both links: %s", r.raw)
		require.True(t, nl != "" || dl != "", "every page carries one link: %s", r.raw)
		for _, l := range []string{nl, dl} {
			if l == "" {
				continue
			}
			u, err := url.Parse(l)
			require.NoError(t, err)
			require.True(t, strings.HasSuffix(u.Path, "/applications/delta"), l)
			require.NotContains(t, u.RawQuery, "select", "the token carries $select: %s", l)
		}
		out.entries = append(out.entries, values(t, r)...)
		next, out.deltaLink = nl, dl
	}
	return out
}

func byID(entries []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, e := range entries {
		out[e["id"].(string)] = e
	}
	return out
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDeltaRoundTrip: the first round returns every application with the
// selected properties in pages; a later round returns only what changed
// (a rename, a new secret, a new application, a deletion), and a round
// after nothing changed is one empty page.
func TestDeltaRoundTrip(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "tenant1", func(o *simtest.Options) { o.Seed = "apps=450,tenants=1" })
	tn := g.Server.World().Tenant(g.tn.ID)
	total := len(tn.Apps)

	first := g.walkDelta(t, g.token, "/applications/delta?$select=id,displayName,passwordCredentials")
	require.Equal(t, 3, first.pages, "%d applications in pages of 200", total)
	require.Len(t, first.entries, total)
	all := byID(first.entries)
	require.Len(t, all, total, "no application twice")
	for _, e := range first.entries {
		require.Equal(t, []string{"displayName", "id", "passwordCredentials"}, keys(e))
	}

	var renamed, rekeyed, deleted *sim.Application
	added := &sim.Application{ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: "brand-new", SignInAudience: "AzureADMyOrg"}
	g.Server.World().Update(func() {
		renamed, rekeyed, deleted = tn.Apps[10], tn.Apps[20], tn.Apps[30]
		renamed.DisplayName = "renamed"
		rekeyed.Passwords = append(rekeyed.Passwords, &sim.Password{KeyID: uuid.NewString(), DisplayName: "new", Hint: "abc",
			Start: time.Now(), End: time.Now().Add(time.Hour)})
		rekeyed.Tags = []string{"not selected, not reported on its own"}
		tn.RemoveApp(deleted.ObjectID)
		tn.AddApp(added)
	})
	second := g.walkDelta(t, g.token, first.deltaLink)
	require.Equal(t, 1, second.pages)
	got := byID(second.entries)
	require.Len(t, got, 4, "only the changes: %v", second.entries)
	require.Equal(t, map[string]any{"id": renamed.ObjectID, "displayName": "renamed"}, got[renamed.ObjectID],
		"a changed application carries the properties that changed")
	require.Equal(t, []string{"id", "passwordCredentials"}, keys(got[rekeyed.ObjectID]))
	require.Len(t, got[rekeyed.ObjectID]["passwordCredentials"], len(rekeyed.Passwords), "the whole collection")
	require.Equal(t, []string{"displayName", "id", "passwordCredentials"}, keys(got[added.ObjectID]), "a new one comes whole")
	require.Equal(t, map[string]any{"id": deleted.ObjectID, "@removed": map[string]any{"reason": "deleted"}}, got[deleted.ObjectID])

	third := g.walkDelta(t, g.token, second.deltaLink)
	require.Equal(t, 1, third.pages)
	require.Empty(t, third.entries, "nothing changed")

	// A delta link can be used again: Graph keeps the state it names.
	again := g.walkDelta(t, g.token, first.deltaLink)
	require.Len(t, again.entries, 4)

	// $select belongs to the first request of a round only.
	r := g.call(t, g.token, http.MethodGet, third.deltaLink+"&$select=id", nil)
	requireGraphError(t, r, http.StatusBadRequest, "Request_BadRequest")
	r = g.call(t, g.token, http.MethodGet, "/applications/delta?$top=5", nil)
	requireGraphError(t, r, http.StatusBadRequest, "Request_UnsupportedQuery")
}

// TestDeltaLatestSkipsTheCurrentState: $deltatoken=latest gives a delta
// link and no applications; the next round has only later changes, with
// the $select of the first request.
func TestDeltaLatestSkipsTheCurrentState(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	latest := g.walkDelta(t, g.token, "/applications/delta?$select=id,keyCredentials&$deltatoken=latest")
	require.Equal(t, 1, latest.pages)
	require.Empty(t, latest.entries)

	app := g.ownedApp(t)
	g.Server.World().Update(func() { app.DisplayName = "not selected" })
	require.Empty(t, g.walkDelta(t, g.token, latest.deltaLink).entries, "a change to a property not selected is not tracked")

	key := sim.NewKey(uuid.NewString(), "CN=new", simtest.SelfSignedCert(t, simtest.RSAKey(0), "CN=new", time.Now(), time.Now().Add(time.Hour)), time.Now())
	g.Server.World().Update(func() { app.Keys = append(app.Keys, key) })
	next := g.walkDelta(t, g.token, latest.deltaLink)
	require.Len(t, next.entries, 1)
	require.Equal(t, []string{"id", "keyCredentials"}, keys(next.entries[0]))
}

// TestDeltaLinkExpiresAfterSevenDays: Graph keeps directory change state
// for seven days; an older link is refused with syncStateNotFound, and so
// is a token this simulator did not make (or made for another tenant).
func TestDeltaLinkExpiresAfterSevenDays(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	round := g.walkDelta(t, g.token, "/applications/delta?$select=id")

	g.AdvanceClock(7*24*time.Hour - time.Minute)
	tok, err := g.Server.MintToken(g.tn.ID, g.tn.Rotation.ClientID, sim.GraphResource)
	require.NoError(t, err)
	fresh := g.walkDelta(t, tok, round.deltaLink)
	require.Empty(t, fresh.entries, "still valid just before seven days")

	g.AdvanceClock(2 * time.Minute)
	tok, err = g.Server.MintToken(g.tn.ID, g.tn.Rotation.ClientID, sim.GraphResource)
	require.NoError(t, err)
	r := g.call(t, tok, http.MethodGet, round.deltaLink, nil)
	e := requireGraphError(t, r, http.StatusBadRequest, "syncStateNotFound")
	require.Equal(t, "The sync state generation is not found. The delta token is expired and data must be synchronized again.", e["message"])
	// The link of the round that ran a minute before expiry is newer.
	require.Empty(t, g.walkDelta(t, tok, fresh.deltaLink).entries)

	u, err := url.Parse(fresh.deltaLink)
	require.NoError(t, err)
	tampered := u.Query().Get("$deltatoken")
	tampered = tampered[:len(tampered)-2] + "AA"
	r = g.call(t, tok, http.MethodGet, "/applications/delta?$deltatoken="+url.QueryEscape(tampered), nil)
	requireGraphError(t, r, http.StatusBadRequest, "syncStateNotFound")
	r = g.call(t, tok, http.MethodGet, "/applications/delta?$skiptoken="+url.QueryEscape(tampered), nil)
	requireGraphError(t, r, http.StatusBadRequest, "Directory_ExpiredPageToken")

	other := g.Tenant(t, "fabrikam")
	otherTok, err := g.Server.MintToken(other.ID, other.Rotation.ClientID, sim.GraphResource)
	require.NoError(t, err)
	r = g.call(t, otherTok, http.MethodGet, fresh.deltaLink, nil)
	requireGraphError(t, r, http.StatusBadRequest, "syncStateNotFound")
}

// TestDeltaOwnedByOnlySeesWhatItOwns: an Application.ReadWrite.OwnedBy
// caller without Read.All is told only of applications it owns, removals
// included.
func TestDeltaOwnedByOnlySeesWhatItOwns(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	tok, spID := g.tokenWithRoles(t, sim.RoleReadWriteOwned)
	tn := g.Server.World().Tenant(g.tn.ID)
	mine := &sim.Application{ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: "mine", Owners: []string{spID}}
	g.Server.World().Update(func() { tn.AddApp(mine) })
	first := g.walkDelta(t, tok, "/applications/delta?$select=id,displayName")
	require.Equal(t, []map[string]any{{"id": mine.ObjectID, "displayName": "mine"}}, first.entries)

	foreign := g.foreignApp(t)
	g.Server.World().Update(func() {
		tn.RemoveApp(foreign.ObjectID)
		tn.RemoveApp(mine.ObjectID)
	})
	second := g.walkDelta(t, tok, first.deltaLink)
	require.Equal(t, []map[string]any{{"id": mine.ObjectID, "@removed": map[string]any{"reason": "deleted"}}}, second.entries)
	all := g.walkDelta(t, g.token, "/applications/delta?$select=id")
	require.False(t, slices.ContainsFunc(all.entries, func(e map[string]any) bool { return e["id"] == foreign.ObjectID }))
}

// TestDeltaIsThrottledLikeAListing: a delta page costs what a listing page
// costs in Graph's resource units.
func TestDeltaIsThrottledLikeAListing(t *testing.T) {
	t.Parallel()
	// 3500 RU * 0.002 = 7 RU: one page that selects keyCredentials costs
	// 2 - 1 + 5 = 6, so the second is refused.
	g := graphSetup(t, "contoso", func(o *simtest.Options) {
		o.Faults = sim.FaultConfig{Throttle: true, ThrottleScale: 0.002}
	})
	r := g.call(t, g.token, http.MethodGet, "/applications/delta?$select=id,keyCredentials&$deltatoken=latest", nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	r = g.call(t, g.token, http.MethodGet, r.body["@odata.deltaLink"].(string), nil)
	requireGraphError(t, r, http.StatusTooManyRequests, "TooManyRequests")
	require.NotEmpty(t, r.hdr.Get("Retry-After"))
}

// TestDeltaReportsAChangeUndoneBeforeTheNextRound: Graph logs every
// change, so an application whose secret was added through Graph and then
// removed before the next round is reported, although its credentials
// look as they did at the last round. (Rotor's inventory learned of the
// added secret from its own run; without the report a removal behind its
// back would go unseen.)
func TestDeltaReportsAChangeUndoneBeforeTheNextRound(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	first := g.walkDelta(t, g.token, "/applications/delta?$select=id,passwordCredentials&$deltatoken=latest")
	app := g.ownedApp(t)
	r := g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/addPassword",
		map[string]any{"passwordCredential": map[string]any{"displayName": "x", "endDateTime": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	keyID := r.body["keyId"].(string)
	g.Server.World().Update(func() {
		app.Passwords = slices.DeleteFunc(app.Passwords, func(p *sim.Password) bool { return p.KeyID == keyID })
	})
	next := g.walkDelta(t, g.token, first.deltaLink)
	require.Contains(t, byID(next.entries), app.ObjectID, "the add and the removal are changes")
}
