// Package github is the simulated GitHub REST API, as much of it as rotor's
// github sink and its pickers use: Actions secrets of repositories,
// environments and organizations (public keys, sealed-box writes, metadata
// reads, listings), the repositories and environments they belong to, and
// GitHub's auth, error and secondary-rate-limit answers. It runs on a
// listener of its own, so clients (google/go-github) find the API at the root
// of a host, as at https://api.github.com/.
//
// Values are kept in memory only; every write is opened with the target's
// private key (a sealed box that does not open is refused with 422) and
// reported to the core's consumer list. What was confirmed against GitHub's
// documentation and clients, and what was not, is in docs/simulator.md.
package github

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// ServiceName is the service name in the consumer list (/_sim/consumers).
const ServiceName = "github"

// The demo world: an organization with a repository, an environment and a
// user with a repository of their own, seeded in every simulator.
const (
	DemoOrg         = "contoso"
	DemoRepo        = "storefront"
	DemoOtherRepo   = "payroll"
	DemoEnvironment = "production"
	DemoUser        = "octo-dev"
	DemoUserRepo    = "dotfiles"
	// DemoForeignSecret is a repository secret of contoso/storefront, and
	// DemoOrgSecret an organization secret of contoso, that someone other
	// than rotor put there: the demo shows rotor refusing them.
	DemoForeignSecret = "DEPLOY_KEY"
	DemoOrgSecret     = "ORG_WIDE_TOKEN"
)

// docsURL is the documentation_url of GitHub's generic errors.
const docsURL = "https://docs.github.com/rest"

// secondaryDocsURL is the documentation_url GitHub sends with a secondary
// rate limit; clients (go-github) recognise the limit by its suffix.
const secondaryDocsURL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"

// APIVersion is the X-GitHub-Api-Version the simulator serves; a request
// without the header gets it too, as on GitHub.
const APIVersion = "2022-11-28"

// RetryAfterSeconds is the Retry-After of the simulated secondary limit.
const RetryAfterSeconds = 60

// access is what a token may do.
type access int

const (
	// accessAdmin reads and writes everything (a PAT with repo and
	// admin:org, or a fine-grained token with secrets: write).
	accessAdmin access = iota + 1
	// accessRead reads repositories and environments but no secrets
	// endpoint (a fine-grained token without the secrets permission).
	accessRead
	// accessThrottled is answered with the secondary rate limit.
	accessThrottled
)

// keyPair is the Curve25519 pair of one secrets scope.
type keyPair struct {
	id        string
	pub, priv *[32]byte
}

func newKeyPair() (keyPair, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	// GitHub's key ids are long decimal strings.
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return keyPair{}, err
	}
	return keyPair{id: strconv.FormatUint(binary.BigEndian.Uint64(b[:]), 10), pub: pub, priv: priv}, nil
}

// secretRec is one stored secret.
type secretRec struct {
	name             string
	value            string
	created, updated time.Time
	// visibility and selected are an organization secret's.
	visibility string
	selected   []int64
}

// scope is a set of secrets with its key pair: a repository's, an
// environment's or an organization's.
type scope struct {
	key     keyPair
	secrets map[string]*secretRec // by upper-case name
	// consumer is the prefix of the consumer target names.
	consumer string
}

type environment struct {
	id   int64
	name string
	scope
}

type repository struct {
	id      int64
	owner   *account
	name    string
	private bool
	scope
	envs map[string]*environment // by lower-case name
}

type account struct {
	id    int64
	login string
	org   bool
	repos map[string]*repository // by lower-case name
	// scope is an organization's secrets (nil for a user).
	scope *scope
}

// Service is the simulated GitHub API.
type Service struct {
	*core.Core

	ln *core.Listener

	mu       sync.Mutex
	nextID   int64
	accounts map[string]*account // by lower-case login
	tokens   map[string]access
	// adminToken, readToken and throttledToken are published in sim.json.
	adminToken, readToken, throttledToken string
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

// Register seeds the demo accounts and tokens and asks for a listener.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	s.accounts = map[string]*account{}
	s.tokens = map[string]access{}
	var err error
	tok := func(prefix string, a access) string {
		if err != nil {
			return ""
		}
		b := make([]byte, 18)
		if _, e := rand.Read(b); e != nil {
			err = e
			return ""
		}
		t := prefix + hex.EncodeToString(b)
		s.tokens[t] = a
		return t
	}
	s.adminToken = tok("ghp_sim", accessAdmin)
	s.readToken = tok("ghp_simread", accessRead)
	s.throttledToken = tok("ghp_simthrottled", accessThrottled)
	if err != nil {
		return fmt.Errorf("github: tokens: %w", err)
	}
	if err := s.seed(); err != nil {
		return fmt.Errorf("github: seed: %w", err)
	}
	s.ln = r.Listen("github", true, s.WithFaults(writeUnavailable, http.HandlerFunc(s.serve)))
	return nil
}

// Started publishes the API's address, tokens and demo targets.
func (s *Service) Started(info *simfile.Info) error {
	info.GitHub = &simfile.GitHub{
		URL:            "https://" + s.ln.HostPort() + "/",
		Token:          s.adminToken,
		ReadOnlyToken:  s.readToken,
		ThrottledToken: s.throttledToken,
		Owner:          DemoOrg,
		Repo:           DemoRepo,
		Environment:    DemoEnvironment,
		Org:            DemoOrg,
	}
	if info.CAFile != "" {
		path := filepath.Join(filepath.Dir(info.CAFile), TokenFile)
		if err := simfile.WriteFileAtomic(path, []byte(s.adminToken+"\n"), 0o600); err != nil {
			return fmt.Errorf("github: write %s: %w", TokenFile, err)
		}
		info.GitHub.TokenFile = path
	}
	return nil
}

// TokenFile is the file beside sim.json holding the demo token (Token),
// for a sink's token: {file: …}.
const TokenFile = "github-token"

func (s *Service) seed() error {
	now := s.Clock().Now().UTC().Truncate(time.Second)
	org, err := s.addAccount(DemoOrg, true)
	if err != nil {
		return err
	}
	repo, err := s.addRepo(org, DemoRepo, true)
	if err != nil {
		return err
	}
	if _, err := s.addEnv(repo, DemoEnvironment); err != nil {
		return err
	}
	if _, err := s.addEnv(repo, "staging"); err != nil {
		return err
	}
	if _, err := s.addRepo(org, DemoOtherRepo, true); err != nil {
		return err
	}
	user, err := s.addAccount(DemoUser, false)
	if err != nil {
		return err
	}
	if _, err := s.addRepo(user, DemoUserRepo, false); err != nil {
		return err
	}
	repo.secrets[DemoForeignSecret] = &secretRec{name: DemoForeignSecret, value: "deploy-key-not-rotors", created: now, updated: now}
	org.scope.secrets[DemoOrgSecret] = &secretRec{name: DemoOrgSecret, value: "org-token-not-rotors", created: now, updated: now, visibility: "private"}
	return nil
}

func (s *Service) id() int64 { s.nextID++; return 1000 + s.nextID }

func (s *Service) newScope(consumer string) (scope, error) {
	kp, err := newKeyPair()
	if err != nil {
		return scope{}, err
	}
	return scope{key: kp, secrets: map[string]*secretRec{}, consumer: consumer}, nil
}

func (s *Service) addAccount(login string, org bool) (*account, error) {
	a := &account{id: s.id(), login: login, org: org, repos: map[string]*repository{}}
	if org {
		sc, err := s.newScope("org/" + login)
		if err != nil {
			return nil, err
		}
		a.scope = &sc
	}
	s.accounts[strings.ToLower(login)] = a
	return a, nil
}

func (s *Service) addRepo(owner *account, name string, private bool) (*repository, error) {
	sc, err := s.newScope(owner.login + "/" + name)
	if err != nil {
		return nil, err
	}
	r := &repository{id: s.id(), owner: owner, name: name, private: private, scope: sc, envs: map[string]*environment{}}
	owner.repos[strings.ToLower(name)] = r
	return r, nil
}

func (s *Service) addEnv(r *repository, name string) (*environment, error) {
	sc, err := s.newScope(r.owner.login + "/" + r.name + "/env/" + name)
	if err != nil {
		return nil, err
	}
	e := &environment{id: s.id(), name: name, scope: sc}
	r.envs[strings.ToLower(name)] = e
	return e, nil
}

// call is one request.
type call struct {
	s      *Service
	w      http.ResponseWriter
	r      *http.Request
	access access
}

func writeError(w http.ResponseWriter, status int, msg, doc string) {
	if doc == "" {
		doc = docsURL
	}
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	core.WriteJSON(w, status, core.PlainJSON, map[string]any{"message": msg, "documentation_url": doc, "status": strconv.Itoa(status)})
}

// writeUnavailable is an injected fault in GitHub's error shape.
func writeUnavailable(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusServiceUnavailable, "Service Unavailable", "")
}

func (c *call) notFound() { writeError(c.w, http.StatusNotFound, "Not Found", docsURL) }

func (c *call) json(status int, v any) { core.WriteJSON(c.w, status, core.PlainJSON, v) }

// rateHeaders are the primary rate limit's headers, sent on every answer.
func (c *call) rateHeaders() {
	h := c.w.Header()
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	h.Set("X-RateLimit-Used", "1")
	h.Set("X-RateLimit-Resource", "core")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(c.s.Clock().Now().Add(time.Hour).Unix(), 10))
}

// serve authenticates, then routes. GitHub answers 401 before anything
// else: a bad token never learns whether a repository exists.
func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveControl(w, r)
		return
	}
	c := &call{s: s, w: w, r: r}
	c.rateHeaders()
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && v != APIVersion {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("API version %s is not supported. Supported: %s.", v, APIVersion), docsURL)
		return
	}
	if !c.auth() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i, p := range parts {
		u, err := unescape(p)
		if err != nil {
			c.notFound()
			return
		}
		parts[i] = u
	}
	c.route(parts)
}

func (c *call) auth() bool {
	h := c.r.Header.Get("Authorization")
	var tok string
	switch {
	case h == "":
		writeError(c.w, http.StatusUnauthorized, "Requires authentication", docsURL)
		return false
	case strings.HasPrefix(h, "Bearer "):
		tok = strings.TrimPrefix(h, "Bearer ")
	case strings.HasPrefix(h, "token "):
		tok = strings.TrimPrefix(h, "token ")
	}
	c.s.mu.Lock()
	a, ok := c.s.tokens[tok]
	c.s.mu.Unlock()
	switch {
	case !ok:
		writeError(c.w, http.StatusUnauthorized, "Bad credentials", docsURL)
		return false
	case a == accessThrottled:
		c.w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		writeError(c.w, http.StatusForbidden, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", secondaryDocsURL)
		return false
	}
	c.access = a
	return true
}

// route dispatches on the path's segments.
func (c *call) route(p []string) {
	m := c.r.Method
	switch {
	case len(p) == 2 && p[0] == "users" && m == http.MethodGet:
		c.getAccount(p[1], false)
	case len(p) == 2 && p[0] == "orgs" && m == http.MethodGet:
		c.getAccount(p[1], true)
	case len(p) == 3 && (p[0] == "users" || p[0] == "orgs") && p[2] == "repos" && m == http.MethodGet:
		c.listRepos(p[1], p[0] == "orgs")
	case len(p) >= 3 && p[0] == "orgs" && p[2] == "actions" && len(p) >= 4 && p[3] == "secrets":
		a := c.s.accounts[strings.ToLower(p[1])]
		if a == nil || !a.org {
			c.notFound()
			return
		}
		c.secrets(a.scope, p[4:], a)
	case len(p) >= 3 && p[0] == "repos":
		r := c.s.repo(p[1], p[2])
		if r == nil {
			c.notFound()
			return
		}
		c.repoRoute(r, p[3:])
	case len(p) >= 2 && p[0] == "repositories":
		id, err := strconv.ParseInt(p[1], 10, 64)
		r := c.s.repoByID(id)
		if err != nil || r == nil {
			c.notFound()
			return
		}
		c.repoRoute(r, p[2:])
	default:
		c.notFound()
	}
}

func (s *Service) repo(owner, name string) *repository {
	a := s.accounts[strings.ToLower(owner)]
	if a == nil {
		return nil
	}
	return a.repos[strings.ToLower(name)]
}

func (s *Service) repoByID(id int64) *repository {
	for _, a := range s.accounts {
		for _, r := range a.repos {
			if r.id == id {
				return r
			}
		}
	}
	return nil
}

func (c *call) repoRoute(r *repository, p []string) {
	m := c.r.Method
	switch {
	case len(p) == 0 && m == http.MethodGet:
		c.json(http.StatusOK, repoJSON(r))
	case len(p) >= 2 && p[0] == "actions" && p[1] == "secrets":
		c.secrets(&r.scope, p[2:], nil)
	case len(p) == 1 && p[0] == "environments" && m == http.MethodGet:
		envs := make([]any, 0, len(r.envs))
		for _, k := range core.SortedKeys(r.envs) {
			envs = append(envs, envJSON(r, r.envs[k]))
		}
		c.json(http.StatusOK, map[string]any{"total_count": len(envs), "environments": envs})
	case len(p) >= 2 && p[0] == "environments":
		e := r.envs[strings.ToLower(p[1])]
		if e == nil {
			c.notFound()
			return
		}
		if len(p) == 2 && m == http.MethodGet {
			c.json(http.StatusOK, envJSON(r, e))
			return
		}
		if len(p) >= 3 && p[2] == "secrets" {
			c.secrets(&e.scope, p[3:], nil)
			return
		}
		c.notFound()
	default:
		c.notFound()
	}
}

// secrets serves one scope's secrets endpoints: p is what follows
// ".../secrets". org is the organization for organization secrets.
func (c *call) secrets(sc *scope, p []string, org *account) {
	if c.access != accessAdmin {
		// A token without the secrets permission (or a GitHub App
		// installation without it) is refused on every secrets endpoint.
		writeError(c.w, http.StatusForbidden, "Resource not accessible by personal access token", docsURL)
		return
	}
	m := c.r.Method
	switch {
	case len(p) == 0 && m == http.MethodGet:
		c.listSecrets(sc, org)
	case len(p) == 1 && p[0] == "public-key" && m == http.MethodGet:
		c.json(http.StatusOK, map[string]any{"key_id": sc.key.id, "key": base64.StdEncoding.EncodeToString(sc.key.pub[:])})
	case len(p) == 1 && m == http.MethodGet:
		rec := sc.secrets[strings.ToUpper(p[0])]
		if rec == nil {
			c.notFound()
			return
		}
		c.json(http.StatusOK, secretJSON(rec, org, c.s.ln))
	case len(p) == 1 && m == http.MethodPut:
		c.putSecret(sc, strings.ToUpper(p[0]), org)
	case len(p) == 1 && m == http.MethodDelete:
		name := strings.ToUpper(p[0])
		if sc.secrets[name] == nil {
			c.notFound()
			return
		}
		delete(sc.secrets, name)
		c.s.ForgetConsumer(ServiceName, sc.consumer+"/"+name, "")
		c.w.WriteHeader(http.StatusNoContent)
	default:
		c.notFound()
	}
}

func (c *call) listSecrets(sc *scope, org *account) {
	perPage, page := paging(c.r)
	names := core.SortedKeys(sc.secrets)
	out := []any{}
	for i := (page - 1) * perPage; i < len(names) && i < page*perPage; i++ {
		out = append(out, secretJSON(sc.secrets[names[i]], org, c.s.ln))
	}
	c.json(http.StatusOK, map[string]any{"total_count": len(names), "secrets": out})
}

// secretNamePattern is GitHub's rule: letters, digits and underscores, not
// starting with a digit.
var secretNamePattern = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// putBody is the body of a secret write.
type putBody struct {
	EncryptedValue        *string `json:"encrypted_value"`
	KeyID                 *string `json:"key_id"`
	Visibility            string  `json:"visibility"`
	SelectedRepositoryIDs []int64 `json:"selected_repository_ids"`
}

func (c *call) putSecret(sc *scope, name string, org *account) {
	invalid := func(msg string) {
		writeError(c.w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+msg, docsURL)
	}
	if !secretNamePattern.MatchString(name) || strings.HasPrefix(name, "GITHUB_") {
		invalid("Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_), must not start with a number and must not start with the GITHUB_ prefix.")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(c.r.Body, 1<<20))
	if err != nil {
		writeError(c.w, http.StatusBadRequest, "Problems parsing JSON", docsURL)
		return
	}
	var b putBody
	if err := json.Unmarshal(raw, &b); err != nil {
		writeError(c.w, http.StatusBadRequest, "Problems parsing JSON", docsURL)
		return
	}
	switch {
	case b.EncryptedValue == nil:
		invalid(`"encrypted_value" wasn't supplied.`)
		return
	case b.KeyID == nil:
		invalid(`"key_id" wasn't supplied.`)
		return
	case *b.KeyID != sc.key.id:
		invalid("key_id does not match the current public key.")
		return
	}
	sealed, err := base64.StdEncoding.DecodeString(*b.EncryptedValue)
	if err != nil {
		invalid("encrypted_value is not valid base64.")
		return
	}
	plain, ok := box.OpenAnonymous(nil, sealed, sc.key.pub, sc.key.priv)
	if !ok {
		invalid("encrypted_value could not be decrypted with the current public key.")
		return
	}
	if org != nil {
		switch b.Visibility {
		case "all", "private":
		case "selected":
			for _, id := range b.SelectedRepositoryIDs {
				if r := c.s.repoByID(id); r == nil || r.owner != org {
					invalid(fmt.Sprintf("selected_repository_ids: %d is not a repository of %s.", id, org.login))
					return
				}
			}
		case "":
			invalid(`"visibility" wasn't supplied.`)
			return
		default:
			invalid(fmt.Sprintf("visibility must be one of all, private, selected, not %q.", b.Visibility))
			return
		}
	}
	now := c.s.Clock().Now().UTC().Truncate(time.Second)
	rec, exists := sc.secrets[name]
	if !exists {
		rec = &secretRec{name: name, created: now}
		sc.secrets[name] = rec
	}
	rec.value, rec.updated = string(plain), now
	if org != nil {
		rec.visibility = b.Visibility
		rec.selected = nil
		if b.Visibility == "selected" {
			rec.selected = append([]int64(nil), b.SelectedRepositoryIDs...)
		}
	}
	c.s.RecordConsumer(ServiceName, sc.consumer+"/"+name, "", rec.value)
	if exists {
		c.w.WriteHeader(http.StatusNoContent)
		return
	}
	c.json(http.StatusCreated, map[string]any{})
}

func (c *call) getAccount(login string, orgOnly bool) {
	a := c.s.accounts[strings.ToLower(login)]
	if a == nil || (orgOnly && !a.org) {
		c.notFound()
		return
	}
	c.json(http.StatusOK, accountJSON(a))
}

func (c *call) listRepos(login string, orgOnly bool) {
	a := c.s.accounts[strings.ToLower(login)]
	if a == nil || (orgOnly && !a.org) {
		c.notFound()
		return
	}
	perPage, page := paging(c.r)
	names := core.SortedKeys(a.repos)
	out := []any{}
	for i := (page - 1) * perPage; i < len(names) && i < page*perPage; i++ {
		out = append(out, repoJSON(a.repos[names[i]]))
	}
	if page*perPage < len(names) {
		u := *c.r.URL
		q := u.Query()
		q.Set("page", strconv.Itoa(page+1))
		q.Set("per_page", strconv.Itoa(perPage))
		u.RawQuery = q.Encode()
		c.w.Header().Set("Link", fmt.Sprintf(`<https://%s%s>; rel="next"`, c.r.Host, u.RequestURI()))
	}
	c.json(http.StatusOK, out)
}

// paging reads per_page (default 30, at most 100) and page (from 1).
func paging(r *http.Request) (perPage, page int) {
	perPage, page = 30, 1
	if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	return perPage, page
}

func accountJSON(a *account) map[string]any {
	typ := "User"
	if a.org {
		typ = "Organization"
	}
	return map[string]any{"login": a.login, "id": a.id, "type": typ}
}

func repoJSON(r *repository) map[string]any {
	vis := "public"
	if r.private {
		vis = "private"
	}
	return map[string]any{
		"id": r.id, "name": r.name, "full_name": r.owner.login + "/" + r.name,
		"private": r.private, "visibility": vis, "owner": accountJSON(r.owner),
	}
}

func envJSON(r *repository, e *environment) map[string]any {
	return map[string]any{"id": e.id, "name": e.name, "url": "/repos/" + r.owner.login + "/" + r.name + "/environments/" + e.name}
}

const timeFormat = "2006-01-02T15:04:05Z"

func secretJSON(rec *secretRec, org *account, ln *core.Listener) map[string]any {
	m := map[string]any{"name": rec.name, "created_at": rec.created.Format(timeFormat), "updated_at": rec.updated.Format(timeFormat)}
	if org != nil {
		m["visibility"] = rec.visibility
		if rec.visibility == "selected" {
			m["selected_repositories_url"] = "https://" + ln.HostPort() + "/orgs/" + org.login + "/actions/secrets/" + rec.name + "/repositories"
		}
	}
	return m
}

// unescape undoes the clients' escaping of one path segment (an
// environment named "my env" arrives as my%20env).
func unescape(p string) (string, error) { return url.PathUnescape(p) }

func (s *Service) scopes() []*scope {
	var out []*scope
	for _, a := range s.accounts {
		if a.scope != nil {
			out = append(out, a.scope)
		}
		for _, r := range a.repos {
			out = append(out, &r.scope)
			for _, e := range r.envs {
				out = append(out, &e.scope)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].consumer) > len(out[j].consumer) })
	return out
}

// serveControl is the simulator's own view of its secrets, for tests and
// the demo: GET /_sim/github/secret?target=<consumer target> answers
// {"value","updated_at"}. GitHub has no way to read a secret's value; this
// stands for "a workflow that reads it", and needs the simulator's admin
// token (the control API's), never a GitHub token.
func (s *Service) serveControl(w http.ResponseWriter, r *http.Request) {
	want := "Bearer " + s.AdminToken()
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
		writeError(w, http.StatusUnauthorized, "the control API needs the simulator's admin token", "")
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != "/_sim/github/secret" {
		writeError(w, http.StatusNotFound, "Not Found", "")
		return
	}
	target := r.URL.Query().Get("target")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range s.scopes() {
		if name, ok := strings.CutPrefix(target, sc.consumer+"/"); ok && !strings.Contains(name, "/") {
			if rec := sc.secrets[name]; rec != nil {
				core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{"value": rec.value, "updated_at": rec.updated.Format(timeFormat)})
				return
			}
		}
	}
	writeError(w, http.StatusNotFound, "Not Found", "")
}
