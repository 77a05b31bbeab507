package imap

import (
	"errors"
	"io"
	"time"

	"mailmig/server/listen"
)

// ConnLimits bound the time and memory one connection may take, so that
// no client, logged in or not, can hold the server's memory or a
// connection slot for long (see docs/robustness.md).
type ConnLimits struct {
	// PreAuthTimeout: a connection that has not logged in this long after
	// connecting is closed (0 = 3 minutes, as dovecot's login processes).
	PreAuthTimeout time.Duration
	// CommandTimeout: once its first byte arrived, a command line and its
	// literals must arrive complete within this (0 = 2 minutes); APPEND's
	// message literal instead must make progress within it.
	CommandTimeout time.Duration
	// WriteTimeout: a write the client does not read within this ends
	// the connection and frees its buffers (0 = 2 minutes).
	WriteTimeout time.Duration
	// PreAuthLiteral is the largest literal accepted before login
	// (0 = 8185 bytes: dovecot 2.3's imap-login takes an ID literal of
	// 8185 and ends the connection on 8188); a larger one ends the
	// connection with "* BYE Literal size too large", as dovecot's.
	PreAuthLiteral int64
	// CommandLiterals bounds the literal bytes (and continuation lines)
	// of one command after login, APPEND's message aside, which streams
	// to disk (0 = 8 MiB).
	CommandLiterals int64
	// BigMessage: messages of this many bytes or more are streamed from
	// their files by FETCH and SEARCH, never read whole (0 = 8 MiB).
	BigMessage int64
	// UserIP bounds the sessions of one user from one address (dovecot's
	// mail_max_userip_connections); nil means no bound.
	UserIP *listen.UserLimit
}

// preAuthCommandBytes bounds the literals and continuation lines of one
// command before login.
const preAuthCommandBytes = 64 << 10

func (l ConnLimits) withDefaults() ConnLimits {
	if l.PreAuthTimeout <= 0 {
		l.PreAuthTimeout = 3 * time.Minute
	}
	if l.CommandTimeout <= 0 {
		l.CommandTimeout = 2 * time.Minute
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = 2 * time.Minute
	}
	if l.PreAuthLiteral <= 0 {
		l.PreAuthLiteral = 8185
	}
	if l.BigMessage <= 0 {
		l.BigMessage = 8 << 20
	}
	if l.CommandLiterals <= 0 {
		l.CommandLiterals = 8 << 20
	}
	return l
}

// literalBudget is what one command may still read into memory.
type literalBudget struct {
	perLiteral int64 // largest single literal
	left       int64 // literal and continuation-line bytes left
	preAuth    bool  // a violation ends the connection
}

// errPreAuthLiteral ends a connection that sent a literal too large
// before login (dovecot answers "* BYE Literal size too large" too).
var errPreAuthLiteral = errors.New("imap: literal too large before login")

// take charges a literal of size bytes; the error is a BAD for the
// command (after login) or errPreAuthLiteral.
func (b *literalBudget) take(p *parser, size int64) error {
	if b == nil {
		return nil
	}
	if size > b.perLiteral || size+int64(len(p.line)) > b.left {
		if b.preAuth {
			return errPreAuthLiteral
		}
		return p.errorf("literals of this command exceed %d bytes", b.left)
	}
	b.left -= size + int64(len(p.line))
	return nil
}

// budget returns the literal budget of the next command.
func (c *conn) budget() *literalBudget {
	l := c.srv.opts.Limits
	if c.state == stateNotAuth {
		return &literalBudget{perLiteral: l.PreAuthLiteral, left: preAuthCommandBytes, preAuth: true}
	}
	return &literalBudget{perLiteral: maxLiteral, left: l.CommandLiterals}
}

// idleDeadline is when a session waiting for its next command is closed:
// PreAuthTimeout after connecting before login, IdleTimeout of silence
// after it.
func (c *conn) idleDeadline() time.Time {
	if c.state == stateNotAuth {
		return c.start.Add(c.srv.opts.Limits.PreAuthTimeout)
	}
	return time.Now().Add(c.srv.opts.IdleTimeout)
}

// readCommandLine waits for a command under the idle deadline, then gives
// the rest of it (line and literals) CommandTimeout: a client dripping a
// byte at a time cannot hold the connection.
func (c *conn) readCommandLine() ([]byte, error) {
	if _, err := c.br.Peek(1); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if !c.closing {
		d := time.Now().Add(c.srv.opts.Limits.CommandTimeout)
		if idle := c.idleDeadline(); c.state == stateNotAuth && idle.Before(d) {
			d = idle
		}
		c.nc.SetReadDeadline(d)
	}
	c.mu.Unlock()
	return readLine(c.br, c.line)
}

// progressReader reads a long literal (APPEND's message): each read must
// make progress within CommandTimeout.
type progressReader struct {
	c *conn
	r io.Reader
}

func (p progressReader) Read(b []byte) (int, error) {
	p.c.nc.SetReadDeadline(time.Now().Add(p.c.srv.opts.Limits.CommandTimeout))
	return p.r.Read(b)
}

// deadlineWriter writes to the connection with a deadline per write: a
// client that stops reading is disconnected after WriteTimeout instead of
// holding its buffers (and a goroutine) for ever.
type deadlineWriter struct{ c *conn }

func (d deadlineWriter) Write(b []byte) (int, error) {
	t := d.c.writeTimeout
	if t == 0 {
		t = d.c.srv.opts.Limits.WriteTimeout
	}
	d.c.nc.SetWriteDeadline(time.Now().Add(t))
	return d.c.nc.Write(b)
}

// RFC 2971 §3.3 bounds of an ID command, applied as dovecot's imap-login
// does: a field name longer than idMaxField is BAD, pairs beyond
// idMaxPairs are ignored, values are kept up to idMaxValue octets.
const (
	idMaxPairs = 30
	idMaxField = 30
	idMaxValue = 1024
)
