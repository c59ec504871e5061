package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/store"
)

func TestClassifyAndStatus(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	cases := []struct {
		name   string
		err    error
		class  ErrorClass
		status int
	}{
		{"nil", nil, "", http.StatusInternalServerError},
		{"denied", &DeniedError{Actor: CLI, Action: ActionRotate}, ClassDenied, http.StatusForbidden},
		{"application not found", lookupError("application", "x", wrap(store.ErrNotFound)), ClassNotFound, http.StatusNotFound},
		{"ambiguous", lookupError("application", "x", &store.AmbiguousError{Ref: "x", Field: "display name", ObjectIDs: []string{"a", "b"}}), ClassAmbiguous, http.StatusConflict},
		{"no policy", wrap(&NoPolicyError{}), ClassNoPolicy, http.StatusUnprocessableEntity},
		{"not manageable", wrap(&NotManageableError{}), ClassNotManageable, http.StatusUnprocessableEntity},
		{"invalid", &InvalidError{Field: "state"}, ClassInvalid, http.StatusBadRequest},
		{"unavailable", &UnavailableError{What: "x"}, ClassUnavailable, http.StatusNotImplemented},
		{"busy", wrap(rotation.ErrBusy), ClassBusy, http.StatusConflict},
		{"too early", wrap(&rotation.ErrTooEarly{}), ClassTooEarly, http.StatusInternalServerError},
		{"run failed", wrap(&rotation.RunError{RunID: "r", Message: "m"}), ClassRunFailed, http.StatusInternalServerError},
		{"canceled", wrap(context.Canceled), ClassCanceled, http.StatusInternalServerError},
		{"a failure of one of several rotations", errors.Join(wrap(&rotation.RunError{}), nil), ClassRunFailed, http.StatusInternalServerError},
		{"anything else", errors.New("disk on fire"), ClassInternal, http.StatusInternalServerError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, c.class, Classify(c.err))
			if c.err != nil {
				require.Equal(t, c.status, HTTPStatus(c.err))
			}
		})
	}
}

func TestLookupErrorKeepsTheStoreError(t *testing.T) {
	t.Parallel()
	err := lookupError("run", "r1", store.ErrNotFound)
	require.ErrorIs(t, err, store.ErrNotFound)
	amb := lookupError("application", "web", &store.AmbiguousError{Ref: "web", Field: "display name", ObjectIDs: []string{"o1", "o2"}})
	require.ErrorIs(t, amb, store.ErrAmbiguous)
	require.EqualError(t, amb, `ambiguous: 2 applications have display name "web" (object ids o1, o2); use an object id`)
}

func TestRelayRoutesStepsToTheirObservers(t *testing.T) {
	t.Parallel()
	var r relay
	var all, a1, a2 []string
	stopAll := r.watchAll(func(run domain.Run, _ domain.Step) { all = append(all, run.ID) })
	stop1 := r.watchApp("org", "t", "o1", func(run domain.Run, _ domain.Step) { a1 = append(a1, run.ID) })
	stop2 := r.watchApp("org", "t", "o2", func(run domain.Run, _ domain.Step) { a2 = append(a2, run.ID) })
	step := domain.StepPlanned.Step()
	r.publish(domain.Run{ID: "r1", Org: "org", TenantID: "t", AppObjectID: "o1"}, step)
	r.publish(domain.Run{ID: "r2", Org: "org", TenantID: "t", AppObjectID: "o2"}, step)
	stop1()
	r.publish(domain.Run{ID: "r3", Org: "org", TenantID: "t", AppObjectID: "o1"}, step)
	stopAll()
	stop2()
	r.publish(domain.Run{ID: "r4", Org: "org", TenantID: "t", AppObjectID: "o2"}, step)
	require.Equal(t, []string{"r1", "r2", "r3"}, all)
	require.Equal(t, []string{"r1"}, a1)
	require.Equal(t, []string{"r2"}, a2)
	require.Empty(t, r.byApp, "stopped observers are forgotten")
}
