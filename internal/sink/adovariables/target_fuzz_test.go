package adovariables

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sink"
)

// FuzzParseTarget: a stored target id either parses, and then makes the
// same id again, or is refused; it never panics.
func FuzzParseTarget(f *testing.F) {
	f.Add("adovariables:https://dev.azure.com/contoso/payments/variablegroup/7/variables/api_secret")
	f.Add("adovariables:https://dev.azure.com/contoso/pay%20ments/variablegroup/name/payments-secrets/variables/x")
	f.Add("adovariables:https://x/variablegroup//variables/")
	f.Fuzz(func(t *testing.T, s string) {
		tid, err := sink.ParseTargetID(s)
		if err != nil || tid.Kind() != Type {
			return
		}
		org, project, gid, gname, variable, err := ParseTarget(tid)
		if err != nil || (gid == 0) == (gname == "") || variable == "" || project == "" {
			return
		}
		again, err := ref{orgURL: org, project: project, groupID: gid, groupName: gname, variable: variable}.target()
		if err != nil {
			return
		}
		o2, p2, g2, n2, v2, err := ParseTarget(again)
		require.NoError(t, err)
		require.Equal(t, []any{org, strings.ToLower(project), gid, strings.ToLower(gname), variable}, []any{o2, strings.ToLower(p2), g2, strings.ToLower(n2), v2})
	})
}
