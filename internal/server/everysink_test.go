package server

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/sink"
)

// everySinkKinds are the every-sink policy's sinks, in its order
// (config.everySinkPolicy).
var everySinkKinds = []string{"keyvault", "adoconnection", "adovariables", "adogit", "automation", "logicapp", "vercel", "github", "kubernetes", "webhook"}

// TestEverySinkKindAtOnce is issue 10's judgement: one policy with every
// sink kind, run against the simulator.
//
//  1. Every sink's check passes, the rotation reaches every consumer, each
//     holds the new credential and Entra accepts it (/_sim/consumers says
//     valid; the Key Vault consumer gets a token with it).
//  2. Rotated again while every simulated service fails one request in
//     five (so sinks and Graph retry): every consumer switches again, no
//     target is duplicated (the same consumer places, no new Azure DevOps
//     endpoint, variable or Git file) and nothing else in a target is
//     lost (the variable group's other variables, the values file's other
//     lines, the Secret's other keys).
//  3. A sink failing mid-delivery (the runbook's job fails) stops the run:
//     the sinks after it keep the previous credential, which Entra still
//     accepts; the sinks before it hold the new one, which stays.
//  4. A target changed behind rotor's back is reported as drift.
func TestEverySinkKindAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("a rotation through ten sinks; run without -short")
	}
	t.Parallel()
	r := newSimRig(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=2400h"}, config.SimulatorRotation{VerifyTimeout: "1m"},
		func(c *config.SimulatorConfig) {
			c.EverySink = true
			// Nothing but the every-sink policy's application is governed.
			c.Policies = []config.SimulatorPolicy{{Name: "none", Applications: `{name_prefix: "no-such-application-"}`}}
		})
	ctx, srv, org, st := r.ctx, r.srv, r.org, r.st
	info := r.info
	var app domain.Application
	for _, a := range r.owned() {
		if a.AppID == info.AzureDevOps.AppID {
			app = a
		}
	}
	require.NotEmpty(t, app.ObjectID, "the simulated Azure DevOps organization's application is owned by rotor")
	pol := srv.PolicyFor(app)
	require.NotNil(t, pol)
	require.Equal(t, r.tn.Name+"-every-sink", pol.Name)
	var kinds []string
	for _, s := range pol.Sinks {
		kinds = append(kinds, s.Type)
	}
	require.Equal(t, everySinkKinds, kinds, "one sink of every kind, in the policy's order")

	// Every sink says it would work.
	checks, err := srv.Engine().CheckSinks(ctx, org, app, *pol)
	require.NoError(t, err)
	require.Len(t, checks, len(everySinkKinds))
	for _, c := range checks {
		require.NotEqual(t, sink.StatusFailed, c.Validation.Status, "sink %d (%s): %s", c.Index, c.Describe, c.Validation.Reason)
	}

	// 1. The first rotation reaches every consumer.
	first := rotateOK(t, r, app, *pol)
	places := requireEveryConsumerHolds(t, st, app.AppID, first.NewKeyID)
	require.NoError(t, r.consumerSignsIn(r.vault(), app.DisplayName, app.AppID), "the vault's consumer gets a token with the new secret")
	before := targetState(t, r)

	// 2. Again, with one request in five to every service failing.
	require.NoError(t, st.Server.SetFaults(sim.FaultConfig{ErrorRate: 0.2}))
	second := rotateOK(t, r, app, *pol)
	require.NoError(t, st.Server.SetFaults(sim.FaultConfig{}))
	require.NotEqual(t, first.NewKeyID, second.NewKeyID)
	again := requireEveryConsumerHolds(t, st, app.AppID, second.NewKeyID)
	require.Equal(t, places, again, "the same consumer places: a retried write duplicated nothing")
	after := targetState(t, r)
	require.Equal(t, before.variables, after.variables, "the variable group's variables: none added, none lost")
	require.Equal(t, before.endpoints, after.endpoints, "the project's service connections: updated in place, never recreated")
	require.Equal(t, withoutKey(before.values), withoutKey(after.values), "every other line of the values file is kept byte for byte")
	require.Equal(t, before.secretKeys, after.secretKeys, "the Kubernetes Secret keeps its other keys")

	// 3. A sink that fails mid-delivery stops the run: Vercel's token is
	// revoked after the checks passed, while the sinks before it deliver.
	idx := slices.Index(kinds, "vercel")
	token, err := os.ReadFile(info.Vercel.TokenFile)
	require.NoError(t, err)
	revoke := func(run domain.Run, step domain.Step) {
		if step == domain.SinkStep(idx-1, domain.PhaseWritten) || step == domain.SinkStep(idx-1, domain.PhaseSkipped) {
			require.NoError(t, os.WriteFile(info.Vercel.TokenFile, []byte(info.Vercel.DeniedToken+"\n"), 0o600))
		}
	}
	r.onJournal.Store(&revoke)
	run, err := srv.Engine().Rotate(ctx, org, app, *pol, domain.TriggerManual)
	r.onJournal.Store(nil)
	require.NoError(t, os.WriteFile(info.Vercel.TokenFile, token, 0o600))
	require.Error(t, err, "the refused write fails the run")
	require.Equal(t, domain.RunFailed, run.State, run.Error)
	require.Contains(t, run.Error, "sink 6", "the reason names the failed sink")
	for _, c := range st.Server.Consumers() {
		if c.AppID != second.AppID && c.AppID != app.AppID {
			continue
		}
		kind := consumerKind(c.Service, c.Target, c.Field)
		if slices.Index(kinds, kind) >= idx {
			require.Equal(t, second.NewKeyID, c.KeyID, "%s, from the failed sink on, keeps the previous credential", kind)
			require.True(t, c.Valid, "%s: the previous credential still works", kind)
		} else {
			require.Equal(t, run.NewKeyID, c.KeyID, "%s, before the failed sink, holds the failed run's credential", kind)
			require.True(t, c.Valid, "%s: the failed run's credential stays valid: a consumer holds it", kind)
		}
	}
	creds := appCredentials(t, r, app.ObjectID)
	require.Contains(t, creds, second.NewKeyID, "the previous credential was not removed")

	// 4. Drift: the Kubernetes Secret is edited behind rotor's back.
	kube := kubeClient(t, r)
	sec, err := kube.CoreV1().Secrets(info.Kubernetes.Namespace).Get(ctx, info.Kubernetes.Secret, metav1.GetOptions{})
	require.NoError(t, err)
	sec.Data["clientSecret"] = []byte("typed-in-by-hand")
	_, err = kube.CoreV1().Secrets(info.Kubernetes.Namespace).Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)
	drifts, err := srv.Engine().Drifts(ctx, org, app, *pol)
	require.NoError(t, err)
	var drifted []string
	for _, d := range drifts {
		if d.Drift != nil && d.Drift.Drifted {
			drifted = append(drifted, kinds[d.Index])
		}
	}
	require.Contains(t, drifted, "kubernetes", "the edited Secret is reported as drifted")
	for _, d := range drifts {
		if kinds[d.Index] == "keyvault" {
			require.NotNil(t, d.Drift, "the Key Vault sink reads versions")
			require.False(t, d.Drift.Drifted, "an untouched target has not drifted: %s", d.Drift.Reason)
		}
	}
}

// rotateOK rotates app under pol and requires that every sink delivered.
func rotateOK(t *testing.T, r *simRig, app domain.Application, pol domain.Policy) *domain.Run {
	t.Helper()
	run, err := r.srv.Engine().Rotate(r.ctx, r.org, app, pol, domain.TriggerManual)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State, run.Error)
	full, err := r.srv.Store().GetRun(r.ctx, r.org, run.ID)
	require.NoError(t, err)
	for _, e := range full.Events {
		require.NotContains(t, []domain.Phase{domain.PhaseFailed, domain.PhaseSkipped}, e.Step.Phase, "%s: %s", e.Step, e.Message)
	}
	return run
}

// requireEveryConsumerHolds requires that a consumer of every sink kind
// holds keyID of appID and that Entra accepts it now, and returns the
// places (service, target, field) that hold it.
func requireEveryConsumerHolds(t *testing.T, st *simtest.Sim, appID, keyID string) []string {
	t.Helper()
	var places []string
	seen := map[string]bool{}
	for _, c := range st.Server.Consumers() {
		if c.AppID != appID {
			continue
		}
		kind := consumerKind(c.Service, c.Target, c.Field)
		require.Equal(t, keyID, c.KeyID, "%s %s %s holds the run's credential", c.Service, c.Target, c.Field)
		require.True(t, c.Valid, "%s %s %s: Entra accepts what it holds", c.Service, c.Target, c.Field)
		seen[kind] = true
		places = append(places, c.Service+" "+c.Target+" "+c.Field)
	}
	for _, k := range everySinkKinds {
		require.True(t, seen[k], "a %s consumer holds the new credential (consumers: %v)", k, places)
	}
	return places
}

// consumerKind says which sink kind wrote a consumer place.
func consumerKind(service, target, field string) string {
	switch {
	case service == "ado" && strings.Contains(target, "/serviceendpoint/"):
		return "adoconnection"
	case service == "ado":
		return "adovariables"
	}
	return service
}

// state is what the test compares before and after a retried rotation.
type state struct {
	variables  []string // the variable group's variable names
	endpoints  []string // the project's service connection ids
	values     string   // the Helm values file
	secretKeys []string // the Kubernetes Secret's data keys
}

func targetState(t *testing.T, r *simRig) state {
	t.Helper()
	ado, git := r.info.AzureDevOps, r.info.AzureDevOpsGit
	var s state
	var group struct {
		Variables map[string]json.RawMessage `json:"variables"`
	}
	adoGet(t, r, ado.URL+"/"+ado.Project+fmt.Sprintf("/_apis/distributedtask/variablegroups/%d?api-version=7.1", ado.VariableGroupID), ado.PAT, &group)
	s.variables = slices.Sorted(maps.Keys(group.Variables))
	var eps struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	adoGet(t, r, ado.URL+"/"+ado.Project+"/_apis/serviceendpoint/endpoints?api-version=7.1", ado.PAT, &eps)
	for _, e := range eps.Value {
		s.endpoints = append(s.endpoints, e.ID)
	}
	slices.Sort(s.endpoints)
	var item struct {
		Content string `json:"content"`
	}
	adoGet(t, r, git.URL+"/"+git.Project+"/_apis/git/repositories/"+git.Repository+"/items?path="+git.Path+"&includeContent=true&$format=json&api-version=7.1", git.PAT, &item)
	s.values = item.Content
	sec, err := kubeClient(t, r).CoreV1().Secrets(r.info.Kubernetes.Namespace).Get(r.ctx, r.info.Kubernetes.Secret, metav1.GetOptions{})
	require.NoError(t, err)
	s.secretKeys = slices.Sorted(maps.Keys(sec.Data))
	return s
}

// withoutKey drops the values file's lines rotor writes: the rotated
// secret and its metadata (key id, expiry).
func withoutKey(values string) []string {
	var out []string
	for _, l := range strings.Split(values, "\n") {
		if t := strings.TrimSpace(l); !strings.HasPrefix(t, "clientSecret:") && !strings.HasPrefix(t, "rotor:") {
			out = append(out, l)
		}
	}
	return out
}

func adoGet(t *testing.T, r *simRig, url, pat string, into any) {
	t.Helper()
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	req.SetBasicAuth("", pat)
	req.Header.Set("Accept", "application/json")
	resp, err := r.st.HTTP.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	require.NoError(t, json.Unmarshal(body, into), "GET %s", url)
}

func kubeClient(t *testing.T, r *simRig) *k8s.Clientset {
	t.Helper()
	k := r.info.Kubernetes
	cs, err := k8s.NewForConfig(&rest.Config{Host: k.Server, BearerToken: k.Token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile}, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	require.NoError(t, err)
	return cs
}

// appCredentials lists the key ids Entra holds for the application now.
func appCredentials(t *testing.T, r *simRig, objectID string) []string {
	t.Helper()
	var ids []string
	tenant := r.st.Server.World().Tenant(r.tn.ID)
	r.st.Server.World().Update(func() {
		for _, p := range tenant.AppByObjectID(objectID).Passwords {
			ids = append(ids, p.KeyID)
		}
	})
	return ids
}
