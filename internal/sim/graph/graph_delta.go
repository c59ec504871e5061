package graph

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file serves GET /applications/delta, Graph's change tracking.
//
// The simulator's handlers and its tests change applications in place
// (World.Update), so changes are not logged as they happen. Instead a
// tracker per tenant keeps, for every application, a fingerprint of each
// tracked property and the revision at which it last changed, and brings
// itself up to date by comparing with the directory whenever a round of
// change tracking starts. A delta token names a revision: a later round
// reports the applications with a property changed after it, and the
// applications removed after it. Owners are a navigation property and are
// not tracked, as in Graph ("navigation properties are not supported").
//
// Tokens are opaque: JSON with the tenant, the round's $select and
// revisions, sealed with an HMAC under a key made when the service starts,
// so a token from another tenant or an earlier simulator (which reseeded)
// is refused like an expired one rather than misread.

const (
	// deltaPageSize is how many entries a delta page holds. Graph does
	// not document it and does not take $top on delta for directory
	// objects; 200 makes a 2,000-app round take ten pages.
	deltaPageSize = 200
	// deltaTokenLifetime is how long Graph keeps the change state of
	// directory objects: an older delta link is refused.
	deltaTokenLifetime = 7 * 24 * time.Hour
	// deltaTokenPrefix versions the token format.
	deltaTokenPrefix = "RFNkbHQ6"

	codeSyncStateNotFound = "syncStateNotFound"
	msgSyncStateNotFound  = "The sync state generation is not found. The delta token is expired and data must be synchronized again."
)

// deltaProps are the application properties change tracking follows, in
// appProps' spelling. The others the simulator renders never change
// (id, deletedDateTime, description, publisherDomain).
var deltaProps = []string{"appId", "createdDateTime", "displayName", "signInAudience", "tags", "keyCredentials", "passwordCredentials"}

const nDeltaProps = 7

// deltaTracker holds the change state of every tenant that has been asked
// for changes.
type deltaTracker struct {
	mu      sync.Mutex
	key     []byte // seals tokens
	seed    maphash.Seed
	tenants map[string]*tenantChanges
}

func (d *deltaTracker) init() {
	d.key = make([]byte, 32)
	_, _ = rand.Read(d.key) // crypto/rand does not fail on supported platforms
	d.seed = maphash.MakeSeed()
	d.tenants = map[string]*tenantChanges{}
}

// tenantChanges is one tenant's change state.
type tenantChanges struct {
	rev     uint64
	apps    map[string]*trackedApp
	removed []removedApp // in revision order
	mark    uint64       // refresh generation, to find apps that are gone
}

// trackedApp is what the tracker knows of one application: when it was
// first seen, and per tracked property a fingerprint and the revision of
// its last change.
type trackedApp struct {
	added uint64
	fps   [nDeltaProps]uint64
	revs  [nDeltaProps]uint64
	mark  uint64
	// owners as last seen, so that a removal is reported only to callers
	// that could see the application.
	owners []string
}

// removedApp is an application that left the directory, with its owners
// then (an OwnedBy caller is told only of the applications it could see).
type removedApp struct {
	id     string
	rev    uint64
	at     time.Time
	owners []string
}

// refresh brings the tenant's change state up to date with the directory
// and returns it. Callers hold the world's lock (read suffices) and none
// of d.mu.
func (d *deltaTracker) refresh(t *core.Tenant, now time.Time) *tenantChanges {
	tc := d.tenants[t.ID]
	if tc == nil {
		tc = &tenantChanges{apps: make(map[string]*trackedApp, len(t.Apps))}
		d.tenants[t.ID] = tc
	}
	tc.mark++
	var h maphash.Hash
	h.SetSeed(d.seed)
	var fps [nDeltaProps]uint64
	var rev uint64 // this refresh's revision, taken when something changed
	bump := func() uint64 {
		if rev == 0 {
			tc.rev++
			rev = tc.rev
		}
		return rev
	}
	for _, a := range t.Apps {
		fingerprint(&h, a, &fps)
		e := tc.apps[a.ObjectID]
		if e == nil {
			r := bump()
			e = &trackedApp{added: r, fps: fps}
			for i := range e.revs {
				e.revs[i] = r
			}
			tc.apps[a.ObjectID] = e
		} else {
			for i := range fps {
				if e.fps[i] != fps[i] {
					e.fps[i], e.revs[i] = fps[i], bump()
				}
			}
		}
		e.mark, e.owners = tc.mark, a.Owners
	}
	// Every live app is tracked and marked now, so more tracked than live
	// apps means some were removed since the last refresh.
	if len(tc.apps) > len(t.Apps) {
		for id, e := range tc.apps {
			if e.mark == tc.mark {
				continue
			}
			delete(tc.apps, id)
			tc.removed = append(tc.removed, removedApp{id: id, rev: bump(), at: now, owners: e.owners})
		}
	}
	// Nobody can ask for removals older than a delta link lives.
	cut := sort.Search(len(tc.removed), func(i int) bool { return now.Sub(tc.removed[i].at) < deltaTokenLifetime })
	if cut > 0 {
		tc.removed = slices.Delete(tc.removed, 0, cut)
	}
	return tc
}

// touch records the changes a Graph write just made to the applications
// it wrote, at once: refresh compares snapshots at the start of a round,
// so a change undone before the next round (a secret added, then removed
// behind rotor's back) would otherwise vanish, where Graph reports every
// change. Only tenants someone tracks, and applications already tracked
// (a new one is found by the next refresh). Callers hold the world's lock.
func (d *deltaTracker) touch(t *core.Tenant, apps []*core.Application) {
	if len(apps) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tc := d.tenants[t.ID]
	if tc == nil {
		return
	}
	var h maphash.Hash
	h.SetSeed(d.seed)
	var fps [nDeltaProps]uint64
	for _, a := range apps {
		e := tc.apps[a.ObjectID]
		if e == nil {
			continue
		}
		fingerprint(&h, a, &fps)
		var rev uint64
		for i := range fps {
			if e.fps[i] != fps[i] {
				if rev == 0 {
					tc.rev++
					rev = tc.rev
				}
				e.fps[i], e.revs[i] = fps[i], rev
			}
		}
	}
}

// fingerprint hashes each tracked property of a.
func fingerprint(h *maphash.Hash, a *core.Application, out *[nDeltaProps]uint64) {
	var b [8]byte
	str := func(s string) { _, _ = h.WriteString(s); _ = h.WriteByte(0) }
	tm := func(t time.Time) { binary.LittleEndian.PutUint64(b[:], uint64(t.UnixNano())); _, _ = h.Write(b[:]) }
	sum := func(i int, f func()) { h.Reset(); f(); out[i] = h.Sum64() }
	sum(0, func() { str(a.AppID) })
	sum(1, func() { tm(a.CreatedDateTime) })
	sum(2, func() { str(a.DisplayName) })
	sum(3, func() { str(a.SignInAudience) })
	sum(4, func() {
		for _, t := range a.Tags {
			str(t)
		}
	})
	sum(5, func() {
		for _, k := range a.Keys {
			str(k.KeyID)
			str(k.DisplayName)
			str(k.Type)
			str(k.Usage)
			tm(k.Start)
			tm(k.End)
			_, _ = h.Write(k.ThumbprintSHA1)
		}
	})
	sum(6, func() {
		for _, p := range a.Passwords {
			str(p.KeyID)
			str(p.DisplayName)
			str(p.Hint)
			tm(p.Start)
			tm(p.End)
		}
	})
}

// deltaToken is what a $deltatoken or $skiptoken carries.
type deltaToken struct {
	Tenant string   `json:"t"`
	Sel    []string `json:"s,omitempty"` // canonical $select; nil: every property
	// From and To bound the round: changes after From up to To. From 0
	// is the first round, which returns every application and no
	// removals.
	From uint64 `json:"f,omitempty"`
	To   uint64 `json:"u"`
	// Issued is when a delta link was made (Unix seconds, simulated
	// clock); it expires deltaTokenLifetime later.
	Issued int64 `json:"i,omitempty"`
	// Page position (skiptoken only): the next application by creation
	// sequence, then, once Removals is set, the next removal by revision.
	Seq      uint64 `json:"q,omitempty"`
	Removals bool   `json:"r,omitempty"`
	RemRev   uint64 `json:"v,omitempty"`
}

func (d *deltaTracker) seal(tok deltaToken) string {
	payload, _ := json.Marshal(tok) // plain fields cannot fail
	mac := hmac.New(sha256.New, d.key)
	mac.Write(payload)
	return deltaTokenPrefix + base64.RawURLEncoding.EncodeToString(append(payload, mac.Sum(nil)[:16]...))
}

func (d *deltaTracker) open(s string) (deltaToken, bool) {
	var tok deltaToken
	rest, ok := strings.CutPrefix(s, deltaTokenPrefix)
	if !ok {
		return tok, false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) < 17 {
		return tok, false
	}
	payload, sum := b[:len(b)-16], b[len(b)-16:]
	mac := hmac.New(sha256.New, d.key)
	mac.Write(payload)
	if !hmac.Equal(sum, mac.Sum(nil)[:16]) {
		return tok, false
	}
	if err := json.Unmarshal(payload, &tok); err != nil {
		return tok, false
	}
	return tok, true
}

// deltaLinkURL is this request's delta function URL with only the token.
func deltaLinkURL(r *http.Request, param, token string) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath() + "?" + param + "=" + url.QueryEscape(token)
}

// applicationsDelta serves GET /applications/delta.
func (g *graphCall) applicationsDelta() {
	if !g.requireAny() {
		return
	}
	q := g.r.URL.Query()
	for _, o := range []string{"$top", "$orderby", "$expand", "$search", "$count", "$skip", "$filter"} {
		if _, ok := q[o]; ok {
			g.fail(http.StatusBadRequest, codeUnsupportedQuery,
				fmt.Sprintf("Unsupported Query. The query option '%s' is not supported with delta in the simulator.", o))
			return
		}
	}
	dt, st := q.Get("$deltatoken"), q.Get("$skiptoken")
	if dt != "" && st != "" {
		g.fail(http.StatusBadRequest, codeBadRequest, "A request cannot carry both $deltatoken and $skiptoken.")
		return
	}
	tr := &g.s.delta
	var (
		tok    deltaToken
		start  bool // the first request of a round: bring the tracker up to date
		latest bool
	)
	switch {
	case st != "":
		if q.Has("$select") {
			g.fail(http.StatusBadRequest, codeBadRequest, "$select is given on the first request of a round only; the links carry it.")
			return
		}
		var ok bool
		if tok, ok = tr.open(st); !ok || tok.Tenant != g.caller.TenantID || tok.Issued != 0 {
			g.queryFail(errExpiredToken)
			return
		}
	case dt != "" && dt != "latest":
		if q.Has("$select") {
			g.fail(http.StatusBadRequest, codeBadRequest, "$select is given on the first request of a round only; the delta link carries it.")
			return
		}
		var ok bool
		tok, ok = tr.open(dt)
		now := g.s.Clock().Now()
		if !ok || tok.Tenant != g.caller.TenantID || tok.Issued == 0 || now.Sub(time.Unix(tok.Issued, 0)) > deltaTokenLifetime {
			g.fail(http.StatusBadRequest, codeSyncStateNotFound, msgSyncStateNotFound)
			return
		}
		tok = deltaToken{Tenant: tok.Tenant, Sel: tok.Sel, From: tok.To}
		start = true
	default:
		sel, err := parseSelect(q, appType, appProps)
		if err != nil {
			g.queryFail(err)
			return
		}
		tok = deltaToken{Tenant: g.caller.TenantID, Sel: sel}
		start, latest = true, dt == "latest"
	}
	sel := selection(tok.Sel)
	cost := costList
	if sel != nil {
		cost--
	}
	if sel.has("keyCredentials") {
		cost += costKeyCredentials
	}
	if !g.admit(cost, false) {
		return
	}
	g.read(func(t *core.Tenant) reply {
		now := g.s.Clock().Now()
		tr.mu.Lock()
		defer tr.mu.Unlock()
		var tc *tenantChanges
		if start {
			tc = tr.refresh(t, now)
			tok.To = tc.rev
		} else if tc = tr.tenants[t.ID]; tc == nil {
			return errReply(http.StatusBadRequest, errExpiredToken.code, errExpiredToken.msg)
		}
		body := jsonObj{{"@odata.context", selectContext(graphMetadata+"applications", sel)}}
		if latest {
			link := tr.seal(deltaToken{Tenant: tok.Tenant, Sel: tok.Sel, To: tok.To, Issued: now.Unix()})
			body = append(body, kv{"@odata.deltaLink", deltaLinkURL(g.r, "$deltatoken", link)}, kv{"value", []jsonObj{}})
			return okReply(http.StatusOK, body)
		}
		items, next := g.deltaPage(t, tc, &tok, sel)
		if next {
			body = append(body, kv{"@odata.nextLink", deltaLinkURL(g.r, "$skiptoken", tr.seal(tok))})
		} else {
			link := tr.seal(deltaToken{Tenant: tok.Tenant, Sel: tok.Sel, To: tok.To, Issued: now.Unix()})
			body = append(body, kv{"@odata.deltaLink", deltaLinkURL(g.r, "$deltatoken", link)})
		}
		body = append(body, kv{"value", items})
		return okReply(http.StatusOK, body)
	})
}

// deltaPage collects up to deltaPageSize entries of the round from the
// token's position, moves the position on, and reports whether more
// entries follow. Applications come first, in creation order, then
// removals in revision order.
func (g *graphCall) deltaPage(t *core.Tenant, tc *tenantChanges, tok *deltaToken, sel selection) ([]jsonObj, bool) {
	items := make([]jsonObj, 0, 16)
	inRound := func(r uint64) bool { return r > tok.From && r <= tok.To }
	if !tok.Removals {
		start := sort.Search(len(t.Apps), func(i int) bool { return t.Apps[i].Seq() >= tok.Seq })
		for i := start; i < len(t.Apps); i++ {
			a := t.Apps[i]
			e := tc.apps[a.ObjectID]
			if e == nil || !g.acc.canRead(a, g.caller) {
				continue // added since the round started: the next round has it
			}
			o, ok := deltaEntry(t, a, e, tok, sel, inRound)
			if !ok {
				continue
			}
			if len(items) == deltaPageSize {
				tok.Seq = a.Seq()
				return items, true
			}
			items = append(items, o)
		}
		tok.Removals, tok.Seq = true, 0
	}
	if tok.From == 0 {
		return items, false // the first round reports no removals
	}
	start := sort.Search(len(tc.removed), func(i int) bool { return tc.removed[i].rev >= tok.RemRev })
	for _, r := range tc.removed[start:] {
		if !inRound(r.rev) || !(g.acc.readAll || (g.acc.owned && slices.Contains(r.owners, g.caller.ObjectID))) {
			continue
		}
		if len(items) == deltaPageSize {
			tok.RemRev = r.rev
			return items, true
		}
		items = append(items, jsonObj{{"id", r.id}, {"@removed", jsonObj{{"reason", "deleted"}}}})
	}
	return items, false
}

// deltaEntry renders one application for a round, if the round has it: in
// the first round every application with every selected property; later,
// an application added in the round likewise, and one changed in it with
// its id and only the selected properties that changed, as Graph may send
// them ("at least the properties that have been updated"). Applications
// the round does not have are not rendered at all: a round after an
// unchanged hour walks 100,000 applications.
func deltaEntry(t *core.Tenant, a *core.Application, e *trackedApp, tok *deltaToken, sel selection, inRound func(uint64) bool) (jsonObj, bool) {
	if e.added > tok.To {
		return nil, false // first seen after the round started: the next round has it
	}
	if tok.From == 0 || inRound(e.added) {
		return renderSelected(t, a, sel, false), true
	}
	var changed [nDeltaProps]bool
	anyChanged := false
	for i, p := range deltaProps {
		if inRound(e.revs[i]) && (sel == nil || sel.has(p)) {
			changed[i], anyChanged = true, true
		}
	}
	if !anyChanged {
		return nil, false
	}
	out := jsonObj{{"id", a.ObjectID}}
	for _, m := range renderSelected(t, a, sel, false) {
		if i := slices.Index(deltaProps, m.k); i >= 0 && changed[i] {
			out = append(out, m)
		}
	}
	return out, true
}
