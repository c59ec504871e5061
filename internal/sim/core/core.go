// Package core is the simulator's core: the simulated world (tenants,
// applications, credentials, vaults) and its seeds, the simulated clock,
// fault injection, access-token minting and validation, the TLS CA and
// listeners, sim.json, and the /_sim/ control API. It knows no Azure
// service's API: each service is a package that registers its routes and
// listeners on a Core through Service, so a new service (ARM VMs,
// Automation, Azure DevOps, Vercel, GitHub, Kubernetes) is one more
// package and touches no other.
package core

import (
	"cmp"
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
	"encoding/json"
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

// Options configure a simulator core.
type Options struct {
	// StateDir receives ca.pem, admin-token and sim.json. Required.
	StateDir string
	// Addr is the host:port of the main HTTPS listener (every service's
	// routes and the control API). Default "127.0.0.1:0".
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
}

// Service is one simulated service. Register runs once, in New: it adds
// the service's routes to the main listener and asks for any listener of
// its own. Everything else a service needs (world, clock, tokens, faults,
// counters) it takes from the Core it is given.
type Service interface {
	Register(c *Core, r *Registrar) error
}

// Starter is an optional interface of a Service. Started runs in Start once
// every listener is open and before sim.json is written, so the service can
// record its addresses (in the world, or in info's fields it owns).
// info.Tenants is filled from the world after every Started has run.
type Starter interface {
	Started(info *simfile.Info) error
}

// Registrar collects a service's routes and listeners during Register.
type Registrar struct {
	c *Core
}

// Handle serves h on the main listener for every path starting with
// prefix. The longest matching prefix wins; "/" is the fallback.
func (r *Registrar) Handle(prefix string, h http.Handler) {
	r.c.routes = append(r.c.routes, route{prefix: prefix, h: h})
}

// Listen asks for a listener of the service's own on 127.0.0.1, HTTPS
// with the simulator's certificate or plain HTTP. Its address is known
// once Start has opened it (in Started).
func (r *Registrar) Listen(name string, useTLS bool, h http.Handler) *Listener {
	l := &Listener{name: name, tls: useTLS, h: h}
	r.c.extra = append(r.c.extra, l)
	return l
}

// Listener is a service's own listener.
type Listener struct {
	name string
	tls  bool
	h    http.Handler
	l    net.Listener
}

// HostPort is the address clients dial, "127.0.0.1:PORT" (empty before
// Start).
func (l *Listener) HostPort() string {
	if l.l == nil {
		return ""
	}
	return ReachableHostPort(l.l.Addr())
}

type route struct {
	prefix string
	h      http.Handler
}

// Listener timeouts. Every request body the simulator accepts is small
// (token forms, Graph JSON, Key Vault secrets), so 30 s to read a whole
// request is generous. WriteTimeout runs from the end of the request
// headers to the end of the response and so includes injected latency (up
// to maxLatency); it is maxLatency plus a minute so a slowed-down response
// is never cut off, while a stuck client still cannot hold a connection
// forever.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = maxLatency + time.Minute
	idleTimeout       = 120 * time.Second
)

// Core is one simulator's shared machinery. Create it with New, then
// Start it.
type Core struct {
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

	// TLS material.
	caPEM   []byte
	tlsCert tls.Certificate

	// Token signing key with its self-signed certificate (JWKS x5c), and
	// the keys it replaced, still published (RotateSigningKey). keyMu
	// guards all four.
	keyMu    sync.RWMutex
	signKey  *rsa.PrivateKey
	signCert *x509.Certificate
	kid      string // == x5t, as Entra does
	retired  []PublishedKey

	faults    faultState
	counters  Counters
	consumers consumerLog

	services []Service
	routes   []route
	extra    []*Listener

	mu        sync.Mutex
	started   bool
	closed    bool
	info      *simfile.Info
	authority string // "https://127.0.0.1:PORT/"
	servers   []*http.Server
	stopCtx   context.CancelFunc
	done      chan struct{}
}

// New builds a simulator core: CA and TLS certificate, the token signing
// key and the seeded world, then registers the services in order. It
// listens on nothing until Start.
func New(opts Options, services ...Service) (*Core, error) {
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
	c := &Core{
		opts:   opts,
		clock:  opts.Clock,
		wall:   clock.Real{},
		logger: opts.Logger,
		done:   make(chan struct{}),
	}
	c.faults.set(opts.Faults)
	if c.adminToken, err = RandomToken(32); err != nil {
		return nil, fmt.Errorf("sim: admin token: %w", err)
	}
	if err := c.buildTLS(); err != nil {
		return nil, fmt.Errorf("sim: TLS: %w", err)
	}
	if err := c.buildSigningKey(); err != nil {
		return nil, fmt.Errorf("sim: signing key: %w", err)
	}
	world, err := SeedWorld(spec, c.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("sim: seed %q: %w", opts.Seed, err)
	}
	if opts.ReplicationDelay != nil {
		for _, t := range world.Tenants() {
			t.ReplicationDelay = *opts.ReplicationDelay
		}
	}
	c.world = world
	reg := &Registrar{c: c}
	reg.Handle("/_sim/", c.controlHandler())
	for _, svc := range services {
		if err := svc.Register(c, reg); err != nil {
			return nil, fmt.Errorf("sim: register %T: %w", svc, err)
		}
	}
	c.services = services
	// Longest prefix first, so "/" is the fallback whatever the order of
	// registration.
	slices.SortStableFunc(c.routes, func(a, b route) int { return len(b.prefix) - len(a.prefix) })
	return c, nil
}

// World returns the simulated directory. Tests and `rotor sim` use it to
// look at or change state; hold World.Update while mutating.
func (c *Core) World() *World { return c.world }

// Clock is simulated time: every expiry, replication and throttling
// decision reads it.
func (c *Core) Clock() clock.Clock { return c.clock }

// Wall is the real clock, only for what parties outside the simulator
// judge by their own wall clock (TLS validity, SDK-minted assertions).
func (c *Core) Wall() clock.Clock { return c.wall }

// Logger is the simulator's logger.
func (c *Core) Logger() *slog.Logger { return c.logger }

// Counters are the request counters services add to (behind /_sim/stats).
func (c *Core) Counters() *Counters { return &c.counters }

// SigningKey is the key access tokens are signed with now, SigningCert its
// self-signed certificate (the JWKS's x5c), and KeyID its kid (== x5t).
func (c *Core) SigningKey() *rsa.PrivateKey {
	c.keyMu.RLock()
	defer c.keyMu.RUnlock()
	return c.signKey
}

// SigningCert is the signing key's certificate.
func (c *Core) SigningCert() *x509.Certificate {
	c.keyMu.RLock()
	defer c.keyMu.RUnlock()
	return c.signCert
}

// KeyID is the signing key's kid and x5t.
func (c *Core) KeyID() string {
	c.keyMu.RLock()
	defer c.keyMu.RUnlock()
	return c.kid
}

// PublishedKey is a token signing key as the JWKS publishes it.
type PublishedKey struct {
	KeyID  string
	Public *rsa.PublicKey
	Cert   *x509.Certificate
}

// maxRetiredKeys is how many replaced signing keys stay published: Entra
// publishes a few keys at once, so tokens signed before a rollover
// validate until they expire.
const maxRetiredKeys = 2

// PublishedKeys are the keys the JWKS lists: the current signing key
// first, then the ones it replaced, newest first.
func (c *Core) PublishedKeys() []PublishedKey {
	c.keyMu.RLock()
	defer c.keyMu.RUnlock()
	out := []PublishedKey{{KeyID: c.kid, Public: &c.signKey.PublicKey, Cert: c.signCert}}
	return append(out, c.retired...)
}

// PublicKey returns the published key with the given kid, or nil.
func (c *Core) PublicKey(kid string) *rsa.PublicKey {
	for _, k := range c.PublishedKeys() {
		if k.KeyID == kid {
			return k.Public
		}
	}
	return nil
}

// RotateSigningKey rolls the token signing key over, as Entra does every
// few weeks: tokens are signed with a new key (a new kid) from now on, and
// the old key stays published beside it (up to maxRetiredKeys of them), so
// a resource that cached the JWKS meets an unknown kid and must fetch the
// keys again. It returns the new kid.
func (c *Core) RotateSigningKey() (string, error) {
	key, cert, kid, err := newSigningKey(c.wall.Now())
	if err != nil {
		return "", fmt.Errorf("sim: new signing key: %w", err)
	}
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	c.retired = append([]PublishedKey{{KeyID: c.kid, Public: &c.signKey.PublicKey, Cert: c.signCert}}, c.retired...)
	if len(c.retired) > maxRetiredKeys {
		c.retired = c.retired[:maxRetiredKeys]
	}
	c.signKey, c.signCert, c.kid = key, cert, kid
	c.logger.Info("simulator signing key rotated", "kid", kid)
	return kid, nil
}

// AdminToken returns the bearer token of the /_sim/ control API.
func (c *Core) AdminToken() string { return c.adminToken }

// Info returns what Start wrote to sim.json, or nil before Start.
func (c *Core) Info() *simfile.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// Done is closed when the server has shut down.
func (c *Core) Done() <-chan struct{} { return c.done }

// AuthorityHost is the Entra authority, "https://127.0.0.1:PORT/" (empty
// before Start): the main listener's base URL.
func (c *Core) AuthorityHost() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authority
}

// Start opens the listeners (the main HTTPS listener and every listener
// the services asked for), starts serving and finally writes ca.pem,
// admin-token and sim.json into the state dir. It returns once the
// simulator is answering; the server stops on Close or when ctx is done.
func (c *Core) Start(ctx context.Context) (err error) {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("sim: already started")
	}
	c.started = true
	c.mu.Unlock()

	stateDir, err := filepath.Abs(c.opts.StateDir)
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

	mainL, err := listen(c.opts.Addr)
	if err != nil {
		return err
	}
	for _, x := range c.extra {
		if x.l, err = listen("127.0.0.1:0"); err != nil {
			return err
		}
	}
	authority := "https://" + ReachableHostPort(mainL.Addr()) + "/"
	c.mu.Lock()
	c.authority = authority
	c.mu.Unlock()

	info := &simfile.Info{
		AuthorityHost: authority,
		CAFile:        filepath.Join(stateDir, "ca.pem"),
		ControlURL:    authority + "_sim/",
	}
	for _, svc := range c.services {
		if st, ok := svc.(Starter); ok {
			if err := st.Started(info); err != nil {
				return fmt.Errorf("sim: start %T: %w", svc, err)
			}
		}
	}
	c.addTenants(info)
	c.mu.Lock()
	c.info = info
	c.mu.Unlock()

	tlsConf := &tls.Config{Certificates: []tls.Certificate{c.tlsCert}, MinVersion: tls.VersionTLS12}
	errLog := slog.NewLogLogger(c.logger.Handler(), slog.LevelDebug)
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
	mainSrv := newServer(c.logRequests("main", c.mainHandler()), true)
	extraSrvs := make([]*http.Server, len(c.extra))
	for i, x := range c.extra {
		extraSrvs[i] = newServer(c.logRequests(x.name, x.h), x.tls)
	}

	c.mu.Lock()
	c.servers = append([]*http.Server{mainSrv}, extraSrvs...)
	c.mu.Unlock()

	serve := func(srv *http.Server, l net.Listener, tlsOn bool) {
		go func() {
			var err error
			if tlsOn {
				err = srv.ServeTLS(l, "", "")
			} else {
				err = srv.Serve(l)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				c.logger.Error("simulator listener stopped", "addr", l.Addr().String(), "err", err)
			}
		}()
	}
	serve(mainSrv, mainL, true)
	for i, x := range c.extra {
		serve(extraSrvs[i], x.l, x.tls)
	}

	if err := simfile.WriteFileAtomic(info.CAFile, c.caPEM, 0o644); err != nil {
		c.Close()
		return fmt.Errorf("sim: write CA: %w", err)
	}
	if err := simfile.WriteFileAtomic(filepath.Join(stateDir, "admin-token"), []byte(c.adminToken+"\n"), 0o600); err != nil {
		c.Close()
		return fmt.Errorf("sim: write admin token: %w", err)
	}
	if err := simfile.Write(stateDir, info); err != nil {
		c.Close()
		return fmt.Errorf("sim: write %s: %w", simfile.FileName, err)
	}

	stopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.mu.Lock()
	c.stopCtx = cancel
	c.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			c.Close()
		case <-stopCtx.Done():
		}
	}()

	c.logger.Info("simulator started", "authority", authority, "seed", c.opts.Seed,
		"tenants", len(info.Tenants), "state_dir", stateDir)
	return nil
}

// Close shuts every listener down gracefully (5 s grace) and is safe to call
// more than once.
func (c *Core) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	servers := c.servers
	if c.stopCtx != nil {
		c.stopCtx()
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	close(c.done)
	c.logger.Info("simulator stopped")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sim: shutdown: %w", err)
	}
	return nil
}

// mainHandler routes the main listener by path prefix, longest first. It
// dispatches by hand rather than with one ServeMux because Entra's
// "/{tenant}/..." patterns would conflict with the fixed prefixes.
func (c *Core) mainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range c.routes {
			if strings.HasPrefix(r.URL.Path, rt.prefix) {
				rt.h.ServeHTTP(w, r)
				return
			}
		}
		WriteJSON(w, http.StatusNotFound, PlainJSON, map[string]any{"error": map[string]any{
			"code": "NotFound", "message": "The simulator serves nothing at " + r.URL.Path + ".",
		}})
	})
}

// logRequests logs one line per request: method, path (never the query,
// which may carry identifiers a caller did not mean to log), status, time.
func (c *Core) logRequests(listener string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := c.wall.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		c.logger.Debug("sim request", "listener", listener, "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration", c.wall.Now().Sub(start))
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

// addTenants fills info.Tenants from the world: the identities, vaults and
// policy limits a client needs.
func (c *Core) addTenants(info *simfile.Info) {
	c.world.RLock()
	defer c.world.RUnlock()
	for _, t := range c.world.TenantsLocked() {
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
		for _, name := range SortedKeys(t.Vaults) {
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
			kv.KeyPermissions = permNames(v.KeyAccess)
			kv.CertificatePermissions = permNames(v.CertificateAccess)
			kv.SKU = cmp.Or(v.SKU, "standard")
			if id := v.VaultResourceID(); id != "" {
				kv.ResourceID, kv.SubscriptionID, kv.ResourceGroup = id, v.SubscriptionID, v.ResourceGroup
				kv.ReadableBy = t.readersOf(id)
			}
			st.KeyVaults = append(st.KeyVaults, kv)
		}
		for _, sub := range t.Subscriptions {
			st.Subscriptions = append(st.Subscriptions, simfile.Subscription{ID: sub.ID, DisplayName: sub.DisplayName})
		}
		if t.Policy != nil && t.Policy.MaxPasswordLifetime > 0 {
			st.PasswordLifetimeLimit = t.Policy.MaxPasswordLifetime.String()
		}
		for _, u := range t.UsersInOrder() {
			st.Users = append(st.Users, simfile.User{ObjectID: u.ObjectID, UserPrincipalName: u.UserPrincipalName,
				DisplayName: u.DisplayName, Password: t.UserPasswords[u.UserPrincipalName]})
		}
		info.Tenants = append(info.Tenants, st)
	}
}

// buildTLS makes a throwaway CA and a server certificate for loopback.
// ECDSA keeps start-up fast. Validity is judged by clients against their
// wall clock, so it is computed from the wall clock, not simulated time.
func (c *Core) buildTLS() error {
	now := c.wall.Now()
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
	c.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	c.tlsCert = tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}
	return nil
}

// buildSigningKey makes the RSA key that signs every access token, with a
// self-signed certificate so the JWKS can publish x5c and x5t like Entra.
func (c *Core) buildSigningKey() error {
	key, cert, kid, err := newSigningKey(c.wall.Now())
	if err != nil {
		return err
	}
	c.signKey, c.signCert, c.kid = key, cert, kid
	return nil
}

// newSigningKey makes an RSA key with a self-signed certificate valid
// around now, and its kid (the certificate's SHA-1 thumbprint).
func newSigningKey(now time.Time) (*rsa.PrivateKey, *x509.Certificate, string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "rotor simulator token signing"},
		NotBefore:    now.AddDate(-1, 0, 0),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, "", fmt.Errorf("certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, "", fmt.Errorf("parse certificate: %w", err)
	}
	sum := sha1.Sum(der) //nolint:gosec // x5t is SHA-1 by definition.
	return key, cert, base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// ReachableHostPort turns a listener address into one a client can dial:
// an unspecified address (0.0.0.0, ::) becomes 127.0.0.1.
func ReachableHostPort(a net.Addr) string {
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

// RandomToken returns n random bytes, base64url encoded: for admin tokens,
// identity headers and ids that must not be guessable.
func RandomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// permNames renders an access policy list for sim.json; nil when empty.
func permNames[P ~string](m map[string][]P) map[string][]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string][]string, len(m))
	for oid, perms := range m {
		for _, p := range perms {
			out[oid] = append(out[oid], string(p))
		}
	}
	return out
}

// SortedKeys returns a map's keys in order, for stable listings.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// PlainJSON is the content type of every JSON answer but Graph's (Entra,
// ARM, Key Vault, managed identity, control API).
const PlainJSON = "application/json; charset=utf-8"

// WriteJSON marshals v and writes it with status and content type ct.
func WriteJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the simulator's own types are marshalled; this is a bug.
		http.Error(w, "internal error encoding response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
