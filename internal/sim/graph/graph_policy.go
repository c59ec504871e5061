package graph

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t and customKeyIdentifier are SHA-1 thumbprints by definition
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

// This file holds the rules Graph applies to new credentials: the tenant's
// app management policy, the shape of a keyCredential, the
// proof-of-possession token addKey and removeKey demand, and how a new
// client secret looks.

// maxProofLifetime is the longest a proof may live (exp - nbf), per Graph.
const maxProofLifetime = 10 * time.Minute

// defaultPasswordLifetime is Graph's default when addPassword has no end.
const defaultPasswordLifetime = 2 * 365 * 24 * time.Hour

// policyViolation is a credential whose lifetime the tenant's app
// management policy forbids. It renders as Graph's
// CredentialInvalidLifetimeAsPerAppPolicy error.
type policyViolation struct {
	PolicyID string
	Max      time.Duration
}

func (v *policyViolation) Error() string {
	return fmt.Sprintf("Credential lifetime exceeds the max value allowed as per assigned policy '%s'.", v.PolicyID)
}

// checkPasswordLifetime applies passwordLifetime: end - start must not
// exceed the policy's cap. A nil policy or a zero cap allows anything.
func checkPasswordLifetime(p *core.AppManagementPolicy, start, end time.Time) error {
	if p == nil || p.MaxPasswordLifetime <= 0 || end.Sub(start) <= p.MaxPasswordLifetime {
		return nil
	}
	return &policyViolation{PolicyID: p.ID, Max: p.MaxPasswordLifetime}
}

// checkKeyLifetime applies asymmetricKeyLifetime the same way.
func checkKeyLifetime(p *core.AppManagementPolicy, start, end time.Time) error {
	if p == nil || p.MaxKeyLifetime <= 0 || end.Sub(start) <= p.MaxKeyLifetime {
		return nil
	}
	return &policyViolation{PolicyID: p.ID, Max: p.MaxKeyLifetime}
}

// inputError is a request body Graph would refuse with 400 Request_BadRequest.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

// keyCredentialIn is a keyCredential as clients send it.
type keyCredentialIn struct {
	KeyID               *string `json:"keyId"`
	Type                string  `json:"type"`
	Usage               string  `json:"usage"`
	Key                 *string `json:"key"`
	DisplayName         *string `json:"displayName"`
	StartDateTime       *string `json:"startDateTime"`
	EndDateTime         *string `json:"endDateTime"`
	CustomKeyIdentifier *string `json:"customKeyIdentifier"`
}

// newKey builds a Key from a keyCredential carrying a certificate. The
// validity defaults to the certificate's; given dates must lie inside it,
// as a token signed with the key is only accepted while both hold.
func newKey(in keyCredentialIn, newID func() string) (*core.Key, error) {
	if in.Type != "AsymmetricX509Cert" {
		return nil, &inputError{fmt.Sprintf("Unsupported key credential type '%s'; the simulator supports 'AsymmetricX509Cert'.", in.Type)}
	}
	if in.Usage != "Verify" {
		return nil, &inputError{fmt.Sprintf("Unsupported key credential usage '%s'; the simulator supports 'Verify'.", in.Usage)}
	}
	if in.Key == nil || *in.Key == "" {
		return nil, &inputError{"A new key credential must carry 'key' (the base64-encoded DER X.509 certificate)."}
	}
	cert, err := parseCertificate(*in.Key)
	if err != nil {
		return nil, &inputError{"Invalid value for 'key': " + err.Error()}
	}
	k := &core.Key{
		Type: in.Type, Usage: in.Usage, Cert: cert,
		Start: cert.NotBefore.UTC(), End: cert.NotAfter.UTC(),
		DisplayName: "CN=" + cert.Subject.CommonName,
	}
	sum1 := sha1.Sum(cert.Raw) //nolint:gosec // thumbprint, not a security hash
	sum256 := sha256.Sum256(cert.Raw)
	k.ThumbprintSHA1, k.ThumbprintS256 = sum1[:], sum256[:]
	if in.KeyID != nil && *in.KeyID != "" {
		if !isGUID(*in.KeyID) {
			return nil, &inputError{fmt.Sprintf("Invalid keyId '%s'.", *in.KeyID)}
		}
		k.KeyID = strings.ToLower(*in.KeyID)
	} else {
		k.KeyID = newID()
	}
	if in.DisplayName != nil && *in.DisplayName != "" {
		k.DisplayName = *in.DisplayName
	}
	if in.StartDateTime != nil && *in.StartDateTime != "" {
		t, err := parseGraphTime(*in.StartDateTime)
		if err != nil {
			return nil, &inputError{"Invalid value for 'startDateTime'."}
		}
		k.Start = t
	}
	if in.EndDateTime != nil && *in.EndDateTime != "" {
		t, err := parseGraphTime(*in.EndDateTime)
		if err != nil {
			return nil, &inputError{"Invalid value for 'endDateTime'."}
		}
		k.End = t
	}
	if !k.End.After(k.Start) {
		return nil, &inputError{"Key credential end date must be after its start date."}
	}
	if k.Start.Before(cert.NotBefore.Add(-time.Second)) || k.End.After(cert.NotAfter.Add(time.Second)) {
		return nil, &inputError{"Key credential start and end dates must lie within the certificate's validity period."}
	}
	return k, nil
}

// parseCertificate decodes a keyCredential's key: base64 of DER, or (as
// Graph also tolerates) base64 of a PEM block.
func parseCertificate(b64 string) (*x509.Certificate, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("not valid base64")
	}
	if blk, _ := pem.Decode(raw); blk != nil {
		raw = blk.Bytes
	}
	cert, err := x509.ParseCertificate(raw)
	if err != nil {
		return nil, errors.New("not a DER-encoded X.509 certificate")
	}
	return cert, nil
}

// parseGraphTime reads an ISO 8601 date-time as Graph accepts it.
func parseGraphTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// Graph also takes a date-time without a zone, as UTC.
		if t2, err2 := time.Parse("2006-01-02T15:04:05.9999999", s); err2 == nil {
			return t2.UTC(), nil
		}
		return time.Time{}, fmt.Errorf("parse date-time: %w", err)
	}
	return t.UTC(), nil
}

// proofError is a refused proof-of-possession token. Its message says
// exactly what was wrong; it never includes the token.
type proofError struct{ msg string }

func (e *proofError) Error() string { return e.msg }

// errNoValidCertificate: addKey and removeKey need an existing, currently
// valid certificate to sign the proof; without one, PATCH is the way.
// msgNoValidCertificate is what Graph's caller is told in that case.
var errNoValidCertificate = errors.New("application has no valid certificate")

const msgNoValidCertificate = "The application has no valid certificate to sign a proof of possession, so addKey and " +
	"removeKey cannot be used. Update keyCredentials with PATCH /applications/{id} instead."

// validKeys are the app's certificates that can sign a proof at now.
func validKeys(app *core.Application, now time.Time) []*core.Key {
	var out []*core.Key
	for _, k := range app.Keys {
		if k.Cert == nil || k.Usage != "Verify" || now.Before(k.Start) || !now.Before(k.End) {
			continue
		}
		if _, ok := k.Cert.PublicKey.(*rsa.PublicKey); !ok {
			continue
		}
		out = append(out, k)
	}
	return out
}

// validateProof checks the proof-of-possession JWT addKey and removeKey
// carry: RS256-signed by one of app's currently valid certificates (found by
// the x5t or kid header, else tried in turn), aud = the AAD Graph id, iss =
// the application's object id, nbf ≤ now < exp and exp - nbf ≤ 10 minutes.
// It returns the key that signed it.
func validateProof(token string, app *core.Application, now time.Time) (*core.Key, error) {
	keys := validKeys(app, now)
	if len(keys) == 0 {
		return nil, errNoValidCertificate
	}
	if token == "" {
		return nil, &proofError{"The request has no proof: addKey and removeKey need a 'proof' JWT signed with one of the application's certificates."}
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation())
	unverified, _, err := parser.ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		return nil, &proofError{"The proof is not a well-formed JWT."}
	}
	candidates := keys
	if x5t, ok := unverified.Header["x5t"].(string); ok && x5t != "" {
		candidates = keysMatching(keys, func(k *core.Key) bool { return thumbprintMatches(k, x5t) })
		if len(candidates) == 0 {
			return nil, &proofError{"The proof's x5t header names no currently valid certificate of the application."}
		}
	} else if kid, ok := unverified.Header["kid"].(string); ok && kid != "" {
		candidates = keysMatching(keys, func(k *core.Key) bool {
			return strings.EqualFold(kid, k.KeyID) || strings.EqualFold(kid, hex.EncodeToString(k.ThumbprintSHA1)) || thumbprintMatches(k, kid)
		})
		if len(candidates) == 0 {
			// kid is free-form in many libraries: fall back to trying them all.
			candidates = keys
		}
	}
	if alg, _ := unverified.Header["alg"].(string); alg != jwt.SigningMethodRS256.Alg() {
		return nil, &proofError{fmt.Sprintf("The proof must be signed with RS256, not '%s'.", alg)}
	}
	var (
		signer *core.Key
		claims jwt.MapClaims
	)
	for _, k := range candidates {
		c := jwt.MapClaims{}
		pub := k.Cert.PublicKey
		if _, err := parser.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return pub, nil }); err == nil {
			signer, claims = k, c
			break
		}
	}
	if signer == nil {
		return nil, &proofError{"The proof's signature does not verify with any currently valid certificate of the application."}
	}
	if err := checkProofClaims(claims, app.ObjectID, now); err != nil {
		return nil, err
	}
	return signer, nil
}

// checkProofClaims applies Graph's claim rules to a verified proof.
func checkProofClaims(c jwt.MapClaims, appObjectID string, now time.Time) error {
	aud, err := c.GetAudience()
	if err != nil || !containsString(aud, core.ProofAudience) {
		return &proofError{fmt.Sprintf("The proof's audience (aud) must be '%s'.", core.ProofAudience)}
	}
	iss, err := c.GetIssuer()
	if err != nil || !strings.EqualFold(iss, appObjectID) {
		return &proofError{"The proof's issuer (iss) must be the application's object id."}
	}
	nbf, err := c.GetNotBefore()
	if err != nil || nbf == nil {
		return &proofError{"The proof has no valid not-before (nbf) claim."}
	}
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return &proofError{"The proof has no valid expiry (exp) claim."}
	}
	if now.Before(nbf.Time) {
		return &proofError{"The proof is not yet valid (nbf is in the future)."}
	}
	if !now.Before(exp.Time) {
		return &proofError{"The proof has expired."}
	}
	if exp.Sub(nbf.Time) > maxProofLifetime {
		return &proofError{"The proof lives too long: exp must be at most 10 minutes after nbf."}
	}
	return nil
}

func keysMatching(keys []*core.Key, ok func(*core.Key) bool) []*core.Key {
	var out []*core.Key
	for _, k := range keys {
		if ok(k) {
			out = append(out, k)
		}
	}
	return out
}

// thumbprintMatches compares an x5t (base64url SHA-1, padded or not; some
// libraries use standard base64) with the key's thumbprint.
func thumbprintMatches(k *core.Key, x5t string) bool {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(x5t); err == nil && bytes.Equal(b, k.ThumbprintSHA1) {
			return true
		}
	}
	return false
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
