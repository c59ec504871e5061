package keyvault

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/nametmpl"
)

// Setting keys of a "keyvault" sink spec.
const (
	KeyVaultURL    = "vault_url"
	KeySecret      = "secret"
	KeyAdopt       = "adopt"
	KeyContentType = "content_type"
	KeyConnection  = "connection"
	// KeyAs says what the sink writes: AsSecret (the default) or
	// AsCertificate (a Key Vault certificate, named by KeyCertificate).
	KeyAs = "as"
	// KeyCertificate is the certificate name template of an
	// as: certificate sink, in place of KeySecret.
	KeyCertificate = "certificate"
	// KeyCertificateFormat is how a certificate credential is stored:
	// FormatPEM (the default) or FormatPKCS12.
	KeyCertificateFormat = "certificate_format"
)

// Values of KeyAs and KeyCertificateFormat.
const (
	AsSecret      = "secret"
	AsCertificate = "certificate"
	FormatPEM     = "pem"
	FormatPKCS12  = "pkcs12"
)

// Content types of a certificate stored as a secret, the ones Key Vault
// gives its own certificates' backing secrets: a PEM holding the private
// key (PKCS#8) and the chain, or a password-less PKCS#12 in base64.
const (
	ContentTypePEM    = "application/x-pem-file"
	ContentTypePKCS12 = "application/x-pkcs12"
)

// DefaultContentType is the content type rotor gives the secrets it writes
// when the spec sets none. Key Vault treats contentType as a free-form label
// (up to 255 characters) and consumers such as App Service Key Vault
// references and the Secrets Store CSI driver only look at it for
// certificates, so rotor says what the value is — a plain-text string — and
// leaves "which credential is this" to the rotor-* tags.
const DefaultContentType = "text/plain"

// maxContentType is Key Vault's limit on contentType.
const maxContentType = 255

// secretNamePattern is Key Vault's rule for object names.
var secretNamePattern = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

// TemplateData is what the secret name template sees: {{ .App.DisplayName }},
// {{ .App.AppID }}, {{ .App.ObjectID }}, {{ .TenantID }} and {{ .ClientID }}
// (the app id, under the name consumers' configuration usually gives it).
type TemplateData struct {
	App      domain.Application
	TenantID string
	ClientID string
}

// templateFuncs are the functions a secret name template may call.
var templateFuncs = template.FuncMap{
	"slug":  Slug,
	"lower": strings.ToLower,
}

// Slug turns s into a valid Key Vault name fragment: lower case, every run of
// characters outside [0-9a-z-] replaced by one '-', no leading or trailing
// '-'. "Payroll API (prod)_v2" becomes "payroll-api-prod-v2".
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		ok := (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z')
		if !ok {
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		b.WriteRune(r)
		dash = false
	}
	return strings.TrimSuffix(b.String(), "-")
}

// SpecError is a problem with one setting of a sink spec.
type SpecError struct {
	// Key is the setting, e.g. "vault_url"; empty for the spec as a whole.
	Key string
	Msg string
}

// Error names the setting.
func (e *SpecError) Error() string {
	if e.Key == "" {
		return "keyvault sink: " + e.Msg
	}
	return fmt.Sprintf("keyvault sink: %s: %s", e.Key, e.Msg)
}

// settings is a checked spec.
type settings struct {
	vaultURL    string
	nameTmpl    *template.Template
	nameSrc     string
	adopt       bool
	contentType string
	connection  string
	// contentTypeSet is whether the spec named a content type; if not, a
	// certificate stored as a secret gets its format's.
	contentTypeSet bool
	// as is AsSecret or AsCertificate; format FormatPEM or FormatPKCS12.
	as, format string
}

var knownKeys = []string{KeyAdopt, KeyAs, KeyCertificate, KeyCertificateFormat, KeyConnection, KeyContentType, KeySecret, KeyVaultURL}

// sampleApp renders templates in CheckSpec, which has no application: it
// catches unknown fields and literal characters Key Vault refuses.
var sampleApp = TemplateData{
	App: domain.Application{
		TenantID:    "00000000-0000-0000-0000-0000000000aa",
		ObjectID:    "00000000-0000-0000-0000-0000000000bb",
		AppID:       "00000000-0000-0000-0000-0000000000cc",
		DisplayName: "sample-app",
	},
	TenantID: "00000000-0000-0000-0000-0000000000aa",
	ClientID: "00000000-0000-0000-0000-0000000000cc",
}

// parseSpec checks every setting and returns all problems at once.
func parseSpec(spec domain.SinkSpec) (settings, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &SpecError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if spec.Type != Type {
		bad("", "spec type is %q, not %q", spec.Type, Type)
	}
	var unknown []string
	for k := range spec.Settings {
		if !slices.Contains(knownKeys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		errs = append(errs, &SpecError{Msg: fmt.Sprintf("unknown setting(s) %s (known: %s)",
			strings.Join(unknown, ", "), strings.Join(knownKeys, ", "))})
	}

	s := settings{contentType: DefaultContentType, as: AsSecret, format: FormatPEM}
	str := func(key string, required bool) (string, bool) {
		v, ok := spec.Settings[key]
		if !ok || v == nil {
			if required {
				bad(key, "is required")
			}
			return "", false
		}
		sv, ok := v.(string)
		if !ok {
			bad(key, "must be a string, got %T", v)
			return "", false
		}
		if strings.TrimSpace(sv) == "" {
			bad(key, "must not be empty")
			return "", false
		}
		return sv, true
	}

	if v, ok := str(KeyVaultURL, true); ok {
		u, err := checkVaultURL(v)
		if err != nil {
			bad(KeyVaultURL, "%v", err)
		} else {
			s.vaultURL = u
		}
	}
	if v, ok := str(KeyAs, false); ok {
		switch v {
		case AsSecret, AsCertificate:
			s.as = v
		default:
			bad(KeyAs, "is %q; want %q (the default) or %q", v, AsSecret, AsCertificate)
		}
	}
	if v, ok := str(KeyCertificateFormat, false); ok {
		switch v {
		case FormatPEM, FormatPKCS12:
			s.format = v
		default:
			bad(KeyCertificateFormat, "is %q; want %q (the default) or %q", v, FormatPEM, FormatPKCS12)
		}
	}
	nameKey, otherKey := KeySecret, KeyCertificate
	if s.as == AsCertificate {
		nameKey, otherKey = KeyCertificate, KeySecret
	}
	if _, ok := spec.Settings[otherKey]; ok {
		bad(otherKey, "does not apply to an %s: %s sink; name the target with %s", KeyAs, s.as, nameKey)
	}
	if v, ok := str(nameKey, true); ok {
		t, err := parseTemplate(v)
		if err != nil {
			bad(nameKey, "template %q %v", v, err)
		} else if name, err := render(t, sampleApp); err != nil {
			bad(nameKey, "template %q fails: %v (fields: .App.DisplayName, .App.AppID, .App.ObjectID, .TenantID, .ClientID; functions: slug, lower)", v, err)
		} else if !secretNamePattern.MatchString(name) {
			bad(nameKey, "%s", nameProblem(name, v, sampleApp.App))
		} else {
			s.nameTmpl, s.nameSrc = t, v
		}
	}
	if v, ok := spec.Settings[KeyAdopt]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			bad(KeyAdopt, "must be true or false, got %T %v", v, v)
		}
		s.adopt = b
	}
	if v, ok := str(KeyContentType, false); ok {
		if len(v) > maxContentType {
			bad(KeyContentType, "is %d characters long; Key Vault allows %d", len(v), maxContentType)
		}
		s.contentType, s.contentTypeSet = v, true
		if s.as == AsCertificate {
			bad(KeyContentType, "does not apply to an %s: %s sink: Key Vault gives the certificate's secret the content type of %s", KeyAs, AsCertificate, KeyCertificateFormat)
		}
	}
	if v, ok := str(KeyConnection, false); ok {
		s.connection = v
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return s, nil
}

// checkVaultURL accepts "https://<host>[:port][/]" and returns it with a
// trailing slash.
func checkVaultURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	switch {
	case u.Scheme != "https":
		return "", fmt.Errorf("%q must be an https URL such as https://myvault.vault.azure.net/", raw)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return "", fmt.Errorf("%q must not carry user information", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q must not have a query or fragment", raw)
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("%q must be the vault's base URL, without a path such as %s", raw, u.Path)
	}
	return "https://" + u.Host + "/", nil
}

// parseTemplate parses a secret name template. A name needs no loops or
// sub-templates, and refusing them means rendering a configured template
// always ends quickly (Go templates can range over an integer or recurse).
func parseTemplate(src string) (*template.Template, error) {
	t, err := template.New(KeySecret).Funcs(templateFuncs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("must not define templates (define/block)")
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return t, nil
	}
	if err := nametmpl.NoLoops(t.Tree.Root); err != nil {
		return nil, err
	}
	return t, nil
}

// maxRendered bounds a rendered name: far above Key Vault's 127, so the
// error can still show what the template made.
const maxRendered = 1024

// limitWriter fails once more than n bytes are written.
type limitWriter struct {
	b strings.Builder
	n int
}

var errTooLong = fmt.Errorf("renders more than %d characters", maxRendered)

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.n {
		return 0, errTooLong
	}
	return w.b.Write(p)
}

func render(t *template.Template, data TemplateData) (string, error) {
	b := &limitWriter{n: maxRendered}
	if err := t.Execute(b, data); err != nil {
		return "", err
	}
	// Trailing newlines come from YAML block scalars, not from intent.
	return strings.TrimSpace(b.b.String()), nil
}

// nameProblem explains why name (rendered from tmpl for app) is not a valid
// Key Vault secret name, and how to fix the template.
func nameProblem(name, tmpl string, app domain.Application) string {
	var why string
	switch {
	case name == "":
		why = "it is empty"
	case len(name) > 127:
		why = fmt.Sprintf("it is %d characters long (at most 127)", len(name))
	default:
		var badChars []string
		seen := map[rune]bool{}
		for _, r := range name {
			if (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == '-' || seen[r] {
				continue
			}
			seen[r] = true
			badChars = append(badChars, fmt.Sprintf("%q", r))
		}
		why = "it contains " + strings.Join(badChars, ", ")
	}
	return fmt.Sprintf("secret name %q (rendered from template %q for application %q) is not a valid Key Vault secret name: %s; "+
		"names are 1-127 characters of 0-9, a-z, A-Z and '-'. Fix the template, e.g. pipe names through slug: "+
		`"{{ .App.DisplayName | slug }}-secret"`,
		name, tmpl, app.DisplayName, why)
}
