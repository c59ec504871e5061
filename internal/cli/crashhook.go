//go:build rotor_crashhook

package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/rotor-dev/rotor/internal/domain"
)

// crashHooksFromEnv reads ROTOR_CRASH_AT=STEP:N, a test hook: the process
// SIGKILLs itself right after the N-th journal write whose step starts with
// STEP (e.g. "created" or "sink:"), the worst moment to die. The
// crash-safety tests build rotor with -tags rotor_crashhook to use it; a
// release build has no such hook (crashhook_off.go).
func crashHooksFromEnv() (func(domain.Run, domain.Step), error) {
	spec := os.Getenv("ROTOR_CRASH_AT")
	if spec == "" {
		return nil, nil
	}
	step, nStr, ok := strings.Cut(spec, ":")
	n, err := strconv.Atoi(nStr)
	if !ok || err != nil || n < 1 || step == "" {
		return nil, fmt.Errorf("ROTOR_CRASH_AT=%q: want STEP:N, e.g. created:3", spec)
	}
	var seen atomic.Int64
	return func(_ domain.Run, s domain.Step) {
		if strings.HasPrefix(s.String(), step) && seen.Add(1) == int64(n) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}, nil
}
