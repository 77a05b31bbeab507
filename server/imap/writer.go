package imap

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"

	"mailmig/mailstore/mutf7"
)

// writer encodes responses onto a buffered connection. Methods append to
// the buffer; flush sends it. Errors stick: after the first write error
// every method is a no-op and flush reports it.
type writer struct {
	w   *bufio.Writer
	err error
	// utf8 is set after ENABLE UTF8=ACCEPT or IMAP4rev2: quoted strings
	// may then carry UTF-8.
	utf8 bool
	// deflate is set after COMPRESS DEFLATE (compress.go).
	deflate *deflateWriter
}

func (w *writer) raw(s string) *writer {
	if w.err == nil {
		_, w.err = w.w.WriteString(s)
	}
	return w
}

func (w *writer) bytes(b []byte) *writer {
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
	return w
}

func (w *writer) byte1(c byte) *writer {
	if w.err == nil {
		w.err = w.w.WriteByte(c)
	}
	return w
}

func (w *writer) sp() *writer { return w.byte1(' ') }

func (w *writer) crlf() *writer { return w.raw("\r\n") }

func (w *writer) num(n uint32) *writer {
	if w.err == nil {
		var buf [12]byte
		_, w.err = w.w.Write(strconv.AppendUint(buf[:0], uint64(n), 10))
	}
	return w
}

func (w *writer) num64(n int64) *writer {
	if w.err == nil {
		var buf [24]byte
		_, w.err = w.w.Write(strconv.AppendInt(buf[:0], n, 10))
	}
	return w
}

func (w *writer) flush() error {
	if w.err == nil {
		w.err = w.w.Flush()
	}
	if w.err == nil && w.deflate != nil {
		w.err = w.deflate.flush()
	}
	return w.err
}

// quotable tells whether s can be sent as a quoted string.
func (w *writer) quotable(s string) bool {
	if len(s) > 1000 {
		return false
	}
	escapes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		// Quotes and backslashes are escaped (RFC 9051 §4.3), as
		// dovecot does (LIST "q\"uote", a parameter "r\"e\".pdf"),
		// up to four of them; more make a literal.
		if c == '"' || c == '\\' {
			if escapes++; escapes > 4 {
				return false
			}
		}
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
		if c >= 0x80 && !w.utf8 {
			return false
		}
	}
	return !w.utf8 || utf8.ValidString(s)
}

// str writes s as a quoted string, or as a literal when it cannot be quoted.
func (w *writer) str(s string) *writer {
	if !w.quotable(s) {
		return w.literal(s)
	}
	w.byte1('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			w.byte1('\\')
		}
		w.byte1(s[i])
	}
	return w.byte1('"')
}

// humanNstr writes text for people (an ENVELOPE subject or display
// name) as dovecot does: NIL for "", a literal when it holds a quote or
// a backslash, a string otherwise.
func (w *writer) humanNstr(s string) *writer {
	if s == "" {
		return w.raw("NIL")
	}
	return w.humanStr(s)
}

// humanStr writes text for people as dovecot's
// imap_append_string_for_humans does: runs of white space (tabs and
// line ends too) become one space, none at the ends; text that had to
// be changed so, or holds a quote, a backslash or an 8-bit byte, goes
// as a literal, other text as a quoted string.
func (w *writer) humanStr(s string) *writer {
	var b strings.Builder
	space, changed := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0:
			if c != ' ' || space || b.Len() == 0 {
				changed = true
			}
			space = true
			continue
		case c == '"' || c == '\\' || c >= 0x80:
			changed = true
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
	}
	if space {
		changed = true
	}
	if changed {
		return w.literal(b.String())
	}
	return w.str(s)
}

// nstr writes NIL for "" and a string otherwise.
func (w *writer) nstr(s string) *writer {
	if s == "" {
		return w.raw("NIL")
	}
	return w.str(s)
}

// astr writes s as an atom when it is one, otherwise as a string.
func (w *writer) astr(s string) *writer {
	if s == "" || strings.EqualFold(s, "NIL") {
		return w.str(s)
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i], "]") {
			return w.str(s)
		}
	}
	return w.raw(s)
}

func (w *writer) literal(s string) *writer {
	w.byte1('{').num64(int64(len(s))).raw("}\r\n")
	return w.raw(s)
}

func (w *writer) literalBytes(b []byte) *writer {
	w.byte1('{').num64(int64(len(b))).raw("}\r\n")
	return w.bytes(b)
}

// literalFrom writes a literal of size bytes copied from r. A short read
// is padded with spaces so the protocol stays in sync; the error is
// returned for logging.
func (w *writer) literalFrom(r io.Reader, size int64) error {
	w.byte1('{').num64(size).raw("}\r\n")
	if w.err != nil {
		return w.err
	}
	n, err := io.CopyN(w.w, r, size)
	for ; n < size && w.err == nil; n++ {
		w.err = w.w.WriteByte(' ')
	}
	return err
}

// mailbox writes a mailbox name (UTF-8 inside mailmig, modified UTF-7 on
// the wire unless UTF8=ACCEPT is on).
func (w *writer) mailbox(name string) *writer {
	if !w.utf8 {
		name = mutf7.Encode(name)
	}
	return w.astr(name)
}

func (w *writer) flags(flags []imap.Flag) *writer {
	w.byte1('(')
	for i, f := range flags {
		if i > 0 {
			w.sp()
		}
		w.raw(string(f))
	}
	return w.byte1(')')
}

// dateTime writes an internal date as RFC 9051 date-time.
func (w *writer) dateTime(t time.Time) *writer {
	return w.byte1('"').raw(t.Format("02-Jan-2006 15:04:05 -0700")).byte1('"')
}

// status writes "tag TYPE [CODE] text".
func (w *writer) status(tag string, typ imap.StatusResponseType, code imap.ResponseCode, text string) *writer {
	if tag == "" {
		tag = "*"
	}
	w.raw(tag).sp().raw(string(typ)).sp()
	if code != "" {
		w.byte1('[').raw(string(code)).raw("] ")
	}
	if text == "" {
		text = "done"
	}
	return w.raw(sanitizeText(text)).crlf()
}

// sanitizeText keeps response text on one line.
func sanitizeText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

const envelopeDate = "Mon, 02 Jan 2006 15:04:05 -0700"

// envelopeRaw writes the ENVELOPE of a message header the way dovecot
// does: date, subject, In-Reply-To, Message-ID and display names as they
// are in the header (clients decode encoded words themselves; 8-bit text
// from old clients is passed on, not guessed at).
func (w *writer) envelopeRaw(h textproto.Header) *writer {
	addrs := func(k string) []envAddr { return parseAddressList(h.Get(k)) }
	from := addrs("From")
	sender, replyTo := addrs("Sender"), addrs("Reply-To")
	if len(sender) == 0 {
		sender = from
	}
	if len(replyTo) == 0 {
		replyTo = from
	}
	w.byte1('(').nolfField(h, "Date").sp()
	if v, ok := rawFieldValue(h, "Subject"); ok {
		w.humanStr(v)
	} else {
		w.raw("NIL")
	}
	for _, l := range [][]envAddr{from, sender, replyTo, addrs("To"), addrs("Cc"), addrs("Bcc")} {
		w.sp().rawAddresses(l)
	}
	return w.sp().nolfField(h, "In-Reply-To").sp().nolfField(h, "Message-Id").byte1(')')
}

// nolfField writes a field as dovecot's ENVELOPE does with Date,
// In-Reply-To and Message-ID: its value with line ends removed and all
// other white space kept, "" when the field is empty, NIL when absent.
func (w *writer) nolfField(h textproto.Header, k string) *writer {
	v, ok := rawFieldValue(h, k)
	if !ok {
		return w.raw("NIL")
	}
	return w.str(v)
}

// rawFieldValue is the first field k as written: after the colon, the
// leading white space of its first line removed (of a first line that is
// only white space, one character, as dovecot's header parser does),
// line ends removed.
func rawFieldValue(h textproto.Header, k string) (string, bool) {
	if !h.Has(k) {
		return "", false
	}
	// go-message iterates last field first; the first one counts, as
	// with Get.
	var raw []byte
	for fields := h.FieldsByKey(k); fields.Next(); {
		b, err := fields.Raw()
		if err != nil {
			b = []byte(k + ": " + fields.Value())
		}
		raw = b
	}
	v := string(raw)
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	// White space after the colon goes, on the field's first line only
	// (a folded "In-Reply-To:\r\n <id>" keeps its " "); of a first line
	// of only white space, one character goes (dovecot: "Date:   " is
	// "  ").
	first, rest, _ := strings.Cut(v, "\n")
	first = strings.TrimSuffix(first, "\r")
	if t := strings.TrimLeft(first, " \t"); t != "" {
		first = t
	} else if first != "" {
		first = first[1:]
	}
	v = strings.NewReplacer("\r", "", "\n", "").Replace(first + rest)
	return v, true
}

// unfold removes header folding (CRLF followed by white space).
func unfold(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "")
	return strings.ReplaceAll(s, "\n", "")
}
