package server

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
)

// TestOpenCreatesNothingForABadConfiguration: values that only the store,
// the listener or the job system would have refused are configuration
// problems, so Open fails before it creates data_dir.
func TestOpenCreatesNothingForABadConfiguration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{
			name: "DatabaseDirectoryMissing",
			yaml: "data_dir: ./data\ndatabase: {url: ./missing/rotor.db}\n",
			want: "its directory",
		},
		{
			name: "DatabaseIsADirectory",
			yaml: "data_dir: ./data\ndatabase: {url: ./sub}\n",
			want: "is a directory",
		},
		{
			name: "ListenPortOutOfRange",
			yaml: "data_dir: ./data\nlisten: 127.0.0.1:99999\n",
			want: "port 99999 is not a port number",
		},
		{
			name: "ConcurrencyBeyondRiver",
			yaml: "data_dir: ./data\nrotation: {concurrency_per_tenant: 100000000000}\n",
			want: "must be at most 64",
		},
		{
			name: "SecondDocument",
			yaml: "data_dir: ./data\n---\ndata_dir: ./other\n",
			want: "a second YAML document",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
			path := filepath.Join(dir, "rotor.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.yaml), 0o600))
			before := filesUnder(t, dir)

			srv, err := Open(context.Background(), path, Options{Logger: slog.New(slog.DiscardHandler)})
			require.Nil(t, srv)
			var ve *config.ValidationError
			require.ErrorAs(t, err, &ve)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, before, filesUnder(t, dir), "a bad configuration must create nothing")
		})
	}
}

func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		out = append(out, p)
		return err
	}))
	return out
}
