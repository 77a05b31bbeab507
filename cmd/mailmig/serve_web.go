package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"mailmig/cmd/mailmig/config"
	"mailmig/mailstore"
	"mailmig/migrate"
	"mailmig/server/delivery"
	"mailmig/server/sieve"
	"mailmig/server/web"
	"mailmig/state"
)

// startWeb starts the web page on every [web] listener (HTTPS only).
func startWeb(ctx context.Context, e *env) (func(context.Context) error, error) {
	if len(e.cfg.Web.Listeners) == 0 {
		return nil, nil
	}
	if e.tls == nil {
		return nil, errors.New("the web page needs a TLS certificate ([tls] cert, key) or no [web] listeners")
	}
	var err error
	o := webOptions(e)
	if e.cfg.Web.Kerberos {
		if o.Kerberos = e.gssapi; o.Kerberos == nil {
			if o.Kerberos, err = kerberosAcceptor(e); err != nil {
				return nil, fmt.Errorf("[web] kerberos: %w", err)
			}
		}
	}
	srv, err := web.New(o)
	if err != nil {
		return nil, err
	}
	for _, l := range e.cfg.Web.Listeners {
		ln, err := e.listenAs("web", l)
		if err != nil {
			srv.Shutdown(ctx)
			return nil, fmt.Errorf("web listener %s: %w", l.Address, err)
		}
		e.addListener("web", ln)
		go func() {
			if err := srv.Serve(ln, e.tls); err != nil {
				e.log.Error("web listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	return srv.Shutdown, nil
}

func webOptions(e *env) web.Options {
	cfg := e.cfg
	o := web.Options{
		Logger:      e.log.With("component", "web"),
		Auth:        e.authFor("web"),
		Backend:     &webBackend{e: e, scripts: &sieveStores{e: e, m: map[string]*sieve.Storage{}}},
		Migration:   webMigration{db: e.db, runner: &migrate.Runner{DB: e.db}, cfg: cfg},
		Postmasters: cfg.WebPostmasters(),
		Client:      webClient(cfg),
		SessionTTL:  cfg.Web.SessionTTL.D(),
		ACLChanged:  e.aclChanged,
	}
	if b, err := os.ReadFile(cfg.TLS.Cert); err == nil && cfg.DataDir == "" {
		o.CAChain = b
	}
	return o
}

// webClient is what the page tells mail clients: the [client] figures
// the confirmation mail names.
func webClient(cfg *config.Config) web.Client {
	c := cfg.Client
	domain := ""
	if len(cfg.Server.Domains) > 0 {
		domain = cfg.Server.Domains[0]
	}
	return web.Client{
		Domain: domain, DisplayName: domain,
		IMAPHost: c.IMAPHost, IMAPPort: c.IMAPPort, IMAPSPort: c.IMAPSPort,
		SubmissionHost: c.SubmissionHost, SubmissionPort: c.SubmissionPort, SubmissionsPort: c.SubmissionsPort,
		ManageSievePort: c.ManageSievePort, WebHost: cfg.WebHost(),
	}
}

// webBackend gives the page a user's store, scripts and account.
type webBackend struct {
	e       *env
	scripts *sieveStores
}

func (b *webBackend) Store(user string) (*mailstore.Store, error) {
	root, err := b.e.maildirFor(user)
	if err != nil {
		return nil, err
	}
	qb, qm := b.e.quotaFor(user)
	return mailstore.Open(root, mailstore.Options{Logger: b.e.log, Hostname: b.e.cfg.Server.Hostname,
		CreateRoot: true, QuotaBytes: qb, QuotaMessages: qm})
}

func (b *webBackend) Scripts(user string) (*sieve.Storage, error) { return b.scripts.get(user) }

func (b *webBackend) Quota(user string) (int64, int64) { return b.e.quotaFor(user) }

func (b *webBackend) CanChangePassword(ctx context.Context, user string) bool {
	_, err := b.e.db.Account(ctx, user)
	return err == nil
}

func (b *webBackend) SetPassword(ctx context.Context, user, password string) error {
	return b.e.db.SetPassword(ctx, user, password)
}

// GlobalBefore is [sieve] global_before.
func (b *webBackend) GlobalBefore() bool { return b.e.cfg.Sieve.GlobalBefore }

// GlobalScript is the site's global Sieve text as the delivery runs it.
func (b *webBackend) GlobalScript() string {
	s := b.e.cfg.Sieve
	if s.GlobalScript == "" {
		return delivery.DefaultGlobalScript(s.SpamHeader, s.SpamThreshold, s.SpamFolder)
	}
	if strings.HasPrefix(s.GlobalScript, "/") && !strings.Contains(s.GlobalScript, "\n") {
		t, err := os.ReadFile(s.GlobalScript)
		if err != nil {
			return ""
		}
		return string(t)
	}
	return s.GlobalScript
}

// webMigration is the dashboard's queue: the state database and the
// runner's Retry, as `mailmig enqueue/stop/run --retry` use them.
type webMigration struct {
	db     *state.DB
	runner *migrate.Runner
	cfg    *config.Config
}

func (m webMigration) List(ctx context.Context) ([]*state.Entry, error) { return m.db.List(ctx) }
func (m webMigration) Summarize(ctx context.Context) (*state.Summary, error) {
	return m.db.Summarize(ctx)
}
func (m webMigration) Get(ctx context.Context, user string) (*state.Entry, error) {
	return m.db.Get(ctx, user)
}
func (m webMigration) Events(ctx context.Context, user string) ([]state.Event, error) {
	return m.db.Events(ctx, user)
}

func (m webMigration) Enqueue(ctx context.Context, user, actor string, folders bool) (bool, error) {
	if _, err := m.cfg.HomeFor(user); err != nil {
		return false, fmt.Errorf("unknown user: %w", err)
	}
	return m.db.Enqueue(ctx, user, state.EnqueueOptions{CopyFolders: folders, RequestedBy: actor})
}

func (m webMigration) Stop(ctx context.Context, user, actor string) error {
	changed, err := m.db.RequestStop(ctx, user, actor, "stopped on the web page")
	if err == nil && !changed {
		return errors.New("already stopped or done, nothing changed")
	}
	return err
}

func (m webMigration) Retry(ctx context.Context, user, actor string) (state.State, error) {
	return m.runner.Retry(ctx, user, actor)
}
