package imap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Limits of the command reader. A line longer than maxLine or a literal
// (other than an APPEND message or a CATENATE TEXT part, which go to
// disk) longer than maxLiteral ends the command
// with BAD; both bound the memory a client can make one connection hold.
const (
	maxLine    = 64 * 1024
	maxLiteral = 1 << 20
)

// errLineTooLong is returned when a command line exceeds maxLine.
var errLineTooLong = errors.New("imap: command line too long")

// syntaxError is a client error in a command: answered with BAD.
type syntaxError struct {
	pos int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("syntax error at byte %d: %s", e.pos, e.msg) }

// parser reads one command from the connection. It holds the current line
// and reads continuation lines after each literal; literals are either
// read into memory (bounded by maxLiteral) or, for APPEND, handed to the
// caller as a reader (see literalReader).
type parser struct {
	r    *bufio.Reader
	cont func() error // sends "+ " for a synchronizing literal
	line []byte       // current line without CRLF
	pos  int
	off  int // bytes of the command consumed before line (for error offsets)
	// budget bounds the literal bytes of the command (nil = only
	// maxLiteral per literal).
	budget *literalBudget
	// quotedFields tells, for the last HEADER.FIELDS list parsed, which
	// names came as strings (they are echoed quoted, as dovecot does).
	quotedFields []bool
}

// readLine reads one CRLF (or LF) terminated line into p.line.
func readLine(r *bufio.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine {
			// Drain the rest of the line so the next command starts clean.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			return nil, errLineTooLong
		}
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
	buf = buf[:len(buf)-1]
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf = buf[:n-1]
	}
	return buf, nil
}

func (p *parser) errorf(format string, args ...any) error {
	return &syntaxError{pos: p.off + p.pos, msg: fmt.Sprintf(format, args...)}
}

func (p *parser) eol() bool { return p.pos >= len(p.line) }

func (p *parser) peek() byte {
	if p.eol() {
		return 0
	}
	return p.line[p.pos]
}

// take consumes c if it is next.
func (p *parser) take(c byte) bool {
	if p.peek() == c && !p.eol() {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(c byte) error {
	if !p.take(c) {
		return p.errorf("expected %q", c)
	}
	return nil
}

func (p *parser) sp() error { return p.expect(' ') }

// end checks that the command line is complete.
func (p *parser) end() error {
	if !p.eol() {
		return p.errorf("unexpected %q", p.line[p.pos:])
	}
	return nil
}

func isAtomChar(c byte, extra string) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return strings.IndexByte(extra, c) >= 0
	}
	return true
}

// word reads a run of atom characters plus those in extra.
func (p *parser) word(extra string) string {
	start := p.pos
	for !p.eol() && isAtomChar(p.line[p.pos], extra) {
		p.pos++
	}
	return string(p.line[start:p.pos])
}

// wordExcept reads atom characters other than those in stop.
func (p *parser) wordExcept(stop string) string {
	start := p.pos
	for !p.eol() && isAtomChar(p.line[p.pos], "") && strings.IndexByte(stop, p.line[p.pos]) < 0 {
		p.pos++
	}
	return string(p.line[start:p.pos])
}

// atom reads an IMAP atom.
func (p *parser) atom() (string, error) {
	s := p.word("")
	if s == "" {
		return "", p.errorf("expected atom")
	}
	return s, nil
}

// tag reads a command tag: astring characters except '+'.
func (p *parser) tag() (string, error) {
	start := p.pos
	for !p.eol() {
		c := p.line[p.pos]
		if c == '+' || !isAtomChar(c, "]") {
			break
		}
		p.pos++
	}
	if p.pos == start {
		return "", p.errorf("expected tag")
	}
	return string(p.line[start:p.pos]), nil
}

// number reads a 32-bit unsigned number.
func (p *parser) number() (uint32, error) {
	start := p.pos
	for !p.eol() && p.line[p.pos] >= '0' && p.line[p.pos] <= '9' {
		p.pos++
	}
	n, err := strconv.ParseUint(string(p.line[start:p.pos]), 10, 32)
	if err != nil {
		p.pos = start
		return 0, p.errorf("expected number")
	}
	return uint32(n), nil
}

// number64 reads a 63-bit unsigned number.
func (p *parser) number64() (int64, error) {
	start := p.pos
	for !p.eol() && p.line[p.pos] >= '0' && p.line[p.pos] <= '9' {
		p.pos++
	}
	n, err := strconv.ParseInt(string(p.line[start:p.pos]), 10, 64)
	if err != nil || n < 0 {
		p.pos = start
		return 0, p.errorf("expected number")
	}
	return n, nil
}

// quoted reads a quoted string; the opening quote is next.
func (p *parser) quoted() (string, error) {
	if err := p.expect('"'); err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		if p.eol() {
			return "", p.errorf("unterminated quoted string")
		}
		c := p.line[p.pos]
		p.pos++
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if p.eol() || (p.line[p.pos] != '"' && p.line[p.pos] != '\\') {
				return "", p.errorf("bad escape in quoted string")
			}
			b.WriteByte(p.line[p.pos])
			p.pos++
		default:
			b.WriteByte(c)
		}
	}
}

// literalHeader parses "{n}" or "{n+}" at the end of the line (also the
// RFC 3516 "~{n}" binary form). It returns the size and whether the
// literal is non-synchronizing (LITERAL+, RFC 7888).
func (p *parser) literalHeader() (size int64, nonSync bool, err error) {
	p.take('~')
	if err := p.expect('{'); err != nil {
		return 0, false, err
	}
	size, err = p.number64()
	if err != nil {
		return 0, false, err
	}
	nonSync = p.take('+')
	if err := p.expect('}'); err != nil {
		return 0, false, err
	}
	if !p.eol() {
		return 0, false, p.errorf("literal must end the line")
	}
	return size, nonSync, nil
}

// nextLine reads the line after a literal and continues parsing there.
func (p *parser) nextLine() error {
	p.off += len(p.line) + 2
	line, err := readLine(p.r, p.line[:0])
	if err != nil {
		return err
	}
	p.line, p.pos = line, 0
	return nil
}

// literal reads a literal into memory.
func (p *parser) literal() ([]byte, error) {
	size, nonSync, err := p.literalHeader()
	if err != nil {
		return nil, err
	}
	if size > maxLiteral {
		return nil, p.errorf("literal of %d bytes exceeds %d", size, maxLiteral)
	}
	if err := p.budget.take(p, size); err != nil {
		return nil, err
	}
	if !nonSync && p.cont != nil {
		if err := p.cont(); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(p.r, buf); err != nil {
		return nil, err
	}
	p.off += int(size)
	// Copy the line buffer: the next line reuses it.
	p.line = append([]byte(nil), p.line...)
	if err := p.nextLine(); err != nil {
		return nil, err
	}
	return buf, nil
}

// astring reads an atom (with ']' allowed), a quoted string or a literal.
func (p *parser) astring() (string, error) {
	switch p.peek() {
	case '"':
		return p.quoted()
	case '{':
		b, err := p.literal()
		return string(b), err
	case '~':
		// "~{n}" is a literal8; a lone '~' is an ATOM-CHAR ("~foo" is an
		// atom, as dovecot reads it).
		if p.pos+1 < len(p.line) && p.line[p.pos+1] == '{' {
			b, err := p.literal()
			return string(b), err
		}
	}
	s := p.word("]")
	if s == "" {
		return "", p.errorf("expected string")
	}
	return s, nil
}

// str reads a quoted string or literal (IMAP "string").
func (p *parser) str() (string, error) {
	switch p.peek() {
	case '"':
		return p.quoted()
	case '{', '~':
		b, err := p.literal()
		return string(b), err
	}
	return "", p.errorf("expected string")
}

// nstring reads NIL or a string; ok is false for NIL.
func (p *parser) nstring() (s string, ok bool, err error) {
	if p.peek() != '"' && p.peek() != '{' {
		a, err := p.atom()
		if err != nil {
			return "", false, err
		}
		if !strings.EqualFold(a, "NIL") {
			return "", false, p.errorf("expected NIL or string")
		}
		return "", false, nil
	}
	s, err = p.str()
	return s, err == nil, err
}

// listMailbox reads a LIST pattern: atom with '%' and '*' allowed, or a string.
func (p *parser) listMailbox() (string, error) {
	switch p.peek() {
	case '"', '{':
		return p.str()
	}
	s := p.word("%*]")
	if s == "" {
		return "", p.errorf("expected mailbox pattern")
	}
	return s, nil
}

// mailbox reads a mailbox name; "INBOX" in any case means INBOX.
func (p *parser) mailbox() (string, error) {
	s, err := p.astring()
	if err != nil {
		return "", err
	}
	if strings.EqualFold(s, "INBOX") {
		return "INBOX", nil
	}
	return s, nil
}

// flagList reads "(" [flag *(SP flag)] ")".
func (p *parser) flagList() ([]imap.Flag, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	var flags []imap.Flag
	for !p.take(')') {
		if len(flags) > 0 {
			if err := p.sp(); err != nil {
				return nil, err
			}
		}
		f, err := p.flag()
		if err != nil {
			return nil, err
		}
		flags = append(flags, f)
	}
	return flags, nil
}

// flag reads a system flag (\Seen) or keyword.
func (p *parser) flag() (imap.Flag, error) {
	if p.take('\\') {
		a, err := p.atom()
		if err != nil {
			return "", err
		}
		return canonicalFlag("\\" + a), nil
	}
	a, err := p.atom()
	return imap.Flag(a), err
}

// storableFlag tells whether a client may set f (RFC 9051 §9 flag):
// \Recent and unknown system flags are refused, as dovecot does ("BAD
// Invalid system flag").
func storableFlag(f imap.Flag) bool {
	if !strings.HasPrefix(string(f), "\\") {
		return true
	}
	switch f {
	case imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft:
		return true
	}
	return false
}

// canonicalFlag spells system flags the way RFC 9051 does.
func canonicalFlag(f string) imap.Flag {
	for _, sf := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, "\\Recent"} {
		if strings.EqualFold(f, string(sf)) {
			return sf
		}
	}
	return imap.Flag(f)
}

// searchResSet is what numSet returns for "$" (RFC 5182 SEARCHRES); it is
// recognised by identity (isSearchRes), not by value.
var searchResSet = imap.SeqSet{{}}

// isSearchRes reports whether set is the "$" marker.
func isSearchRes(set imap.SeqSet) bool {
	return len(set) == 1 && &set[0] == &searchResSet[0]
}

// numSet reads a sequence set, or "$" for the saved search result.
// Numbers are kept as written; '*' is 0 as in go-imap's SeqSet.
func (p *parser) numSet() (imap.SeqSet, error) {
	if p.take('$') {
		return searchResSet, nil
	}
	var set imap.SeqSet
	for {
		lo, err := p.seqNum()
		if err != nil {
			return nil, err
		}
		hi := lo
		if p.take(':') {
			if hi, err = p.seqNum(); err != nil {
				return nil, err
			}
		}
		set = append(set, imap.SeqRange{Start: lo, Stop: hi})
		if !p.take(',') {
			return set, nil
		}
	}
}

func (p *parser) seqNum() (uint32, error) {
	if p.take('*') {
		return 0, nil
	}
	n, err := p.number()
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, p.errorf("sequence number 0")
	}
	return n, nil
}

// dateTime reads an APPEND date-time: "dd-Mon-yyyy hh:mm:ss +zzzz".
func (p *parser) dateTime() (time.Time, error) {
	s, err := p.quoted()
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse("_2-Jan-2006 15:04:05 -0700", s)
	if err != nil {
		if m := dateTimeShapeRE.FindStringSubmatch(s); m != nil && slices.Contains(monthNames, strings.ToLower(m[1])) {
			// RFC 9051 §9 date-time allows "30-Feb-2004 25:00:00";
			// dovecot accepts such a value and uses the time of
			// arrival, as the zero time does here.
			return time.Time{}, nil
		}
		return time.Time{}, p.errorf("bad date-time %q", s)
	}
	return t, nil
}

// dateTimeShapeRE is the RFC 9051 §9 date-time syntax (values unchecked).
var dateTimeShapeRE = regexp.MustCompile(`^(?: \d|\d\d?)-([A-Za-z]{3})-\d{4} \d\d:\d\d:\d\d [+-]\d{4}$`)

var monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// date reads a SEARCH date: "d-Mon-yyyy", quoted or not.
func (p *parser) date() (time.Time, error) {
	var s string
	var err error
	if p.peek() == '"' {
		s, err = p.quoted()
	} else {
		s, err = p.atom()
	}
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse("2-Jan-2006", s)
	if err != nil {
		return time.Time{}, p.errorf("bad date %q", s)
	}
	return t, nil
}
