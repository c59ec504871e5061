package azure

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is the SHA-1 thumbprint by definition
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/google/uuid"
)

// This file is the Key Vault side of certificate credentials whose private
// key never leaves the vault (docs/adr/0037): Microsoft's azkeys and
// azcertificates clients make a key or a self-signed certificate, and a
// crypto.Signer whose Sign is Key Vault's sign operation signs what rotor
// needs signed (the certificate itself for a key, Graph's proofs of
// possession, Entra client assertions). Nothing here ever holds a private
// key; the keys are created non-exportable.

// VaultError is Key Vault's refusal of an operation: status and Key Vault's
// error code and message (which name objects and principals, never key
// material). 400, 401, 403, 404 and 409 are permanent (a permission, a
// vault SKU, a name held by something else: a human must act); 429 and 5xx
// are not.
type VaultError struct {
	Op      string
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *VaultError) Error() string {
	msg := fmt.Sprintf("Key Vault: %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap returns the SDK's error.
func (e *VaultError) Unwrap() error { return e.Err }

// Permanent says whether retrying cannot help.
func (e *VaultError) Permanent() bool {
	switch e.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusConflict:
		return true
	}
	return false
}

// IsVaultNotFound reports whether err is Key Vault's 404.
func IsVaultNotFound(err error) bool {
	var ve *VaultError
	return errors.As(err, &ve) && ve.Status == http.StatusNotFound
}

func vaultErr(op string, err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("Key Vault: %s: %w", op, err)
	}
	ve := &VaultError{Op: op, Status: re.StatusCode, Code: re.ErrorCode, Err: err}
	if re.RawResponse != nil {
		var body struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if b, rerr := runtime.Payload(re.RawResponse); rerr == nil && json.Unmarshal(b, &body) == nil {
			ve.Code = cmpOr(body.Error.Code, ve.Code)
			ve.Message = body.Error.Message
		}
	}
	return ve
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// VaultKeys makes and uses the keys of one vault.
type VaultKeys struct {
	url   string
	keys  *azkeys.Client
	certs *azcertificates.Client
	// poll is the wait between reads of a pending certificate operation.
	poll time.Duration
}

// NewVaultKeys returns the keys and certificates clients of vaultURL on
// the connection's credential and client options. disableChallengeCheck
// is for the simulator, whose vaults are not under vault.azure.net.
func NewVaultKeys(vaultURL string, cred azcore.TokenCredential, opts azcore.ClientOptions, disableChallengeCheck bool) (*VaultKeys, error) {
	if !strings.HasPrefix(vaultURL, "https://") {
		return nil, fmt.Errorf("vault URL %q must be https", vaultURL)
	}
	kc, err := azkeys.NewClient(vaultURL, cred, &azkeys.ClientOptions{ClientOptions: opts, DisableChallengeResourceVerification: disableChallengeCheck})
	if err != nil {
		return nil, fmt.Errorf("key vault keys client for %s: %w", vaultURL, err)
	}
	cc, err := azcertificates.NewClient(vaultURL, cred, &azcertificates.ClientOptions{ClientOptions: opts, DisableChallengeResourceVerification: disableChallengeCheck})
	if err != nil {
		return nil, fmt.Errorf("key vault certificates client for %s: %w", vaultURL, err)
	}
	return &VaultKeys{url: vaultURL, keys: kc, certs: cc, poll: time.Second}, nil
}

// URL is the vault's address.
func (v *VaultKeys) URL() string { return v.url }

// KeyRequest is a new RSA key version.
type KeyRequest struct {
	// Bits is 2048, 3072 or 4096.
	Bits int
	// HSM makes an RSA-HSM key (premium vaults only).
	HSM  bool
	Tags map[string]string
}

// VaultKey is one version of a Key Vault key: its id (the full key
// identifier URL, version included), its public key and tags.
type VaultKey struct {
	KID     string
	Public  *rsa.PublicKey
	Tags    map[string]string
	Enabled bool
	Created time.Time
}

// Name is the key's name, from its id.
func (k VaultKey) Name() string { id := azkeys.ID(k.KID); return id.Name() }

// Version is the key's version, from its id.
func (k VaultKey) Version() string { id := azkeys.ID(k.KID); return id.Version() }

func keyType(hsm bool) azkeys.KeyType {
	if hsm {
		return azkeys.KeyTypeRSAHSM
	}
	return azkeys.KeyTypeRSA
}

func ptrTags(tags map[string]string) map[string]*string {
	if tags == nil {
		return nil
	}
	out := make(map[string]*string, len(tags))
	for k, v := range tags {
		out[k] = to.Ptr(v)
	}
	return out
}

func plainTags(tags map[string]*string) map[string]string {
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func bundleKey(kb azkeys.KeyBundle) (VaultKey, error) {
	if kb.Key == nil || kb.Key.KID == nil {
		return VaultKey{}, errors.New("Key Vault answered without the key")
	}
	k := VaultKey{KID: string(*kb.Key.KID), Tags: plainTags(kb.Tags), Enabled: true}
	if a := kb.Attributes; a != nil {
		if a.Enabled != nil {
			k.Enabled = *a.Enabled
		}
		if a.Created != nil {
			k.Created = *a.Created
		}
	}
	if len(kb.Key.N) == 0 || len(kb.Key.E) == 0 {
		return VaultKey{}, fmt.Errorf("key %s is not an RSA key", k.KID)
	}
	e := new(big.Int).SetBytes(kb.Key.E)
	if !e.IsInt64() || e.Int64() > 1<<31-1 {
		return VaultKey{}, fmt.Errorf("key %s has an unusable exponent", k.KID)
	}
	k.Public = &rsa.PublicKey{N: new(big.Int).SetBytes(kb.Key.N), E: int(e.Int64())}
	return k, nil
}

// CreateKey adds a version to the RSA key name (creating the key): sign
// and verify only, not exportable.
func (v *VaultKeys) CreateKey(ctx context.Context, name string, req KeyRequest) (VaultKey, error) {
	bits := req.Bits
	if bits == 0 {
		bits = 2048
	}
	resp, err := v.keys.CreateKey(ctx, name, azkeys.CreateKeyParameters{
		Kty: to.Ptr(keyType(req.HSM)), KeySize: to.Ptr(int32(bits)),
		KeyOps:        []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationSign), to.Ptr(azkeys.KeyOperationVerify)},
		KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(true), Exportable: to.Ptr(false)},
		Tags:          ptrTags(req.Tags),
	}, nil)
	if err != nil {
		return VaultKey{}, vaultErr(fmt.Sprintf("create key %q in %s", name, v.url), err)
	}
	return bundleKey(resp.KeyBundle)
}

// Key reads one version of a key ("" version is the latest).
func (v *VaultKeys) Key(ctx context.Context, name, version string) (VaultKey, error) {
	resp, err := v.keys.GetKey(ctx, name, version, nil)
	if err != nil {
		return VaultKey{}, vaultErr(fmt.Sprintf("get key %q in %s", name, v.url), err)
	}
	return bundleKey(resp.KeyBundle)
}

// KeyVersions lists the versions of key name by their properties (id,
// tags, enabled, created; no public key), newest first. A key that does
// not exist has none.
func (v *VaultKeys) KeyVersions(ctx context.Context, name string) ([]VaultKey, error) {
	var out []VaultKey
	pager := v.keys.NewListKeyPropertiesVersionsPager(name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			if IsVaultNotFound(vaultErr("", err)) {
				return nil, nil
			}
			return nil, vaultErr(fmt.Sprintf("list versions of key %q in %s", name, v.url), err)
		}
		for _, p := range page.Value {
			if p == nil || p.KID == nil {
				continue
			}
			k := VaultKey{KID: string(*p.KID), Tags: plainTags(p.Tags), Enabled: true}
			if a := p.Attributes; a != nil {
				if a.Enabled != nil {
					k.Enabled = *a.Enabled
				}
				if a.Created != nil {
					k.Created = *a.Created
				}
			}
			out = append(out, k)
		}
	}
	// Newest first; Key Vault lists in no documented order.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Created.After(out[j-1].Created); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// CertificateRequest is a new version of a self-signed Key Vault
// certificate.
type CertificateRequest struct {
	// Subject is the X.500 subject ("CN=payroll, O=Contoso").
	Subject  string
	DNSNames []string
	// ValidityMonths is Key Vault's validity (whole months).
	ValidityMonths int
	Bits           int
	HSM            bool
	Tags           map[string]string
}

// VaultCertificate is a certificate Key Vault issued: the certificate, and
// the key it is over (the certificate's managed key, same name and version).
type VaultCertificate struct {
	Cert *x509.Certificate
	Key  VaultKey
	// Version is the certificate's version (its key's and secret's too).
	Version string
}

// CertificateTags returns the tags of the latest version of certificate
// name; found is false when there is none.
func (v *VaultKeys) CertificateTags(ctx context.Context, name string) (tags map[string]string, found bool, err error) {
	resp, err := v.certs.GetCertificate(ctx, name, "", nil)
	if err != nil {
		if e := vaultErr("", err); IsVaultNotFound(e) {
			return nil, false, nil
		}
		return nil, false, vaultErr(fmt.Sprintf("get certificate %q in %s", name, v.url), err)
	}
	return plainTags(resp.Tags), true, nil
}

// CreateSelfSignedCertificate has Key Vault issue a new version of
// certificate name with a Self issuer: RSA, not exportable, a new key per
// version, client authentication, digitalSignature. It polls the
// certificate operation until Key Vault says completed (or failed), then
// reads the version it made. The private key never leaves the vault.
func (v *VaultKeys) CreateSelfSignedCertificate(ctx context.Context, name string, req CertificateRequest) (*VaultCertificate, error) {
	bits := req.Bits
	if bits == 0 {
		bits = 2048
	}
	var sans *azcertificates.SubjectAlternativeNames
	if len(req.DNSNames) > 0 {
		sans = &azcertificates.SubjectAlternativeNames{}
		for _, n := range req.DNSNames {
			sans.DNSNames = append(sans.DNSNames, to.Ptr(n))
		}
	}
	kty := azcertificates.KeyTypeRSA
	if req.HSM {
		kty = azcertificates.KeyTypeRSAHSM
	}
	op := fmt.Sprintf("create certificate %q in %s", name, v.url)
	_, err := v.certs.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{
		CertificatePolicy: &azcertificates.CertificatePolicy{
			IssuerParameters: &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
			KeyProperties: &azcertificates.KeyProperties{KeyType: to.Ptr(kty), KeySize: to.Ptr(int32(bits)),
				Exportable: to.Ptr(false), ReuseKey: to.Ptr(false)},
			SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pem-file")},
			X509CertificateProperties: &azcertificates.X509CertificateProperties{
				Subject: to.Ptr(req.Subject), SubjectAlternativeNames: sans,
				ValidityInMonths: to.Ptr(int32(max(1, req.ValidityMonths))),
				EnhancedKeyUsage: []*string{to.Ptr("1.3.6.1.5.5.7.3.2")},
				KeyUsage:         []*azcertificates.KeyUsageType{to.Ptr(azcertificates.KeyUsageTypeDigitalSignature)},
			},
		},
		CertificateAttributes: &azcertificates.CertificateAttributes{Enabled: to.Ptr(true)},
		Tags:                  ptrTags(req.Tags),
	}, nil)
	if err != nil {
		return nil, vaultErr(op, err)
	}
	for {
		st, err := v.certs.GetCertificateOperation(ctx, name, nil)
		if err != nil {
			return nil, vaultErr(op+": read its operation", err)
		}
		status := ""
		if st.Status != nil {
			status = strings.ToLower(*st.Status)
		}
		switch status {
		case "completed":
		case "inprogress", "":
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("Key Vault: %s: still in progress: %w", op, ctx.Err())
			case <-time.After(v.poll):
			}
			continue
		default:
			msg := status
			if st.Error != nil {
				msg += ": " + st.Error.Error()
			}
			return nil, &VaultError{Op: op, Status: http.StatusBadRequest, Code: "CertificateOperationFailed", Message: msg}
		}
		break
	}
	got, err := v.certs.GetCertificate(ctx, name, "", nil)
	if err != nil {
		return nil, vaultErr(op+": read it", err)
	}
	if len(got.CER) == 0 || got.KID == nil {
		return nil, fmt.Errorf("Key Vault: %s: the certificate came without its CER or key id", op)
	}
	cert, err := x509.ParseCertificate(got.CER)
	if err != nil {
		return nil, fmt.Errorf("Key Vault: %s: the certificate does not parse: %w", op, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("Key Vault: %s: the certificate's key is not RSA", op)
	}
	kid := azkeys.ID(*got.KID)
	vc := &VaultCertificate{Cert: cert, Key: VaultKey{KID: string(*got.KID), Public: pub, Tags: plainTags(got.Tags), Enabled: true}, Version: kid.Version()}
	if got.ID != nil {
		vc.Version = got.ID.Version()
	}
	return vc, nil
}

// Signer is a crypto.Signer whose private key is one version of a Key
// Vault key: Sign sends the digest to Key Vault's sign operation. It holds
// the key's id and public key only; there is nothing secret in it.
type Signer struct {
	v   *VaultKeys
	key VaultKey
	ctx context.Context
}

var _ crypto.Signer = (*Signer)(nil)

// Signer returns the signer of key version k. ctx bounds every Sign call
// (crypto.Signer has no context): the run's.
func (v *VaultKeys) Signer(ctx context.Context, k VaultKey) *Signer {
	return &Signer{v: v, key: k, ctx: ctx}
}

// Public is the key's public half.
func (s *Signer) Public() crypto.PublicKey { return s.key.Public }

// KID is the key version's identifier.
func (s *Signer) KID() string { return s.key.KID }

// String names the key version; there is no key material to hide.
func (s *Signer) String() string { return "Key Vault key " + s.key.KID }

// Sign has Key Vault sign digest: RS256/384/512 for PKCS #1 v1.5,
// PS256/384/512 for PSS (salt as long as the hash, Key Vault's).
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	pss := false
	if po, ok := opts.(*rsa.PSSOptions); ok {
		pss = true
		if po.SaltLength != rsa.PSSSaltLengthEqualsHash && po.SaltLength != rsa.PSSSaltLengthAuto && po.SaltLength != opts.HashFunc().Size() {
			return nil, errors.New("Key Vault signs PSS with a salt as long as the hash only")
		}
	}
	var alg azkeys.SignatureAlgorithm
	switch h := opts.HashFunc(); {
	case h == crypto.SHA256 && !pss:
		alg = azkeys.SignatureAlgorithmRS256
	case h == crypto.SHA384 && !pss:
		alg = azkeys.SignatureAlgorithmRS384
	case h == crypto.SHA512 && !pss:
		alg = azkeys.SignatureAlgorithmRS512
	case h == crypto.SHA256:
		alg = azkeys.SignatureAlgorithmPS256
	case h == crypto.SHA384:
		alg = azkeys.SignatureAlgorithmPS384
	case h == crypto.SHA512:
		alg = azkeys.SignatureAlgorithmPS512
	default:
		return nil, fmt.Errorf("Key Vault cannot sign a %v digest", h)
	}
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	resp, err := s.v.keys.Sign(ctx, s.key.Name(), s.key.Version(), azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: digest}, nil)
	if err != nil {
		return nil, vaultErr(fmt.Sprintf("sign with key %s", s.key.KID), err)
	}
	return resp.Result, nil
}

// ClientAssertion is an Entra client assertion for clientID signed by
// signer over cert, in the form MSAL sends for certificate credentials:
// RS256, x5t (base64url SHA-1) and x5t#S256 (base64url SHA-256) of the
// certificate, aud the tenant's v2.0 token endpoint, iss = sub = clientID,
// a fresh jti, valid for ten minutes from now.
func ClientAssertion(signer crypto.Signer, cert *x509.Certificate, tokenEndpoint, clientID string, now time.Time) (string, error) {
	if signer == nil || cert == nil {
		return "", errors.New("a client assertion needs a certificate and its signer")
	}
	b64 := base64.RawURLEncoding
	s1 := sha1.Sum(cert.Raw) //nolint:gosec // x5t is SHA-1 by definition
	s256 := sha256.Sum256(cert.Raw)
	hdr, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "x5t": b64.EncodeToString(s1[:]), "x5t#S256": b64.EncodeToString(s256[:])})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"aud": tokenEndpoint, "iss": clientID, "sub": clientID, "jti": uuid.NewString(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString(hdr) + "." + b64.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", err
	}
	return signing + "." + b64.EncodeToString(sig), nil
}

// TokenEndpoint is the v2.0 token endpoint of tenantID under ep's
// authority, a client assertion's audience.
func TokenEndpoint(ep Endpoints, tenantID string) string {
	return strings.TrimSuffix(ep.AuthorityHost, "/") + "/" + tenantID + "/oauth2/v2.0/token"
}

// VerifyCertificateSigner proves a certificate whose key is held by signer
// (a Key Vault key) works: it requests a Graph token for clientID with a
// fresh azidentity ClientAssertionCredential whose callback builds and
// signs the assertion (ClientAssertion) — azidentity's
// ClientCertificateCredential needs the private key itself. The returned
// error is a *TokenError.
func VerifyCertificateSigner(ctx context.Context, ep Endpoints, tenantID, clientID string, cert *x509.Certificate, signer crypto.Signer, now func() time.Time) error {
	if cert == nil || signer == nil {
		return &TokenError{TenantID: tenantID, ClientID: clientID, Err: errors.New("certificate or signer is missing")}
	}
	if now == nil {
		now = time.Now
	}
	aud := TokenEndpoint(ep, tenantID)
	cred, err := azidentity.NewClientAssertionCredential(tenantID, clientID, func(context.Context) (string, error) {
		return ClientAssertion(signer, cert, aud, clientID, now())
	}, &azidentity.ClientAssertionCredentialOptions{
		ClientOptions:            ClientOptions(ep),
		DisableInstanceDiscovery: ep.DisableInstanceDiscovery || ep.Cloud == Sim,
	})
	return freshToken(ctx, ep, tenantID, clientID, cred, err)
}
