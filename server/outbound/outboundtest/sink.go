// Package outboundtest provides a recording SMTP sink on loopback for
// tests of mailmig's outgoing mail: it stands in for the smarthost.
package outboundtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"

	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the sink accepted.
type Message struct {
	From string
	To   []string
	Data []byte
	// TLS and User tell how the client connected and who it authenticated as.
	TLS  bool
	User string
}

// Options configure a Sink.
type Options struct {
	// Addr is the address to listen on (127.0.0.1:0 if empty).
	Addr string
	// TLS makes the sink offer STARTTLS with a fresh self-signed
	// certificate for 127.0.0.1 (see Sink.ClientTLS).
	TLS bool
	// Username and Password, if set, are required (AUTH PLAIN) before MAIL.
	Username, Password string
	// Rcpt, if set, is asked about each recipient; a non-nil error (use
	// *smtp.SMTPError) refuses it.
	Rcpt func(to string) error
	// ReadTimeout bounds each read from a client, in commands and in
	// message data alike (10s if zero).
	ReadTimeout time.Duration
}

// Sink is a recording SMTP server on 127.0.0.1.
type Sink struct {
	Addr string
	// ClientTLS trusts the sink's certificate (nil without Options.TLS).
	ClientTLS *tls.Config

	opts   Options
	srv    *smtp.Server
	ln     net.Listener
	mu     sync.Mutex
	msgs   []Message
	notify chan struct{}
	// active is when a client last connected or a read of message data
	// returned (UnixNano).
	active atomic.Int64
}

// Start starts a sink; it is closed when the test ends.
func Start(t testing.TB, opts Options) *Sink {
	t.Helper()
	s := &Sink{opts: opts, notify: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.active.Store(time.Now().UnixNano())
		return &session{s: s, c: c}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.ReadTimeout = opts.ReadTimeout
	if s.srv.ReadTimeout <= 0 {
		s.srv.ReadTimeout = 10 * time.Second
	}
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.ErrorLog = discardLogger{}
	if opts.TLS {
		cert, pool := SelfSigned(t)
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.ClientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("sink: listen: %v", err)
	}
	s.Addr = ln.Addr().String()
	s.ln = ln
	go s.srv.Serve(ln)
	t.Cleanup(s.Close)
	return s
}

// FreeAddr returns a loopback address nothing listens on (yet): a
// smarthost that is down, to be started later with Options.Addr.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Close stops the sink (its address then refuses connections).
func (s *Sink) Close() {
	s.ln.Close()
	s.srv.Close()
}

// Messages returns what arrived so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait waits until at least n messages arrived or the timeout passed.
func (s *Sink) Wait(n int, timeout time.Duration) []Message {
	deadline := time.Now().Add(timeout)
	for {
		m := s.Messages()
		if len(m) >= n || time.Now().After(deadline) {
			return m
		}
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitActive waits until at least n messages arrived, for as long as the
// sink is busy: it gives up once nothing happened (no connection, no
// message data read) for idle. A slow relay of big messages (a test
// under -race on a loaded machine reads them at a few MB/s) is waited
// for; a relay that stopped is not.
func (s *Sink) WaitActive(n int, idle time.Duration) []Message {
	since := time.Now()
	for {
		m := s.Messages()
		if len(m) >= n {
			return m
		}
		last := time.Unix(0, s.active.Load())
		if last.Before(since) {
			last = since
		}
		if time.Since(last) > idle {
			return m
		}
		select {
		case <-s.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type session struct {
	s    *Sink
	c    *smtp.Conn
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.s.opts.Username || pass != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.opts.Rcpt != nil {
		if err := ss.s.opts.Rcpt(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	// go-smtp sets its ReadTimeout once, before reading the DATA line, so
	// the whole message had to arrive within it: under load a 45 MB
	// relay was cut after 10 s and refused with "554 5.0.0 Error:
	// transaction failed: ... i/o timeout" (bounced by the queue) or a
	// reset (deferred for minutes). A real smarthost's timeout is per
	// read (Postfix smtpd_timeout), and so is the sink's.
	b, err := io.ReadAll(&progressReader{r: r, c: ss.c.Conn(), d: ss.s.srv.ReadTimeout, active: &ss.s.active})
	if err != nil {
		return err
	}
	_, isTLS := ss.c.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, Message{From: ss.from, To: ss.to, Data: b, TLS: isTLS, User: ss.user})
	ss.s.mu.Unlock()
	select {
	case ss.s.notify <- struct{}{}:
	default:
	}
	return nil
}

// progressReader gives each read of message data a fresh deadline. Reads
// are of at most 4 KB (the size of go-smtp's buffer), as go-smtp's data
// reader fills all it is given, from as many reads of the connection as
// it takes.
type progressReader struct {
	r      io.Reader
	c      net.Conn
	d      time.Duration
	active *atomic.Int64 // Sink.active
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.c.SetReadDeadline(time.Now().Add(p.d)); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b[:min(len(b), 4096)])
	p.active.Store(time.Now().UnixNano())
	return n, err
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}

// SelfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func SelfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sink.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}

// Contains reports whether some message's data contains sub.
func Contains(msgs []Message, sub string) bool {
	for _, m := range msgs {
		if bytes.Contains(m.Data, []byte(sub)) {
			return true
		}
	}
	return false
}

// ErrRefused is a permanent refusal for Options.Rcpt.
var ErrRefused = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}

// ErrBusy is a temporary refusal for Options.Rcpt.
var ErrBusy = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
