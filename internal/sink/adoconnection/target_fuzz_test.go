package adoconnection

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sink"
)

// FuzzParseTarget: a stored target id either parses, and then makes the
// same id again, or is refused; it never panics.
func FuzzParseTarget(f *testing.F) {
	f.Add("adoconnection:https://dev.azure.com/contoso/payments/serviceendpoint/7c4b0e5e-1c0d-4a53-9a43-1f3c5b6f2a10")
	f.Add("adoconnection:https://dev.azure.com/contoso/payments/serviceendpoint/name/payments%20prod")
	f.Add("adoconnection:x/serviceendpoint/name/")
	f.Fuzz(func(t *testing.T, s string) {
		tid, err := sink.ParseTargetID(s)
		if err != nil || tid.Kind() != Type {
			return
		}
		org, project, id, name, err := ParseTarget(tid)
		if err != nil || (id == "") == (name == "") || project == "" {
			return
		}
		again, err := ref{orgURL: org, project: project, id: id, name: name}.target()
		if err != nil {
			return
		}
		o2, p2, i2, n2, err := ParseTarget(again)
		require.NoError(t, err)
		require.Equal(t, []string{org, strings.ToLower(project), id, strings.ToLower(name)}, []string{o2, strings.ToLower(p2), i2, strings.ToLower(n2)})
	})
}
