package listen

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Timeouts are the time bounds TimeLimit adds to a server that only knows
// a deadline per read (go-smtp's ReadTimeout, set before each command
// line): a total bound before authentication and a bound for one command
// to arrive once it started. Zero means no bound.
type Timeouts struct {
	// PreAuth is how long after accepting a connection it may stay
	// unauthenticated, however it spends the time (complete NOOPs sent
	// now and then do not extend it).
	PreAuth time.Duration
	// Command is how long a command may take to arrive once its first
	// bytes did: a client dripping a byte at a time is cut off.
	Command time.Duration
	// Expired, if set, is called once when a bound of TimeLimit (not the
	// server's own deadline) ends a read: why is "preauth" or "command".
	Expired func(c net.Conn, why string)
}

// TimeLimit wraps ln so that every accepted connection is a *TimedConn
// applying t. It must sit below any TLS layer (tls.NewListener(TimeLimit(ln)),
// or a server's STARTTLS), so that the protocol server's SetReadDeadline
// calls reach it through the tls.Conn.
func TimeLimit(ln net.Listener, t Timeouts) net.Listener {
	return timedListener{ln, t}
}

type timedListener struct {
	net.Listener
	t Timeouts
}

func (l timedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &TimedConn{Conn: c, t: l.t}
	if l.t.PreAuth > 0 {
		tc.preAuthEnd = time.Now().Add(l.t.PreAuth)
	}
	return tc, nil
}

// TimedConn is a connection accepted by TimeLimit. Each read gets the
// earliest of: the deadline the server set (its idle bound), the end of
// the pre-authentication time (until Authenticated), and, once bytes of
// a command arrived, the command's start plus Timeouts.Command. A
// SetReadDeadline call marks the start of the next command: go-smtp calls
// it before reading each command line. The bytes of a command are those
// read between two such calls (a TLS handshake after STARTTLS counts as
// part of the STARTTLS command); message data is exempt (BeginData).
type TimedConn struct {
	net.Conn
	t Timeouts

	mu         sync.Mutex
	want       time.Time     // the server's deadline
	idle       time.Duration // how far ahead the server set it
	preAuthEnd time.Time     // zero once authenticated
	cmdStart   time.Time     // first bytes of the current command; zero before
	data       bool          // reading message data: no command bound
	// expired is the timeout that one of our bounds caused: every later
	// read fails with it. bufio.Reader.ReadLine (under textproto, under
	// go-smtp) returns a partial line with a nil error when a read fails
	// and drops the error, so without this the server would read on as
	// if nothing had happened.
	expired error
}

// Authenticated ends the pre-authentication bound (a successful AUTH; on
// LMTP, a transaction begun).
func (c *TimedConn) Authenticated() {
	c.mu.Lock()
	c.preAuthEnd = time.Time{}
	c.mu.Unlock()
}

// Unauthenticated starts the pre-authentication bound again from now
// (LMTP: a transaction ended, the connection waits for the next MAIL).
func (c *TimedConn) Unauthenticated() {
	if c.t.PreAuth <= 0 {
		return
	}
	c.mu.Lock()
	c.preAuthEnd = time.Now().Add(c.t.PreAuth)
	c.mu.Unlock()
}

// Expired reports whether one of TimeLimit's bounds ended the
// connection. The command a server reads after that is a partial line
// (see TimedConn.expired): sessions refuse to act on it.
func (c *TimedConn) Expired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expired != nil
}

// BeginData exempts the reads until the server's next SetReadDeadline
// from the command bound (a 50 MB message is no command line) and makes
// the server's deadline one of progress: each read may wait as long as
// the server gave the command before it (go-smtp sets its ReadTimeout
// once, before the DATA line, so a big message on a slow link had to
// arrive whole within it; Postfix's smtpd_timeout and dovecot's idle
// timeout are per read).
func (c *TimedConn) BeginData() {
	c.mu.Lock()
	c.data = true
	c.mu.Unlock()
}

// deadline returns the read deadline to apply now and which of our
// bounds it is ("" when it is the server's own or none).
func (c *TimedConn) deadline() (time.Time, string) {
	d, why := c.want, ""
	if c.data && c.idle > 0 {
		d = time.Now().Add(c.idle)
	}
	if !c.preAuthEnd.IsZero() && (d.IsZero() || c.preAuthEnd.Before(d)) {
		d, why = c.preAuthEnd, "preauth"
	}
	if !c.data && !c.cmdStart.IsZero() && c.t.Command > 0 {
		if e := c.cmdStart.Add(c.t.Command); d.IsZero() || e.Before(d) {
			d, why = e, "command"
		}
	}
	return d, why
}

// SetReadDeadline records the server's deadline and starts a new command.
func (c *TimedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.want, c.cmdStart, c.data = t, time.Time{}, false
	c.idle = 0
	if !t.IsZero() {
		c.idle = time.Until(t)
	}
	d, _ := c.deadline()
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(d)
}

// SetDeadline is SetReadDeadline and SetWriteDeadline.
func (c *TimedConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *TimedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if err := c.expired; err != nil {
		c.mu.Unlock()
		return 0, err
	}
	d, why := c.deadline()
	c.mu.Unlock()
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	if n > 0 && c.cmdStart.IsZero() {
		c.cmdStart = time.Now()
	}
	report := err != nil && why != "" && errors.Is(err, os.ErrDeadlineExceeded)
	if report {
		c.expired = err
	}
	c.mu.Unlock()
	if report && c.t.Expired != nil {
		c.t.Expired(c, why)
	}
	return n, err
}

// TimedOut reports whether c is a TimedConn (possibly under TLS) whose
// bound expired.
func TimedOut(c net.Conn) bool {
	tc := FindTimed(c)
	return tc != nil && tc.Expired()
}

// FindTimed returns the TimedConn under c (through tls.Conn and wrappers
// with a NetConn method), or nil.
func FindTimed(c net.Conn) *TimedConn {
	for i := 0; i < 8 && c != nil; i++ {
		switch x := c.(type) {
		case *TimedConn:
			return x
		case *tls.Conn:
			c = x.NetConn()
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}
