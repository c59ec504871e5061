package app_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
)

// TestPagesNeitherSkipNorRepeat walks every application page by page in
// both orders, and the runs, and checks the lookups of one object.
func TestPagesNeitherSkipNorRepeat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.sync()
	all, err := b.app.ListApplications(ctx, b.cli, app.ApplicationFilter{})
	require.NoError(t, err)
	require.Greater(t, len(all), 20)

	walk := func(f app.ApplicationFilter, sort app.ApplicationSort, size int) []app.ApplicationRow {
		t.Helper()
		var rows []app.ApplicationRow
		req := app.ApplicationPageRequest{Sort: sort, Limit: size}
		for range 1000 {
			page, err := b.app.ListApplicationsPage(ctx, b.cli, f, req)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page.Rows), size)
			rows = append(rows, page.Rows...)
			if page.Next == "" {
				return rows
			}
			require.Len(t, page.Rows, size, "only the last page is short")
			req.Cursor = page.Next
		}
		t.Fatal("paging does not end")
		return nil
	}
	ids := func(rows []app.ApplicationRow) []string {
		out := []string{}
		for _, r := range rows {
			out = append(out, r.ObjectID)
		}
		return out
	}
	for _, size := range []int{1, 7, len(all), len(all) + 1} {
		// Rows due now say so at the time they were read: compare ids.
		require.Equal(t, ids(all), ids(walk(app.ApplicationFilter{}, "", size)), "by name, page size %d", size)
		byExpiry := walk(app.ApplicationFilter{}, app.SortByExpiry, size)
		require.ElementsMatch(t, ids(all), ids(byExpiry), "by expiry, page size %d: the same applications", size)
	}
	byExpiry := walk(app.ApplicationFilter{}, app.SortByExpiry, 9)
	for i := 1; i < len(byExpiry); i++ {
		if prev, cur := byExpiry[i-1].EarliestEnd, byExpiry[i].EarliestEnd; !prev.IsZero() && !cur.IsZero() {
			require.False(t, cur.Before(prev), "soonest first at %d", i)
		}
	}
	web := app.ApplicationFilter{NamePrefix: "web-", ManageableOnly: true}
	want, err := b.app.ListApplications(ctx, b.cli, web)
	require.NoError(t, err)
	require.NotEmpty(t, want)
	require.Equal(t, ids(want), ids(walk(web, app.SortByName, 2)), "filters hold across pages")

	page, err := b.app.ListApplicationsPage(ctx, b.cli, app.ApplicationFilter{}, app.ApplicationPageRequest{Limit: 3})
	require.NoError(t, err)
	for name, req := range map[string]app.ApplicationPageRequest{
		"UnknownSort":          {Sort: "size"},
		"TooLarge":             {Limit: app.MaxPageSize + 1},
		"Negative":             {Limit: -1},
		"GarbageCursor":        {Cursor: "not a cursor"},
		"CursorOfAnotherOrder": {Sort: app.SortByExpiry, Cursor: page.Next},
	} {
		_, err := b.app.ListApplicationsPage(ctx, b.cli, app.ApplicationFilter{}, req)
		var inv *app.InvalidError
		require.ErrorAs(t, err, &inv, name)
		require.Equal(t, http.StatusBadRequest, app.HTTPStatus(err), name)
	}

	// Runs, newest first, one per page.
	for _, r := range all[:3] {
		if !r.Manageable || r.Policy == "" {
			continue
		}
		_, err := b.app.Rotate(ctx, b.cli, []string{r.ObjectID}, nil)
		require.NoError(t, err)
	}
	runs, err := b.app.ListRuns(ctx, b.cli, app.RunFilter{})
	require.NoError(t, err)
	require.NotEmpty(t, runs)
	var got []app.RunRow
	req := app.RunPageRequest{Limit: 1}
	for range 100 {
		page, err := b.app.ListRunsPage(ctx, b.cli, app.RunFilter{}, req)
		require.NoError(t, err)
		got = append(got, page.Rows...)
		if page.Next == "" {
			break
		}
		req.Cursor = page.Next
	}
	require.Equal(t, runs, got)
	_, err = b.app.ListRunsPage(ctx, b.cli, app.RunFilter{}, app.RunPageRequest{Cursor: "e30"})
	require.ErrorAs(t, err, new(*app.InvalidError), "an empty cursor object")

	// One object by name.
	d, err := b.app.GetApplication(ctx, b.cli, all[0].ObjectID)
	require.NoError(t, err)
	require.Equal(t, all[0].Name, d.Name)
	pols, err := b.app.ListPolicies(ctx, b.cli)
	require.NoError(t, err)
	p, err := b.app.GetPolicy(ctx, b.cli, pols[0].Name)
	require.NoError(t, err)
	require.Equal(t, pols[0], *p)
	conns, err := b.app.ListConnections(ctx, b.cli)
	require.NoError(t, err)
	c, err := b.app.GetConnection(ctx, b.cli, conns[0].Name)
	require.NoError(t, err)
	require.Equal(t, conns[0].Name, c.Name)
	for name, err := range map[string]error{
		"application": func() error { _, err := b.app.GetApplication(ctx, b.cli, "no-such-app"); return err }(),
		"policy":      func() error { _, err := b.app.GetPolicy(ctx, b.cli, "no-such-policy"); return err }(),
		"connection":  func() error { _, err := b.app.GetConnection(ctx, b.cli, "no-such-connection"); return err }(),
	} {
		var nf *app.NotFoundError
		require.ErrorAs(t, err, &nf, name)
		require.Equal(t, name, nf.Kind)
	}
}
