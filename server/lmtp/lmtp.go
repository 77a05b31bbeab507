// Package lmtp is mailmig's LMTP server (RFC 2033) on unix sockets and TCP,
// built on go-smtp's LMTP mode. Each recipient gets its own reply after
// DATA (RFC 2033 §4.2), taken from what server/delivery says for it:
// stored (250 2.0.0), unknown user (550 5.1.1, already at RCPT time), over
// quota (552 5.2.2 or 452 4.2.2), rejected by Sieve (550 5.7.1 with the
// script's text), or a temporary failure (451 4.3.0).
//
// Implementation notes:
//   - A 250 reply is only sent after Deliver returned, and Deliver returns
//     after the stored copies are fsynced: an acknowledged message is on
//     disk.
//   - Clients only ever see replies chosen here (delivery.SMTPStatus);
//     internal errors go to the log (go-smtp would write an arbitrary
//     error's text to the wire).
//   - Each recipient's copy gets Return-Path and Received header fields
//     (RFC 5321 §4.4) prepended; the message itself is read once.
package lmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"mailmig/server/delivery"
	"mailmig/server/listen"
	"mailmig/server/msgspool"
)

// Deliverer is the delivery path; *delivery.Deliverer implements it.
type Deliverer interface {
	Deliver(ctx context.Context, env delivery.Envelope, msg msgspool.Source) (*delivery.Result, error)
}

var _ Deliverer = (*delivery.Deliverer)(nil)

// Server is an LMTP server. Set the fields, then call Serve for each
// listener (unix and/or TCP); Close or Shutdown stops them all.
type Server struct {
	// Deliverer delivers each recipient's copy (required).
	Deliverer Deliverer
	// Resolve maps a recipient address to a local user and subaddress;
	// an error wrapping delivery.ErrUnknownUser gives 550 5.1.1 at RCPT.
	// nil means SplitAddress with no domain restriction.
	Resolve func(addr string) (user, detail string, err error)
	// Hostname is the server's name in the greeting and Received fields.
	Hostname string
	// MaxMessageBytes limits the message size (0 = 50 MB).
	MaxMessageBytes int64
	// MaxRecipients limits recipients per transaction (0 = 1000).
	MaxRecipients int
	// Timeout bounds reads and writes on a connection (0 = 5 minutes).
	Timeout time.Duration
	// WriteTimeout bounds each write to a client that does not read
	// (0 = Timeout).
	WriteTimeout time.Duration
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
	// SpoolThreshold: a message arriving beyond this many bytes waits in
	// an unlinked temporary file in SpoolDir, not in memory (0 = 256 KiB;
	// SpoolDir "" = os.TempDir()).
	SpoolThreshold int64
	SpoolDir       string
	// PreMailTimeout closes a connection that has no transaction open
	// this long after connecting or after its last transaction ended
	// (delivered or reset): an MTA's cached connection starts its next
	// MAIL within seconds. CommandTimeout bounds the arrival of one
	// command line once it started (listen.TimeLimit). Zero: none.
	PreMailTimeout, CommandTimeout time.Duration

	once   sync.Once
	srv    *smtp.Server
	ctx    context.Context
	cancel context.CancelFunc
	nextID atomic.Uint64
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.Hostname == "" {
			s.Hostname = "localhost"
		}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
		srv.LMTP = true
		srv.Domain = s.Hostname
		srv.MaxMessageBytes = s.MaxMessageBytes
		if srv.MaxMessageBytes <= 0 {
			srv.MaxMessageBytes = 50 << 20
		}
		srv.MaxRecipients = s.MaxRecipients
		if srv.MaxRecipients <= 0 {
			srv.MaxRecipients = 1000
		}
		srv.MaxLineLength = delivery.MaxLineLength
		t := s.Timeout
		if t <= 0 {
			t = 5 * time.Minute
		}
		srv.ReadTimeout, srv.WriteTimeout = t, t
		if s.WriteTimeout > 0 {
			srv.WriteTimeout = s.WriteTimeout
		}
		srv.EnableSMTPUTF8 = true
		srv.ErrorLog = slogAdapter{s.Logger}
		s.srv = srv
	})
}

// Serve accepts LMTP connections on ln until Close/Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	ln = listen.TimeLimit(listen.CloseOnWriteError(ln), listen.Timeouts{PreAuth: s.PreMailTimeout, Command: s.CommandTimeout,
		Expired: func(c net.Conn, why string) {
			if why == "preauth" {
				why = "pre-MAIL"
			}
			s.Logger.Info("lmtp: connection timed out", "remote", c.RemoteAddr().String(), "bound", why)
		}})
	err := s.srv.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the listeners and closes every connection at once.
func (s *Server) Close() error {
	s.init()
	s.cancel()
	err := s.srv.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the listeners and waits for connections to end (or ctx).
// Deliveries in progress complete.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	err := s.srv.Shutdown(ctx)
	s.cancel()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Println(v ...any)               { a.l.Error(fmt.Sprint(v...)) }

// SplitAddress splits a recipient address into local user and subaddress
// (RFC 5233, '+' separator), lower-casing the user. With domains given,
// other domains are unknown users. "<>" and addresses without '@' are
// refused.
func SplitAddress(addr string, domains []string) (user, detail string, err error) {
	addr = strings.TrimSpace(strings.Trim(addr, "<>"))
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" || domain == "" {
		return "", "", fmt.Errorf("lmtp: recipient %q: %w", addr, delivery.ErrUnknownUser)
	}
	if len(domains) > 0 {
		found := false
		for _, d := range domains {
			if strings.EqualFold(d, domain) {
				found = true
				break
			}
		}
		if !found {
			return "", "", fmt.Errorf("lmtp: recipient %q: domain not local: %w", addr, delivery.ErrUnknownUser)
		}
	}
	user, detail, _ = strings.Cut(local, "+")
	user = strings.ToLower(user)
	if user == "" || strings.ContainsAny(user, "/\x00") || user == "." || user == ".." {
		return "", "", fmt.Errorf("lmtp: recipient %q: %w", addr, delivery.ErrUnknownUser)
	}
	return user, detail, nil
}

func toSMTPError(err error) *smtp.SMTPError {
	code, enh, msg := delivery.SMTPStatus(err)
	// RFC 2034 §3 wants the enhanced code on every line of a reply, but
	// go-smtp puts "<recipient> " before the first line of each LMTP
	// DATA status and the code only on the last: a multi-line text (a
	// reject reason) is sent as one line.
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " ")
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enh), Message: msg}
}

// errTimedOut answers the partial command a connection cut by
// listen.TimeLimit still hands to the session (go-smtp sends 421 4.4.2
// right after).
var errTimedOut = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "timeout: the command did not arrive in time"}

type rcpt struct {
	addr         string // as given to Rcpt (the status key)
	user, detail string
}

type session struct {
	s     *Server
	conn  *smtp.Conn
	id    uint64
	log   *slog.Logger
	from  string
	rcpts []rcpt
	// inTx: a MAIL was accepted and the transaction has not ended.
	inTx bool
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.LMTPSession = (*session)(nil)
)

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	id := s.nextID.Add(1)
	return &session{s: s, conn: c, id: id,
		log: s.Logger.With("proto", "lmtp", "conn", id, "remote", c.Conn().RemoteAddr().String())}, nil
}

// Reset ends a transaction (RSET, or after DATA): the pre-MAIL bound
// runs again from now, until the next MAIL.
func (se *session) Reset() {
	se.from, se.rcpts = "", nil
	if se.inTx {
		se.inTx = false
		if tc := listen.FindTimed(se.conn.Conn()); tc != nil {
			tc.Unauthenticated()
		}
	}
}

func (se *session) Logout() error { return nil }

// Mail starts a transaction (RFC 5321 §4.1.1.2); "" is the null sender.
func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if listen.TimedOut(se.conn.Conn()) {
		return errTimedOut
	}
	se.from, se.rcpts = from, nil
	if !se.inTx {
		se.inTx = true
		if tc := listen.FindTimed(se.conn.Conn()); tc != nil {
			tc.Authenticated() // the pre-MAIL bound ends
		}
	}
	return nil
}

// Rcpt checks the recipient at once (RFC 2033 §4.2 allows it): unknown
// users get 550 5.1.1 here rather than after DATA.
func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if listen.TimedOut(se.conn.Conn()) {
		return errTimedOut
	}
	resolve := se.s.Resolve
	if resolve == nil {
		resolve = func(a string) (string, string, error) { return SplitAddress(a, nil) }
	}
	user, detail, err := resolve(to)
	if err != nil {
		if !errors.Is(err, delivery.ErrUnknownUser) {
			se.log.Error("resolving recipient failed", "rcpt", to, "err", err)
			err = delivery.Temporary(err)
		}
		return toSMTPError(err)
	}
	se.rcpts = append(se.rcpts, rcpt{addr: to, user: user, detail: detail})
	return nil
}

// Data is never called: go-smtp uses LMTPData for LMTP sessions.
func (se *session) Data(r io.Reader) error {
	return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "LMTP only"}
}

// LMTPData reads the message once and delivers it to each recipient,
// setting one status per recipient (RFC 2033 §4.2).
func (se *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	if tc := listen.FindTimed(se.conn.Conn()); tc != nil {
		tc.BeginData() // message lines are no command lines
	}
	buf := msgBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuf {
			buf.Reset()
			msgBufs.Put(buf)
		}
	}()
	spooled, err := msgspool.Read(r, buf, se.s.spoolThreshold(), se.s.SpoolDir)
	defer spooled.Close()
	if err != nil {
		// go-smtp answers the size limit itself; anything else is I/O.
		var serr *smtp.SMTPError
		if errors.As(err, &serr) {
			return serr
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			se.log.Warn("message refused: a line is too long", "limit", delivery.MaxLineLength)
			delivery.DrainData(se.conn.Conn(), se.s.srv.MaxMessageBytes)
			return toSMTPError(delivery.ErrLineTooLong)
		}
		se.log.Error("reading message failed", "err", err)
		return toSMTPError(delivery.Temporary(err))
	}
	// The spooled message is only read: each recipient's copy is its
	// trace fields followed by it.
	var msg msgspool.Source = spooled
	eol, err := lineEnd(msg)
	if err != nil {
		se.log.Error("reading spooled message failed", "err", err)
		return toSMTPError(delivery.Temporary(err))
	}
	now := time.Now()
	if len(se.rcpts) == 1 {
		se.deliverOne(se.rcpts[0], now, eol, msg, status)
		return nil
	}
	// Recipients are delivered in parallel (their fsyncs overlap); go-smtp
	// still writes the replies in RCPT order.
	sem := make(chan struct{}, parallelRcpts)
	var wg sync.WaitGroup
	for _, rc := range se.rcpts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			se.deliverOne(rc, now, eol, msg, status)
		}()
	}
	wg.Wait()
	return nil
}

func (s *Server) spoolThreshold() int64 {
	if s.SpoolThreshold > 0 {
		return s.SpoolThreshold
	}
	return 256 << 10
}

// msgBufs recycles the buffers messages are read into, so a stream of
// deliveries does not allocate and regrow one per message.
var msgBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf: buffers grown by bigger messages are left to the GC.
const maxPooledBuf = 1 << 20

// parallelRcpts bounds concurrent deliveries of one message.
const parallelRcpts = 4

func (se *session) deliverOne(rc rcpt, now time.Time, eol string, msg msgspool.Source, status smtp.StatusCollector) {
	copyMsg := msgspool.Concat(msgspool.Bytes(se.traceHeaders(rc, now, eol)), msg)
	env := delivery.Envelope{From: se.from, To: rc.addr, User: rc.user, Detail: rc.detail}
	ctx, cancel := context.WithTimeout(se.s.ctx, 5*time.Minute)
	res, err := se.s.Deliverer.Deliver(ctx, env, copyMsg)
	cancel()
	if err != nil {
		lvl := slog.LevelWarn
		if delivery.IsTemporary(err) {
			lvl = slog.LevelError
		}
		se.log.Log(context.Background(), lvl, "delivery failed", "from", se.from, "rcpt", rc.addr, "err", err)
		status.SetStatus(rc.addr, toSMTPError(err))
		return
	}
	se.log.Info("delivered", "from", se.from, "rcpt", rc.addr, "size", msg.Size(), "copies", len(res.Stored))
	status.SetStatus(rc.addr, nil)
}

// lineEnd is the line end of msg's first line ("\r\n" if it has none),
// which the trace fields take.
func lineEnd(msg msgspool.Source) (string, error) {
	var buf [4096]byte
	prev := byte(0)
	for off := int64(0); off < msg.Size(); {
		n, err := msg.ReadAt(buf[:min(int64(len(buf)), msg.Size()-off)], off)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			if (i == 0 && (off == 0 || prev != '\r')) || (i > 0 && buf[i-1] != '\r') {
				return "\n", nil
			}
			return "\r\n", nil
		}
		if n > 0 {
			prev = buf[n-1]
		}
		off += int64(n)
		if err != nil && err != io.EOF {
			return "", err
		}
		if n == 0 {
			break
		}
	}
	return "\r\n", nil
}

// traceHeaders returns the Return-Path and Received fields (RFC 5321
// §4.4) prepended to rc's copy.
func (se *session) traceHeaders(rc rcpt, now time.Time, eol string) []byte {
	helo := se.conn.Hostname()
	remote := se.conn.Conn().RemoteAddr().String()
	if remote == "" || remote == "@" {
		remote = "local"
	}
	h := fmt.Sprintf("Return-Path: <%s>%sReceived: from %s (%s)%s\tby %s with LMTP id %d-%d%s\tfor <%s>; %s%s",
		se.from, eol, sanitize(helo), sanitize(remote), eol,
		se.s.Hostname, se.id, now.UnixNano(), eol, sanitize(rc.addr), now.Format(time.RFC1123Z), eol)
	return []byte(h)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '(' || r == ')' {
			return -1
		}
		return r
	}, s)
}
