// Package keyvault is the simulated Key Vault data plane (secrets,
// api-version 7.5; keys and certificates, as azkeys and azcertificates send
// them, in keys.go and certificates.go): each vault on an HTTPS listener of
// its own, the bearer challenge flow, soft delete, and per-identity,
// per-operation access policies.
package keyvault

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// This file is the Key Vault secrets data plane (api-version 7.5) with the
// bearer challenge flow Microsoft's SDK relies on: the first request goes
// out without a token, the vault answers 401 naming the authority (with
// the tenant) and the resource, and the SDK comes back with a token.
//
// Authorization is per vault, per principal and per operation, as with
// Key Vault access policies (or the RBAC data-plane roles, which are sets
// of the same rights): the token's oid must hold the secret permission the
// operation needs (Vault.Access), or the answer is Key Vault's 403
// Forbidden/AccessDenied. That is what lets the simulator hold rotor to its
// promise of writing and listing secrets without ever reading a value.
//
// Deletion is soft, as in a vault with soft-delete on (the default and
// now mandatory): a deleted secret keeps its name reserved until it is
// purged or recovered, or its 90 days pass.

const (
	kvJSON = "application/json; charset=utf-8"
	// kvRecoverableDays is the soft-delete retention.
	kvRecoverableDays = 90
	kvRecoveryLevel   = "Recoverable+Purgeable"
	// kvMaxResults is the largest page Key Vault serves for secrets.
	kvMaxResults = 25
	// kvMaxValue is Key Vault's secret size limit (25 KB).
	kvMaxValue = 25 * 1024
	// kvMaxTags is Key Vault's tag count limit.
	kvMaxTags = 15
	// kvMaxBody bounds request bodies (the value limit plus room for JSON).
	kvMaxBody = 64 * 1024
	// kvLocation is the region Key Vault names in a refusal; the
	// simulated vaults live nowhere in particular.
	kvLocation = "local"
)

// secretNameRE is Key Vault's object name rule.
var secretNameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

// kvError is Key Vault's error body.
type kvError struct {
	Error kvErrorBody `json:"error"`
}

type kvErrorBody struct {
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	InnerError *kvInner `json:"innererror,omitempty"`
}

type kvInner struct {
	Code string `json:"code"`
}

// kvBundle is a SecretBundle, a list item (no value) or a deleted secret.
type kvBundle struct {
	Value       *string           `json:"value,omitempty"`
	ID          string            `json:"id"`
	ContentType string            `json:"contentType,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Attributes  kvAttributes      `json:"attributes"`
	// KID and Managed mark the secret backing a certificate.
	KID     string `json:"kid,omitempty"`
	Managed bool   `json:"managed,omitempty"`
	kvDeletedInfo
}

// kvCall is one Key Vault request for one vault.
type kvCall struct {
	s     *Service
	w     http.ResponseWriter
	r     *http.Request
	vault *core.Vault
	// caller is the token's principal, authorized per operation.
	caller *core.Caller
	// base is the vault URL without the trailing slash.
	base string
}

// Service is the Key Vault service. It needs nothing before Register.
type Service struct {
	*core.Core

	// listeners are the vaults' own listeners, in the order of vaults.
	listeners []*core.Listener
	vaults    []*core.Vault

	mu        sync.Mutex
	vaultPort map[string]*core.Vault // vault listener port -> vault
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

// Register asks for one HTTPS listener per seeded vault: azsecrets parses
// the vault URL from secret ids and expects the vault at the root of its
// host, so vaults cannot share a listener under paths.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	s.vaultPort = map[string]*core.Vault{}
	h := s.countVault(s.WithFaults(nil, s.keyVaultHandler()))
	c.World().RLock()
	defer c.World().RUnlock()
	for _, t := range c.World().TenantsLocked() {
		for _, name := range core.SortedKeys(t.Vaults) {
			s.vaults = append(s.vaults, t.Vaults[name])
			s.listeners = append(s.listeners, r.Listen("vault", true, h))
		}
	}
	return nil
}

// Started records each vault's address in the world (sim.json's
// key_vaults[].url comes from there).
func (s *Service) Started(info *simfile.Info) error {
	info.KeyVaultAudience = core.KeyVaultResource
	s.World().Lock()
	defer s.World().Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range s.vaults {
		v.Host = s.listeners[i].HostPort()
		v.URL = "https://" + v.Host + "/"
		_, port, _ := net.SplitHostPort(v.Host)
		s.vaultPort[port] = v
	}
	return nil
}

// vaultByHost finds the vault served at host ("127.0.0.1:PORT",
// "localhost:PORT", "[::1]:PORT": the port decides), or nil.
func (s *Service) vaultByHost(host string) *core.Vault {
	_, port, err := net.SplitHostPort(host)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vaultPort[port]
}

func (s *Service) countVault(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Counters().Vault.Add(1)
		next.ServeHTTP(w, r)
	})
}

// keyVaultHandler serves the Key Vault data plane on each vault's listener.
func (s *Service) keyVaultHandler() http.Handler {
	return http.HandlerFunc(s.serveVault)
}

func (s *Service) serveVault(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("x-ms-request-id", uuid.NewString())
	if id := r.Header.Get("x-ms-client-request-id"); id != "" {
		h.Set("x-ms-client-request-id", id)
	}
	h.Set("x-ms-keyvault-service-version", "1.9.0.0")
	v := s.vaultByHost(r.Host)
	if v == nil {
		core.WriteJSON(w, http.StatusNotFound, kvJSON, kvError{Error: kvErrorBody{Code: "VaultNotFound", Message: "No vault is served at this address."}})
		return
	}
	c := &kvCall{s: s, w: w, r: r, vault: v, base: strings.TrimSuffix(v.URL, "/")}
	if c.base == "" {
		c.base = "https://" + r.Host
	}
	if r.Header.Get("Authorization") == "" {
		c.challenge("AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	caller, err := s.Authenticate(r, core.KeyVaultResource)
	if err != nil {
		msg := "The access token is invalid."
		var ae *core.AuthError
		if errors.As(err, &ae) && ae.Message != "" {
			msg = ae.Message
		}
		c.challenge(msg)
		return
	}
	if caller.TenantID != v.TenantID {
		c.challenge(fmt.Sprintf("AKV10032: Invalid issuer. Expected one of https://sts.windows.net/%s/, "+
			"https://login.microsoftonline.com/%s/v2.0, found https://sts.windows.net/%s/.", v.TenantID, v.TenantID, caller.TenantID))
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		c.fail(http.StatusBadRequest, "BadParameter", "The request URI contains an invalid or missing api-version.", "")
		return
	}
	c.caller = caller
	c.route()
}

// challenge answers 401 with the bearer challenge the SDK parses: the
// authority with the vault's tenant in its path, and the resource.
func (c *kvCall) challenge(msg string) {
	authority := strings.TrimSuffix(c.s.AuthorityHost(), "/") + "/" + c.vault.TenantID
	c.w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s", resource="%s"`, authority, core.KeyVaultResource))
	c.fail(http.StatusUnauthorized, "Unauthorized", msg, "")
}

func (c *kvCall) fail(status int, code, msg, inner string) {
	body := kvError{Error: kvErrorBody{Code: code, Message: msg}}
	if inner != "" {
		body.Error.InnerError = &kvInner{Code: inner}
	}
	core.WriteJSON(c.w, status, kvJSON, body)
}

func (c *kvCall) methodNotAllowed() {
	c.fail(http.StatusMethodNotAllowed, "BadParameter", fmt.Sprintf("The method %s is not allowed on %s.", c.r.Method, c.r.URL.Path), "")
}

// route dispatches on the path and checks, before anything else about
// the request, that the caller holds the permission the operation needs:
// Key Vault answers 403 whether or not the secret exists.
func (c *kvCall) route() {
	segs := strings.Split(strings.TrimPrefix(c.r.URL.Path, "/"), "/")
	switch segs[0] {
	case "keys", "deletedkeys":
		c.routeKeys(segs)
		return
	case "certificates", "deletedcertificates":
		c.routeCertificates(segs)
		return
	}
	m := c.r.Method
	// op is the operation and the permission it needs.
	var op func()
	var need core.SecretPermission
	switch {
	case segs[0] == "secrets" && len(segs) == 1:
		if m == http.MethodGet {
			op, need = func() { c.listSecrets(false) }, core.SecretList
		}
	case segs[0] == "secrets" && len(segs) == 2:
		switch m {
		case http.MethodPut:
			op, need = func() { c.setSecret(segs[1]) }, core.SecretSet
		case http.MethodGet:
			op, need = func() { c.getSecret(segs[1], "") }, core.SecretGet
		case http.MethodDelete:
			op, need = func() { c.deleteSecret(segs[1]) }, core.SecretDelete
		case http.MethodPatch:
			op, need = func() { c.updateSecret(segs[1], "") }, core.SecretSet
		}
	case segs[0] == "secrets" && len(segs) == 3 && segs[2] == "versions":
		if m == http.MethodGet {
			op, need = func() { c.listVersions(segs[1]) }, core.SecretList
		}
	case segs[0] == "secrets" && len(segs) == 3:
		switch m {
		case http.MethodGet:
			op, need = func() { c.getSecret(segs[1], segs[2]) }, core.SecretGet
		case http.MethodPatch:
			op, need = func() { c.updateSecret(segs[1], segs[2]) }, core.SecretSet
		}
	case segs[0] == "deletedsecrets" && len(segs) == 1:
		if m == http.MethodGet {
			op, need = func() { c.listSecrets(true) }, core.SecretList
		}
	case segs[0] == "deletedsecrets" && len(segs) == 2:
		switch m {
		case http.MethodGet:
			op, need = func() { c.getDeleted(segs[1]) }, core.SecretGet
		case http.MethodDelete:
			op, need = func() { c.purge(segs[1]) }, core.SecretPurge
		}
	case segs[0] == "deletedsecrets" && len(segs) == 3 && segs[2] == "recover":
		if m == http.MethodPost {
			op, need = func() { c.recoverSecret(segs[1]) }, core.SecretRecover
		}
	default:
		c.notServed()
		return
	}
	dispatch(c, op, "secrets", need, c.vault.Allows)
}

// notServed is the answer for a path the simulated Key Vault does not
// serve.
func (c *kvCall) notServed() {
	c.fail(http.StatusNotFound, "NotFound", fmt.Sprintf("The path %s is not served by the simulated Key Vault.", c.r.URL.Path), "")
}

// dispatch runs op, the operation a route found (nil: the path exists but
// not for this method), if the caller holds need, the permission of kind
// ("secrets", "keys", "certificates") it takes; allows reads the vault's
// access policy under the world lock.
func dispatch[P ~string](c *kvCall, op func(), kind string, need P, allows func(objectID string, p P) bool) {
	if op == nil {
		c.methodNotAllowed()
		return
	}
	c.s.World().RLock()
	ok := allows(c.caller.ObjectID, need)
	c.s.World().RUnlock()
	if !ok {
		c.forbiddenFor(kind, string(need))
		return
	}
	op()
}

// kvReply is an answer computed under the world lock and written after.
type kvReply struct {
	status      int
	body        []byte
	code, msg   string
	inner       string
	noBodyReply bool
}

func kvOK(status int, v any) kvReply {
	b, err := json.Marshal(v)
	if err != nil {
		return kvErr(http.StatusInternalServerError, "InternalError", "The simulator could not encode the response.", "")
	}
	return kvReply{status: status, body: b}
}

func kvErr(status int, code, msg, inner string) kvReply {
	return kvReply{status: status, code: code, msg: msg, inner: inner}
}

func (c *kvCall) send(rp kvReply) {
	switch {
	case rp.code != "":
		c.fail(rp.status, rp.code, rp.msg, rp.inner)
	case rp.noBodyReply:
		c.w.WriteHeader(rp.status)
	default:
		c.w.Header().Set("Content-Type", kvJSON)
		c.w.WriteHeader(rp.status)
		_, _ = c.w.Write(rp.body)
	}
}

func (c *kvCall) read(fn func(now time.Time) kvReply) {
	c.s.World().RLock()
	rp := fn(c.s.Clock().Now())
	c.s.World().RUnlock()
	c.send(rp)
}

func (c *kvCall) write(fn func(now time.Time) kvReply) {
	c.s.World().Lock()
	rp := fn(c.s.Clock().Now())
	c.s.World().Unlock()
	c.send(rp)
}

// notFound is Key Vault's SecretNotFound.
func notFoundSecret(ref string) kvReply {
	return notFoundObject("SecretNotFound", "secret", ref)
}

// lookup finds a secret by name; Key Vault names are case-insensitive.
// Callers hold the world lock.
func (c *kvCall) lookup(name string) *core.VaultSecret {
	return lookupFold(c.vault.Secrets, name)
}

// live finds a secret that is not deleted.
func (c *kvCall) live(name string) *core.VaultSecret {
	if s := c.lookup(name); s != nil && !s.Deleted && len(s.Versions) > 0 {
		return s
	}
	return nil
}

// deleted finds a soft-deleted secret still within its retention.
func (c *kvCall) deleted(name string, now time.Time) *core.VaultSecret {
	s := c.lookup(name)
	if s == nil || len(s.Versions) == 0 || !recoverableAt(s.Deleted, s.DeletedAt, now) {
		return nil
	}
	return s
}

func (c *kvCall) attrs(v *core.SecretVersion) kvAttributes {
	return versionAttrs(v.Enabled, v.NotBefore, v.Expires, v.Created, v.Updated)
}

// bundle renders a version; withValue only for set and get.
func (c *kvCall) bundle(s *core.VaultSecret, v *core.SecretVersion, withValue bool) kvBundle {
	b := kvBundle{
		ID:          c.base + "/secrets/" + s.Name + "/" + v.Version,
		ContentType: v.ContentType, Tags: copyTags(v.Tags), Attributes: c.attrs(v),
	}
	if s.Managed {
		b.KID, b.Managed = c.base+"/keys/"+s.Name+"/"+v.Version, true
	}
	if withValue {
		val := v.Value
		b.Value = &val
	}
	return b
}

// deletedBundle renders a soft-deleted secret (its latest version).
func (c *kvCall) deletedBundle(s *core.VaultSecret) kvBundle {
	b := c.bundle(s, s.Versions[len(s.Versions)-1], false)
	b.kvDeletedInfo = c.deletedInfo("secrets", s.Name, s.DeletedAt)
	return b
}

type kvSetIn struct {
	Value       *string           `json:"value"`
	ContentType *string           `json:"contentType"`
	Tags        map[string]string `json:"tags"`
	Attributes  *kvAttrsIn        `json:"attributes"`
}

// decode reads a JSON body; it never echoes the body (it holds a secret).
func (c *kvCall) decode(v any) bool {
	b, err := io.ReadAll(io.LimitReader(c.r.Body, kvMaxBody+1))
	if err != nil {
		c.fail(http.StatusBadRequest, "BadParameter", "The request body could not be read.", "")
		return false
	}
	if len(b) > kvMaxBody {
		c.fail(http.StatusRequestEntityTooLarge, "BadParameter", "The request body is too large.", "")
		return false
	}
	if len(bytes.TrimSpace(b)) == 0 {
		c.fail(http.StatusBadRequest, "BadParameter", "The request body is missing.", "")
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.fail(http.StatusBadRequest, "BadParameter", "The request body is not valid JSON: "+core.JSONErrorMessage(err), "")
		return false
	}
	return true
}

func (c *kvCall) validName(name string) bool {
	if secretNameRE.MatchString(name) {
		return true
	}
	c.fail(http.StatusBadRequest, "BadParameter",
		"The request URI contains an invalid name: secret names are 1-127 characters of letters, digits and '-'.", "")
	return false
}

func newSecretVersion() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// setSecret serves PUT /secrets/{name}: a new version, latest from now on.
func (c *kvCall) setSecret(name string) {
	if !c.validName(name) {
		return
	}
	var in kvSetIn
	if !c.decode(&in) {
		return
	}
	switch {
	case in.Value == nil:
		c.fail(http.StatusBadRequest, "BadParameter", "Property 'value' is required.", "")
		return
	case len(*in.Value) > kvMaxValue:
		c.fail(http.StatusBadRequest, "BadParameter", "The secret value exceeds the maximum size of 25 KB.", "")
		return
	case len(in.Tags) > kvMaxTags:
		c.fail(http.StatusBadRequest, "BadParameter", fmt.Sprintf("A secret can have at most %d tags.", kvMaxTags), "")
		return
	}
	c.write(func(now time.Time) kvReply {
		now = now.UTC()
		s := c.lookup(name)
		if s != nil && s.Deleted {
			if now.Before(purgeAt(s.DeletedAt)) {
				return kvErr(http.StatusConflict, "Conflict", fmt.Sprintf("Secret %s is currently in a deleted but recoverable state, "+
					"and its name cannot be reused; in this state, the secret can only be recovered or purged.", s.Name), "ObjectIsDeletedButRecoverable")
			}
			delete(c.vault.Secrets, s.Name) // past retention: purged
			s = nil
		}
		if s != nil && s.Managed {
			return managedSecret("set", s.Name)
		}
		if s == nil {
			s = &core.VaultSecret{Name: name}
			if c.vault.Secrets == nil {
				c.vault.Secrets = map[string]*core.VaultSecret{}
			}
			c.vault.Secrets[name] = s
		}
		v := &core.SecretVersion{
			Version: newSecretVersion(), Value: *in.Value, Tags: copyTags(in.Tags),
			Enabled: true, Created: now, Updated: now,
		}
		if in.ContentType != nil {
			v.ContentType = *in.ContentType
		}
		in.Attributes.applyTo(&v.Enabled, &v.NotBefore, &v.Expires)
		s.Versions = append(s.Versions, v)
		c.s.RecordConsumer("keyvault", strings.TrimSuffix(c.vault.URL, "/")+"/secrets/"+s.Name, "", v.Value)
		c.s.Logger().Debug("keyvault: secret set", "vault", c.vault.Name, "name", s.Name, "version", v.Version)
		return kvOK(http.StatusOK, c.bundle(s, v, true))
	})
}

// getSecret serves GET /secrets/{name}[/{version}]; an empty version is the
// latest. A disabled version cannot be read, as in Key Vault.
func (c *kvCall) getSecret(name, version string) {
	c.read(func(time.Time) kvReply {
		s := c.live(name)
		if s == nil {
			return notFoundSecret(name)
		}
		v := s.Versions[len(s.Versions)-1]
		if version != "" {
			v = nil
			for _, x := range s.Versions {
				if strings.EqualFold(x.Version, version) {
					v = x
					break
				}
			}
			if v == nil {
				return notFoundSecret(name + "/" + version)
			}
		}
		if !v.Enabled {
			return kvErr(http.StatusForbidden, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
		}
		return kvOK(http.StatusOK, c.bundle(s, v, true))
	})
}

// updateSecret serves PATCH /secrets/{name}[/{version}]: attributes, tags
// and content type of one version (the value never changes).
func (c *kvCall) updateSecret(name, version string) {
	var in struct {
		ContentType *string           `json:"contentType"`
		Tags        map[string]string `json:"tags"`
		Attributes  *kvAttrsIn        `json:"attributes"`
	}
	if !c.decode(&in) {
		return
	}
	if len(in.Tags) > kvMaxTags {
		c.fail(http.StatusBadRequest, "BadParameter", fmt.Sprintf("A secret can have at most %d tags.", kvMaxTags), "")
		return
	}
	c.write(func(now time.Time) kvReply {
		s := c.live(name)
		if s == nil {
			return notFoundSecret(name)
		}
		v := s.Versions[len(s.Versions)-1]
		if version != "" {
			v = nil
			for _, x := range s.Versions {
				if strings.EqualFold(x.Version, version) {
					v = x
				}
			}
			if v == nil {
				return notFoundSecret(name + "/" + version)
			}
		}
		if s.Managed {
			return managedSecret("update", s.Name)
		}
		if in.ContentType != nil {
			v.ContentType = *in.ContentType
		}
		if in.Tags != nil {
			v.Tags = copyTags(in.Tags)
		}
		in.Attributes.applyTo(&v.Enabled, &v.NotBefore, &v.Expires)
		v.Updated = now.UTC()
		return kvOK(http.StatusOK, c.bundle(s, v, false))
	})
}

// managedSecret refuses a write to the secret backing a certificate:
// only the certificate's own operations change it.
func managedSecret(op, name string) kvReply {
	return kvErr(http.StatusForbidden, "Forbidden", fmt.Sprintf("Operation %s is not allowed on managed secret %s; "+
		"it belongs to the certificate of the same name.", op, name), "")
}

// deleteSecret serves DELETE /secrets/{name}: a soft delete.
func (c *kvCall) deleteSecret(name string) {
	c.write(func(now time.Time) kvReply {
		s := c.live(name)
		if s == nil {
			return notFoundSecret(name)
		}
		if s.Managed {
			return managedSecret("delete", s.Name)
		}
		s.Deleted, s.DeletedAt = true, now.UTC()
		c.s.Logger().Debug("keyvault: secret deleted", "vault", c.vault.Name, "name", s.Name)
		return kvOK(http.StatusOK, c.deletedBundle(s))
	})
}

func (c *kvCall) getDeleted(name string) {
	c.read(func(now time.Time) kvReply {
		s := c.deleted(name, now)
		if s == nil {
			return notFoundDeleted("SecretNotFound", "Secret", name)
		}
		return kvOK(http.StatusOK, c.deletedBundle(s))
	})
}

// purge serves DELETE /deletedsecrets/{name}: the name is free again.
func (c *kvCall) purge(name string) {
	c.write(func(now time.Time) kvReply {
		s := c.deleted(name, now)
		if s == nil {
			return notFoundDeleted("SecretNotFound", "Secret", name)
		}
		if s.Managed {
			return managedSecret("purge", s.Name)
		}
		delete(c.vault.Secrets, s.Name)
		c.s.Logger().Debug("keyvault: secret purged", "vault", c.vault.Name, "name", s.Name)
		return kvReply{status: http.StatusNoContent, noBodyReply: true}
	})
}

// recoverSecret serves POST /deletedsecrets/{name}/recover.
func (c *kvCall) recoverSecret(name string) {
	c.write(func(now time.Time) kvReply {
		s := c.deleted(name, now)
		if s == nil {
			return notFoundDeleted("SecretNotFound", "Secret", name)
		}
		if s.Managed {
			return managedSecret("recover", s.Name)
		}
		s.Deleted, s.DeletedAt = false, time.Time{}
		c.s.Logger().Debug("keyvault: secret recovered", "vault", c.vault.Name, "name", s.Name)
		return kvOK(http.StatusOK, c.bundle(s, s.Versions[len(s.Versions)-1], false))
	})
}

// maxResults reads maxresults (1..25, default 25).
func (c *kvCall) maxResults() (int, bool) {
	v := c.r.URL.Query().Get("maxresults")
	if v == "" {
		return kvMaxResults, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > kvMaxResults {
		c.fail(http.StatusBadRequest, "BadParameter", fmt.Sprintf("The value of maxresults must be between 1 and %d.", kvMaxResults), "")
		return 0, false
	}
	return n, true
}

// kvSkiptoken carries a page position: the last name returned (secret
// lists, sorted by name) or the next index (version lists).
func kvSkiptoken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func (c *kvCall) skiptoken() (string, bool) {
	tok := c.r.URL.Query().Get("$skiptoken")
	if tok == "" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		c.fail(http.StatusBadRequest, "BadParameter", "The $skiptoken is not valid.", "")
		return "", false
	}
	return string(b), true
}

// kvNextLink is the absolute next-page URL, keeping api-version and
// maxresults.
func (c *kvCall) kvNextLink(token string, n int) *string {
	q := url.Values{}
	q.Set("api-version", c.r.URL.Query().Get("api-version"))
	q.Set("maxresults", strconv.Itoa(n))
	q.Set("$skiptoken", token)
	s := c.base + c.r.URL.EscapedPath() + "?" + strings.ReplaceAll(q.Encode(), "%24", "$")
	return &s
}

// listSecrets serves GET /secrets (or /deletedsecrets): items without
// values, in name order, paged.
func (c *kvCall) listSecrets(deleted bool) {
	listByName(c, func(now time.Time) []string {
		if deleted {
			return sortedNames(c.vault.Secrets, func(name string, _ *core.VaultSecret) bool { return c.deleted(name, now) != nil })
		}
		return c.vault.SortedSecretNames()
	}, func(name string) (kvBundle, bool) {
		s := c.vault.Secrets[name]
		if len(s.Versions) == 0 {
			return kvBundle{}, false
		}
		var item kvBundle
		if deleted {
			// A deleted-secret item names the secret without a version
			// (its recoveryId is the deletedsecrets URL), as Key Vault's
			// list does.
			item = c.deletedBundle(s)
		} else {
			item = c.bundle(s, s.Versions[len(s.Versions)-1], false)
		}
		item.ID = c.base + "/secrets/" + s.Name
		return item, true
	})
}

// listVersions serves GET /secrets/{name}/versions in creation order.
func (c *kvCall) listVersions(name string) {
	var s *core.VaultSecret
	listVersionsOf(c, func() ([]*core.SecretVersion, *kvReply) {
		if s = c.live(name); s == nil {
			rp := notFoundSecret(name)
			return nil, &rp
		}
		return s.Versions, nil
	}, func(v *core.SecretVersion) kvBundle { return c.bundle(s, v, false) })
}
