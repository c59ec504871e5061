// Package github is the "github" sink: a GitHub Actions secret of a
// repository, an environment or an organization, written sealed to the
// target's public key (a libsodium sealed box, golang.org/x/crypto's
// box.SealAnonymous) through google/go-github.
//
// GitHub secrets are write-only and carry no metadata but their name and
// created_at/updated_at, so rotor's own record (BuildRequest.Last) is the
// only proof that a secret is rotor's: an existing secret rotor never
// delivered to is foreign unless the spec says adopt. updated_at is the
// target's version: it is how the sink tells that a delivery is already in
// place (idempotency), whether it holds a credential (Holds) and whether
// someone changed the secret since (drift). docs/sinks/github.md says what
// that can and cannot prove.
package github

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v84/github"
	"golang.org/x/crypto/nacl/box"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Type is the spec type name.
const Type = "github"

// Kind is the github sink kind.
type Kind struct{}

var (
	_ sink.Kind          = Kind{}
	_ sink.SharedTargets = Kind{}
)

// Type is "github".
func (Kind) Type() string { return Type }

// CheckSpec checks the settings without any I/O.
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

// SharesTarget is true when the name template does not depend on the
// application: every application of the policy would write one secret.
func (Kind) SharesTarget(spec domain.SinkSpec) bool {
	s, err := parseSpec(spec)
	if err != nil {
		return false
	}
	a, errA := render(s.nameTmpl, sampleApp)
	other := sampleApp
	other.App.DisplayName, other.App.AppID, other.App.ObjectID = "other-app", "other-app-id", "other-object-id"
	other.ClientID = other.App.AppID
	b, errB := render(s.nameTmpl, other)
	return errA == nil && errB == nil && a == b
}

// NewBuilder needs the secret resolver for the token.
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	if deps.Secrets == nil {
		return nil, errors.New("github sink: no secret resolver for tokens")
	}
	hc := deps.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Builder{deps: deps, http: hc}, nil
}

// Builder makes github sinks.
type Builder struct {
	deps sink.Deps
	http *http.Client
}

var (
	_ sink.Builder    = (*Builder)(nil)
	_ sink.Discoverer = (*Builder)(nil)
)

func templateData(app domain.Application) TemplateData {
	return TemplateData{App: app, TenantID: app.TenantID, ClientID: app.AppID}
}

// Resolve renders the spec's name for req.App.
func (b *Builder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	s, err := parseSpec(req.Spec)
	if err != nil {
		return sink.TargetID{}, err
	}
	t, err := s.target(templateData(req.App))
	if err != nil {
		return sink.TargetID{}, err
	}
	return t.ID()
}

// Build makes the sink, on req.Pinned when set.
func (b *Builder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	s, err := parseSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	var t Target
	if !req.Pinned.IsZero() {
		if t, err = ParseTarget(req.Pinned); err != nil {
			return nil, err
		}
	} else if t, err = s.target(templateData(req.App)); err != nil {
		return nil, err
	}
	tid, err := t.ID()
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(t.APIURL)
	if err != nil {
		return nil, fmt.Errorf("github sink: api_url: %w", err)
	}
	sk := &Sink{t: t, tid: tid, s: s, b: b, base: base, versions: map[string]string{}}
	if req.Last != nil {
		l := *req.Last
		sk.last, sk.owned = &l, true
		sk.versions[l.KeyID] = l.Version
	}
	return sk, nil
}

// Sink writes one Actions secret.
type Sink struct {
	t    Target
	tid  sink.TargetID
	s    settings
	b    *Builder
	base *url.URL

	mu sync.Mutex
	// owned is true once rotor's record says the secret is rotor's, or
	// this sink has written (or tried to write) it.
	owned bool
	// last is rotor's record of its last delivery (BuildRequest.Last).
	last *sink.Delivered
	// versions is the updated_at each credential left, by key id: rotor's
	// record and this sink's own writes. It is all Holds can go on.
	versions map[string]string
	repoID   int64
}

var (
	_ sink.Sink          = (*Sink)(nil)
	_ sink.Validator     = (*Sink)(nil)
	_ sink.Holder        = (*Sink)(nil)
	_ sink.VersionReader = (*Sink)(nil)
)

// Target is the secret's id.
func (s *Sink) Target() sink.TargetID { return s.tid }

// Describe names the secret.
func (s *Sink) Describe() string { return s.t.Describe() }

// client is go-github on the API URL, with the token resolved now (a
// rotated token file is picked up without a restart).
func (s *Sink) client(ctx context.Context) (*gh.Client, error) {
	tok, err := s.b.deps.Secrets.Resolve(ctx, s.s.token)
	if err != nil {
		err = fmt.Errorf("github sink: token (%s): %w", s.s.token, err)
		if s.s.token.KeyVault == nil {
			// A missing variable or file stays missing until a person
			// fixes the configuration.
			return nil, sink.Permanent(err)
		}
		return nil, err
	}
	c := gh.NewClient(s.b.http).WithAuthToken(tok.Reveal())
	c.BaseURL = s.base
	c.UserAgent = "rotor"
	return c, nil
}

// getRepoID is the repository's numeric id, which go-github's environment
// secret calls take (GET /repos/{owner}/{repo}).
func (s *Sink) getRepoID(ctx context.Context, c *gh.Client) (int64, error) {
	s.mu.Lock()
	id := s.repoID
	s.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	r, _, err := c.Repositories.Get(ctx, s.t.Owner, s.t.Repo)
	if err != nil {
		return 0, classify("read repository "+s.t.Owner+"/"+s.t.Repo, err)
	}
	s.mu.Lock()
	s.repoID = r.GetID()
	s.mu.Unlock()
	return r.GetID(), nil
}

// secret reads the secret's metadata; nil when it does not exist.
func (s *Sink) secret(ctx context.Context, c *gh.Client) (*gh.Secret, error) {
	var (
		sec *gh.Secret
		err error
	)
	switch s.t.Scope {
	case ScopeOrganization:
		sec, _, err = c.Actions.GetOrgSecret(ctx, s.t.Org, s.t.Name)
	case ScopeEnvironment:
		var id int64
		if id, err = s.getRepoID(ctx, c); err != nil {
			if isNotFound(err) {
				return nil, nil
			}
			return nil, err
		}
		sec, _, err = c.Actions.GetEnvSecret(ctx, int(id), s.t.Env, s.t.Name)
	default:
		sec, _, err = c.Actions.GetRepoSecret(ctx, s.t.Owner, s.t.Repo, s.t.Name)
	}
	if err = classify("read "+s.t.Describe(), err); err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return sec, nil
}

func (s *Sink) publicKey(ctx context.Context, c *gh.Client) (*gh.PublicKey, error) {
	var (
		pk  *gh.PublicKey
		err error
	)
	switch s.t.Scope {
	case ScopeOrganization:
		pk, _, err = c.Actions.GetOrgPublicKey(ctx, s.t.Org)
	case ScopeEnvironment:
		var id int64
		if id, err = s.getRepoID(ctx, c); err != nil {
			return nil, err
		}
		pk, _, err = c.Actions.GetEnvPublicKey(ctx, int(id), s.t.Env)
	default:
		pk, _, err = c.Actions.GetRepoPublicKey(ctx, s.t.Owner, s.t.Repo)
	}
	if err != nil {
		return nil, classify("read the public key of "+s.scopeName(), err)
	}
	return pk, nil
}

func (s *Sink) scopeName() string {
	switch s.t.Scope {
	case ScopeOrganization:
		return "organization " + s.t.Org
	case ScopeEnvironment:
		return "environment " + s.t.Env + " of " + s.t.Owner + "/" + s.t.Repo
	}
	return "repository " + s.t.Owner + "/" + s.t.Repo
}

// version is a secret's updated_at, the target's version.
func version(sec *gh.Secret) string {
	if sec == nil {
		return ""
	}
	return sec.UpdatedAt.UTC().Format(time.RFC3339)
}

// Version is the secret's updated_at; "" when it does not exist.
func (s *Sink) Version(ctx context.Context) (string, error) {
	c, err := s.client(ctx)
	if err != nil {
		return "", err
	}
	sec, err := s.secret(ctx, c)
	if err != nil {
		return "", err
	}
	return version(sec), nil
}

// seal encrypts value to the scope's public key, as GitHub requires.
func seal(pk *gh.PublicKey, value []byte) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(pk.GetKey())
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("github: the public key %s is not a base64 Curve25519 key", pk.GetKeyID())
	}
	var pub [32]byte
	copy(pub[:], raw)
	out, err := box.SealAnonymous(nil, value, &pub, rand.Reader)
	if err != nil {
		return "", fmt.Errorf("github: seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(out), nil
}

// selectedIDs resolves an organization secret's selected repositories.
func (s *Sink) selectedIDs(ctx context.Context, c *gh.Client) (gh.SelectedRepoIDs, error) {
	var ids gh.SelectedRepoIDs
	for _, name := range s.s.selected {
		r, _, err := c.Repositories.Get(ctx, s.t.Org, name)
		if err != nil {
			return nil, classify("read selected repository "+s.t.Org+"/"+name, err)
		}
		ids = append(ids, r.GetID())
	}
	return ids, nil
}

// Deliver writes the secret unless it already holds d (idempotent), and
// refuses a secret rotor never wrote unless adopt is set.
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	cred, err := sink.SecretOrEncoded("github", d.Material, s.s.certFormat)
	if err != nil {
		return sink.Result{}, fmt.Errorf("%s: %w", s.t.Describe(), err)
	}
	c, err := s.client(ctx)
	if err != nil {
		return sink.Result{}, err
	}
	cur, err := s.secret(ctx, c)
	if err != nil {
		return sink.Result{}, err
	}
	s.mu.Lock()
	owned, known := s.owned, s.versions[d.KeyID]
	s.mu.Unlock()
	note := ""
	if cur != nil {
		switch {
		case known != "" && known == version(cur):
			return sink.Result{Changed: false, Location: s.location(), Version: known}, nil
		case !owned && !s.s.adopt:
			return sink.Result{}, &ForeignError{Target: s.t.Describe()}
		case !owned:
			note = "adopted a secret rotor had not created (adopt: true)"
		}
	}
	pk, err := s.publicKey(ctx, c)
	if err != nil {
		return sink.Result{}, err
	}
	es := &gh.EncryptedSecret{Name: s.t.Name, KeyID: pk.GetKeyID()}
	if s.t.Scope == ScopeOrganization {
		es.Visibility = s.s.visibility
		if s.s.visibility == "selected" {
			if es.SelectedRepositoryIDs, err = s.selectedIDs(ctx, c); err != nil {
				return sink.Result{}, err
			}
		}
	}
	// The one place the value leaves rotor, sealed.
	if es.EncryptedValue, err = seal(pk, []byte(cred.Reveal())); err != nil {
		return sink.Result{}, err
	}
	s.mu.Lock()
	s.owned = true
	s.mu.Unlock()
	var resp *gh.Response
	switch s.t.Scope {
	case ScopeOrganization:
		resp, err = c.Actions.CreateOrUpdateOrgSecret(ctx, s.t.Org, es)
	case ScopeEnvironment:
		var id int64
		if id, err = s.getRepoID(ctx, c); err == nil {
			resp, err = c.Actions.CreateOrUpdateEnvSecret(ctx, int(id), s.t.Env, es)
		}
	default:
		resp, err = c.Actions.CreateOrUpdateRepoSecret(ctx, s.t.Owner, s.t.Repo, es)
	}
	if err != nil {
		return sink.Result{}, classify("write "+s.t.Describe(), err)
	}
	if note == "" && resp != nil && resp.StatusCode == http.StatusCreated {
		note = "created the secret"
	}
	after, err := s.secret(ctx, c)
	if err != nil {
		return sink.Result{}, fmt.Errorf("github sink: %s was written, but reading its updated_at back failed: %w", s.t.Describe(), err)
	}
	if after == nil {
		return sink.Result{}, fmt.Errorf("github sink: %s was written but is gone", s.t.Describe())
	}
	v := version(after)
	s.mu.Lock()
	s.versions[d.KeyID] = v
	s.mu.Unlock()
	return sink.Result{Changed: true, Location: s.location(), Note: note, Version: v}, nil
}

func (s *Sink) location() string { return s.t.APIURL + s.t.Path() }

// Holds reports whether the secret still has the updated_at rotor recorded
// when it wrote keyID. A secret GitHub cannot show the value of is held
// "as far as can be told": the same updated_at means nobody wrote it since.
// A credential rotor has no version for (a claim whose write's answer was
// lost) is held when the secret was updated at or after the claim.
func (s *Sink) Holds(ctx context.Context, keyID string) (bool, error) {
	c, err := s.client(ctx)
	if err != nil {
		return false, err
	}
	cur, err := s.secret(ctx, c)
	if err != nil || cur == nil {
		return false, err
	}
	s.mu.Lock()
	v, known := s.versions[keyID]
	last := s.last
	s.mu.Unlock()
	switch {
	case !known:
		return false, nil
	case v != "":
		return v == version(cur), nil
	}
	return last != nil && last.KeyID == keyID && !cur.UpdatedAt.Before(last.At.Truncate(time.Second)), nil
}

// Validate checks, reading only: the token works, the repository (and
// environment) or organization exists for it, the public key is readable
// (which needs the secrets permission), the selected repositories exist,
// and the secret is absent or rotor's.
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	c, err := s.client(ctx)
	if err != nil {
		return sink.FromError(err, "")
	}
	switch s.t.Scope {
	case ScopeEnvironment:
		if _, err := s.getRepoID(ctx, c); err != nil {
			return s.failed(err, "repository "+s.t.Owner+"/"+s.t.Repo)
		}
		if _, _, err := c.Repositories.GetEnvironment(ctx, s.t.Owner, s.t.Repo, s.t.Env); err != nil {
			err = classify("read environment "+s.t.Env, err)
			if isNotFound(err) {
				return sink.Failed(fmt.Sprintf("environment %q does not exist in %s/%s: create it in the repository's settings (rotor does not create environments)", s.t.Env, s.t.Owner, s.t.Repo), err)
			}
			return s.failed(err, "environment "+s.t.Env)
		}
	case ScopeRepository:
		if _, _, err := c.Repositories.Get(ctx, s.t.Owner, s.t.Repo); err != nil {
			return s.failed(classify("read repository "+s.t.Owner+"/"+s.t.Repo, err), "repository "+s.t.Owner+"/"+s.t.Repo)
		}
	}
	if _, err := s.publicKey(ctx, c); err != nil {
		return s.failed(err, "the Actions secrets of "+s.scopeName())
	}
	if s.t.Scope == ScopeOrganization && s.s.visibility == "selected" {
		if _, err := s.selectedIDs(ctx, c); err != nil {
			return s.failed(err, "the selected repositories")
		}
	}
	cur, err := s.secret(ctx, c)
	if err != nil {
		return s.failed(err, s.t.Describe())
	}
	s.mu.Lock()
	owned := s.owned
	s.mu.Unlock()
	switch {
	case cur == nil:
		return sink.Ready(fmt.Sprintf("the token can write the Actions secrets of %s; %s does not exist yet and will be created", s.scopeName(), s.t.Name))
	case owned:
		return sink.Ready(fmt.Sprintf("%s exists and rotor delivered to it; the token can update it", s.t.Describe()))
	case s.s.adopt:
		return sink.Ready(fmt.Sprintf("%s exists and was not written by rotor; adopt: true lets the next delivery take it over", s.t.Describe()))
	}
	return sink.Failed(fmt.Sprintf("%s exists and rotor never delivered to it (GitHub secrets carry no owner, so rotor's record is the proof): set adopt: true to take it over, or choose another name", s.t.Describe()),
		&ForeignError{Target: s.t.Describe()})
}

// failed answers a Validate from err, naming what was being checked.
func (s *Sink) failed(err error, what string) sink.Validation {
	var api *APIError
	if errors.As(err, &api) && api.Permanent() {
		switch api.Status {
		case http.StatusUnauthorized:
			return sink.Failed(fmt.Sprintf("GitHub refused the token (%s): it is wrong, expired or revoked; put a valid token there", s.s.token), err)
		case http.StatusForbidden:
			return sink.Failed(fmt.Sprintf("the token may not use %s (%s): a classic PAT needs the repo scope (admin:org for organization secrets); a fine-grained token needs the Secrets permission, read and write", what, api.Message), err)
		case http.StatusNotFound:
			return sink.Failed(fmt.Sprintf("%s was not found: check the name, or give the token access to it (GitHub answers 404 for a private repository the token cannot see)", what), err)
		}
		return sink.Failed(fmt.Sprintf("GitHub refused reading %s: %s", what, api.Message), err)
	}
	if sink.IsPermanent(err) {
		return sink.Failed("", err)
	}
	return sink.Unknown(fmt.Sprintf("could not ask GitHub about %s: %v", what, err), err)
}

// DiscoverKeys are the settings a picker can list.
func (b *Builder) DiscoverKeys() []string { return []string{KeyRepo, KeyEnvironment} }

// Discover lists the repositories of owner (or org), or the environments
// of owner/repo.
func (b *Builder) Discover(ctx context.Context, q sink.DiscoverQuery) ([]sink.Choice, error) {
	set := q.Spec.Settings
	str := func(k string) string { v, _ := set[k].(string); return strings.TrimSpace(v) }
	ref, err := sink.ParseSecretRef(set[KeyToken])
	if err != nil {
		return nil, &SpecError{Key: KeyToken, Msg: err.Error()}
	}
	apiURL := DefaultAPIURL
	if v := str(KeyAPIURL); v != "" {
		if apiURL, err = checkAPIURL(v); err != nil {
			return nil, &SpecError{Key: KeyAPIURL, Msg: err.Error()}
		}
	}
	base, _ := url.Parse(apiURL)
	sk := &Sink{s: settings{token: ref}, b: b, base: base}
	c, err := sk.client(ctx)
	if err != nil {
		return nil, err
	}
	owner := str(KeyOwner)
	if owner == "" {
		owner = str(KeyOrg)
	}
	if owner == "" {
		return nil, &SpecError{Key: KeyOwner, Msg: "choose the owner (or org) first"}
	}
	var out []sink.Choice
	switch q.Key {
	case KeyRepo:
		acct, _, err := c.Users.Get(ctx, owner)
		if err != nil {
			return nil, classify("read account "+owner, err)
		}
		opt := gh.ListOptions{PerPage: 100}
		for {
			var (
				repos []*gh.Repository
				resp  *gh.Response
			)
			if acct.GetType() == "Organization" {
				repos, resp, err = c.Repositories.ListByOrg(ctx, owner, &gh.RepositoryListByOrgOptions{ListOptions: opt})
			} else {
				repos, resp, err = c.Repositories.ListByUser(ctx, owner, &gh.RepositoryListByUserOptions{ListOptions: opt})
			}
			if err != nil {
				return nil, classify("list repositories of "+owner, err)
			}
			for _, r := range repos {
				detail := "public"
				if r.GetPrivate() {
					detail = "private"
				}
				out = append(out, sink.Choice{Value: r.GetName(), Label: r.GetFullName(), Detail: detail})
			}
			if resp.NextPage == 0 || len(out) >= 1000 {
				return out, nil
			}
			opt.Page = resp.NextPage
		}
	case KeyEnvironment:
		repo := str(KeyRepo)
		if repo == "" {
			return nil, &SpecError{Key: KeyRepo, Msg: "choose the repository first"}
		}
		envs, _, err := c.Repositories.ListEnvironments(ctx, owner, repo, &gh.EnvironmentListOptions{ListOptions: gh.ListOptions{PerPage: 100}})
		if err != nil {
			return nil, classify("list environments of "+owner+"/"+repo, err)
		}
		for _, e := range envs.Environments {
			out = append(out, sink.Choice{Value: e.GetName(), Label: e.GetName()})
		}
		return out, nil
	}
	return nil, fmt.Errorf("github sink: cannot list %q (can list: %s)", q.Key, strings.Join(b.DiscoverKeys(), ", "))
}
