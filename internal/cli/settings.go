package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
)

// settingFields are what --clear names.
var settingFields = []string{"lifetime", "renew-before", "overlap", "enabled", "notify", "keyvault-url", "keyvault-secret", "all"}

func newAppsSettingsCmd() *cobra.Command {
	var (
		cf                           configFlag
		out                          outputFlag
		lifetime, renewBefore, overl string
		enabled, notify              bool
		vaultURL, vaultSecret        string
		clear                        []string
	)
	c := &cobra.Command{
		Use:   "settings APP [--lifetime 30d] [--renew-before 36h] [--overlap 24h] [--enabled=true|false] [--notify=true|false] [--keyvault-url URL] [--keyvault-secret NAME] [--clear FIELD]",
		Short: "Show or change one application's own settings, layered over its policy",
		Long: `Print the settings rotor uses for APP (by display name, app id or object id),
each with its source: the governing policy, or this application's own
setting. With flags, change this application's settings and print the result:
the policy itself is not changed (one provisioned from rotor.yaml stays as the
file says), and settings never make an application no policy selects governed.

A flag sets a value here; --clear FIELD (repeatable: lifetime, renew-before,
overlap, enabled, notify, keyvault-url, keyvault-secret, or all) inherits the
policy's value again. Durations are spelt as in rotor.yaml (30d, 36h). The
lifetime must be 1d to the tenant's limit (2y when rotor does not know it),
renew-before and overlap shorter than it. The Key Vault settings replace the
vault and secret name of the policy's first Key Vault sink for APP only.
'rotor explain APP' shows every setting the chain of checks used.`,
		Example: `  rotor apps settings web-storefront
  rotor apps settings web-storefront --lifetime 30d --renew-before 36h
  rotor apps settings web-storefront --enabled=false
  rotor apps settings web-storefront --clear lifetime --clear renew-before -o json`,
		Args: exactArgs(1, "APP (a display name, app id or object id)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(cmd); err != nil {
				return err
			}
			for _, f := range clear {
				if !slices.Contains(settingFields, f) {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--clear %q: name one of %s", f, strings.Join(settingFields, ", "))}
				}
			}
			flags := cmd.Flags()
			change := len(clear) > 0
			for _, f := range settingFields[:7] {
				change = change || flags.Changed(f)
			}
			dur := func(flag, v string) (*time.Duration, error) {
				d, err := config.ParseDuration(v)
				if err != nil {
					return nil, &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--%s: %w", flag, err)}
				}
				return &d, nil
			}
			srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "settings")
			if err != nil {
				return err
			}
			defer srv.Close()
			sc := scope(srv)
			v, err := srv.App().GetApplicationSettings(cmd.Context(), sc, args[0])
			if err != nil {
				return explainError(err)
			}
			if change {
				set := v.Stored
				if flags.Changed("lifetime") {
					if set.Lifetime, err = dur("lifetime", lifetime); err != nil {
						return err
					}
				}
				if flags.Changed("renew-before") {
					if set.RenewBefore, err = dur("renew-before", renewBefore); err != nil {
						return err
					}
				}
				if flags.Changed("overlap") {
					if set.Overlap, err = dur("overlap", overl); err != nil {
						return err
					}
				}
				if flags.Changed("enabled") {
					set.Enabled = &enabled
				}
				if flags.Changed("notify") {
					set.Notify = &notify
				}
				if flags.Changed("keyvault-url") {
					set.KeyVaultURL = &vaultURL
				}
				if flags.Changed("keyvault-secret") {
					set.KeyVaultSecret = &vaultSecret
				}
				for _, f := range clear {
					switch f {
					case "lifetime":
						set.Lifetime = nil
					case "renew-before":
						set.RenewBefore = nil
					case "overlap":
						set.Overlap = nil
					case "enabled":
						set.Enabled = nil
					case "notify":
						set.Notify = nil
					case "keyvault-url":
						set.KeyVaultURL = nil
					case "keyvault-secret":
						set.KeyVaultSecret = nil
					case "all":
						set = app.ApplicationSettings{}
					}
				}
				v, err = srv.App().UpdateApplicationSettings(cmd.Context(), sc, v.Application.ObjectID, set)
				var inv *app.InvalidError
				if errors.As(err, &inv) {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--%s: %s", strings.ReplaceAll(inv.Field, "_", "-"), inv.Message)}
				}
				if err != nil {
					return explainError(err)
				}
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			printSettings(cmd, v)
			return nil
		},
	}
	cf.register(c)
	out.register(c)
	fl := c.Flags()
	fl.StringVar(&lifetime, "lifetime", "", "lifetime of each new secret (e.g. 30d)")
	fl.StringVar(&renewBefore, "renew-before", "", "rotate this long before the secret ends (e.g. 36h)")
	fl.StringVar(&overl, "overlap", "", "how long the previous secret stays valid after a rotation (e.g. 24h)")
	fl.BoolVar(&enabled, "enabled", false, "rotate this application (true) or not (false)")
	fl.BoolVar(&notify, "notify", false, "expiry notifications on or off")
	fl.StringVar(&vaultURL, "keyvault-url", "", "the vault the Key Vault sink writes to for this application")
	fl.StringVar(&vaultSecret, "keyvault-secret", "", "the secret name the Key Vault sink writes for this application")
	fl.StringArrayVar(&clear, "clear", nil, "inherit this field from the policy again (repeatable; all clears every one)")
	return c
}

func printSettings(cmd *cobra.Command, v *app.SettingsView) {
	w := cmd.OutOrStdout()
	if v.Policy != "" {
		fmt.Fprintf(w, "%s: governed by policy %q\n\n", v.Application.Name, v.Policy)
	} else {
		fmt.Fprintf(w, "%s: no policy selects it\n\n", v.Application.Name)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE\tPOLICY SAYS")
	for _, s := range []struct {
		name string
		v    app.Setting
	}{{"enabled", v.Enabled}, {"notify", v.Notify}, {"lifetime", v.Lifetime}, {"renew-before", v.RenewBefore}, {"overlap", v.Overlap},
		{"keyvault-url", v.KeyVaultURL}, {"keyvault-secret", v.KeyVaultSecret}} {
		src := map[string]string{app.SourceApplication: "set here", app.SourcePolicy: "policy", app.SourceNone: "-"}[s.v.Source]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.name, dash(s.v.Value), src, dash(s.v.Policy))
	}
	_ = tw.Flush()
	for _, n := range v.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if v.UpdatedBy != "" {
		fmt.Fprintf(w, "\nLast set by %s at %s.\n", v.UpdatedBy, v.UpdatedAt.Local().Format("2006-01-02 15:04"))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
