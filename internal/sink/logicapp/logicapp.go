// Package logicapp is the "logicapp" sink: it keeps a rotated client secret
// in Logic Apps API connections (Microsoft.Web/connections) that sign in
// as a service principal — the token:clientId, token:clientSecret,
// token:TenantId and token:grantType parameter values of a Key Vault, Blob
// Storage, Service Bus … connection.
//
// A spec looks like:
//
//	sinks:
//	  - type: logicapp
//	    subscription_id: 00000000-0000-0000-0000-000000000000
//	    resource_group: rg-logic
//	    connections: [kv-payroll, blob-archive]   # or one: connection_name: "{{ .App.DisplayName | slug }}-kv"
//	    adopt: false                              # take over a connection set up for another client
//	    connection: logic                         # rotor's connection; default: the policy's
//
// The sink reads each connection, keeps its whole definition, sets the
// four client-credentials parameters and PUTs it back, tagged
// managed-by=rotor, rotor-app-id and rotor-key-id. A connection tagged as
// rotor's for another application, or untagged with another client id in
// it, is foreign: refused unless adopt. The rotor-key-id tag makes a
// repeated delivery a no-op and answers Holds; the resource's etag is the
// version (drift).
//
// API connections are written through azcore's ARM pipeline with raw JSON:
// Microsoft's Go SDK has no client for Microsoft.Web/connections (see
// docs/sinks/logicapp.md). Every error is a sink.Classified and none
// holds the secret.
package logicapp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Type is the spec type this package builds.
const Type = "logicapp"

// APIVersion is the Microsoft.Web/connections api-version.
const APIVersion = "2016-06-01"

// Tags rotor puts on the connections it writes.
const (
	TagManagedBy   = "managed-by"
	ManagedByRotor = "rotor"
	TagAppID       = "rotor-app-id"
	TagKeyID       = "rotor-key-id"
)

// The client-credentials parameters of a managed API connection.
const (
	ParamClientID     = "token:clientId"
	ParamClientSecret = "token:clientSecret"
	ParamTenantID     = "token:TenantId"
	ParamGrantType    = "token:grantType"
	GrantClientCreds  = "client_credentials"
)

// ClientCredentialAPIs are the managed APIs whose connections can sign in
// as a service principal with a client secret (the Azure services'
// connectors; Office 365, Outlook, SharePoint and the like sign in as a
// user and are refused).
var ClientCredentialAPIs = []string{
	"arm", "azureautomation", "azureblob", "azuredatafactory", "azuredataexplorer", "azureeventgrid", "azurefile",
	"azuremonitorlogs", "azurequeues", "azuretables", "documentdb", "eventhubs", "keyvault", "servicebus", "sql",
}

// Kind is the "logicapp" sink kind.
type Kind struct{}

var (
	_ sink.Kind          = Kind{}
	_ sink.Builder       = (*Builder)(nil)
	_ sink.Discoverer    = (*Builder)(nil)
	_ sink.Sink          = (*Sink)(nil)
	_ sink.Validator     = (*Sink)(nil)
	_ sink.Holder        = (*Sink)(nil)
	_ sink.VersionReader = (*Sink)(nil)
)

// Type returns "logicapp".
func (Kind) Type() string { return Type }

// CheckSpec validates the settings without I/O, every problem at once.
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

// NewBuilder returns the builder; it needs deps.Credentials.
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	if deps.Credentials == nil {
		return nil, errors.New("logicapp sink needs token credentials")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Builder{creds: deps.Credentials, log: log, clients: map[[2]string]*restClient{}}, nil
}

// Builder builds Logic Apps sinks, with one ARM client per (organization,
// connection).
type Builder struct {
	creds sink.TokenCredentials
	log   *slog.Logger

	mu      sync.Mutex
	clients map[[2]string]*restClient
}

func (b *Builder) client(org domain.OrgID, connection string) (*restClient, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := [2]string{string(org), connection}
	if c, ok := b.clients[k]; ok {
		return c, nil
	}
	id, err := b.creds.TokenCredential(org, connection)
	if err != nil {
		return nil, err
	}
	c, err := newRESTClient(id)
	if err != nil {
		return nil, err
	}
	b.clients[k] = c
	return c, nil
}

// TargetFor is the target of API connections names in a resource group:
// logicapp:/subscriptions/{s}/resourcegroups/{rg}/providers/microsoft.web/connections/{a},{b}
// in lower case, names sorted.
func TargetFor(subscriptionID, resourceGroup string, names []string) (sink.TargetID, error) {
	lower := make([]string, len(names))
	for i, n := range names {
		lower[i] = strings.ToLower(n)
	}
	slices.Sort(lower)
	return sink.NewTargetID(Type, strings.ToLower(fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/connections/", subscriptionID, resourceGroup))+
		strings.Join(lower, ","))
}

var targetPattern = regexp.MustCompile(`^/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/microsoft\.web/connections/([^/]+)$`)

// ParseTarget returns the parts of a Logic Apps target.
func ParseTarget(t sink.TargetID) (subscriptionID, resourceGroup string, names []string, err error) {
	m := targetPattern.FindStringSubmatch(t.Ref())
	if t.Kind() != Type || m == nil {
		return "", "", nil, fmt.Errorf("%w: %q: want logicapp:/subscriptions/…/providers/microsoft.web/connections/<name>[,<name>…]", sink.ErrBadTargetID, t.String())
	}
	return m[1], m[2], strings.Split(m[3], ","), nil
}

// Resolve is the target the spec names for req.App, ignoring req.Pinned.
func (b *Builder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return sink.TargetID{}, err
	}
	names, err := st.namesFor(req.App)
	if err != nil {
		return sink.TargetID{}, err
	}
	return TargetFor(st.subscriptionID, st.resourceGroup, names)
}

// Build returns the sink: on the pinned connections when there are, else
// on the spec's.
func (b *Builder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	sub, rg := st.subscriptionID, st.resourceGroup
	names, err := st.namesFor(req.App)
	if err != nil && req.Pinned.IsZero() {
		return nil, err
	}
	target, terr := TargetFor(sub, rg, names)
	if terr != nil && req.Pinned.IsZero() {
		return nil, terr
	}
	if !req.Pinned.IsZero() && req.Pinned != target {
		if sub, rg, names, err = ParseTarget(req.Pinned); err != nil {
			return nil, err
		}
		target = req.Pinned
	}
	connection := cmp.Or(st.connection, req.Connection)
	if connection == "" {
		return nil, &SpecError{Key: KeyConnection, Msg: "no connection: set connection on the sink or on its policy"}
	}
	c, err := b.client(req.App.Org, connection)
	if err != nil {
		return nil, fmt.Errorf("logicapp sink: client for connection %q: %w", connection, err)
	}
	return &Sink{api: c, sub: sub, rg: rg, names: names, adopt: st.adopt, app: req.App, target: target, wrote: map[string]bool{}, certs: req.Certificates()}, nil
}

// Sink keeps one application's client secret in API connections.
type Sink struct {
	api     *restClient
	sub, rg string
	names   []string
	adopt   bool
	app     domain.Application
	target  sink.TargetID
	// certs: built for a certificate policy (BuildRequest.Kind), which
	// this kind cannot serve.
	certs bool

	// wrote are the connections this sink has written (or tried to): its
	// own for its lifetime, whatever a lost answer left in their tags.
	mu    sync.Mutex
	wrote map[string]bool
}

// Target is the connections' target id.
func (s *Sink) Target() sink.TargetID { return s.target }

// Describe names the connections.
func (s *Sink) Describe() string {
	return fmt.Sprintf("Logic Apps API connection(s) %s in resource group %s", strings.Join(s.names, ", "), s.rg)
}

func (s *Sink) path(name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/connections/%s", s.sub, s.rg, name)
}

// conn is an API connection as read: its whole definition, kept to be
// written back.
type conn struct {
	name string
	raw  map[string]any
}

func (c conn) props() map[string]any {
	p, _ := c.raw["properties"].(map[string]any)
	if p == nil {
		p = map[string]any{}
		c.raw["properties"] = p
	}
	return p
}

func (c conn) tags() map[string]string {
	out := map[string]string{}
	if t, ok := c.raw["tags"].(map[string]any); ok {
		for k, v := range t {
			if s, ok := v.(string); ok {
				out[k] = s
			}
		}
	}
	return out
}

func (c conn) param(name string) string {
	pv, _ := c.props()["parameterValues"].(map[string]any)
	v, _ := pv[name].(string)
	return v
}

func (c conn) etag() string { v, _ := c.raw["etag"].(string); return v }
func (c conn) id() string   { v, _ := c.raw["id"].(string); return v }

// api is the managed API's name, the last segment of properties.api.id.
func (c conn) api() string {
	a, _ := c.props()["api"].(map[string]any)
	id, _ := a["id"].(string)
	if i := strings.LastIndex(id, "/"); i >= 0 {
		return strings.ToLower(id[i+1:])
	}
	return strings.ToLower(id)
}

func (s *Sink) get(ctx context.Context, name string) (conn, error) {
	c := conn{name: name, raw: map[string]any{}}
	_, err := s.api.Do(ctx, http.MethodGet, s.path(name), APIVersion, nil, &c.raw)
	if statusOf(err) == http.StatusNotFound {
		return c, sink.Permanent(fmt.Errorf("API connection %s not found in resource group %s: create it (any credential; rotor fills in the client-credentials parameters): %w", name, s.rg, err))
	}
	return c, err
}

// foreign says why c is not rotor's for this application ("" when it is,
// or may be written).
func (s *Sink) foreign(c conn) string {
	s.mu.Lock()
	wrote := s.wrote[strings.ToLower(c.name)]
	s.mu.Unlock()
	if wrote || s.adopt {
		return ""
	}
	tags := c.tags()
	if tags[TagManagedBy] == ManagedByRotor {
		if app := tags[TagAppID]; app != "" && !strings.EqualFold(app, s.app.AppID) {
			return fmt.Sprintf("API connection %s is rotor's for another application (%s=%s); set adopt: true to take it over", c.name, TagAppID, app)
		}
		return ""
	}
	if id := c.param(ParamClientID); id != "" && !strings.EqualFold(id, s.app.AppID) {
		return fmt.Sprintf("API connection %s signs in as another client (%s) and carries no %s=%s tag: it is not rotor's; set adopt: true to take it over", c.name, id, TagManagedBy, ManagedByRotor)
	}
	return ""
}

// clientCredentials says why c's API cannot take a client secret ("" when
// it can).
func clientCredentials(c conn) string {
	if slices.Contains(ClientCredentialAPIs, c.api()) {
		return ""
	}
	return fmt.Sprintf("API connection %s is for the managed API %q, which does not sign in with a service principal's client secret (those that do: %s)",
		c.name, c.api(), strings.Join(ClientCredentialAPIs, ", "))
}

func (s *Sink) holdsKey(c conn, keyID string) bool {
	t := c.tags()
	return t[TagManagedBy] == ManagedByRotor && strings.EqualFold(t[TagAppID], s.app.AppID) && t[TagKeyID] == keyID
}

// errCertificate refuses certificate credentials: a Logic Apps API
// connection's OAuth parameters (token:clientId, token:clientSecret,
// token:grantType client_credentials) take a client secret, and ARM offers
// no certificate parameter for them to put one in.
var errCertificate = sink.Permanent(errors.New("an API connection signs in with a client secret (token:clientSecret) and cannot take a certificate: keep this application on a secret policy, or give the Logic App a managed identity (or a Key Vault reference) instead of an API connection"))

// Deliver reads every connection first (all of them must be writable),
// then writes those that do not hold the key yet.
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	fail := func(err error) (sink.Result, error) {
		return sink.Result{}, fmt.Errorf("logicapp sink: %s: %w", s.Describe(), err)
	}
	if d.Material.Certificate != nil {
		return fail(errCertificate)
	}
	if d.Material.Secret.IsZero() {
		return fail(sink.Permanent(errors.New("the delivery carries no client secret")))
	}
	conns := make([]conn, 0, len(s.names))
	for _, n := range s.names {
		c, err := s.get(ctx, n)
		if err != nil {
			return fail(err)
		}
		if why := clientCredentials(c); why != "" {
			return fail(sink.Permanent(errors.New(why)))
		}
		if why := s.foreign(c); why != "" {
			return fail(sink.Permanent(errors.New(why)))
		}
		conns = append(conns, c)
	}
	value := d.Material.Secret.Reveal()
	res := sink.Result{}
	var etags, ids []string
	for _, c := range conns {
		if s.holdsKey(c, d.KeyID) {
			etags, ids = append(etags, c.etag()), append(ids, c.id())
			continue
		}
		out, err := s.put(ctx, c, d, value)
		if err != nil {
			return fail(err)
		}
		res.Changed = true
		etags, ids = append(etags, out.etag()), append(ids, out.id())
	}
	res.Version, res.Location = strings.Join(etags, ","), strings.Join(ids, " ")
	return res, nil
}

// put writes c back with the client credentials and rotor's tags; the
// answer is the connection as saved.
func (s *Sink) put(ctx context.Context, c conn, d sink.Delivery, value string) (conn, error) {
	props := maps.Clone(c.props())
	// Read-only properties, which ARM computes.
	for _, k := range []string{"statuses", "createdTime", "changedTime", "testLinks", "connectionRuntimeUrl"} {
		delete(props, k)
	}
	// GET leaves the secret parameters out, and PUT replaces the lot:
	// send every parameter, the secret included.
	params := map[string]any{}
	if pv, ok := props["parameterValues"].(map[string]any); ok {
		maps.Copy(params, pv)
	}
	params[ParamClientID] = d.ClientID
	params[ParamClientSecret] = value
	params[ParamTenantID] = d.TenantID
	params[ParamGrantType] = GrantClientCreds
	props["parameterValues"] = params
	tags := c.tags()
	tags[TagManagedBy], tags[TagAppID], tags[TagKeyID] = ManagedByRotor, d.App.AppID, d.KeyID
	body := map[string]any{"location": c.raw["location"], "tags": tags, "properties": props}
	s.mu.Lock()
	s.wrote[strings.ToLower(c.name)] = true
	s.mu.Unlock()
	out := conn{name: c.name, raw: map[string]any{}}
	if _, err := s.api.Do(ctx, http.MethodPut, s.path(c.name), APIVersion, body, &out.raw); err != nil {
		var e *APIError
		if errors.As(err, &e) {
			e.Message = redact(e.Message, value)
		}
		return out, fmt.Errorf("writing API connection %s: %w", c.name, err)
	}
	return out, nil
}

// Holds reports whether every connection is tagged with keyID for this
// application.
func (s *Sink) Holds(ctx context.Context, keyID string) (bool, error) {
	for _, n := range s.names {
		c, err := s.get(ctx, n)
		if err != nil {
			return false, fmt.Errorf("logicapp sink: %w", err)
		}
		if !s.holdsKey(c, keyID) {
			return false, nil
		}
	}
	return true, nil
}

// Version is the connections' etags, comma-separated; "" when one is
// missing or holds no client credentials yet (nothing of rotor's there).
func (s *Sink) Version(ctx context.Context) (string, error) {
	var etags []string
	for _, n := range s.names {
		c, err := s.get(ctx, n)
		if statusOf(err) == http.StatusNotFound {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("logicapp sink: %w", err)
		}
		if c.param(ParamClientID) == "" {
			return "", nil
		}
		etags = append(etags, c.etag())
	}
	return strings.Join(etags, ","), nil
}

// Validate reads every connection: that it exists and may be read, that
// its managed API signs in with client credentials, and that it is rotor's
// (or adopt is set). Writing cannot be proven without writing.
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	if s.certs {
		return sink.Failed("logicapp sink: "+errCertificate.Error(), errCertificate)
	}
	var notes []string
	for _, n := range s.names {
		c, err := s.get(ctx, n)
		if err != nil {
			switch st := statusOf(err); {
			case st == http.StatusForbidden:
				return sink.Failed(fmt.Sprintf("the connection's identity may not read API connection %s: give it Logic App Contributor on resource group %s (%v)", n, s.rg, err), err)
			case st == http.StatusUnauthorized:
				return sink.Failed("Resource Manager refused the connection's token (for a linked tenant, configure it as an auxiliary tenant of the connection): "+err.Error(), err)
			case sink.IsPermanent(err):
				return sink.Failed(err.Error(), err)
			}
			return sink.Unknown(fmt.Sprintf("could not read API connection %s: %v", n, err), err)
		}
		if why := clientCredentials(c); why != "" {
			return sink.Failed(why, sink.Permanent(errors.New(why)))
		}
		if why := s.foreign(c); why != "" {
			return sink.Failed(why, sink.Permanent(errors.New(why)))
		}
		switch t := c.tags(); {
		case t[TagManagedBy] == ManagedByRotor:
			notes = append(notes, fmt.Sprintf("%s (%s, rotor's, credential %s)", n, c.api(), t[TagKeyID]))
		case s.adopt && c.param(ParamClientID) != "" && !strings.EqualFold(c.param(ParamClientID), s.app.AppID):
			notes = append(notes, fmt.Sprintf("%s (%s, another client's: adopt takes it over)", n, c.api()))
		default:
			notes = append(notes, fmt.Sprintf("%s (%s, not tagged yet: rotor tags it at its first delivery)", n, c.api()))
		}
	}
	return sink.Ready("API connections " + strings.Join(notes, "; ") + " take client credentials; writing needs Logic App Contributor, which only a delivery proves")
}

// DiscoverKeys are the settings Discover lists.
func (b *Builder) DiscoverKeys() []string { return []string{KeyConnections} }

// Discover lists the API connections of the spec's resource group, saying
// which take client credentials.
func (b *Builder) Discover(ctx context.Context, q sink.DiscoverQuery) ([]sink.Choice, error) {
	if q.Key != KeyConnections && q.Key != KeyConnectionName {
		return nil, &SpecError{Key: q.Key, Msg: "cannot list choices (listable: connections)"}
	}
	str := func(k string) string { v, _ := q.Spec.Settings[k].(string); return strings.TrimSpace(v) }
	sub, rg := str(KeySubscriptionID), str(KeyResourceGroup)
	if sub == "" || rg == "" {
		return nil, &SpecError{Key: q.Key, Msg: "set subscription_id and resource_group first"}
	}
	connection := cmp.Or(str(KeyConnection), q.Connection)
	if connection == "" {
		return nil, &SpecError{Key: KeyConnection, Msg: "no connection: set connection on the sink or on its policy"}
	}
	c, err := b.client(q.Org, connection)
	if err != nil {
		return nil, err
	}
	var body struct {
		Value []map[string]any `json:"value"`
	}
	if _, err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Web/connections", sub, rg), APIVersion, nil, &body); err != nil {
		return nil, err
	}
	var out []sink.Choice
	for _, raw := range body.Value {
		cn := conn{raw: raw}
		cn.name, _ = raw["name"].(string)
		detail := cn.api() + ": takes client credentials"
		if clientCredentials(cn) != "" {
			detail = cn.api() + ": signs in as a user, not usable"
		}
		if cn.tags()[TagManagedBy] == ManagedByRotor {
			detail += "; rotor's"
		}
		out = append(out, sink.Choice{Value: cn.name, Label: cn.name, Detail: detail})
	}
	return out, nil
}
