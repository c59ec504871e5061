package ui_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/adovariables"
	"github.com/rotor-dev/rotor/internal/sink/kubernetes"
	"github.com/rotor-dev/rotor/internal/sink/vercel"
)

// The Sinks page over rotor's real application layer and sink kinds,
// reaching the simulator's Kubernetes API server, Vercel and Azure DevOps
// over HTTPS, as an operator and a viewer of the organization (the
// X-Test-Role header), beside another organization with a connection of
// its own.

var (
	// choiceRow is a row of the current step's choices: its value and
	// the link that chooses (or adds) it.
	choiceRow  = regexp.MustCompile(`<tr><td class="id">([^<]*)</td><td>([^<]*)</td><td>[^<]*</td><td>(?:added · )?<a class="choice" href="([^"]+)">`)
	snippetPre = regexp.MustCompile(`(?s)<pre class="snippet" id="sink-snippet">(.*?)</pre>`)
)

// choices are the current step's choices on a kind's page: value → link.
func choices(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range choiceRow.FindAllStringSubmatch(body, -1) {
		out[html.UnescapeString(m[1])] = html.UnescapeString(m[3])
	}
	return out
}

// choicesByLabel are the current step's choices: label → link.
func choicesByLabel(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range choiceRow.FindAllStringSubmatch(body, -1) {
		out[html.UnescapeString(m[2])] = html.UnescapeString(m[3])
	}
	return out
}

func snippetOf(t *testing.T, body string) string {
	t.Helper()
	m := snippetPre.FindStringSubmatch(body)
	require.NotNil(t, m, "the page shows a snippet:\n%s", body)
	return html.UnescapeString(m[1])
}

// currentStep is the key of the step the page lists.
func currentStep(body string) string {
	m := regexp.MustCompile(`<h2 id="choices-of">Choices for ([a-z_]+)</h2>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// parseSnippet loads snippet as the sinks of a policy in a rotor.yaml,
// with the kinds' own checks: what the page hands out is configuration
// rotor accepts.
func parseSnippet(t *testing.T, snippet string) *config.Config {
	t.Helper()
	indented := "    " + strings.ReplaceAll(strings.TrimRight(snippet, "\n"), "\n", "\n    ")
	y := `data_dir: ` + filepath.Join(t.TempDir(), "data") + `
connections:
  - {name: c, cloud: public, tenant_id: 11111111-1111-1111-1111-111111111111, client_id: 11111111-1111-1111-1111-111111111111, client_secret: {env: X}}
policies:
  - name: p
    connection: c
    applications: {ids: [22222222-2222-2222-2222-222222222222]}
` + indented + "\n"
	cfg, err := config.Parse([]byte(y), t.TempDir(), config.LoadOptions{
		Sinks:  sink.NewRegistry(kubernetes.Kind{}, vercel.Kind{}, adovariables.Kind{}),
		Getenv: func(k string) string { return map[string]string{"X": "x"}[k] },
	})
	require.NoError(t, err, "the snippet is a policy's sinks rotor accepts:\n%s", y)
	return cfg
}

func TestSinksKinds(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	types := b.srv.SinkTypes()
	require.Contains(t, types, "kubernetes")

	t.Run("Operator", func(t *testing.T) {
		body := b.page("/sinks", "operator")
		require.Contains(t, body, `<a href="/sinks" aria-current="page">Sinks</a>`, "a navigation entry")
		for _, typ := range types {
			require.Contains(t, body, `<tr id="kind-`+typ+`"><td><a href="/sinks/`+typ+`">`+typ+`</a></td>`, "every registered kind")
		}
		require.Regexp(t, `(?s)id="kind-kubernetes">[^\n]*\n[^\n]*namespace</span> → <span class="id">secret</span> → <span class="id">restart</span>`, body)
		require.Regexp(t, `(?s)id="kind-vercel">[^\n]*\n[^\n]*team_id</span> → <span class="id">project</span>`, body)
		require.Regexp(t, `(?s)id="kind-webhook">[^\n]*\n[^\n]*none: it lists nothing`, body, "a kind without discovery says so")
		require.Regexp(t, `(?s)id="kind-keyvault">[^\n]*\n[^\n]*<a href="/keyvault">Key Vault picker</a>`, body)
		require.NotContains(t, body, "sinks-denied")
	})
	t.Run("ViewerIsToldItIsTheOperators", func(t *testing.T) {
		res := b.do(http.MethodGet, "/sinks", "viewer", nil)
		require.Equal(t, http.StatusOK, res.status)
		require.Contains(t, res.body, `id="sinks-denied"`)
		require.Contains(t, res.body, "takes the operator role")
		require.Contains(t, res.body, `id="kind-kubernetes"`, "the kinds are still named")
		require.NotContains(t, res.body, "namespace</span>")

		res = b.do(http.MethodGet, "/sinks/kubernetes?set="+url.QueryEscape("kubeconfig="+b.info.Kubernetes.Kubeconfig), "viewer", nil)
		require.Equal(t, http.StatusForbidden, res.status)
		require.Contains(t, res.body, "takes the operator role")
		require.NotContains(t, res.body, "sink-choice-list")
		res = b.do(http.MethodGet, "/sinks/kubernetes/choices?key=namespace", "viewer", nil, "HX-Request", "true")
		require.Equal(t, http.StatusForbidden, res.status)
		require.Contains(t, res.body, "operator role")
		res = b.do(http.MethodPost, "/sinks/kubernetes", "viewer", url.Values{"k": {"namespace"}, "v": {"payments"}})
		require.Equal(t, http.StatusSeeOther, res.status, "adding a setting asks nothing of anyone")
		res = b.do(http.MethodGet, res.header.Get("Location"), "viewer", nil)
		require.Equal(t, http.StatusForbidden, res.status, "…and the page it leads to lists nothing")
	})
	t.Run("UnknownKindIs404", func(t *testing.T) {
		res := b.do(http.MethodGet, "/sinks/nosuch", "operator", nil)
		require.Equal(t, http.StatusNotFound, res.status)
		require.Contains(t, res.body, "rotor has no sink kind nosuch")
		require.Contains(t, res.body, "kubernetes")
	})
	t.Run("SignedOutIs401", func(t *testing.T) {
		require.Equal(t, http.StatusUnauthorized, b.do(http.MethodGet, "/sinks", "", nil).status)
		require.Equal(t, http.StatusUnauthorized, b.do(http.MethodGet, "/sinks/kubernetes/choices?key=namespace", "", nil).status)
	})
}

// TestSinksKubernetesWalk steps through the Kubernetes sink's settings
// as a person without JavaScript does (links and forms), against the
// simulator's API server, and pastes the snippet into a rotor.yaml.
func TestSinksKubernetesWalk(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	k := b.info.Kubernetes
	require.NotNil(t, k)

	res := b.do(http.MethodGet, "/sinks/kubernetes", "operator", nil)
	require.Equal(t, http.StatusOK, res.status)
	require.Equal(t, "namespace", currentStep(res.body), "the first step")
	require.Contains(t, res.body, `id="sink-error">settings: no server or credential (the host&#39;s own identity) says where to connect`,
		"without a kubeconfig the sink would act in-cluster, as rotor's own pod, which no configured sink does: refused, and why")
	require.NotContains(t, res.body, "panic")

	// The kubeconfig is a setting rotor cannot list: typed in the form.
	res = b.do(http.MethodPost, "/sinks/kubernetes", "operator", url.Values{"k": {"kubeconfig"}, "v": {k.Kubeconfig}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	loc := res.header.Get("Location")
	require.Contains(t, loc, "set="+url.QueryEscape("kubeconfig="+k.Kubeconfig))
	// And its context, as rotor.yaml's Kubernetes sink names it (the
	// settings that say where to connect must be a configured sink's).
	res = b.do(http.MethodPost, "/sinks/kubernetes", "operator", url.Values{"k": {"context"}, "v": {k.Context}, "set": urlSets(loc)})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	loc = res.header.Get("Location")

	res = b.do(http.MethodGet, loc, "operator", nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Equal(t, "namespace", currentStep(res.body))
	ns := choices(t, res.body)
	require.Contains(t, ns, k.Namespace, "the cluster's namespaces")
	require.Contains(t, ns, "kube-system")

	// The datalist its input gets, as htmx asks for it.
	frag := b.do(http.MethodGet, "/sinks/kubernetes/choices?key=namespace&set="+url.QueryEscape("kubeconfig="+k.Kubeconfig)+"&set="+url.QueryEscape("context="+k.Context), "operator", nil, "HX-Request", "true")
	require.Equal(t, http.StatusOK, frag.status, frag.body)
	require.True(t, strings.HasPrefix(frag.body, `<datalist id="sink-choices">`), frag.body)
	require.NotContains(t, frag.body, "<html")
	require.Contains(t, frag.body, `<option value="`+k.Namespace+`">`+k.Namespace)

	res = b.do(http.MethodGet, ns[k.Namespace], "operator", nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Equal(t, "secret", currentStep(res.body), "then the Secrets of the namespace")
	secrets := choices(t, res.body)
	require.Contains(t, secrets, k.Secret)
	require.NotContains(t, res.body, "clientSecret:", "names and types only, never data")

	res = b.do(http.MethodGet, secrets[k.Secret], "operator", nil)
	require.Equal(t, "restart", currentStep(res.body), "then the workloads to restart")
	workloads := choices(t, res.body)
	dep := "Deployment/" + k.Deployment
	require.Contains(t, workloads, dep)

	res = b.do(http.MethodGet, workloads[dep], "operator", nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Contains(t, res.body, `id="sink-done"`, "every listable setting is chosen")
	require.Contains(t, res.body, `<span class="id chosen-value">`+dep+`</span>`)
	snip := snippetOf(t, res.body)
	require.Equal(t, "sinks:\n  - kubernetes:\n      kubeconfig: "+k.Kubeconfig+"\n      context: "+k.Context+"\n      namespace: "+k.Namespace+"\n      secret: "+k.Secret+
		"\n      restart: [{kind: Deployment, name: "+k.Deployment+"}]\n", snip)
	cfg := parseSnippet(t, snip)
	spec := cfg.Policies[0].Sinks[0]
	require.Equal(t, "kubernetes", spec.Type)
	require.Equal(t, k.Namespace, spec.Settings["namespace"])

	// Choosing the namespace again forgets what was chosen in it.
	res = b.do(http.MethodGet, "/sinks/kubernetes?"+url.Values{"set": {"kubeconfig=" + k.Kubeconfig, "context=" + k.Context, "namespace=" + k.Namespace, "secret=" + k.Secret}, "key": {"namespace"}}.Encode(), "operator", nil)
	again := choices(t, res.body)
	res = b.do(http.MethodGet, again["default"], "operator", nil)
	require.Equal(t, "secret", currentStep(res.body))
	require.NotContains(t, snippetOf(t, res.body), k.Secret)

	// A typed value for a step (a template) is taken as the choice.
	res = b.do(http.MethodGet, "/sinks/kubernetes?"+url.Values{"set": {"kubeconfig=" + k.Kubeconfig, "context=" + k.Context, "namespace=" + k.Namespace}, "k": {"secret"}, "v": {"{{ .App.DisplayName | slug }}-azure"}}.Encode(), "operator", nil)
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	res = b.do(http.MethodGet, res.header.Get("Location"), "operator", nil)
	require.Contains(t, snippetOf(t, res.body), `secret: '{{ .App.DisplayName | slug }}-azure'`)
}

// TestSinksCredentialsOnlyAsReferences: a token is accepted as a
// reference, never as a value, which is neither kept, shown, nor put in
// a URL; the snippet has a placeholder for the token it needs.
func TestSinksCredentialsOnlyAsReferences(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	const pasted = "vcp_ThisLooksLikeARealToken0123456789"

	res := b.do(http.MethodPost, "/sinks/vercel", "operator", url.Values{"k": {"token"}, "v": {pasted}})
	require.Equal(t, http.StatusUnprocessableEntity, res.status)
	require.Contains(t, res.body, "token holds a credential: give it as a reference")
	require.NotContains(t, res.body, pasted)
	require.NotContains(t, res.body, "ThisLooksLike")

	res = b.do(http.MethodGet, "/sinks/vercel?set="+url.QueryEscape("token="+pasted), "operator", nil)
	require.Equal(t, http.StatusBadRequest, res.status)
	require.NotContains(t, res.body, "ThisLooksLike", "a value in a hand-made URL is not echoed")
	res = b.do(http.MethodGet, "/sinks/vercel?k=token&v="+pasted, "operator", nil)
	require.Equal(t, http.StatusBadRequest, res.status)
	require.NotContains(t, res.body, "ThisLooksLike")

	// Without a token the listing says what is missing, in rotor's words;
	// the snippet shows where the token goes.
	res = b.do(http.MethodGet, "/sinks/vercel", "operator", nil)
	require.Contains(t, res.body, `id="sink-error"`)
	require.Contains(t, res.body, "token")
	require.Contains(t, snippetOf(t, res.body), "token: {env: VERCEL_TOKEN} # a reference")
	require.NotContains(t, res.body, "goroutine")

	// With a file reference and the simulator's API: the teams, then the
	// projects.
	v := b.info.Vercel
	require.NotNil(t, v)
	tokenFile := v.TokenFile
	if tokenFile == "" {
		tokenFile = filepath.Join(t.TempDir(), "vercel-token")
		require.NoError(t, os.WriteFile(tokenFile, []byte(v.Token), 0o600))
	}
	res = b.do(http.MethodPost, "/sinks/vercel", "operator", url.Values{"k": {"token"}, "v": {"{file: " + tokenFile + "}"}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	res = b.do(http.MethodPost, "/sinks/vercel", "operator", url.Values{"k": {"api_url"}, "v": {v.URL}, "set": urlSets(res.header.Get("Location"))})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	loc := res.header.Get("Location")
	require.NotContains(t, loc, v.Token)
	res = b.do(http.MethodGet, loc, "operator", nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Equal(t, "team_id", currentStep(res.body))
	teams := choices(t, res.body)
	require.Contains(t, teams, v.TeamID)
	res = b.do(http.MethodGet, teams[v.TeamID], "operator", nil)
	require.Equal(t, "project", currentStep(res.body))
	projects := choices(t, res.body)
	require.NotEmpty(t, projects)
	var chosen string
	for val, link := range projects {
		if val == v.ProjectID || val == v.Project {
			chosen = link
		}
	}
	require.NotEmpty(t, chosen, "the demo project is listed: %v", projects)
	res = b.do(http.MethodGet, chosen, "operator", nil)
	snip := snippetOf(t, res.body)
	require.Contains(t, snip, "token: {file: "+tokenFile+"}\n")
	require.NotContains(t, snip, "VERCEL_TOKEN", "no placeholder once a reference is chosen")
	require.NotContains(t, res.body, v.Token)
	// With the variable's name (a setting rotor cannot list) it is a sink
	// rotor accepts.
	parseSnippet(t, strings.Replace(snip, "  - vercel:\n", "  - vercel:\n      key: CLIENT_SECRET\n", 1))
}

// urlSets are the set parameters of a page's URL.
func urlSets(loc string) []string {
	u, err := url.Parse(loc)
	if err != nil {
		return nil
	}
	return u.Query()["set"]
}

// TestSinksConnectionOfTheOrganization: a connection is the
// organization's own; another organization's is not found, on the page
// and in the fragment.
func TestSinksConnectionOfTheOrganization(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	ado := b.info.AzureDevOps
	require.NotNil(t, ado)
	sets := []string{"organization_url=" + ado.URL, "project=" + ado.Project, "entra=true"}

	res := b.do(http.MethodGet, "/sinks/adovariables?"+url.Values{"connection": {b.otherConn}, "set": sets}.Encode(), "operator", nil)
	require.Equal(t, http.StatusNotFound, res.status, res.body)
	require.Contains(t, res.body, `no connection &#34;`+b.otherConn+`&#34;`)
	require.NotContains(t, res.body, "sink-choice-list")
	res = b.do(http.MethodGet, "/sinks/adovariables/choices?"+url.Values{"connection": {b.otherConn}, "set": sets, "key": {"group"}}.Encode(), "operator", nil, "HX-Request", "true")
	require.Equal(t, http.StatusNotFound, res.status, res.body)
	require.NotContains(t, res.body, "<datalist")

	// The page offers only the organization's connections.
	res = b.do(http.MethodGet, "/sinks/adovariables", "operator", nil)
	require.NotContains(t, res.body, b.otherConn)
	conns, err := b.app.ListConnections(b.t.Context(), b.scope)
	require.NoError(t, err)
	require.Contains(t, res.body, `<option value="`+conns[0].Name+`">`)

	// The organization's own connection is used: an Automation account's
	// runbooks, listed through Resource Manager as the connection of its
	// tenant.
	var acct *simfile.ARMResource
	for i := range b.info.ARMResources {
		if r := &b.info.ARMResources[i]; r.Type == "Microsoft.Automation/automationAccounts" && acct == nil {
			acct = r
		}
	}
	require.NotNil(t, acct, "the demo seeds an Automation account")
	var conn string
	for _, c := range conns {
		if c.TenantID == acct.TenantID && c.Purpose == "rotation" {
			conn = c.Name
		}
	}
	require.NotEmpty(t, conn)
	parts := strings.Split(acct.ID, "/") // /subscriptions/S/resourceGroups/RG/providers/Microsoft.Automation/automationAccounts/NAME
	require.Len(t, parts, 9, acct.ID)
	autoSets := []string{"subscription_id=" + parts[2], "resource_group=" + parts[4], "account=" + parts[8]}
	res = b.do(http.MethodGet, "/sinks/automation?"+url.Values{"connection": {conn}, "set": autoSets}.Encode(), "operator", nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.NotContains(t, res.body, `id="sink-error"`)
	runbooks := choices(t, res.body)
	require.NotEmpty(t, acct.Runbooks)
	require.Contains(t, runbooks, acct.Runbooks[0], "%v", runbooks)
	res = b.do(http.MethodGet, runbooks[acct.Runbooks[0]], "operator", nil)
	require.Equal(t, "run_on", currentStep(res.body))
	require.True(t, strings.HasPrefix(snippetOf(t, res.body), "# under a policy with connection: "+conn+"\nsinks:\n  - automation:\n"), snippetOf(t, res.body))
	// The same as a connection of another organization: not found.
	res = b.do(http.MethodGet, "/sinks/automation?"+url.Values{"connection": {b.otherConn}, "set": autoSets}.Encode(), "operator", nil)
	require.Equal(t, http.StatusNotFound, res.status, res.body)

	// With a PAT (a file reference) the variable groups are listed.
	pat := ado.PATFile // the one rotor.yaml's Azure DevOps sinks name
	res = b.do(http.MethodGet, "/sinks/adovariables?"+url.Values{"set": {"organization_url=" + ado.URL, "project=" + ado.Project, "pat={file: " + pat + "}"}}.Encode(), "operator", nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	groups := choicesByLabel(t, res.body)
	require.Contains(t, groups, ado.VariableGroupName, "%v", groups)
	res = b.do(http.MethodGet, groups[ado.VariableGroupName], "operator", nil)
	snip := snippetOf(t, res.body)
	require.Contains(t, snip, "group: \""+strconv.Itoa(ado.VariableGroupID)+"\"\n", "the id, quoted: a string as the choice was")
	require.NotContains(t, snip, "ADO_PAT", "the PAT reference given, no placeholder")
	require.NotContains(t, res.body, ado.PAT)
	parseSnippet(t, strings.Replace(snip, "  - adovariables:\n", "  - adovariables:\n      variable: CLIENT_SECRET\n", 1))

	// A PAT file rotor.yaml does not name is refused before anything is
	// read: over the UI, discovery connects only where and as rotor.yaml
	// says (else an operator could send any file on rotor's host to any
	// server).
	bad := filepath.Join(t.TempDir(), "ado-pat-none")
	require.NoError(t, os.WriteFile(bad, []byte(ado.NoAccessPAT), 0o600))
	res = b.do(http.MethodGet, "/sinks/adovariables?"+url.Values{"set": {"organization_url=" + ado.URL, "project=" + ado.Project, "pat={file: " + bad + "}"}}.Encode(), "operator", nil)
	require.Equal(t, http.StatusOK, res.status, "a refusal is the person's to fix, not a failure of the page: %s", res.body)
	require.Contains(t, res.body, `id="sink-error"`)
	require.Contains(t, res.body, "pat says where to connect or with which credential")
	require.NotContains(t, res.body, ado.NoAccessPAT)
}

// TestSinksDiscoveryConnectsOnlyAsConfigured: an operator cannot make
// rotor read a file on its host and send it to a server of their choosing
// (a token reference and an api_url not in rotor.yaml), nor load a
// kubeconfig rotor.yaml does not name (its exec plugin would run a
// command on rotor's host).
func TestSinksDiscoveryConnectsOnlyAsConfigured(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	hostFile := filepath.Join(t.TempDir(), "host-secret")
	require.NoError(t, os.WriteFile(hostFile, []byte("host-only-value"), 0o600))
	got := 0
	catcher := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got++ }))
	defer catcher.Close()
	for _, sets := range [][]string{
		{"token={file: " + hostFile + "}", "api_url=" + catcher.URL},
		{"token={file: " + b.info.Vercel.TokenFile + "}", "api_url=" + catcher.URL},
		{"token={file: " + hostFile + "}", "api_url=" + b.info.Vercel.URL},
	} {
		res := b.do(http.MethodGet, "/sinks/vercel?"+url.Values{"key": {"team_id"}, "set": sets}.Encode(), "operator", nil)
		require.Equal(t, http.StatusOK, res.status, res.body)
		require.Contains(t, res.body, "says where to connect or with which credential", "%v", sets)
		require.NotContains(t, res.body, "host-only-value")
	}
	res := b.do(http.MethodGet, "/sinks/kubernetes?"+url.Values{"key": {"namespace"}, "set": {"kubeconfig=" + hostFile}}.Encode(), "operator", nil)
	require.Contains(t, res.body, "kubeconfig says where to connect or with which credential")
	// The configured kubeconfig with a context rotor.yaml does not name
	// (another user in it, perhaps with an exec plugin): refused too.
	res = b.do(http.MethodGet, "/sinks/kubernetes?"+url.Values{"key": {"namespace"}, "set": {"kubeconfig=" + b.info.Kubernetes.Kubeconfig, "context=" + b.info.Kubernetes.ReadOnlyContext}}.Encode(), "operator", nil)
	require.Contains(t, res.body, "context, kubeconfig says where to connect or with which credential")
	// A token configured for the simulated Vercel, sent to Vercel's
	// default server by leaving api_url out: refused.
	res = b.do(http.MethodGet, "/sinks/vercel?"+url.Values{"key": {"team_id"}, "set": {"token={file: " + b.info.Vercel.TokenFile + "}"}}.Encode(), "operator", nil)
	require.Contains(t, res.body, "token says where to connect or with which credential")
	require.Zero(t, got, "nothing reached the server the operator named")
}
