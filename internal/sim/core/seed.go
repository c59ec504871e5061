package core

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // customKeyIdentifier is a SHA-1 thumbprint.
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// SeedSpec is a parsed seed: the demo world or a bulk world for load tests.
type SeedSpec struct {
	// Demo selects the hand-written demo world (contoso and fabrikam).
	Demo bool
	// Apps is the number of applications per tenant (bulk).
	Apps int
	// Tenants is the number of tenants (bulk).
	Tenants int
	// Expiring is the window every bulk password expires within.
	Expiring time.Duration
	// Replication is the tenants' replication delay (bulk; 0 by default so
	// load tests measure rotor, not the wait).
	Replication time.Duration
	// Unowned is how many bulk applications per tenant the rotation
	// identity does not own (nobody does), spread evenly; owned=N in the
	// spec sets it to apps − N. 0: it owns them all.
	Unowned int
}

// Bulk seed bounds: enough for any load test, small enough that a typo
// cannot exhaust memory.
const (
	maxBulkApps    = 1_000_000
	maxBulkTenants = 100
)

// ParseSeed parses "demo" or "apps=N,tenants=T,expiring=D,replication=D,owned=M"
// (every key optional; defaults apps=50, tenants=1, expiring=1h,
// replication=0, owned=apps).
func ParseSeed(spec string) (SeedSpec, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "demo" {
		return SeedSpec{Demo: true}, nil
	}
	out := SeedSpec{Apps: 50, Tenants: 1, Expiring: time.Hour}
	seen := map[string]bool{}
	owned := -1
	for _, part := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return SeedSpec{}, fmt.Errorf("seed %q: want demo or key=value pairs (apps, tenants, expiring, replication, owned)", spec)
		}
		if seen[k] {
			return SeedSpec{}, fmt.Errorf("seed: %s given twice", k)
		}
		seen[k] = true
		switch k {
		case "apps", "tenants", "owned":
			n, err := strconv.Atoi(v)
			if err != nil {
				return SeedSpec{}, fmt.Errorf("seed: %s: %w", k, err)
			}
			if k == "owned" {
				if n < 0 {
					return SeedSpec{}, errors.New("seed: owned must not be negative")
				}
				owned = n
				continue
			}
			if k == "apps" {
				if n < 0 || n > maxBulkApps {
					return SeedSpec{}, fmt.Errorf("seed: apps must be between 0 and %d", maxBulkApps)
				}
				out.Apps = n
			} else {
				if n < 1 || n > maxBulkTenants {
					return SeedSpec{}, fmt.Errorf("seed: tenants must be between 1 and %d", maxBulkTenants)
				}
				out.Tenants = n
			}
		case "expiring", "replication":
			d, err := time.ParseDuration(v)
			if err != nil {
				return SeedSpec{}, fmt.Errorf("seed: %s: %w", k, err)
			}
			if k == "expiring" {
				if d <= 0 || d > 10*365*24*time.Hour {
					return SeedSpec{}, errors.New("seed: expiring must be positive and at most 10 years")
				}
				out.Expiring = d
			} else {
				if d < 0 || d > time.Hour {
					return SeedSpec{}, errors.New("seed: replication must be between 0 and 1h")
				}
				out.Replication = d
			}
		default:
			return SeedSpec{}, fmt.Errorf("seed: unknown key %q (want apps, tenants, expiring, replication, owned)", k)
		}
	}
	if owned > out.Apps {
		return SeedSpec{}, fmt.Errorf("seed: owned (%d) must be at most apps (%d)", owned, out.Apps)
	}
	if owned >= 0 {
		out.Unowned = out.Apps - owned
	}
	return out, nil
}

// SeedWorld builds the world a spec describes, with dates relative to now.
func SeedWorld(spec SeedSpec, now time.Time) (*World, error) {
	if spec.Demo {
		return seedDemo(now)
	}
	return seedBulk(spec, now)
}

// demoAppNames are the demo tenants' applications: the kind of estate a
// mid-sized company accretes, so the demo looks like a real inventory.
var demoAppNames = []string{
	"web-storefront", "web-checkout", "web-customer-portal", "web-admin-console",
	"web-marketing-site", "web-partner-portal", "api-orders", "api-inventory",
	"api-payments", "api-catalog", "api-shipping", "api-identity-bridge",
	"func-billing", "func-invoice-pdf", "func-image-resize", "func-webhook-relay",
	"batch-nightly-etl", "batch-month-end-close", "batch-data-export", "svc-notifications",
	"svc-search-indexer", "svc-recommendations", "svc-fraud-scoring", "svc-email-sender",
	"svc-audit-log", "legacy-crm-connector", "legacy-erp-bridge", "legacy-sftp-gateway",
	"mobile-ios-backend", "mobile-android-backend", "report-powerbi-embed", "report-finance-dashboard",
	"int-salesforce-sync", "int-servicenow-connector", "int-sap-gateway", "ops-backup-runner",
	"ops-cost-exporter", "ops-log-shipper", "dev-sandbox-tools", "qa-load-generator",
}

// expiryBand is one of the demo's credential health states.
type expiryBand struct {
	name string
	end  time.Duration // end date relative to now
}

// demoBands cover every state the UI distinguishes: expired, expiring within
// the hour, within 7, 30 and 90 days, and healthy.
var demoBands = []expiryBand{
	{"expired", -3 * 24 * time.Hour},
	{"hour", 40 * time.Minute},
	{"week", 5 * 24 * time.Hour},
	{"month", 20 * 24 * time.Hour},
	{"quarter", 60 * 24 * time.Hour},
	{"healthy", 400 * 24 * time.Hour},
}

var demoPasswordNames = []string{"prod", "deploy-pipeline", "created by az cli", "terraform", "rotated", ""}

// seedDemo builds contoso (with a 90-day password lifetime policy) and
// fabrikam.
func seedDemo(now time.Time) (*World, error) {
	w := NewWorld()
	for ti, name := range []string{"contoso", "fabrikam"} {
		t, err := seedDemoTenant(ti, name, now)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", name, err)
		}
		w.AddTenant(t)
	}
	return w, nil
}

func seedDemoTenant(ti int, name string, now time.Time) (*Tenant, error) {
	ids := uuidSource{r: rand.Reader}
	t := NewTenant(ids.next(), name)
	t.ReplicationDelay = 3 * time.Second
	if name == "contoso" {
		t.Policy = &AppManagementPolicy{
			ID: ids.next(), DisplayName: "Default app management policy",
			MaxPasswordLifetime: 90 * 24 * time.Hour,
		}
	}
	rotationSP, err := addRotationIdentity(t, &ids, now)
	if err != nil {
		return nil, err
	}
	miSP := addManagedIdentity(t, &ids)
	deployer := addAppWithSP(t, &ids, "ci-deployer", now.AddDate(-2, 0, 0))
	deployerSP := t.SPByAppID(deployer.AppID)
	consumerSP := addConsumerIdentity(t, &ids)
	addHiddenVault(t, addVault(t, &ids, rotationSP, miSP, consumerSP))
	if t.UserPasswords, err = seedDemoPeople(t, &ids, now); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}

	certs := 0
	for i, appName := range demoAppNames {
		created := now.AddDate(0, 0, -(200 + 7*i))
		app := addAppWithSP(t, &ids, appName, created)
		switch {
		case i%8 == 5: // nobody owns it: rotor can see it but not fix it
		case i%8 == 3 || i%8 == 6:
			app.Owners = []string{deployerSP.ObjectID}
		case i%4 == 0:
			app.Owners = []string{rotationSP.ObjectID, deployerSP.ObjectID}
		default:
			app.Owners = []string{rotationSP.ObjectID}
		}
		certOnly := i%10 == 7
		if !certOnly {
			band := demoBands[(i+ti)%len(demoBands)]
			app.Passwords = append(app.Passwords, demoPassword(&ids, band, demoPasswordNames[i%len(demoPasswordNames)], i, now))
			if i%3 == 0 { // an overlapping newer secret, as after a manual rotation
				app.Passwords = append(app.Passwords, demoPassword(&ids, demoBands[len(demoBands)-1], "rotated", i, now))
			}
		}
		// Apps rotor has rotated before (its secrets are named rotor:<run
		// id>): one due again within the hour, one healthy. The demo then
		// shows renewals and retirements, not only first adoptions.
		if app.OwnedBy(rotationSP.ObjectID) && !certOnly {
			switch i % 5 {
			case 2:
				app.Passwords = append(app.Passwords, demoRotorPassword(&ids, now, now.Add(40*time.Minute)))
			case 4:
				app.Passwords = append(app.Passwords, demoRotorPassword(&ids, now, now.Add(25*24*time.Hour)))
			}
		}
		if certOnly || i%4 == 1 {
			band := demoBands[(certs+ti)%len(demoBands)] // every band gets certificates
			certs++
			k, err := demoKey(&ids, appName, band, i, now)
			if err != nil {
				return nil, fmt.Errorf("certificate for %s: %w", appName, err)
			}
			app.Keys = append(app.Keys, k)
		}
	}
	demoOwners(t)
	return t, nil
}

// demoAppOwners are the demo applications people own (besides the
// service principals that do), so that an organization showing members
// only the applications they own in Entra (owned_apps_only) has something
// to show: oscar (an Operator) owns two applications rotor manages, vera
// (a Viewer) one; ada, gus and nia own none.
var demoAppOwners = map[string][]string{
	"oscar": {"web-checkout", "web-customer-portal"},
	"vera":  {"api-catalog"},
}

func demoOwners(t *Tenant) {
	for _, u := range t.UsersInOrder() {
		name, _, _ := strings.Cut(u.UserPrincipalName, "@")
		for _, appName := range demoAppOwners[name] {
			for _, a := range t.Apps {
				if a.DisplayName == appName && !a.OwnedBy(u.ObjectID) {
					a.Owners = append(a.Owners, u.ObjectID)
				}
			}
		}
	}
}

// demoPassword is a password in band whose value nobody knows: seeded
// secrets are only ever listed, never used.
func demoPassword(ids *uuidSource, band expiryBand, display string, i int, now time.Time) *Password {
	end := now.Add(band.end)
	start := minTime(end.AddDate(-1, 0, 0), now.AddDate(0, 0, -(30+3*i)))
	p := &Password{KeyID: ids.next(), DisplayName: display, Start: start, End: end, AddedAt: start}
	var b [32]byte
	_, _ = rand.Read(b[:])
	p.SecretHash = b
	p.Hint = hint(b[:])
	return p
}

// demoRotorPassword is a secret an earlier rotor run made, 30 days long.
func demoRotorPassword(ids *uuidSource, now, end time.Time) *Password {
	start := end.AddDate(0, 0, -30)
	if start.After(now) {
		start = now
	}
	p := &Password{KeyID: ids.next(), DisplayName: "rotor:" + ids.next(), Start: start, End: end, AddedAt: start}
	var b [32]byte
	_, _ = rand.Read(b[:])
	p.SecretHash = b
	p.Hint = hint(b[:])
	return p
}

func demoKey(ids *uuidSource, appName string, band expiryBand, i int, now time.Time) (*Key, error) {
	end := now.Add(band.end)
	start := minTime(end.AddDate(-1, 0, 0), now.AddDate(0, 0, -(60+5*i)))
	key, err := pooledRSAKey(i)
	if err != nil {
		return nil, err
	}
	cert, err := selfSignedCert(key, "CN="+appName, start, end)
	if err != nil {
		return nil, err
	}
	return NewKey(ids.next(), "CN="+appName, cert, start), nil
}

// NewKey wraps cert as an AsymmetricX509Cert keyCredential valid for the
// certificate's lifetime, added at addedAt.
func NewKey(keyID, displayName string, cert *x509.Certificate, addedAt time.Time) *Key {
	s1 := sha1.Sum(cert.Raw) //nolint:gosec // Entra's customKeyIdentifier.
	s256 := sha256.Sum256(cert.Raw)
	return &Key{
		KeyID: keyID, DisplayName: displayName, Type: "AsymmetricX509Cert", Usage: "Verify",
		Start: cert.NotBefore, End: cert.NotAfter, Cert: cert,
		ThumbprintSHA1: s1[:], ThumbprintS256: s256[:], AddedAt: addedAt,
	}
}

// addRotationIdentity creates rotor's own app and service principal with
// Application.ReadWrite.OwnedBy and Application.Read.All and one client
// secret, whose value goes into sim.json. The app is deliberately not owned
// by its own service principal: in Entra an OwnedBy identity that owns
// itself can mint its own credentials, which is what admins avoid.
func addRotationIdentity(t *Tenant, ids *uuidSource, now time.Time) (*ServicePrincipal, error) {
	app := addAppWithSP(t, ids, "rotor-rotation", now.AddDate(0, -6, 0))
	sp := t.SPByAppID(app.AppID)
	sp.AppRoles = []string{RoleReadWriteOwned, RoleReadAll}
	secret, err := NewSecretText()
	if err != nil {
		return nil, fmt.Errorf("rotation secret: %w", err)
	}
	start := now.AddDate(0, 0, -30)
	app.Passwords = append(app.Passwords, &Password{
		KeyID: ids.next(), DisplayName: "rotor", Hint: secret[:3],
		Start: start, End: now.AddDate(0, 0, 335), SecretHash: HashSecret(secret), AddedAt: start,
	})
	t.RotationClientID = app.AppID
	t.RotationSecret = secret
	return sp, nil
}

// addManagedIdentity creates the tenant's system-assigned managed identity:
// a service principal with no application, as in Entra.
func addManagedIdentity(t *Tenant, ids *uuidSource) *ServicePrincipal {
	sp := &ServicePrincipal{
		ObjectID: ids.next(), AppID: ids.next(), DisplayName: "app-rotor-" + t.Name,
		AppRoles: []string{RoleReadAll}, ManagedIdentity: true,
	}
	t.AddSP(sp)
	t.ManagedIdentityClientID = sp.AppID
	return sp
}

// addConsumerIdentity creates the consumer: a user-assigned managed
// identity with no Graph permissions, standing for the service that reads
// the secrets rotor writes to a vault (an App Service reading its client
// secret through a Key Vault reference, say). A managed identity rather
// than an app registration, so it adds nothing to the applications rotor
// inventories; tokens for it come from the managed identity endpoint with
// client_id, or from MintToken.
func addConsumerIdentity(t *Tenant, ids *uuidSource) *ServicePrincipal {
	sp := &ServicePrincipal{
		ObjectID: ids.next(), AppID: ids.next(), DisplayName: "id-consumer-" + t.Name,
		ManagedIdentity: true,
	}
	t.AddSP(sp)
	t.ConsumerClientID = sp.AppID
	return sp
}

// Default vault grants. rotor's identities (the rotation identity and the
// managed identity rotor runs as in Azure) get list, set and recover: rotor
// writes new versions, reads version properties and the deleted-secret
// list, and recovers its own soft-deleted secret before writing to it. Its
// README promises it never reads a secret value, so the simulator makes any
// attempt to do so fail (get, which get deleted secret needs too, is not
// granted). The consumer gets get and list, what an application reading its
// own secret needs. Nobody gets delete or purge: a test that needs them
// grants them explicitly.
//
// For certificates rotor gets get, list, create, import, update and
// recover (it imports the certificates it rotates, reads their public part
// and tags to know what it owns, may have Key Vault issue them, and
// recovers its own soft-deleted certificate as it does secrets), and for keys get,
// list, create and sign (a key that never leaves the vault signs the
// certificate rotor registers). Neither lets it read a private key: that
// takes secrets get on the certificate's backing secret, which only the
// consumer has.
var (
	rotorSecretPermissions      = []SecretPermission{SecretList, SecretSet, SecretRecover}
	consumerSecretPermissions   = []SecretPermission{SecretGet, SecretList}
	rotorKeyPermissions         = []KeyPermission{KeyGet, KeyList, KeyCreate, KeySign}
	rotorCertificatePermissions = []CertificatePermission{CertificateGet, CertificateList, CertificateCreate,
		CertificateImport, CertificateUpdate, CertificateRecover}
	consumerCertificatePermissions = []CertificatePermission{CertificateGet, CertificateList}
)

// addVault seeds the tenant's subscription and rotor's vault in it:
// kv-<tenant> in resource group rg-rotor, on which rotor's identities hold
// Reader (so ARM lists it to them) besides their secret permissions. It
// returns the subscription, for more vaults.
func addVault(t *Tenant, ids *uuidSource, rotation, mi, consumer *ServicePrincipal) *Subscription {
	sub := &Subscription{ID: ids.next(), DisplayName: "rotor-" + t.Name, TenantID: t.ID, State: "Enabled"}
	t.Subscriptions = append(t.Subscriptions, sub)
	name := "kv-" + t.Name
	v := &Vault{Name: name, TenantID: t.ID, Secrets: map[string]*VaultSecret{},
		SubscriptionID: sub.ID, ResourceGroup: "rg-rotor", Location: demoLocation, Tags: map[string]string{"env": "demo"}}
	v.Grant(rotation.ObjectID, rotorSecretPermissions...)
	v.Grant(mi.ObjectID, rotorSecretPermissions...)
	v.Grant(consumer.ObjectID, consumerSecretPermissions...)
	for _, oid := range []string{rotation.ObjectID, mi.ObjectID} {
		v.GrantKeys(oid, rotorKeyPermissions...)
		v.GrantCertificates(oid, rotorCertificatePermissions...)
	}
	v.GrantCertificates(consumer.ObjectID, consumerCertificatePermissions...)
	t.Vaults[name] = v
	t.AssignRole(rotation.ObjectID, RoleReader, v.VaultResourceID())
	t.AssignRole(mi.ObjectID, RoleReader, v.VaultResourceID())
	return sub
}

// demoLocation is the region the seeded vaults are in.
const demoLocation = "westeurope"

// addHiddenVault seeds kv-<tenant>-finance in the same subscription, in
// resource group rg-finance: nobody holds a role on it or any secret
// permission, so ARM must leave it out of what rotor's identities see.
func addHiddenVault(t *Tenant, sub *Subscription) {
	name := "kv-" + t.Name + "-finance"
	t.Vaults[name] = &Vault{Name: name, TenantID: t.ID, Secrets: map[string]*VaultSecret{},
		SubscriptionID: sub.ID, ResourceGroup: "rg-finance", Location: demoLocation, Tags: map[string]string{"team": "finance"}}
}

// addAppWithSP registers an application and its service principal (every
// seeded app can sign in, so a freshly rotated secret can be verified).
func addAppWithSP(t *Tenant, ids *uuidSource, name string, created time.Time) *Application {
	app := &Application{
		ObjectID: ids.next(), AppID: ids.next(), DisplayName: name,
		SignInAudience: "AzureADMyOrg", CreatedDateTime: created,
	}
	t.AddApp(app)
	t.AddSP(&ServicePrincipal{ObjectID: ids.next(), AppID: app.AppID, DisplayName: name})
	return app
}

// seedBulk builds T tenants of N apps, owned by the rotation identity
// (but for spec.Unowned of them, spread evenly), each with one password
// expiring within spec.Expiring, spread evenly. It
// must handle N=100000 in seconds: ids and secret hashes come from a
// ChaCha8 stream seeded from crypto/rand (unpredictable, and cheap), there
// are no certificates, and no secret values are kept.
func seedBulk(spec SeedSpec, now time.Time) (*World, error) {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("seed randomness: %w", err)
	}
	stream := mrand.NewChaCha8(seed)
	ids := uuidSource{r: stream}
	w := NewWorld()
	for ti := 1; ti <= spec.Tenants; ti++ {
		t := NewTenant(ids.next(), "tenant"+strconv.Itoa(ti))
		t.ReplicationDelay = spec.Replication
		t.Apps = make([]*Application, 0, spec.Apps+2)
		rotationSP, err := addRotationIdentity(t, &ids, now)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
		}
		miSP := addManagedIdentity(t, &ids)
		consumerSP := addConsumerIdentity(t, &ids)
		addVault(t, &ids, rotationSP, miSP, consumerSP)
		start := now.AddDate(0, 0, -30)
		for i := 0; i < spec.Apps; i++ {
			app := addAppWithSP(t, &ids, fmt.Sprintf("bulk-app-%06d", i+1), start)
			if owned := spec.Apps - spec.Unowned; (i+1)*owned/spec.Apps > i*owned/spec.Apps {
				app.Owners = []string{rotationSP.ObjectID}
			}
			end := now.Add(time.Duration(float64(spec.Expiring) * float64(i+1) / float64(spec.Apps)))
			p := &Password{KeyID: ids.next(), DisplayName: "bulk", Start: start, End: end, AddedAt: start}
			fillRandom(stream, p.SecretHash[:])
			p.Hint = hint(p.SecretHash[:])
			app.Passwords = []*Password{p}
		}
		w.AddTenant(t)
	}
	return w, nil
}

func fillRandom(c *mrand.ChaCha8, b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, c.Uint64())
		b = b[8:]
	}
	if len(b) > 0 {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], c.Uint64())
		copy(b, tail[:])
	}
}

// uuidSource makes random (version 4) UUIDs from a reader.
type uuidSource struct {
	r interface{ Read([]byte) (int, error) }
}

func (u *uuidSource) next() string {
	id, err := uuid.NewRandomFromReader(u.r)
	if err != nil {
		// crypto/rand does not fail on supported platforms; ChaCha8 never does.
		return uuid.NewString()
	}
	return id.String()
}

// hint returns a three-character hint for a seeded secret nobody knows.
func hint(b []byte) string {
	n := len(secretPrefixAlphabet)
	return string([]byte{secretPrefixAlphabet[int(b[0])%n], secretPrefixAlphabet[int(b[1])%n], secretPrefixAlphabet[int(b[2])%n]})
}

// The demo's certificates need RSA keys, and RSA key generation is slow, so
// a small process-wide pool is shared by every seeded certificate.
var rsaPool struct {
	once sync.Once
	keys []*rsa.PrivateKey
	err  error
}

const rsaPoolSize = 3

func pooledRSAKey(i int) (*rsa.PrivateKey, error) {
	rsaPool.once.Do(func() {
		for range rsaPoolSize {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				rsaPool.err = fmt.Errorf("generate RSA key: %w", err)
				return
			}
			rsaPool.keys = append(rsaPool.keys, k)
		}
	})
	if rsaPool.err != nil {
		return nil, rsaPool.err
	}
	return rsaPool.keys[i%len(rsaPool.keys)], nil
}

// selfSignedCert makes an RSA certificate like the ones `az ad app
// credential reset --create-cert` produces.
func selfSignedCert(key *rsa.PrivateKey, subject string, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: strings.TrimPrefix(subject, "CN=")},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
