package auth

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
)

// RoleBinding grants the rotor role Role in Organization to every token
// whose roles claim carries AppRole: an app role defined on rotor's API
// registration and assigned (by an Entra admin) to the calling
// application.
type RoleBinding struct {
	AppRole      string       `yaml:"app_role"`
	Organization domain.OrgID `yaml:"organization"`
	Role         app.Role     `yaml:"role"`
}

// RoleMap is the bindings, as rotor.yaml's api_auth.entra.roles lists
// them (docs/api-auth.md). A token needs at least one bound app role to
// be let in; roles nobody bound are ignored.
type RoleMap []RoleBinding

var orgPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate checks every binding: an app role, an organization id, a rotor
// role.
func (m RoleMap) Validate() error {
	var errs []error
	for i, b := range m {
		if b.AppRole == "" {
			errs = append(errs, fmt.Errorf("roles[%d]: app_role is required", i))
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

// Resolve returns the rotor roles appRoles grant, by organization: the
// most powerful where several bindings name one organization.
func (m RoleMap) Resolve(appRoles []string) map[domain.OrgID]app.Role {
	out := map[domain.OrgID]app.Role{}
	for _, have := range appRoles {
		for _, b := range m {
			if b.AppRole == have {
				out[b.Organization] = out[b.Organization].Max(b.Role)
			}
		}
	}
	return out
}
