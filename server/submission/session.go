package submission

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mailmig/server/delivery"
	"mailmig/server/listen"
	"mailmig/server/msgspool"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailmig/server/auth"
	"mailmig/server/sessions"
)

var _ smtp.AuthSession = (*session)(nil)

type rcpt struct {
	addr         string
	user, detail string // for local recipients
	local        bool
}

// errTimedOut answers the partial command a connection cut by
// listen.TimeLimit still hands to the session (go-smtp sends 421 4.4.2
// right after).
var errTimedOut = smtpErr(421, smtp.EnhancedCode{4, 4, 2}, "timeout: the command did not arrive in time")

type session struct {
	s       *Server
	conn    *smtp.Conn
	remote  netip.Addr
	trusted bool
	tls     bool
	user    string // authenticated user, "" before AUTH
	// releaseUser gives back the session's Server.UserIP slot.
	releaseUser func()

	from     string
	haveFrom bool
	rcpts    []rcpt
}

func smtpErr(code int, enh smtp.EnhancedCode, format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: fmt.Sprintf(format, args...)}
}

// errTemp is the reply to an internal failure; the detail goes to the log.
func (ss *session) errTemp() *smtp.SMTPError {
	return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "%s: local error, please try again later", ss.s.Hostname)
}

func (ss *session) tooBig() *smtp.SMTPError {
	return smtpErr(552, smtp.EnhancedCode{5, 3, 4}, "%s: message exceeds %s limit", ss.s.Hostname, humanSize(ss.s.maxBytes()))
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// AuthMechanisms implements smtp.AuthSession. go-smtp offers them only
// over TLS or on a listener with AllowInsecureAuth (RFC 4954 §4); with
// only GSSAPIWithoutTLS, a connection without TLS is offered GSSAPI alone.
func (ss *session) AuthMechanisms() []string {
	if !ss.passwordAllowed() {
		return []string{"GSSAPI"}
	}
	if ss.s.GSSAPI != nil {
		return []string{sasl.Plain, sasl.Login, "GSSAPI"}
	}
	return []string{sasl.Plain, sasl.Login}
}

// passwordAllowed reports whether PLAIN and LOGIN may be used: over TLS,
// or on a trusted listener.
func (ss *session) passwordAllowed() bool {
	_, isTLS := ss.conn.TLSConnectionState()
	return isTLS || ss.s.AllowInsecureAuth
}

// Auth implements smtp.AuthSession (RFC 4954).
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.user != "" {
		return nil, smtpErr(503, smtp.EnhancedCode{5, 5, 1}, "already authenticated")
	}
	if listen.TimedOut(ss.conn.Conn()) {
		return nil, errTimedOut // a partial line: never a login attempt
	}
	if m := strings.ToUpper(mech); (m == sasl.Plain || m == sasl.Login) && !ss.passwordAllowed() {
		// RFC 4954 §6: 538 for a mechanism that needs encryption.
		return nil, smtpErr(538, smtp.EnhancedCode{5, 7, 11}, "encryption required for %s: use STARTTLS first", m)
	}
	check := func(identity, user, pass string) error {
		if identity != "" && identity != user {
			return smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "authentication failed: authorization identity must be empty or equal the user")
		}
		return ss.login(user, pass)
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(check), nil
	case sasl.Login:
		return &loginServer{check: func(u, p string) error { return check("", u, p) }}, nil
	case "GSSAPI":
		if ss.s.GSSAPI != nil {
			return ss.gssapiServer(), nil
		}
	}
	return nil, smtpErr(504, smtp.EnhancedCode{5, 5, 4}, "unsupported authentication mechanism; use PLAIN or LOGIN")
}

func (ss *session) login(user, pass string) error {
	if ss.s.Auth == nil {
		return smtp.ErrAuthFailed
	}
	ctx, cancel := context.WithTimeout(ss.s.ctx, time.Minute)
	defer cancel()
	if err := ss.s.Auth.Authenticate(ctx, ss.remote.String(), user, pass); err != nil {
		ss.s.log().Info("submission: authentication failed", "remote", ss.remote, "user", user, "err", err)
		if errors.Is(err, auth.ErrRateLimited) {
			// RFC 4954 §6: temporary authentication failure.
			return smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "too many failed attempts, try again later")
		}
		return smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "authentication failed")
	}
	if ul := ss.s.UserIP; ul != nil {
		release, ok := ul.Acquire(listen.UserIPKey(user, ss.conn.Conn().RemoteAddr()))
		if !ok {
			ss.s.log().Warn("submission: too many sessions of user from address", "remote", ss.remote, "user", user, "limit", ul.Max)
			// RFC 4954 §6: a temporary authentication failure.
			return smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Maximum number of connections from user+IP exceeded (%d)", ul.Max)
		}
		if ss.releaseUser != nil {
			ss.releaseUser()
		}
		ss.releaseUser = release
	}
	ss.loggedIn(user)
	return nil
}

func (ss *session) loggedIn(user string) {
	ss.user = user
	if tc := listen.FindTimed(ss.conn.Conn()); tc != nil {
		tc.Authenticated()
	}
	sessions.LoggedIn(ss.conn.Conn(), user) // mailmig who / kick
	ss.s.log().Info("submission: authenticated", "remote", ss.remote, "user", user, "tls", ss.tls)
}

// ownsAddress reports whether addr is one of user's addresses.
func (s *Server) ownsAddress(user, addr string) bool {
	local, domain, ok := splitAddr(addr)
	if !ok || !s.isLocalDomain(domain) {
		return false
	}
	base, _, _ := strings.Cut(local, "+")
	if s.SenderAlias != nil && !strings.EqualFold(base, user) {
		return s.SenderAlias(base, user)
	}
	return strings.EqualFold(base, user)
}

func (s *Server) isLocalDomain(domain string) bool {
	for _, d := range s.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

func splitAddr(addr string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

// Mail implements smtp.Session (RFC 5321 §4.1.1.2, RFC 6409 §6.1).
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if listen.TimedOut(ss.conn.Conn()) {
		return errTimedOut
	}
	switch {
	case ss.user != "":
		if !ss.s.ownsAddress(ss.user, from) {
			ss.s.log().Warn("submission: refused sender address", "remote", ss.remote, "user", ss.user, "from", from)
			return smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "sender address <%s> is not owned by %s", from, ss.user)
		}
	case ss.trusted:
		// A trusted network's client needs no AUTH: its first
		// transaction ends the pre-authentication bound.
		if tc := listen.FindTimed(ss.conn.Conn()); tc != nil {
			tc.Authenticated()
		}
	default:
		return smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "authentication required")
	}
	if opts != nil && opts.Size > ss.s.maxBytes() {
		return ss.tooBig()
	}
	ss.from, ss.haveFrom = from, true
	ss.rcpts = nil
	return nil
}

// Rcpt implements smtp.Session (RFC 5321 §4.1.1.3).
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if listen.TimedOut(ss.conn.Conn()) {
		return errTimedOut
	}
	if !ss.haveFrom {
		return smtpErr(503, smtp.EnhancedCode{5, 5, 1}, "MAIL FROM first")
	}
	local, domain, ok := splitAddr(to)
	if !ok {
		return smtpErr(501, smtp.EnhancedCode{5, 1, 3}, "bad recipient address <%s>", to)
	}
	if !ss.s.isLocalDomain(domain) {
		if ss.s.Outbound == nil {
			return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "%s does not relay to <%s>", ss.s.Hostname, to)
		}
		ss.rcpts = append(ss.rcpts, rcpt{addr: to})
		return nil
	}
	user, detail, _ := strings.Cut(local, "+")
	user = strings.ToLower(user)
	if ss.s.UserExists != nil {
		ok, err := ss.s.UserExists(ss.s.ctx, user)
		if err != nil {
			ss.s.log().Error("submission: look up recipient", "rcpt", to, "err", err)
			return ss.errTemp()
		}
		if !ok {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "<%s>: no such user here", to)
		}
	}
	ss.rcpts = append(ss.rcpts, rcpt{addr: to, user: user, detail: detail, local: true})
	return nil
}

// Data implements smtp.Session (RFC 5321 §4.1.1.4).
func (ss *session) Data(r io.Reader) error {
	if len(ss.rcpts) == 0 {
		return smtpErr(503, smtp.EnhancedCode{5, 5, 1}, "RCPT TO first")
	}
	if tc := listen.FindTimed(ss.conn.Conn()); tc != nil {
		tc.BeginData() // message lines are no command lines
	}
	// Bare CR and LF become CRLF before anything is relayed (SMTP
	// smuggling: "\r.\r" must not end DATA at a lenient receiver).
	var bare int
	threshold := ss.s.SpoolThreshold
	if threshold <= 0 {
		threshold = 256 << 10
	}
	spooled, err := msgspool.Read(msgspool.Normalize(r, &bare), new(bytes.Buffer), threshold, ss.s.SpoolDir)
	defer spooled.Close()
	if err == nil {
		if bare > 0 {
			ss.s.log().Info("submission: bare CR or LF normalised to CRLF", "remote", ss.remote, "count", bare)
		}
	}
	var head []byte
	if err == nil {
		head, err = msgspool.HeaderPrefix(spooled)
	}
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			return ss.tooBig()
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			ss.s.log().Warn("submission: message refused: a line is too long", "remote", ss.remote, "limit", delivery.MaxLineLength)
			delivery.DrainData(ss.conn.Conn(), ss.s.maxBytes())
			code, enh, msg := delivery.SMTPStatus(delivery.ErrLineTooLong)
			return smtpErr(code, smtp.EnhancedCode(enh), "%s", msg)
		}
		ss.s.log().Warn("submission: read message", "remote", ss.remote, "err", err)
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "%s: error reading the message", ss.s.Hostname)
	}
	id := newID()
	// The spooled message is only read: what is queued and delivered is
	// the fields prepare adds, then it.
	msg := msgspool.Concat(msgspool.Bytes(ss.prepare(id, head)), spooled)
	ctx := ss.s.ctx
	log := ss.s.log().With("id", id, "remote", ss.remote, "user", ss.user, "from", ss.from)

	var remote []string
	for _, rc := range ss.rcpts {
		if !rc.local {
			remote = append(remote, rc.addr)
		}
	}
	// Remote recipients first: once they are queued, the message is
	// accepted, and local failures can be handed to the queue too.
	if len(remote) > 0 {
		if err := ss.s.Outbound.Send(ctx, ss.from, remote, msgspool.NewReader(msg)); err != nil {
			log.Error("submission: queue for relay", "rcpts", remote, "err", err)
			return ss.errTemp()
		}
		log.Info("submission: queued for relay", "rcpts", remote, "bytes", msg.Size())
	}
	accepted := len(remote) > 0
	var failed []string
	var firstErr error
	for _, rc := range ss.rcpts {
		if !rc.local {
			continue
		}
		err := ss.s.Local.Deliver(ctx, Envelope{From: ss.from, To: rc.addr, User: rc.user, Detail: rc.detail}, msg)
		if err != nil {
			log.Warn("submission: local delivery failed", "rcpt", rc.addr, "err", err)
			failed = append(failed, rc.addr)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		log.Info("submission: delivered", "rcpt", rc.addr)
		accepted = true
	}
	if len(failed) == 0 {
		return nil
	}
	if !accepted {
		// Nobody has the message: the client learns why and keeps it.
		var se *smtp.SMTPError
		if errors.As(firstErr, &se) {
			return se
		}
		return ss.errTemp()
	}
	// Accepted for someone already: the queue retries the rest locally and
	// bounces what fails for good.
	if ss.s.Outbound == nil {
		// Nowhere to keep them: the client retries (a duplicate for the
		// others beats a loss).
		log.Error("submission: no outgoing queue for failed local recipients", "rcpts", failed)
		return ss.errTemp()
	}
	if err := ss.s.Outbound.Send(ctx, ss.from, failed, msgspool.NewReader(msg)); err != nil {
		log.Error("submission: queue failed local recipients", "rcpts", failed, "err", err)
		return ss.errTemp()
	}
	return nil
}

// prepare returns the fields to put before the message: the trace field
// (RFC 5321 §4.4) and, as RFC 6409 §8 allows, Date and Message-ID when
// the client left them out. head is the message's header section
// (msgspool.HeaderPrefix).
func (ss *session) prepare(id string, head []byte) []byte {
	with := "ESMTP"
	if ss.tls {
		with += "S"
	}
	if ss.user != "" {
		with += "A"
	}
	now := time.Now()
	var b bytes.Buffer
	fmt.Fprintf(&b, "Received: from %s (%s)\r\n\tby %s (mailmig) with %s id %s;\r\n\t%s\r\n",
		sanitize(ss.conn.Hostname()), ss.remote, ss.s.Hostname, with, id, now.Format(time.RFC1123Z))
	hdr := header(head)
	if !hasField(hdr, "date") {
		fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	}
	if !hasField(hdr, "message-id") {
		fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", id, ss.s.Hostname)
	}
	return b.Bytes()
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '(' || r == ')' {
			return '_'
		}
		return r
	}, s)
}

// header returns the header section of msg.
func header(msg []byte) []byte {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2]
	}
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+1]
	}
	return msg
}

// hasField reports whether the header section has a field named name.
func hasField(hdr []byte, name string) bool {
	for _, line := range bytes.Split(hdr, []byte("\n")) {
		if k, _, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(strings.TrimSpace(string(k)), name) {
			return true
		}
	}
	return false
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Reset implements smtp.Session.
func (ss *session) Reset() {
	ss.from, ss.haveFrom, ss.rcpts = "", false, nil
}

// Logout implements smtp.Session.
func (ss *session) Logout() error {
	if ss.releaseUser != nil {
		ss.releaseUser()
	}
	return nil
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl does not provide.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	gotUser  bool
	finished bool
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch {
	case l.finished:
		return nil, true, smtpErr(503, smtp.EnhancedCode{5, 5, 1}, "authentication already finished")
	case !l.gotUser && response == nil:
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(response), true
		return []byte("Password:"), false, nil
	default:
		l.finished = true
		return nil, true, l.check(l.user, string(response))
	}
}
