//go:build !rotor_crashhook

package cli

import "github.com/rotor-dev/rotor/internal/rotation"

// crashHooksFromEnv is empty in a release build: the SIGKILL test hook
// exists only in binaries built with -tags rotor_crashhook (crashhook.go).
func crashHooksFromEnv() (rotation.Hooks, error) { return rotation.Hooks{}, nil }
