package core

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFaultConfigJSON(t *testing.T) {
	t.Parallel()
	var c FaultConfig
	require.NoError(t, json.Unmarshal([]byte(`{"latency":"20ms","error_rate":0.5,"drop_rate":0.1,"throttle":true,"throttle_scale":2}`), &c))
	require.Equal(t, FaultConfig{Latency: 20 * time.Millisecond, ErrorRate: 0.5, DropRate: 0.1, Throttle: true, ThrottleScale: 2}, c)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.JSONEq(t, `{"latency":"20ms","error_rate":0.5,"drop_rate":0.1,"throttle":true,"throttle_scale":2}`, string(b))
	for _, bad := range []string{`{"latency":"soon"}`, `{"error_rate":1.5}`, `{"drop_rate":-1}`, `{"latency":"-1s"}`, `{"throttle_scale":-1}`} {
		require.Error(t, json.Unmarshal([]byte(bad), &c), bad)
	}
	got, err := ParseFaults("5ms", 0.1, 0, true)
	require.NoError(t, err)
	require.Equal(t, FaultConfig{Latency: 5 * time.Millisecond, ErrorRate: 0.1, Throttle: true}, got)
	_, err = ParseFaults("x", 0, 0, false)
	require.Error(t, err)
}
