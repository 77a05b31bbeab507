package managesieve

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mailmig/server/auth"
	"mailmig/server/listen"
	"mailmig/server/sessions"
	"mailmig/server/sieve"
)

// conn is one client connection (RFC 5804 §1.4 states: non-authenticated,
// authenticated, logout).
type conn struct {
	s      *Server
	nc     net.Conn
	r      *Reader
	w      *bufio.Writer
	remote string
	tls    bool
	user   string
	store  *sieve.Storage
	// stopping is set by Shutdown: the next read that times out says BYE.
	stopping atomic.Bool
	// ncMu guards nc against Shutdown/Close while STARTTLS replaces it.
	ncMu sync.Mutex
	// start is when the connection was accepted (PreAuthTimeout).
	start time.Time
	// releaseUser gives back the session's UserIP slot.
	releaseUser func()
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, start: time.Now()}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.remote = ap.Addr().Unmap().String()
	} else {
		c.remote = nc.RemoteAddr().String()
	}
	_, c.tls = nc.(*tls.Conn)
	c.setStream(nc)
	return c
}

// debugConn copies traffic to the wire trace.
type debugConn struct {
	net.Conn
	w io.Writer
}

func (d debugConn) Read(b []byte) (int, error) {
	n, err := d.Conn.Read(b)
	if n > 0 {
		fmt.Fprintf(d.w, "C: %q\n", b[:n])
	}
	return n, err
}

func (d debugConn) Write(b []byte) (int, error) {
	fmt.Fprintf(d.w, "S: %q\n", b)
	return d.Conn.Write(b)
}

func (c *conn) setStream(nc net.Conn) {
	c.ncMu.Lock()
	c.nc = nc
	c.ncMu.Unlock()
	var rw net.Conn = nc
	if c.s.Debug != nil {
		rw = debugConn{nc, c.s.Debug}
	}
	c.r = NewReader(bufio.NewReader(rw))
	c.r.MaxLiteral = c.maxLiteral()
	c.w = bufio.NewWriter(deadlineWriter{c, rw})
}

// maxLiteral is how large a literal a client may send: 8 KiB before
// authentication (only SASL data), then twice the biggest script allowed
// (so a too-big script is refused with QUOTA, not by hanging up), at
// least 1 MiB.
func (c *conn) maxLiteral() int64 {
	if c.user == "" {
		return 8 << 10
	}
	n := int64(1 << 20)
	if c.store != nil && c.store.MaxScriptSize > 0 && 2*c.store.MaxScriptSize > n {
		n = 2 * c.store.MaxScriptSize
	}
	return n
}

func (c *conn) shutdown() {
	c.stopping.Store(true)
	c.ncMu.Lock()
	defer c.ncMu.Unlock()
	c.nc.SetReadDeadline(time.Now())
}

// close closes the connection from another goroutine (Server.Close).
func (c *conn) close() {
	c.ncMu.Lock()
	defer c.ncMu.Unlock()
	c.nc.Close()
}

func (c *conn) idle() time.Duration {
	if c.s.IdleTimeout > 0 {
		return c.s.IdleTimeout
	}
	return 30 * time.Minute
}

func (c *conn) serve() {
	defer c.nc.Close()
	defer func() {
		if c.releaseUser != nil {
			c.releaseUser()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			c.s.log().Error("managesieve: panic", "remote", c.remote, "panic", r)
		}
	}()
	log := c.s.log()
	log.Debug("managesieve: connection", "remote", c.remote, "tls", c.tls)
	c.writeCapabilities()
	c.reply("OK", "", fmt.Sprintf("%s ManageSieve (mailmig) ready", c.s.Hostname))
	if c.flush() != nil {
		return
	}
	for {
		// Deadline first, then the flag: either this sees Shutdown's flag
		// or Shutdown's deadline (now) replaces this one.
		c.nc.SetReadDeadline(c.readDeadline())
		if c.stopping.Load() {
			c.reply("BYE", "", "server shutting down")
			c.flush()
			return
		}
		cmd, err := c.r.ReadCommand()
		if err != nil {
			var se *SyntaxError
			var ne net.Error
			switch {
			case errors.As(err, &se):
				c.reply("NO", "", "syntax error: "+se.Msg)
				if c.flush() != nil {
					return
				}
				continue
			case c.stopping.Load():
				c.reply("BYE", "", "server shutting down")
			case errors.Is(err, ErrLineTooLong):
				c.reply("BYE", "", "line too long")
			case errors.Is(err, ErrLiteralTooLong):
				c.reply("BYE", "", "literal too long")
			case errors.As(err, &ne) && ne.Timeout():
				c.reply("BYE", "", "idle for too long")
			default:
				return // client went away
			}
			c.flush()
			return
		}
		c.nc.SetReadDeadline(time.Time{})
		done := c.dispatch(cmd)
		if err := c.flush(); err != nil || done {
			return
		}
	}
}

func (c *conn) flush() error {
	return c.w.Flush()
}

// writeString writes s as a quoted string, or a literal if it cannot be
// quoted (RFC 5804 §4).
func (c *conn) writeString(s string) {
	if len(s) <= 1024 && !strings.ContainsAny(s, "\r\n\x00") {
		c.w.WriteByte('"')
		for i := 0; i < len(s); i++ {
			if s[i] == '"' || s[i] == '\\' {
				c.w.WriteByte('\\')
			}
			c.w.WriteByte(s[i])
		}
		c.w.WriteByte('"')
		return
	}
	fmt.Fprintf(c.w, "{%d}\r\n%s", len(s), s)
}

// reply writes OK/NO/BYE with an optional response code (RFC 5804 §1.3)
// and human-readable text.
func (c *conn) reply(status, code, text string) {
	c.w.WriteString(status)
	if code != "" {
		c.w.WriteString(" (" + code + ")")
	}
	if text != "" {
		c.w.WriteByte(' ')
		c.writeString(text)
	}
	c.w.WriteString("\r\n")
}

// writeCapabilities writes the capability lines (RFC 5804 §1.7).
func (c *conn) writeCapabilities() {
	line := func(k, v string, hasV bool) {
		c.writeString(k)
		if hasV {
			c.w.WriteByte(' ')
			c.writeString(v)
		}
		c.w.WriteString("\r\n")
	}
	line("IMPLEMENTATION", "mailmig", true)
	line("SIEVE", sieve.Capability(), true)
	switch {
	case c.authAllowed() && c.user == "" && c.gssapiAllowed():
		line("SASL", "PLAIN GSSAPI", true)
	case c.authAllowed() && c.user == "":
		line("SASL", "PLAIN", true)
	case c.user == "" && c.gssapiAllowed():
		line("SASL", "GSSAPI", true)
	default:
		line("SASL", "", true)
	}
	if c.s.TLSConfig != nil && !c.tls {
		line("STARTTLS", "", false)
	}
	if c.s.MaxRedirects > 0 {
		line("MAXREDIRECTS", strconv.Itoa(c.s.MaxRedirects), true)
	}
	if c.user != "" {
		line("OWNER", c.user, true)
	}
	// RFC 5804 §2.14: the command is implemented, so it is announced.
	line("UNAUTHENTICATE", "", false)
	line("VERSION", "1.0", true)
}

func (c *conn) authAllowed() bool { return c.tls || c.s.AllowInsecureAuth }

// dispatch runs one command; it returns true when the connection ends.
func (c *conn) dispatch(cmd *Command) bool {
	authed := c.user != ""
	switch cmd.Name {
	case "CAPABILITY":
		if len(cmd.Args) != 0 {
			c.reply("NO", "", "CAPABILITY takes no arguments")
			return false
		}
		c.writeCapabilities()
		c.reply("OK", "", "capability completed")
	case "LOGOUT":
		c.reply("OK", "", "logout completed")
		return true
	case "NOOP":
		c.cmdNoop(cmd)
	case "STARTTLS":
		return c.cmdStartTLS(cmd)
	case "AUTHENTICATE":
		return c.cmdAuthenticate(cmd)
	case "UNAUTHENTICATE":
		if !authed {
			c.reply("NO", "", "not authenticated")
			return false
		}
		// RFC 5804 §2.14.1
		c.user, c.store = "", nil
		c.r.MaxLiteral = c.maxLiteral()
		c.reply("OK", "", "unauthenticate completed")
	case "HAVESPACE", "PUTSCRIPT", "LISTSCRIPTS", "SETACTIVE", "GETSCRIPT",
		"DELETESCRIPT", "RENAMESCRIPT", "CHECKSCRIPT":
		if !authed {
			c.reply("NO", "", "authenticate first")
			return false
		}
		c.scriptCommand(cmd)
	default:
		c.reply("NO", "", "unknown command")
	}
	return false
}

// cmdNoop: RFC 5804 §2.13.
func (c *conn) cmdNoop(cmd *Command) {
	switch len(cmd.Args) {
	case 0:
		c.reply("OK", "", "noop completed")
	case 1:
		var b strings.Builder
		old := c.w
		c.w = bufio.NewWriter(&b)
		c.writeString(cmd.Args[0])
		c.w.Flush()
		c.w = old
		c.reply("OK", "TAG "+b.String(), "done")
	default:
		c.reply("NO", "", "NOOP takes at most one argument")
	}
}

// cmdStartTLS: RFC 5804 §2.2. The capabilities are sent again over TLS.
func (c *conn) cmdStartTLS(cmd *Command) bool {
	switch {
	case len(cmd.Args) != 0:
		c.reply("NO", "", "STARTTLS takes no arguments")
		return false
	case c.tls:
		c.reply("NO", "", "TLS is already active")
		return false
	case c.s.TLSConfig == nil:
		c.reply("NO", "", "TLS is not available")
		return false
	case c.user != "":
		c.reply("NO", "", "STARTTLS is not allowed after authentication")
		return false
	}
	c.reply("OK", "", "begin TLS negotiation")
	if c.flush() != nil {
		return true
	}
	tc := tls.Server(c.nc, c.s.TLSConfig)
	tc.SetDeadline(time.Now().Add(time.Minute))
	if err := tc.Handshake(); err != nil {
		c.s.log().Info("managesieve: TLS handshake failed", "remote", c.remote, "err", err)
		return true
	}
	tc.SetDeadline(time.Time{})
	c.tls = true
	c.setStream(tc)
	c.writeCapabilities()
	c.reply("OK", "", "TLS negotiation successful")
	return false
}

// cmdAuthenticate: RFC 5804 §2.1, PLAIN (RFC 4616) only.
func (c *conn) cmdAuthenticate(cmd *Command) bool {
	if c.user != "" {
		c.reply("NO", "", "already authenticated")
		return false
	}
	if len(cmd.Args) < 1 || len(cmd.Args) > 2 {
		c.reply("NO", "", "usage: AUTHENTICATE mechanism [initial-response]")
		return false
	}
	if strings.EqualFold(cmd.Args[0], "GSSAPI") && c.gssapiAllowed() {
		return c.authenticateGSSAPI(cmd)
	}
	if !c.authAllowed() {
		c.reply("NO", "ENCRYPT-NEEDED", "authentication requires TLS: use STARTTLS first")
		return false
	}
	if !strings.EqualFold(cmd.Args[0], "PLAIN") {
		c.reply("NO", "", "unsupported mechanism; use PLAIN")
		return false
	}
	var resp string
	if len(cmd.Args) == 2 {
		resp = cmd.Args[1]
	} else {
		// Empty challenge; the client answers with a string.
		c.writeString("")
		c.w.WriteString("\r\n")
		if c.flush() != nil {
			return true
		}
		s, ended, quit := c.readSASLResponse()
		if ended {
			return quit
		}
		resp = s
	}
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		c.reply("NO", "", "invalid base64 in authentication response")
		return false
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		c.reply("NO", "", "malformed PLAIN response")
		return false
	}
	authz, user, pass := parts[0], parts[1], parts[2]
	if authz != "" && authz != user {
		c.reply("NO", "AUTH-TOO-WEAK", "authorization identity must be empty or equal the user")
		return false
	}
	if c.s.Auth == nil {
		c.reply("NO", "", "authentication failed")
		return false
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, time.Minute)
	err = c.s.Auth.Authenticate(ctx, c.remote, user, pass)
	cancel()
	if err != nil {
		c.s.log().Info("managesieve: authentication failed", "remote", c.remote, "user", user, "err", err)
		if errors.Is(err, auth.ErrRateLimited) {
			c.reply("NO", "TRYLATER", "too many failed attempts, try again later")
			return false
		}
		c.reply("NO", "", "authentication failed")
		return false
	}
	return c.authenticated(user)
}

// authenticated opens the script storage of an authenticated user and
// answers OK.
func (c *conn) authenticated(user string) bool {
	store, err := c.s.Storage(user)
	if err != nil || store == nil {
		c.s.log().Error("managesieve: open script storage", "user", user, "err", err)
		c.reply("NO", "TRYLATER", "script storage unavailable")
		return false
	}
	if ul := c.s.UserIP; ul != nil {
		release, ok := ul.Acquire(listen.UserIPKey(user, c.nc.RemoteAddr()))
		if !ok {
			c.s.log().Warn("managesieve: too many sessions of user from address", "remote", c.remote, "user", user, "limit", ul.Max)
			c.reply("BYE", "TRYLATER", fmt.Sprintf("Maximum number of connections from user+IP exceeded (mail_max_userip_connections=%d)", ul.Max))
			return true
		}
		c.releaseUser = release
	}
	c.user, c.store = user, store
	c.ncMu.Lock()
	sessions.LoggedIn(c.nc, user) // mailmig who / kick
	c.ncMu.Unlock()
	c.r.MaxLiteral = c.maxLiteral()
	c.s.log().Info("managesieve: authenticated", "remote", c.remote, "user", user, "tls", c.tls)
	c.reply("OK", "", "authenticated")
	return false
}

// readSASLResponse reads the client's answer to an AUTHENTICATE challenge
// (RFC 5804 §2.1: a string, or "*" to cancel) within a minute. ended says
// the command is over (a NO was sent, or the connection must close: quit).
func (c *conn) readSASLResponse() (resp string, ended, quit bool) {
	c.nc.SetReadDeadline(time.Now().Add(time.Minute))
	s, atom, err := c.r.ReadString()
	c.nc.SetReadDeadline(time.Time{})
	var se *SyntaxError
	switch {
	case errors.As(err, &se):
		c.reply("NO", "", "syntax error: "+se.Msg)
		return "", true, false
	case err != nil:
		return "", true, true
	case atom && s == "*":
		c.reply("NO", "", "authentication cancelled")
		return "", true, false
	}
	return s, false, false
}
