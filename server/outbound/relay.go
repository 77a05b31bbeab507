package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailmig/server/msgspool"
)

// Smarthost is the relay all non-local mail is handed to (RFC 5321 §3.6:
// mailmig does no MX lookups of its own).
type Smarthost struct {
	// Addr is host:port of the relay. Empty means no relay is configured:
	// remote recipients are deferred (and bounce when the window closes).
	Addr string
	// TLS is "starttls" (required), "implicit" (TLS from the first byte)
	// or "none".
	TLS string
	// TLSConfig verifies the relay's certificate; nil means the system
	// roots with ServerName taken from Addr.
	TLSConfig *tls.Config
	// Username and Password, if Username is set, authenticate with AUTH
	// PLAIN (RFC 4954, RFC 4616) — only over TLS.
	Username, Password string
	// Timeout bounds the connection and each command (1 minute if zero;
	// DATA gets ten times as long).
	Timeout time.Duration
}

// Error is a delivery failure reported by a LocalDelivery: an SMTP reply.
type Error struct {
	Code     int
	Enhanced string // e.g. "5.1.1"
	Text     string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s %s", e.Code, e.Enhanced, e.Text) }

// classify turns an error from a delivery attempt into a failure record.
func classify(err error, remote, rcpt string, at time.Time) failure {
	f := failure{Rcpt: rcpt, Remote: remote, At: at}
	if err == nil {
		return f
	}
	var oe *Error
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &oe):
		f.Code, f.Enhanced, f.Text = oe.Code, oe.Enhanced, oe.Text
	case errors.As(err, &se):
		f.Code, f.Text = se.Code, se.Message
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != smtp.EnhancedCodeNotSet {
			f.Enhanced = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
	default:
		f.Text = err.Error()
	}
	return f
}

func (s *Smarthost) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return time.Minute
}

// send relays body to rcpts and returns the recipients that were not
// accepted, with why. Every recipient absent from the map was accepted.
func (s *Smarthost) send(ctx context.Context, helo, from string, rcpts []string, body msgspool.Source) map[string]failure {
	now := time.Now()
	failAll := func(f failure) map[string]failure {
		m := make(map[string]failure, len(rcpts))
		for _, r := range rcpts {
			ff := f
			ff.Rcpt = r
			m[r] = ff
		}
		return m
	}
	if s.Addr == "" {
		return failAll(failure{Text: "no smarthost is configured for remote recipients", At: now})
	}
	c, name, err := s.dial(ctx, helo)
	if err != nil {
		// Failing to greet, secure or authenticate is the relay's (or our
		// configuration's) problem, not the message's: always retried.
		return failAll(failure{Remote: s.Addr, Text: err.Error(), At: now})
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	// Bounces name the relay as it names itself in its greeting
	// (RFC 5321 §4.2: "220 relay.example.net ..."), as Postfix does, not
	// by the address we dialled.
	remote := s.Addr
	if name != "" {
		remote = name
	}
	fail := func(err error) failure { return classify(err, remote, "", time.Now()) }
	if err := c.Mail(from, nil); err != nil {
		return failAll(fail(fmt.Errorf("MAIL FROM:<%s>: %w", from, err)))
	}
	out := map[string]failure{}
	var accepted []string
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			f := fail(err)
			f.Rcpt = r
			out[r] = f
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		_ = c.Reset()
		return out
	}
	w, err := c.Data()
	if err == nil {
		_, err = io.Copy(w, msgspool.NewReader(body)) // streamed from the queue file
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		f := fail(err)
		for _, r := range accepted {
			ff := f
			ff.Rcpt = r
			out[r] = ff
		}
		return out
	}
	_ = c.Quit()
	return out
}

// dial connects, greets and secures/authenticates the session as configured.
func (s *Smarthost) dial(ctx context.Context, helo string) (*smtp.Client, string, error) {
	d := net.Dialer{Timeout: s.timeout()}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, "", fmt.Errorf("connect to smarthost %s: %w", s.Addr, err)
	}
	tc := s.TLSConfig
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc = tc.Clone()
		if h, _, err := net.SplitHostPort(s.Addr); err == nil {
			tc.ServerName = h
		}
	}
	var c *smtp.Client
	g := &greetConn{}
	switch strings.ToLower(s.TLS) {
	case "implicit", "tls":
		g.Conn = tls.Client(conn, tc)
		c = smtp.NewClient(g)
	case "starttls", "":
		g.Conn = conn
		c, err = smtp.NewClientStartTLS(g, tc)
		if err != nil {
			conn.Close()
			return nil, "", fmt.Errorf("STARTTLS with smarthost %s: %w", s.Addr, err)
		}
	case "none":
		g.Conn = conn
		c = smtp.NewClient(g)
	default:
		conn.Close()
		return nil, "", fmt.Errorf("smarthost %s: unknown tls mode %q", s.Addr, s.TLS)
	}
	c.CommandTimeout = s.timeout()
	c.SubmissionTimeout = 10 * s.timeout()
	if err := c.Hello(helo); err != nil {
		c.Close()
		return nil, "", fmt.Errorf("EHLO to smarthost %s: %w", s.Addr, err)
	}
	if s.Username != "" {
		if _, ok := c.TLSConnectionState(); !ok {
			c.Close()
			return nil, "", fmt.Errorf("smarthost %s: refusing to send credentials without TLS", s.Addr)
		}
		if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			c.Close()
			return nil, "", fmt.Errorf("AUTH as %s at smarthost %s: %w", s.Username, s.Addr, err)
		}
	}
	return c, g.name(), nil
}

// formatReply renders a failure's SMTP reply for humans and DSNs.
func formatReply(f failure) string {
	if f.Code == 0 {
		return f.Text
	}
	s := strconv.Itoa(f.Code)
	if f.Enhanced != "" {
		s += " " + f.Enhanced
	}
	return s + " " + f.Text
}

// greetConn records the server's first line (its greeting) as it is read.
type greetConn struct {
	net.Conn
	line []byte
	done bool
}

func (g *greetConn) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	for _, b := range p[:n] {
		if g.done {
			break
		}
		if b == '\n' {
			g.done = true
			break
		}
		if len(g.line) < 512 {
			g.line = append(g.line, b)
		}
	}
	return n, err
}

// name is the host name in a "220 NAME ..." or "220-NAME ..." greeting
// ("" when there is none).
func (g *greetConn) name() string {
	l := strings.TrimRight(string(g.line), "\r")
	if len(l) < 5 || !strings.HasPrefix(l, "220") || (l[3] != ' ' && l[3] != '-') {
		return ""
	}
	f := strings.Fields(l[4:])
	if len(f) == 0 || strings.ContainsAny(f[0], "<>()\"'") {
		return ""
	}
	return f[0]
}
