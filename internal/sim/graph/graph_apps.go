package graph

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file serves /applications: list, get, create, PATCH, delete, the
// credential actions (addPassword, removePassword, addKey, removeKey),
// owners and federated identity credentials.

const appType = "microsoft.graph.application"

// appProps are the application properties the simulator models, in Graph's
// order; $select may name any of them.
var appProps = []string{
	"id", "deletedDateTime", "appId", "createdDateTime", "description", "displayName",
	"publisherDomain", "signInAudience", "tags", "keyCredentials", "passwordCredentials",
}

// appFilterProps are the properties $filter may use on applications.
var appFilterProps = []string{"id", "appId", "displayName"}

// graphTime formats a time as Graph does for credentials and createdDateTime.
func graphTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// nullable renders "" as JSON null, as Graph does for unset strings.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// renderApp renders an application with every modelled property.
// keyCredentials[].key is only filled when withKeyData (explicitly selected).
func renderApp(t *core.Tenant, a *core.Application, withKeyData bool) jsonObj {
	out := make(jsonObj, 0, len(appProps))
	for _, p := range appProps {
		out = append(out, kv{p, appMember(t, a, p, withKeyData)})
	}
	return out
}

// renderSelected is project(renderApp(…), sel) without rendering what sel
// leaves out: a listing of 100,000 applications that selects their ids
// renders only those. keyCredentials[].key is filled when keyCredentials
// is selected and withKeyData: Graph returns the certificate only to a GET
// of one application with $select=keyCredentials, and null in listings
// and delta pages ("Returned only on $select for a single object … otherwise,
// it is always null", the keyCredential resource's documentation).
func renderSelected(t *core.Tenant, a *core.Application, sel selection, withKeyData bool) jsonObj {
	if sel == nil {
		return renderApp(t, a, false)
	}
	out := make(jsonObj, 0, len(sel))
	for _, p := range appProps {
		if sel.has(p) {
			out = append(out, kv{p, appMember(t, a, p, withKeyData)})
		}
	}
	return out
}

// appMember renders one property of an application.
func appMember(t *core.Tenant, a *core.Application, prop string, withKeyData bool) any {
	switch prop {
	case "id":
		return a.ObjectID
	case "appId":
		return a.AppID
	case "createdDateTime":
		return graphTime(a.CreatedDateTime)
	case "displayName":
		return a.DisplayName
	case "publisherDomain":
		return t.Domain
	case "signInAudience":
		return a.SignInAudience
	case "tags":
		return append([]string{}, a.Tags...)
	case "keyCredentials":
		keys := make([]jsonObj, 0, len(a.Keys))
		for _, k := range a.Keys {
			keys = append(keys, renderKey(k, withKeyData))
		}
		return keys
	case "passwordCredentials":
		pwds := make([]jsonObj, 0, len(a.Passwords))
		for _, p := range a.Passwords {
			pwds = append(pwds, renderPassword(p, nil))
		}
		return pwds
	}
	return nil // deletedDateTime, description
}

// renderPassword renders a passwordCredential; secretText is only ever
// non-nil in addPassword's response.
func renderPassword(p *core.Password, secretText *string) jsonObj {
	var st any
	if secretText != nil {
		st = *secretText
	}
	return jsonObj{
		{"customKeyIdentifier", nil},
		{"displayName", nullable(p.DisplayName)},
		{"endDateTime", graphTime(p.End)},
		{"hint", p.Hint},
		{"keyId", p.KeyID},
		{"secretText", st},
		{"startDateTime", graphTime(p.Start)},
	}
}

// renderKey renders a keyCredential. customKeyIdentifier is the base64 of
// the certificate's SHA-1 thumbprint.
func renderKey(k *core.Key, withKeyData bool) jsonObj {
	var key any
	if withKeyData && k.Cert != nil {
		key = base64.StdEncoding.EncodeToString(k.Cert.Raw)
	}
	var cki any
	if len(k.ThumbprintSHA1) > 0 {
		cki = base64.StdEncoding.EncodeToString(k.ThumbprintSHA1)
	}
	return jsonObj{
		{"customKeyIdentifier", cki},
		{"displayName", nullable(k.DisplayName)},
		{"endDateTime", graphTime(k.End)},
		{"key", key},
		{"keyId", k.KeyID},
		{"startDateTime", graphTime(k.Start)},
		{"type", k.Type},
		{"usage", k.Usage},
	}
}

// appField reads an app's filterable properties.
func appField(a *core.Application) filterField {
	return func(name string) (string, bool) {
		switch name {
		case "id":
			return a.ObjectID, true
		case "appId":
			return a.AppID, true
		case "displayName":
			return a.DisplayName, true
		}
		return "", false
	}
}

// findApp resolves a key segment: an object id, or "appId=…"/"id=…" from
// the alternate-key form. A key that is not a GUID is a 400, as in Graph.
func findApp(t *core.Tenant, key string) (*core.Application, *reply) {
	var a *core.Application
	val := key
	if v, ok := strings.CutPrefix(key, "appId="); ok {
		val = v
		a = t.AppByAppID(v)
		if a == nil {
			a = t.AppByAppID(strings.ToLower(v))
		}
	} else {
		val = strings.TrimPrefix(key, "id=")
		a = t.AppByObjectID(val)
		if a == nil {
			a = t.AppByObjectID(strings.ToLower(val))
		}
	}
	if a != nil {
		return a, nil
	}
	if !isGUID(val) {
		rp := errReply(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Invalid object identifier '%s'.", val))
		return nil, &rp
	}
	rp := notFoundReply(val)
	return nil, &rp
}

// readableApp finds an app the caller may read.
func (g *graphCall) readableApp(t *core.Tenant, key string) (*core.Application, *reply) {
	a, rp := findApp(t, key)
	if rp != nil {
		return nil, rp
	}
	if !g.acc.canRead(a, g.caller) {
		return nil, &deniedReply
	}
	return a, nil
}

// writableApp finds an app the caller may change.
func (g *graphCall) writableApp(t *core.Tenant, key string) (*core.Application, *reply) {
	a, rp := findApp(t, key)
	if rp != nil {
		return nil, rp
	}
	if !g.acc.canWrite(a, g.caller) {
		return nil, &deniedReply
	}
	if rp := g.converged(t, a); rp != nil {
		return nil, rp
	}
	g.written = append(g.written, a)
	return a, nil
}

// converged refuses a write to a that arrives within the fault
// configuration's ConcurrencyWindow of the previous one, with Graph's
// 409 for an object whose last change has not converged; otherwise it
// records this write. Callers hold the world lock.
func (g *graphCall) converged(t *core.Tenant, a *core.Application) *reply {
	window := g.s.Faults().ConcurrencyWindow
	if window <= 0 {
		return nil
	}
	now, k := g.s.Clock().Now(), t.ID+"/"+a.ObjectID
	if g.s.lastWrite == nil {
		g.s.lastWrite = map[string]time.Time{}
	}
	if last, ok := g.s.lastWrite[k]; ok && now.Sub(last) < window {
		g.s.Counters().Conflicts.Add(1)
		rp := errReply(http.StatusConflict, codeConcurrency, "Error due to concurrent requests being made to the tenant. Please wait briefly and retry.")
		return &rp
	}
	g.s.lastWrite[k] = now
	return nil
}

// passwordLimit is how many password credentials Entra lets an
// application hold: two when its signInAudience admits personal Microsoft
// accounts (AZURE-API.md §9), else no limit the simulator models (0).
func passwordLimit(signInAudience string) int {
	switch signInAudience {
	case "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount":
		return 2
	}
	return 0
}

// selectContext is the @odata.context of a (possibly projected) collection.
func selectContext(base string, sel selection) string {
	if sel == nil {
		return base
	}
	return base + "(" + strings.Join(sel, ",") + ")"
}

// appListSpec describes one application listing: /applications, or a
// service principal's ownedObjects.
type appListSpec struct {
	context string
	// ownerKey, when set, limits the listing to apps owned by that service
	// principal (a key segment of /servicePrincipals/{key}/ownedObjects).
	ownerKey string
	// typed adds "@odata.type" to each item (directoryObject collections).
	typed bool
	// ownerID, when set, limits the listing to apps that directory object
	// owns, and lets the caller read them whatever its application
	// permissions: a signed-in user's /me/ownedObjects.
	ownerID string
}

func (g *graphCall) listApplications() {
	g.listApps(appListSpec{context: graphMetadata + "applications"})
}

// listApps serves a page of applications. The walk starts at the
// $skiptoken's cursor and stops one match after the page is full, so the
// cost of a whole listing is O(N) however many pages it takes, and a
// nextLink is only given when another match exists.
func (g *graphCall) listApps(spec appListSpec) {
	var lq listQuery
	if spec.ownerID != "" {
		var err error
		if lq, err = parseListQuery(g.r, appType, appProps, appFilterProps); err != nil {
			g.queryFail(err)
			return
		}
	} else {
		var ok bool
		if lq, ok = g.listQuery(appType, appProps, appFilterProps); !ok {
			return
		}
	}
	sel, top, filter, count, cur := lq.sel, lq.top, lq.filter, lq.count, lq.cur
	cost := lq.cost()
	if sel.has("keyCredentials") {
		cost += costKeyCredentials
	}
	if !g.admit(cost, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		owner := spec.ownerID
		if spec.ownerKey != "" {
			sp, rp := findSP(t, spec.ownerKey)
			if rp != nil {
				return *rp
			}
			owner = sp.ObjectID
		}
		visible := func(a *core.Application) bool {
			return (owner == "" || a.OwnedBy(owner)) && (spec.ownerID != "" || g.acc.canRead(a, g.caller)) && filter.Match(appField(a))
		}
		page := make([]*core.Application, 0, min(top, 64))
		next := -1
		if prop, val, ok := filter.EqualityKey(); ok && cur == nil && (prop == "id" || prop == "appId") {
			// Answer "appId eq '…'" and "id eq '…'" from the index.
			var a *core.Application
			if prop == "id" {
				a = t.AppByObjectID(val)
			} else {
				a = t.AppByAppID(val)
			}
			if a == nil {
				a = findFold(t, prop, val)
			}
			if a != nil && visible(a) {
				page = append(page, a)
			}
		} else {
			start := 0
			if cur != nil {
				start = resumeIndex(*cur, len(t.Apps), func(i int) string { return t.Apps[i].ObjectID },
					func() int { return sort.Search(len(t.Apps), func(i int) bool { return t.Apps[i].Seq() >= cur.Seq }) })
			}
			for i := start; i < len(t.Apps); i++ {
				a := t.Apps[i]
				if !visible(a) {
					continue
				}
				if len(page) == top {
					next = i
					break
				}
				page = append(page, a)
			}
		}
		items := make([]jsonObj, 0, len(page))
		for _, a := range page {
			o := renderSelected(t, a, sel, false)
			if spec.typed {
				o = append(jsonObj{{"@odata.type", "#" + appType}}, o...)
			}
			items = append(items, o)
		}
		body := jsonObj{{"@odata.context", selectContext(spec.context, sel)}}
		if count {
			n := 0
			for _, a := range t.Apps {
				if visible(a) {
					n++
				}
			}
			body = append(body, kv{"@odata.count", n})
		}
		if next >= 0 {
			a := t.Apps[next]
			body = append(body, kv{"@odata.nextLink", nextLink(g.r, encodeSkiptoken(cursor{Index: next, ID: a.ObjectID, Seq: a.Seq()}))})
		}
		body = append(body, kv{"value", items})
		return okReply(http.StatusOK, body)
	})
}

// findFold finds an app by id or appId ignoring case (GUIDs compare
// case-insensitively in the directory; the indexes are exact).
func findFold(t *core.Tenant, prop, val string) *core.Application {
	if !isGUID(val) {
		return nil
	}
	if prop == "id" {
		return t.AppByObjectID(strings.ToLower(val))
	}
	return t.AppByAppID(strings.ToLower(val))
}

// countApplications serves /applications/$count (an advanced query).
func (g *graphCall) countApplications() {
	if !g.requireAny() {
		return
	}
	if !strings.EqualFold(g.r.Header.Get("ConsistencyLevel"), "eventual") {
		g.fail(http.StatusBadRequest, codeUnsupportedQuery, "Unsupported Query. $count requires the ConsistencyLevel header set to 'eventual'.")
		return
	}
	if !g.admit(costGet, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		n := 0
		for _, a := range t.Apps {
			if g.acc.canRead(a, g.caller) {
				n++
			}
		}
		return reply{status: http.StatusOK, text: strconv.Itoa(n)}
	})
}

func (g *graphCall) getApplication(key string) {
	if !g.requireAny() {
		return
	}
	sel, err := parseSelect(g.r.URL.Query(), appType, appProps)
	if err != nil {
		g.queryFail(err)
		return
	}
	cost := costGet
	if sel.has("keyCredentials") {
		cost += costKeyCredentials
	}
	if !g.admit(cost, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		a, rp := g.readableApp(t, key)
		if rp != nil {
			return *rp
		}
		ctx := graphMetadata + "applications/$entity"
		if sel != nil {
			ctx = selectContext(graphMetadata+"applications", sel) + "/$entity"
		}
		body := append(jsonObj{{"@odata.context", ctx}}, renderSelected(t, a, sel, true)...)
		return okReply(http.StatusOK, body)
	})
}

// signInAudiences are the values Graph accepts.
var signInAudiences = []string{"AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"}

// isMultiTenant reports whether other tenants may instantiate the app.
func isMultiTenant(a *core.Application) bool {
	return a.SignInAudience == "AzureADMultipleOrgs" || a.SignInAudience == "AzureADandPersonalMicrosoftAccount"
}

// createApplication serves POST /applications. Like Entra, an app created by
// an OwnedBy caller gets that caller as its owner, or it could never manage
// it again.
func (g *graphCall) createApplication() {
	if !g.acc.canCreate() {
		g.deny()
		return
	}
	var in struct {
		DisplayName    string   `json:"displayName"`
		SignInAudience string   `json:"signInAudience"`
		Tags           []string `json:"tags"`
	}
	if !g.decode(&in, false) {
		return
	}
	if strings.TrimSpace(in.DisplayName) == "" {
		g.fail(http.StatusBadRequest, codeBadRequest, "Property 'displayName' is required.")
		return
	}
	if in.SignInAudience == "" {
		in.SignInAudience = "AzureADMyOrg"
	}
	if !slices.Contains(signInAudiences, in.SignInAudience) {
		g.fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Invalid value '%s' for signInAudience.", in.SignInAudience))
		return
	}
	if !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		a := &core.Application{
			ObjectID: uuid.NewString(), AppID: uuid.NewString(),
			DisplayName: in.DisplayName, SignInAudience: in.SignInAudience,
			CreatedDateTime: g.s.Clock().Now().UTC().Truncate(time.Second),
			Tags:            append([]string{}, in.Tags...),
		}
		if !g.acc.writeAll {
			a.Owners = []string{g.caller.ObjectID}
		}
		t.AddApp(a)
		g.s.Logger().Debug("graph: application created", "tenant", t.ID, "app", a.AppID, "by", g.caller.AppID)
		body := append(jsonObj{{"@odata.context", graphMetadata + "applications/$entity"}}, renderApp(t, a, false)...)
		return okReply(http.StatusCreated, body)
	})
}

func (g *graphCall) deleteApplication(key string) {
	if !g.requireAny() || !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		a, rp := g.writableApp(t, key)
		if rp != nil {
			return *rp
		}
		t.RemoveApp(a.ObjectID)
		g.s.Logger().Debug("graph: application deleted", "tenant", t.ID, "app", a.AppID, "by", g.caller.AppID)
		return noContentReply
	})
}

// patchApplication serves PATCH /applications/{id}. Every change is
// validated before any is applied, so a refused PATCH changes nothing.
func (g *graphCall) patchApplication(key string) {
	if !g.requireAny() {
		return
	}
	var body map[string]json.RawMessage
	if !g.decode(&body, false) {
		return
	}
	var (
		displayName, audience *string
		tags                  *[]string
		keysIn                *[]keyCredentialIn
	)
	for k, raw := range body {
		var err error
		switch k {
		case "displayName":
			var s string
			if err = json.Unmarshal(raw, &s); err == nil && strings.TrimSpace(s) == "" {
				err = errors.New("empty")
			}
			displayName = &s
		case "signInAudience":
			var s string
			if err = json.Unmarshal(raw, &s); err == nil && !slices.Contains(signInAudiences, s) {
				err = errors.New("unknown audience")
			}
			audience = &s
		case "tags":
			var ts []string
			err = json.Unmarshal(raw, &ts)
			tags = &ts
		case "keyCredentials":
			// null would silently drop every certificate: refuse it; an
			// empty array says so explicitly.
			var ks []keyCredentialIn
			if err = json.Unmarshal(raw, &ks); err == nil && ks == nil {
				err = errors.New("null")
			}
			keysIn = &ks
		case "passwordCredentials":
			g.fail(http.StatusBadRequest, codeBadRequest,
				"Property 'passwordCredentials' cannot be updated with PATCH; use the addPassword and removePassword actions.")
			return
		case "@odata.type":
			continue
		default:
			g.fail(http.StatusBadRequest, codeBadRequest,
				fmt.Sprintf("Property '%s' does not exist on type '%s' or cannot be updated in the simulator.", k, appType))
			return
		}
		if err != nil {
			g.fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Invalid value for property '%s'.", k))
			return
		}
	}
	if !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		a, rp := g.writableApp(t, key)
		if rp != nil {
			return *rp
		}
		var keys []*core.Key
		if keysIn != nil {
			var rp *reply
			if keys, rp = g.replaceKeys(t, a, *keysIn); rp != nil {
				return *rp
			}
		}
		if displayName != nil {
			a.DisplayName = *displayName
		}
		if audience != nil {
			a.SignInAudience = *audience
		}
		if tags != nil {
			a.Tags = append([]string{}, (*tags)...)
		}
		if keysIn != nil {
			a.Keys = keys
			g.s.Logger().Debug("graph: keyCredentials replaced", "tenant", t.ID, "app", a.AppID, "keys", len(keys), "by", g.caller.AppID)
		}
		return noContentReply
	})
}

// replaceKeys computes the new keyCredentials collection from a PATCH. An
// entry naming an existing keyId without key keeps that key; one that
// re-sends the same certificate under its keyId keeps it too (so its
// replication clock does not restart); anything else must carry a
// certificate and is a new key, subject to the tenant's key lifetime policy.
func (g *graphCall) replaceKeys(t *core.Tenant, a *core.Application, in []keyCredentialIn) ([]*core.Key, *reply) {
	now := g.s.Clock().Now().UTC()
	existing := make(map[string]*core.Key, len(a.Keys))
	for _, k := range a.Keys {
		existing[strings.ToLower(k.KeyID)] = k
	}
	seen := map[string]bool{}
	out := make([]*core.Key, 0, len(in))
	for i, kin := range in {
		id := ""
		if kin.KeyID != nil {
			id = strings.ToLower(*kin.KeyID)
		}
		if id != "" {
			if seen[id] {
				rp := errReply(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("keyCredentials[%d]: keyId '%s' appears more than once.", i, id))
				return nil, &rp
			}
			seen[id] = true
		}
		old := existing[id]
		if kin.Key == nil || *kin.Key == "" {
			if old == nil {
				rp := errReply(http.StatusBadRequest, codeBadRequest,
					fmt.Sprintf("keyCredentials[%d]: no key credential with keyId '%s' exists; a new key credential must carry 'key'.", i, id))
				return nil, &rp
			}
			out = append(out, old)
			continue
		}
		k, err := newKey(kin, uuid.NewString)
		if err != nil {
			rp := errReply(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("keyCredentials[%d]: %s", i, err.Error()))
			return nil, &rp
		}
		if old != nil && string(old.ThumbprintSHA1) == string(k.ThumbprintSHA1) {
			out = append(out, old)
			continue
		}
		if rp := policyReply(checkKeyLifetime(t.Policy, k.Start, k.End)); rp != nil {
			return nil, rp
		}
		k.AddedAt = now
		out = append(out, k)
	}
	return out, nil
}

// policyReply renders a policy violation as Graph's error, nil for nil.
func policyReply(err error) *reply {
	var v *policyViolation
	if !errors.As(err, &v) {
		return nil
	}
	rp := errReply(http.StatusBadRequest, codePolicy, v.Error(), graphDetail{Code: "InvalidKeyEndDate", Target: "EndDate"})
	return &rp
}

// addPassword serves POST /applications/{id}/addPassword. The secret is
// returned once and kept only as a hash.
func (g *graphCall) addPassword(key string) {
	if !g.requireAny() {
		return
	}
	var in struct {
		PasswordCredential *struct {
			DisplayName   *string `json:"displayName"`
			StartDateTime *string `json:"startDateTime"`
			EndDateTime   *string `json:"endDateTime"`
		} `json:"passwordCredential"`
	}
	if !g.decode(&in, true) {
		return
	}
	now := g.s.Clock().Now().UTC()
	start, end := now.Truncate(time.Second), time.Time{}
	displayName := ""
	if pc := in.PasswordCredential; pc != nil {
		if pc.DisplayName != nil {
			displayName = *pc.DisplayName
		}
		if pc.StartDateTime != nil && *pc.StartDateTime != "" {
			t, err := parseGraphTime(*pc.StartDateTime)
			if err != nil {
				g.fail(http.StatusBadRequest, codeBadRequest, "Invalid value for 'startDateTime'.")
				return
			}
			start = t
		}
		if pc.EndDateTime != nil && *pc.EndDateTime != "" {
			t, err := parseGraphTime(*pc.EndDateTime)
			if err != nil {
				g.fail(http.StatusBadRequest, codeBadRequest, "Invalid value for 'endDateTime'.")
				return
			}
			end = t
		}
	}
	if end.IsZero() {
		end = start.Add(defaultPasswordLifetime)
	}
	if !end.After(start) {
		g.fail(http.StatusBadRequest, codeBadRequest, "Password credential end date must be after its start date.",
			graphDetail{Code: "InvalidKeyEndDate", Target: "EndDate"})
		return
	}
	if !g.admit(costWrite, true) {
		return
	}
	secret, err := core.NewSecretText()
	if err != nil {
		g.s.Logger().Error("graph: generate secret", "err", err)
		g.fail(http.StatusInternalServerError, "UnknownError", "The simulator could not generate a secret.")
		return
	}
	g.write(func(t *core.Tenant) reply {
		a, rp := g.writableApp(t, key)
		if rp != nil {
			return *rp
		}
		if rp := policyReply(checkPasswordLifetime(t.Policy, start, end)); rp != nil {
			return *rp
		}
		if n := passwordLimit(a.SignInAudience); n > 0 && len(a.Passwords) >= n {
			return errReply(http.StatusBadRequest, codeBadRequest, "You can only add a maximum of 2 encrypted credentials.")
		}
		p := &core.Password{
			KeyID: uuid.NewString(), DisplayName: displayName, Hint: secret[:3],
			Start: start, End: end, SecretHash: core.HashSecret(secret), AddedAt: now,
		}
		a.Passwords = append(a.Passwords, p)
		if f := g.s.onSecretIssued; f != nil {
			f(t.ID, a.ObjectID, p.KeyID, secret)
		}
		g.s.Logger().Debug("graph: password added", "tenant", t.ID, "app", a.AppID, "keyId", p.KeyID, "by", g.caller.AppID)
		body := append(jsonObj{{"@odata.context", graphMetadata + "microsoft.graph.passwordCredential"}}, renderPassword(p, &secret)...)
		return okReply(http.StatusOK, body)
	})
}

// keyIDIn reads the keyId of removePassword and removeKey.
func keyIDIn(raw string) (string, bool) {
	if !isGUID(raw) {
		return "", false
	}
	return strings.ToLower(raw), true
}

// removeCredential is the common part of removePassword and removeKey: it
// reads {"keyId", "proof"}, checks the keyId is a GUID, charges a write and
// then, under the write lock, calls remove with the app (which the caller
// may write) and the lower-cased keyId. removePassword has no proof
// parameter and ignores it (a "proof" that is not a string is still a 400,
// like any ill-typed property).
func (g *graphCall) removeCredential(key string, remove func(t *core.Tenant, a *core.Application, id, proof string) reply) {
	if !g.requireAny() {
		return
	}
	var in struct {
		KeyID string `json:"keyId"`
		Proof string `json:"proof"`
	}
	if !g.decode(&in, false) {
		return
	}
	id, ok := keyIDIn(in.KeyID)
	if !ok {
		g.fail(http.StatusBadRequest, codeBadRequest, "Property 'keyId' must be a GUID.")
		return
	}
	if !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		a, rp := g.writableApp(t, key)
		if rp != nil {
			return *rp
		}
		return remove(t, a, id, in.Proof)
	})
}

// removePassword serves POST /applications/{id}/removePassword.
func (g *graphCall) removePassword(key string) {
	g.removeCredential(key, func(t *core.Tenant, a *core.Application, id, _ string) reply {
		i := slices.IndexFunc(a.Passwords, func(p *core.Password) bool { return strings.EqualFold(p.KeyID, id) })
		if i < 0 {
			return notFoundReply(id)
		}
		a.Passwords = slices.Delete(slices.Clone(a.Passwords), i, i+1)
		g.s.Logger().Debug("graph: password removed", "tenant", t.ID, "app", a.AppID, "keyId", id, "by", g.caller.AppID)
		return noContentReply
	})
}

// proofReply renders a refused proof.
func proofReply(err error) reply {
	if errors.Is(err, errNoValidCertificate) {
		return errReply(http.StatusBadRequest, codeBadRequest, msgNoValidCertificate)
	}
	var pe *proofError
	if errors.As(err, &pe) {
		return errReply(http.StatusBadRequest, codeProof, pe.msg)
	}
	return errReply(http.StatusBadRequest, codeProof, "The proof of possession could not be validated.")
}

// addKey serves POST /applications/{id}/addKey: a new certificate, allowed
// only with a proof signed by a certificate the app already trusts.
func (g *graphCall) addKey(key string) {
	if !g.requireAny() {
		return
	}
	var in struct {
		KeyCredential      *keyCredentialIn `json:"keyCredential"`
		PasswordCredential json.RawMessage  `json:"passwordCredential"`
		Proof              string           `json:"proof"`
	}
	if !g.decode(&in, false) {
		return
	}
	if len(in.PasswordCredential) > 0 && string(in.PasswordCredential) != "null" {
		g.fail(http.StatusBadRequest, codeBadRequest, "The simulator's addKey adds certificates only: 'passwordCredential' must be null.")
		return
	}
	if in.KeyCredential == nil {
		g.fail(http.StatusBadRequest, codeBadRequest, "Property 'keyCredential' is required.")
		return
	}
	in.KeyCredential.KeyID = nil // Graph assigns the keyId.
	k, err := newKey(*in.KeyCredential, uuid.NewString)
	if err != nil {
		g.fail(http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	if !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		a, rp := g.writableApp(t, key)
		if rp != nil {
			return *rp
		}
		now := g.s.Clock().Now().UTC()
		if _, err := validateProof(in.Proof, a, now); err != nil {
			return proofReply(err)
		}
		for _, old := range a.Keys {
			if string(old.ThumbprintSHA1) == string(k.ThumbprintSHA1) {
				return errReply(http.StatusBadRequest, codeBadRequest, "The certificate is already a key credential of this application.")
			}
		}
		if rp := policyReply(checkKeyLifetime(t.Policy, k.Start, k.End)); rp != nil {
			return *rp
		}
		k.AddedAt = now
		a.Keys = append(a.Keys, k)
		g.s.Logger().Debug("graph: key added", "tenant", t.ID, "app", a.AppID, "keyId", k.KeyID, "by", g.caller.AppID)
		body := append(jsonObj{{"@odata.context", graphMetadata + "microsoft.graph.keyCredential"}}, renderKey(k, false)...)
		return okReply(http.StatusOK, body)
	})
}

// removeKey serves POST /applications/{id}/removeKey with the same proof.
func (g *graphCall) removeKey(key string) {
	g.removeCredential(key, func(t *core.Tenant, a *core.Application, id, proof string) reply {
		i := slices.IndexFunc(a.Keys, func(k *core.Key) bool { return strings.EqualFold(k.KeyID, id) })
		if i < 0 {
			return notFoundReply(id)
		}
		if _, err := validateProof(proof, a, g.s.Clock().Now().UTC()); err != nil {
			return proofReply(err)
		}
		a.Keys = slices.Delete(slices.Clone(a.Keys), i, i+1)
		g.s.Logger().Debug("graph: key removed", "tenant", t.ID, "app", a.AppID, "keyId", id, "by", g.caller.AppID)
		return noContentReply
	})
}

// renderOwner renders a directory object id as Graph's owners do: a
// service principal when the tenant has it, otherwise a user (the
// simulator does not model users beyond their id).
func renderOwner(t *core.Tenant, id string) jsonObj {
	if sp := t.SPs[id]; sp != nil {
		return jsonObj{
			{"@odata.type", "#microsoft.graph.servicePrincipal"},
			{"id", sp.ObjectID},
			{"appId", sp.AppID},
			{"displayName", sp.DisplayName},
			{"servicePrincipalType", spTypeOf(sp)},
		}
	}
	return jsonObj{{"@odata.type", "#microsoft.graph.user"}, {"id", id}, {"displayName", nil}}
}

func (g *graphCall) listOwners(key string) {
	if !g.requireAny() || !g.admit(costGet, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		a, rp := g.readableApp(t, key)
		if rp != nil {
			return *rp
		}
		items := make([]jsonObj, 0, len(a.Owners))
		for _, o := range a.Owners {
			items = append(items, renderOwner(t, o))
		}
		return okReply(http.StatusOK, jsonObj{{"@odata.context", graphMetadata + "directoryObjects"}, {"value", items}})
	})
}

// directoryObjectRE takes the object id from an @odata.id reference.
var directoryObjectRE = regexp.MustCompile(`/(?:directoryObjects|servicePrincipals|users)/([0-9a-fA-F-]{36})/?$`)

// addOwner serves POST /applications/{id}/owners/$ref. Adding owners is
// Application.ReadWrite.All's: OwnedBy cannot grant itself or others more.
func (g *graphCall) addOwner(key string) {
	if !g.requireAny() {
		return
	}
	var in struct {
		ODataID string `json:"@odata.id"`
	}
	if !g.decode(&in, false) {
		return
	}
	m := directoryObjectRE.FindStringSubmatch(in.ODataID)
	if m == nil {
		g.fail(http.StatusBadRequest, codeBadRequest, "Invalid '@odata.id': expected a URL ending in /directoryObjects/{id}.")
		return
	}
	owner := strings.ToLower(m[1])
	if !isGUID(owner) {
		g.fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Invalid object identifier '%s'.", m[1]))
		return
	}
	if !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		a, rp := findApp(t, key)
		if rp != nil {
			return *rp
		}
		if !g.acc.writeAll {
			return deniedReply
		}
		if a.OwnedBy(owner) {
			return errReply(http.StatusBadRequest, codeBadRequest,
				"One or more added object references already exist for the following modified properties: 'owners'.")
		}
		a.Owners = append(slices.Clone(a.Owners), owner)
		g.s.Logger().Debug("graph: owner added", "tenant", t.ID, "app", a.AppID, "owner", owner, "by", g.caller.AppID)
		return noContentReply
	})
}

// removeOwner serves DELETE /applications/{id}/owners/{oid}/$ref.
func (g *graphCall) removeOwner(key, owner string) {
	if !g.requireAny() || !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		a, rp := findApp(t, key)
		if rp != nil {
			return *rp
		}
		if !g.acc.writeAll {
			return deniedReply
		}
		i := slices.IndexFunc(a.Owners, func(o string) bool { return strings.EqualFold(o, owner) })
		if i < 0 {
			return notFoundReply(owner)
		}
		a.Owners = slices.Delete(slices.Clone(a.Owners), i, i+1)
		g.s.Logger().Debug("graph: owner removed", "tenant", t.ID, "app", a.AppID, "owner", owner, "by", g.caller.AppID)
		return noContentReply
	})
}

// Federated identity credential limits, as documented for Graph.
const (
	maxFICsPerApp = 20
	maxFICName    = 120
	maxFICField   = 600
)

// ficNameRE: letters, digits, '-' and '_', starting with a letter or digit.
var ficNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func renderFIC(f *core.FederatedCredential) jsonObj {
	return jsonObj{
		{"id", f.ID},
		{"name", f.Name},
		{"issuer", f.Issuer},
		{"subject", f.Subject},
		{"description", nullable(f.Description)},
		{"audiences", append([]string{}, f.Audiences...)},
	}
}

func (g *graphCall) listFICs(key string) {
	if !g.requireAny() || !g.admit(costGet, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		a, rp := g.readableApp(t, key)
		if rp != nil {
			return *rp
		}
		items := make([]jsonObj, 0, len(a.FICs))
		for _, f := range a.FICs {
			items = append(items, renderFIC(f))
		}
		ctx := fmt.Sprintf("%sapplications('%s')/federatedIdentityCredentials", graphMetadata, a.ObjectID)
		return okReply(http.StatusOK, jsonObj{{"@odata.context", ctx}, {"value", items}})
	})
}

// findFIC finds a federated credential by id or by name (Graph accepts both).
func findFIC(a *core.Application, ref string) int {
	return slices.IndexFunc(a.FICs, func(f *core.FederatedCredential) bool {
		return strings.EqualFold(f.ID, ref) || f.Name == ref
	})
}

func (g *graphCall) getFIC(key, ref string) {
	if !g.requireAny() || !g.admit(costGet, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		a, rp := g.readableApp(t, key)
		if rp != nil {
			return *rp
		}
		i := findFIC(a, ref)
		if i < 0 {
			return notFoundReply(ref)
		}
		ctx := fmt.Sprintf("%sapplications('%s')/federatedIdentityCredentials/$entity", graphMetadata, a.ObjectID)
		return okReply(http.StatusOK, append(jsonObj{{"@odata.context", ctx}}, renderFIC(a.FICs[i])...))
	})
}

// addFIC serves POST /applications/{id}/federatedIdentityCredentials.
func (g *graphCall) addFIC(key string) {
	if !g.requireAny() {
		return
	}
	var in struct {
		Name        string   `json:"name"`
		Issuer      string   `json:"issuer"`
		Subject     string   `json:"subject"`
		Audiences   []string `json:"audiences"`
		Description string   `json:"description"`
	}
	if !g.decode(&in, false) {
		return
	}
	switch {
	case in.Name == "" || len(in.Name) > maxFICName || !ficNameRE.MatchString(in.Name):
		g.fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf(
			"Property 'name' is required, at most %d characters of letters, digits, '-' and '_', starting with a letter or digit.", maxFICName))
		return
	case in.Issuer == "" || len(in.Issuer) > maxFICField:
		g.fail(http.StatusBadRequest, codeBadRequest, "Property 'issuer' is required (at most 600 characters).")
		return
	case in.Subject == "" || len(in.Subject) > maxFICField:
		g.fail(http.StatusBadRequest, codeBadRequest, "Property 'subject' is required (at most 600 characters).")
		return
	case len(in.Audiences) != 1 || in.Audiences[0] == "" || len(in.Audiences[0]) > maxFICField:
		g.fail(http.StatusBadRequest, codeBadRequest, "Property 'audiences' must hold exactly one audience (e.g. 'api://AzureADTokenExchange').")
		return
	}
	if !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		a, rp := g.writableApp(t, key)
		if rp != nil {
			return *rp
		}
		if len(a.FICs) >= maxFICsPerApp {
			return errReply(http.StatusBadRequest, codeBadRequest,
				fmt.Sprintf("The application already has the maximum of %d federated identity credentials.", maxFICsPerApp))
		}
		for _, f := range a.FICs {
			if strings.EqualFold(f.Name, in.Name) {
				return errReply(http.StatusConflict, codeConflict, fmt.Sprintf("A federated identity credential named '%s' already exists.", in.Name))
			}
			if f.Issuer == in.Issuer && f.Subject == in.Subject {
				return errReply(http.StatusConflict, codeConflict, "A federated identity credential with the same issuer and subject already exists.")
			}
		}
		f := &core.FederatedCredential{
			ID: uuid.NewString(), Name: in.Name, Issuer: in.Issuer, Subject: in.Subject,
			Audiences: append([]string{}, in.Audiences...), Description: in.Description,
		}
		a.FICs = append(slices.Clone(a.FICs), f)
		g.s.Logger().Debug("graph: federated credential added", "tenant", t.ID, "app", a.AppID, "name", f.Name, "by", g.caller.AppID)
		ctx := fmt.Sprintf("%sapplications('%s')/federatedIdentityCredentials/$entity", graphMetadata, a.ObjectID)
		return okReply(http.StatusCreated, append(jsonObj{{"@odata.context", ctx}}, renderFIC(f)...))
	})
}

func (g *graphCall) deleteFIC(key, ref string) {
	if !g.requireAny() || !g.admit(costWrite, true) {
		return
	}
	g.write(func(t *core.Tenant) reply {
		a, rp := g.writableApp(t, key)
		if rp != nil {
			return *rp
		}
		i := findFIC(a, ref)
		if i < 0 {
			return notFoundReply(ref)
		}
		name := a.FICs[i].Name
		a.FICs = slices.Delete(slices.Clone(a.FICs), i, i+1)
		g.s.Logger().Debug("graph: federated credential removed", "tenant", t.ID, "app", a.AppID, "name", name, "by", g.caller.AppID)
		return noContentReply
	})
}
