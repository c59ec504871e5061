package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
)

// Regression (review of issue 6): the journal relay keys watchers by tenant/object id only. Two
// organizations may connect the same tenant (DESIGN: nothing crosses orgs),
// so org A's `rotor rotate` observer receives org B's run steps (run id,
// error text, key ids) for the same application; Observe gets every org's.
func TestRelayStaysInItsOrganization(t *testing.T) {
	var r relay
	var got []domain.OrgID
	stop := r.watchApp("org-a", "tenant-1", "app-1", func(run domain.Run, _ domain.Step) { got = append(got, run.Org) })
	defer stop()
	r.publish(domain.Run{Org: "other-org", TenantID: "tenant-1", AppObjectID: "app-1"}, domain.StepPlanned.Step())
	require.Empty(t, got, "a watcher of org A's rotation saw a run of another organization")
}
