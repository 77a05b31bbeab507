package main

import (
	"context"
	"errors"
	"fmt"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/imap"
)

// startIMAP starts the IMAP server on every configured [imap] listener.
// stop shuts it down gracefully: sessions end after their current
// command, so an APPEND in progress completes.
func startIMAP(ctx context.Context, e *env) (func(context.Context) error, error) {
	if len(e.cfg.IMAP.Listeners) == 0 {
		return nil, nil
	}
	srv := imap.New(imap.Options{
		Logger:           e.log.With("component", "imap"),
		Auth:             e.authFor("imap"),
		MaildirFor:       e.maildirFor,
		QuotaFor:         e.quotaFor,
		Users:            func() ([]string, error) { return e.users(context.Background()) },
		TLS:              e.tls,
		SpamFolder:       e.cfg.Sieve.SpamFolder,
		AppendLimit:      int64(e.cfg.Limits.MessageSize),
		Hostname:         e.cfg.Server.Hostname,
		IdleTimeout:      e.cfg.Connections.IdleTimeout.D(),
		Limits:           e.imapLimits(),
		GSSAPI:           e.gssapi,
		GSSAPIWithoutTLS: e.cfg.Auth.Kerberos.GSSAPIWithoutTLS,
	})
	e.aclChanged = srv.ACLChanged
	for _, l := range e.cfg.IMAP.Listeners {
		ln, err := e.listenAs("imap", l)
		if err != nil {
			srv.Close()
			return nil, fmt.Errorf("imap listener %s: %w", l.Address, err)
		}
		name := "imap"
		if l.TLS == config.TLSImplicit {
			name = "imaps"
		}
		e.addListener(name, ln)
		ln = e.limitListener("imap", ln, l.TLS == config.TLSImplicit, "* BYE [UNAVAILABLE] Too many connections, try again later\r\n")
		lo := imap.ListenerOptions{
			ImplicitTLS: l.TLS == config.TLSImplicit,
			Trusted:     l.Trusted,
			NoStartTLS:  l.TLS != config.TLSStartTLS,
		}
		go func() {
			if err := srv.Serve(ln, lo); err != nil && !errors.Is(err, imap.ErrServerClosed) {
				e.log.Error("imap listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	return srv.Shutdown, nil
}

// users lists the accounts, for the IMAP shared namespace.
func (e *env) users(ctx context.Context) ([]string, error) {
	accts, err := e.db.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(accts))
	for i, a := range accts {
		out[i] = a.User
	}
	return out, nil
}
