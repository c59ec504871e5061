package sink

import (
	"context"
	"fmt"
	"time"
)

// Delivered is what rotor last wrote to one target, as the rotation
// recorded it in the store after the write: the credential, the version
// the target reported for that write (Result.Version), and when. It never
// holds a value.
//
// A builder gets it in BuildRequest.Last. It is how a sink whose target
// carries no ownership marker (a GitHub secret, an Azure DevOps variable,
// a Vercel variable) tells rotor's target from a foreign one: a target
// that exists while rotor has never delivered to it was put there by
// someone else, and is overwritten only when the spec says adopt. And it
// is what drift is measured against (VersionReader).
type Delivered struct {
	KeyID   string    `json:"key_id"`
	Version string    `json:"version,omitempty"`
	RunID   string    `json:"run_id,omitempty"`
	At      time.Time `json:"at"`
}

// VersionReader is the optional ability of a sink to read its target's
// current version without reading a value: a Key Vault secret version, a
// Kubernetes resourceVersion, a Git blob id, an Azure DevOps revision, a
// Vercel variable's updatedAt, a GitHub secret's updated_at. The empty
// string means the target does not exist.
//
// A sink that implements it also sets Result.Version on every delivery,
// to the version the target has after it (changed or not), so that the
// next reading can be compared with it.
type VersionReader interface {
	Version(ctx context.Context) (string, error)
}

// Drift is what became of a target since rotor last delivered to it.
type Drift struct {
	// Drifted is true when the target's version is no longer the one
	// rotor's last delivery left, or the target is gone.
	Drifted bool `json:"drifted"`
	// Reason says what changed, for a person; never a value.
	Reason string `json:"reason"`
	// Current is the version read now ("" when the target is gone).
	Current string `json:"current,omitempty"`
}

// CompareDrift says whether a target whose version is now current has
// drifted from last. With no last delivery, or a last delivery that
// recorded no version, there is nothing to compare and nothing drifted.
func CompareDrift(last *Delivered, current string) Drift {
	switch {
	case last == nil || last.Version == "":
		return Drift{Current: current, Reason: "rotor has no recorded version of this target to compare with"}
	case current == "":
		return Drift{Drifted: true, Reason: fmt.Sprintf("the target is gone: rotor wrote credential %s to it at %s (run %s)",
			last.KeyID, last.At.UTC().Format(time.RFC3339), last.RunID)}
	case current != last.Version:
		return Drift{Drifted: true, Current: current, Reason: fmt.Sprintf("the target changed behind rotor's back: it is at version %s, rotor left version %s with credential %s at %s (run %s)",
			current, last.Version, last.KeyID, last.At.UTC().Format(time.RFC3339), last.RunID)}
	}
	return Drift{Current: current, Reason: fmt.Sprintf("unchanged since rotor wrote credential %s at %s", last.KeyID, last.At.UTC().Format(time.RFC3339))}
}
