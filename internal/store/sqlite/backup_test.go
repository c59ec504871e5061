package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// TestBackupWhileWriting takes backups of a store that another goroutine
// writes to all the while (inventory pages of applications with two
// credentials each, and runs journaled in several transactions), as
// `rotor backup` does beside a running `rotor serve`. Each backup passes
// PRAGMA integrity_check, opens as a store (migrations up to date), and
// is one consistent moment: every application has both its credentials,
// every run its whole journal up to its state, and it holds at least what
// was committed before the backup began.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s, err := Open(ctx, filepath.Join(dir, "rotor.db"))
	require.NoError(t, err)
	defer s.Close()
	org := domain.DefaultOrg
	require.NoError(t, s.EnsureOrg(ctx, org, "Default"))

	stop := make(chan struct{})
	written := make(chan int, 1) // pages committed, read after stop
	failed := make(chan error, 1)
	var committed atomic.Int64
	go func() {
		n := 0
		defer func() { written <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := writePage(ctx, s, org, n); err != nil {
				failed <- err
				return
			}
			n++
			committed.Store(int64(n))
		}
	}()

	for i := range 5 {
		for committed.Load() < int64((i+1)*3) {
			time.Sleep(time.Millisecond)
		}
		before := int(committed.Load())
		dest := filepath.Join(dir, fmt.Sprintf("backup-%d.db", i))
		f, err := os.Create(dest) // an empty file, as Backup's temporary one
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.NoError(t, BackupInto(ctx, s.Path(), dest))
		v, err := CheckBackup(ctx, dest)
		require.NoError(t, err)
		require.Equal(t, latestVersion(t), v)

		// A restore: the copy is a database file rotor opens as it is.
		restored, err := Open(ctx, dest)
		require.NoError(t, err)
		pages := requireConsistent(t, restored, org)
		require.GreaterOrEqual(t, pages, before, "backup %d holds what was committed before it began", i)
		require.NoError(t, restored.Close())
		_, err = CheckBackup(ctx, dest)
		require.NoError(t, err, "still whole after rotor opened it")
	}
	close(stop)
	select {
	case err := <-failed:
		t.Fatalf("the writer failed beside the backups: %v", err)
	case n := <-written:
		require.Positive(t, n)
	}
}

func TestBackupOfAMissingDatabaseCreatesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.db")
	err := BackupInto(t.Context(), missing, filepath.Join(dir, "out.db"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = os.Stat(missing)
	require.True(t, errors.Is(err, fs.ErrNotExist), "no database was created")
}

// writePage commits page n: ten applications with two credentials each,
// in one SyncApplications, and one run taken to created in two more
// transactions.
func writePage(ctx context.Context, s *Store, org domain.OrgID, n int) error {
	apps := make([]domain.Application, 10)
	for i := range apps {
		id := fmt.Sprintf("p%05d-a%d", n, i)
		apps[i] = domain.Application{TenantID: "t", ObjectID: id, AppID: id, DisplayName: id,
			Credentials: []domain.Credential{
				{KeyID: id + "-k1", Kind: domain.KindSecret, Start: t0, End: t0.Add(time.Hour)},
				{KeyID: id + "-k2", Kind: domain.KindSecret, Start: t0, End: t0.Add(2 * time.Hour)},
			}}
	}
	if _, err := s.SyncApplications(ctx, store.SyncApplicationsParams{Org: org, Connection: "c", SyncStarted: t0, Applications: apps}); err != nil {
		return err
	}
	run := &domain.Run{Org: org, ID: fmt.Sprintf("run-%05d", n), TenantID: "t", AppObjectID: apps[0].ObjectID, CreatedAt: t0,
		Events: []domain.RunEvent{{At: t0, Step: domain.StepPlanned.Step(), Message: "planned"}}}
	if err := s.CreateRun(ctx, run); err != nil {
		return err
	}
	return s.TransitionRun(ctx, store.TransitionRunParams{Org: org, RunID: run.ID, From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated,
		NewKeyID: apps[0].ObjectID + "-k2", Event: domain.RunEvent{At: t0, Step: domain.StepCreated.Step(), Message: "created"}})
}

// requireConsistent checks what writePage promises of each page in s and
// returns how many whole pages s holds (a page's run may be missing or
// still planned when the backup came between its transactions).
func requireConsistent(t *testing.T, s *Store, org domain.OrgID) int {
	t.Helper()
	ctx := t.Context()
	apps, err := s.ListApplications(ctx, store.ListApplicationsParams{Org: org})
	require.NoError(t, err)
	require.Zero(t, len(apps)%10, "applications come ten to a page")
	for _, a := range apps {
		require.Len(t, a.Credentials, 2, a.ObjectID)
	}
	pages := len(apps) / 10
	runs, err := s.ListRuns(ctx, store.ListRunsParams{Org: org})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(runs), pages-1)
	require.LessOrEqual(t, len(runs), pages)
	for _, r := range runs {
		full, err := s.GetRun(ctx, org, r.ID)
		require.NoError(t, err)
		switch full.State {
		case domain.RunPlanned:
			require.Len(t, full.Events, 1, r.ID)
			require.Empty(t, full.NewKeyID)
		case domain.RunCreated:
			require.Len(t, full.Events, 2, r.ID)
			require.NotEmpty(t, full.NewKeyID)
		default:
			t.Fatalf("run %s is %s", r.ID, full.State)
		}
	}
	return pages
}

func latestVersion(t *testing.T) int {
	t.Helper()
	ms, err := loadMigrations(migrationFS)
	require.NoError(t, err)
	return ms[len(ms)-1].version
}
