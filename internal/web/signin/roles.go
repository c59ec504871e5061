package signin

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
)

// RoleBinding grants the rotor role Role in Organization to everyone whose
// ID token carries the app role AppRole (a value of an app role of
// rotor's sign-in registration, assigned to the user or to a group the
// user is in), or who is a member of the group with object id Group.
// Exactly one of AppRole and Group is set.
type RoleBinding struct {
	AppRole      string       `yaml:"app_role,omitempty"`
	Group        string       `yaml:"group,omitempty"`
	Organization domain.OrgID `yaml:"organization"`
	Role         app.Role     `yaml:"role"`
}

// RoleMap is the bindings, as rotor.yaml's sign_in.entra.roles lists them
// (docs/sign-in.md). A person needs at least one binding to get in; app
// roles and groups nobody bound are ignored.
type RoleMap []RoleBinding

var (
	orgPattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// Validate checks every binding.
func (m RoleMap) Validate() error {
	var errs []error
	for i, b := range m {
		switch {
		case (b.AppRole == "") == (b.Group == ""):
			errs = append(errs, fmt.Errorf("roles[%d]: set exactly one of app_role and group", i))
		case b.Group != "" && !guidPattern.MatchString(b.Group):
			errs = append(errs, fmt.Errorf("roles[%d]: group %q is not a group object id (a GUID); names are not unique in Entra", i, b.Group))
		}
		if !orgPattern.MatchString(string(b.Organization)) {
			errs = append(errs, fmt.Errorf("roles[%d]: organization %q is not an organization id", i, b.Organization))
		}
		if _, err := app.ParseRole(string(b.Role)); err != nil {
			errs = append(errs, fmt.Errorf("roles[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Resolve returns the rotor roles a person's app roles and groups grant,
// by organization: the most powerful where several bindings name one.
// Group ids compare case-insensitively, as Entra's object ids do.
func (m RoleMap) Resolve(appRoles, groups []string) map[domain.OrgID]app.Role {
	out := map[domain.OrgID]app.Role{}
	for _, b := range m {
		hit := (b.AppRole != "" && slices.Contains(appRoles, b.AppRole)) ||
			(b.Group != "" && slices.ContainsFunc(groups, func(g string) bool { return equalFoldASCII(g, b.Group) }))
		if hit {
			out[b.Organization] = out[b.Organization].Max(b.Role)
		}
	}
	return out
}

// UsesGroups reports whether any binding names a group: only then does
// sign-in need the user's groups (and, for a user in too many, Graph's
// GroupMember.Read.All).
func (m RoleMap) UsesGroups() bool {
	return slices.ContainsFunc(m, func(b RoleBinding) bool { return b.Group != "" })
}

// GrantsAdmin reports whether some binding makes someone admin of org:
// when none does, the organization gets a break-glass admin
// (breakglass.Ensure).
func (m RoleMap) GrantsAdmin(org domain.OrgID) bool {
	return slices.ContainsFunc(m, func(b RoleBinding) bool { return b.Organization == org && b.Role == app.RoleAdmin })
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
