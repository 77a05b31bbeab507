package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
)

type connState int

const (
	stateNotAuth connState = iota
	stateAuth
	stateSelected
	stateLogout
)

// conn is one client connection and its session.
type conn struct {
	srv      *Server
	nc       net.Conn
	lo       ListenerOptions
	br       *bufio.Reader
	w        *writer
	log      *slog.Logger
	remoteIP string
	isTLS    bool

	// mu guards busy and closing; see serve and shutdown.
	mu        sync.Mutex
	busy      bool
	closing   bool
	closingCh chan struct{}

	state connState
	user  string
	store *mailstore.Store
	rev2  bool // ENABLE IMAP4rev2
	// condstore is set once the client used a CONDSTORE feature (RFC 7162
	// §3.1): unsolicited FETCH responses then carry MODSEQ.
	condstore bool
	// condstoreEnabled is set by ENABLE CONDSTORE (RFC 5161).
	condstoreEnabled bool
	// shownUID's flags were just written with modseq shownModseq
	// (modseq_state.go).
	shownUID    uint32
	shownModseq uint64
	// utf8Accept is set by ENABLE UTF8=ACCEPT (RFC 6855, utf8accept.go).
	utf8Accept bool
	// qresync is set by ENABLE QRESYNC (RFC 7162 §3.2.3).
	qresync bool
	// cmdName is the running command's name (after UID), for handlers
	// shared by several commands.
	cmdName string
	sel     *selected
	// notify is the active NOTIFY SET (notify_session.go), or nil.
	notify *notifyState
	// notifyNoCounts and notifyNoFlags are set by a NOTIFY command
	// whose selected-mailbox events lack MessageNew or FlagChange
	// (NOTIFY NONE included): no EXISTS/RECENT/EXPUNGE or no flag FETCH
	// for the selected mailbox from then on, as in dovecot
	// (notify_session.go, RFC 5465 §3.1).
	notifyNoCounts, notifyNoFlags bool

	line []byte // reused command line buffer

	// start is when the connection was accepted (PreAuthTimeout).
	start time.Time
	// writeTimeout overrides Limits.WriteTimeout when set (BYE).
	writeTimeout time.Duration
	// releaseUser gives back the session's Limits.UserIP slot.
	releaseUser func()
}

// respErr is a tagged NO or BAD chosen for the client.
type respErr struct {
	typ  imap.StatusResponseType
	code imap.ResponseCode
	text string
}

func (e *respErr) Error() string { return fmt.Sprintf("%s [%s] %s", e.typ, e.code, e.text) }

func errNo(code imap.ResponseCode, format string, args ...any) error {
	return &respErr{typ: imap.StatusResponseTypeNo, code: code, text: fmt.Sprintf(format, args...)}
}

func errBad(format string, args ...any) error {
	return &respErr{typ: imap.StatusResponseTypeBad, text: fmt.Sprintf(format, args...)}
}

// ioError marks an error of the connection itself: the session ends.
type ioError struct{ err error }

func (e *ioError) Error() string { return "connection: " + e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

func newConn(s *Server, nc net.Conn, lo ListenerOptions) *conn {
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	c := &conn{
		srv:       s,
		nc:        nc,
		lo:        lo,
		remoteIP:  host,
		closingCh: make(chan struct{}),
		start:     time.Now(),
	}
	_, c.isTLS = nc.(*tls.Conn)
	c.log = s.log.With("remote", nc.RemoteAddr().String())
	c.br = bufio.NewReaderSize(nc, 4096)
	c.w = &writer{w: bufio.NewWriterSize(deadlineWriter{c}, 4096)}
	return c
}

// shutdown asks the session to end after its current command.
func (c *conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	close(c.closingCh)
	if !c.busy {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// closeNow closes the connection at once (Server.Close).
func (c *conn) closeNow() {
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	nc.Close()
}

// startRead marks the session idle between commands; false means the
// server is shutting down.
func (c *conn) startRead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.busy = false
	c.nc.SetReadDeadline(c.idleDeadline())
	return true
}

func (c *conn) setBusy() {
	c.mu.Lock()
	c.busy = true
	c.mu.Unlock()
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("imap: panic in session", "user", c.user, "panic", v, "stack", string(debug.Stack()))
		}
		c.cleanup()
		c.nc.Close()
	}()
	if tc, ok := c.nc.(*tls.Conn); ok {
		c.nc.SetDeadline(time.Now().Add(30 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.log.Debug("imap: TLS handshake", "err", err)
			return
		}
		c.nc.SetDeadline(time.Time{})
	}
	c.w.raw("* OK [CAPABILITY ").raw(c.capabilities()).raw("] mailmig IMAP ready").crlf()
	if c.w.flush() != nil {
		return
	}
	for c.state != stateLogout {
		if !c.startRead() {
			c.bye("server shutting down")
			return
		}
		if c.notify != nil && c.state != stateNotAuth {
			if err := c.notifyWait(); err != nil {
				return
			}
		}
		line, err := c.readCommandLine()
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.w.raw("* BAD command line too long").crlf()
				if c.w.flush() != nil {
					return
				}
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if c.isClosing() {
					c.bye("server shutting down")
				} else if c.state == stateNotAuth {
					c.bye("Disconnected for inactivity")
				} else {
					c.bye("autologout: idle for too long")
				}
			}
			return
		}
		c.setBusy()
		c.line = line
		if err := c.command(line); err != nil {
			c.log.Debug("imap: connection ends", "user", c.user, "err", err)
			return
		}
	}
}

func (c *conn) bye(text string) {
	c.writeTimeout = 5 * time.Second
	c.w.raw("* BYE ").raw(text).crlf()
	c.w.flush()
}

func (c *conn) cleanup() {
	if c.releaseUser != nil {
		c.releaseUser()
	}
	c.unselect()
	if c.notify != nil {
		c.notify.stop()
	}
	if c.store != nil {
		c.srv.stores.release(c.user)
		c.store = nil
	}
}

// handler runs one command; p is positioned after the command name.
type handler struct {
	states []connState
	fn     func(c *conn, tag string, p *parser, uid bool) error
	// noExpunge: EXPUNGE must not be announced after this command
	// (RFC 9051 §7.5.1: FETCH, STORE, SEARCH without UID).
	noExpunge bool
}

var (
	anyState  = []connState{stateNotAuth, stateAuth, stateSelected}
	notAuth   = []connState{stateNotAuth}
	authd     = []connState{stateAuth, stateSelected}
	selectedS = []connState{stateSelected}
)

var handlers map[string]handler

func init() {
	// Built here rather than in a literal because handlers refer to the
	// table indirectly (UID dispatches through it).
	handlers = map[string]handler{
		"CAPABILITY":   {states: anyState, fn: (*conn).cmdCapability},
		"NOOP":         {states: anyState, fn: (*conn).cmdNoop},
		"LOGOUT":       {states: anyState, fn: (*conn).cmdLogout},
		"ID":           {states: anyState, fn: (*conn).cmdID},
		"STARTTLS":     {states: notAuth, fn: (*conn).cmdStartTLS},
		"LOGIN":        {states: notAuth, fn: (*conn).cmdLogin},
		"AUTHENTICATE": {states: notAuth, fn: (*conn).cmdAuthenticate},
		"ENABLE":       {states: authd, fn: (*conn).cmdEnable},
		"SELECT":       {states: authd, fn: (*conn).cmdSelect},
		"EXAMINE":      {states: authd, fn: (*conn).cmdSelect},
		"CREATE":       {states: authd, fn: (*conn).cmdCreate},
		"DELETE":       {states: authd, fn: (*conn).cmdDelete},
		"RENAME":       {states: authd, fn: (*conn).cmdRename},
		"SUBSCRIBE":    {states: authd, fn: (*conn).cmdSubscribe},
		"UNSUBSCRIBE":  {states: authd, fn: (*conn).cmdSubscribe},
		"LIST":         {states: authd, fn: (*conn).cmdList},
		"LSUB":         {states: authd, fn: (*conn).cmdList},
		"STATUS":       {states: authd, fn: (*conn).cmdStatus},
		"APPEND":       {states: authd, fn: (*conn).cmdAppend},
		"NAMESPACE":    {states: authd, fn: (*conn).cmdNamespace},
		"IDLE":         {states: authd, fn: (*conn).cmdIdle},
		"GETQUOTAROOT": {states: authd, fn: (*conn).cmdGetQuotaRoot},
		"GETQUOTA":     {states: authd, fn: (*conn).cmdGetQuota},
		"SETQUOTA":     {states: authd, fn: (*conn).cmdSetQuota},
		"MYRIGHTS":     {states: authd, fn: (*conn).cmdMyRights},
		"GETACL":       {states: authd, fn: (*conn).cmdGetACL},
		"SETACL":       {states: authd, fn: (*conn).cmdSetACL},
		"DELETEACL":    {states: authd, fn: (*conn).cmdSetACL},
		"LISTRIGHTS":   {states: authd, fn: (*conn).cmdListRights},
		"CHECK":        {states: selectedS, fn: (*conn).cmdNoop},
		"CLOSE":        {states: selectedS, fn: (*conn).cmdClose},
		"UNSELECT":     {states: selectedS, fn: (*conn).cmdClose},
		"EXPUNGE":      {states: selectedS, fn: (*conn).cmdExpunge},
		"SEARCH":       {states: selectedS, fn: (*conn).cmdSearch, noExpunge: true},
		"FETCH":        {states: selectedS, fn: (*conn).cmdFetch, noExpunge: true},
		"STORE":        {states: selectedS, fn: (*conn).cmdStore, noExpunge: true},
		"COPY":         {states: selectedS, fn: (*conn).cmdCopy},
		"MOVE":         {states: selectedS, fn: (*conn).cmdCopy},
		"NOTIFY":       {states: authd, fn: (*conn).cmdNotify},
	}
}

// uidCommands may follow "UID".
var uidCommands = map[string]bool{"FETCH": true, "STORE": true, "COPY": true, "MOVE": true, "SEARCH": true, "EXPUNGE": true}

// command parses and runs one command line. A non-nil error ends the
// connection.
func (c *conn) command(line []byte) error {
	p := &parser{r: c.br, line: line, cont: c.continuation, budget: c.budget()}
	tag, err := p.tag()
	if err != nil || p.sp() != nil {
		c.w.raw("* BAD missing tag").crlf()
		return c.w.flush()
	}
	name, err := p.atom()
	if err != nil {
		return c.finish(tag, "", p, errBad("missing command"))
	}
	name = strings.ToUpper(name)
	uid := false
	if name == "UID" {
		if p.sp() != nil {
			return c.finish(tag, name, p, errBad("missing command after UID"))
		}
		sub, err := p.atom()
		sub = strings.ToUpper(sub)
		if err != nil || !uidCommands[sub] {
			return c.finish(tag, name, p, errBad("unknown UID command"))
		}
		name, uid = sub, true
	}
	h, ok := handlers[name]
	if !ok {
		return c.finish(tag, name, p, errBad("unknown command %s", name))
	}
	allowed := false
	for _, st := range h.states {
		allowed = allowed || st == c.state
	}
	if !allowed {
		return c.finish(tag, name, p, errBad("%s not allowed now", name))
	}
	c.cmdName = name
	if c.sel != nil {
		c.sel.snap = nil
	}
	err = h.fn(c, tag, p, uid)
	if err == nil {
		return c.w.flush()
	}
	if !h.noExpunge || uid {
		// Announce what a failed command may have left pending.
		c.sendUpdates(true)
	}
	return c.finish(tag, name, p, err)
}

// finish answers a failed command; a connection error is returned.
func (c *conn) finish(tag, name string, p *parser, err error) error {
	if errors.Is(err, errPreAuthLiteral) {
		c.bye("Literal size too large")
		return err
	}
	var ie *ioError
	if errors.As(err, &ie) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return err
	}
	var se *syntaxError
	var re *respErr
	switch {
	case errors.As(err, &re):
		// RFC 7888 §4: a refused command's non-synchronizing
		// literals are still sent; read them, or they would be taken
		// for commands (SEARCH CHARSET X {n+} ...).
		if skipErr := c.skipLiterals(p); skipErr != nil {
			return skipErr
		}
		c.w.status(tag, re.typ, re.code, re.text)
	case errors.As(err, &se):
		if skipErr := c.skipLiterals(p); skipErr != nil {
			return skipErr
		}
		c.w.status(tag, imap.StatusResponseTypeBad, "", se.Error())
	default:
		var ne net.Error
		if errors.As(err, &ne) {
			return err
		}
		c.log.Error("imap: command failed", "user", c.user, "command", name, "err", err)
		c.w.status(tag, imap.StatusResponseTypeNo, imap.ResponseCodeServerBug, "internal error")
	}
	return c.w.flush()
}

// skipLiterals discards the rest of a bad command: non-synchronizing
// literals the client sends anyway and the lines after them.
func (c *conn) skipLiterals(p *parser) error {
	for i := 0; i < 100; i++ {
		line := p.line
		j := strings.LastIndexByte(string(line), '{')
		if j < 0 || !strings.HasSuffix(string(line), "+}") {
			return nil
		}
		var n int64
		if _, err := fmt.Sscanf(string(line[j:]), "{%d+}", &n); err != nil || n < 0 {
			return nil
		}
		if _, err := io.CopyN(io.Discard, c.br, n); err != nil {
			return &ioError{err}
		}
		l, err := readLine(c.br, nil)
		if err != nil {
			return &ioError{err}
		}
		p.line = l
	}
	return nil
}

// continuation sends "+ " for a synchronizing literal.
func (c *conn) continuation() error {
	c.w.raw("+ go ahead").crlf()
	if err := c.w.flush(); err != nil {
		return &ioError{err}
	}
	return nil
}

// ok writes the tagged OK and pending updates before it.
func (c *conn) ok(tag string, code imap.ResponseCode, text string, allowExpunge bool) error {
	c.sendUpdates(allowExpunge)
	c.w.status(tag, imap.StatusResponseTypeOK, code, text)
	return nil
}

func (c *conn) startTLSAvailable() bool {
	return !c.isTLS && c.srv.opts.TLS != nil && !c.lo.NoStartTLS
}

// loginAllowed tells whether plaintext authentication may happen now.
func (c *conn) loginAllowed() bool { return c.isTLS || c.lo.Trusted }

func (c *conn) capabilities() string {
	caps := []string{"IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"}
	if c.state == stateNotAuth {
		if c.startTLSAvailable() {
			caps = append(caps, "STARTTLS")
		}
		if c.loginAllowed() {
			caps = append(caps, "AUTH=PLAIN")
		} else {
			caps = append(caps, "LOGINDISABLED")
		}
		if c.gssapiAllowed() {
			caps = append(caps, "AUTH=GSSAPI")
		}
		return strings.Join(caps, " ")
	}
	caps = append(caps, "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN",
		"SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "ESEARCH", "SEARCHRES", "BINARY", "CONDSTORE", "QRESYNC",
		fmt.Sprintf("APPENDLIMIT=%d", c.srv.opts.AppendLimit),
		"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE",
		"ACL", "RIGHTS=texk")
	caps = append(caps, extensionCaps...)
	return strings.Join(caps, " ")
}

// RFC 9051 §6.1.1
func (c *conn) cmdCapability(tag string, p *parser, _ bool) error {
	if err := p.end(); err != nil {
		return err
	}
	c.w.raw("* CAPABILITY ").raw(c.capabilities()).crlf()
	return c.ok(tag, "", "CAPABILITY completed", true)
}

// RFC 9051 §6.1.2; also CHECK (§6.4.1 in RFC 3501).
func (c *conn) cmdNoop(tag string, p *parser, _ bool) error {
	if err := p.end(); err != nil {
		return err
	}
	// sendUpdates takes a snapshot, which syncs with the disk.
	return c.ok(tag, "", "NOOP completed", true)
}

// RFC 9051 §6.1.3
func (c *conn) cmdLogout(tag string, p *parser, _ bool) error {
	if err := p.end(); err != nil {
		return err
	}
	c.w.raw("* BYE logging out").crlf()
	c.w.status(tag, imap.StatusResponseTypeOK, "", "LOGOUT completed")
	c.state = stateLogout
	return nil
}

// RFC 2971: ID ( "name" "value" ... ) or NIL. The client's values are
// logged; the server answers with its name.
func (c *conn) cmdID(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	var kv []string
	if p.take('(') {
		for !p.take(')') {
			if len(kv) > 0 {
				if err := p.sp(); err != nil {
					return err
				}
			}
			k, err := p.str()
			if err != nil {
				return err
			}
			if err := p.sp(); err != nil {
				return err
			}
			v, _, err := p.nstring()
			if err != nil {
				return err
			}
			// RFC 2971 §3.3: at most 30 pairs, fields of at most 30
			// octets, values of at most 1024 (see limits.go).
			if len(k) > idMaxField {
				return errBad("Invalid ID parameters")
			}
			if len(kv) < 2*idMaxPairs {
				kv = append(kv, k, v[:min(len(v), idMaxValue)])
			}
		}
	} else if _, _, err := p.nstring(); err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	if len(kv) > 0 {
		c.log.Info("imap: client id", "id", strings.Join(kv, " "))
	}
	c.w.raw(`* ID ("name" "mailmig" "vendor" "mailmig")`).crlf()
	return c.ok(tag, "", "ID completed", true)
}

// RFC 9051 §6.2.1
func (c *conn) cmdStartTLS(tag string, p *parser, _ bool) error {
	if err := p.end(); err != nil {
		return err
	}
	if !c.startTLSAvailable() {
		return errBad("STARTTLS not available")
	}
	if c.br.Buffered() > 0 {
		// Command injection after STARTTLS (CVE-2011-0411 style).
		return &ioError{errors.New("data after STARTTLS")}
	}
	c.w.status(tag, imap.StatusResponseTypeOK, "", "begin TLS negotiation now")
	if err := c.w.flush(); err != nil {
		return &ioError{err}
	}
	tc := tls.Server(c.nc, c.srv.opts.TLS)
	c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		return &ioError{fmt.Errorf("TLS handshake: %w", err)}
	}
	c.nc.SetDeadline(time.Time{})
	c.mu.Lock()
	c.nc = tc
	c.mu.Unlock()
	c.isTLS = true
	c.br.Reset(tc)
	c.w.w.Reset(deadlineWriter{c})
	return nil
}

// withCtx returns a context for store calls of one command.
func (c *conn) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Minute)
}
