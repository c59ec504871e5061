package sink

import (
	"fmt"
	"maps"

	"github.com/rotor-dev/rotor/internal/domain"
)

// Setting keys every sink kind shares. on_failure is the rotation's, not
// the kind's: the registry checks it and removes it before a kind sees
// the spec. adopt is each kind's to honour (a kind that cannot tell its
// own target from a foreign one has nothing to adopt), under this one
// name.
const (
	// KeyOnFailure is "stop" (the default) or "continue".
	KeyOnFailure = "on_failure"
	// KeyAdopt, when true, lets a sink take over a target rotor did not
	// create: the first delivery overwrites it (and marks it rotor's, where
	// the target can carry a marker). Off by default: a foreign target is
	// refused, permanently, before anything is created in Entra.
	KeyAdopt = "adopt"
)

// OnFailure is what a run does when one sink cannot take the new
// credential.
type OnFailure string

const (
	// OnFailureStop fails the run: nothing older is retired, every sink
	// that already took the new credential keeps it (it is valid), and the
	// failure is reported. The default.
	OnFailureStop OnFailure = "stop"
	// OnFailureContinue records the sink's failure and goes on with the
	// other sinks: for consumers that are a convenience (a notification
	// webhook), not a dependency. The run then completes, and the failed
	// sink's consumer keeps the older credential until the overlap ends.
	OnFailureContinue OnFailure = "continue"
)

// OnFailureOf is spec's on_failure, OnFailureStop when unset. It assumes a
// checked spec (Registry.CheckSpec); anything else reads as stop, the safe
// answer.
func OnFailureOf(spec domain.SinkSpec) OnFailure {
	if v, ok := spec.Settings[KeyOnFailure].(string); ok && OnFailure(v) == OnFailureContinue {
		return OnFailureContinue
	}
	return OnFailureStop
}

// checkCommon checks the keys the registry owns.
func checkCommon(spec domain.SinkSpec) error {
	v, ok := spec.Settings[KeyOnFailure]
	if !ok {
		return nil
	}
	s, isString := v.(string)
	if !isString || (OnFailure(s) != OnFailureStop && OnFailure(s) != OnFailureContinue) {
		return fmt.Errorf("%s: must be %q (the default: the run fails and the old credential stays) or %q (record the failure and deliver to the other sinks), not %v",
			KeyOnFailure, OnFailureStop, OnFailureContinue, v)
	}
	return nil
}

// KindSpec is spec as its kind sees it: without the keys the registry
// owns (on_failure).
func KindSpec(spec domain.SinkSpec) domain.SinkSpec {
	if _, ok := spec.Settings[KeyOnFailure]; !ok {
		return spec
	}
	s := maps.Clone(spec.Settings)
	delete(s, KeyOnFailure)
	return domain.SinkSpec{Type: spec.Type, Settings: s}
}
