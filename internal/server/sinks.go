package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/adoconnection"
	"github.com/rotor-dev/rotor/internal/sink/adogit"
	"github.com/rotor-dev/rotor/internal/sink/adovariables"
	"github.com/rotor-dev/rotor/internal/sink/automation"
	"github.com/rotor-dev/rotor/internal/sink/github"
	"github.com/rotor-dev/rotor/internal/sink/keyvault"
	"github.com/rotor-dev/rotor/internal/sink/kubernetes"
	"github.com/rotor-dev/rotor/internal/sink/logicapp"
	"github.com/rotor-dev/rotor/internal/sink/vercel"
	"github.com/rotor-dev/rotor/internal/sink/webhook"
)

// sinkKinds is every kind of sink rotor delivers to. It is the only list:
// a new kind is one line here and a package under internal/sink/.
func sinkKinds() []sink.Kind {
	return []sink.Kind{
		keyvault.Kind{},
		vercel.Kind{},
		webhook.Kind{},
		adogit.Kind{},
		automation.Kind{},
		logicapp.Kind{},
		adoconnection.Kind{},
		adovariables.Kind{},
		github.Kind{},
		kubernetes.Kind{},
	}
}

// sinkDepsParams is what the sinks' dependencies are made from.
type sinkDepsParams struct {
	conns *Conns
	// endpoints are the connections' clouds, in configuration order.
	endpoints []azure.Endpoints
	// baseDir is rotor.yaml's directory: relative {file: …} references
	// are relative to it, as in the configuration itself.
	baseDir string
	getenv  func(string) string
	clock   clock.Clock
	log     *slog.Logger
	// keyVault reads sinks' {keyvault: …} references as the host
	// identity (nil: refused).
	keyVault config.SecretResolver
}

// newSinkDeps makes the one sink.Deps every kind is bound to. It runs once
// the connections exist, so nothing in it is half-built.
func newSinkDeps(p sinkDepsParams) sink.Deps {
	getenv := p.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	log := cmp.Or(p.log, slog.New(slog.DiscardHandler))
	return sink.Deps{
		Credentials: p.conns,
		Secrets:     &secretResolver{getenv: getenv, baseDir: p.baseDir, keyVault: p.keyVault},
		HTTPClient:  sinkHTTPClient(p.endpoints),
		Clock:       cmp.Or[clock.Clock](p.clock, clock.Real{}),
		Logger:      log.With("component", "sink"),
	}
}

// sinkHTTPClient is the client of sinks that speak plain HTTP (Vercel,
// GitHub, webhooks). When every connection is on the simulator, rotor is a
// demo or a test: the client is the simulator's, which trusts only its CA
// and uses no proxy, so nothing leaves loopback. Otherwise it is a client
// with the system's roots and bounded timeouts; trusting a simulator's CA
// there as well would let a local file vouch for any host.
func sinkHTTPClient(eps []azure.Endpoints) *http.Client {
	var simClient *http.Client
	for _, ep := range eps {
		if ep.Cloud != azure.Sim || ep.HTTPClient == nil {
			simClient = nil
			break
		}
		if simClient == nil {
			simClient = ep.HTTPClient
		}
	}
	if len(eps) > 0 && simClient != nil {
		return simClient
	}
	return &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: time.Minute,
		},
	}
}

// secretResolver resolves a sink's own credential references at use:
// {env: NAME} from the environment, {file: PATH} from the file (relative
// to rotor.yaml), read again at every use so a rotated file is picked up.
// {keyvault: …} is read with rotor's host identity (host_identity), as
// connections' own Key Vault references are; without one it is refused
// with a clear, permanent error.
type secretResolver struct {
	getenv  func(string) string
	baseDir string
	// keyVault reads Key Vault references as the host identity; nil when
	// host_identity is not configured.
	keyVault config.SecretResolver
}

var _ sink.SecretResolver = (*secretResolver)(nil)

// errKeyVaultRefs says why a sink's Key Vault reference cannot be read.
var errKeyVaultRefs = errors.New("Key Vault references ({keyvault: …}) in sink settings are read with rotor's own identity: set host_identity in rotor.yaml, or use {env: NAME} or {file: PATH}")

func (r *secretResolver) Resolve(ctx context.Context, ref sink.SecretRef) (secret.Value, error) {
	var v string
	switch {
	case ref.Env != "":
		v = r.getenv(ref.Env)
		if v == "" {
			return secret.Value{}, sink.Permanent(fmt.Errorf("%s is not set or is empty", ref))
		}
	case ref.File != "":
		path := ref.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(r.baseDir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			// The path error names the file; it cannot hold the content.
			return secret.Value{}, fmt.Errorf("read %s: %w", ref, err)
		}
		v = strings.TrimSpace(string(b))
		if v == "" {
			return secret.Value{}, sink.Permanent(fmt.Errorf("%s is empty", ref))
		}
	case ref.KeyVault != nil:
		if r.keyVault == nil {
			return secret.Value{}, sink.Permanent(fmt.Errorf("%s: %w", ref, errKeyVaultRefs))
		}
		val, err := r.keyVault.KeyVaultSecret(ctx, ref.KeyVault.VaultURL, ref.KeyVault.Secret)
		if err != nil {
			return secret.Value{}, fmt.Errorf("read %s: %w", ref, err)
		}
		if val.IsZero() {
			return secret.Value{}, sink.Permanent(fmt.Errorf("%s is empty", ref))
		}
		return val, nil
	default:
		return secret.Value{}, sink.Permanent(errors.New("empty secret reference"))
	}
	return secret.New(v), nil
}
