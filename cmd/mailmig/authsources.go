package main

import (
	"fmt"

	"mailmig/server/auth"
	"mailmig/server/auth/kerberos"
	"mailmig/server/auth/pwfile"
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
