package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
)

// TestAuditTrailIsWrittenAndReadThroughTheApplicationLayer: the events
// the application layer records reach the store's trail (besides the
// auditor a caller adds), AuditList filters and pages it, AuditVerify
// finds it intact, and both are reads: authorized, never audited.
func TestAuditTrailIsWrittenAndReadThroughTheApplicationLayer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.sync()
	storefront := b.simApp("contoso", "web-storefront")
	_, err := b.app.Rotate(ctx, b.cli, []string{storefront.ObjectID}, nil)
	require.NoError(t, err)
	b.takeEvents()

	all, err := b.app.AuditList(ctx, b.cli, app.AuditFilter{Limit: app.MaxAuditLimit})
	require.NoError(t, err)
	require.Greater(t, len(all), 6, "the sync, the rotation's steps and the rotate call")
	require.Equal(t, audit.Record{Org: b.cli.Org, Seq: 1, At: all[0].At, Actor: audit.Actor{Kind: "system", ID: "cli"},
		Action: "sync", Object: app.ObjectInventory, Outcome: audit.OutcomeOK, Hash: all[0].Hash}, all[0])
	last := all[len(all)-1]
	require.Equal(t, string(app.ActionRotate), last.Action)
	require.Equal(t, app.ApplicationObject(storefront.ObjectID), last.Object)

	page, err := b.app.AuditList(ctx, b.cli, app.AuditFilter{After: 1, Limit: 2})
	require.NoError(t, err)
	require.Equal(t, all[1:3], page)
	newest, err := b.app.AuditList(ctx, b.cli, app.AuditFilter{Newest: true, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []audit.Record{last}, newest)
	steps, err := b.app.AuditList(ctx, b.cli, app.AuditFilter{ActorKind: app.ActorSystem, Actor: "rotor", Since: all[0].At})
	require.NoError(t, err)
	require.Equal(t, len(all)-2, len(steps), "every record but the two calls is a step, by rotor")
	none, err := b.app.AuditList(ctx, b.cli, app.AuditFilter{Until: all[0].At})
	require.NoError(t, err)
	require.Empty(t, none)
	require.NotNil(t, none, "an empty listing is [], for JSON")

	res, err := b.app.AuditVerify(ctx, b.cli, app.AuditVerifyOptions{})
	require.NoError(t, err)
	require.True(t, res.Intact, "%+v", res.Problem)
	require.Equal(t, last.Seq, res.Head.Seq)
	require.Equal(t, last.Hash, res.Head.Hash)
	res, err = b.app.AuditVerify(ctx, b.cli, app.AuditVerifyOptions{Anchors: []audit.Head{{Seq: 2, Hash: all[1].Hash}}})
	require.NoError(t, err)
	require.True(t, res.Intact)
	res, err = b.app.AuditVerify(ctx, b.cli, app.AuditVerifyOptions{Anchors: []audit.Head{{Seq: 2, Hash: all[2].Hash}}})
	require.NoError(t, err)
	require.False(t, res.Intact, "an anchor that does not match")
	require.Equal(t, audit.Edited, res.Problem.Kind)

	for name, f := range map[string]app.AuditFilter{
		"NegativeLimit":  {Limit: -1},
		"HugeLimit":      {Limit: app.MaxAuditLimit + 1},
		"NegativeCursor": {After: -1},
		"BackwardsRange": {Since: time.Now(), Until: time.Now().Add(-time.Hour)},
		"UnknownKind":    {ActorKind: "robot"},
	} {
		_, err := b.app.AuditList(ctx, b.cli, f)
		require.ErrorAs(t, err, new(*app.InvalidError), name)
	}

	_, err = b.app.AuditVerify(ctx, app.Scope{Org: "no-such-org", Actor: app.CLI}, app.AuditVerifyOptions{})
	var nf *app.NotFoundError
	require.ErrorAs(t, err, &nf, "a mistyped organization is not an empty, intact trail")
	require.Equal(t, "organization", nf.Kind)
	_, err = b.app.AuditList(ctx, app.Scope{Org: "no-such-org", Actor: app.CLI}, app.AuditFilter{})
	require.ErrorAs(t, err, &nf)

	user := app.Scope{Org: b.cli.Org, Actor: app.Actor{Kind: app.ActorUser, ID: "u-1"}}
	var asked []string
	b.mu.Lock()
	b.deny = func(sc app.Scope, a app.Action, o string) bool {
		asked = append(asked, string(a)+" "+o)
		return sc.Actor.Kind == app.ActorUser
	}
	b.mu.Unlock()
	_, err = b.app.AuditList(ctx, user, app.AuditFilter{})
	require.ErrorAs(t, err, new(*app.DeniedError))
	_, err = b.app.AuditVerify(ctx, user, app.AuditVerifyOptions{})
	require.ErrorAs(t, err, new(*app.DeniedError))
	require.Equal(t, []string{"read audit", "read audit"}, asked)
	require.Empty(t, b.takeEvents(), "reading the trail is not audited")
	after, err := b.app.AuditList(ctx, b.cli, app.AuditFilter{Limit: app.MaxAuditLimit})
	require.NoError(t, err)
	require.Equal(t, all, after)
}
