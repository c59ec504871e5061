package keyvault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file is the keys data plane: create (RSA, EC and, in a premium
// vault, their HSM kinds), get, list, list versions, update, sign and
// verify over a digest, and soft delete, with the keys permissions of the
// vault's access policy. A key's private half never leaves the simulator
// through this API, as in Key Vault: get returns the public JSON Web Key.

// kvKeyAttributes are a key version's attributes: a version's, and
// whether the key can be exported.
type kvKeyAttributes struct {
	kvAttributes
	Exportable bool `json:"exportable"`
}

// kvJWK is a public JSON Web Key as Key Vault returns it; byte fields are
// base64url without padding.
type kvJWK struct {
	KID    string   `json:"kid"`
	Kty    string   `json:"kty"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
}

// kvKeyBundle is a KeyBundle, a key list item (kid, no key) or a deleted key.
type kvKeyBundle struct {
	Key        *kvJWK            `json:"key,omitempty"`
	KID        string            `json:"kid,omitempty"`
	Attributes kvKeyAttributes   `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	Managed    bool              `json:"managed,omitempty"`
	kvDeletedInfo
}

// b64u is base64url without padding, Key Vault's encoding of bytes.
var b64u = base64.RawURLEncoding

// decodeB64u accepts base64url with or without padding.
func decodeB64u(s string) ([]byte, error) { return b64u.DecodeString(strings.TrimRight(s, "=")) }

// routeKeys dispatches /keys and /deletedkeys. An empty version segment
// (the SDK's "/keys/{name}/") or none ("/keys/{name}/sign") is the latest.
func (c *kvCall) routeKeys(segs []string) {
	m := c.r.Method
	var op func()
	var need core.KeyPermission
	n := len(segs)
	switch {
	case segs[0] == "keys" && n == 1:
		if m == http.MethodGet {
			op, need = func() { c.listKeys(false) }, core.KeyList
		}
	case segs[0] == "keys" && n == 2:
		switch m {
		case http.MethodGet:
			op, need = func() { c.getKey(segs[1], "") }, core.KeyGet
		case http.MethodDelete:
			op, need = func() { c.deleteKey(segs[1]) }, core.KeyDelete
		case http.MethodPatch:
			op, need = func() { c.updateKey(segs[1], "") }, core.KeyUpdate
		case http.MethodPut:
			op, need = func() { c.importKey(segs[1]) }, core.KeyImport
		}
	case segs[0] == "keys" && n == 3 && segs[2] == "create":
		if m == http.MethodPost {
			op, need = func() { c.createKey(segs[1]) }, core.KeyCreate
		}
	case segs[0] == "keys" && n == 3 && (segs[2] == "sign" || segs[2] == "verify"):
		// The SDK's path for the latest version: runtime.JoinPaths
		// folds "/keys/{name}//sign" into "/keys/{name}/sign".
		if m == http.MethodPost && segs[2] == "sign" {
			op, need = func() { c.signDigest(segs[1], "") }, core.KeySign
		} else if m == http.MethodPost {
			op, need = func() { c.verifyDigest(segs[1], "") }, core.KeyVerify
		}
	case segs[0] == "keys" && n == 3 && segs[2] == "versions":
		if m == http.MethodGet {
			op, need = func() { c.listKeyVersions(segs[1]) }, core.KeyList
		}
	case segs[0] == "keys" && n == 3:
		switch m {
		case http.MethodGet:
			op, need = func() { c.getKey(segs[1], segs[2]) }, core.KeyGet
		case http.MethodPatch:
			op, need = func() { c.updateKey(segs[1], segs[2]) }, core.KeyUpdate
		}
	case segs[0] == "keys" && n == 4 && segs[3] == "sign":
		if m == http.MethodPost {
			op, need = func() { c.signDigest(segs[1], segs[2]) }, core.KeySign
		}
	case segs[0] == "keys" && n == 4 && segs[3] == "verify":
		if m == http.MethodPost {
			op, need = func() { c.verifyDigest(segs[1], segs[2]) }, core.KeyVerify
		}
	case segs[0] == "deletedkeys" && n == 1:
		if m == http.MethodGet {
			op, need = func() { c.listKeys(true) }, core.KeyList
		}
	case segs[0] == "deletedkeys" && n == 2:
		switch m {
		case http.MethodGet:
			op, need = func() { c.getDeletedKey(segs[1]) }, core.KeyGet
		case http.MethodDelete:
			op, need = func() { c.purgeKey(segs[1]) }, core.KeyPurge
		}
	case segs[0] == "deletedkeys" && n == 3 && segs[2] == "recover":
		if m == http.MethodPost {
			op, need = func() { c.recoverKey(segs[1]) }, core.KeyRecover
		}
	default:
		c.notServed()
		return
	}
	dispatch(c, op, "keys", need, c.vault.AllowsKey)
}

// forbiddenFor is Key Vault's access-policy refusal for an object kind
// ("secrets", "keys", "certificates") and permission.
func (c *kvCall) forbiddenFor(kind, perm string) {
	c.fail(http.StatusForbidden, "Forbidden", fmt.Sprintf(
		"The user, group or application 'appid=%s;oid=%s;iss=%s' does not have %s %s permission on key vault '%s;location=%s'. "+
			"For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
		c.caller.AppID, c.caller.ObjectID, core.StsIssuer(c.caller.TenantID), kind, perm, c.vault.Name, kvLocation), "AccessDenied")
}

func notFoundKey(ref string) kvReply {
	return notFoundObject("KeyNotFound", "key", ref)
}

// lookupFold finds name in m, exactly or ignoring case (Key Vault names
// are case-insensitive).
func lookupFold[V any](m map[string]*V, name string) *V {
	if v := m[name]; v != nil {
		return v
	}
	for n, v := range m {
		if strings.EqualFold(n, name) {
			return v
		}
	}
	return nil
}

func (c *kvCall) liveKey(name string) *core.VaultKey {
	if k := lookupFold(c.vault.Keys, name); k != nil && !k.Deleted && len(k.Versions) > 0 {
		return k
	}
	return nil
}

func (c *kvCall) deletedKey(name string, now time.Time) *core.VaultKey {
	k := lookupFold(c.vault.Keys, name)
	if k == nil || len(k.Versions) == 0 || !recoverableAt(k.Deleted, k.DeletedAt, now) {
		return nil
	}
	return k
}

// keyVersion finds a version; "" is the latest.
func keyVersion(k *core.VaultKey, version string) *core.KeyVersion {
	return versionNamed(k.Versions, version, func(v *core.KeyVersion) string { return v.Version })
}

// keyAt is a live key and its version ("" the latest), or KeyNotFound.
func (c *kvCall) keyAt(name, version string) (*core.VaultKey, *core.KeyVersion, *kvReply) {
	k := c.liveKey(name)
	if k == nil {
		rp := notFoundKey(name)
		return nil, nil, &rp
	}
	v := keyVersion(k, version)
	if v == nil {
		rp := notFoundKey(name + "/" + version)
		return nil, nil, &rp
	}
	return k, v, nil
}

// publicJWK renders the public half of a key version.
func (c *kvCall) publicJWK(k *core.VaultKey, v *core.KeyVersion) *kvJWK {
	j := &kvJWK{KID: c.base + "/keys/" + k.Name + "/" + v.Version, Kty: v.Kty, KeyOps: slices.Clone(v.KeyOps)}
	switch pub := v.Signer.Public().(type) {
	case *rsa.PublicKey:
		j.N = b64u.EncodeToString(pub.N.Bytes())
		j.E = b64u.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		j.Crv = curveName(pub.Curve)
		j.X = b64u.EncodeToString(pub.X.FillBytes(make([]byte, size)))
		j.Y = b64u.EncodeToString(pub.Y.FillBytes(make([]byte, size)))
	}
	return j
}

func curveName(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return "P-256"
	case elliptic.P384():
		return "P-384"
	case elliptic.P521():
		return "P-521"
	}
	return ""
}

func (c *kvCall) keyAttrs(v *core.KeyVersion, managed bool) kvKeyAttributes {
	return kvKeyAttributes{
		kvAttributes: versionAttrs(v.Enabled, v.NotBefore, v.Expires, v.Created, v.Updated),
		// A certificate's key is exportable through its secret; a plain
		// key never is.
		Exportable: managed,
	}
}

func (c *kvCall) keyBundle(k *core.VaultKey, v *core.KeyVersion) kvKeyBundle {
	return kvKeyBundle{Key: c.publicJWK(k, v), Attributes: c.keyAttrs(v, k.Managed), Tags: copyTags(v.Tags), Managed: k.Managed}
}

func (c *kvCall) keyItem(k *core.VaultKey, v *core.KeyVersion, withVersion bool) kvKeyBundle {
	kid := c.base + "/keys/" + k.Name
	if withVersion {
		kid += "/" + v.Version
	}
	return kvKeyBundle{KID: kid, Attributes: c.keyAttrs(v, k.Managed), Tags: copyTags(v.Tags), Managed: k.Managed}
}

func (c *kvCall) deletedKeyBundle(k *core.VaultKey, item bool) kvKeyBundle {
	v := k.Versions[len(k.Versions)-1]
	b := c.keyBundle(k, v)
	if item {
		b = c.keyItem(k, v, false)
	}
	b.kvDeletedInfo = c.deletedInfo("keys", k.Name, k.DeletedAt)
	return b
}

// defaultKeyOps are the operations a new key allows when the request
// names none: everything its type can do.
func defaultKeyOps(kty string) []string {
	if strings.HasPrefix(kty, "EC") {
		return []string{"sign", "verify"}
	}
	return []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}
}

// newKeyMaterial generates a key of kty ("RSA", "RSA-HSM", "EC", "EC-HSM")
// with size bits (RSA; 0 = 2048) or curve crv (EC; "" = P-256). The error
// is the message of Key Vault's 400 BadParameter.
func newKeyMaterial(kty string, size int, crv string) (crypto.Signer, string) {
	switch kty {
	case "RSA", "RSA-HSM":
		if size == 0 {
			size = 2048
		}
		if size != 2048 && size != 3072 && size != 4096 {
			return nil, fmt.Sprintf("The key size %d is not supported; RSA keys are 2048, 3072 or 4096 bits.", size)
		}
		k, err := rsa.GenerateKey(rand.Reader, size)
		if err != nil {
			return nil, "The key could not be generated."
		}
		return k, ""
	case "EC", "EC-HSM":
		var curve elliptic.Curve
		switch crv {
		case "", "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Sprintf("The curve %q is not supported by the simulated Key Vault (P-256, P-384, P-521).", crv)
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, "The key could not be generated."
		}
		return k, ""
	}
	return nil, fmt.Sprintf("The key type %q is not supported; use RSA, RSA-HSM, EC or EC-HSM.", kty)
}

// hsmRefusal is the refusal of an HSM key type in a standard vault, or "".
func (c *kvCall) hsmRefusal(kty string) string {
	if strings.HasSuffix(kty, "-HSM") && !c.vault.Premium() {
		return fmt.Sprintf("The key type %s needs a premium vault; vault '%s' is standard.", kty, c.vault.Name)
	}
	return ""
}

func (c *kvCall) validObjectName(kind, name string) bool {
	if secretNameRE.MatchString(name) {
		return true
	}
	c.fail(http.StatusBadRequest, "BadParameter",
		fmt.Sprintf("The request URI contains an invalid name: %s names are 1-127 characters of letters, digits and '-'.", kind), "")
	return false
}

// createKey serves POST /keys/{name}/create: a new version.
func (c *kvCall) createKey(name string) {
	if !c.validObjectName("key", name) {
		return
	}
	var in struct {
		Kty     string            `json:"kty"`
		KeySize *int              `json:"key_size"`
		Crv     string            `json:"crv"`
		KeyOps  []string          `json:"key_ops"`
		Attrs   *kvAttrsIn        `json:"attributes"`
		Tags    map[string]string `json:"tags"`
	}
	if !c.decode(&in) {
		return
	}
	switch {
	case in.Kty == "":
		c.fail(http.StatusBadRequest, "BadParameter", "Property 'kty' is required.", "")
		return
	case len(in.Tags) > kvMaxTags:
		c.fail(http.StatusBadRequest, "BadParameter", fmt.Sprintf("A key can have at most %d tags.", kvMaxTags), "")
		return
	}
	if msg := c.hsmRefusal(in.Kty); msg != "" {
		c.fail(http.StatusBadRequest, "BadParameter", msg, "")
		return
	}
	size := 0
	if in.KeySize != nil {
		size = *in.KeySize
	}
	signer, msg := newKeyMaterial(in.Kty, size, in.Crv)
	if msg != "" {
		c.fail(http.StatusBadRequest, "BadParameter", msg, "")
		return
	}
	ops := in.KeyOps
	if len(ops) == 0 {
		ops = defaultKeyOps(in.Kty)
	}
	c.write(func(now time.Time) kvReply {
		now = now.UTC()
		k := lookupFold(c.vault.Keys, name)
		if k != nil && k.Deleted {
			if c.deletedKey(name, now) != nil {
				return kvErr(http.StatusConflict, "Conflict", fmt.Sprintf("Key %s is currently in a deleted but recoverable state, "+
					"and its name cannot be reused; in this state, the key can only be recovered or purged.", k.Name), "ObjectIsDeletedButRecoverable")
			}
			delete(c.vault.Keys, k.Name)
			k = nil
		}
		if k != nil && k.Managed {
			return kvErr(http.StatusConflict, "Conflict", fmt.Sprintf("Key %s is managed by the certificate of the same name; "+
				"create a new version of the certificate instead.", k.Name), "")
		}
		if k == nil {
			k = &core.VaultKey{Name: name}
			if c.vault.Keys == nil {
				c.vault.Keys = map[string]*core.VaultKey{}
			}
			c.vault.Keys[name] = k
		}
		v := &core.KeyVersion{Version: newSecretVersion(), Kty: in.Kty, Signer: signer, KeyOps: ops,
			Tags: copyTags(in.Tags), Enabled: true, Created: now, Updated: now}
		in.Attrs.applyTo(&v.Enabled, &v.NotBefore, &v.Expires)
		k.Versions = append(k.Versions, v)
		c.s.Logger().Debug("keyvault: key created", "vault", c.vault.Name, "name", k.Name, "kty", v.Kty, "version", v.Version)
		return kvOK(http.StatusOK, c.keyBundle(k, v))
	})
}

// kvJWKIn is a JSON Web Key with its private part, as import sends it.
type kvJWKIn struct {
	Kty    string   `json:"kty"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	D      string   `json:"d"`
	P      string   `json:"p"`
	Q      string   `json:"q"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// privateFromJWK rebuilds the private key of an imported JWK; the error
// is the message of Key Vault's 400.
func privateFromJWK(j kvJWKIn) (crypto.Signer, string) {
	num := func(s string) (*big.Int, bool) {
		b, err := decodeB64u(s)
		if err != nil || len(b) == 0 {
			return nil, false
		}
		return new(big.Int).SetBytes(b), true
	}
	switch strings.TrimSuffix(j.Kty, "-HSM") {
	case "RSA":
		n, ok1 := num(j.N)
		e, ok2 := num(j.E)
		d, ok3 := num(j.D)
		p, ok4 := num(j.P)
		q, ok5 := num(j.Q)
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !e.IsInt64() {
			return nil, "An RSA key to import needs n, e, d, p and q."
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())}, D: d, Primes: []*big.Int{p, q}}
		if err := k.Validate(); err != nil {
			return nil, "The RSA key to import is not consistent."
		}
		k.Precompute()
		return k, ""
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Sprintf("The curve %q is not supported by the simulated Key Vault (P-256, P-384, P-521).", j.Crv)
		}
		d, ok := num(j.D)
		if !ok {
			return nil, "An EC key to import needs d."
		}
		size := (curve.Params().BitSize + 7) / 8
		k, err := ecdsa.ParseRawPrivateKey(curve, d.FillBytes(make([]byte, size)))
		if err != nil {
			return nil, "The EC key to import is not valid."
		}
		if x, ok := num(j.X); ok && x.Cmp(k.X) != 0 {
			return nil, "The EC key's x does not match d."
		}
		return k, ""
	}
	return nil, fmt.Sprintf("The key type %q cannot be imported; use RSA, RSA-HSM, EC or EC-HSM.", j.Kty)
}

// importKey serves PUT /keys/{name}: a new version from a private JWK.
// "Hsm": true (or an -HSM kty) asks for HSM protection, which needs a
// premium vault.
func (c *kvCall) importKey(name string) {
	if !c.validObjectName("key", name) {
		return
	}
	var in struct {
		Key   *kvJWKIn          `json:"key"`
		HSM   *bool             `json:"Hsm"`
		Attrs *kvAttrsIn        `json:"attributes"`
		Tags  map[string]string `json:"tags"`
	}
	if !c.decode(&in) {
		return
	}
	if in.Key == nil {
		c.fail(http.StatusBadRequest, "BadParameter", "Property 'key' is required.", "")
		return
	}
	kty := strings.TrimSuffix(in.Key.Kty, "-HSM")
	if (in.HSM != nil && *in.HSM) || strings.HasSuffix(in.Key.Kty, "-HSM") {
		kty += "-HSM"
	}
	if msg := c.hsmRefusal(kty); msg != "" {
		c.fail(http.StatusBadRequest, "BadParameter", msg, "")
		return
	}
	signer, msg := privateFromJWK(*in.Key)
	if msg != "" {
		// Never echo the key: it is private.
		c.fail(http.StatusBadRequest, "BadParameter", msg, "")
		return
	}
	ops := in.Key.KeyOps
	if len(ops) == 0 {
		ops = defaultKeyOps(kty)
	}
	c.write(func(now time.Time) kvReply {
		now = now.UTC()
		k := lookupFold(c.vault.Keys, name)
		if k != nil && k.Deleted && c.deletedKey(name, now) != nil {
			return kvErr(http.StatusConflict, "Conflict", fmt.Sprintf("Key %s is currently in a deleted but recoverable state, "+
				"and its name cannot be reused; in this state, the key can only be recovered or purged.", k.Name), "ObjectIsDeletedButRecoverable")
		}
		if k != nil && k.Deleted {
			delete(c.vault.Keys, k.Name)
			k = nil
		}
		if k != nil && k.Managed {
			return kvErr(http.StatusConflict, "Conflict", fmt.Sprintf("Key %s is managed by the certificate of the same name.", k.Name), "")
		}
		if k == nil {
			k = &core.VaultKey{Name: name}
			if c.vault.Keys == nil {
				c.vault.Keys = map[string]*core.VaultKey{}
			}
			c.vault.Keys[name] = k
		}
		v := &core.KeyVersion{Version: newSecretVersion(), Kty: kty, Signer: signer, KeyOps: ops,
			Tags: copyTags(in.Tags), Enabled: true, Created: now, Updated: now}
		in.Attrs.applyTo(&v.Enabled, &v.NotBefore, &v.Expires)
		k.Versions = append(k.Versions, v)
		return kvOK(http.StatusOK, c.keyBundle(k, v))
	})
}

// getKey serves GET /keys/{name}[/{version}]: the public key.
func (c *kvCall) getKey(name, version string) {
	c.read(func(time.Time) kvReply {
		k, v, nf := c.keyAt(name, version)
		if nf != nil {
			return *nf
		}
		return kvOK(http.StatusOK, c.keyBundle(k, v))
	})
}

// updateKey serves PATCH /keys/{name}[/{version}].
func (c *kvCall) updateKey(name, version string) {
	var in struct {
		KeyOps []string          `json:"key_ops"`
		Attrs  *kvAttrsIn        `json:"attributes"`
		Tags   map[string]string `json:"tags"`
	}
	if !c.decode(&in) {
		return
	}
	c.write(func(now time.Time) kvReply {
		k, v, nf := c.keyAt(name, version)
		if nf != nil {
			return *nf
		}
		if in.KeyOps != nil {
			v.KeyOps = slices.Clone(in.KeyOps)
		}
		if in.Tags != nil {
			v.Tags = copyTags(in.Tags)
		}
		in.Attrs.applyTo(&v.Enabled, &v.NotBefore, &v.Expires)
		v.Updated = now.UTC()
		return kvOK(http.StatusOK, c.keyBundle(k, v))
	})
}

// signHash maps a JWS signature algorithm to its hash and family.
func signHash(alg string) (crypto.Hash, string, bool) {
	switch alg {
	case "RS256":
		return crypto.SHA256, "RS", true
	case "RS384":
		return crypto.SHA384, "RS", true
	case "RS512":
		return crypto.SHA512, "RS", true
	case "PS256":
		return crypto.SHA256, "PS", true
	case "PS384":
		return crypto.SHA384, "PS", true
	case "PS512":
		return crypto.SHA512, "PS", true
	case "ES256":
		return crypto.SHA256, "ES", true
	case "ES384":
		return crypto.SHA384, "ES", true
	case "ES512":
		return crypto.SHA512, "ES", true
	}
	return 0, "", false
}

// usableForSign checks a key version and algorithm for sign or verify and
// returns the refusal, if any.
func usableFor(op string, v *core.KeyVersion, alg string, digest []byte, now time.Time) (crypto.Hash, string, *kvReply) {
	h, fam, ok := signHash(alg)
	if !ok {
		rp := kvErr(http.StatusBadRequest, "BadParameter", fmt.Sprintf("The algorithm %q is not a signature algorithm Key Vault supports.", alg), "")
		return 0, "", &rp
	}
	_, isRSA := v.Signer.Public().(*rsa.PublicKey)
	if isRSA != (fam != "ES") {
		rp := kvErr(http.StatusBadRequest, "BadParameter", fmt.Sprintf("The algorithm %s does not apply to a key of type %s.", alg, v.Kty), "")
		return 0, "", &rp
	}
	if ec, ok := v.Signer.Public().(*ecdsa.PublicKey); ok {
		want := map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
		if curveName(ec.Curve) != want {
			rp := kvErr(http.StatusBadRequest, "BadParameter", fmt.Sprintf("The algorithm %s needs a %s key; this key is %s.", alg, want, curveName(ec.Curve)), "")
			return 0, "", &rp
		}
	}
	if len(digest) != h.Size() {
		rp := kvErr(http.StatusBadRequest, "BadParameter", fmt.Sprintf("The digest is %d bytes; %s signs a %d-byte digest.", len(digest), alg, h.Size()), "")
		return 0, "", &rp
	}
	if !v.Enabled {
		rp := kvErr(http.StatusForbidden, "Forbidden", fmt.Sprintf("Operation %s is not allowed on a disabled key.", op), "KeyDisabled")
		return 0, "", &rp
	}
	if (v.NotBefore != nil && now.Before(*v.NotBefore)) || (v.Expires != nil && !now.Before(*v.Expires)) {
		rp := kvErr(http.StatusForbidden, "Forbidden", fmt.Sprintf("Operation %s is not allowed: the key is not yet valid or has expired.", op), "KeyExpired")
		return 0, "", &rp
	}
	if !slices.Contains(v.KeyOps, op) {
		rp := kvErr(http.StatusForbidden, "Forbidden", fmt.Sprintf("Operation %s is not allowed by the key's key_ops.", op), "KeyOperationForbidden")
		return 0, "", &rp
	}
	return h, fam, nil
}

// signDigest serves POST /keys/{name}/{version}/sign over a digest the
// client computed, as Key Vault does: RS* is PKCS#1 v1.5, PS* is PSS with
// a salt as long as the hash, ES* is the JWS r||s form.
func (c *kvCall) signDigest(name, version string) {
	var in struct {
		Alg   string `json:"alg"`
		Value string `json:"value"`
	}
	if !c.decode(&in) {
		return
	}
	digest, err := decodeB64u(in.Value)
	if err != nil {
		c.fail(http.StatusBadRequest, "BadParameter", "Property 'value' is not base64url.", "")
		return
	}
	c.read(func(now time.Time) kvReply {
		k, v, nf := c.keyAt(name, version)
		if nf != nil {
			return *nf
		}
		h, fam, refusal := usableFor("sign", v, in.Alg, digest, now)
		if refusal != nil {
			return *refusal
		}
		var sig []byte
		switch fam {
		case "RS":
			sig, err = v.Signer.Sign(rand.Reader, digest, h)
		case "PS":
			sig, err = v.Signer.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		case "ES":
			priv := v.Signer.(*ecdsa.PrivateKey)
			var r, s *big.Int
			r, s, err = ecdsa.Sign(rand.Reader, priv, digest)
			if err == nil {
				size := (priv.Curve.Params().BitSize + 7) / 8
				sig = append(r.FillBytes(make([]byte, size)), s.FillBytes(make([]byte, size))...)
			}
		}
		if err != nil {
			return kvErr(http.StatusInternalServerError, "InternalError", "The simulator could not sign.", "")
		}
		return kvOK(http.StatusOK, map[string]string{"kid": c.base + "/keys/" + k.Name + "/" + v.Version, "value": b64u.EncodeToString(sig)})
	})
}

// verifyDigest serves POST /keys/{name}/{version}/verify.
func (c *kvCall) verifyDigest(name, version string) {
	var in struct {
		Alg       string `json:"alg"`
		Digest    string `json:"digest"`
		Signature string `json:"value"`
	}
	if !c.decode(&in) {
		return
	}
	digest, err1 := decodeB64u(in.Digest)
	sig, err2 := decodeB64u(in.Signature)
	if err1 != nil || err2 != nil {
		c.fail(http.StatusBadRequest, "BadParameter", "Properties 'digest' and 'value' must be base64url.", "")
		return
	}
	c.read(func(now time.Time) kvReply {
		_, v, nf := c.keyAt(name, version)
		if nf != nil {
			return *nf
		}
		h, fam, refusal := usableFor("verify", v, in.Alg, digest, now)
		if refusal != nil {
			return *refusal
		}
		ok := false
		switch pub := v.Signer.Public().(type) {
		case *rsa.PublicKey:
			if fam == "PS" {
				ok = rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}) == nil
			} else {
				ok = rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil
			}
		case *ecdsa.PublicKey:
			size := (pub.Curve.Params().BitSize + 7) / 8
			if len(sig) == 2*size {
				ok = ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:]))
			}
		}
		return kvOK(http.StatusOK, map[string]bool{"value": ok})
	})
}

// deleteKey serves DELETE /keys/{name}. A certificate's key goes with its
// certificate, never alone.
func (c *kvCall) deleteKey(name string) {
	c.write(func(now time.Time) kvReply {
		k := c.liveKey(name)
		if k == nil {
			return notFoundKey(name)
		}
		if k.Managed {
			return kvErr(http.StatusForbidden, "Forbidden", fmt.Sprintf("Operation delete is not allowed on managed key %s; delete its certificate.", k.Name), "")
		}
		k.Deleted, k.DeletedAt = true, now.UTC()
		return kvOK(http.StatusOK, c.deletedKeyBundle(k, false))
	})
}

func (c *kvCall) getDeletedKey(name string) {
	c.read(func(now time.Time) kvReply {
		k := c.deletedKey(name, now)
		if k == nil {
			return notFoundDeleted("KeyNotFound", "Key", name)
		}
		return kvOK(http.StatusOK, c.deletedKeyBundle(k, false))
	})
}

func (c *kvCall) purgeKey(name string) {
	c.write(func(now time.Time) kvReply {
		k := c.deletedKey(name, now)
		if k == nil || k.Managed {
			return notFoundDeleted("KeyNotFound", "Key", name)
		}
		delete(c.vault.Keys, k.Name)
		return kvReply{status: http.StatusNoContent, noBodyReply: true}
	})
}

func (c *kvCall) recoverKey(name string) {
	c.write(func(now time.Time) kvReply {
		k := c.deletedKey(name, now)
		if k == nil || k.Managed {
			return notFoundDeleted("KeyNotFound", "Key", name)
		}
		k.Deleted, k.DeletedAt = false, time.Time{}
		return kvOK(http.StatusOK, c.keyBundle(k, k.Versions[len(k.Versions)-1]))
	})
}

// listKeys serves GET /keys (or /deletedkeys): items without key
// material, in name order, paged.
func (c *kvCall) listKeys(deleted bool) {
	listByName(c, func(now time.Time) []string {
		return sortedNames(c.vault.Keys, func(name string, k *core.VaultKey) bool {
			return len(k.Versions) > 0 && ((deleted && c.deletedKey(name, now) != nil) || (!deleted && !k.Deleted))
		})
	}, func(name string) (kvKeyBundle, bool) {
		k := c.vault.Keys[name]
		if deleted {
			return c.deletedKeyBundle(k, true), true
		}
		return c.keyItem(k, k.Versions[len(k.Versions)-1], false), true
	})
}

// listKeyVersions serves GET /keys/{name}/versions in creation order.
func (c *kvCall) listKeyVersions(name string) {
	var k *core.VaultKey
	listVersionsOf(c, func() ([]*core.KeyVersion, *kvReply) {
		if k = c.liveKey(name); k == nil {
			rp := notFoundKey(name)
			return nil, &rp
		}
		return k.Versions, nil
	}, func(v *core.KeyVersion) kvKeyBundle { return c.keyItem(k, v, true) })
}
