package sink

// Status is a Validate answer's verdict. It is a string so that the API and
// the UI show it as it is.
type Status string

// The three answers to "would a delivery work?".
const (
	// StatusReady: as far as can be told without writing, a delivery would
	// succeed.
	StatusReady Status = "ready"
	// StatusUnknown: the target could not be asked (unreachable, throttled,
	// failing); a delivery may still work, so the rotation goes ahead.
	StatusUnknown Status = "unknown"
	// StatusFailed: a delivery would fail until a person changes something
	// (a foreign target, a denied permission); the rotation does not start.
	StatusFailed Status = "failed"
)

// Validation is the answer of Validator.Validate. It is a value rather than
// an error because "could not tell" is a normal, distinct answer that must
// neither block a rotation nor be shown as success.
type Validation struct {
	Status Status
	// Reason says why, for a person; never a secret value.
	Reason string
	// Err is the cause behind an unknown or failed answer, for errors.As
	// and logs; nil when ready.
	Err error
}

// Ready is a StatusReady answer.
func Ready(reason string) Validation { return Validation{Status: StatusReady, Reason: reason} }

// Unknown is a StatusUnknown answer caused by err; an empty reason takes
// err's message.
func Unknown(reason string, err error) Validation {
	return Validation{Status: StatusUnknown, Reason: reasonOr(reason, err), Err: err}
}

// Failed is a StatusFailed answer caused by err; an empty reason takes
// err's message.
func Failed(reason string, err error) Validation {
	return Validation{Status: StatusFailed, Reason: reasonOr(reason, err), Err: err}
}

// FromError answers unknown or failed from err: failed when err is
// permanent (IsPermanent), unknown otherwise. A nil err is ready with
// readyReason.
func FromError(err error, readyReason string) Validation {
	switch {
	case err == nil:
		return Ready(readyReason)
	case IsPermanent(err):
		return Failed("", err)
	}
	return Unknown("", err)
}

func reasonOr(reason string, err error) string {
	if reason == "" && err != nil {
		return err.Error()
	}
	return reason
}
