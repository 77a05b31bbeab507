// Package submission is mailmig's message submission server (RFC 6409):
// port 587 with STARTTLS (RFC 3207) and port 465 with TLS from the first
// byte (RFC 8314), built on github.com/emersion/go-smtp.
//
// Users authenticate with AUTH PLAIN (RFC 4616) or LOGIN (RFC 4954 §4),
// offered only over TLS unless the listener is trusted. An authenticated
// user may send only as one of their own addresses (user@ or user+detail@
// each local domain). Clients in the trusted networks may relay without
// authenticating. SIZE (RFC 1870) is announced and enforced with a 552
// reply that names this server. Local recipients are delivered through
// the local delivery path (server/delivery); the others are handed to the
// outgoing queue (server/outbound), which relays them to the smarthost.
//
// Implementation notes:
//   - Every reply a client sees is an *smtp.SMTPError chosen here; internal
//     errors go to the log only (go-smtp would write their text).
//   - Remote recipients are queued durably before any local delivery, and
//     local deliveries that fail after the message was accepted for someone
//     are handed to the outgoing queue (which retries or bounces them), so
//     a 250 reply never loses mail.
package submission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mailmig/server/auth/gssapi"
	"mailmig/server/delivery"
	"mailmig/server/listen"
	"mailmig/server/msgspool"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Authenticator checks a user's password (server/auth implements it,
// with failure delays and rate limits).
type Authenticator interface {
	Authenticate(ctx context.Context, remoteIP, user, password string) error
}

// Envelope is one local recipient's view of the SMTP envelope.
type Envelope struct {
	From   string // MAIL FROM ("" = null sender)
	To     string // the recipient as given in RCPT TO
	User   string // the local account
	Detail string // subaddress after '+' (RFC 5233), "" for none
}

// Deliverer delivers to one local recipient (cmd/mailmig adapts
// server/delivery to it). An error that is an *smtp.SMTPError is the
// reply for that recipient; any other error answers 451.
type Deliverer interface {
	Deliver(ctx context.Context, env Envelope, msg msgspool.Source) error
}

// Sender queues mail for remote recipients (server/outbound implements it).
type Sender interface {
	Send(ctx context.Context, from string, to []string, msg io.Reader) error
}

// Server is one submission listener's server. Set the fields, then call
// Serve; they must not change afterwards.
type Server struct {
	// Hostname names this server in the greeting, Received: fields and
	// error replies.
	Hostname string
	// TLSConfig enables STARTTLS (or, with ImplicitTLS, TLS on connect).
	TLSConfig *tls.Config
	// ImplicitTLS makes Serve wrap the listener in TLS (port 465).
	ImplicitTLS bool
	// AllowInsecureAuth offers AUTH without TLS (trusted listeners only).
	AllowInsecureAuth bool
	// MaxMessageBytes is the SIZE limit (0 = 50 MB).
	MaxMessageBytes int64
	// MaxRecipients bounds recipients per message (0 = 100).
	MaxRecipients int
	// SenderAlias reports whether an authenticated user may send as the
	// local part name of a local domain besides their own (an alias that
	// points to them alone); nil = only their own name.
	SenderAlias func(name, user string) bool
	// TrustedNetworks may relay without authentication.
	TrustedNetworks []netip.Prefix
	// Domains are the local mail domains (a user's addresses are
	// user@ and user+detail@ each of them).
	Domains []string
	// Auth checks passwords; nil refuses every login.
	Auth Authenticator
	// GSSAPI, if set, offers AUTH GSSAPI (RFC 4752) for smtp/HOST
	// wherever PLAIN is offered (go-smtp: after TLS or on trusted
	// listeners).
	GSSAPI *gssapi.Acceptor
	// GSSAPIWithoutTLS offers GSSAPI (alone) before TLS too; PLAIN and
	// LOGIN still need TLS unless AllowInsecureAuth.
	GSSAPIWithoutTLS bool
	// UserExists reports whether a local account exists (nil: all do).
	UserExists func(ctx context.Context, user string) (bool, error)
	// Local delivers local recipients.
	Local Deliverer
	// Outbound queues remote recipients; nil refuses them.
	Outbound Sender
	// Log receives connection and delivery logs (slog.Default if nil).
	Log *slog.Logger
	// UserIP bounds the authenticated sessions of one user from one
	// address; nil means no bound.
	UserIP *listen.UserLimit
	// SpoolThreshold: a message arriving beyond this many bytes waits in
	// an unlinked temporary file in SpoolDir, not in memory (0 = 256 KiB;
	// SpoolDir "" = os.TempDir()).
	SpoolThreshold int64
	SpoolDir       string
	// ReadTimeout and WriteTimeout bound each client read and write
	// (10 minutes and 1 minute if zero).
	ReadTimeout, WriteTimeout time.Duration
	// PreAuthTimeout closes a connection that has not authenticated (nor,
	// from a trusted network, begun a transaction) this long after
	// connecting; CommandTimeout one whose command line, once started,
	// has not arrived complete within it (listen.TimeLimit). Zero: none.
	PreAuthTimeout, CommandTimeout time.Duration
	// Debug, if set, receives a wire trace. It records credentials.
	Debug io.Writer

	once sync.Once
	srv  *smtp.Server
	// conns are the open client connections (for Shutdown's deadline).
	connMu sync.Mutex
	conns  map[*trackedConn]struct{}
	// ctx is cancelled by Close/Shutdown to stop in-flight deliveries.
	ctx    context.Context
	cancel context.CancelFunc
}

// DefaultMaxMessageBytes is the site's message size limit (50 MB).
const DefaultMaxMessageBytes = 50 << 20

func (s *Server) init() {
	s.once.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		srv := smtp.NewServer(backend{s})
		srv.Domain = s.Hostname
		srv.TLSConfig = s.TLSConfig
		// go-smtp offers AUTH before TLS only with AllowInsecureAuth;
		// the session then narrows the mechanisms (insecureMechs).
		srv.AllowInsecureAuth = s.AllowInsecureAuth || (s.GSSAPI != nil && s.GSSAPIWithoutTLS)
		srv.MaxMessageBytes = s.maxBytes()
		srv.MaxRecipients = s.MaxRecipients
		if srv.MaxRecipients == 0 {
			srv.MaxRecipients = 100
		}
		srv.MaxLineLength = delivery.MaxLineLength
		srv.ReadTimeout = s.ReadTimeout
		if srv.ReadTimeout == 0 {
			srv.ReadTimeout = 10 * time.Minute
		}
		srv.WriteTimeout = s.WriteTimeout
		if srv.WriteTimeout == 0 {
			srv.WriteTimeout = time.Minute
		}
		srv.Debug = s.Debug
		srv.ErrorLog = slogAdapter{s.log()}
		s.srv = srv
	})
}

func (s *Server) maxBytes() int64 {
	if s.MaxMessageBytes > 0 {
		return s.MaxMessageBytes
	}
	return DefaultMaxMessageBytes
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Serve accepts connections on ln until Close or Shutdown. ln must be a
// plain listener: for TLS on connect set ImplicitTLS (a listener that
// already does TLS would hide the TLS state from the session).
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	ln = &trackingListener{Listener: listen.CloseOnWriteError(ln), s: s}
	ln = listen.TimeLimit(ln, listen.Timeouts{PreAuth: s.PreAuthTimeout, Command: s.CommandTimeout,
		Expired: func(c net.Conn, why string) {
			s.log().Info("submission: connection timed out", "remote", c.RemoteAddr().String(), "bound", why)
		}})
	if s.ImplicitTLS {
		if s.TLSConfig == nil {
			return errors.New("submission: implicit TLS listener without a certificate")
		}
		ln = tls.NewListener(ln, s.TLSConfig)
	}
	err := s.srv.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.init()
	s.cancel()
	return s.srv.Close()
}

// Shutdown stops accepting connections and waits for the open ones to
// finish (or ctx to end, then closes them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	err := s.srv.Shutdown(ctx)
	s.cancel()
	if ctx.Err() != nil {
		// go-smtp waits for clients to leave; past the deadline they go.
		s.closeConns()
	}
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// trackingListener remembers accepted connections so Shutdown can close
// the ones still open when its deadline passes.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s}
	l.s.connMu.Lock()
	if l.s.conns == nil {
		l.s.conns = map[*trackedConn]struct{}{}
	}
	l.s.conns[tc] = struct{}{}
	l.s.connMu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.connMu.Lock()
		delete(c.s.conns, c)
		c.s.connMu.Unlock()
	})
	return c.Conn.Close()
}

func (s *Server) closeConns() {
	s.connMu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.connMu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ss := &session{s: b.s, conn: c}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		ss.remote = ap.Addr().Unmap()
	}
	for _, p := range b.s.TrustedNetworks {
		if ss.remote.IsValid() && p.Contains(ss.remote) {
			ss.trusted = true
		}
	}
	_, ss.tls = c.TLSConnectionState()
	return ss, nil
}

// slogAdapter routes go-smtp's internal error log to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...interface{}) {
	a.l.Warn("submission: " + fmt.Sprintf(format, v...))
}
func (a slogAdapter) Println(v ...interface{}) { a.l.Warn("submission: " + fmt.Sprint(v...)) }
