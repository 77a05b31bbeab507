package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/urfave/cli/v2"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/aliases"
	"mailmig/server/auth"
	"mailmig/server/auth/gssapi"
	"mailmig/server/delivery"
	"mailmig/server/tlsconf"
	"mailmig/state"
)

// env is what commands share: the configuration and what is built from
// it. loadBase fills cfg, log and db; loadEnv everything.
type env struct {
	cfg *config.Config
	db  *state.DB
	log *slog.Logger

	// tls is nil when no certificate is configured (listeners needing TLS
	// then refuse to start); tlsReload re-reads the files on SIGHUP.
	tls       *tls.Config
	tlsReload *tlsconf.Reloader
	auth      *auth.Authenticator
	passwords *auth.Chain // the password sources, in [auth] sources order
	gssapi    *gssapi.Acceptor

	maildirFor func(user string) (string, error)
	homeFor    func(user string) (string, error)

	// aclChanged is set by the IMAP server: the web page calls it after
	// changing a folder's ACL.
	aclChanged func()

	outbound  delivery.Sender
	deliverer *delivery.Deliverer
	aliases   *aliases.Table

	mu      sync.Mutex
	addrs   map[string][]string
	reloads []func(*config.Config)
	// conns counts connections per protocol (serve_limits.go).
	conns map[string]*connLimits
}

// onReload registers f to run with the new configuration after SIGHUP.
func (e *env) onReload(f func(*config.Config)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reloads = append(e.reloads, f)
}

// loadConfig reads --config (absent default file = defaults) and applies
// --data.
func loadConfig(c *cli.Context) (*config.Config, error) {
	path := c.String("config")
	explicit := c.IsSet("config")
	if c.String("data") != "" && !explicit {
		path = ""
	}
	var cfg *config.Config
	var err error
	if path == "" {
		cfg = config.Default()
	} else {
		cfg, err = config.Load(path, !explicit)
		if err != nil {
			return nil, err
		}
	}
	if dir := c.String("data"); dir != "" {
		if err := cfg.ApplyDataDir(dir); err != nil {
			return nil, err
		}
	}
	if lvl := c.String("log-level"); lvl != "" {
		cfg.Server.LogLevel = lvl
	}
	return cfg, nil
}

// newLogger makes the logger of server.log_level and server.log_format
// ("json": one JSON object a line; anything else: slog's text lines).
func newLogger(level, format string) *slog.Logger {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: l}
	mk := func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, opts) }
	if format == "json" {
		mk = func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, opts) }
	}
	// Under systemd each line carries its level for the journal (journal.go).
	return slog.New(newHandler(os.Stderr, journalStream(), mk))
}

// loadBase reads the configuration and opens the state database.
func loadBase(c *cli.Context) (*env, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, log: newLogger(cfg.Server.LogLevel, cfg.Server.LogFormat), addrs: map[string][]string{}}
	e.db, err = state.Open(cfg.State.Database)
	if err != nil {
		return nil, err
	}
	e.maildirFor = cfg.MaildirFor
	e.homeFor = cfg.HomeFor
	if err := applyClock(e); err != nil { // MAILMIG_CLOCK_OFFSET (demo, tests)
		e.Close()
		return nil, err
	}
	return e, nil
}

// loadEnv builds everything a server or a delivery needs. adjust, if
// given, changes the configuration (command-line overrides) before
// anything is built from it.
func loadEnv(c *cli.Context, adjust ...func(*config.Config) error) (*env, error) {
	return loadEnvTLS(c, true, adjust...)
}

// loadEnvTLS is loadEnv; withTLS false skips the certificate and key
// (mailmig deliver runs as the MTA's delivery user and needs neither).
func loadEnvTLS(c *cli.Context, withTLS bool, adjust ...func(*config.Config) error) (*env, error) {
	e, err := loadBase(c)
	if err != nil {
		return nil, err
	}
	for _, f := range adjust {
		if err := f(e.cfg); err != nil {
			e.Close()
			return nil, err
		}
	}
	if withTLS {
		if err := e.loadTLS(); err != nil {
			e.Close()
			return nil, err
		}
	}
	a := e.cfg.Auth
	if e.passwords, err = newPasswordChain(e); err != nil {
		e.Close()
		return nil, err
	}
	if e.gssapi, err = newGSSAPI(e); err != nil {
		e.Close()
		return nil, err
	}
	e.auth = &auth.Authenticator{
		Checker: e.passwords, Logger: e.log.With("component", "auth"),
		FailDelay: a.FailDelay.D(), MaxDelay: a.MaxDelay.D(), Window: a.Window.D(),
		MaxFailuresPerIP: a.MaxFailuresPerIP, MaxFailuresPerIPUser: a.MaxFailuresPerIPUser,
		MaxConcurrent: a.MaxConcurrentChecks,
	}
	if e.outbound, err = newOutbound(e); err != nil {
		e.Close()
		return nil, fmt.Errorf("outgoing queue: %w", err)
	}
	if e.aliases, err = newAliasTable(e); err != nil {
		e.Close()
		return nil, err
	}
	if e.deliverer, err = newDeliverer(e); err != nil {
		e.Close()
		return nil, fmt.Errorf("delivery: %w", err)
	}
	return e, nil
}

func (e *env) loadTLS() error {
	cfg := e.cfg
	if cfg.DataDir != "" {
		if err := tlsconf.EnsureSelfSigned(cfg.TLS.Cert, cfg.TLS.Key, cfg.Server.Hostname); err != nil {
			return fmt.Errorf("self-signed certificate: %w", err)
		}
	}
	if _, err := os.Stat(cfg.TLS.Cert); errors.Is(err, os.ErrNotExist) {
		e.log.Warn("no TLS certificate; TLS listeners and STARTTLS are disabled", "cert", cfg.TLS.Cert)
		return nil
	}
	r, err := tlsconf.Load(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return err
	}
	e.tlsReload = r
	if r.MinVersion, err = tlsconf.ParseMinVersion(cfg.TLS.MinVersion); err != nil {
		return err
	}
	if r.MinVersion < tls.VersionTLS12 {
		e.log.Warn("tls.min_version below 1.2: TLS 1.0/1.1 are broken and offered only for old clients", "min_version", cfg.TLS.MinVersion)
	}
	e.tls = r.Config()
	return nil
}

// Close releases the database.
func (e *env) Close() {
	if e.db != nil {
		e.db.Close()
	}
}

// addListener records a bound listener for serve.addrs.
func (e *env) addListener(name string, ln net.Listener) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addrs[name] = append(e.addrs[name], ln.Addr().String())
}

// listen opens a configured listener's TCP socket. Each server applies
// TLS itself (implicit TLS or STARTTLS), since it must know which
// sessions are encrypted; listen refuses TLS listeners when no
// certificate is configured.
func (e *env) listen(l config.Listener) (net.Listener, error) {
	if l.TLS != config.TLSNone && e.tls == nil {
		return nil, fmt.Errorf("listener %s needs TLS (%s) but no certificate is configured ([tls] cert, key)", l.Address, l.TLS)
	}
	return net.Listen("tcp", l.Address)
}

// quotaFor returns a user's quota: the account's override, else the site's.
func (e *env) quotaFor(user string) (bytes, messages int64) {
	bytes, messages = int64(e.cfg.Limits.Quota), e.cfg.Limits.QuotaMessages
	a, err := e.db.Account(context.Background(), user)
	if err != nil {
		return bytes, messages
	}
	if a.QuotaBytes >= 0 {
		bytes = a.QuotaBytes
	}
	if a.QuotaMessages >= 0 {
		messages = a.QuotaMessages
	}
	return bytes, messages
}
