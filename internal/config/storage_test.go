package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStorage: whatever would make rotor fail to create data_dir or open
// its database is a configuration problem, found without creating
// anything; and checking creates nothing, valid or not.
func TestStorage(t *testing.T) {
	t.Parallel()
	file := func(b *bundle, name string) string {
		p := filepath.Join(b.dir, name)
		require.NoError(b.t, os.WriteFile(p, []byte("x"), 0o600))
		return p
	}
	dir := func(b *bundle, name string, mode os.FileMode) string {
		p := filepath.Join(b.dir, name)
		require.NoError(b.t, os.Mkdir(p, mode))
		b.t.Cleanup(func() { _ = os.Chmod(p, 0o700) }) // so TempDir can remove it
		return p
	}
	dbURL := func(m map[string]any, u string) { m["database"] = map[string]any{"url": u} }
	tests := []struct {
		name  string
		tweak func(m map[string]any, b *bundle)
		// want has one entry per problem line; "|" separates fragments.
		// Empty: valid.
		want []string
		// notAsRoot: root may write anywhere, so permission cases cannot
		// fail for it.
		notAsRoot bool
		check     func(t *testing.T, cfg *Config, b *bundle)
	}{
		{
			name:  "DataDirMissingIsCreatedLater",
			tweak: func(m map[string]any, _ *bundle) { m["data_dir"] = "a/b/c" },
			check: func(t *testing.T, cfg *Config, b *bundle) {
				require.Equal(t, filepath.Join(b.dir, "a", "b", "c"), cfg.DataDir)
			},
		},
		{
			name:  "DataDirExists",
			tweak: func(m map[string]any, b *bundle) { dir(b, "rotor-data", 0o700) },
			check: func(t *testing.T, cfg *Config, b *bundle) {
				require.Equal(t, filepath.Join(b.dir, "rotor-data", "rotor.db"), cfg.DatabasePath())
			},
		},
		{
			name:  "DataDirIsAFile",
			tweak: func(m map[string]any, b *bundle) { file(b, "rotor-data") },
			want:  []string{`data_dir |rotor-data exists and is not a directory: point data_dir at a directory, or move the file away`},
		},
		{
			name: "DataDirUnderAFile",
			tweak: func(m map[string]any, b *bundle) {
				file(b, "afile")
				m["data_dir"] = "afile/data/more"
			},
			want: []string{`data_dir |afile/data/more cannot be created: |/afile is a file, not a directory`},
		},
		{
			name:      "DataDirNotWritable",
			notAsRoot: true,
			tweak:     func(m map[string]any, b *bundle) { dir(b, "rotor-data", 0o500) },
			want:      []string{`data_dir |rotor-data is not writable (permission denied)`},
		},
		{
			name:      "DataDirParentNotWritable",
			notAsRoot: true,
			tweak: func(m map[string]any, b *bundle) {
				dir(b, "ro", 0o500)
				m["data_dir"] = "ro/data"
			},
			want: []string{`data_dir |ro/data cannot be created: |/ro is not writable (permission denied); create data_dir yourself`},
		},
		{
			name:  "DataDirWithQuestionMark",
			tweak: func(m map[string]any, _ *bundle) { m["data_dir"] = "data?mode=memory" },
			want:  []string{`data_dir: the database file |data?mode=memory/rotor.db must not contain '?' or ':memory:'`},
		},
		{
			name: "DatabaseFileExists",
			tweak: func(m map[string]any, b *bundle) {
				dbURL(m, "sqlite://"+file(b, "state.db"))
			},
			check: func(t *testing.T, cfg *Config, b *bundle) {
				require.Equal(t, filepath.Join(b.dir, "state.db"), cfg.DatabasePath())
			},
		},
		{
			name:  "DatabaseInMissingDataDir",
			tweak: func(m map[string]any, _ *bundle) { m["data_dir"] = "new"; dbURL(m, "new/state.db") },
			check: func(t *testing.T, cfg *Config, b *bundle) {
				require.Equal(t, filepath.Join(b.dir, "new", "state.db"), cfg.DatabasePath())
			},
		},
		{
			name:  "DatabaseIsADirectory",
			tweak: func(m map[string]any, b *bundle) { dbURL(m, dir(b, "state.db", 0o700)) },
			want:  []string{`database.url: the database file |state.db is a directory: name a file, e.g. |state.db/rotor.db`},
		},
		{
			name:  "DatabaseDirectoryMissing",
			tweak: func(m map[string]any, _ *bundle) { dbURL(m, "missing/rotor.db") },
			want:  []string{`database.url: the database file |missing/rotor.db cannot be created: its directory |missing does not exist; create it, or leave database.url empty`},
		},
		{
			name:  "DatabaseInSubdirectoryOfMissingDataDir",
			tweak: func(m map[string]any, _ *bundle) { m["data_dir"] = "new"; dbURL(m, "new/sub/rotor.db") },
			want:  []string{`database.url: the database file |new/sub/rotor.db cannot be created: its directory |new/sub does not exist`},
		},
		{
			name:  "DatabaseUnderAFile",
			tweak: func(m map[string]any, b *bundle) { file(b, "afile"); dbURL(m, "afile/rotor.db") },
			want:  []string{`database.url: the database file |afile/rotor.db cannot be created: |afile is not a directory`},
		},
		{
			name:  "DatabaseWithQuestionMark",
			tweak: func(m map[string]any, _ *bundle) { dbURL(m, "sqlite://rotor.db?mode=ro") },
			want:  []string{`database.url: the database file |rotor.db?mode=ro must not contain '?' or ':memory:': the SQLite driver would read them as options`},
		},
		{
			name:  "DatabaseInMemory",
			tweak: func(m map[string]any, _ *bundle) { dbURL(m, ":memory:") },
			want:  []string{`must not contain '?' or ':memory:'`},
		},
		{
			name:      "DatabaseFileNotWritable",
			notAsRoot: true,
			tweak: func(m map[string]any, b *bundle) {
				p := file(b, "state.db")
				require.NoError(b.t, os.Chmod(p, 0o400))
				dbURL(m, p)
			},
			want: []string{`database.url: the database file |state.db is not writable (permission denied)`},
		},
		{
			name:      "DatabaseDirectoryNotWritable",
			notAsRoot: true,
			tweak: func(m map[string]any, b *bundle) {
				dir(b, "ro", 0o500)
				dbURL(m, "ro/rotor.db")
			},
			want: []string{`its directory |/ro is not writable (permission denied), and SQLite keeps its -wal and -shm files beside the database`},
		},
		{
			name: "DataDirAndDatabaseBothWrong",
			tweak: func(m map[string]any, b *bundle) {
				file(b, "rotor-data")
				dbURL(m, "missing/rotor.db")
			},
			want: []string{`data_dir |exists and is not a directory`, `database.url: |missing does not exist`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.notAsRoot && rerunAsNobody(t) {
				return
			}
			b := setup(t)
			m := base()
			tt.tweak(m, b)
			before := tree(t, b.dir)
			cfg, err := b.parse(t, m)
			require.Equal(t, before, tree(t, b.dir), "checking the configuration must create nothing")
			if len(tt.want) == 0 {
				require.NoError(t, err)
				tt.check(t, cfg, b)
				return
			}
			require.Nil(t, cfg)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tt.want), "problems:\n%s", err)
			for i, w := range tt.want {
				for _, frag := range strings.Split(w, "|") {
					require.Contains(t, lines[i], frag, "problems:\n%s", err)
				}
			}
		})
	}
}

// tree lists every path under dir.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	}))
	return out
}
