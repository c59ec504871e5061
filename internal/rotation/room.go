package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// removeAttempts bounds one credential removal's tries: Entra answers a
// removal sent right after another write to the application with 409
// Directory_ConcurrencyViolation ("wait briefly and retry"), and throttles
// with 429; both pass within seconds.
const removeAttempts = 5

// retryAfterHinter is an error carrying the server's requested wait
// (graph.Error's Retry-After).
type retryAfterHinter interface {
	error
	RetryAfterHint() time.Duration
}

// retryWait is how long to wait before retry n (0-based) after err: the
// server's Retry-After when it sent one (capped at the back-off cap, so a
// hostile answer cannot park a rotation), else the jittered back-off.
func (e *Engine) retryWait(err error, n int) time.Duration {
	if h, ok := errors.AsType[retryAfterHinter](err); ok {
		if d := h.RetryAfterHint(); d > 0 {
			return min(d, e.backoffCap)
		}
	}
	return e.backoff(n)
}

// removeCredential removes keyID from the run's application, fenced, and
// tries again after transient answers (409 concurrency violations, 429,
// 5xx). A permanent answer or a lost lease ends it at once.
func (e *Engine) removeCredential(ctx context.Context, dir Directory, run *domain.Run, kind domain.CredentialKind, keyID string, prover *Prover) error {
	var err error
	for attempt := range removeAttempts {
		if attempt > 0 {
			if serr := sleep(ctx, e.retryWait(err, attempt-1)); serr != nil {
				return errors.Join(err, serr)
			}
		}
		err = e.fenced(ctx, run, func(ctx context.Context) error { return e.removeKind(ctx, dir, run, kind, keyID, prover) })
		if err == nil || leaseLost(err) || e.permanent(err) || ctx.Err() != nil {
			return err
		}
		e.log.Info("removing a credential failed; retrying", "run", run.ID, "app", run.AppObjectID, "key_id", keyID, "attempt", attempt+1, "error", err)
	}
	return err
}

// makeRoom keeps a rotation within the application's password limit
// (domain.PasswordRoom): on an application that admits personal Microsoft
// accounts Entra refuses a third secret, so before creating the new one
// it removes expired credentials to make a place, journaling each removal
// before making it — or fails the run, with nothing created, saying what a
// human can do. Applications without a limit cost nothing here. It
// returns what Rotate returns when the run ended here, and nil, nil when
// the rotation goes on.
func (r *runner) makeRoom(ctx context.Context) (*domain.Run, error) {
	e, run := r.e, r.run
	if r.app.PasswordLimit() == 0 || run.Kind != domain.KindSecret {
		return nil, nil
	}
	// The inventory may be a sync old; the limit is Entra's now.
	creds, err := r.dir.Credentials(ctx, run.AppObjectID)
	if err != nil {
		return r.fail(ctx, err, "reading the application's credentials to plan within its two-secret limit failed: "+err.Error(), e.permanent(err))
	}
	room := domain.PasswordRoom(r.app, creds, r.policy.RetireUnmanaged, e.now())
	if !room.OK {
		return r.fail(ctx, nil, "Entra would refuse a new secret, so none was created: "+room.Why, true)
	}
	for _, c := range room.Free {
		owner := "made by rotor"
		if !c.RotorCreated() {
			owner = "not made by rotor; the policy retires unmanaged credentials"
		}
		if err := e.event(ctx, run, domain.MakeRoomStep(c.KeyID, domain.PhaseRemoving), fmt.Sprintf("removing expired %s %s %q (%s, ended %s) first: Entra lets this application hold at most %d secrets",
			c.Kind, c.KeyID, c.DisplayName, owner, c.End.UTC().Format(time.RFC3339), r.app.PasswordLimit())); err != nil {
			return r.fail(ctx, err, "journaling a removal failed: "+err.Error(), false)
		}
		if err := e.removeCredential(ctx, r.dir, run, c.Kind, c.KeyID, nil); err != nil {
			return r.fail(ctx, err, fmt.Sprintf("removing the expired %s to make room failed: %v", c.KeyID, err), e.permanent(err))
		}
		if err := e.event(ctx, run, domain.MakeRoomStep(c.KeyID, domain.PhaseRemoved), "removed "+c.KeyID); err != nil {
			return r.fail(ctx, err, "journaling a removal failed: "+err.Error(), false)
		}
		r.log.Info("removed an expired credential to make room", "state", string(run.State), "key_id", c.KeyID)
	}
	return nil, nil
}
