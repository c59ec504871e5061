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
// STEP (e.g. "created", or "retire:" in ROTOR_CRASH_AT=retire::2, which
// unlike "retire" does not count "retiring"), the worst moment to die. With
// ROTOR_CRASH_GATE=PATH it counts only the writes made while the file PATH
// exists, so a test arms a process that is already running by creating
// the file: that is how it kills several processes one at a time. The
// crash-safety tests build rotor with -tags rotor_crashhook to use it; a
// release build has no such hook (crashhook_off.go).
func crashHooksFromEnv() (func(domain.Run, domain.Step), error) {
	spec := os.Getenv("ROTOR_CRASH_AT")
	if spec == "" {
		return nil, nil
	}
	gate := os.Getenv("ROTOR_CRASH_GATE")
	i := strings.LastIndex(spec, ":")
	if i < 1 {
		return nil, fmt.Errorf("ROTOR_CRASH_AT=%q: want STEP:N, e.g. created:3", spec)
	}
	step := spec[:i]
	n, err := strconv.Atoi(spec[i+1:])
	if err != nil || n < 1 {
		return nil, fmt.Errorf("ROTOR_CRASH_AT=%q: want STEP:N, e.g. created:3", spec)
	}
	var seen atomic.Int64
	return func(_ domain.Run, s domain.Step) {
		if !strings.HasPrefix(s.String(), step) {
			return
		}
		if gate != "" {
			if _, err := os.Stat(gate); err != nil {
				return
			}
		}
		if seen.Add(1) == int64(n) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}, nil
}
