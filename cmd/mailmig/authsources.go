package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/urfave/cli/v2"

	"mailmig/server/auth"
	"mailmig/server/auth/gssapi"
	"mailmig/server/auth/kerberos"
	"mailmig/server/auth/pwfile"
	"mailmig/server/metrics"
)

// newPasswordChain builds the password sources of [auth] sources, in
// their order. A source that cannot work (a missing shadow file or
// keytab) is a configuration error here, never a silent skip.
func newPasswordChain(e *env) (*auth.Chain, error) {
	a := e.cfg.Auth
	log := e.log.With("component", "auth")
	chain := &auth.Chain{Logger: log}
	for _, name := range a.Sources {
		switch name {
		case "accounts":
			chain.Sources = append(chain.Sources, auth.AccountsSource{DB: e.db})
		case "crypt":
			if err := ensureDataShadow(e); err != nil {
				return nil, err
			}
			s, err := auth.NewCryptSource(a.Crypt.File, pwfile.Format(a.Crypt.Format), log)
			if err != nil {
				return nil, fmt.Errorf("[auth.crypt]: %w", err)
			}
			chain.Sources = append(chain.Sources, s)
		case "kerberos":
			s, err := newKerberosSource(e)
			if err != nil {
				return nil, fmt.Errorf("[auth.kerberos]: %w", err)
			}
			chain.Sources = append(chain.Sources, s)
		default:
			return nil, fmt.Errorf("[auth] sources: unknown source %q", name)
		}
	}
	if a.Rehash {
		chain.OnSuccess = auth.Rehash(e.db)
	}
	return chain, nil
}

// newKerberosSource loads [auth.kerberos]: the service principal is
// service/server.hostname in the realm.
func newKerberosSource(e *env) (auth.Source, error) {
	k := e.cfg.Auth.Kerberos
	return kerberos.New(k.Realm, k.Krb5Conf, k.Keytab, e.cfg.KerberosPrincipal())
}

// loginCheck is the runner's question before dual delivery: can the user
// log in to the new server with one of the password sources?
func loginCheck(e *env) func(ctx context.Context, user string) (bool, string, error) {
	return func(ctx context.Context, user string) (bool, string, error) {
		if e.passwords == nil {
			return true, "", nil
		}
		st, err := e.passwords.Status(ctx, user)
		if err != nil {
			return false, "", err
		}
		return st.CanLogin, st.Reason, nil
	}
}

// passwordSourceOf names the source that decides for a user, for the
// sentence in the mails about which password to use.
func passwordSourceOf(e *env) func(ctx context.Context, user string) string {
	return func(ctx context.Context, user string) string {
		if e.passwords == nil {
			return ""
		}
		st, err := e.passwords.Status(ctx, user)
		if err != nil || !st.CanLogin {
			return ""
		}
		return st.Source
	}
}

// warnNoLogin tells the postmaster at enqueue time that a user could not
// log in to the new server (the runner will stop them in needs-attention
// before dual delivery).
func warnNoLogin(c *cli.Context, e *env, user string) {
	var err error
	if e.passwords == nil {
		e.passwords, err = newPasswordChain(e)
	}
	chain := e.passwords
	if err != nil {
		e.passwords = nil
		fmt.Fprintf(c.App.ErrWriter, "%s: warning: cannot check the password sources: %v\n", user, err)
		return
	}
	st, err := chain.Status(c.Context, user)
	switch {
	case err != nil:
		fmt.Fprintf(c.App.ErrWriter, "%s: warning: cannot check whether the user can log in: %v\n", user, err)
	case !st.CanLogin:
		fmt.Fprintf(c.App.ErrWriter, "%s: warning: cannot log in to the new server: %s; the run stops before dual delivery (needs-attention) until this is fixed\n", user, st.Reason)
	}
}

// ensureDataShadow creates an empty DIR/old/shadow in --data mode (as the
// self-signed certificate is created there), so a demo or test world
// without one starts.
func ensureDataShadow(e *env) error {
	if e.cfg.DataDir == "" || e.cfg.Auth.Crypt.File != filepath.Join(e.cfg.DataDir, "old", "shadow") {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(e.cfg.Auth.Crypt.File), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(e.cfg.Auth.Crypt.File, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// Result counts a GSSAPI login of the protocol like a password check.
func (c countingAuth) Result(ctx context.Context, remote, user, mech string, err error) error {
	err = c.a.Result(ctx, remote, user, mech, err)
	switch {
	case err == nil:
		metrics.Login(c.protocol, metrics.ResultOK)
	case errors.Is(err, auth.ErrFailed):
		metrics.Login(c.protocol, metrics.ResultFailed)
	case errors.Is(err, auth.ErrRateLimited):
		metrics.Login(c.protocol, metrics.ResultRateLimited)
	}
	return err
}

// newGSSAPI builds the GSSAPI acceptor of [auth.kerberos] when gssapi is
// on: the keytab must hold imap/, smtp/ and sieve/ of server.hostname.
func newGSSAPI(e *env) (*gssapi.Acceptor, error) {
	k := e.cfg.Auth.Kerberos
	if !k.GSSAPI {
		return nil, nil
	}
	return kerberosAcceptor(e)
}

// kerberosAcceptor verifies tickets for this server's services (SASL
// GSSAPI, the web page's single sign-on) with [auth.kerberos] keytab.
func kerberosAcceptor(e *env) (*gssapi.Acceptor, error) {
	k := e.cfg.Auth.Kerberos
	kt, err := keytab.Load(k.Keytab)
	if err != nil {
		return nil, fmt.Errorf("[auth.kerberos] keytab for GSSAPI: %w", err)
	}
	return &gssapi.Acceptor{
		Keytab: kt, Hostname: e.cfg.Server.Hostname,
		Realms: append([]string{k.Realm}, k.GSSAPIRealms...), Principals: k.Principals,
	}, nil
}
