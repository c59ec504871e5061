package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rotor-dev/rotor/internal/simfile"
)

// everySinkPolicy is the YAML of one policy (a list item under policies:,
// indented for the simulator template) that delivers one application's
// secret to every sink kind the simulator serves, in this order: the
// tenant's first Key Vault, the Azure DevOps service connection and
// variable group, the Helm values file in Azure DevOps Git (encrypted to
// the simulator's age recipient), the Automation runbook
// Verify-AppSecret, the Logic Apps Key Vault connection, Vercel, a GitHub
// environment secret, the Kubernetes Secret (then a rollout restart) and
// a webhook (on_failure: continue, as a notification should be).
//
// The application is the one the simulated Azure DevOps organization's
// service connection is for (info.AzureDevOps.AppID), in its tenant: the
// seeded consumers (the endpoint, the variable group, the Kubernetes
// Secret, …) are that application's, and fixed-name targets cannot be
// shared by several applications. The seeded Azure DevOps targets and the
// Kubernetes Secret existed before rotor, so the policy adopts them: that
// is what a user taking over existing consumers writes.
//
// Its lifetime, renew_before and overlap are times' (the caller's first
// policy's). Every credential of a sink is a file reference to what the simulator
// wrote beside sim.json (tokens, PATs, the webhook's signing key).
func everySinkPolicy(info *simfile.Info, tenant simfile.Tenant, times SimulatorPolicy) (string, error) {
	ado, git, vc, gh, kube, wh := info.AzureDevOps, info.AzureDevOpsGit, info.Vercel, info.GitHub, info.Kubernetes, info.Webhook
	if ado == nil || git == nil || vc == nil || gh == nil || kube == nil || wh == nil {
		return "", errors.New("simulator config: the every-sink policy needs the simulator's Azure DevOps, Git, Vercel, GitHub, Kubernetes and webhook services (a sim.json from an older rotor?)")
	}
	for name, f := range map[string]string{"azure_devops.pat_file": ado.PATFile, "azure_devops_git.pat_file": git.PATFile,
		"vercel.token_file": vc.TokenFile, "github.token_file": gh.TokenFile, "webhook.signing_key_file": wh.SigningKeyFile, "kubernetes.kubeconfig": kube.Kubeconfig} {
		if f == "" {
			return "", fmt.Errorf("simulator config: the every-sink policy needs sim.json's %s (the simulator writes it when it has a state dir)", name)
		}
	}
	var account, conn *armRef
	for _, r := range info.ARMResources {
		if r.TenantID != tenant.ID {
			continue
		}
		ref, err := parseARMID(r.ID)
		if err != nil {
			return "", fmt.Errorf("simulator config: sim.json's arm_resources: %w", err)
		}
		switch {
		case r.Type == "Microsoft.Automation/automationAccounts" && account == nil && slices.Contains(r.Runbooks, verifyRunbook):
			account = &ref
		case r.Type == "Microsoft.Web/connections" && conn == nil && r.API == "keyvault" && r.LinkedTenant == "":
			conn = &ref
		}
	}
	if account == nil || conn == nil {
		return "", fmt.Errorf("simulator config: tenant %s has no Automation account with runbook %s or no Key Vault API connection in sim.json", tenant.Name, verifyRunbook)
	}
	q := strconv.Quote
	file := func(p string) string { return "{file: " + q(p) + "}" }
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("  - name: %s", q(tenant.Name+"-every-sink"))
	line("    connection: %s", q(tenant.Name))
	line("    applications: {ids: [%s]}", q(ado.AppID))
	line("    kind: secret")
	for k, v := range map[string]string{"lifetime": times.Lifetime, "renew_before": times.RenewBefore, "overlap": times.Overlap} {
		if v != "" {
			line("    %s: %s", k, q(v))
		}
	}
	line("    sinks:")
	line("      - keyvault: {vault_url: %s, secret: %s}", q(tenant.KeyVaults[0].URL), q("{{ .App.DisplayName }}-secret"))
	line("      - adoconnection: {organization_url: %s, project: %s, endpoint: %s, pat: %s, adopt: true}", q(ado.URL), q(ado.Project), q(ado.EndpointID), file(ado.PATFile))
	line("      - adovariables: {organization_url: %s, project: %s, group: %s, variable: %s, pat: %s, adopt: true}", q(ado.URL), q(ado.Project), q(ado.VariableGroupName), q(ado.Variable), file(ado.PATFile))
	line("      - adogit: {organization_url: %s, project: %s, repository: %s, branch: %s, path: %s, key: azure.clientSecret, recipients: [%s], pat: %s, adopt: true}",
		q(git.URL), q(git.Project), q(git.Repository), q(git.Branch), q(git.Path), q(git.AgeRecipient), file(git.PATFile))
	line("      - automation: {subscription_id: %s, resource_group: %s, account: %s, runbook: %s, parameters: {ClientId: %s}, timeout: 2m}",
		q(account.subscription), q(account.group), q(account.name), q(verifyRunbook), q(ado.AppID))
	line("      - logicapp: {subscription_id: %s, resource_group: %s, connections: [%s], adopt: true}", q(conn.subscription), q(conn.group), q(conn.name))
	line("      - vercel: {project: %s, team_id: %s, key: %s, token: %s, api_url: %s, adopt: true}", q(vc.Project), q(vc.TeamID), q("{{ .App.DisplayName | envname }}_CLIENT_SECRET"), file(vc.TokenFile), q(vc.URL))
	line("      - github: {owner: %s, repo: %s, environment: %s, name: %s, token: %s, api_url: %s, adopt: true}", q(gh.Owner), q(gh.Repo), q(gh.Environment), q("{{ .App.DisplayName | slug }}_CLIENT_SECRET"), file(gh.TokenFile), q(gh.URL))
	line("      - kubernetes: {kubeconfig: %s, context: %s, namespace: %s, secret: %s, client_id_key: clientId, tenant_id_key: tenantId, restart: [{kind: Deployment, name: %s}], rollout_timeout: 2m, adopt: true}",
		q(kube.Kubeconfig), q(kube.Context), q(kube.Namespace), q(kube.Secret), q(kube.Deployment))
	line("      - webhook: {url: %s, signing_key: %s, include_secret: true, recipients: [%s], on_failure: continue}", q(wh.DemoURL), file(wh.SigningKeyFile), q(wh.AgeRecipient))
	return b.String(), nil
}

// verifyRunbook is the simulator's runbook that signs in with the secret
// it is given, so a job that succeeds proves the delivered secret works.
const verifyRunbook = "Verify-AppSecret"

type armRef struct{ subscription, group, name string }

// parseARMID reads /subscriptions/S/resourceGroups/G/providers/NS/TYPE/NAME.
func parseARMID(id string) (armRef, error) {
	p := strings.Split(strings.Trim(id, "/"), "/")
	if len(p) != 8 || !strings.EqualFold(p[0], "subscriptions") || !strings.EqualFold(p[2], "resourceGroups") || !strings.EqualFold(p[4], "providers") {
		return armRef{}, fmt.Errorf("resource id %q is not /subscriptions/…/resourceGroups/…/providers/…/…/NAME", id)
	}
	return armRef{subscription: p[1], group: p[3], name: p[7]}, nil
}
