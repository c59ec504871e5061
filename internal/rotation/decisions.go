package rotation

import (
	"context"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Decisions answers "is it due, and why?" for many applications with one
// read of the journal, exactly as the planner decides: the inventory is
// corrected by the runs since the last sync (overlay), and an application
// held back after a failed run says so. `rotor apps list`, `rotor explain`
// and the UI use it, so what they say is what rotor does.
func (e *Engine) Decisions(ctx context.Context, org domain.OrgID, apps []domain.Application, policies PolicySource) ([]domain.Decision, error) {
	if len(apps) == 0 {
		return nil, nil
	}
	base := store.ListRunsParams{Org: org}
	if len(apps) == 1 {
		base.AppObjectID = apps[0].ObjectID
	}
	rs, err := e.loadRunState(ctx, base)
	if err != nil {
		return nil, err
	}
	now := e.now()
	out := make([]domain.Decision, len(apps))
	for i, app := range apps {
		pol := policies.PolicyFor(app)
		k := appKey(app.TenantID, app.ObjectID)
		d, _ := rs.decide(app, pol, now, e.backoffs())
		if r := rs.newestGood[k]; r != nil && r.State == domain.RunRetiring {
			d.Checks = append(d.Checks, domain.Check{Name: "Retirement", Result: domain.CheckInfo, Reason: "RetirementScheduled",
				Message: fmt.Sprintf("run %s retires older rotor credentials at %s", r.ID, r.RetireAt.Format(time.RFC3339))})
		}
		out[i] = d
	}
	return out, nil
}
