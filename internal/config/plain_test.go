package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// validText is the valid base as YAML text, for tests that need to edit
// the text itself (documents, anchors) rather than the tree.
func (b *bundle) validText(t *testing.T) string {
	t.Helper()
	data, err := yaml.Marshal(base())
	require.NoError(t, err)
	return string(data)
}

// TestParseStructure: the YAML features a plain-data configuration does
// not use are each reported with their line, and valid files that merely
// look like them are accepted.
func TestParseStructure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// edit turns the valid base text into the case's text.
		edit func(text string) string
		// want has one entry per problem line; "|" separates fragments.
		// Empty: the file is valid.
		want []string
		line int // Problem.Line of the first problem, when checked
	}{
		{
			name: "SecondDocument",
			edit: func(text string) string { return text + "---\nlisten: 127.0.0.1:9090\n" },
			want: []string{`a second YAML document starts at line |(after ---): rotor reads one document`},
		},
		{
			name: "SecondDocumentAfterDocumentEnd",
			edit: func(text string) string { return text + "...\n---\nlisten: 127.0.0.1:9090\n" },
			want: []string{`a second YAML document starts at line`},
		},
		{
			name: "SecondDocumentStillChecksTheFirst",
			edit: func(text string) string { return "listn: x\n" + text + "---\nlisten: y\n" },
			want: []string{`a second YAML document`, `unknown key "listn" (line 1)`},
		},
		{
			name: "SecondDocumentNotYAML",
			edit: func(text string) string { return text + "---\n[\n" },
			want: []string{`the configuration is not valid YAML after its first document`},
		},
		{
			name: "LeadingDocumentMarker",
			edit: func(text string) string { return "---\n" + text },
		},
		{
			name: "TrailingDocumentMarker",
			edit: func(text string) string { return text + "---\n" },
		},
		{
			name: "DocumentEndMarker",
			edit: func(text string) string { return text + "...\n" },
		},
		{
			name: "AnchorAndAlias",
			edit: func(text string) string {
				return strings.Replace(text, "listen: 127.0.0.1:8080", "listen: &l 127.0.0.1:8080\norganization: *l", 1)
			},
			want: []string{
				`anchor &l in listen (line |): rotor.yaml is plain data, without anchors, aliases or merge keys; remove &l and write the value out wherever it is used`,
				`alias *l in organization (line |write the value out in place of *l`,
			},
		},
		{
			name: "MergeKey",
			edit: func(text string) string {
				return "x: &defaults {cloud: sim}\n" + strings.Replace(text, "      name: contoso\n", "      name: contoso\n      <<: *defaults\n", 1)
			},
			want: []string{
				`anchor &defaults in x (line 1)`,
				`merge key << in connections[0] (line 8): |write the keys it merges out in this map`,
			},
		},
		{
			name: "AnchorOnTheRoot",
			edit: func(text string) string { return "--- &root\n" + text },
			want: []string{`anchor &root at the top level (line 1)`},
			line: 1,
		},
		{
			name: "QuotedMergeKeyIsAnOrdinaryKey",
			edit: func(text string) string { return "'<<': x\n" + text },
			want: []string{`unknown key "<<" (line 1)`},
		},
		{
			name: "AmpersandAndStarInQuotedValues",
			edit: func(text string) string { return strings.Replace(text, "name_prefix: web-", `name_prefix: "&web*"`, 1) },
		},
		{
			name: "BillionLaughs",
			edit: func(string) string {
				var sb strings.Builder
				sb.WriteString("a: &a [x, x, x, x, x, x, x, x, x, x]\n")
				prev := "a"
				for i := range 9 {
					name := string(rune('b' + i))
					sb.WriteString(name + ": &" + name + " [")
					for j := range 10 {
						if j > 0 {
							sb.WriteString(", ")
						}
						sb.WriteString("*" + prev)
					}
					sb.WriteString("]\n")
					prev = name
				}
				return sb.String()
			},
			// 10 anchors and 90 aliases: 20 listed, then a count.
			want: append(repeat(`in `, 20), `… and 80 more anchors, aliases and merge keys`),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			text := b.validText(t)
			edited := tt.edit(text)
			require.NotEqual(t, text, edited, "the edit must change the file")
			cfg, err := Parse([]byte(edited), b.dir, b.opts)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				require.NotNil(t, cfg)
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
			if tt.line != 0 {
				require.Equal(t, tt.line, ve.Problems[0].Line)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestFileSizeLimit: a file over MaxFileSize is refused before it is
// parsed, whether it is loaded from disk, from a stream, or parsed in
// memory; one of exactly MaxFileSize is read.
func TestFileSizeLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	padded := func(n int) []byte {
		text := b.validText(t)
		return []byte(text + strings.Repeat("#", n-len(text)-1) + "\n")
	}

	path := filepath.Join(b.dir, "big.yaml")
	require.NoError(t, os.WriteFile(path, padded(MaxFileSize+1), 0o600))
	_, err := Load(path, b.opts)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "configuration "+path+" has 1 problem:\nthe configuration is 1048577 bytes, over the limit of 1 MiB: rotor.yaml holds settings only and is a few KiB; check that this is the right file", err.Error())

	_, err = Parse(padded(MaxFileSize+1), b.dir, b.opts)
	require.ErrorAs(t, err, &ve)
	require.ErrorContains(t, err, "over the limit of 1 MiB")

	// A stream of unknown length is read only up to the limit.
	_, err = Load("/dev/zero", b.opts)
	require.ErrorAs(t, err, &ve)
	require.ErrorContains(t, err, "the configuration is more than 1048576 bytes, over the limit of 1 MiB")

	path = filepath.Join(b.dir, "max.yaml")
	require.NoError(t, os.WriteFile(path, padded(MaxFileSize), 0o600))
	_, err = Load(path, b.opts)
	require.NoError(t, err)
}
