// Package adogit is the "adogit" sink: it writes a rotated client secret
// into a key of a YAML file (Helm values, typically) on a branch of an
// Azure DevOps Git repository, as one commit through the pushes API. It
// edits only the bytes of the value it owns and of its metadata, so the
// rest of the file — comments, anchors, quoting, spacing — stays byte for
// byte as it was (ADR 0029).
//
// A spec looks like:
//
//	sinks:
//	  - adogit:
//	      organization_url: https://dev.azure.com/contoso
//	      project: payments
//	      repository: deploy
//	      branch: main                       # the default
//	      path: /charts/payments/values.yaml
//	      key: azure.clientSecret            # a YAML key path; templates allowed
//	      metadata_key: azure.rotor          # default: the key's sibling "rotor"
//	      recipients: [age1…]                # empty: metadata only, never the secret
//	      pat: {env: ADO_PAT}                # or nothing: act as the connection (Entra)
//	      connection: ado-writer             # default: the policy's connection
//	      commit_message: "rotor: rotate {{ .App.DisplayName }}"
//	      adopt: false
//
// The secret reaches Git only encrypted to the spec's age recipients (an
// age file, base64 on one line); with no recipients the sink commits the
// metadata alone — key id, app id and expiry — and never the value, for
// consumers that fetch the secret elsewhere and only need to know it
// changed. The metadata, a one-line flow mapping
// {managedBy: rotor, appId, keyId, expiresOn}, is also rotor's ownership
// mark: a non-empty value or metadata without it is foreign, refused
// unless the spec says adopt.
//
// A push names the commit it was read at (oldObjectId); when the branch
// moved in between (409 TF401028), the sink reads the new tip and edits
// that, a bounded number of times. The target's version is the file's
// blob id at the tip, so any edit of the file is drift.
package adogit

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // Git object ids are SHA-1 by definition.
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Type is the spec type this package builds.
const Type = "adogit"

// ManagedByRotor is the metadata's managedBy value that marks the key as
// rotor's.
const ManagedByRotor = "rotor"

// Metadata fields rotor writes at metadata_key.
const (
	MetaManagedBy = "managedBy"
	MetaAppID     = "appId"
	MetaKeyID     = "keyId"
	MetaExpiresOn = "expiresOn"
)

// MaxAttempts bounds the pushes of one delivery when the branch keeps
// moving between read and push.
const MaxAttempts = 5

var (
	_ sink.Kind          = Kind{}
	_ sink.Builder       = (*Builder)(nil)
	_ sink.Sink          = (*Sink)(nil)
	_ sink.Validator     = (*Sink)(nil)
	_ sink.Holder        = (*Sink)(nil)
	_ sink.VersionReader = (*Sink)(nil)
	_ sink.Discoverer    = (*Builder)(nil)
)

// Kind is the "adogit" sink kind.
type Kind struct{}

// Type returns "adogit".
func (Kind) Type() string { return Type }

// CheckSpec validates the settings without I/O; all problems at once,
// each *SpecError naming its key.
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

var _ sink.SharedTargets = Kind{}

// SharesTarget implements sink.SharedTargets: the spec renders the same
// target for two applications that share nothing.
func (Kind) SharesTarget(spec domain.SinkSpec) bool {
	st, err := parseSpec(spec)
	if err != nil {
		return false
	}
	a, errA := st.resolve(domain.Application{TenantID: "aaaaaaaa-0000-4000-8000-000000000001", ObjectID: "aaaaaaaa-0000-4000-8000-000000000002",
		AppID: "aaaaaaaa-0000-4000-8000-000000000003", DisplayName: "first-app"})
	b, errB := st.resolve(domain.Application{TenantID: "bbbbbbbb-0000-4000-8000-000000000001", ObjectID: "bbbbbbbb-0000-4000-8000-000000000002",
		AppID: "bbbbbbbb-0000-4000-8000-000000000003", DisplayName: "second-app"})
	return errA == nil && errB == nil && a == b
}

// NewBuilder returns the builder. It needs either rotor's secret resolver
// and HTTP client (PATs) or its token credentials (connections); which a
// spec uses is checked when a sink is built.
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	if deps.Credentials == nil && (deps.Secrets == nil || deps.HTTPClient == nil) {
		return nil, errors.New("adogit sink needs token credentials, or a secret resolver and an HTTP client")
	}
	return &Builder{deps: deps}, nil
}

// Builder builds adogit sinks.
type Builder struct{ deps sink.Deps }

// Resolve renders the spec's target for req.App, ignoring req.Pinned.
func (b *Builder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return sink.TargetID{}, err
	}
	t, err := st.resolve(req.App)
	if err != nil {
		return sink.TargetID{}, err
	}
	return t.ID()
}

// Build makes the sink, on req.Pinned when set.
func (b *Builder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	var t Target
	if req.Pinned.IsZero() {
		if t, err = st.resolve(req.App); err != nil {
			return nil, err
		}
	} else if t, err = ParseTarget(req.Pinned); err != nil {
		return nil, err
	}
	id, err := t.ID()
	if err != nil {
		return nil, err
	}
	c, err := newClient(b.deps, st, req.App.Org, req.Connection, repoBase(t.OrgURL, t.Project, t.Repository))
	if err != nil {
		return nil, err
	}
	return &Sink{st: st, t: t, id: id, app: req.App, c: c}, nil
}

func repoBase(orgURL, project, repo string) string {
	return orgURL + "/" + url.PathEscape(project) + "/_apis/git/repositories/" + url.PathEscape(repo)
}

// Sink writes one key of one file.
type Sink struct {
	st  settings
	t   Target
	id  sink.TargetID
	app domain.Application
	c   *client
	// attempted is set before this sink's first push: from then on the key
	// is its own even if the push's answer was lost and the metadata it
	// wrote is not yet seen (a retry must not call itself foreign).
	attempted atomic.Bool
}

// Target is the key's stable id.
func (s *Sink) Target() sink.TargetID { return s.id }

// Describe names the key, file, branch and repository.
func (s *Sink) Describe() string {
	return fmt.Sprintf("%s in %s on %s of %s/%s (Azure DevOps Git)", s.t.Key, s.t.Path, s.t.Branch, s.t.Project, s.t.Repository)
}

// TargetError is a target that cannot be written until a person changes
// it: a missing branch or file, a file that is not YAML, a foreign key.
type TargetError struct{ Msg string }

func (e *TargetError) Error() string   { return "adogit: " + e.Msg }
func (e *TargetError) Permanent() bool { return true }

// snapshot is the target as read at the branch's tip.
type snapshot struct {
	tip     string
	file    item
	doc     *yamlDoc
	key     located
	meta    located
	metaMap map[string]string
	// metaState is "absent", "empty", "rotor" or "foreign".
	metaState string
}

func (s *Sink) where() string {
	return fmt.Sprintf("%s on branch %s of %s/%s", s.t.Path, s.t.Branch, s.t.Project, s.t.Repository)
}

// read reads the tip, the file at it, and the two keys.
func (s *Sink) read(ctx context.Context) (snapshot, error) {
	tip, err := s.c.tip(ctx, s.t.Branch)
	if err != nil {
		return snapshot{}, err
	}
	if tip == "" {
		return snapshot{}, &TargetError{Msg: fmt.Sprintf("branch %s does not exist in %s/%s; rotor commits to an existing branch", s.t.Branch, s.t.Project, s.t.Repository)}
	}
	it, found, err := s.c.file(ctx, s.t.Path, tip)
	if err != nil {
		return snapshot{}, err
	}
	if !found {
		return snapshot{tip: tip}, &TargetError{Msg: fmt.Sprintf("%s does not exist; rotor edits a file that exists (commit one with the key set to \"\")", s.where())}
	}
	snap := snapshot{tip: tip, file: it}
	if snap.doc, err = parseYAML([]byte(it.Content)); err != nil {
		return snap, &TargetError{Msg: fmt.Sprintf("%s %v", s.where(), err)}
	}
	if snap.key, err = snap.doc.lookup(s.t.Key, s.t.Path); err != nil {
		return snap, err
	}
	if snap.meta, err = snap.doc.lookup(s.t.MetadataKey, s.t.Path); err != nil {
		return snap, err
	}
	snap.metaState, snap.metaMap = readMeta(snap.meta.value)
	return snap, nil
}

func readMeta(n *yaml.Node) (string, map[string]string) {
	switch {
	case n == nil:
		return "absent", nil
	case n.Kind == yaml.ScalarNode:
		if _, ok := scalarText(n); !ok {
			return "empty", nil
		}
		return "foreign", nil
	case n.Kind == yaml.MappingNode:
		if len(n.Content) == 0 {
			return "empty", nil
		}
		m := map[string]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = n.Content[i+1].Value
		}
		if m[MetaManagedBy] == ManagedByRotor {
			return "rotor", m
		}
		return "foreign", m
	}
	return "foreign", nil
}

// holdsValue reports whether the secret's key holds something.
func (snap snapshot) holdsValue() bool {
	_, ok := scalarText(snap.key.value)
	return ok || (snap.key.value != nil && snap.key.value.Kind != yaml.ScalarNode)
}

// owner says why the key is not rotor's to write, or nil.
func (s *Sink) owner(snap snapshot) error {
	if s.st.adopt || s.attempted.Load() {
		return nil
	}
	switch snap.metaState {
	case "rotor":
		if app := snap.metaMap[MetaAppID]; app != "" && app != s.app.AppID {
			return &TargetError{Msg: fmt.Sprintf("%s in %s holds the credential of another application (app id %s, by its rotor metadata at %s); refusing to overwrite it (set adopt: true to take it over)",
				s.t.Key, s.where(), app, s.t.MetadataKey)}
		}
		return nil
	case "foreign":
		return &TargetError{Msg: fmt.Sprintf("%s in %s holds something rotor did not write (no managedBy: rotor); refusing to overwrite it (set adopt: true to take it over)",
			s.t.MetadataKey, s.where())}
	}
	if len(s.st.recipients) > 0 && snap.holdsValue() {
		return &TargetError{Msg: fmt.Sprintf("%s in %s already holds a value and no rotor metadata at %s; refusing to overwrite it (empty it, or set adopt: true to take it over)",
			s.t.Key, s.where(), s.t.MetadataKey)}
	}
	return nil
}

// current reports whether the tip already holds d's credential.
func (s *Sink) current(snap snapshot, keyID string) bool {
	return snap.metaState == "rotor" && snap.metaMap[MetaKeyID] == keyID &&
		(len(s.st.recipients) == 0 || snap.holdsValue())
}

// encrypt seals value to the recipients: the binary age format, base64
// on one line (ADR 0029).
func (s *Sink) encrypt(value string) (string, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, s.st.recipients...)
	if err != nil {
		return "", sink.Permanent(fmt.Errorf("adogit: encrypting to the recipients: %w", err))
	}
	if _, err := w.Write([]byte(value)); err != nil {
		return "", fmt.Errorf("adogit: encrypting: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("adogit: encrypting: %w", err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// metaText is the one-line flow mapping rotor writes at metadata_key.
func metaText(appID, keyID string, end time.Time) string {
	return fmt.Sprintf("{%s: %s, %s: %s, %s: %s, %s: %s}", MetaManagedBy, ManagedByRotor,
		MetaAppID, doubleQuote(appID), MetaKeyID, doubleQuote(keyID), MetaExpiresOn, doubleQuote(end.UTC().Format(time.RFC3339)))
}

// edited is the file with sealed (the encrypted value; "" in metadata-only
// mode) at the key and d's metadata at metadata_key.
func (s *Sink) edited(snap snapshot, sealed string, d sink.Delivery) ([]byte, error) {
	var edits []edit
	add := func(l located, path, text string) error {
		if l.value == nil {
			e, err := snap.doc.insertion(l, path, s.t.Path, text)
			if err != nil {
				return err
			}
			edits = append(edits, e)
			return nil
		}
		start, end, err := snap.doc.span(l.value, path, s.t.Path)
		if err != nil {
			return err
		}
		if start == end {
			text = " " + text // "key:" with nothing after the colon
		}
		edits = append(edits, edit{start: start, end: end, text: text})
		return nil
	}
	if sealed != "" {
		if err := add(snap.key, s.t.Key, quoteLike(snap.key.value, sealed)); err != nil {
			return nil, err
		}
	}
	if err := add(snap.meta, s.t.MetadataKey, metaText(d.App.AppID, d.KeyID, d.End)); err != nil {
		return nil, err
	}
	out, err := apply(snap.doc.src, edits)
	if err != nil {
		return nil, &PathError{s.t.Key, s.t.Path, err.Error()}
	}
	// The edit must say what was meant, read back as YAML: a safety net
	// under the byte arithmetic.
	back, err := parseYAML(out)
	if err == nil {
		var k, m located
		if k, err = back.lookup(s.t.Key, s.t.Path); err == nil {
			m, err = back.lookup(s.t.MetadataKey, s.t.Path)
		}
		state, mm := readMeta(m.value)
		switch {
		case err != nil:
		case sealed != "" && (k.value == nil || k.value.Value != sealed):
			err = errors.New("the key does not read back as the value written")
		case state != "rotor" || mm[MetaKeyID] != d.KeyID:
			err = errors.New("the metadata does not read back as written")
		}
	}
	if err != nil {
		return nil, &PathError{s.t.Key, s.t.Path, "rotor could not edit the file without changing its structure: " + err.Error()}
	}
	return out, nil
}

// Deliver commits the credential (encrypted, or its metadata alone) on the
// branch, retrying on a moved tip.
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	if d.Material.IsZero() {
		return sink.Result{}, sink.Permanent(errors.New("adogit: the delivery carries no credential"))
	}
	sealed := ""
	if len(s.st.recipients) > 0 {
		cred, err := sink.SecretOrEncoded("adogit", d.Material, s.st.certFormat)
		if err != nil {
			return sink.Result{}, err
		}
		if sealed, err = s.encrypt(cred.Reveal()); err != nil {
			return sink.Result{}, err
		}
	}
	msg, err := render(s.st.msgTmpl, TemplateData{App: d.App, TenantID: d.TenantID, ClientID: d.ClientID,
		KeyID: d.KeyID, ExpiresOn: d.End.UTC().Format(time.RFC3339)})
	if err != nil {
		return sink.Result{}, &SpecError{Key: KeyCommitMessage, Msg: err.Error()}
	}
	loc := s.id.Ref()
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		snap, err := s.read(ctx)
		if err != nil {
			return sink.Result{}, err
		}
		if s.current(snap, d.KeyID) {
			return sink.Result{Changed: false, Location: loc, Version: snap.file.ObjectID}, nil
		}
		if err := s.owner(snap); err != nil {
			return sink.Result{}, err
		}
		content, err := s.edited(snap, sealed, d)
		if err != nil {
			return sink.Result{}, err
		}
		s.attempted.Store(true)
		err = s.c.push(ctx, s.t.Branch, snap.tip, s.t.Path, msg, content)
		if stale(err) {
			continue
		}
		if err != nil {
			return sink.Result{}, err
		}
		res := sink.Result{Changed: true, Location: loc, Version: BlobID(content)}
		if attempt > 1 {
			res.Note = fmt.Sprintf("the branch moved while rotor wrote; committed on the new tip at attempt %d", attempt)
		}
		if len(s.st.recipients) == 0 {
			res.Note = strings.TrimPrefix(res.Note+"; metadata only (no recipients): the secret itself was not committed", "; ")
		}
		return res, nil
	}
	return sink.Result{}, sink.Transient(fmt.Errorf("adogit: branch %s of %s/%s moved %d times while rotor wrote %s; it will try again",
		s.t.Branch, s.t.Project, s.t.Repository, MaxAttempts, s.t.Path))
}

// Holds reports whether the tip's metadata names keyID.
func (s *Sink) Holds(ctx context.Context, keyID string) (bool, error) {
	snap, err := s.read(ctx)
	var te *TargetError
	if errors.As(err, &te) && snap.tip != "" && snap.doc == nil {
		return false, nil // no file: holds nothing
	}
	if err != nil {
		return false, err
	}
	return snap.metaState == "rotor" && snap.metaMap[MetaKeyID] == keyID, nil
}

// Version is the file's blob id at the tip; "" when the key (or, in
// metadata-only mode, the metadata key) is not there.
func (s *Sink) Version(ctx context.Context) (string, error) {
	snap, err := s.read(ctx)
	var te *TargetError
	if errors.As(err, &te) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	present := snap.meta.value != nil
	if len(s.st.recipients) > 0 {
		present = snap.key.value != nil
	}
	if !present {
		return "", nil
	}
	return snap.file.ObjectID, nil
}

// Validate reads the branch and the file and checks that both keys can be
// written and are rotor's (or free). Whether the identity may push cannot
// be known without pushing.
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	snap, err := s.read(ctx)
	if err != nil {
		return sink.FromError(err, "")
	}
	if err := s.owner(snap); err != nil {
		return sink.Failed("", err)
	}
	probe := sink.Delivery{App: s.app, KeyID: "00000000-0000-0000-0000-000000000000", End: time.Unix(0, 0)}
	sealed := ""
	if len(s.st.recipients) > 0 {
		if sealed, err = s.encrypt("rotor-validate"); err != nil {
			return sink.Failed("", err)
		}
	}
	if _, err := s.edited(snap, sealed, probe); err != nil {
		return sink.Failed("", err)
	}
	what := fmt.Sprintf("the secret goes to %s encrypted to %d age recipient(s)", s.t.Key, len(s.st.recipients))
	if len(s.st.recipients) == 0 {
		what = fmt.Sprintf("no recipients: only metadata (key id, expiry) goes to %s, never the secret", s.t.MetadataKey)
	}
	return sink.Ready(fmt.Sprintf("%s is readable and %s can be written (%s); whether the identity may push cannot be checked without pushing",
		s.where(), s.t.MetadataKey, what))
}

// BlobID is Git's object id of a blob: what Azure DevOps reports as an
// item's objectId, so the version of a pushed file is known without
// reading it back.
func BlobID(content []byte) string {
	h := sha1.New() //nolint:gosec // Git object ids are SHA-1.
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// DiscoverKeys are the settings Discover lists.
func (b *Builder) DiscoverKeys() []string { return []string{KeyRepository, KeyBranch} }

// Discover lists a project's repositories, or a repository's branches,
// given organization_url, project (and repository), and pat or the
// connection.
func (b *Builder) Discover(ctx context.Context, q sink.DiscoverQuery) ([]sink.Choice, error) {
	get := func(k string) string { v, _ := q.Spec.Settings[k].(string); return strings.TrimSpace(v) }
	orgURL, err := checkOrgURL(get(KeyOrganizationURL))
	if err != nil {
		return nil, &SpecError{Key: KeyOrganizationURL, Msg: err.Error()}
	}
	project := get(KeyProject)
	if !nameSegment.MatchString(project) {
		return nil, &SpecError{Key: KeyProject, Msg: "is required to list " + q.Key}
	}
	st := settings{project: project, connection: get(KeyConnection)}
	if v, ok := q.Spec.Settings[KeyPAT]; ok {
		ref, err := sink.ParseSecretRef(v)
		if err != nil {
			return nil, &SpecError{Key: KeyPAT, Msg: err.Error()}
		}
		st.pat = &ref
	}
	switch q.Key {
	case KeyRepository:
		c, err := newClient(b.deps, st, q.Org, q.Connection, orgURL+"/"+url.PathEscape(project)+"/_apis/git/repositories")
		if err != nil {
			return nil, err
		}
		var out struct {
			Value []struct {
				Name, DefaultBranch string
			}
		}
		if err := c.do(ctx, "list repositories", http.MethodGet, c.url("", url.Values{}), nil, &out); err != nil {
			return nil, err
		}
		choices := make([]sink.Choice, 0, len(out.Value))
		for _, r := range out.Value {
			choices = append(choices, sink.Choice{Value: r.Name, Label: r.Name, Detail: "default branch " + strings.TrimPrefix(r.DefaultBranch, "refs/heads/")})
		}
		return choices, nil
	case KeyBranch:
		repo := get(KeyRepository)
		if !nameSegment.MatchString(repo) {
			return nil, &SpecError{Key: KeyRepository, Msg: "is required to list branches"}
		}
		c, err := newClient(b.deps, st, q.Org, q.Connection, repoBase(orgURL, project, repo))
		if err != nil {
			return nil, err
		}
		var out struct {
			Value []struct{ Name, ObjectID string }
		}
		if err := c.do(ctx, "list branches", http.MethodGet, c.url("/refs", url.Values{"filter": {"heads/"}}), nil, &out); err != nil {
			return nil, err
		}
		choices := make([]sink.Choice, 0, len(out.Value))
		for _, r := range out.Value {
			name := strings.TrimPrefix(r.Name, "refs/heads/")
			choices = append(choices, sink.Choice{Value: name, Label: name, Detail: "at " + r.ObjectID[:min(8, len(r.ObjectID))]})
		}
		return choices, nil
	}
	return nil, fmt.Errorf("%w: adogit sink lists %s, not %q", sink.ErrNoDiscovery, strings.Join(b.DiscoverKeys(), ", "), q.Key)
}
