package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/apikey"
	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/secret"
)

func TestAPIKeysCreateListRevoke(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	made, err := b.app.CreateAPIKey(ctx, b.cli, app.NewAPIKey{Name: "  ci-deploy ", Role: app.RoleOperator})
	require.NoError(t, err)
	key := made.Key.Reveal()
	ref, err := apikey.Parse(key)
	require.NoError(t, err)
	require.Equal(t, apikey.Ref{Org: b.cli.Org, ID: made.ID}, ref, "the key names its organization and id")
	require.Equal(t, "ci-deploy", made.Name)
	require.Equal(t, app.RoleOperator, made.Role)
	require.Equal(t, "active", made.Status)
	require.Equal(t, "system:cli", made.CreatedBy)
	require.WithinDuration(t, made.CreatedAt.Add(app.DefaultAPIKeyLifetime), made.ExpiresAt, time.Second)

	// The key is kept as its hash only, and never shows again: not in the
	// listing, not in a marshalled or printed result, not in the audit.
	stored, err := b.srv.Store().GetAPIKey(ctx, b.cli.Org, made.ID)
	require.NoError(t, err)
	require.True(t, apikey.Matches(key, stored.Hash))
	require.NotContains(t, fmt.Sprintf("%+v", *stored), key)
	out, err := json.Marshal(made)
	require.NoError(t, err)
	require.NotContains(t, string(out), key)
	require.NotContains(t, fmt.Sprintf("%v %+v %s", made, made, made.Key), key)
	_, err = json.Marshal(made.Key)
	require.ErrorIs(t, err, secret.ErrMarshal)

	admin, err := b.app.CreateAPIKey(ctx, b.cli, app.NewAPIKey{Name: "admin", Role: app.RoleAdmin, Lifetime: 24 * time.Hour})
	require.NoError(t, err)
	rows, err := b.app.ListAPIKeys(ctx, b.cli)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, made.ID, rows[0].ID)
	require.Equal(t, admin.ID, rows[1].ID)
	listed, err := json.Marshal(rows)
	require.NoError(t, err)
	require.NotContains(t, string(listed), key)
	require.NotContains(t, string(listed), admin.Key.Reveal())

	require.NoError(t, b.app.RevokeAPIKey(ctx, b.cli, made.ID))
	require.NoError(t, b.app.RevokeAPIKey(ctx, b.cli, made.ID), "revoking twice succeeds")
	rows, err = b.app.ListAPIKeys(ctx, b.cli)
	require.NoError(t, err)
	require.Equal(t, "revoked", rows[0].Status)
	require.False(t, rows[0].RevokedAt.IsZero())
	require.Equal(t, "active", rows[1].Status)

	events := b.takeEvents()
	require.Len(t, events, 4, "create, create, revoke, revoke")
	for _, e := range events {
		require.Equal(t, app.ActionManageAPIKeys, e.Action)
		require.Equal(t, app.OutcomeOK, e.Outcome)
		all, err := json.Marshal(e)
		require.NoError(t, err)
		require.NotContains(t, string(all), key)
	}
	require.Equal(t, app.APIKeyObject(made.ID), events[0].Object)
	require.Equal(t, app.APIKeyObject(made.ID), events[3].Object)

	// Another organization sees none of these keys and cannot revoke them.
	other := app.Scope{Org: "elsewhere", Actor: app.CLI}
	require.NoError(t, b.srv.Store().EnsureOrg(ctx, other.Org, "elsewhere"))
	rows, err = b.app.ListAPIKeys(ctx, other)
	require.NoError(t, err)
	require.Empty(t, rows)
	require.ErrorAs(t, b.app.RevokeAPIKey(ctx, other, admin.ID), new(*app.NotFoundError))
}

func TestAPIKeysRefuseBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	base := app.NewAPIKey{Name: "ci", Role: app.RoleViewer}
	cases := map[string]func(*app.NewAPIKey){
		"NoName":        func(r *app.NewAPIKey) { r.Name = " " },
		"LongName":      func(r *app.NewAPIKey) { r.Name = strings.Repeat("n", 101) },
		"ControlInName": func(r *app.NewAPIKey) { r.Name = "ci\nevil" },
		"NoRole":        func(r *app.NewAPIKey) { r.Role = "" },
		"UnknownRole":   func(r *app.NewAPIKey) { r.Role = "owner" },
		"TooShort":      func(r *app.NewAPIKey) { r.Lifetime = time.Minute },
		"TooLong":       func(r *app.NewAPIKey) { r.Lifetime = app.MaxAPIKeyLifetime + time.Hour },
		"Negative":      func(r *app.NewAPIKey) { r.Lifetime = -time.Hour },
	}
	for name, tweak := range cases {
		req := base
		tweak(&req)
		_, err := b.app.CreateAPIKey(ctx, b.cli, req)
		require.ErrorAs(t, err, new(*app.InvalidError), name)
	}
	require.ErrorAs(t, b.app.RevokeAPIKey(ctx, b.cli, "not-a-key-id"), new(*app.InvalidError))
	require.ErrorAs(t, b.app.RevokeAPIKey(ctx, b.cli, "aaaaaaaaaaaaaaaa"), new(*app.NotFoundError))
	rows, err := b.app.ListAPIKeys(ctx, b.cli)
	require.NoError(t, err)
	require.Empty(t, rows, "nothing was made")

	// Denied: nothing made, the denial audited.
	b.takeEvents()
	b.mu.Lock()
	b.deny = func(app.Scope, app.Action, string) bool { return true }
	b.mu.Unlock()
	_, err = b.app.CreateAPIKey(ctx, b.cli, base)
	require.ErrorAs(t, err, new(*app.DeniedError))
	_, err = b.app.ListAPIKeys(ctx, b.cli)
	require.ErrorAs(t, err, new(*app.DeniedError))
	ev := b.takeEvents()
	require.Len(t, ev, 1)
	require.Equal(t, app.OutcomeDenied, ev[0].Outcome)
	list, err := b.srv.Store().ListAPIKeys(ctx, b.cli.Org)
	require.NoError(t, err)
	require.Empty(t, list)
}

func TestRolesPermitActions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role    app.Role
		permits []app.Action
		refuses []app.Action
	}{
		{app.RoleViewer, []app.Action{app.ActionRead}, []app.Action{app.ActionSync, app.ActionRotate, app.ActionRetire, app.ActionMoveTarget, app.ActionManageAPIKeys}},
		{app.RoleOperator, []app.Action{app.ActionRead, app.ActionSync, app.ActionRotate, app.ActionRetire, app.ActionMoveTarget}, []app.Action{app.ActionManageAPIKeys}},
		{app.RoleAdmin, []app.Action{app.ActionRead, app.ActionSync, app.ActionRotate, app.ActionRetire, app.ActionMoveTarget, app.ActionManageAPIKeys}, nil},
		{"", nil, []app.Action{app.ActionRead}},
		{"owner", nil, []app.Action{app.ActionRead}},
	} {
		for _, a := range tc.permits {
			require.True(t, tc.role.Permits(a), "%s %s", tc.role, a)
		}
		for _, a := range append(tc.refuses, "unknown-action") {
			require.False(t, tc.role.Permits(a), "%s %s", tc.role, a)
		}
	}
	require.Equal(t, app.RoleAdmin, app.RoleViewer.Max(app.RoleAdmin))
	require.Equal(t, app.RoleOperator, app.RoleOperator.Max(app.RoleViewer))
	require.Equal(t, app.RoleViewer, app.Role("").Max(app.RoleViewer))
	_, err := app.ParseRole("Admin")
	require.ErrorAs(t, err, new(*app.InvalidError), "roles are lower case")
}
