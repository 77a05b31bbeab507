// Package web is mailmig's web page, served by `mailmig serve` over HTTPS:
// users manage their filters (the rule form of server/web/rules, written
// through the same script storage ManageSieve uses), their automatic
// reply, share folders with other users (RFC 4314 rights in plain words,
// in dovecot's dovecot-acl files), see their quota and change their
// password; the postmaster
// watches the migration and enqueues, stops or retries users; mail clients
// configure themselves (Thunderbird autoconfig, Microsoft Autodiscover
// POX, an Apple .mobileconfig profile, RFC 6186 SRV records).
//
// Pages are server-rendered (html/template escapes every value) with no
// JavaScript at all, under a strict Content-Security-Policy. Every form
// carries the session's CSRF token; session cookies are Secure, HttpOnly,
// SameSite=Strict and expire; logins go through the same Authenticator
// (delays, throttling) as IMAP.
//
// Implementation notes:
//   - The Server never reads the configuration file: cmd/mailmig fills
//     Options, and Backend reaches the store, scripts and state.
//   - Autoconfig documents are public (clients fetch them before they have
//     a password) and name only what the confirmation mail names too.
package web

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"mailmig/mailstore"
	"mailmig/server/auth/gssapi"
	"mailmig/server/sieve"
	"mailmig/state"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Authenticator checks a password with the server's brute-force rules
// (server/auth.Authenticator).
type Authenticator interface {
	Authenticate(ctx context.Context, remote, user, password string) error
}

// Backend is what the pages read and change, one user at a time.
type Backend interface {
	// Store opens the user's Maildir++ store (folders, quota).
	Store(user string) (*mailstore.Store, error)
	// Scripts is the user's Sieve script storage (the ManageSieve one).
	Scripts(user string) (*sieve.Storage, error)
	// Quota is the user's limit in bytes and messages (0 = none).
	Quota(user string) (bytes, messages int64)
	// CanChangePassword reports whether the user's password is mailmig's
	// own (the accounts source); others change it where they always did.
	CanChangePassword(ctx context.Context, user string) bool
	SetPassword(ctx context.Context, user, password string) error
	// GlobalScript is the site's spam rule as Sieve text, shown to users.
	GlobalScript() string
	// GlobalBefore says the site runs its global script before every
	// user's own ([sieve] global_before); otherwise the page's scripts
	// include it themselves unless the user turned it off.
	GlobalBefore() bool
}

// Migration is the postmaster's view of the queue; the same operations
// the CLI commands use.
type Migration interface {
	List(ctx context.Context) ([]*state.Entry, error)
	Summarize(ctx context.Context) (*state.Summary, error)
	Get(ctx context.Context, user string) (*state.Entry, error)
	Events(ctx context.Context, user string) ([]state.Event, error)
	Enqueue(ctx context.Context, user, actor string, folders bool) (added bool, err error)
	Stop(ctx context.Context, user, actor string) error
	Retry(ctx context.Context, user, actor string) (state.State, error)
}

// Client is what mail clients are told (the same figures as the
// confirmation mail).
type Client struct {
	Domain          string
	DisplayName     string
	IMAPHost        string
	IMAPPort        int // STARTTLS
	IMAPSPort       int // implicit TLS
	SubmissionHost  string
	SubmissionPort  int // STARTTLS
	SubmissionsPort int // implicit TLS
	ManageSievePort int
	WebHost         string // this page's host name
}

// Options configure a Server.
type Options struct {
	Logger      *slog.Logger
	Auth        Authenticator
	Backend     Backend
	Migration   Migration
	Postmasters []string // users who see the dashboard
	Client      Client
	// CAChain is the PEM chain users may download (the server's
	// certificate chain, for sites with their own CA); nil: not offered.
	CAChain []byte
	// ACLChanged, if set, is called after the page changed a folder's ACL
	// (the IMAP server drops its cached shared-folder lists).
	ACLChanged func()
	// Kerberos, if set, offers single sign-on at /login/kerberos (HTTP
	// Negotiate, RFC 4559) with tickets for HTTP/<host> from its keytab.
	Kerberos *gssapi.Acceptor
	// SessionTTL is how long a login lasts without activity (default 30m).
	SessionTTL time.Duration
	// MaxBody bounds a request body (default 1 MB).
	MaxBody int64
	// Now is the clock (tests).
	Now func() time.Time
}

// Server serves the page. Create with New; Serve on a listener (it
// applies TLS itself).
type Server struct {
	opts     Options
	log      *slog.Logger
	tmpl     *template.Template
	sessions *sessions
	mux      *http.ServeMux
	http     *http.Server
}

// New builds a Server.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = 30 * time.Minute
	}
	if o.MaxBody == 0 {
		o.MaxBody = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, log: o.Logger, tmpl: tmpl, sessions: newSessions(o.SessionTTL, o.Now)}
	s.routes()
	return s, nil
}

// Serve answers HTTPS on ln with cfg until Shutdown. A nil cfg serves
// plain HTTP (tests only: cookies are still marked Secure, so a browser
// will not send them back).
func (s *Server) Serve(ln net.Listener, cfg *tls.Config) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.http = hs
	if cfg != nil {
		c := cfg.Clone()
		c.NextProtos = []string{"h2", "http/1.1"}
		ln = tls.NewListener(ln, c)
	}
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	return s.http.Shutdown(ctx)
}

// ServeHTTP applies the headers every answer carries, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := http.NewServeMux()
	// Clients configure themselves (public).
	m.HandleFunc("GET /.well-known/autoconfig/mail/config-v1.1.xml", s.autoconfig)
	m.HandleFunc("GET /mail/config-v1.1.xml", s.autoconfig)
	m.HandleFunc("POST /autodiscover/autodiscover.xml", s.autodiscover)
	m.HandleFunc("POST /Autodiscover/Autodiscover.xml", s.autodiscover)
	m.HandleFunc("GET /setup", s.setupPage)
	m.HandleFunc("GET /setup/mailmig.mobileconfig", s.mobileconfig)
	m.HandleFunc("GET /setup/ca.pem", s.caChain)
	m.Handle("GET /static/", http.FileServerFS(assets))

	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("GET /login/kerberos", s.kerberosLogin)
	m.HandleFunc("POST /logout", s.user(s.logout))

	m.HandleFunc("GET /{$}", s.user(s.home))
	m.HandleFunc("GET /filters", s.user(s.filtersPage))
	m.HandleFunc("GET /filters/edit", s.user(s.ruleEditPage))
	m.HandleFunc("POST /filters/save", s.user(s.ruleSave))
	m.HandleFunc("POST /filters/action", s.user(s.ruleAction))
	m.HandleFunc("POST /filters/replace", s.user(s.filtersReplace))
	m.HandleFunc("POST /filters/spam", s.user(s.filtersSpam))
	m.HandleFunc("GET /vacation", s.user(s.vacationPage))
	m.HandleFunc("POST /vacation", s.user(s.vacationSave))
	m.HandleFunc("GET /folders", s.user(s.foldersPage))
	m.HandleFunc("POST /folders/share", s.user(s.folderShareSave))
	m.HandleFunc("GET /password", s.user(s.passwordPage))
	m.HandleFunc("POST /password", s.user(s.passwordSave))

	m.HandleFunc("GET /admin", s.postmaster(s.adminPage))
	m.HandleFunc("GET /admin/user", s.postmaster(s.adminUser))
	m.HandleFunc("POST /admin/action", s.postmaster(s.adminAction))
	s.mux = m
}

// remoteIP is the client's address for throttling.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) isPostmaster(user string) bool {
	for _, p := range s.opts.Postmasters {
		if strings.EqualFold(p, user) {
			return true
		}
	}
	return false
}
