// Package automation is the "automation" sink: it hands a rotated client
// secret to an Azure Automation runbook by starting a job of it with the
// secret in its ClientSecret parameter, and waits for the job to complete.
// The runbook does with the secret what only it knows how to (update an
// on-premises service, a legacy configuration store …).
//
// A spec looks like:
//
//	sinks:
//	  - type: automation
//	    subscription_id: 00000000-0000-0000-0000-000000000000
//	    resource_group: rg-ops
//	    account: aa-ops
//	    runbook: Update-AppSecret        # may be a template: "Update-{{ .App.DisplayName | slug }}"
//	    run_on: hw-onprem                # hybrid worker group; empty: Azure
//	    parameters: {TargetName: payroll} # more parameters, strings
//	    pass_secret: true                # the default: the secret goes in ClientSecret
//	    timeout: 10m                     # how long a delivery waits for its job
//	    connection: ops                  # default: the policy's connection
//
// A job is not a stored target: there is nothing to be foreign, nothing to
// adopt, and no version to drift. What the sink promises instead is that
// one credential starts one job: the job's name is derived from the run
// and the key id (rotor-<key id>-<run hash>), a completed job for the key
// id makes a delivery a no-op (Changed false), a job still running is
// waited for rather than started again, and Holds says whether a job for
// the key id completed.
//
// Automation is spoken through azcore's ARM pipeline with raw JSON, since
// Microsoft's armautomation module cannot be fetched here (see
// docs/sinks/automation.md). Every error is a sink.Classified; no error
// holds the secret, and a job's exception text is redacted of it.
package automation

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

// Type is the spec type this package builds.
const Type = "automation"

// APIVersion is the Automation api-version the sink speaks.
const APIVersion = "2023-11-01"

// Job statuses the sink acts on (Automation has more; the others are
// waited through).
const (
	statusCompleted = "Completed"
	statusFailed    = "Failed"
	statusStopped   = "Stopped"
	statusSuspended = "Suspended"
)

// Polling back-off: the first wait, and the longest.
const (
	firstPoll = 100 * time.Millisecond
	maxPoll   = 15 * time.Second
)

// Kind is the "automation" sink kind.
type Kind struct{}

var (
	_ sink.Kind       = Kind{}
	_ sink.Builder    = (*Builder)(nil)
	_ sink.Discoverer = (*Builder)(nil)
	_ sink.Sink       = (*Sink)(nil)
	_ sink.Validator  = (*Sink)(nil)
	_ sink.Holder     = (*Sink)(nil)
)

// Type returns "automation".
func (Kind) Type() string { return Type }

// CheckSpec validates the settings without I/O; every problem at once,
// each *SpecError naming its key.
func (Kind) CheckSpec(spec domain.SinkSpec) error {
	_, err := parseSpec(spec)
	return err
}

// NewBuilder returns the builder; it needs deps.Credentials.
func (Kind) NewBuilder(deps sink.Deps) (sink.Builder, error) {
	if deps.Credentials == nil {
		return nil, errors.New("automation sink needs token credentials")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Builder{creds: deps.Credentials, clock: cmp.Or[clock.Clock](deps.Clock, clock.Real{}), log: log, clients: map[[2]string]*restClient{}}, nil
}

// Builder builds Automation sinks, with one ARM client per (organization,
// connection).
type Builder struct {
	creds sink.TokenCredentials
	clock clock.Clock
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

// Resolve renders the runbook name for req.App and returns its target,
// ignoring req.Pinned.
func (b *Builder) Resolve(req sink.BuildRequest) (sink.TargetID, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return sink.TargetID{}, err
	}
	rb, err := st.runbookFor(req.App)
	if err != nil {
		return sink.TargetID{}, err
	}
	return TargetFor(st.subscriptionID, st.resourceGroup, st.account, rb)
}

// TargetFor is the target of a runbook:
// automation:/subscriptions/{s}/resourcegroups/{rg}/providers/microsoft.automation/automationaccounts/{a}/runbooks/{r},
// in lower case (ARM compares names without regard to case).
func TargetFor(subscriptionID, resourceGroup, account, runbook string) (sink.TargetID, error) {
	return sink.NewTargetID(Type, strings.ToLower(fmt.Sprintf(
		"/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Automation/automationAccounts/%s/runbooks/%s", subscriptionID, resourceGroup, account, runbook)))
}

var targetPattern = regexp.MustCompile(`^/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/microsoft\.automation/automationaccounts/([^/]+)/runbooks/([^/]+)$`)

// ParseTarget returns the parts of an Automation target.
func ParseTarget(t sink.TargetID) (subscriptionID, resourceGroup, account, runbook string, err error) {
	m := targetPattern.FindStringSubmatch(t.Ref())
	if t.Kind() != Type || m == nil {
		return "", "", "", "", fmt.Errorf("%w: %q: want automation:/subscriptions/…/automationaccounts/<account>/runbooks/<runbook>", sink.ErrBadTargetID, t.String())
	}
	return m[1], m[2], m[3], m[4], nil
}

// Build returns the sink of req.App: on the pinned runbook when there is
// one, else on the rendered name.
func (b *Builder) Build(_ context.Context, req sink.BuildRequest) (sink.Sink, error) {
	st, err := parseSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	rb, err := st.runbookFor(req.App)
	if err != nil && req.Pinned.IsZero() {
		return nil, err
	}
	target, err := TargetFor(st.subscriptionID, st.resourceGroup, st.account, rb)
	if err != nil && req.Pinned.IsZero() {
		return nil, err
	}
	if !req.Pinned.IsZero() && req.Pinned != target {
		// The application was renamed: keep writing where rotor did.
		sub, rg, acc, pinnedRB, err := ParseTarget(req.Pinned)
		if err != nil {
			return nil, err
		}
		st.subscriptionID, st.resourceGroup, st.account, rb, target = sub, rg, acc, pinnedRB, req.Pinned
	}
	connection := cmp.Or(st.connection, req.Connection)
	if connection == "" {
		return nil, &SpecError{Key: KeyConnection, Msg: "no connection: set connection on the sink or on its policy"}
	}
	c, err := b.client(req.App.Org, connection)
	if err != nil {
		return nil, fmt.Errorf("automation sink: client for connection %q: %w", connection, err)
	}
	return &Sink{api: c, st: st, runbook: rb, target: target, clock: b.clock, log: b.log}, nil
}

// Sink starts jobs of one runbook.
type Sink struct {
	api     *restClient
	st      settings
	runbook string
	target  sink.TargetID
	clock   clock.Clock
	log     *slog.Logger
}

// Target is the runbook's target id.
func (s *Sink) Target() sink.TargetID { return s.target }

// Describe names the runbook, e.g. `Automation runbook "Update-AppSecret" in account aa-ops (rg-ops), on hybrid worker group hw-onprem`.
func (s *Sink) Describe() string {
	where := "in Azure"
	if s.st.runOn != "" {
		where = "on hybrid worker group " + s.st.runOn
	}
	return fmt.Sprintf("Automation runbook %q in account %s (%s), %s", s.runbook, s.st.account, s.st.resourceGroup, where)
}

func (s *Sink) accountPath() string { return s.st.accountPath() }

// runbookJSON is the part of Runbook - Get the sink reads.
type runbookJSON struct {
	Name       string `json:"name"`
	Properties struct {
		State      string `json:"state"`
		Parameters map[string]struct {
			Type        string `json:"type"`
			IsMandatory bool   `json:"isMandatory"`
		} `json:"parameters"`
	} `json:"properties"`
}

// jobJSON is the part of a job the sink reads: never its parameters.
type jobJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		Runbook struct {
			Name string `json:"name"`
		} `json:"runbook"`
		Status    string  `json:"status"`
		Exception *string `json:"exception"`
		RunOn     string  `json:"runOn"`
	} `json:"properties"`
}

func (s *Sink) getRunbook(ctx context.Context) (runbookJSON, error) {
	var rb runbookJSON
	_, err := s.api.Do(ctx, http.MethodGet, s.accountPath()+"/runbooks/"+s.runbook, APIVersion, nil, &rb)
	if statusOf(err) == http.StatusNotFound {
		return rb, sink.Permanent(fmt.Errorf("runbook %q or account %s not found in resource group %s: %w", s.runbook, s.st.account, s.st.resourceGroup, err))
	}
	return rb, err
}

// declares checks the runbook takes what the sink sends.
func (s *Sink) declares(rb runbookJSON) error {
	var have []string
	for k := range rb.Properties.Parameters {
		have = append(have, k)
	}
	sort.Strings(have)
	has := func(name string) bool {
		return slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, name) })
	}
	list := strings.Join(have, ", ")
	if list == "" {
		list = "none"
	}
	if s.st.passSecret && !has(ParamClientSecret) {
		return sink.Permanent(fmt.Errorf("runbook %q declares no %s parameter (its parameters: %s): add param([string]$%s) to it, or set pass_secret: false",
			s.runbook, ParamClientSecret, list, ParamClientSecret))
	}
	for _, k := range sortedKeys(toAny(s.st.parameters)) {
		if !has(k) {
			return sink.Permanent(fmt.Errorf("runbook %q declares no parameter %s, which the spec's parameters set (its parameters: %s)", s.runbook, k, list))
		}
	}
	for _, k := range have {
		p := rb.Properties.Parameters[k]
		_, given := s.st.parameters[k]
		if p.IsMandatory && !given && !(s.st.passSecret && strings.EqualFold(k, ParamClientSecret)) {
			return sink.Permanent(fmt.Errorf("runbook %q needs its mandatory parameter %s, which the spec's parameters do not set", s.runbook, k))
		}
	}
	return nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// listJobs lists the account's jobs of the sink's runbook.
func (s *Sink) listJobs(ctx context.Context) ([]jobJSON, error) {
	var out []jobJSON
	path := s.accountPath() + "/jobs"
	for page := 0; page < 100; page++ {
		var body struct {
			Value    []jobJSON `json:"value"`
			NextLink string    `json:"nextLink"`
		}
		if _, err := s.api.Do(ctx, http.MethodGet, path, APIVersion, nil, &body); err != nil {
			if statusOf(err) == http.StatusNotFound {
				return nil, sink.Permanent(fmt.Errorf("automation account %s not found in resource group %s: %w", s.st.account, s.st.resourceGroup, err))
			}
			return nil, err
		}
		for _, j := range body.Value {
			if strings.EqualFold(j.Properties.Runbook.Name, s.runbook) {
				out = append(out, j)
			}
		}
		if body.NextLink == "" {
			break
		}
		// nextLink is absolute; the pipeline takes a path relative to the
		// endpoint, so keep the path and its query but the api-version.
		path = nextPath(body.NextLink, s.api.Endpoint())
	}
	return out, nil
}

// nextPath turns an absolute nextLink into a path under endpoint.
func nextPath(link, endpoint string) string {
	if rest, ok := strings.CutPrefix(link, strings.TrimSuffix(endpoint, "/")); ok {
		return rest
	}
	return link
}

// JobName is the job the delivery of d starts: rotor-<key id>-<8 hex of
// the run id's SHA-256>. Deterministic, so a retried delivery of the same
// run finds its job instead of starting a second one.
func JobName(d sink.Delivery) string {
	h := sha256.Sum256([]byte(d.RunID))
	return "rotor-" + safeKey(d.KeyID) + "-" + hex.EncodeToString(h[:4])
}

var unsafeChars = regexp.MustCompile(`[^-\w.]`)

func safeKey(k string) string {
	k = unsafeChars.ReplaceAllString(k, "-")
	if len(k) > 100 {
		k = k[:100]
	}
	return k
}

// keyOf is the (safe) key id a rotor job name carries, "" for other jobs.
func keyOf(jobName string) string {
	rest, ok := strings.CutPrefix(jobName, "rotor-")
	if !ok || len(rest) < 10 || rest[len(rest)-9] != '-' {
		return ""
	}
	return rest[:len(rest)-9]
}

func terminalFailure(status string) bool {
	return status == statusFailed || status == statusStopped || status == statusSuspended
}

// Deliver starts the runbook's job with the secret (or finds the one an
// earlier attempt started) and waits for it to complete.
func (s *Sink) Deliver(ctx context.Context, d sink.Delivery) (sink.Result, error) {
	value := ""
	if s.st.passSecret {
		cred, err := sink.SecretOrEncoded("automation", d.Material, s.st.certFormat)
		if err != nil {
			return sink.Result{}, err
		}
		value = cred.Reveal()
	}
	fail := func(err error) (sink.Result, error) {
		return sink.Result{}, fmt.Errorf("automation sink: %s: %w", s.Describe(), err)
	}
	rb, err := s.getRunbook(ctx)
	if err != nil {
		return fail(err)
	}
	if err := s.declares(rb); err != nil {
		return fail(err)
	}
	jobs, err := s.listJobs(ctx)
	if err != nil {
		return fail(err)
	}
	name := JobName(d)
	key := safeKey(d.KeyID)
	var pending string
	for _, j := range jobs {
		if keyOf(j.Name) != key {
			continue
		}
		switch st := j.Properties.Status; {
		case st == statusCompleted:
			return sink.Result{Changed: false, Location: j.ID, Note: fmt.Sprintf("job %s had already completed with this credential", j.Name)}, nil
		case strings.EqualFold(j.Name, name) && terminalFailure(st):
			return fail(sink.Permanent(fmt.Errorf("job %s of this run ended %s%s", j.Name, st, s.exception(j, value))))
		case !terminalFailure(st):
			pending = j.Name
		}
	}
	note := ""
	if pending != "" {
		name, note = pending, "waited for job "+pending+", started by an earlier attempt"
	} else {
		params := map[string]string{}
		for k, v := range s.st.parameters {
			params[k] = v
		}
		if s.st.passSecret {
			params[ParamClientSecret] = value
		}
		body := map[string]any{"properties": map[string]any{"runbook": map[string]string{"name": s.runbook}, "parameters": params, "runOn": s.st.runOn}}
		_, err := s.api.Do(ctx, http.MethodPut, s.accountPath()+"/jobs/"+name, APIVersion, body, nil)
		switch {
		case statusOf(err) == http.StatusConflict:
			note = "job " + name + " existed already (an earlier attempt's answer was lost)"
		case err != nil:
			return fail(scrub(err, value))
		}
	}
	j, err := s.wait(ctx, name, value)
	if err != nil {
		return fail(err)
	}
	return sink.Result{Changed: true, Location: j.ID, Note: note}, nil
}

// wait polls the job until it ends or the timeout passes, backing off on
// the injected clock.
func (s *Sink) wait(ctx context.Context, name, value string) (jobJSON, error) {
	deadline := s.clock.Now().Add(s.st.timeout)
	delay := firstPoll
	for {
		var j jobJSON
		if _, err := s.api.Do(ctx, http.MethodGet, s.accountPath()+"/jobs/"+name, APIVersion, nil, &j); err != nil {
			return j, fmt.Errorf("reading job %s: %w", name, scrub(err, value))
		}
		switch st := j.Properties.Status; {
		case st == statusCompleted:
			return j, nil
		case terminalFailure(st):
			return j, sink.Permanent(fmt.Errorf("job %s ended %s%s", name, st, s.exception(j, value)))
		}
		if s.clock.Now().Add(delay).After(deadline) {
			return j, sink.Transient(fmt.Errorf("job %s is still %s after %s; a retry waits for the same job", name, j.Properties.Status, s.st.timeout))
		}
		if err := clock.Sleep(ctx, s.clock, delay); err != nil {
			return j, sink.Transient(fmt.Errorf("waiting for job %s: %w", name, err))
		}
		delay = min(delay*2, maxPoll)
	}
}

// exception is ": <the job's exception>", redacted of the value.
func (s *Sink) exception(j jobJSON, value string) string {
	if j.Properties.Exception == nil || *j.Properties.Exception == "" {
		return ""
	}
	e := redact(*j.Properties.Exception, value)
	if len(e) > 500 {
		e = e[:500] + "…"
	}
	return ": " + e
}

// scrub redacts value from an ARM error's message.
func scrub(err error, value string) error {
	var e *APIError
	if value != "" && errors.As(err, &e) {
		e.Message = redact(e.Message, value)
	}
	return err
}

// Holds reports whether a job of the runbook for keyID completed.
func (s *Sink) Holds(ctx context.Context, keyID string) (bool, error) {
	jobs, err := s.listJobs(ctx)
	if err != nil {
		return false, fmt.Errorf("automation sink: %s: %w", s.Describe(), err)
	}
	for _, j := range jobs {
		if keyOf(j.Name) == safeKey(keyID) && j.Properties.Status == statusCompleted {
			return true, nil
		}
	}
	return false, nil
}

// Validate reads the account, the runbook (that it declares ClientSecret
// and the spec's parameters), the hybrid worker group, and the jobs (the
// read permission a delivery needs; starting a job cannot be proven
// without starting one).
func (s *Sink) Validate(ctx context.Context) sink.Validation {
	explain := func(what string, err error) sink.Validation {
		switch st := statusOf(err); {
		case st == http.StatusForbidden:
			return sink.Failed(fmt.Sprintf("the connection's identity may not read %s: give it Automation Operator on account %s (resource group %s)", what, s.st.account, s.st.resourceGroup), err)
		case st == http.StatusUnauthorized:
			return sink.Failed("Resource Manager refused the connection's token: "+err.Error(), err)
		case st == http.StatusNotFound:
			return sink.Failed(fmt.Sprintf("%s not found: %v", what, err), err)
		case sink.IsPermanent(err):
			return sink.Failed(fmt.Sprintf("reading %s failed: %v", what, err), err)
		}
		return sink.Unknown(fmt.Sprintf("could not read %s: %v", what, err), err)
	}
	if _, err := s.api.Do(ctx, http.MethodGet, s.accountPath(), APIVersion, nil, nil); err != nil {
		return explain(fmt.Sprintf("Automation account %s in resource group %s", s.st.account, s.st.resourceGroup), err)
	}
	var rb runbookJSON
	if _, err := s.api.Do(ctx, http.MethodGet, s.accountPath()+"/runbooks/"+s.runbook, APIVersion, nil, &rb); err != nil {
		return explain(fmt.Sprintf("runbook %q of account %s", s.runbook, s.st.account), err)
	}
	if err := s.declares(rb); err != nil {
		return sink.Failed(err.Error(), err)
	}
	if s.st.runOn != "" {
		if _, err := s.api.Do(ctx, http.MethodGet, s.accountPath()+"/hybridRunbookWorkerGroups/"+s.st.runOn, APIVersion, nil, nil); err != nil {
			return explain(fmt.Sprintf("hybrid worker group %q of account %s", s.st.runOn, s.st.account), err)
		}
	}
	if _, err := s.api.Do(ctx, http.MethodGet, s.accountPath()+"/jobs", APIVersion, nil, nil); err != nil {
		return explain(fmt.Sprintf("the jobs of account %s", s.st.account), err)
	}
	what := "takes the secret in " + ParamClientSecret
	if !s.st.passSecret {
		what = "is started without the secret (pass_secret: false)"
	}
	return sink.Ready(fmt.Sprintf("runbook %q %s; jobs are readable (starting one needs Automation Operator, which only a delivery proves)", s.runbook, what))
}

// DiscoverKeys are the settings Discover lists.
func (b *Builder) DiscoverKeys() []string { return []string{KeyRunbook, KeyRunOn} }

// Discover lists the account's runbooks (saying which declare
// ClientSecret) or hybrid worker groups. subscription_id, resource_group
// and account must be set.
func (b *Builder) Discover(ctx context.Context, q sink.DiscoverQuery) ([]sink.Choice, error) {
	str := func(k string) string { v, _ := q.Spec.Settings[k].(string); return strings.TrimSpace(v) }
	sub, rg, acc := str(KeySubscriptionID), str(KeyResourceGroup), str(KeyAccount)
	if sub == "" || rg == "" || acc == "" {
		return nil, &SpecError{Key: q.Key, Msg: "set subscription_id, resource_group and account first"}
	}
	connection := cmp.Or(str(KeyConnection), q.Connection)
	if connection == "" {
		return nil, &SpecError{Key: KeyConnection, Msg: "no connection: set connection on the sink or on its policy"}
	}
	c, err := b.client(q.Org, connection)
	if err != nil {
		return nil, err
	}
	st := settings{subscriptionID: sub, resourceGroup: rg, account: acc}
	var out []sink.Choice
	switch q.Key {
	case KeyRunbook:
		var body struct {
			Value []runbookJSON `json:"value"`
		}
		if _, err := c.Do(ctx, http.MethodGet, st.accountPath()+"/runbooks", APIVersion, nil, &body); err != nil {
			return nil, err
		}
		for _, rb := range body.Value {
			detail := "no " + ParamClientSecret + " parameter"
			for k := range rb.Properties.Parameters {
				if strings.EqualFold(k, ParamClientSecret) {
					detail = "takes " + ParamClientSecret
				}
			}
			out = append(out, sink.Choice{Value: rb.Name, Label: rb.Name, Detail: detail})
		}
	case KeyRunOn:
		var body struct {
			Value []struct {
				Name string `json:"name"`
			} `json:"value"`
		}
		if _, err := c.Do(ctx, http.MethodGet, st.accountPath()+"/hybridRunbookWorkerGroups", APIVersion, nil, &body); err != nil {
			return nil, err
		}
		out = append(out, sink.Choice{Value: "", Label: "Azure", Detail: "run in Azure's sandbox"})
		for _, g := range body.Value {
			out = append(out, sink.Choice{Value: g.Name, Label: g.Name, Detail: "hybrid worker group"})
		}
	default:
		return nil, &SpecError{Key: q.Key, Msg: fmt.Sprintf("cannot list choices (listable: %s)", strings.Join(b.DiscoverKeys(), ", "))}
	}
	return out, nil
}
