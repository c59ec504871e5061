// Package vercel is the "vercel" sink: it upserts a Vercel project
// environment variable (encrypted or sensitive, on chosen targets, in a
// team's project via teamId) holding the rotated client secret, and
// optionally redeploys the project's latest production deployment
// afterwards, since Vercel applies new values only to new deployments.
//
// A spec looks like:
//
//	sinks:
//	  - type: vercel
//	    project: storefront                  # id (prj_…) or name
//	    team_id: team_abc123                 # omit for a personal account
//	    key: "{{ .App.DisplayName | envname }}_CLIENT_SECRET"
//	    type: encrypted                      # or sensitive (write-only)
//	    targets: [production, preview]       # the default
//	    token: {env: VERCEL_TOKEN}
//	    redeploy: true                       # redeploy production after every sink holds the secret
//
// Ownership: every variable rotor writes carries the comment
// "managed by rotor; app <appId>; key <keyId>". A variable without it is
// foreign and refused unless adopt: true; one whose comment names another
// application is refused even then. The comment is also how the sink
// knows, without reading any value (it never asks for one), which
// credential the variable holds: delivering that credential again changes
// nothing, and Holds reads it. Version is the variable's updatedAt (ms).
package vercel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Type is the spec type this package builds.
const Type = "vercel"

// Meta keys rotor puts on the deployments it creates, so that a repeated
// AfterAll finds the redeploy it already started rather than starting a
// second.
const (
	MetaKeyID  = "rotorKeyId"
	MetaAppID  = "rotorAppId"
	MetaEnvKey = "rotorEnvKey"
)

// pollInterval is how often AfterAll asks about a redeploy.
const pollInterval = time.Second

// Kind is the "vercel" sink kind.
type Kind struct{}

var (
	_ sink.Kind          = Kind{}
	_ sink.SharedTargets = Kind{}
	_ sink.Builder       = (*Builder)(nil)
	_ sink.Discoverer    = (*Builder)(nil)
	_ sink.Sink          = (*Sink)(nil)
	_ sink.Validator     = (*Sink)(nil)
	_ sink.Holder        = (*Sink)(nil)
	_ sink.VersionReader = (*Sink)(nil)
	_ sink.Finisher      = (*Sink)(nil)
)

// Type returns "vercel".
func (Kind) Type() string { return Type }

// CheckSpec validates the settings without I/O, reporting every problem
// at once; each *SpecError names its key.
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

// SharesTarget is true when the key template names nothing of the
// application: every application would write the same variable.
func (Kind) SharesTarget(spec domain.SinkSpec) bool {
	st, err := parseSpec(spec)
	if err != nil {
		return false
	}
	a, errA := render(st.keyTmpl, dataFor(domain.Application{AppID: "aaaaaaaa-0000-4000-8000-000000000001", ObjectID: "aaaaaaaa-0000-4000-8000-000000000002", TenantID: "aaaaaaaa-0000-4000-8000-000000000003", DisplayName: "first"}))
	b, errB := render(st.keyTmpl, dataFor(domain.Application{AppID: "bbbbbbbb-0000-4000-8000-000000000001", ObjectID: "bbbbbbbb-0000-4000-8000-000000000002", TenantID: "bbbbbbbb-0000-4000-8000-000000000003", DisplayName: "second"}))
	return errA == nil && errB == nil && a == b
}

func dataFor(app domain.Application) TemplateData {
	return TemplateData{App: app, TenantID: app.TenantID, ClientID: app.AppID}
}

// NewBuilder needs an HTTP client and a secret resolver (for the token).
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	switch {
	case deps.HTTPClient == nil:
		return nil, errors.New("vercel sink: no HTTP client")
	case deps.Secrets == nil:
		return nil, errors.New("vercel sink: no secret resolver for the token")
	}
	clk := deps.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	return &Builder{http: deps.HTTPClient, secrets: deps.Secrets, clock: clk}, nil
}

// Builder makes vercel sinks.
type Builder struct {
	http    *http.Client
	secrets sink.SecretResolver
	clock   clock.Clock
}

// Locator is what a vercel target id names: one variable (key, branch,
// targets) of one project in one scope of one API host.
type Locator struct {
	// Host is the API's host[:port], lower case ("api.vercel.com").
	Host string
	// TeamID is the team; "" for a personal account.
	TeamID    string
	Project   string
	Key       string
	Targets   []string
	GitBranch string
}

// personalScope stands for "no team" in a target id.
const personalScope = "~"

// TargetID is the locator's id:
//
//	vercel:api.vercel.com/<team id or ~>/<project>/env/<KEY>/<targets,sorted>[/<escaped branch>]
func (l Locator) TargetID() (sink.TargetID, error) {
	team := l.TeamID
	if team == "" {
		team = personalScope
	}
	ts := slices.Clone(l.Targets)
	slices.Sort(ts)
	ref := strings.ToLower(l.Host) + "/" + team + "/" + l.Project + "/env/" + l.Key + "/" + strings.Join(ts, ",")
	if l.GitBranch != "" {
		ref += "/" + url.PathEscape(l.GitBranch)
	}
	return sink.NewTargetID(Type, ref)
}

// ParseTarget reads a vercel target id back.
func ParseTarget(t sink.TargetID) (Locator, error) {
	if t.Kind() != Type {
		return Locator{}, fmt.Errorf("%w: %q is not a %s target", sink.ErrBadTargetID, t, Type)
	}
	parts := strings.Split(t.Ref(), "/")
	if len(parts) < 6 || len(parts) > 7 || parts[3] != "env" {
		return Locator{}, fmt.Errorf("%w: %q: want vercel:<api host>/<team id or ~>/<project>/env/<KEY>/<targets>[/<branch>]", sink.ErrBadTargetID, t)
	}
	l := Locator{Host: parts[0], TeamID: parts[1], Project: parts[2], Key: parts[4], Targets: strings.Split(parts[5], ",")}
	if l.TeamID == personalScope {
		l.TeamID = ""
	}
	if len(parts) == 7 {
		b, err := url.PathUnescape(parts[6])
		if err != nil {
			return Locator{}, fmt.Errorf("%w: %q: bad branch", sink.ErrBadTargetID, t)
		}
		l.GitBranch = b
	}
	if canon, err := l.TargetID(); err != nil || canon != t {
		return Locator{}, fmt.Errorf("%w: %q is not in canonical form", sink.ErrBadTargetID, t)
	}
	return l, nil
}

func (st settings) locator(app domain.Application) (Locator, error) {
	key, err := render(st.keyTmpl, dataFor(app))
	if err != nil {
		return Locator{}, sink.Permanent(&SpecError{Key: KeyKey, Msg: fmt.Sprintf("template %q fails for application %s: %v", st.keySrc, app.AppID, err)})
	}
	if !envKeyRE.MatchString(key) {
		return Locator{}, sink.Permanent(&SpecError{Key: KeyKey, Msg: keyProblem(key, st.keySrc) + fmt.Sprintf(" (application %q)", app.DisplayName)})
	}
	u, _ := url.Parse(st.apiURL)
	return Locator{Host: u.Host, TeamID: st.teamID, Project: st.project, Key: key, Targets: st.targets, GitBranch: st.gitBranch}, nil
}

// Resolve is the variable the spec names for req.App today.
func (b *Builder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return sink.TargetID{}, err
	}
	l, err := st.locator(req.App)
	if err != nil {
		return sink.TargetID{}, err
	}
	return l.TargetID()
}

// Build makes the sink: on req.Pinned when set (so a rename does not move
// the variable), else on what Resolve returns. No I/O.
func (b *Builder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	var loc Locator
	if !req.Pinned.IsZero() {
		if loc, err = ParseTarget(req.Pinned); err != nil {
			return nil, err
		}
	} else if loc, err = st.locator(req.App); err != nil {
		return nil, err
	}
	tid, err := loc.TargetID()
	if err != nil {
		return nil, err
	}
	return &Sink{
		c:   &client{http: b.http, secrets: b.secrets, base: "https://" + loc.Host, token: st.token, teamID: loc.TeamID},
		loc: loc, target: tid, st: st, app: req.App, clock: b.clock,
		redeploys: map[string]string{},
	}, nil
}

// Sink writes one application's client secret to one Vercel variable.
type Sink struct {
	c      *client
	loc    Locator
	target sink.TargetID
	st     settings
	app    domain.Application
	clock  clock.Clock

	mu sync.Mutex
	// wrote is set once this sink has written (or tried to write) the
	// variable: from then on it is its own, whatever a lost answer left.
	wrote bool
	// redeploys are the deployments this sink created, by key id.
	redeploys map[string]string
}

// Target is the variable's target id.
func (s *Sink) Target() sink.TargetID { return s.target }

// Describe names the variable, e.g. `Vercel variable STOREFRONT_SECRET (production, preview) of project storefront in team team_x`.
func (s *Sink) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Vercel variable %s (%s", s.loc.Key, strings.Join(s.loc.Targets, ", "))
	if s.loc.GitBranch != "" {
		fmt.Fprintf(&b, ", branch %s", s.loc.GitBranch)
	}
	fmt.Fprintf(&b, ") of project %s", s.loc.Project)
	if s.loc.TeamID != "" {
		fmt.Fprintf(&b, " in team %s", s.loc.TeamID)
	}
	return b.String()
}

// marker is the comment rotor writes; markerRE reads it back.
func marker(appID, keyID string) string {
	return fmt.Sprintf("managed by rotor; app %s; key %s", appID, keyID)
}

var markerRE = regexp.MustCompile(`^managed by rotor; app (\S+); key (\S+)`)

type mark struct {
	ok           bool
	appID, keyID string
}

func readMarker(comment string) mark {
	m := markerRE.FindStringSubmatch(strings.TrimSpace(comment))
	if m == nil {
		return mark{}
	}
	return mark{ok: true, appID: m[1], keyID: m[2]}
}

// NotOwnedError is a variable rotor may not overwrite: no rotor comment
// and no adopt, or rotor's for another application. Permanent.
type NotOwnedError struct {
	Target     string
	OwnerAppID string
	AppID      string
}

// Error says what to do.
func (e *NotOwnedError) Error() string {
	if e.OwnerAppID != "" {
		return fmt.Sprintf("%s is managed by rotor for application %s, not %s: two sinks render the same variable; make the key template unique (e.g. include {{ .App.AppID | envname }})",
			e.Target, e.OwnerAppID, e.AppID)
	}
	return fmt.Sprintf("%s exists and was not written by rotor (its comment is not rotor's marker): set adopt: true on the sink to take it over, or choose another key", e.Target)
}

// Permanent: a person decides.
func (e *NotOwnedError) Permanent() bool { return true }

// AmbiguousError is more than one variable with the key and branch on the
// sink's targets (one per target, say): rotor will not guess which to
// write. Permanent.
type AmbiguousError struct {
	Target string
	IDs    []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%s: %d variables share this key on the sink's targets (ids %s); merge them into one in Vercel, or set the sink's targets to match one of them",
		e.Target, len(e.IDs), strings.Join(e.IDs, ", "))
}

// Permanent: a person decides.
func (e *AmbiguousError) Permanent() bool { return true }

func (s *Sink) envPath() string { return "/v10/projects/" + url.PathEscape(s.loc.Project) + "/env" }

// current finds the sink's variable: the one with its key and branch
// whose targets overlap the sink's (Vercel refuses two such). nil when
// there is none.
func (s *Sink) current(ctx context.Context) (*envVar, error) {
	var raw rawJSON
	if err := s.c.call(ctx, "list the variables of project "+s.loc.Project, http.MethodGet, s.envPath(), nil, nil, &raw, ""); err != nil {
		return nil, err
	}
	envs, err := decodeEnvs(raw.b)
	if err != nil {
		return nil, sink.Transient(fmt.Errorf("vercel: list the variables of project %s: unexpected answer", s.loc.Project))
	}
	var found []*envVar
	for i := range envs {
		e := &envs[i]
		if e.Key == s.loc.Key && e.GitBranch == s.loc.GitBranch && overlap(e.Target, s.loc.Targets) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, e := range found {
		ids[i] = e.ID
	}
	return nil, &AmbiguousError{Target: s.Describe(), IDs: ids}
}

type rawJSON struct{ b []byte }

func (r *rawJSON) UnmarshalJSON(b []byte) error { r.b = slices.Clone(b); return nil }

func overlap(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func sameTargets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func version(e *envVar) string {
	if e == nil {
		return ""
	}
	return strconv.FormatInt(e.UpdatedAt, 10)
}

// owned checks that rotor may write over e (nil when absent).
func (s *Sink) owned(e *envVar) error {
	if e == nil {
		return nil
	}
	m := readMarker(e.Comment)
	switch {
	case m.ok && !strings.EqualFold(m.appID, s.app.AppID):
		return &NotOwnedError{Target: s.Describe(), OwnerAppID: m.appID, AppID: s.app.AppID}
	case m.ok, s.st.adopt:
		return nil
	}
	s.mu.Lock()
	wrote := s.wrote
	s.mu.Unlock()
	if wrote {
		return nil
	}
	return &NotOwnedError{Target: s.Describe(), AppID: s.app.AppID}
}

// envWrite is the body of a create or edit.
type envWrite struct {
	Key       string   `json:"key,omitempty"`
	Value     string   `json:"value"`
	Type      string   `json:"type"`
	Target    []string `json:"target"`
	GitBranch *string  `json:"gitBranch,omitempty"`
	Comment   string   `json:"comment"`
}

// Deliver writes d's secret to the variable, unless the variable's
// comment already names d's credential (and its type and targets are the
// spec's), in which case it changes nothing. An absent variable is
// created with POST …/env (without upsert, so that a variable someone
// else created meanwhile is refused, not overwritten); rotor's own, or an adopted one, is
// edited in place with PATCH …/env/{id}, keeping its id. It never reads a
// value. Errors never hold the value.
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	cred, err := sink.SecretOrEncoded("vercel", d.Material, s.st.certFormat)
	switch {
	case err != nil:
		return sink.Result{}, fmt.Errorf("%s, key %s: %w", s.Describe(), d.KeyID, err)
	case d.KeyID == "" || strings.ContainsAny(d.KeyID, " \t\n;"):
		return sink.Result{}, sink.Permanent(fmt.Errorf("vercel sink %s: delivery has no usable key id", s.Describe()))
	case !strings.EqualFold(d.App.AppID, s.app.AppID):
		return sink.Result{}, sink.Permanent(fmt.Errorf("vercel sink %s: built for application %s, asked to deliver for %s", s.Describe(), s.app.AppID, d.App.AppID))
	}
	cur, err := s.current(ctx)
	if err != nil {
		return sink.Result{}, err
	}
	if err := s.owned(cur); err != nil {
		return sink.Result{}, err
	}
	if cur != nil {
		m := readMarker(cur.Comment)
		if m.ok && m.keyID == d.KeyID && cur.Type == s.st.typ && sameTargets(cur.Target, s.loc.Targets) {
			return sink.Result{Changed: false, Location: s.location(cur), Version: version(cur)}, nil
		}
	}
	value := cred.Reveal() // the one place the value leaves rotor
	body := envWrite{Value: value, Type: s.st.typ, Target: s.loc.Targets, Comment: marker(s.app.AppID, d.KeyID)}
	if s.loc.GitBranch != "" {
		body.GitBranch = &s.loc.GitBranch
	}
	s.mu.Lock()
	s.wrote = true
	s.mu.Unlock()
	var written envVar
	note := ""
	if cur == nil {
		body.Key = s.loc.Key
		var resp struct {
			Created rawJSON `json:"created"`
			Failed  []struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			} `json:"failed"`
		}
		// No ?upsert=true: with it, a variable someone else created since
		// the list would be overwritten unseen. Without it Vercel refuses
		// (ENV_ALREADY_EXISTS), and the retry reads the variable again
		// and decides by its comment.
		if err := s.c.call(ctx, "create variable "+s.loc.Key+" in project "+s.loc.Project, http.MethodPost, s.envPath(), nil, body, &resp, value); err != nil {
			return sink.Result{}, createdMeanwhile(err)
		}
		if len(resp.Failed) > 0 {
			f := resp.Failed[0].Error
			msg := strings.ReplaceAll(f.Message, value, "[REDACTED]")
			return sink.Result{}, sink.Permanent(fmt.Errorf("vercel: create variable %s in project %s: refused: %s %s", s.loc.Key, s.loc.Project, f.Code, msg))
		}
		envs, err := decodeCreated(resp.Created.b)
		if err != nil || len(envs) == 0 {
			return sink.Result{}, sink.Transient(fmt.Errorf("vercel: create variable %s in project %s: the answer names no created variable", s.loc.Key, s.loc.Project))
		}
		written = envs[0]
	} else {
		if !readMarker(cur.Comment).ok {
			note = fmt.Sprintf("adopted variable %s (id %s), which rotor had not written", s.loc.Key, cur.ID)
		}
		path := "/v9/projects/" + url.PathEscape(s.loc.Project) + "/env/" + url.PathEscape(cur.ID)
		if err := s.c.call(ctx, "edit variable "+s.loc.Key+" in project "+s.loc.Project, http.MethodPatch, path, nil, body, &written, value); err != nil {
			return sink.Result{}, err
		}
	}
	return sink.Result{Changed: true, Location: s.location(&written), Note: note, Version: version(&written)}, nil
}

// createdMeanwhile makes Vercel's refusal to create a variable that
// exists (which the list just before did not show) retryable: the retry
// lists again and finds it, rotor's (a write whose answer was lost) or
// foreign (refused then).
func createdMeanwhile(err error) error {
	var ae *APIError
	if errors.As(err, &ae) && (ae.Code == "ENV_ALREADY_EXISTS" || ae.Code == "ENV_CONFLICT") {
		ae.Hint = "the variable was created by someone else after rotor looked; the retry looks again"
		return sink.Transient(err)
	}
	return err
}

// decodeCreated reads "created": one variable or a list.
func decodeCreated(raw []byte) ([]envVar, error) {
	var many []envVar
	if err := json.Unmarshal(raw, &many); err == nil {
		return many, nil
	}
	var one envVar
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	return []envVar{one}, nil
}

func (s *Sink) location(e *envVar) string {
	return fmt.Sprintf("%s (id %s, updatedAt %d)", s.Describe(), e.ID, e.UpdatedAt)
}

// Version is the variable's updatedAt in Unix milliseconds; "" when it
// does not exist. A change by anyone but rotor shows as drift.
func (s *Sink) Version(ctx context.Context) (string, error) {
	cur, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	return version(cur), nil
}

// Holds reports whether the variable's comment names keyID for this
// application. Vercel keeps no history of a variable, so only the current
// credential can be known.
func (s *Sink) Holds(ctx context.Context, keyID string) (bool, error) {
	cur, err := s.current(ctx)
	if err != nil || cur == nil {
		return false, err
	}
	m := readMarker(cur.Comment)
	return m.ok && strings.EqualFold(m.appID, s.app.AppID) && m.keyID == keyID, nil
}

// Validate checks that the token works and may act in the team, that the
// project exists there, that the variable is absent or rotor's (or
// adopted), and, with redeploy, that there is a production deployment to
// redeploy. It reads, never writes, and reads no value.
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	var proj struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	path := "/v9/projects/" + url.PathEscape(s.loc.Project)
	if err := s.c.call(ctx, "read project "+s.loc.Project, http.MethodGet, path, nil, nil, &proj, ""); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
			where := "the token's personal account (no team_id)"
			if s.loc.TeamID != "" {
				where = "team " + s.loc.TeamID
			}
			return sink.Failed(fmt.Sprintf("project %s was not found in %s: check project and team_id (a team's project needs its team_id)", s.loc.Project, where), err)
		}
		if errors.As(err, &ae) && ae.StatusCode == http.StatusForbidden && !ae.InvalidToken && s.loc.TeamID != "" {
			return sink.Failed(fmt.Sprintf("the token may not act for team %s: use a token of a member of that team, or fix team_id", s.loc.TeamID), err)
		}
		return sink.FromError(err, "")
	}
	cur, err := s.current(ctx)
	if err != nil {
		return sink.FromError(err, "")
	}
	if err := s.owned(cur); err != nil {
		return sink.Failed("", err)
	}
	if cur != nil && cur.Type == TypeSensitive && s.st.typ != TypeSensitive {
		return sink.Failed(fmt.Sprintf("%s is sensitive and Vercel does not turn a sensitive variable back into another type: set type: sensitive, or delete the variable", s.Describe()), sink.Permanent(errors.New("sensitive variable cannot change type")))
	}
	var redeploy string
	if s.st.redeploy {
		latest, err := s.latestProduction(ctx)
		if err != nil {
			return sink.FromError(err, "")
		}
		if latest == nil {
			return sink.Failed(fmt.Sprintf("redeploy is on but project %s has no READY production deployment to redeploy: deploy it once, or turn redeploy off", s.loc.Project), sink.Permanent(errors.New("no production deployment")))
		}
		redeploy = fmt.Sprintf("; after delivery rotor redeploys production deployment %s", latest.id())
	}
	switch {
	case cur == nil:
		return sink.Ready(fmt.Sprintf("%s does not exist yet; rotor will create it (the token reads project %s; its right to write shows at the first delivery)%s", s.Describe(), proj.Name, redeploy))
	case !readMarker(cur.Comment).ok:
		return sink.Ready(fmt.Sprintf("%s was not written by rotor; adopt is on, so rotor takes it over at the next rotation%s", s.Describe(), redeploy))
	}
	return sink.Ready(fmt.Sprintf("%s is managed by rotor and holds credential %s%s", s.Describe(), readMarker(cur.Comment).keyID, redeploy))
}

// listProduction lists the project's newest production deployments.
func (s *Sink) listProduction(ctx context.Context) ([]deploymentInfo, error) {
	var resp struct {
		Deployments []deploymentInfo `json:"deployments"`
	}
	q := url.Values{"projectId": {s.loc.Project}, "target": {"production"}, "limit": {"20"}}
	if err := s.c.call(ctx, "list production deployments of project "+s.loc.Project, http.MethodGet, "/v6/deployments", q, nil, &resp, ""); err != nil {
		return nil, err
	}
	return resp.Deployments, nil
}

// latestProduction is the newest READY production deployment, or nil.
func (s *Sink) latestProduction(ctx context.Context) (*deploymentInfo, error) {
	ds, err := s.listProduction(ctx)
	if err != nil {
		return nil, err
	}
	var best *deploymentInfo
	for i := range ds {
		d := &ds[i]
		if d.state() != "READY" {
			continue
		}
		if best == nil || created(*d) > created(*best) {
			best = d
		}
	}
	return best, nil
}

func created(d deploymentInfo) int64 {
	if d.CreatedAt != 0 {
		return d.CreatedAt
	}
	return d.Created
}

// AfterAll redeploys the project's latest READY production deployment
// (POST /v13/deployments with deploymentId) when the spec says redeploy,
// and waits until the new deployment is READY (nil), ERROR or CANCELED
// (permanent), or the timeout passes (retryable: the build may still
// finish, and the retry waits for the same deployment). The deployment
// carries rotor's meta (the key id), so a repeated AfterAll — a retry, or
// a recovered run — finds it instead of deploying again.
func (s *Sink) AfterAll(ctx context.Context, d sink.Delivery) error {
	if !s.st.redeploy {
		return nil
	}
	uid, err := s.redeployFor(ctx, d)
	if err != nil {
		return err
	}
	deadline := s.clock.Now().Add(s.st.redeployTimeout)
	for {
		var dep deploymentInfo
		path := "/v13/deployments/" + url.PathEscape(uid)
		err := s.c.call(ctx, "read deployment "+uid, http.MethodGet, path, nil, nil, &dep, "")
		if err != nil && sink.IsPermanent(err) {
			return err
		}
		if err == nil {
			switch dep.state() {
			case "READY":
				return nil
			case "ERROR", "CANCELED":
				return sink.Permanent(fmt.Errorf("vercel: redeploy %s of project %s ended %s: the new credential is in the variable but no production deployment runs with it; see the deployment's build logs", uid, s.loc.Project, dep.state()))
			}
		}
		if !s.clock.Now().Before(deadline) {
			return sink.Transient(fmt.Errorf("vercel: redeploy %s of project %s is not READY after %s (state %s); a retry waits for it again", uid, s.loc.Project, s.st.redeployTimeout, dep.state()))
		}
		if err := clock.Sleep(ctx, s.clock, pollInterval); err != nil {
			return err
		}
	}
}

// redeployFor is the deployment that redeploys for d: one this sink, or
// an earlier run, already created (by meta), or a new one.
func (s *Sink) redeployFor(ctx context.Context, d sink.Delivery) (string, error) {
	s.mu.Lock()
	uid := s.redeploys[d.KeyID]
	s.mu.Unlock()
	if uid != "" {
		return uid, nil
	}
	ds, err := s.listProduction(ctx)
	if err != nil {
		return "", err
	}
	var latest *deploymentInfo
	for i := range ds {
		x := &ds[i]
		if x.Meta[MetaKeyID] == d.KeyID && x.Meta[MetaEnvKey] == s.loc.Key && strings.EqualFold(x.Meta[MetaAppID], s.app.AppID) {
			s.remember(d.KeyID, x.id())
			return x.id(), nil
		}
		if x.state() == "READY" && (latest == nil || created(*x) > created(*latest)) {
			latest = x
		}
	}
	if latest == nil {
		return "", sink.Permanent(fmt.Errorf("vercel: project %s has no READY production deployment to redeploy", s.loc.Project))
	}
	body := map[string]any{
		"name": latest.Name, "deploymentId": latest.id(), "target": "production", "project": s.loc.Project,
		"meta": map[string]string{MetaKeyID: d.KeyID, MetaAppID: s.app.AppID, MetaEnvKey: s.loc.Key},
	}
	var dep deploymentInfo
	if err := s.c.call(ctx, "redeploy "+latest.id()+" of project "+s.loc.Project, http.MethodPost, "/v13/deployments", nil, body, &dep, ""); err != nil {
		return "", err
	}
	if dep.id() == "" {
		return "", sink.Transient(fmt.Errorf("vercel: redeploy of project %s: the answer names no deployment", s.loc.Project))
	}
	s.remember(d.KeyID, dep.id())
	return dep.id(), nil
}

func (s *Sink) remember(keyID, uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redeploys[keyID] = uid
}
