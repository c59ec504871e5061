package app

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// OwnedSet is the applications a person may see when their organization
// lets members see only the applications they own in Entra
// (OrgSettings.OwnedAppsOnly, docs/adr/0030): the object ids Graph's
// /me/ownedObjects listed when they signed in. A nil *OwnedSet is no
// restriction (Admins, API keys, bearer tokens, the CLI); an empty one
// owns nothing and sees nothing.
type OwnedSet struct {
	ids    map[string]struct{}
	sorted []string
}

// NewOwnedSet is the set of ids (object ids, compared case-insensitively:
// Graph's GUIDs). It is never nil, even for no ids.
func NewOwnedSet(ids []string) *OwnedSet {
	o := &OwnedSet{ids: make(map[string]struct{}, len(ids)), sorted: []string{}}
	for _, id := range ids {
		id = strings.ToLower(id)
		if _, dup := o.ids[id]; id == "" || dup {
			continue
		}
		o.ids[id] = struct{}{}
		o.sorted = append(o.sorted, id)
	}
	slices.Sort(o.sorted)
	return o
}

// Has reports whether the application with objectID may be seen: always
// for a nil set.
func (o *OwnedSet) Has(objectID string) bool {
	if o == nil {
		return true
	}
	_, ok := o.ids[strings.ToLower(objectID)]
	return ok
}

// IDs are the object ids, sorted, as a store filter: nil (no filter) for
// a nil set, a non-nil list (maybe empty: nothing matches) otherwise.
func (o *OwnedSet) IDs() []string {
	if o == nil {
		return nil
	}
	return slices.Clone(o.sorted)
}

// Len is how many applications the set holds (0 for nil).
func (o *OwnedSet) Len() int {
	if o == nil {
		return 0
	}
	return len(o.sorted)
}

// getApp finds the application ref names, as the scope may see it: one
// outside the scope's owned set is "no application", exactly as one that
// does not exist (404, never 403: a member learns nothing of
// applications they do not own).
func (s *Service) getApp(ctx context.Context, scope Scope, ref string) (*domain.Application, error) {
	a, err := s.store.GetApplication(ctx, scope.Org, ref)
	if scope.Owned != nil && errors.Is(err, store.ErrAmbiguous) {
		// The name may be shared with applications the person does not
		// own: decide among theirs alone, and name only theirs.
		return s.getOwnedByName(ctx, scope, ref, err)
	}
	if err != nil {
		return nil, lookupError("application", ref, err)
	}
	if !scope.Owned.Has(a.ObjectID) {
		return nil, &NotFoundError{Kind: "application", Ref: ref, Err: store.ErrNotFound}
	}
	return a, nil
}

// getOwnedByName resolves an ambiguous reference among the scope's owned
// applications: those whose object id, app id or display name is ref.
func (s *Service) getOwnedByName(ctx context.Context, scope Scope, ref string, ambiguous error) (*domain.Application, error) {
	var amb *store.AmbiguousError
	if !errors.As(ambiguous, &amb) {
		return nil, lookupError("application", ref, ambiguous)
	}
	var mine []string
	for _, id := range amb.ObjectIDs {
		if scope.Owned.Has(id) {
			mine = append(mine, id)
		}
	}
	switch len(mine) {
	case 0:
		return nil, &NotFoundError{Kind: "application", Ref: ref, Err: store.ErrNotFound}
	case 1:
		a, err := s.store.GetApplication(ctx, scope.Org, mine[0])
		if err != nil {
			return nil, lookupError("application", ref, err)
		}
		return a, nil
	}
	// Not the store's error: it names the applications of others.
	return nil, &AmbiguousError{Ref: amb.Ref, Field: amb.Field, ObjectIDs: mine,
		Err: &store.AmbiguousError{Ref: amb.Ref, Field: amb.Field, ObjectIDs: mine}}
}

// visibleRun is the run as the scope may see it: a run of an application
// outside its owned set is "no run" (404), as one that does not exist.
func visibleRun(scope Scope, r *domain.Run, id string) error {
	if !scope.Owned.Has(r.AppObjectID) {
		return &NotFoundError{Kind: "run", Ref: id, Err: store.ErrNotFound}
	}
	return nil
}
