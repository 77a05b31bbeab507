// Package managesieve is mailmig's ManageSieve server (RFC 5804): users
// upload, check, list, fetch, activate, rename and delete their Sieve
// scripts from their mail client.
//
// Scripts are kept by server/sieve's Storage, the dovecot way
// (~/sieve/NAME.sieve, the active one linked from ~/.dovecot.sieve), and
// validated by server/sieve with the same extension list the delivery
// path runs with; the SIEVE capability lists exactly those extensions.
// STARTTLS (RFC 5804 §2.2) is offered when a certificate is configured;
// AUTHENTICATE PLAIN (RFC 4616) only over TLS, unless the listener is
// trusted.
//
// Implementation notes:
//   - One goroutine per connection; the Storage serializes writes to one
//     user's scripts.
//   - What a client sees is chosen here: storage and validation errors
//     become NO replies with RFC 5804 §1.3 response codes; internal detail
//     (paths, errno) goes only to the log.
package managesieve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"mailmig/server/auth/gssapi"
	"mailmig/server/listen"
	"mailmig/server/sieve"
)

// Authenticator checks a user's password (server/auth implements it).
type Authenticator interface {
	Authenticate(ctx context.Context, remoteIP, user, password string) error
}

// Server is one ManageSieve listener's server. Set the fields, then call
// Serve; they must not change afterwards.
type Server struct {
	// Hostname is shown in the greeting.
	Hostname string
	// TLSConfig enables STARTTLS (or, with ImplicitTLS, TLS on connect).
	TLSConfig *tls.Config
	// ImplicitTLS makes Serve wrap the listener in TLS.
	ImplicitTLS bool
	// AllowInsecureAuth offers AUTHENTICATE without TLS (trusted listeners).
	AllowInsecureAuth bool
	// Auth checks passwords; nil refuses every login.
	Auth Authenticator
	// GSSAPI, if set, offers SASL GSSAPI (RFC 4752) for sieve/HOST, where
	// PLAIN is allowed unless GSSAPIWithoutTLS.
	GSSAPI           *gssapi.Acceptor
	GSSAPIWithoutTLS bool
	// Storage returns a user's script storage (required).
	Storage func(user string) (*sieve.Storage, error)
	// MaxRedirects is announced as MAXREDIRECTS (0 = not announced).
	MaxRedirects int
	// IdleTimeout closes a connection idle that long (30 minutes if zero).
	IdleTimeout time.Duration
	// PreAuthTimeout closes a connection not logged in this long after
	// connecting (3 minutes if zero).
	PreAuthTimeout time.Duration
	// WriteTimeout ends a connection whose client does not read a write
	// for this long (1 minute if zero).
	WriteTimeout time.Duration
	// UserIP bounds the sessions of one user from one address; nil = none.
	UserIP *listen.UserLimit
	// Log receives session logs (slog.Default if nil).
	Log *slog.Logger
	// Debug, if set, receives a wire trace. It records credentials.
	Debug io.Writer

	group    listen.Group
	ctx      context.Context
	cancel   context.CancelFunc
	initOnce sync.Once
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.group.Logger = s.log()
	})
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("managesieve: server closed")

// Serve accepts connections on ln until Close or Shutdown; then it
// returns nil.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	if s.ImplicitTLS {
		if s.TLSConfig == nil {
			return errors.New("managesieve: implicit TLS listener without a certificate")
		}
		ln = tls.NewListener(ln, s.TLSConfig)
	}
	err := s.group.Serve(ln, func(nc net.Conn) listen.Conn {
		c := newConn(s, nc)
		return listen.Conn{Serve: c.serve, Shutdown: c.shutdown, Close: c.close}
	})
	if errors.Is(err, listen.ErrClosed) {
		return nil
	}
	return fmt.Errorf("managesieve: %w", err)
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	s.init()
	s.cancel()
	s.group.Close()
	s.group.Wait()
	return nil
}

// Shutdown stops accepting, tells idle clients BYE, and waits for the
// connections to end (or ctx, then closes them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	err := s.group.Shutdown(ctx)
	s.cancel()
	if err != nil {
		s.group.Wait()
	}
	return err
}
