package browser_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestSinksPicker walks the Sinks page as oscar (an operator) on the
// demo: the kinds, the Kubernetes sink, its kubeconfig typed into the
// form (the simulator's, whose context signs in through an exec plugin as
// AKS's do), then the namespace (the step's input gets its choices from
// the htmx datalist), the Secret and the Deployment to restart picked
// from the simulated cluster's lists, and the snippet for rotor.yaml.
func TestSinksPicker(t *testing.T) {
	demo := sharedDemo(t)
	kube := demo.d.Sim.Info().Kubernetes
	require.NotNil(t, kube, "the demo's simulator runs a Kubernetes API server")
	p := newPage(t, demo.URL)
	require.EqualValues(t, 200, p.signIn("oscar"))
	require.EqualValues(t, 200, p.open("/ui/"))

	require.EqualValues(t, 200, p.click(`header nav a[href="/ui/sinks"]`))
	require.Equal(t, "/ui/sinks", p.location())
	require.Contains(t, p.text("#kind-kubernetes"), "namespace → secret → restart")
	require.Contains(t, p.text("#kind-webhook"), "lists nothing")
	p.shot("sinks.png")

	require.EqualValues(t, 200, p.click(`#kind-kubernetes a`))
	require.Equal(t, "/ui/sinks/kubernetes", p.location())
	// Without a kubeconfig rotor would use the in-cluster service account,
	// which a demo on a laptop has not: the page says why it lists nothing.
	require.True(t, p.exists("#sink-error"), "the step without a kubeconfig says why it lists nothing")

	p.do(chromedp.SendKeys(chromedp.CSS(`#sink-add input[name="k"]`), "kubeconfig"),
		chromedp.SendKeys(chromedp.CSS(`#sink-add input[name="v"]`), kube.Kubeconfig))
	require.EqualValues(t, 200, p.click(`#sink-add button[type="submit"]`))
	require.Equal(t, "kubeconfig="+kube.Kubeconfig, p.query().Get("set"), "the setting is carried in the page's URL")
	// Where to connect must be what a sink in rotor.yaml says: the demo's
	// every-sink policy names the kubeconfig with its context.
	p.do(chromedp.SendKeys(chromedp.CSS(`#sink-add input[name="k"]`), "context"),
		chromedp.SendKeys(chromedp.CSS(`#sink-add input[name="v"]`), kube.Context))
	require.EqualValues(t, 200, p.click(`#sink-add button[type="submit"]`))
	require.Equal(t, "Choices for namespace", p.text("#choices-of"))
	require.False(t, p.exists("#sink-error"), "with the kubeconfig and context rotor.yaml names, the cluster answers")

	// The step's input suggests the same choices, swapped in by htmx.
	p.do(chromedp.Focus(chromedp.CSS(`#sink-type-value input[name="v"]`)))
	p.waitFor("the namespaces' datalist", `[...document.querySelectorAll("#sink-choices option")].some(o => o.value === `+jsString(kube.Namespace)+`)`)

	for _, step := range []struct{ key, value, next string }{
		{"namespace", kube.Namespace, "secret"},
		{"secret", kube.Secret, "restart"},
		{"restart", "Deployment/" + kube.Deployment, "restart"},
	} {
		require.Equal(t, "Choices for "+step.key, p.text("#choices-of"))
		require.EqualValues(t, 200, p.navigate("choose "+step.value, chromedp.Click(
			fmt.Sprintf(`//table[@id="sink-choice-list"]//tr[td[1][normalize-space()=%s]]//a[@class="choice"]`, xpathString(step.value)), chromedp.NodeVisible), nil))
		require.Contains(t, p.text("#step-"+step.key), step.value, "the step shows what was chosen")
		require.Equal(t, "Choices for "+step.next, p.text("#choices-of"))
	}
	require.True(t, p.exists("#sink-done"), "every listable setting is chosen")
	snippet := p.text("#sink-snippet")
	require.Equal(t, strings.Join([]string{
		"sinks:",
		"  - kubernetes:",
		"      kubeconfig: " + kube.Kubeconfig,
		"      context: " + kube.Context,
		"      namespace: " + kube.Namespace,
		"      secret: " + kube.Secret,
		"      restart: [{kind: Deployment, name: " + kube.Deployment + "}]",
	}, "\n"), snippet)
	p.shot("sinks-kubernetes.png")
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string { return fmt.Sprintf("%q", s) }

// xpathString is s as an XPath string literal (s holds no quote here).
func xpathString(s string) string { return `"` + s + `"` }

// TestSinksViewerWithoutJavaScript: vera (a viewer), JavaScript off, is
// told on the Sinks page that listing is the operator's; a kind's page
// answers 403 saying the same, and offers no form.
func TestSinksViewerWithoutJavaScript(t *testing.T) {
	p := newPage(t, sharedDemo(t).URL, withoutJavaScript())
	require.EqualValues(t, 200, p.signIn("vera"))
	require.EqualValues(t, 200, p.open("/ui/sinks"))
	require.Contains(t, p.text("#sinks-denied"), "operator role")
	require.True(t, p.exists("#kind-kubernetes a"), "the kinds are named")

	full := p.url("/ui/sinks/kubernetes")
	p.allow(func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && m.URL == full && strings.Contains(m.Text, "status of 403")
	})
	require.EqualValues(t, 403, p.click(`#kind-kubernetes a`))
	require.Contains(t, p.text("#sinks-denied"), "operator role")
	require.False(t, p.exists("#sink-add"), "no form for a role that may not list")
}
