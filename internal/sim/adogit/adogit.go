// Package adogit is the simulator's Azure DevOps Git service: repositories
// of organizations and projects, with commits, branches and files, behind
// the REST paths rotor's adogit sink uses (Refs - List, Items - Get,
// Pushes - Create, Repositories - List, api-version 7.1), on a listener of
// its own. It authenticates as Azure DevOps does: Basic with an empty user
// name and a PAT (a refused PAT gets the 203 sign-in page, as Azure DevOps
// answers), or an Entra bearer token for resource
// 499b84ac-1321-427f-aa17-267ca6975798.
//
// It holds an age X25519 identity whose recipient sim.json publishes: when
// a push writes a YAML scalar that is an age file (base64 of the binary
// format) it can decrypt, it records the plaintext's consumer
// (/_sim/consumers); one encrypted to other recipients only is recorded as
// sealed. Everything is in memory.
package adogit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // Git object ids are SHA-1 by definition.
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/sim/core"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// ServiceName is the service name consumers are recorded under.
const ServiceName = "adogit"

// The demo repository every simulator seeds.
const (
	DemoOrganization = "contoso"
	DemoProject      = "payments"
	DemoRepository   = "deploy"
	DemoBranch       = "main"
	DemoPath         = "/charts/payments/values.yaml"
)

// DemoValues is the demo values file: Helm values with comments, anchors,
// quoted strings and odd spacing, and the placeholder rotor fills
// (azure.clientSecret, with its metadata in azure.rotor).
const DemoValues = `# Helm values for the payments API.
# Managed by the platform team; rotor writes azure.clientSecret and azure.rotor.
replicaCount: 2

image:
  repository: contoso.azurecr.io/payments-api
  tag: "1.14.2"   # pinned
  pullPolicy: IfNotPresent

defaults: &defaults
  timeoutSeconds: 30
  retries:    3

api:
  <<: *defaults
  basePath: '/api/v1'

azure:
  tenantId: "00000000-0000-0000-0000-000000000000"
  clientId: ""
  # Encrypted to the cluster's age key by rotor; decrypted at deploy time.
  clientSecret: ""
  rotor: {}

ingress:
  enabled: true
  hosts:
    - host: payments.contoso.example
      paths: ["/"]
`

// Service is the simulated Azure DevOps Git service.
type Service struct {
	*core.Core
	listener *core.Listener
	pat      string
	identity *age.X25519Identity

	mu     sync.Mutex
	repos  map[string]*Repo // by lower-case org/project/name
	pushes int
}

var (
	_ core.Service = (*Service)(nil)
	_ core.Starter = (*Service)(nil)
)

// Repo is one Git repository.
type Repo struct {
	ID           string
	Organization string
	Project      string
	Name         string
	// refs is branch name (without refs/heads/) → commit id.
	refs    map[string]string
	commits map[string]*commit
}

type commit struct {
	id, parent, comment string
	at                  time.Time
	// files is path → content.
	files map[string][]byte
}

// Register seeds the demo repository and asks for the service's listener.
func (s *Service) Register(c *core.Core, r *core.Registrar) error {
	s.Core = c
	s.repos = map[string]*Repo{}
	b := make([]byte, 26)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	s.pat = strings.ToLower(base64.RawStdEncoding.EncodeToString(b)[:26]) + "sim"
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return fmt.Errorf("adogit: age identity: %w", err)
	}
	s.identity = id
	repo := s.AddRepo(DemoOrganization, DemoProject, DemoRepository)
	s.seed(repo, DemoBranch, map[string][]byte{
		DemoPath:     []byte(DemoValues),
		"/README.md": []byte("# deploy\n\nHelm charts of the payments team.\n"),
	})
	s.seed(s.AddRepo(DemoOrganization, DemoProject, "infra"), DemoBranch, map[string][]byte{"/README.md": []byte("# infra\n")})
	s.listener = r.Listen("adogit", true, s.WithFaults(s.unavailable, s.handler()))
	return nil
}

// Started publishes the service in sim.json.
func (s *Service) Started(info *simfile.Info) error {
	info.AzureDevOpsGit = &simfile.AzureDevOpsGit{
		URL: "https://" + s.listener.HostPort() + "/" + DemoOrganization, Organization: DemoOrganization,
		Project: DemoProject, Repository: DemoRepository, Branch: DemoBranch, Path: DemoPath,
		PAT: s.pat, AgeRecipient: s.identity.Recipient().String(),
	}
	if info.CAFile != "" {
		path := filepath.Join(filepath.Dir(info.CAFile), PATFile)
		if err := simfile.WriteFileAtomic(path, []byte(s.pat+"\n"), 0o600); err != nil {
			return fmt.Errorf("adogit: write %s: %w", PATFile, err)
		}
		info.AzureDevOpsGit.PATFile = path
	}
	return nil
}

// PATFile is the file beside sim.json holding the service's PAT.
const PATFile = "adogit-pat"

// AddRepo creates an empty repository (no branches) and returns it.
func (s *Service) AddRepo(org, project, name string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := repoKey(org, project, name)
	if r, ok := s.repos[k]; ok {
		return r
	}
	sum := sha1.Sum([]byte(k)) //nolint:gosec // an id, not a MAC
	h := hex.EncodeToString(sum[:])
	r := &Repo{ID: h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], Organization: org, Project: project, Name: name,
		refs: map[string]string{}, commits: map[string]*commit{}}
	s.repos[k] = r
	return r
}

func (s *Service) seed(r *Repo, branch string, files map[string][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.newCommitLocked(r, "", "Initial commit", files)
	r.refs[branch] = c.id
}

func repoKey(org, project, name string) string {
	return strings.ToLower(org + "/" + project + "/" + name)
}

// BlobID is Git's object id of a blob with content: what Azure DevOps
// reports as an item's objectId.
func BlobID(content []byte) string {
	h := sha1.New() //nolint:gosec // Git object ids are SHA-1.
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Service) newCommitLocked(r *Repo, parent, comment string, files map[string][]byte) *commit {
	s.pushes++
	h := sha1.New() //nolint:gosec // a commit id
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00", r.ID, parent, comment, s.pushes)
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(h, "%s\x00%s\x00", p, BlobID(files[p]))
	}
	c := &commit{id: hex.EncodeToString(h.Sum(nil)), parent: parent, comment: comment, at: s.Clock().Now().UTC(), files: files}
	r.commits[c.id] = c
	return c
}

// adoError is Azure DevOps' error body.
type adoError struct {
	ID             string `json:"$id"`
	InnerException any    `json:"innerException"`
	Message        string `json:"message"`
	TypeName       string `json:"typeName"`
	TypeKey        string `json:"typeKey"`
	ErrorCode      int    `json:"errorCode"`
	EventID        int    `json:"eventId"`
}

func writeError(w http.ResponseWriter, status int, typeKey, msg string) {
	core.WriteJSON(w, status, core.PlainJSON, adoError{ID: "1", Message: msg,
		TypeName: "Microsoft.TeamFoundation.Git.Server." + typeKey + ", Microsoft.TeamFoundation.Git.Server",
		TypeKey:  typeKey, EventID: 3000})
}

func (s *Service) unavailable(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", core.UnavailableMessage)
}

// signInPage is what Azure DevOps answers a refused PAT with: 203 and an
// HTML page, not a 401.
const signInPage = `<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body>Sign in to Azure DevOps</body></html>`

// authenticate checks Basic PAT or Entra bearer auth; false means it has
// answered.
func (s *Service) authenticate(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(h, "Basic "):
		_, pat, ok := r.BasicAuth()
		if ok && pat == s.pat {
			return true
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNonAuthoritativeInfo)
		_, _ = io.WriteString(w, signInPage)
		return false
	case strings.HasPrefix(h, "Bearer "):
		if _, err := s.Authenticate(r, core.AzureDevOpsResource); err == nil {
			return true
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer authorization_uri=`+s.AuthorityHost())
	writeError(w, http.StatusUnauthorized, "UnauthorizedRequestException",
		"TF400813: The user '' is not authorized to access this resource.")
	return false
}

func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{org}/{project}/_apis/git/repositories", s.listRepos)
	mux.HandleFunc("GET /{org}/{project}/_apis/git/repositories/{repo}/refs", s.withRepo(s.listRefs))
	mux.HandleFunc("GET /{org}/{project}/_apis/git/repositories/{repo}/items", s.withRepo(s.getItem))
	mux.HandleFunc("POST /{org}/{project}/_apis/git/repositories/{repo}/pushes", s.withRepo(s.createPush))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authenticate(w, r) {
			return
		}
		if r.URL.Query().Get("api-version") == "" {
			writeError(w, http.StatusBadRequest, "VssVersionNotSpecifiedException",
				"No api-version was supplied for the "+r.Method+" request. Specify api-version=7.1.")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Service) projectExistsLocked(org, project string) bool {
	for _, r := range s.repos {
		if strings.EqualFold(r.Organization, org) && strings.EqualFold(r.Project, project) {
			return true
		}
	}
	return false
}

func (s *Service) listRepos(w http.ResponseWriter, r *http.Request) {
	org, project := r.PathValue("org"), r.PathValue("project")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.projectExistsLocked(org, project) {
		writeError(w, http.StatusNotFound, "ProjectDoesNotExistWithNameException", "TF200016: The following project does not exist: "+project+". Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.")
		return
	}
	var out []map[string]any
	for _, rp := range s.repos {
		if strings.EqualFold(rp.Organization, org) && strings.EqualFold(rp.Project, project) {
			out = append(out, map[string]any{"id": rp.ID, "name": rp.Name, "defaultBranch": "refs/heads/" + DemoBranch,
				"project": map[string]any{"name": rp.Project}})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["name"].(string) < out[j]["name"].(string) })
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{"value": out, "count": len(out)})
}

// withRepo finds the repository (by name or id) and calls h holding the
// service's lock.
func (s *Service) withRepo(h func(w http.ResponseWriter, r *http.Request, rp *Repo)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		org, project, name := r.PathValue("org"), r.PathValue("project"), r.PathValue("repo")
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.projectExistsLocked(org, project) {
			writeError(w, http.StatusNotFound, "ProjectDoesNotExistWithNameException", "TF200016: The following project does not exist: "+project+". Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.")
			return
		}
		rp := s.repos[repoKey(org, project, name)]
		if rp == nil {
			for _, c := range s.repos {
				if strings.EqualFold(c.ID, name) {
					rp = c
				}
			}
		}
		if rp == nil {
			writeError(w, http.StatusNotFound, "GitRepositoryNotFoundException", "TF401019: The Git repository with name or identifier "+name+" does not exist or you do not have permissions for the operation you are attempting.")
			return
		}
		h(w, r, rp)
	}
}

// listRefs is Refs - List: filter is a prefix of the name without "refs/"
// (heads/main also lists heads/main-old, as in Azure DevOps).
func (s *Service) listRefs(w http.ResponseWriter, r *http.Request, rp *Repo) {
	filter := r.URL.Query().Get("filter")
	var out []map[string]any
	for _, b := range slices.Sorted(func(yield func(string) bool) {
		for k := range rp.refs {
			if !yield(k) {
				return
			}
		}
	}) {
		if strings.HasPrefix("heads/"+b, filter) {
			out = append(out, map[string]any{"name": "refs/heads/" + b, "objectId": rp.refs[b]})
		}
	}
	if out == nil {
		out = []map[string]any{}
	}
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, map[string]any{"value": out, "count": len(out)})
}

// resolveVersion is a version descriptor's commit.
func resolveVersion(rp *Repo, q url.Values) (*commit, string, bool) {
	version, typ := q.Get("versionDescriptor.version"), strings.ToLower(q.Get("versionDescriptor.versionType"))
	if version == "" {
		version, typ = DemoBranch, "branch"
	}
	desc := fmt.Sprintf("<%s: %s >", map[string]string{"branch": "Branch", "commit": "Commit", "": "Branch"}[typ], version)
	switch typ {
	case "", "branch":
		id, ok := rp.refs[version]
		if !ok {
			return nil, desc, false
		}
		return rp.commits[id], desc, true
	case "commit":
		c, ok := rp.commits[strings.ToLower(version)]
		return c, desc, ok
	}
	return nil, desc, false
}

func normPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// getItem is Items - Get for one file: JSON with content and objectId
// when JSON is asked for (Accept or $format=json), the raw file otherwise.
func (s *Service) getItem(w http.ResponseWriter, r *http.Request, rp *Repo) {
	q := r.URL.Query()
	path := normPath(q.Get("path"))
	c, desc, ok := resolveVersion(rp, q)
	if !ok {
		writeError(w, http.StatusNotFound, "GitUnresolvableToCommitException",
			fmt.Sprintf("TF401175:The version descriptor %s could not be resolved to a version in the repository %s", desc, rp.Name))
		return
	}
	content, ok := c.files[path]
	if !ok {
		writeError(w, http.StatusNotFound, "GitItemNotFoundException",
			fmt.Sprintf("TF401174: The item '%s' could not be found in the repository '%s' at the version specified by '%s' (resolved to commit '%s').", path, rp.Name, desc, c.id))
		return
	}
	if q.Get("$format") != "json" && !strings.Contains(r.Header.Get("Accept"), "json") {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(content)
		return
	}
	item := map[string]any{"objectId": BlobID(content), "gitObjectType": "blob", "commitId": c.id, "path": path,
		"url": "https://" + r.Host + r.URL.Path + "?path=" + url.QueryEscape(path)}
	if q.Get("includeContent") == "true" {
		item["content"] = string(content)
	}
	core.WriteJSON(w, http.StatusOK, core.PlainJSON, item)
}

type pushRequest struct {
	RefUpdates []struct {
		Name        string `json:"name"`
		OldObjectID string `json:"oldObjectId"`
	} `json:"refUpdates"`
	Commits []struct {
		Comment string `json:"comment"`
		Changes []struct {
			ChangeType string `json:"changeType"`
			Item       struct {
				Path string `json:"path"`
			} `json:"item"`
			NewContent *struct {
				Content     string `json:"content"`
				ContentType string `json:"contentType"`
			} `json:"newContent"`
		} `json:"changes"`
	} `json:"commits"`
}

const zeroID = "0000000000000000000000000000000000000000"

// createPush is Pushes - Create: one ref update, its commits applied in
// order, compare-and-set on oldObjectId (stale → 409 TF401028).
func (s *Service) createPush(w http.ResponseWriter, r *http.Request, rp *Repo) {
	var req pushRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidArgumentValueException", "The request body could not be read as a push: "+err.Error())
		return
	}
	if len(req.RefUpdates) != 1 || len(req.Commits) == 0 {
		writeError(w, http.StatusBadRequest, "InvalidArgumentValueException", "A push needs exactly one refUpdate and at least one commit.")
		return
	}
	ru := req.RefUpdates[0]
	branch, ok := strings.CutPrefix(ru.Name, "refs/heads/")
	if !ok || branch == "" {
		writeError(w, http.StatusBadRequest, "InvalidArgumentValueException", "TF401025: '"+ru.Name+"' is not a valid name for a Git ref.")
		return
	}
	tip, exists := rp.refs[branch]
	if (!exists && ru.OldObjectID != zeroID) || (exists && !strings.EqualFold(ru.OldObjectID, tip)) {
		writeError(w, http.StatusConflict, "GitReferenceStaleException",
			fmt.Sprintf("TF401028: The reference '%s' has already been updated by another client, so you cannot update it. Please try again.", ru.Name))
		return
	}
	var files map[string][]byte
	parent := ""
	if exists {
		parent = tip
		files = maps(rp.commits[tip].files)
	} else {
		files = map[string][]byte{}
	}
	before := maps(files)
	var last *commit
	for _, cm := range req.Commits {
		for _, ch := range cm.Changes {
			p := normPath(ch.Item.Path)
			_, had := files[p]
			switch strings.ToLower(ch.ChangeType) {
			case "add", "edit":
				if ch.NewContent == nil {
					writeError(w, http.StatusBadRequest, "InvalidArgumentValueException", "A change of type "+ch.ChangeType+" needs newContent.")
					return
				}
				if strings.EqualFold(ch.ChangeType, "add") && had {
					writeError(w, http.StatusBadRequest, "GitItemAlreadyExistsException", fmt.Sprintf("TF401238: The item %s already exists.", p))
					return
				}
				if strings.EqualFold(ch.ChangeType, "edit") && !had {
					writeError(w, http.StatusNotFound, "GitItemNotFoundException", fmt.Sprintf("TF401174: The item '%s' could not be found in the repository '%s'.", p, rp.Name))
					return
				}
				content := []byte(ch.NewContent.Content)
				if strings.EqualFold(ch.NewContent.ContentType, "base64encoded") {
					b, err := base64.StdEncoding.DecodeString(ch.NewContent.Content)
					if err != nil {
						writeError(w, http.StatusBadRequest, "InvalidArgumentValueException", "newContent is not base64.")
						return
					}
					content = b
				}
				files[p] = content
			case "delete":
				if !had {
					writeError(w, http.StatusNotFound, "GitItemNotFoundException", fmt.Sprintf("TF401174: The item '%s' could not be found in the repository '%s'.", p, rp.Name))
					return
				}
				delete(files, p)
			default:
				writeError(w, http.StatusBadRequest, "InvalidArgumentValueException", "Unsupported changeType "+ch.ChangeType+".")
				return
			}
		}
		last = s.newCommitLocked(rp, parent, cm.Comment, maps(files))
		parent = last.id
	}
	rp.refs[branch] = last.id
	for p, content := range files {
		if !bytes.Equal(before[p], content) {
			s.recordConsumers(rp, branch, p, before[p], content)
		}
	}
	core.WriteJSON(w, http.StatusCreated, core.PlainJSON, map[string]any{
		"pushId": s.pushes, "date": last.at.Format(time.RFC3339),
		"commits":    []map[string]any{{"commitId": last.id, "comment": last.comment}},
		"refUpdates": []map[string]any{{"repositoryId": rp.ID, "name": ru.Name, "oldObjectId": ru.OldObjectID, "newObjectId": last.id}},
		"repository": map[string]any{"id": rp.ID, "name": rp.Name},
	})
}

func maps(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// recordConsumers reports every age-encrypted YAML scalar of a pushed
// file that differs from the file's previous version.
func (s *Service) recordConsumers(rp *Repo, branch, path string, before, after []byte) {
	prev := ageScalars(before)
	target := fmt.Sprintf("%s/%s/%s/%s:%s", rp.Organization, rp.Project, rp.Name, branch, path)
	for field, enc := range ageScalars(after) {
		if prev[field] == enc {
			continue
		}
		plain, err := s.decrypt(enc)
		if err != nil {
			s.RecordSealedConsumer(ServiceName, target, field)
			continue
		}
		s.RecordConsumer(ServiceName, target, field, plain)
	}
}

// ageHeader is the first line of every age file.
const ageHeader = "age-encryption.org/v1\n"

// ageScalars finds the scalars of a YAML document that hold an age file,
// base64 of its binary format, by dotted path.
func ageScalars(doc []byte) map[string]string {
	out := map[string]string{}
	var n yaml.Node
	if len(doc) == 0 || yaml.Unmarshal(doc, &n) != nil {
		return out
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				walk(n.Content[i+1], p)
			}
		case yaml.ScalarNode:
			if b, err := base64.StdEncoding.DecodeString(n.Value); err == nil && bytes.HasPrefix(b, []byte(ageHeader)) {
				out[path] = n.Value
			}
		}
	}
	walk(&n, "")
	return out
}

func (s *Service) decrypt(enc string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", err
	}
	r, err := age.Decrypt(bytes.NewReader(b), s.identity)
	if err != nil {
		return "", err
	}
	out, err := io.ReadAll(io.LimitReader(r, 64<<10))
	return string(out), err
}
