package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint.
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// Options configure a simulator.
type Options struct {
	// StateDir receives ca.pem, admin-token and sim.json. Required.
	StateDir string
	// Addr is the host:port of the main HTTPS listener (Entra, Graph, ARM,
	// control API). Default "127.0.0.1:0".
	Addr string
	// Seed is "demo" (the default) or a bulk spec
	// "apps=N,tenants=T,expiring=DURATION[,replication=DURATION]".
	Seed string
	// Clock is the simulated time source. Nil means a *clock.Offset, so the
	// control API can jump the simulated world forward in time.
	Clock clock.Clock
	// Logger receives request and lifecycle logs; nil discards them.
	Logger *slog.Logger
	// ReplicationDelay, when set, overrides every seeded tenant's delay.
	ReplicationDelay *time.Duration
	// Faults is the initial fault injection; it can be changed at run time
	// through the control API or SetFaults.
	Faults FaultConfig
	// OnSecretIssued, when set, is called with every password the
	// simulator hands out through addPassword. Entra never shows a secret
	// twice and the simulator keeps only hashes; tests use this to check
	// that no issued value ends up anywhere it should not.
	OnSecretIssued func(tenantID, appObjectID, keyID, value string)
}

// Listener timeouts. Every request body the simulator accepts is small
// (token forms, Graph JSON up to maxGraphBody, Key Vault secrets), so 30 s
// to read a whole request is generous. WriteTimeout runs from the end of
// the request headers to the end of the response and so includes injected
// latency (up to maxLatency); it is maxLatency plus a minute so a slowed-down
// response is never cut off, while a stuck client still cannot hold a
// connection forever.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = maxLatency + time.Minute
	idleTimeout       = 120 * time.Second
)

// Server is one running simulator. Create it with New, then Start it.
type Server struct {
	opts Options
	// clock is simulated time: every expiry, replication and throttling
	// decision reads it.
	clock clock.Clock
	// wall is the real clock, used only where a party outside the
	// simulator judges time by its own wall clock: TLS certificate validity
	// and client assertions minted by SDKs.
	wall   clock.Clock
	logger *slog.Logger
	world  *World

	adminToken string
	miHeader   string

	// TLS material.
	caPEM   []byte
	tlsCert tls.Certificate

	// Token signing key with its self-signed certificate (JWKS x5c).
	signKey  *rsa.PrivateKey
	signCert *x509.Certificate
	kid      string // == x5t, as Entra does

	faults   faultState
	buckets  bucketSet
	counters counters

	mu        sync.Mutex
	started   bool
	closed    bool
	info      *simfile.Info
	authority string // "https://127.0.0.1:PORT/"
	servers   []*http.Server
	vaultPort map[string]*Vault // vault listener port -> vault
	stopCtx   context.CancelFunc
	done      chan struct{}
}

// New builds a simulator: CA and TLS certificate, the token signing key and
// the seeded world. It listens on nothing until Start.
func New(opts Options) (*Server, error) {
	if opts.StateDir == "" {
		return nil, errors.New("sim: state dir is required")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Seed == "" {
		opts.Seed = "demo"
	}
	if opts.Clock == nil {
		opts.Clock = &clock.Offset{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.Faults.validate(); err != nil {
		return nil, fmt.Errorf("sim: faults: %w", err)
	}
	spec, err := ParseSeed(opts.Seed)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &Server{
		opts:      opts,
		clock:     opts.Clock,
		wall:      clock.Real{},
		logger:    opts.Logger,
		vaultPort: map[string]*Vault{},
		done:      make(chan struct{}),
	}
	s.faults.set(opts.Faults)
	s.buckets.init()
	if s.adminToken, err = randomToken(32); err != nil {
		return nil, fmt.Errorf("sim: admin token: %w", err)
	}
	if s.miHeader, err = randomToken(24); err != nil {
		return nil, fmt.Errorf("sim: identity header: %w", err)
	}
	if err := s.buildTLS(); err != nil {
		return nil, fmt.Errorf("sim: TLS: %w", err)
	}
	if err := s.buildSigningKey(); err != nil {
		return nil, fmt.Errorf("sim: signing key: %w", err)
	}
	world, err := seedWorld(spec, s.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("sim: seed %q: %w", opts.Seed, err)
	}
	if opts.ReplicationDelay != nil {
		for _, t := range world.Tenants() {
			t.ReplicationDelay = *opts.ReplicationDelay
		}
	}
	s.world = world
	return s, nil
}

// World returns the simulated directory. Tests and `rotor sim` use it to
// look at or change state; hold World.Update while mutating.
func (s *Server) World() *World { return s.world }

// AdminToken returns the bearer token of the /_sim/ control API.
func (s *Server) AdminToken() string { return s.adminToken }

// Info returns what Start wrote to sim.json, or nil before Start.
func (s *Server) Info() *simfile.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// Done is closed when the server has shut down.
func (s *Server) Done() <-chan struct{} { return s.done }

// Start opens the listeners (main HTTPS, one HTTPS listener per Key Vault,
// plain-HTTP managed identity endpoint), starts serving and finally writes
// ca.pem, admin-token and sim.json into the state dir. It returns once the
// simulator is answering; the server stops on Close or when ctx is done.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("sim: already started")
	}
	s.started = true
	s.mu.Unlock()

	stateDir, err := filepath.Abs(s.opts.StateDir)
	if err != nil {
		return fmt.Errorf("sim: state dir: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("sim: create state dir: %w", err)
	}
	if err := checkStateDir(stateDir); err != nil {
		return fmt.Errorf("sim: %w", err)
	}

	var listeners []net.Listener
	defer func() {
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
		}
	}()
	listen := func(addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("sim: listen on %s: %w", addr, err)
		}
		listeners = append(listeners, l)
		return l, nil
	}

	mainL, err := listen(s.opts.Addr)
	if err != nil {
		return err
	}
	miL, err := listen("127.0.0.1:0")
	if err != nil {
		return err
	}
	authority := "https://" + reachableHostPort(mainL.Addr()) + "/"

	// One listener per vault: azsecrets parses the vault URL from secret
	// ids and expects the vault at the root of its host.
	type vaultListener struct {
		l net.Listener
		v *Vault
	}
	var vls []vaultListener
	s.world.mu.Lock()
	for _, t := range s.world.tenantsLocked() {
		for _, name := range sortedKeys(t.Vaults) {
			v := t.Vaults[name]
			l, lerr := listen("127.0.0.1:0")
			if lerr != nil {
				s.world.mu.Unlock()
				return lerr
			}
			v.Host = reachableHostPort(l.Addr())
			v.URL = "https://" + v.Host + "/"
			_, port, _ := net.SplitHostPort(v.Host)
			s.mu.Lock()
			s.vaultPort[port] = v
			s.mu.Unlock()
			vls = append(vls, vaultListener{l, v})
		}
	}
	s.world.mu.Unlock()

	info := s.buildInfo(authority, "http://"+reachableHostPort(miL.Addr())+"/msi/token", filepath.Join(stateDir, "ca.pem"))
	s.mu.Lock()
	s.authority = authority
	s.info = info
	s.mu.Unlock()

	tlsConf := &tls.Config{Certificates: []tls.Certificate{s.tlsCert}, MinVersion: tls.VersionTLS12}
	errLog := slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug)
	newServer := func(h http.Handler, tlsOn bool) *http.Server {
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          errLog,
		}
		if tlsOn {
			srv.TLSConfig = tlsConf.Clone()
		}
		return srv
	}
	mainSrv := newServer(s.logRequests("main", s.mainHandler()), true)
	miSrv := newServer(s.logRequests("msi", s.miHandler()), false)
	kv := s.keyVaultHandler()
	vaultSrvs := make([]*http.Server, len(vls))
	for i := range vls {
		vaultSrvs[i] = newServer(s.logRequests("vault", s.countVault(s.withFaults(kindVault, kv))), true)
	}

	s.mu.Lock()
	s.servers = append([]*http.Server{mainSrv, miSrv}, vaultSrvs...)
	s.mu.Unlock()

	serve := func(srv *http.Server, l net.Listener, tlsOn bool) {
		go func() {
			var err error
			if tlsOn {
				err = srv.ServeTLS(l, "", "")
			} else {
				err = srv.Serve(l)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logger.Error("simulator listener stopped", "addr", l.Addr().String(), "err", err)
			}
		}()
	}
	serve(mainSrv, mainL, true)
	serve(miSrv, miL, false)
	for i, vl := range vls {
		serve(vaultSrvs[i], vl.l, true)
	}

	if err := simfile.WriteFileAtomic(info.CAFile, s.caPEM, 0o644); err != nil {
		s.Close()
		return fmt.Errorf("sim: write CA: %w", err)
	}
	if err := simfile.WriteFileAtomic(filepath.Join(stateDir, "admin-token"), []byte(s.adminToken+"\n"), 0o600); err != nil {
		s.Close()
		return fmt.Errorf("sim: write admin token: %w", err)
	}
	if err := simfile.Write(stateDir, info); err != nil {
		s.Close()
		return fmt.Errorf("sim: write %s: %w", simfile.FileName, err)
	}

	stopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.stopCtx = cancel
	s.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-stopCtx.Done():
		}
	}()

	s.logger.Info("simulator started", "authority", authority, "seed", s.opts.Seed,
		"tenants", len(info.Tenants), "state_dir", stateDir)
	return nil
}

// Close shuts every listener down gracefully (5 s grace) and is safe to call
// more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	if s.stopCtx != nil {
		s.stopCtx()
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	close(s.done)
	s.logger.Info("simulator stopped")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sim: shutdown: %w", err)
	}
	return nil
}

// vaultByHost finds the vault served at host ("127.0.0.1:PORT",
// "localhost:PORT", "[::1]:PORT": the port decides), or nil.
func (s *Server) vaultByHost(host string) *Vault {
	_, port, err := net.SplitHostPort(host)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vaultPort[port]
}

// authorityHost is the Entra authority, "https://127.0.0.1:PORT/" (empty
// before Start).
func (s *Server) authorityHost() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authority
}

// mainHandler routes the main listener. It dispatches on path prefix by hand
// rather than with one ServeMux because "/{tenant}/..." patterns would
// conflict with the fixed prefixes.
func (s *Server) mainHandler() http.Handler {
	entra := s.withFaults(kindToken, s.entraHandler())
	graph := s.countGraph(s.withFaults(kindGraph, s.graphHandler()))
	arm := s.withFaults(kindARM, http.HandlerFunc(s.serveARM))
	control := s.controlHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, "/_sim/"):
			control.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/graph/"):
			graph.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/arm/"):
			arm.ServeHTTP(w, r)
		default:
			entra.ServeHTTP(w, r)
		}
	})
}

// serveARM answers every Resource Manager call with ARM's 404 shape until
// the ARM surfaces are simulated. The bearer token is checked first, as
// ARM does, so a client's ARM credential is exercised even against the
// stub and a bad token is never mistaken for a missing resource.
func (s *Server) serveARM(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		armUnauthorized(w, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return
	}
	if _, err := s.authenticate(r, ARMResource); err != nil {
		msg := "The access token is invalid."
		var ae *AuthError
		if errors.As(err, &ae) && ae.Message != "" {
			msg = ae.Message
		}
		armUnauthorized(w, "InvalidAuthenticationToken", msg)
		return
	}
	writeJSON(w, http.StatusNotFound, plainJSON, map[string]any{"error": map[string]any{
		"code":    "NotFound",
		"message": fmt.Sprintf("The simulator does not implement %s %s.", r.Method, r.URL.Path),
	}})
}

// armUnauthorized is ARM's 401: the error body and the bearer challenge
// naming the authority, as management.azure.com sends them.
func armUnauthorized(w http.ResponseWriter, code, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="`+strings.ReplaceAll(msg, `"`, `'`)+`"`)
	writeJSON(w, http.StatusUnauthorized, plainJSON, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// logRequests logs one line per request: method, path (never the query,
// which may carry identifiers a caller did not mean to log), status, time.
func (s *Server) logRequests(listener string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.wall.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.logger.Debug("sim request", "listener", listener, "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration", s.wall.Now().Sub(start))
	})
}

// statusRecorder remembers the status for the request log and still lets
// the fault middleware hijack the connection.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach Hijack and Flush.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) buildInfo(authority, miEndpoint, caFile string) *simfile.Info {
	info := &simfile.Info{
		AuthorityHost:           authority,
		GraphURL:                authority + "graph/v1.0",
		GraphAudience:           GraphResource,
		ARMURL:                  authority + "arm/",
		ARMAudience:             ARMResource,
		KeyVaultAudience:        KeyVaultResource,
		ManagedIdentityEndpoint: miEndpoint,
		ManagedIdentityHeader:   s.miHeader,
		CAFile:                  caFile,
		ControlURL:              authority + "_sim/",
	}
	s.world.mu.RLock()
	defer s.world.mu.RUnlock()
	for _, t := range s.world.tenantsLocked() {
		st := simfile.Tenant{ID: t.ID, Name: t.Name, Domain: t.Domain, KeyVaults: []simfile.KeyVault{}}
		if app := t.AppByAppID(t.RotationClientID); app != nil {
			st.Rotation = simfile.Identity{ClientID: app.AppID, ClientSecret: t.RotationSecret, AppObjectID: app.ObjectID}
			if sp := t.SPByAppID(app.AppID); sp != nil {
				st.Rotation.ObjectID = sp.ObjectID
			}
		}
		if sp := t.SPByAppID(t.ManagedIdentityClientID); sp != nil {
			st.ManagedIdentity = &simfile.ManagedIdentity{ClientID: sp.AppID, PrincipalID: sp.ObjectID}
		}
		if sp := t.SPByAppID(t.ConsumerClientID); sp != nil {
			st.Consumer = &simfile.ManagedIdentity{ClientID: sp.AppID, PrincipalID: sp.ObjectID}
		}
		for _, name := range sortedKeys(t.Vaults) {
			v := t.Vaults[name]
			kv := simfile.KeyVault{Name: name, URL: v.URL}
			if len(v.Access) > 0 {
				kv.SecretPermissions = map[string][]string{}
				for oid, perms := range v.Access {
					for _, p := range perms {
						kv.SecretPermissions[oid] = append(kv.SecretPermissions[oid], string(p))
					}
				}
			}
			st.KeyVaults = append(st.KeyVaults, kv)
		}
		if t.Policy != nil && t.Policy.MaxPasswordLifetime > 0 {
			st.PasswordLifetimeLimit = t.Policy.MaxPasswordLifetime.String()
		}
		info.Tenants = append(info.Tenants, st)
	}
	return info
}

// buildTLS makes a throwaway CA and a server certificate for loopback.
// ECDSA keeps start-up fast. Validity is judged by clients against their
// wall clock, so it is computed from the wall clock, not simulated time.
func (s *Server) buildTLS() error {
	now := s.wall.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "rotor simulator CA", Organization: []string{"rotor"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("parse CA certificate: %w", err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("server key: %w", err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	s.tlsCert = tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}
	return nil
}

// buildSigningKey makes the RSA key that signs every access token, with a
// self-signed certificate so the JWKS can publish x5c and x5t like Entra.
func (s *Server) buildSigningKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	now := s.wall.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "rotor simulator token signing"},
		NotBefore:    now.AddDate(-1, 0, 0),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse certificate: %w", err)
	}
	sum := sha1.Sum(der) //nolint:gosec // x5t is SHA-1 by definition.
	s.signKey, s.signCert = key, cert
	s.kid = base64.RawURLEncoding.EncodeToString(sum[:])
	return nil
}

// reachableHostPort turns a listener address into one a client can dial:
// an unspecified address (0.0.0.0, ::) becomes 127.0.0.1.
func reachableHostPort(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return big.NewInt(1)
	}
	return n
}

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// plainJSON is the content type of every non-Graph JSON answer (Entra,
// ARM, managed identity, control API); Graph's own is graphJSON.
const plainJSON = "application/json; charset=utf-8"

// Tenant returns the tenant with the given id, name or domain, or nil.
// Safe for concurrent use; change what it returns only inside Update.
func (w *World) Tenant(idOrName string) *Tenant {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.tenantLocked(idOrName)
}

// Tenants returns the tenants in seed order.
func (w *World) Tenants() []*Tenant {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.tenantsLocked()
}

// Update runs fn holding the world's write lock, so tests and tools can
// change the directory while handlers run.
func (w *World) Update(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
}

// SetSecretPermissions replaces what the principal with objectID may do
// with secrets in the named vault of tenant (id, name or domain); no
// permissions removes it from the vault's access policy. Tests use it to
// arrange a vault with rights rotor itself must not have (delete, get).
func (w *World) SetSecretPermissions(tenant, vault, objectID string, perms ...SecretPermission) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.tenantLocked(tenant)
	if t == nil {
		return fmt.Errorf("sim: tenant %q not found", tenant)
	}
	v := t.Vaults[vault]
	if v == nil {
		return fmt.Errorf("sim: tenant %s has no vault %q", t.Name, vault)
	}
	v.Revoke(objectID, AllSecretPermissions...)
	v.Grant(objectID, perms...)
	return nil
}
