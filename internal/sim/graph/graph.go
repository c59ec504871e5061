// Package graph is the simulated Microsoft Graph v1.0 for applications:
// list and get with $select/$filter/$top/$count and stable paging, change
// tracking (delta) with opaque tokens that expire after seven days,
// passwords and keys (with proof of possession), owners, service
// principals, federated credentials, $batch, the tenant's app management
// policy, permissions from the token's roles, and Graph's per app+tenant
// throttling.
package graph

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// This file is the Microsoft Graph v1.0 front door: routing, the caller's
// permissions, and Graph's response envelope (request ids and error shape).
// The handlers themselves live in graph_apps.go, graph_sp.go, graph_batch.go
// and graph_delta.go (change tracking); $filter in graph_filter.go; paging
// and $select in graph_paging.go; app management policy and
// proof-of-possession in graph_policy.go.

const (
	// graphBasePath is where graphHandler is mounted.
	graphBasePath = "/graph/v1.0"
	// graphMetadata prefixes every @odata.context: Graph always names its
	// public host there, whatever host served the request.
	graphMetadata = "https://graph.microsoft.com/v1.0/$metadata#"
	// graphJSON is Graph's JSON content type; clients must accept parameters.
	graphJSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
	// maxGraphBody bounds request bodies; Graph's own limit is 4 MB.
	maxGraphBody = 4 << 20
)

// Request costs in Graph's resource units, charged through admitGraph. They
// follow the identity-and-access throttling table: a list costs 2, $select
// takes one off; asking for keyCredentials (with the key material) is the
// expensive read, which Graph throttles harder.
const (
	costList           = 2
	costGet            = 1
	costWrite          = 1
	costKeyCredentials = 5
)

// Graph error codes the simulator answers with.
const (
	codeInvalidToken     = "InvalidAuthenticationToken"
	codeDenied           = "Authorization_RequestDenied"
	codeBadRequest       = "Request_BadRequest"
	codeConcurrency      = "Directory_ConcurrencyViolation"
	codeNotFound         = "Request_ResourceNotFound"
	codeUnsupportedQuery = "Request_UnsupportedQuery"
	codeConflict         = "Request_MultipleObjectsWithSameKeyValue"
	// codeProof is what Graph answers for a refused proof-of-possession
	// token (observed in the wild with "Access Token missing or malformed.");
	// the simulator keeps the code and says precisely what was wrong.
	codeProof       = "Authentication_MissingOrMalformed"
	codePolicy      = "CredentialInvalidLifetimeAsPerAppPolicy"
	msgDenied       = "Insufficient privileges to complete the operation."
	msgMethodDenied = "Specified HTTP method is not allowed for the request target."
)

// graphError is Graph's error body.
type graphError struct {
	Error graphErrorBody `json:"error"`
}

type graphErrorBody struct {
	Code       string        `json:"code"`
	Message    string        `json:"message"`
	Details    []graphDetail `json:"details,omitempty"`
	InnerError graphInner    `json:"innerError"`
}

type graphDetail struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	Target  string `json:"target,omitempty"`
}

type graphInner struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id"`
}

// graphCall is one Graph request in flight: the request, its caller and the
// tenant it acts on. Handlers are methods on it so that the permission and
// error helpers need no plumbing.
type graphCall struct {
	s      *Service
	w      http.ResponseWriter
	r      *http.Request
	caller *core.Caller
	acc    access
	// inBatch is set for a request dispatched from $batch (no nesting).
	inBatch bool
	// written are the applications this call's write may change
	// (writableApp), for change tracking.
	written []*core.Application
}

// access is what the token's application permissions allow.
type access struct {
	readAll  bool // Application.Read.All or ReadWrite.All
	writeAll bool // Application.ReadWrite.All
	owned    bool // Application.ReadWrite.OwnedBy
}

func accessOf(c *core.Caller) access {
	return access{
		readAll:  c.HasRole(core.RoleReadAll) || c.HasRole(core.RoleReadWriteAll),
		writeAll: c.HasRole(core.RoleReadWriteAll),
		owned:    c.HasRole(core.RoleReadWriteOwned),
	}
}

// any reports whether the token carries any application permission at all.
func (a access) any() bool { return a.readAll || a.writeAll || a.owned }

// canRead: Read.All reads every app; OwnedBy alone reads only what it owns.
func (a access) canRead(app *core.Application, c *core.Caller) bool {
	return a.readAll || (a.owned && app.OwnedBy(c.ObjectID))
}

// canWrite: ReadWrite.All writes every app; OwnedBy only what it owns.
func (a access) canWrite(app *core.Application, c *core.Caller) bool {
	return a.writeAll || (a.owned && app.OwnedBy(c.ObjectID))
}

// canCreate: OwnedBy may create applications and service principals.
func (a access) canCreate() bool { return a.writeAll || a.owned }

// Service is the Graph service.
type Service struct {
	*core.Core
	buckets bucketSet
	// lastWrite is when each application (tenant/object id) was last
	// written, for FaultConfig.ConcurrencyWindow; guarded by the world
	// lock, under which every write runs.
	lastWrite map[string]time.Time
	// delta is the change state behind /applications/delta.
	delta deltaTracker
	// onSecretIssued, when set, sees every password addPassword hands out
	// (see sim.Options.OnSecretIssued).
	onSecretIssued func(tenantID, appObjectID, keyID, value string)
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

// New returns the Graph service. onSecretIssued may be nil.
func New(onSecretIssued func(tenantID, appObjectID, keyID, value string)) *Service {
	return &Service{onSecretIssued: onSecretIssued}
}

// Register serves Graph under /graph/ on the main listener.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	s.buckets.init()
	s.delta.init()
	r.Handle("/graph/", s.countGraph(s.WithFaults(s.writeUnavailable, s.graphHandler())))
	return nil
}

// Started publishes Graph's base URL and audience.
func (s *Service) Started(info *simfile.Info) error {
	info.GraphURL = info.AuthorityHost + "graph/v1.0"
	info.GraphAudience = core.GraphResource
	return nil
}

// graphHandler serves Graph v1.0 under /graph/v1.0/.
func (s *Service) graphHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveGraph(w, r, false)
	})
}

// serveGraph handles one Graph request; $batch calls it again per item with
// inBatch set.
func (s *Service) serveGraph(w http.ResponseWriter, r *http.Request, inBatch bool) {
	reqID := uuid.NewString()
	clientReqID := r.Header.Get("client-request-id")
	if clientReqID == "" {
		clientReqID = reqID
	}
	h := w.Header()
	h.Set("request-id", reqID)
	h.Set("client-request-id", clientReqID)
	h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"Simulator"}}`)
	g := &graphCall{s: s, w: w, r: r, inBatch: inBatch}

	caller, err := s.Authenticate(r, core.GraphResource)
	if err != nil {
		msg := "Access token validation failure. Invalid audience."
		var ae *core.AuthError
		if errors.As(err, &ae) && ae.Message != "" {
			msg = ae.Message
		}
		if r.Header.Get("Authorization") == "" {
			msg = "Access token is empty."
		}
		g.fail(http.StatusUnauthorized, codeInvalidToken, msg)
		return
	}
	g.caller = caller
	g.acc = accessOf(caller)
	g.route()
}

// route dispatches on the path below /graph/v1.0.
func (g *graphCall) route() {
	p := strings.TrimPrefix(g.r.URL.Path, graphBasePath)
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i, seg := range segs {
		// Bound functions and type casts may be qualified by the namespace
		// or its alias: msgraph-sdk-go sends ownedObjects/graph.application.
		segs[i] = strings.TrimPrefix(strings.TrimPrefix(seg, "microsoft.graph."), "graph.")
	}
	coll, altProp, altVal, ok := splitAltKey(segs[0])
	if !ok {
		g.fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Invalid key segment '%s'.", segs[0]))
		return
	}
	if altProp != "" {
		// /applications(appId='…')/rest → treat like /applications/{key}/rest.
		segs = append([]string{coll, altProp + "=" + altVal}, segs[1:]...)
	}
	m := g.r.Method
	switch segs[0] {
	case "$batch":
		if len(segs) != 1 {
			break
		}
		if g.inBatch {
			g.fail(http.StatusBadRequest, codeBadRequest, "A batch request cannot contain another batch request.")
			return
		}
		if !g.method(m, http.MethodPost) {
			return
		}
		g.batch()
		return
	case "applications":
		g.routeApplications(segs[1:])
		return
	case "servicePrincipals":
		g.routeServicePrincipals(segs[1:])
		return
	case "me":
		g.routeMe(segs[1:])
		return
	}
	g.fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Resource not found for the segment '%s'.", segs[0]))
}

func (g *graphCall) routeApplications(rest []string) {
	m := g.r.Method
	switch len(rest) {
	case 0:
		switch m {
		case http.MethodGet:
			g.listApplications()
		case http.MethodPost:
			g.createApplication()
		default:
			g.methodNotAllowed()
		}
		return
	case 1:
		if rest[0] == "delta" {
			if g.method(m, http.MethodGet) {
				g.applicationsDelta()
			}
			return
		}
		if rest[0] == "$count" {
			if g.method(m, http.MethodGet) {
				g.countApplications()
			}
			return
		}
		switch m {
		case http.MethodGet:
			g.getApplication(rest[0])
		case http.MethodPatch:
			g.patchApplication(rest[0])
		case http.MethodDelete:
			g.deleteApplication(rest[0])
		default:
			g.methodNotAllowed()
		}
		return
	}
	key, op := rest[0], rest[1]
	switch {
	case len(rest) == 2 && op == "addPassword":
		if g.method(m, http.MethodPost) {
			g.addPassword(key)
		}
	case len(rest) == 2 && op == "removePassword":
		if g.method(m, http.MethodPost) {
			g.removePassword(key)
		}
	case len(rest) == 2 && op == "addKey":
		if g.method(m, http.MethodPost) {
			g.addKey(key)
		}
	case len(rest) == 2 && op == "removeKey":
		if g.method(m, http.MethodPost) {
			g.removeKey(key)
		}
	case len(rest) == 2 && op == "owners":
		if g.method(m, http.MethodGet) {
			g.listOwners(key)
		}
	case len(rest) == 3 && op == "owners" && rest[2] == "$ref":
		if g.method(m, http.MethodPost) {
			g.addOwner(key)
		}
	case len(rest) == 4 && op == "owners" && rest[3] == "$ref":
		if g.method(m, http.MethodDelete) {
			g.removeOwner(key, rest[2])
		}
	case len(rest) == 2 && op == "federatedIdentityCredentials":
		switch m {
		case http.MethodGet:
			g.listFICs(key)
		case http.MethodPost:
			g.addFIC(key)
		default:
			g.methodNotAllowed()
		}
	case len(rest) == 3 && op == "federatedIdentityCredentials":
		switch m {
		case http.MethodGet:
			g.getFIC(key, rest[2])
		case http.MethodDelete:
			g.deleteFIC(key, rest[2])
		default:
			g.methodNotAllowed()
		}
	default:
		g.fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Resource not found for the segment '%s'.", op))
	}
}

func (g *graphCall) routeServicePrincipals(rest []string) {
	m := g.r.Method
	switch {
	case len(rest) == 0:
		switch m {
		case http.MethodGet:
			g.listServicePrincipals()
		case http.MethodPost:
			g.createServicePrincipal()
		default:
			g.methodNotAllowed()
		}
	case len(rest) == 1:
		if g.method(m, http.MethodGet) {
			g.getServicePrincipal(rest[0])
		}
	case (len(rest) == 2 || len(rest) == 3 && rest[2] == "application") && rest[1] == "ownedObjects":
		if g.method(m, http.MethodGet) {
			g.listOwnedObjects(rest[0])
		}
	default:
		g.fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf("Resource not found for the segment '%s'.", rest[len(rest)-1]))
	}
}

// altKeyRE matches an alternate-key segment such as applications(appId='…').
var altKeyRE = regexp.MustCompile(`^([A-Za-z]+)\((?:([A-Za-z]+)=)?'((?:[^']|'')*)'\)$`)

// splitAltKey splits "applications(appId='x')" into ("applications",
// "appId", "x"). A plain segment comes back unchanged with an empty prop.
// ('x') without a property name is the object-id key form.
func splitAltKey(seg string) (coll, prop, val string, ok bool) {
	if !strings.Contains(seg, "(") {
		return seg, "", "", true
	}
	m := altKeyRE.FindStringSubmatch(seg)
	if m == nil {
		return "", "", "", false
	}
	prop = m[2]
	if prop == "" {
		prop = "id"
	}
	switch {
	case strings.EqualFold(prop, "appId"):
		prop = "appId"
	case strings.EqualFold(prop, "id"):
		prop = "id"
	default:
		return "", "", "", false
	}
	return m[1], prop, strings.ReplaceAll(m[3], "''", "'"), true
}

// method checks the request method, answering 405 when it is not want.
func (g *graphCall) method(got, want string) bool {
	if got == want {
		return true
	}
	g.methodNotAllowed()
	return false
}

func (g *graphCall) methodNotAllowed() {
	g.fail(http.StatusMethodNotAllowed, codeBadRequest, msgMethodDenied)
}

// admit charges Graph's throttling bucket for this caller.
func (g *graphCall) admit(cost int, write bool) bool {
	return g.s.admitGraph(g.w, g.caller.TenantID, g.caller.AppID, cost, write)
}

// requireAny refuses a token without any application permission.
func (g *graphCall) requireAny() bool {
	if g.acc.any() {
		return true
	}
	g.deny()
	return false
}

func (g *graphCall) deny() { g.fail(http.StatusForbidden, codeDenied, msgDenied) }

// fail writes a Graph error.
func (g *graphCall) fail(status int, code, msg string, details ...graphDetail) {
	writeGraphError(g.w, g.s.Clock().Now().UTC().Format("2006-01-02T15:04:05"), status, code, msg, details...)
}

// writeGraphError writes Graph's error body. innerError.date has no zone
// suffix, as Graph's does.
func writeGraphError(w http.ResponseWriter, date string, status int, code, msg string, details ...graphDetail) {
	h := w.Header()
	body := graphError{Error: graphErrorBody{
		Code: code, Message: msg, Details: details,
		InnerError: graphInner{Date: date, RequestID: h.Get("request-id"), ClientRequestID: h.Get("client-request-id")},
	}}
	core.WriteJSON(w, status, graphJSON, body)
}

// ok writes a 2xx Graph JSON body.
func (g *graphCall) ok(status int, v any) { core.WriteJSON(g.w, status, graphJSON, v) }

// decode reads a JSON body into v. allowEmpty accepts a missing body (the
// actions whose parameters are all optional). It writes the 400 itself.
func (g *graphCall) decode(v any, allowEmpty bool) bool {
	// Kiota's default CompressionHandler gzips every request body (and only
	// falls back to plain on a 415), as Graph accepts.
	body := io.Reader(g.r.Body)
	switch enc := strings.ToLower(strings.TrimSpace(g.r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(g.r.Body)
		switch {
		case errors.Is(err, io.EOF):
			body = bytes.NewReader(nil)
		case err != nil:
			g.fail(http.StatusBadRequest, codeBadRequest, "The request body is not valid gzip.")
			return false
		default:
			defer zr.Close()
			body = zr
		}
	default:
		g.fail(http.StatusUnsupportedMediaType, codeBadRequest, fmt.Sprintf("Unsupported Content-Encoding '%s'.", enc))
		return false
	}
	b, err := io.ReadAll(io.LimitReader(body, maxGraphBody+1))
	if err != nil {
		g.fail(http.StatusBadRequest, codeBadRequest, "Could not read the request body.")
		return false
	}
	if len(b) > maxGraphBody {
		g.fail(http.StatusRequestEntityTooLarge, codeBadRequest, "The request body is too large.")
		return false
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return true
		}
		g.fail(http.StatusBadRequest, codeBadRequest, "Empty Payload. JSON content expected.")
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		g.fail(http.StatusBadRequest, codeBadRequest, "Invalid JSON payload: "+core.JSONErrorMessage(err))
		return false
	}
	return true
}

// uuidRE is the canonical GUID form directory object ids take.
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return uuidRE.MatchString(s) }

// jsonObj is a JSON object that keeps its keys in the given order, so that
// responses read like Graph's (id first, @odata annotations before data).
type jsonObj []kv

type kv struct {
	k string
	v any
}

// MarshalJSON writes the members in order. Keys, strings and nulls that
// need no escaping are written directly: a page of 999 applications is
// mostly those, and encoding/json's reflection per member was most of a
// listing's cost in the simulator.
func (o jsonObj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeJSONString(&b, m.k); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		switch v := m.v.(type) {
		case nil:
			b.WriteString("null")
		case string:
			if err := writeJSONString(&b, v); err != nil {
				return nil, err
			}
		default:
			enc, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("marshal %s: %w", m.k, err)
			}
			b.Write(enc)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeJSONString writes s as a JSON string, directly when it holds
// nothing encoding/json would escape, through it otherwise.
func writeJSONString(b *bytes.Buffer, s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			enc, err := json.Marshal(s)
			if err != nil {
				return err
			}
			b.Write(enc)
			return nil
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
	return nil
}

// reply is a handler's answer, computed while the world lock is held and
// written after it is released, so a slow client never holds the lock.
type reply struct {
	status  int
	body    []byte // marshalled JSON; nil for no body
	code    string // Graph error code when the reply is an error
	msg     string
	details []graphDetail
	// text is a plain-text body (for /$count).
	text string
}

// okReply marshals v (under the lock: it may reference live state).
func okReply(status int, v any) reply {
	if v == nil {
		return reply{status: status}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return errReply(http.StatusInternalServerError, "UnknownError", "The simulator could not encode the response.")
	}
	return reply{status: status, body: b}
}

func errReply(status int, code, msg string, details ...graphDetail) reply {
	return reply{status: status, code: code, msg: msg, details: details}
}

var (
	deniedReply    = errReply(http.StatusForbidden, codeDenied, msgDenied)
	noContentReply = reply{status: http.StatusNoContent}
)

// notFoundReply is Graph's 404 for a missing object.
func notFoundReply(id string) reply {
	return errReply(http.StatusNotFound, codeNotFound,
		fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
}

// send writes a reply.
func (g *graphCall) send(rp reply) {
	switch {
	case rp.code != "":
		g.fail(rp.status, rp.code, rp.msg, rp.details...)
	case rp.text != "":
		g.w.Header().Set("Content-Type", "text/plain")
		g.w.WriteHeader(rp.status)
		_, _ = io.WriteString(g.w, rp.text)
	case rp.body == nil:
		g.w.WriteHeader(rp.status)
	default:
		g.w.Header().Set("Content-Type", graphJSON)
		g.w.WriteHeader(rp.status)
		_, _ = g.w.Write(rp.body)
	}
}

// read runs fn on the caller's tenant under the world's read lock.
func (g *graphCall) read(fn func(t *core.Tenant) reply) {
	w := g.s.World()
	w.RLock()
	rp := g.withTenant(fn)
	w.RUnlock()
	g.send(rp)
}

// write runs fn on the caller's tenant under the world's write lock.
func (g *graphCall) write(fn func(t *core.Tenant) reply) {
	w := g.s.World()
	w.Lock()
	rp := g.withTenant(func(t *core.Tenant) reply {
		rp := fn(t)
		g.s.delta.touch(t, g.written)
		g.written = nil
		return rp
	})
	w.Unlock()
	g.send(rp)
}

func (g *graphCall) withTenant(fn func(t *core.Tenant) reply) reply {
	t := g.s.World().TenantLocked(g.caller.TenantID)
	if t == nil {
		return errReply(http.StatusUnauthorized, codeInvalidToken, "The token's tenant is not known to this directory.")
	}
	return fn(t)
}

// queryFail writes a refused query option or filter.
func (g *graphCall) queryFail(err error) {
	var qe *queryError
	var fe *FilterError
	switch {
	case errors.As(err, &qe):
		g.fail(qe.status, qe.code, qe.msg)
	case errors.As(err, &fe):
		g.fail(http.StatusBadRequest, codeUnsupportedQuery, fe.Msg)
	default:
		g.fail(http.StatusBadRequest, codeBadRequest, "Invalid query.")
	}
}
