package web

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jcmturner/goidentity/v6"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"mailmig/server/auth/gssapi"
)

// Kerberos single sign-on for the page: HTTP Negotiate with SPNEGO
// (RFC 4559, RFC 4178) carrying a Kerberos V5 AP-REQ, the way browsers
// and curl --negotiate log in to an intranet site. The ticket is for the
// service principal HTTP/<host the browser reached> and is verified
// against the same keytab as IMAP's GSSAPI ([auth.kerberos] keytab);
// gokrb5's SPNEGO service does the token handling (ticket decryption,
// validity, clock skew, replay cache). The principal maps to an account
// with the same rule as GSSAPI (gssapi.Acceptor.Map: the site's realm,
// one plain component, or [auth.kerberos] principals).
//
// Offered only at GET /login/kerberos, never on every request: a user
// without a ticket (or whose browser will not send one) gets the
// password form, not a bare 401.

// kerberosLogin answers GET /login/kerberos.
func (s *Server) kerberosLogin(w http.ResponseWriter, r *http.Request) {
	k := s.opts.Kerberos
	if k == nil {
		http.NotFound(w, r)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Negotiate ") {
		// RFC 4559 §4: challenge; a browser with a ticket answers it, any
		// other sees the password form with a word why.
		w.Header().Set("WWW-Authenticate", "Negotiate")
		s.renderLogin(w, http.StatusUnauthorized, "Your browser did not offer a Kerberos ticket: log in with your password, or get a ticket (kinit) and try again.")
		return
	}
	if len(r.Header.Get("Authorization")) > 4*gssapi.MaxToken {
		s.kerberosRefused(w, r, "token too large")
		return
	}
	skew := k.MaxClockSkew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := goidentity.FromHTTPRequestContext(r)
		if id == nil {
			s.kerberosRefused(w, r, "no identity")
			return
		}
		user, err := k.Map(strings.Split(id.UserName(), "/"), id.Domain())
		if err != nil {
			s.kerberosRefused(w, r, err.Error())
			return
		}
		s.startSession(w, r, user, "kerberos")
	})
	// The wrapper answers a bad, forged, expired or replayed token with
	// 401 and a SPNEGO reject itself; its log goes to ours at Info.
	h := spnego.SPNEGOKRB5Authenticate(inner, k.Keytab,
		service.DecodePAC(false), service.MaxClockSkew(skew),
		service.Logger(slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)))
	h.ServeHTTP(w, r)
}

// kerberosRefused answers a ticket that proved a principal who may not
// use the page.
func (s *Server) kerberosRefused(w http.ResponseWriter, r *http.Request, why string) {
	s.log.Info("web: kerberos login refused", "remote", remoteIP(r), "reason", why)
	s.renderLogin(w, http.StatusForbidden, "Your Kerberos ticket does not name an account here: log in with your password.")
}
