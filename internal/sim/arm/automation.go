package arm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file is Azure Automation (Microsoft.Automation, api-version
// 2023-11-01): an account, its runbooks with their parameters, its hybrid
// worker groups, and jobs. A job's status moves one step on every read of
// it (New → Activating → Running → its outcome), so a client that polls
// sees what Automation shows without the test waiting on a wall clock.
// A job created with a ClientSecret parameter reports it as a consumer
// ("automation", "<account>/<runbook>", "ClientSecret"): the runbook uses
// the secret.

// automationVersions are the Automation api-versions served; jobs, runbooks
// and worker groups have the same shapes in each.
var automationVersions = []string{"2019-06-01", "2022-08-08", "2023-05-15-preview", "2023-11-01", "2024-10-23"}

// Job statuses, as Automation names them.
const (
	JobNew        = "New"
	JobActivating = "Activating"
	JobRunning    = "Running"
	JobCompleted  = "Completed"
	JobFailed     = "Failed"
	JobSuspended  = "Suspended"
	JobStopped    = "Stopped"
)

// Outcome is how a seeded runbook's jobs end.
type Outcome string

const (
	// OutcomeComplete: every job completes.
	OutcomeComplete Outcome = ""
	// OutcomeFail: every job fails with the runbook's Exception.
	OutcomeFail Outcome = "fail"
	// OutcomeSuspend: every job is suspended with the runbook's Exception.
	OutcomeSuspend Outcome = "suspend"
	// OutcomeVerify: the job signs in with its ClientSecret parameter and
	// completes only when Entra would accept it now (a password of an
	// application of the account's tenant, within its validity and past
	// replication); otherwise it fails as the sign-in would.
	OutcomeVerify Outcome = "verify"
	// OutcomeHang: every job stays Running (a runbook waiting on something
	// that never comes), for clients' timeouts.
	OutcomeHang Outcome = "hang"
)

// ParamClientSecret is the runbook parameter the rotated secret goes in.
const ParamClientSecret = "ClientSecret"

// AutomationAccount is a simulated Automation account.
type AutomationAccount struct {
	TenantID, SubscriptionID, ResourceGroup, Name, Location string

	runbooks     map[string]*Runbook // by lower-case name
	workerGroups []string
	jobs         map[string]*Job // by lower-case name
	jobOrder     []string
}

// ResourceID is the account's ARM id.
func (a *AutomationAccount) ResourceID() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Automation/automationAccounts/%s", a.SubscriptionID, a.ResourceGroup, a.Name)
}

// Runbook is a published runbook.
type Runbook struct {
	Name string
	// Parameters the runbook declares, in position order.
	Parameters []RunbookParameter
	Outcome    Outcome
	// Exception is what a failing or suspended job reports.
	Exception string
}

// RunbookParameter is one declared parameter.
type RunbookParameter struct {
	Name      string
	Type      string // e.g. "System.String"
	Mandatory bool
}

// Job is one run of a runbook.
type Job struct {
	Name, JobID, Runbook, RunOn string
	// Parameters are what the job was started with; they stay in memory.
	Parameters map[string]string
	Status     string
	Exception  string
	Created    time.Time
	Modified   time.Time
	final      string
	finalExc   string
}

// AddAutomationAccount creates an account (idempotent by id) in the
// subscription's tenant. Callers hold no lock.
func (s *Service) AddAutomationAccount(tenantID, subscriptionID, resourceGroup, name string) *AutomationAccount {
	a := &AutomationAccount{TenantID: tenantID, SubscriptionID: subscriptionID, ResourceGroup: resourceGroup, Name: name,
		Location: "westeurope", runbooks: map[string]*Runbook{}, jobs: map[string]*Job{}}
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	if old := s.res.accounts[strings.ToLower(a.ResourceID())]; old != nil {
		return old
	}
	s.res.accounts[strings.ToLower(a.ResourceID())] = a
	return a
}

// AddRunbook publishes rb in the account (replacing one of the same name).
func (s *Service) AddRunbook(accountID string, rb Runbook) error {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	a := s.res.accounts[strings.ToLower(accountID)]
	if a == nil {
		return fmt.Errorf("no automation account %s", accountID)
	}
	cp := rb
	cp.Parameters = slices.Clone(rb.Parameters)
	a.runbooks[strings.ToLower(rb.Name)] = &cp
	return nil
}

// AddWorkerGroup adds a hybrid runbook worker group to the account.
func (s *Service) AddWorkerGroup(accountID, name string) error {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	a := s.res.accounts[strings.ToLower(accountID)]
	if a == nil {
		return fmt.Errorf("no automation account %s", accountID)
	}
	if !slices.ContainsFunc(a.workerGroups, func(g string) bool { return strings.EqualFold(g, name) }) {
		a.workerGroups = append(a.workerGroups, name)
	}
	return nil
}

// Jobs returns copies of the account's jobs of runbook (every runbook when
// empty), in creation order.
func (s *Service) Jobs(accountID, runbook string) []Job {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	a := s.res.accounts[strings.ToLower(accountID)]
	if a == nil {
		return nil
	}
	var out []Job
	for _, n := range a.jobOrder {
		j := a.jobs[n]
		if runbook == "" || strings.EqualFold(j.Runbook, runbook) {
			cp := *j
			cp.Parameters = map[string]string{}
			for k, v := range j.Parameters {
				cp.Parameters[k] = v
			}
			out = append(out, cp)
		}
	}
	return out
}

// seedAutomation gives every tenant with a subscription the account
// aa-rotor in rg-rotor, with the runbooks below and the worker group
// hw-onprem; the tenant's rotation identity is its Automation Operator.
// Callers hold the world's read lock.
func (s *Service) seedAutomation(t *core.Tenant) {
	if len(t.Subscriptions) == 0 {
		return
	}
	sub := t.Subscriptions[0]
	a := s.AddAutomationAccount(t.ID, sub.ID, DemoAutomationResourceGroup, DemoAutomationAccount)
	secretParam := RunbookParameter{Name: ParamClientSecret, Type: "System.String", Mandatory: true}
	for _, rb := range []Runbook{
		{Name: "Update-AppSecret", Parameters: []RunbookParameter{secretParam, {Name: "TargetName", Type: "System.String"}}},
		{Name: "Verify-AppSecret", Parameters: []RunbookParameter{secretParam, {Name: "ClientId", Type: "System.String"}}, Outcome: OutcomeVerify},
		{Name: "Broken-AppSecret", Parameters: []RunbookParameter{secretParam}, Outcome: OutcomeFail,
			Exception: "The term 'Connect-Legacy' is not recognized as the name of a cmdlet, function, script file, or operable program."},
		{Name: "Approve-AppSecret", Parameters: []RunbookParameter{secretParam}, Outcome: OutcomeSuspend,
			Exception: "The job was suspended: it is waiting for an approval (Suspend-Job)."},
		{Name: "Wait-AppSecret", Parameters: []RunbookParameter{secretParam}, Outcome: OutcomeHang},
		{Name: "Cleanup-Logs", Parameters: []RunbookParameter{{Name: "Days", Type: "System.Int32"}}},
	} {
		_ = s.AddRunbook(a.ResourceID(), rb)
	}
	_ = s.AddWorkerGroup(a.ResourceID(), DemoWorkerGroup)
	if sp := t.SPByAppID(t.RotationClientID); sp != nil {
		t.AssignRole(sp.ObjectID, RoleAutomationOperator, a.ResourceID())
	}
}

// The demo's Automation names (every seeded tenant has them).
const (
	DemoAutomationResourceGroup = "rg-rotor"
	DemoAutomationAccount       = "aa-rotor"
	DemoWorkerGroup             = "hw-onprem"
	DemoRunbook                 = "Update-AppSecret"
)

// jobNamePattern is the simulator's rule for job names (ARM's resource
// name characters).
var jobNamePattern = regexp.MustCompile(`^[-\w._]{1,128}$`)

// serveAutomation serves …/automationAccounts/{a}[/…].
func (c *call) serveAutomation(p rgPath) {
	accountID := p.rgID() + "/providers/Microsoft.Automation/automationAccounts/" + p.rest[1]
	rest := p.rest[2:]
	write := c.r.Method == http.MethodPut
	if c.r.Method != http.MethodGet && !write {
		c.notImplemented()
		return
	}
	action := "Microsoft.Automation/automationAccounts/read"
	var writeRoles []string
	if len(rest) >= 1 {
		action = "Microsoft.Automation/automationAccounts/" + rest[0] + "/read"
	}
	if write {
		if len(rest) != 2 || !strings.EqualFold(rest[0], "jobs") {
			c.notImplemented()
			return
		}
		action = "Microsoft.Automation/automationAccounts/jobs/write"
		writeRoles = []string{RoleOwner, RoleContributor, RoleAutomationOperator}
	}
	w := c.s.World()
	w.RLock()
	_, fail := c.authorize(p.sub, accountID, action, writeRoles)
	w.RUnlock()
	if fail != nil {
		fail()
		return
	}
	res := &c.s.res
	res.mu.Lock()
	a := res.accounts[strings.ToLower(accountID)]
	if a == nil || !strings.EqualFold(a.ResourceGroup, p.rg) {
		res.mu.Unlock()
		armError(c.w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf(
			"The Resource 'Microsoft.Automation/automationAccounts/%s' under resource group '%s' was not found.", p.rest[1], p.rg))
		return
	}
	switch {
	case len(rest) == 0:
		body := map[string]any{"id": a.ResourceID(), "name": a.Name, "type": "Microsoft.Automation/AutomationAccounts", "location": a.Location,
			"tags": map[string]string{}, "properties": map[string]any{"sku": map[string]string{"name": "Basic"}, "state": "Ok"}}
		res.mu.Unlock()
		core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, body)
	case strings.EqualFold(rest[0], "runbooks") && len(rest) <= 2:
		c.serveRunbooks(a, rest[1:]) // unlocks
	case strings.EqualFold(rest[0], "hybridRunbookWorkerGroups") && len(rest) <= 2:
		c.serveWorkerGroups(a, rest[1:]) // unlocks
	case strings.EqualFold(rest[0], "jobs") && len(rest) <= 2:
		c.serveJobs(a, rest[1:]) // unlocks
	default:
		res.mu.Unlock()
		c.notImplemented()
	}
}

func runbookJSON(a *AutomationAccount, rb *Runbook) map[string]any {
	params := map[string]any{}
	for i, p := range rb.Parameters {
		params[p.Name] = map[string]any{"type": p.Type, "isMandatory": p.Mandatory, "position": i}
	}
	return map[string]any{
		"id": a.ResourceID() + "/runbooks/" + rb.Name, "name": rb.Name, "type": "Microsoft.Automation/AutomationAccounts/Runbooks",
		"location": a.Location, "tags": map[string]string{},
		"properties": map[string]any{"runbookType": "PowerShell", "state": "Published", "logVerbose": false, "logProgress": false,
			"parameters": params, "description": ""},
	}
}

// serveRunbooks serves Runbook - List By Automation Account and Runbook -
// Get. Called with res.mu held; it unlocks.
func (c *call) serveRunbooks(a *AutomationAccount, rest []string) {
	res := &c.s.res
	if len(rest) == 1 {
		rb := a.runbooks[strings.ToLower(rest[0])]
		if rb == nil {
			res.mu.Unlock()
			armError(c.w, http.StatusNotFound, "NotFound", fmt.Sprintf("The Runbook '%s' was not found in automation account '%s'.", rest[0], a.Name))
			return
		}
		body := runbookJSON(a, rb)
		res.mu.Unlock()
		core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, body)
		return
	}
	out := []any{}
	for _, n := range core.SortedKeys(a.runbooks) {
		out = append(out, runbookJSON(a, a.runbooks[n]))
	}
	res.mu.Unlock()
	core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, map[string]any{"value": out})
}

// serveWorkerGroups serves Hybrid Runbook Worker Group - List By
// Automation Account and - Get. Called with res.mu held; it unlocks.
func (c *call) serveWorkerGroups(a *AutomationAccount, rest []string) {
	res := &c.s.res
	groupJSON := func(g string) map[string]any {
		return map[string]any{"id": a.ResourceID() + "/hybridRunbookWorkerGroups/" + g, "name": g,
			"type":       "Microsoft.Automation/AutomationAccounts/HybridRunbookWorkerGroups",
			"properties": map[string]any{"groupType": "User", "credential": nil}}
	}
	if len(rest) == 1 {
		i := slices.IndexFunc(a.workerGroups, func(g string) bool { return strings.EqualFold(g, rest[0]) })
		if i < 0 {
			res.mu.Unlock()
			armError(c.w, http.StatusNotFound, "NotFound", fmt.Sprintf("The Hybrid Runbook Worker Group '%s' was not found in automation account '%s'.", rest[0], a.Name))
			return
		}
		body := groupJSON(a.workerGroups[i])
		res.mu.Unlock()
		core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, body)
		return
	}
	out := []any{}
	for _, g := range a.workerGroups {
		out = append(out, groupJSON(g))
	}
	res.mu.Unlock()
	core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, map[string]any{"value": out})
}

func jobJSON(a *AutomationAccount, j *Job, withParams bool) map[string]any {
	props := map[string]any{
		"runbook": map[string]string{"name": j.Runbook}, "jobId": j.JobID, "runOn": j.RunOn, "status": j.Status,
		"statusDetails": "None", "creationTime": j.Created.Format(time.RFC3339Nano), "lastModifiedTime": j.Modified.Format(time.RFC3339Nano),
		"provisioningState": "Succeeded", "startedBy": "", "exception": nil,
	}
	if j.Exception != "" {
		props["exception"] = j.Exception
	}
	if withParams {
		// Job - Get returns the job's parameters as they were given, as
		// Automation does; the listing does not.
		params := map[string]string{}
		for k, v := range j.Parameters {
			params[k] = v
		}
		props["parameters"] = params
	}
	return map[string]any{"id": a.ResourceID() + "/jobs/" + j.Name, "name": j.Name, "type": "Microsoft.Automation/AutomationAccounts/Jobs", "properties": props}
}

// serveJobs serves Job - List By Automation Account, Job - Get (which
// moves the job one step on) and Job - Create. Called with res.mu held; it
// unlocks.
func (c *call) serveJobs(a *AutomationAccount, rest []string) {
	res := &c.s.res
	now := c.s.Clock().Now().UTC()
	if len(rest) == 0 {
		if c.r.Method != http.MethodGet {
			res.mu.Unlock()
			c.notImplemented()
			return
		}
		out := []any{}
		for _, n := range a.jobOrder {
			out = append(out, jobJSON(a, a.jobs[n], false))
		}
		res.mu.Unlock()
		core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, map[string]any{"value": out})
		return
	}
	name := rest[0]
	j := a.jobs[strings.ToLower(name)]
	if c.r.Method == http.MethodGet {
		if j == nil {
			res.mu.Unlock()
			armError(c.w, http.StatusNotFound, "NotFound", fmt.Sprintf("The job '%s' was not found in automation account '%s'.", name, a.Name))
			return
		}
		advance(j, now)
		body := jobJSON(a, j, true)
		res.mu.Unlock()
		core.WriteJSON(c.w, http.StatusOK, core.PlainJSON, body)
		return
	}
	// PUT: create.
	if !jobNamePattern.MatchString(name) {
		res.mu.Unlock()
		armError(c.w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The job name '%s' is invalid.", name))
		return
	}
	if j != nil {
		res.mu.Unlock()
		armError(c.w, http.StatusConflict, "Conflict", fmt.Sprintf("A job with name '%s' already exists in automation account '%s'.", name, a.Name))
		return
	}
	var body struct {
		Properties struct {
			Runbook struct {
				Name string `json:"name"`
			} `json:"runbook"`
			Parameters map[string]any `json:"parameters"`
			RunOn      string         `json:"runOn"`
		} `json:"properties"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(c.w, c.r.Body, 1<<20)).Decode(&body); err != nil {
		res.mu.Unlock()
		armError(c.w, http.StatusBadRequest, "BadRequest", "The request body is not valid JSON.")
		return
	}
	rb := a.runbooks[strings.ToLower(body.Properties.Runbook.Name)]
	if rb == nil {
		res.mu.Unlock()
		armError(c.w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The runbook '%s' was not found in automation account '%s'.", body.Properties.Runbook.Name, a.Name))
		return
	}
	params := map[string]string{}
	for k, v := range body.Properties.Parameters {
		i := slices.IndexFunc(rb.Parameters, func(p RunbookParameter) bool { return strings.EqualFold(p.Name, k) })
		if i < 0 {
			res.mu.Unlock()
			armError(c.w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The runbook '%s' does not have a parameter named '%s'.", rb.Name, k))
			return
		}
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		params[rb.Parameters[i].Name] = s
	}
	for _, p := range rb.Parameters {
		if _, ok := params[p.Name]; p.Mandatory && !ok {
			res.mu.Unlock()
			armError(c.w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The runbook '%s' requires the parameter '%s'.", rb.Name, p.Name))
			return
		}
	}
	if g := body.Properties.RunOn; g != "" && !slices.ContainsFunc(a.workerGroups, func(x string) bool { return strings.EqualFold(x, g) }) {
		res.mu.Unlock()
		armError(c.w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The Hybrid Runbook Worker Group '%s' was not found in automation account '%s'.", g, a.Name))
		return
	}
	j = &Job{Name: name, JobID: uuid.NewString(), Runbook: rb.Name, RunOn: body.Properties.RunOn, Parameters: params,
		Status: JobNew, Created: now, Modified: now}
	secretValue, hasSecret := params[ParamClientSecret]
	switch rb.Outcome {
	case OutcomeFail:
		j.final, j.finalExc = JobFailed, rb.Exception
	case OutcomeSuspend:
		j.final, j.finalExc = JobSuspended, rb.Exception
	case OutcomeHang:
		j.final = JobRunning
	case OutcomeVerify:
		// Decided below, without this lock: Entra's state is the world's,
		// whose lock is taken before this one.
	default:
		j.final = JobCompleted
	}
	a.jobs[strings.ToLower(name)] = j
	a.jobOrder = append(a.jobOrder, strings.ToLower(name))
	out := jobJSON(a, j, true)
	target := a.Name + "/" + rb.Name
	tenantID := a.TenantID
	res.mu.Unlock()
	if rb.Outcome == OutcomeVerify {
		final, exc := JobCompleted, ""
		if why := c.s.entraRefuses(tenantID, secretValue, now); why != "" {
			final, exc = JobFailed, why
		}
		res.mu.Lock()
		j.final, j.finalExc = final, exc
		res.mu.Unlock()
	}
	if hasSecret {
		c.s.RecordConsumer("automation", target, ParamClientSecret, secretValue)
	}
	core.WriteJSON(c.w, http.StatusCreated, core.PlainJSON, out)
}

// advance moves a job one status on, towards its outcome.
func advance(j *Job, now time.Time) {
	switch j.Status {
	case JobNew:
		j.Status = JobActivating
	case JobActivating:
		j.Status = JobRunning
	case JobRunning:
		if j.final == "" {
			return // its outcome is being decided
		}
		j.Status, j.Exception = j.final, j.finalExc
	default:
		return
	}
	j.Modified = now
}

// entraRefuses says why Entra would refuse value as a client secret of an
// application of tenantID now ("" when it would accept it): no password of
// any application has it, it is outside its validity, or it was added
// within the tenant's replication delay.
func (s *Service) entraRefuses(tenantID, value string, now time.Time) string {
	if value == "" {
		return "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."
	}
	h := core.HashSecret(value)
	w := s.World()
	w.RLock()
	defer w.RUnlock()
	t := w.TenantLocked(tenantID)
	if t == nil {
		return "AADSTS90002: Tenant not found."
	}
	for _, app := range t.Apps {
		for _, p := range app.Passwords {
			if p.SecretHash != h {
				continue
			}
			switch {
			case now.Before(p.Start) || !now.Before(p.End):
				return fmt.Sprintf("AADSTS7000222: The provided client secret keys for app '%s' are expired.", app.AppID)
			case now.Before(p.AddedAt.Add(t.ReplicationDelay)):
				return fmt.Sprintf("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app.AppID)
			}
			return ""
		}
	}
	return "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID."
}
