//go:build !rotor_crashhook

package cli

import "github.com/rotor-dev/rotor/internal/domain"

// crashHooksFromEnv is empty in a release build: the SIGKILL test hook
// exists only in binaries built with -tags rotor_crashhook (crashhook.go).
func crashHooksFromEnv() (func(domain.Run, domain.Step), error) { return nil, nil }
