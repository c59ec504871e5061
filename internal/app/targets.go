package app

import (
	"context"
	"fmt"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
)

// ApplicationTargets is where each sink of an application's policy
// delivers: its pinned target, and what the configuration names today.
type ApplicationTargets struct {
	Application ApplicationRef        `json:"application"`
	Policy      string                `json:"policy"`
	Targets     []rotation.TargetView `json:"targets"`
}

// Targets says where each sink of ref's policy delivers its new
// credentials, and whether a rename moved what the configuration names.
func (s *Service) Targets(ctx context.Context, scope Scope, ref string) (*ApplicationTargets, error) {
	object := ApplicationObject(ref)
	if err := s.begin(ctx, scope, ActionRead, object); err != nil {
		return nil, err
	}
	a, pol, err := s.governed(ctx, scope, ref)
	if err != nil {
		return nil, err
	}
	views, err := s.engine.Targets(ctx, scope.Org, *a, *pol)
	if err != nil {
		return nil, fmt.Errorf("targets of %s: %w", a.DisplayName, err)
	}
	return &ApplicationTargets{Application: refOf(a), Policy: pol.Name, Targets: views}, nil
}

// MoveTarget moves sink index (0-based) of ref's policy to what the
// configuration names today, after a rename: new credentials go there from
// now on, and the previous target keeps receiving them for one overlap so
// consumers still reading it have that long to move. A target that has not
// moved stays. It is audited like a rotation.
func (s *Service) MoveTarget(ctx context.Context, scope Scope, ref string, index int) (view rotation.TargetView, err error) {
	object := ApplicationObject(ref)
	defer func() { s.record(ctx, scope, ActionMoveTarget, object, err, nil) }()
	if err := s.begin(ctx, scope, ActionMoveTarget, object); err != nil {
		return view, err
	}
	a, pol, err := s.governed(ctx, scope, ref)
	if err != nil {
		return view, err
	}
	if index < 0 || index >= len(pol.Sinks) {
		return view, &InvalidError{Field: "sink", Message: fmt.Sprintf("policy %q has %d sink(s); name one from 1 to %d", pol.Name, len(pol.Sinks), len(pol.Sinks))}
	}
	return s.engine.MoveTarget(ctx, scope.Org, *a, *pol, index)
}

func (s *Service) governed(ctx context.Context, scope Scope, ref string) (*domain.Application, *domain.Policy, error) {
	a, err := s.getApp(ctx, scope, ref)
	if err != nil {
		return nil, nil, err
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, nil, fmt.Errorf("load policies: %w", err)
	}
	pol := pols.PolicyFor(*a)
	if pol == nil {
		return nil, nil, &NoPolicyError{App: refOf(a)}
	}
	return a, pol, nil
}
