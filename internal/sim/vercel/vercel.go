// Package vercel is the simulated Vercel REST API (api.vercel.com) on an
// HTTPS listener of its own: teams, projects, project environment
// variables and deployments, with Vercel's bearer tokens, its ?teamId= /
// ?slug= scoping and its {"error":{"code","message"}} error shape. It is
// what rotor's "vercel" sink is tested against, and what the demo
// delivers to.
//
// Values live in memory only; every write of a variable, and every
// deployment that snapshots one, is reported with core.RecordConsumer, so
// GET /_sim/consumers shows which credential each consumer holds — the
// variable as stored, and, more truthfully, the running production
// deployment (Vercel applies new values only to new deployments).
package vercel

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// The demo seed: one team the demo token may act for, with one project
// and a READY production deployment; a second token that belongs to
// another user and has no access to the team.
const (
	DemoTeamID      = "team_rotordemo0000000000001"
	DemoTeamSlug    = "rotor-demo"
	DemoProjectID   = "prj_rotordemostorefront0001"
	DemoProjectName = "storefront"
	// OtherTeamID is a team that exists but the demo token cannot act for.
	OtherTeamID   = "team_someoneelse000000000001"
	OtherTeamSlug = "someone-else"
)

// BuildTime is how long (in simulated time) a deployment stays BUILDING
// before it is READY.
const BuildTime = 2 * time.Second

// maxBody bounds request bodies: Vercel's 64 KB limit on a project's
// variables, plus room for JSON.
const maxBody = 128 * 1024

// maxValue is the largest value of one variable the simulator takes
// (Vercel: 64 KB for all of a deployment's variables together).
const maxValue = 64 * 1024

// maxComment is Vercel's limit on a variable's comment.
const maxComment = 500

var (
	keyRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	envTypes  = []string{"system", "encrypted", "plain", "sensitive", "secret"}
	envTarget = []string{"production", "preview", "development"}
)

// Service is the Vercel service.
type Service struct {
	c        *core.Core
	listener *core.Listener

	mu       sync.Mutex
	teams    map[string]*team // by id
	tokens   map[string]*token
	token    string
	denied   string
	serial   int
	lastTime int64
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

type token struct {
	user string
	// personal is the user's own (Hobby) scope, used when a request
	// names no team.
	personal *team
	teams    map[string]bool
}

type team struct {
	id, slug, name string
	projects       []*project
}

type project struct {
	id, name    string
	team        *team
	createdAt   int64
	envs        []*envVar
	deployments []*deployment
}

type envVar struct {
	id, key, value, typ string
	target              []string
	gitBranch, comment  string
	createdAt           int64
	updatedAt           int64
}

type deployment struct {
	uid, name, url, target string
	createdAt              int64
	meta                   map[string]string
	// env is what the build read: key -> value.
	env map[string]string
}

// Register seeds the demo team, project, deployment and tokens, and asks
// for the service's own HTTPS listener (Vercel's API lives at the root of
// its host, like api.vercel.com).
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.c = c
	s.teams = map[string]*team{}
	s.tokens = map[string]*token{}
	var err error
	if s.token, err = core.RandomToken(18); err != nil {
		return err
	}
	if s.denied, err = core.RandomToken(18); err != nil {
		return err
	}
	now := c.Clock().Now().UnixMilli()
	demo := &team{id: DemoTeamID, slug: DemoTeamSlug, name: "Rotor Demo"}
	other := &team{id: OtherTeamID, slug: OtherTeamSlug, name: "Someone Else"}
	s.teams[demo.id], s.teams[other.id] = demo, other
	p := &project{id: DemoProjectID, name: DemoProjectName, team: demo, createdAt: now}
	p.deployments = append(p.deployments, &deployment{
		uid: "dpl_rotordemoinitial000000001", name: p.name, url: p.name + "-initial-" + demo.slug + ".vercel.app",
		target: "production", createdAt: now - int64(time.Hour/time.Millisecond), meta: map[string]string{}, env: map[string]string{},
	})
	demo.projects = append(demo.projects, p)
	other.projects = append(other.projects, &project{id: "prj_someoneelsesite000000001", name: "their-site", team: other, createdAt: now})
	s.tokens[s.token] = &token{user: "rotor-demo-user", personal: &team{id: "", slug: "rotor-demo-user"}, teams: map[string]bool{demo.id: true}}
	s.tokens[s.denied] = &token{user: "outsider", personal: &team{id: "", slug: "outsider"}, teams: map[string]bool{other.id: true}}
	s.listener = r.Listen("vercel", true, c.WithFaults(writeUnavailable, http.HandlerFunc(s.serve)))
	return nil
}

// TokenFile is the file beside sim.json holding the demo token, for a
// sink's token: {file: …} (as the admin token has its own file).
const TokenFile = "vercel-token"

// Started writes the service's address and the demo's names into sim.json,
// and the demo token into the state dir (TokenFile).
func (s *Service) Started(info *simfile.Info) error {
	info.Vercel = &simfile.Vercel{
		URL: "https://" + s.listener.HostPort(), Token: s.token, TeamID: DemoTeamID, TeamSlug: DemoTeamSlug,
		Project: DemoProjectName, ProjectID: DemoProjectID, DeniedToken: s.denied, OtherTeamID: OtherTeamID,
	}
	if info.CAFile != "" {
		path := filepath.Join(filepath.Dir(info.CAFile), TokenFile)
		if err := simfile.WriteFileAtomic(path, []byte(s.token+"\n"), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", TokenFile, err)
		}
		info.Vercel.TokenFile = path
	}
	return nil
}

// apiError is Vercel's error body.
type apiError struct {
	Error map[string]any `json:"error"`
}

func writeErr(w http.ResponseWriter, status int, code, msg string, extra ...any) {
	body := map[string]any{"code": code, "message": msg}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	core.WriteJSON(w, status, core.PlainJSON, apiError{Error: body})
}

func writeUnavailable(w http.ResponseWriter, _ *http.Request) {
	writeErr(w, http.StatusServiceUnavailable, "service_unavailable", core.UnavailableMessage)
}

func ok(w http.ResponseWriter, status int, v any) { core.WriteJSON(w, status, core.PlainJSON, v) }

// now is simulated time in ms, strictly increasing across calls so that
// two writes never share an updatedAt (real Vercel's milliseconds make a
// tie between a person's edit and rotor's practically impossible).
func (s *Service) now() int64 {
	t := s.c.Clock().Now().UnixMilli()
	if t <= s.lastTime {
		t = s.lastTime + 1
	}
	s.lastTime = t
	return t
}

func (s *Service) newID(prefix string) string {
	s.serial++
	r, _ := core.RandomToken(9)
	r = strings.NewReplacer("-", "x", "_", "y").Replace(r)
	return fmt.Sprintf("%s%s%d", prefix, r, s.serial)
}

// serve routes one request. Every route needs a valid bearer token; a
// request naming a team (teamId or slug) needs a token of a member.
func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	auth := r.Header.Get("Authorization")
	tok, found := strings.CutPrefix(auth, "Bearer ")
	if auth == "" {
		writeErr(w, http.StatusForbidden, "forbidden", "Missing Authorization header.", "missingToken", true)
		return
	}
	tk := s.tokens[strings.TrimSpace(tok)]
	if !found || tk == nil {
		writeErr(w, http.StatusForbidden, "forbidden", "Not authorized", "invalidToken", true)
		return
	}
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.URL.Path == "/v2/user" && r.Method == http.MethodGet {
		ok(w, http.StatusOK, map[string]any{"user": map[string]any{"id": tk.user, "username": tk.user}})
		return
	}
	if r.URL.Path == "/v2/teams" && r.Method == http.MethodGet {
		teams := []map[string]any{}
		for _, id := range core.SortedKeys(s.teams) {
			if t := s.teams[id]; tk.teams[id] {
				teams = append(teams, map[string]any{"id": t.id, "slug": t.slug, "name": t.name})
			}
		}
		ok(w, http.StatusOK, map[string]any{"teams": teams, "pagination": pagination(len(teams))})
		return
	}
	scope, fail := s.scope(tk, r)
	if fail != "" {
		writeErr(w, http.StatusForbidden, "forbidden", fail)
		return
	}
	switch {
	case len(seg) == 2 && seg[1] == "projects" && r.Method == http.MethodGet:
		s.listProjects(w, r, scope)
	case len(seg) >= 3 && seg[1] == "projects":
		p := findProject(scope, seg[2])
		if p == nil {
			writeErr(w, http.StatusNotFound, "not_found", "Project not found.")
			return
		}
		switch {
		case len(seg) == 3 && r.Method == http.MethodGet:
			ok(w, http.StatusOK, projectJSON(p))
		case len(seg) == 4 && seg[3] == "env" && r.Method == http.MethodGet:
			s.listEnv(w, r, p)
		case len(seg) == 4 && seg[3] == "env" && r.Method == http.MethodPost:
			s.createEnv(w, r, p)
		case len(seg) == 5 && seg[3] == "env" && r.Method == http.MethodGet:
			s.getEnv(w, p, seg[4])
		case len(seg) == 5 && seg[3] == "env" && r.Method == http.MethodPatch:
			s.editEnv(w, r, p, seg[4])
		case len(seg) == 5 && seg[3] == "env" && r.Method == http.MethodDelete:
			s.deleteEnv(w, p, seg[4])
		default:
			writeErr(w, http.StatusNotFound, "not_found", "The requested API endpoint was not found.")
		}
	case len(seg) == 2 && seg[1] == "deployments" && r.Method == http.MethodGet:
		s.listDeployments(w, r, scope)
	case len(seg) == 2 && seg[1] == "deployments" && r.Method == http.MethodPost:
		s.createDeployment(w, r, scope)
	case len(seg) == 3 && seg[1] == "deployments" && r.Method == http.MethodGet:
		p, d := findDeployment(scope, seg[2])
		if d == nil {
			writeErr(w, http.StatusNotFound, "not_found", "Deployment not found.")
			return
		}
		ok(w, http.StatusOK, s.deploymentJSON(p, d))
	default:
		writeErr(w, http.StatusNotFound, "not_found", "The requested API endpoint was not found.")
	}
}

// scope is the team a request acts in: ?teamId= or ?slug=, or the
// token's personal scope. "" fail means found and allowed.
func (s *Service) scope(tk *token, r *http.Request) (*team, string) {
	q := r.URL.Query()
	id, slug := q.Get("teamId"), q.Get("slug")
	if id == "" && slug == "" {
		return tk.personal, ""
	}
	for _, t := range s.teams {
		if (id != "" && t.id == id) || (id == "" && t.slug == slug) {
			if tk.teams[t.id] {
				return t, ""
			}
			break
		}
	}
	// Vercel does not tell a team that does not exist from one the token
	// may not act for.
	return nil, "Not authorized"
}

func findProject(t *team, idOrName string) *project {
	for _, p := range t.projects {
		if p.id == idOrName || p.name == idOrName {
			return p
		}
	}
	return nil
}

func findDeployment(t *team, idOrURL string) (*project, *deployment) {
	for _, p := range t.projects {
		for _, d := range p.deployments {
			if d.uid == idOrURL || d.url == idOrURL {
				return p, d
			}
		}
	}
	return nil, nil
}

func projectJSON(p *project) map[string]any {
	return map[string]any{"id": p.id, "name": p.name, "accountId": p.team.id, "createdAt": p.createdAt, "updatedAt": p.createdAt}
}

func pagination(n int) map[string]any {
	return map[string]any{"count": n, "next": nil, "prev": nil}
}

func (s *Service) listProjects(w http.ResponseWriter, r *http.Request, t *team) {
	search := r.URL.Query().Get("search")
	out := []map[string]any{}
	for _, p := range t.projects {
		if search == "" || strings.Contains(p.name, search) {
			out = append(out, projectJSON(p))
		}
	}
	ok(w, http.StatusOK, map[string]any{"projects": out, "pagination": pagination(len(out))})
}

// envJSON is a variable as the list shows it: the value is encrypted
// (an opaque stand-in) unless decrypted is asked for and the type
// allows it; a sensitive value is never shown.
func envJSON(e *envVar, decrypt bool) map[string]any {
	m := map[string]any{
		"id": e.id, "key": e.key, "type": e.typ, "target": slices.Clone(e.target),
		"createdAt": e.createdAt, "updatedAt": e.updatedAt, "comment": e.comment,
		"configurationId": nil, "customEnvironmentIds": []string{}, "decrypted": false,
	}
	if e.gitBranch != "" {
		m["gitBranch"] = e.gitBranch
	}
	switch {
	case e.typ == "sensitive" || e.typ == "secret":
		// write-only: no value, not even an encrypted one
	case decrypt || e.typ == "plain":
		m["value"], m["decrypted"] = e.value, true
	default:
		m["value"] = "enc:" + strconv.FormatInt(e.updatedAt, 36) + ":" + strings.Repeat("x", 16)
	}
	return m
}

func (s *Service) listEnv(w http.ResponseWriter, r *http.Request, p *project) {
	q := r.URL.Query()
	decrypt := q.Get("decrypt") == "true"
	branch := q.Get("gitBranch")
	out := []map[string]any{}
	for _, e := range p.envs {
		if branch != "" && e.gitBranch != "" && e.gitBranch != branch {
			continue
		}
		out = append(out, envJSON(e, decrypt))
	}
	ok(w, http.StatusOK, map[string]any{"envs": out, "pagination": pagination(len(out))})
}

// getEnv is GET /v1/projects/{p}/env/{id}: the decrypted value, where the
// type allows reading it back.
func (s *Service) getEnv(w http.ResponseWriter, p *project, id string) {
	for _, e := range p.envs {
		if e.id == id {
			ok(w, http.StatusOK, envJSON(e, true))
			return
		}
	}
	writeErr(w, http.StatusNotFound, "not_found", "Environment Variable not found.")
}

// envBody is a variable in a create or edit request.
type envBody struct {
	Key       *string  `json:"key"`
	Value     *string  `json:"value"`
	Type      *string  `json:"type"`
	Target    []string `json:"target"`
	GitBranch *string  `json:"gitBranch"`
	Comment   *string  `json:"comment"`
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeErr(w, http.StatusRequestEntityTooLarge, "bad_request", "Request body is too large.")
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", "Invalid request: "+core.JSONErrorMessage(err))
		return false
	}
	return true
}

// check validates a variable as it would be after the request; "" is
// valid. It never repeats the value.
func check(key, typ string, target []string, branch, comment string, value string) string {
	switch {
	case !keyRE.MatchString(key):
		return "Invalid request: `key` must contain only letters, digits and underscores, and must not start with a digit."
	case !slices.Contains(envTypes, typ):
		return fmt.Sprintf("Invalid request: `type` should be equal to one of the allowed values %q.", envTypes)
	case len(target) == 0:
		return "Invalid request: `target` must be a non-empty array."
	case len(value) > maxValue:
		return "Invalid request: `value` is too long."
	case len(comment) > maxComment:
		return fmt.Sprintf("Invalid request: `comment` should NOT be longer than %d characters.", maxComment)
	}
	for _, t := range target {
		if !slices.Contains(envTarget, t) {
			return fmt.Sprintf("Invalid request: `target` items should be equal to one of the allowed values %q.", envTarget)
		}
	}
	if typ == "sensitive" && slices.Contains(target, "development") {
		return "Sensitive environment variables cannot be created in the Development environment."
	}
	if branch != "" && !(len(target) == 1 && target[0] == "preview") {
		return "Invalid request: `gitBranch` can only be set for the Preview environment."
	}
	return ""
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// createEnv is POST /v10/projects/{p}/env[?upsert=true]: one variable or
// an array. Without upsert, a variable whose key, branch and a target are
// taken fails; with it, the existing one is updated in place.
func (s *Service) createEnv(w http.ResponseWriter, r *http.Request, p *project) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeErr(w, http.StatusRequestEntityTooLarge, "bad_request", "Request body is too large.")
		return
	}
	var many []envBody
	single := len(strings.TrimSpace(string(b))) > 0 && strings.TrimSpace(string(b))[0] == '{'
	if single {
		var one envBody
		err = json.Unmarshal(b, &one)
		many = []envBody{one}
	} else {
		err = json.Unmarshal(b, &many)
	}
	if err != nil || len(many) == 0 {
		writeErr(w, http.StatusBadRequest, "bad_request", "Invalid request: "+core.JSONErrorMessage(err))
		return
	}
	upsert := r.URL.Query().Get("upsert") == "true"
	var created []map[string]any
	failed := []map[string]any{}
	for _, in := range many {
		key, value, typ := deref(in.Key), deref(in.Value), deref(in.Type)
		if typ == "" {
			typ = "encrypted"
		}
		branch, comment := deref(in.GitBranch), deref(in.Comment)
		if msg := check(key, typ, in.Target, branch, comment, value); msg != "" || in.Value == nil {
			if msg == "" {
				msg = "Invalid request: missing required property `value`."
			}
			if single {
				writeErr(w, http.StatusBadRequest, "bad_request", msg, "key", key)
				return
			}
			failed = append(failed, map[string]any{"error": map[string]any{"code": "bad_request", "message": msg, "key": key}})
			continue
		}
		var existing *envVar
		for _, e := range p.envs {
			if e.key == key && e.gitBranch == branch && overlaps(e.target, in.Target) {
				existing = e
				break
			}
		}
		if existing != nil && !upsert {
			msg := fmt.Sprintf("A variable with the name `%s` already exists for the target %s on branch %s", key, strings.Join(existing.target, ","), branch)
			if single {
				writeErr(w, http.StatusForbidden, "ENV_ALREADY_EXISTS", msg, "key", key, "envVarKey", key, "target", existing.target)
				return
			}
			failed = append(failed, map[string]any{"error": map[string]any{"code": "ENV_CONFLICT", "message": msg, "envVarKey": key, "target": existing.target}})
			continue
		}
		now := s.now()
		if existing == nil {
			existing = &envVar{id: s.newID(""), key: key, createdAt: now}
			p.envs = append(p.envs, existing)
		}
		existing.value, existing.typ, existing.target = value, typ, slices.Clone(in.Target)
		existing.gitBranch, existing.comment, existing.updatedAt = branch, comment, now
		s.recordEnv(p, existing)
		created = append(created, envJSON(existing, false))
	}
	var c any = created
	if single {
		if len(created) == 0 {
			c = nil
		} else {
			c = created[0]
		}
	}
	ok(w, http.StatusCreated, map[string]any{"created": c, "failed": failed})
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// editEnv is PATCH /v9/projects/{p}/env/{id}: every field optional.
func (s *Service) editEnv(w http.ResponseWriter, r *http.Request, p *project, id string) {
	var e *envVar
	for _, x := range p.envs {
		if x.id == id {
			e = x
		}
	}
	if e == nil {
		writeErr(w, http.StatusNotFound, "not_found", "Environment Variable not found.")
		return
	}
	var in envBody
	if !readJSON(w, r, &in) {
		return
	}
	key, value, typ, target, branch, comment := e.key, e.value, e.typ, e.target, e.gitBranch, e.comment
	if in.Key != nil {
		key = *in.Key
	}
	if in.Value != nil {
		value = *in.Value
	}
	if in.Type != nil {
		typ = *in.Type
	}
	if in.Target != nil {
		target = in.Target
	}
	if in.GitBranch != nil {
		branch = *in.GitBranch
	}
	if in.Comment != nil {
		comment = *in.Comment
	}
	if msg := check(key, typ, target, branch, comment, value); msg != "" {
		writeErr(w, http.StatusBadRequest, "bad_request", msg)
		return
	}
	if e.typ == "sensitive" && typ != "sensitive" {
		writeErr(w, http.StatusBadRequest, "bad_request", "A sensitive environment variable cannot be changed to another type.")
		return
	}
	for _, x := range p.envs {
		if x != e && x.key == key && x.gitBranch == branch && overlaps(x.target, target) {
			writeErr(w, http.StatusBadRequest, "ENV_CONFLICT", fmt.Sprintf("A variable with the name `%s` already exists for the target %s", key, strings.Join(x.target, ",")))
			return
		}
	}
	e.key, e.value, e.typ, e.target, e.gitBranch, e.comment = key, value, typ, slices.Clone(target), branch, comment
	e.updatedAt = s.now()
	s.recordEnv(p, e)
	ok(w, http.StatusOK, envJSON(e, false))
}

func (s *Service) deleteEnv(w http.ResponseWriter, p *project, id string) {
	for i, e := range p.envs {
		if e.id == id {
			p.envs = slices.Delete(p.envs, i, i+1)
			for _, t := range e.target {
				s.c.ForgetConsumer("vercel", consumerTarget(p, e.key), fieldOf(t, e.gitBranch))
			}
			ok(w, http.StatusOK, envJSON(e, false))
			return
		}
	}
	writeErr(w, http.StatusNotFound, "not_found", "Environment Variable not found.")
}

func consumerTarget(p *project, key string) string { return p.team.slug + "/" + p.name + "/" + key }

func fieldOf(target, branch string) string {
	if branch != "" {
		return target + ":" + branch
	}
	return target
}

// recordEnv reports the variable's value for each of its targets.
func (s *Service) recordEnv(p *project, e *envVar) {
	for _, t := range e.target {
		s.c.RecordConsumer("vercel", consumerTarget(p, e.key), fieldOf(t, e.gitBranch), e.value)
	}
}

// state is a deployment's readyState now: BUILDING for BuildTime of
// simulated time, then READY.
func (s *Service) state(d *deployment) string {
	if s.c.Clock().Now().UnixMilli() < d.createdAt+BuildTime.Milliseconds() {
		return "BUILDING"
	}
	return "READY"
}

func (s *Service) deploymentJSON(p *project, d *deployment) map[string]any {
	st := s.state(d)
	meta := map[string]string{}
	for k, v := range d.meta {
		meta[k] = v
	}
	return map[string]any{
		"uid": d.uid, "id": d.uid, "name": d.name, "url": d.url, "created": d.createdAt, "createdAt": d.createdAt,
		"state": st, "readyState": st, "target": d.target, "meta": meta, "projectId": p.id,
		"ownerId": p.team.id, "type": "LAMBDAS",
	}
}

// listDeployments is GET /v6/deployments: newest first, filtered by
// projectId, target, state; limit (default 20).
func (s *Service) listDeployments(w http.ResponseWriter, r *http.Request, t *team) {
	q := r.URL.Query()
	limit := 20
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n <= 100 {
		limit = n
	}
	type pd struct {
		p *project
		d *deployment
	}
	var all []pd
	for _, p := range t.projects {
		if pid := q.Get("projectId"); pid != "" && pid != p.id && pid != p.name {
			continue
		}
		for _, d := range p.deployments {
			if tg := q.Get("target"); tg != "" && d.target != tg {
				continue
			}
			if st := q.Get("state"); st != "" && !slices.Contains(strings.Split(st, ","), s.state(d)) {
				continue
			}
			all = append(all, pd{p, d})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].d.createdAt > all[j].d.createdAt })
	if len(all) > limit {
		all = all[:limit]
	}
	out := []map[string]any{}
	for _, x := range all {
		out = append(out, s.deploymentJSON(x.p, x.d))
	}
	ok(w, http.StatusOK, map[string]any{"deployments": out, "pagination": pagination(len(out))})
}

// createBody is the part of POST /v13/deployments the simulator serves:
// a redeploy of an existing deployment (deploymentId).
type createBody struct {
	Name         string            `json:"name"`
	DeploymentID string            `json:"deploymentId"`
	Project      string            `json:"project"`
	Target       string            `json:"target"`
	Meta         map[string]string `json:"meta"`
}

// createDeployment redeploys: the new deployment has the old one's
// project and source, its own meta, and the project's variables for its
// target as they are now (the snapshot its build reads).
func (s *Service) createDeployment(w http.ResponseWriter, r *http.Request, t *team) {
	var in createBody
	if !readJSON(w, r, &in) {
		return
	}
	if in.Name == "" {
		writeErr(w, http.StatusBadRequest, "bad_request", "Invalid request: missing required property `name`.")
		return
	}
	if in.DeploymentID == "" {
		writeErr(w, http.StatusBadRequest, "bad_request", "The simulator only creates deployments by redeploying one (deploymentId); it builds no files or Git sources.")
		return
	}
	if len(in.Meta) > 100 {
		writeErr(w, http.StatusBadRequest, "bad_request", "Invalid request: `meta` should NOT have more than 100 properties.")
		return
	}
	p, src := findDeployment(t, in.DeploymentID)
	if src == nil {
		writeErr(w, http.StatusNotFound, "not_found", "Deployment not found.")
		return
	}
	target := in.Target
	if target == "" {
		target = src.target
	}
	if target != "production" && target != "preview" && target != "staging" {
		writeErr(w, http.StatusBadRequest, "bad_request", "Invalid request: `target` should be production, preview or staging.")
		return
	}
	envTarget := target
	if envTarget == "staging" {
		envTarget = "preview"
	}
	now := s.now()
	d := &deployment{uid: s.newID("dpl_"), name: p.name, target: target, createdAt: now, meta: map[string]string{}, env: map[string]string{}}
	d.url = strings.ToLower(p.name + "-" + d.uid[4:12] + "-" + t.slug + ".vercel.app")
	for k, v := range in.Meta {
		d.meta[k] = v
	}
	field := "deployment"
	if target != "production" {
		field = "deployment/" + target
	}
	for _, e := range p.envs {
		if slices.Contains(e.target, envTarget) && e.gitBranch == "" {
			d.env[e.key] = e.value
			s.c.RecordConsumer("vercel", p.team.slug+"/"+p.name+"/"+field, e.key, e.value)
		}
	}
	p.deployments = append(p.deployments, d)
	ok(w, http.StatusOK, s.deploymentJSON(p, d))
}
