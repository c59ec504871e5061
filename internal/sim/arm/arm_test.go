package arm_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestARMAnswersNotFoundInARMShape(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tn := e.info.Tenants[0]
	tok, err := e.srv.MintToken(tn.ID, tn.Rotation.ClientID, e.info.ARMAudience+"/")
	require.NoError(t, err)
	status, body := e.do(t, http.MethodGet, e.info.ARMURL+"subscriptions?api-version=2022-12-01", nil,
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
	e := setup(t)
	tn := e.info.Tenants[0]
	graphTok, err := e.srv.MintToken(tn.ID, tn.Rotation.ClientID, e.info.GraphAudience)
	require.NoError(t, err)
	armTok, err := e.srv.MintToken(tn.ID, tn.Rotation.ClientID, e.info.ARMAudience)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, auth, code, msg string
	}{
		{"no header", "", "AuthenticationFailed", "header is missing"},
		{"graph token", "Bearer " + graphTok, "InvalidAuthenticationToken", "Invalid audience"},
		{"no kid", "Bearer " + withoutKid(t, armTok), "InvalidAuthenticationToken", "no kid"},
	} {
		hdr := map[string]string{}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		status, body := e.do(t, http.MethodGet, e.info.ARMURL+"subscriptions?api-version=2022-12-01", nil, hdr)
		require.Equal(t, http.StatusUnauthorized, status, tc.name)
		errObj, _ := body["error"].(map[string]any)
		require.Equal(t, tc.code, errObj["code"], tc.name)
		require.Contains(t, errObj["message"], tc.msg, tc.name)
	}
}
