package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/managesieve"
	"mailmig/server/sieve"
)

// startManageSieve starts one ManageSieve server per [managesieve]
// listener, storing scripts where [store] sieve_dir/sieve_active say.
func startManageSieve(ctx context.Context, e *env) (func(context.Context) error, error) {
	stores := &sieveStores{e: e, m: map[string]*sieve.Storage{}}
	var servers []*managesieve.Server
	stop := func(sctx context.Context) error {
		var errs []error
		for _, s := range servers {
			errs = append(errs, s.Shutdown(sctx))
		}
		return errors.Join(errs...)
	}
	for _, l := range e.cfg.ManageSieve.Listeners {
		ln, err := e.listenAs("managesieve", l)
		if err != nil {
			stop(ctx)
			return nil, fmt.Errorf("managesieve listener %s: %w", l.Address, err)
		}
		s := &managesieve.Server{
			GSSAPI:            e.gssapi,
			GSSAPIWithoutTLS:  e.cfg.Auth.Kerberos.GSSAPIWithoutTLS,
			Hostname:          e.cfg.Server.Hostname,
			TLSConfig:         e.tls,
			AllowInsecureAuth: l.Trusted,
			Auth:              e.authFor("managesieve"),
			Storage:           stores.get,
			MaxRedirects:      sieve.DefaultMaxRedirects,
			IdleTimeout:       e.cfg.Connections.IdleTimeout.D(),
			PreAuthTimeout:    e.cfg.Connections.PreAuthTimeout.D(),
			WriteTimeout:      e.cfg.Connections.WriteTimeout.D(),
			UserIP:            e.protoLimits("managesieve").userIP,
			Log:               e.log.With("component", "managesieve", "listener", ln.Addr().String()),
		}
		s.ImplicitTLS = l.TLS == config.TLSImplicit
		if l.TLS == config.TLSNone {
			s.TLSConfig = nil // no STARTTLS offered
		}
		servers = append(servers, s)
		e.addListener("managesieve", ln)
		ln = e.limitListener("managesieve", ln, s.ImplicitTLS, "BYE (TRYLATER) \"Too many connections, try again later\"\r\n")
		go func() {
			if err := s.Serve(ln); err != nil {
				e.log.Error("managesieve listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	return stop, nil
}

// sieveStores hands out one Storage per user, so that concurrent
// sessions of a user share its lock.
type sieveStores struct {
	e  *env
	mu sync.Mutex
	m  map[string]*sieve.Storage
}

func (s *sieveStores) get(user string) (*sieve.Storage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.m[user]; st != nil {
		return st, nil
	}
	st, err := sieveStorageFor(s.e.cfg)(user)
	if err != nil {
		return nil, fmt.Errorf("sieve storage of %s: %w", user, err)
	}
	s.m[user] = st
	return st, nil
}
