package arm_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

func TestARMAnswersNotFoundInARMShape(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Info.Tenants[0]
	tok, err := e.Server.MintToken(tn.ID, tn.Rotation.ClientID, e.Info.ARMAudience+"/")
	require.NoError(t, err)
	status, body := e.Do(t, http.MethodGet, e.Info.ARMURL+"subscriptions?api-version=2022-12-01", nil,
		map[string]string{"Authorization": "Bearer " + tok})
	require.Equal(t, http.StatusNotFound, status)
	errObj, _ := body["error"].(map[string]any)
	require.NotEmpty(t, errObj["code"])
	require.NotEmpty(t, errObj["message"])
}

// TestARMRefusesBadTokens checks ARM's 401 shapes: a missing header, a
// token for another audience, and a token whose header has no kid.
func TestARMRefusesBadTokens(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Info.Tenants[0]
	graphTok, err := e.Server.MintToken(tn.ID, tn.Rotation.ClientID, e.Info.GraphAudience)
	require.NoError(t, err)
	armTok, err := e.Server.MintToken(tn.ID, tn.Rotation.ClientID, e.Info.ARMAudience)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, auth, code, msg string
	}{
		{"no header", "", "AuthenticationFailed", "header is missing"},
		{"graph token", "Bearer " + graphTok, "InvalidAuthenticationToken", "Invalid audience"},
		{"no kid", "Bearer " + simtest.WithoutKid(t, armTok), "InvalidAuthenticationToken", "no kid"},
	} {
		hdr := map[string]string{}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		status, body := e.Do(t, http.MethodGet, e.Info.ARMURL+"subscriptions?api-version=2022-12-01", nil, hdr)
		require.Equal(t, http.StatusUnauthorized, status, tc.name)
		errObj, _ := body["error"].(map[string]any)
		require.Equal(t, tc.code, errObj["code"], tc.name)
		require.Contains(t, errObj["message"], tc.msg, tc.name)
	}
}
