package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"strings"
	"time"
)

// Errors returned by Deliver; match them with errors.Is / errors.As and
// turn them into replies with SMTPStatus and ExitCode so that every front
// end (LMTP, submission, `mailmig deliver`) answers the same way.
var (
	// ErrUnknownUser: the recipient has no local account.
	// LMTP 550 5.1.1, sysexits EX_NOUSER (67).
	ErrUnknownUser = errors.New("delivery: unknown user")
	// ErrOverQuota: storing the message would exceed the user's quota.
	// LMTP 552 5.2.2 (or 452 4.2.2 when wrapped in a TemporaryError),
	// sysexits EX_CANTCREAT (73) or EX_TEMPFAIL (75).
	ErrOverQuota = errors.New("delivery: mailbox full")
	// ErrTooBig: the message is larger than MaxMessageBytes.
	// LMTP 552 5.3.4, sysexits EX_DATAERR (65).
	ErrTooBig = errors.New("delivery: message too big")
	// ErrLineTooLong: a line of the message is longer than MaxLineLength.
	// LMTP 554 5.6.0, sysexits EX_DATAERR (65): permanent, since a retry
	// fails the same way for days and then bounces.
	ErrLineTooLong = errors.New("delivery: a line of the message is too long")
)

// MaxLineLength bounds one line of a message (LMTP and submission apply
// it to commands too). RFC 5322's 998 octets is a rule for generators
// that real mail breaks; dovecot's LMTP stores such lines, and so does
// mailmig up to this limit.
const MaxLineLength = 1 << 20

// RejectError is returned when a Sieve script executed reject or ereject
// (RFC 5429): the message is refused with the script's text.
// LMTP 550 5.7.1 TEXT, sysexits EX_NOPERM (77).
type RejectError struct {
	// Reason is the script's text (already variable-expanded).
	Reason string
	// Extended is true for ereject.
	Extended bool
}

func (e *RejectError) Error() string {
	return "delivery: rejected by sieve: " + e.Reason
}

// TemporaryError marks a failure worth retrying later (I/O error, lock
// timeout, database busy, configured temporary over-quota).
// LMTP 451 4.3.0 (452 4.2.2 for quota), sysexits EX_TEMPFAIL (75).
type TemporaryError struct{ Err error }

func (e *TemporaryError) Error() string { return e.Err.Error() }
func (e *TemporaryError) Unwrap() error { return e.Err }

// Temporary wraps err as a TemporaryError (nil stays nil).
func Temporary(err error) error {
	if err == nil {
		return nil
	}
	var t *TemporaryError
	if errors.As(err, &t) {
		return err
	}
	return &TemporaryError{Err: err}
}

// IsTemporary reports whether err should make the sender retry. Unknown
// errors count as temporary: mail is never bounced because of a local bug.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var t *TemporaryError
	if errors.As(err, &t) {
		return true
	}
	var r *RejectError
	switch {
	case errors.As(err, &r), errors.Is(err, ErrUnknownUser),
		errors.Is(err, ErrOverQuota), errors.Is(err, ErrTooBig), errors.Is(err, ErrLineTooLong):
		return false
	}
	return true
}

// SMTPStatus maps a Deliver error to an SMTP/LMTP reply: code, enhanced
// status code (RFC 3463) and the text to show the client. The text never
// carries internal detail (paths, errno): that goes to the log.
// A nil error maps to 250 2.0.0.
func SMTPStatus(err error) (code int, enhanced [3]int, msg string) {
	if err == nil {
		return 250, [3]int{2, 0, 0}, "Ok"
	}
	var r *RejectError
	if errors.As(err, &r) {
		return 550, [3]int{5, 7, 1}, asciiReply(sanitizeReply(r.Reason, "Message rejected"))
	}
	temp := false
	var t *TemporaryError
	if errors.As(err, &t) {
		temp = true
	}
	switch {
	case errors.Is(err, ErrUnknownUser):
		return 550, [3]int{5, 1, 1}, "No such user here"
	case errors.Is(err, ErrOverQuota):
		if temp {
			return 452, [3]int{4, 2, 2}, "Mailbox is full, try again later"
		}
		return 552, [3]int{5, 2, 2}, "Mailbox is full"
	case errors.Is(err, ErrTooBig):
		return 552, [3]int{5, 3, 4}, "Message too big"
	case errors.Is(err, ErrLineTooLong):
		return 554, [3]int{5, 6, 0}, "A line of this message is longer than 1 MiB; it cannot be stored"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 451, [3]int{4, 4, 2}, "Delivery interrupted, try again later"
	}
	return 451, [3]int{4, 3, 0}, "Temporary local error, try again later"
}

// Exit codes from sysexits.h used by ExitCode.
const (
	ExOK        = 0
	ExUsage     = 64
	ExDataErr   = 65
	ExNoUser    = 67
	ExSoftware  = 70
	ExCantCreat = 73
	ExTempFail  = 75
	ExNoPerm    = 77
	ExConfig    = 78
)

// ExitCode maps a Deliver error to a sysexits code for MTA pipes
// (`mailmig deliver`): 0 delivered, 67 unknown user, 75 retry later,
// 77 rejected by Sieve, 73 over quota (permanent), 65 too big.
func ExitCode(err error) int {
	if err == nil {
		return ExOK
	}
	if IsTemporary(err) {
		return ExTempFail
	}
	var r *RejectError
	switch {
	case errors.As(err, &r):
		return ExNoPerm
	case errors.Is(err, ErrUnknownUser):
		return ExNoUser
	case errors.Is(err, ErrOverQuota):
		return ExCantCreat
	case errors.Is(err, ErrTooBig), errors.Is(err, ErrLineTooLong):
		return ExDataErr
	}
	return ExTempFail
}

// sanitizeReply makes a script-supplied text safe for an SMTP reply:
// printable, no CR, at most a few lines of bounded length.
func sanitizeReply(s, def string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, l)
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if len(l) > 400 {
			l = l[:400]
		}
		lines = append(lines, l)
		if len(lines) == 5 {
			break
		}
	}
	if len(lines) == 0 {
		return def
	}
	return strings.Join(lines, "\n")
}

// asciiReply makes each line of a reply ASCII (RFC 5321 §4.2: replies
// are US-ASCII): a line with other characters becomes RFC 2047 encoded
// words, which keeps the text recoverable in a bounce.
func asciiReply(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if !isASCII(l) {
			lines[i] = mime.QEncoding.Encode("utf-8", strings.ToValidUTF8(l, "?"))
		}
	}
	return strings.Join(lines, "\n")
}

func wrapUser(user, what string, err error) error {
	return fmt.Errorf("delivery: user %s: %s: %w", user, what, err)
}

// DrainData reads the rest of a DATA section from conn after a line over
// MaxLineLength stopped the SMTP library's reader (which then answers and
// closes): without it the client is still writing when the connection
// closes, sees a reset instead of the permanent reply, and retries for
// days. It stops at the terminating CRLF.CRLF, after maxBytes, or when the
// client has sent nothing for a few seconds (the terminator may have been
// in the part the library discarded).
func DrainData(conn net.Conn, maxBytes int64) {
	buf := make([]byte, 32<<10)
	var tail []byte
	var total int64
	defer conn.SetReadDeadline(time.Time{})
	for total < maxBytes {
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := conn.Read(buf)
		total += int64(n)
		if n > 0 {
			tail = append(tail, buf[:n]...)
			if bytes.Contains(tail, []byte("\r\n.\r\n")) || bytes.Contains(tail, []byte("\n.\n")) {
				return
			}
			if len(tail) > 4 {
				tail = append(tail[:0], tail[len(tail)-4:]...)
			}
		}
		if err != nil {
			return
		}
	}
}
