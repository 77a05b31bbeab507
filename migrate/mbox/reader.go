// Package mbox reads UW-IMAP (c-client "unix" format) mbox files with
// bounded memory: strict From_ separators, the c-client bookkeeping
// headers (X-IMAP, X-IMAPbase, X-UID, Status, X-Status, X-Keywords)
// turned into UIDVALIDITY, UIDs, flags and keywords, and every other byte
// of each message handed out unchanged.
//
// Implementation notes:
//   - A line "From SENDER DATE" separates messages only at byte 0 or
//     after a blank line, and only if DATE parses (ParseFromLine); any
//     other line starting "From " is body. The blank line before a
//     separator, and one final blank line at the end of the file, belong
//     to the mbox format, not to the message.
//   - ">From " lines are handed out as stored (UW-IMAP served them so and
//     clients cached them); Options.UnescapeFrom removes one '>' (mboxrd).
//   - Content-Length is not trusted or used, and is kept as content.
//   - The header of a message is buffered (to know the flags before the
//     message is written), up to Options.MaxHeader; beyond it the rest of
//     the header is streamed as is and Message.HeaderTooLong is set. The
//     body is streamed line by line through a fixed buffer, so memory
//     does not depend on message or file size.
//   - UIDs: X-UID is used when it is greater than the previous message's
//     UID; otherwise (missing, duplicate, not increasing) the message gets
//     max(previous UID, UIDLAST of the X-IMAP header) + 1, the way c-client
//     assigns them. The result is deterministic for a given file.
package mbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// ErrNotMbox is returned (wrapped in a *FormatError) when a file does not
// start with a From_ line.
var ErrNotMbox = errors.New("mbox: not an mbox file")

// FormatError names the file and byte offset of a format problem.
type FormatError struct {
	Name   string
	Offset int64
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s at byte %d: %v", e.Name, e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// PseudoSubject is the subject of c-client's folder-data pseudo-message.
const PseudoSubject = "DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA"

// Options configure a Reader. The zero value is usable.
type Options struct {
	// Name is used in errors (usually the file's path).
	Name string
	// Location is the zone of From_ dates without one; nil means
	// time.Local (UW-IMAP wrote the server's local time).
	Location *time.Location
	// UnescapeFrom removes one '>' from body lines matching ^>+From
	// (mboxrd). Off by default: UW-IMAP served those lines unchanged.
	UnescapeFrom bool
	// MaxHeader bounds the buffered header; 0 means 1 MiB.
	MaxHeader int
	// BufferSize is the line buffer; 0 means 64 KiB. Longer lines are
	// streamed in pieces.
	BufferSize int
	// ModTime is the file's mtime: the internal date of MMDF messages
	// without a From_ line (as c-client's mmdf driver gives them).
	ModTime time.Time
}

// Message is one message's envelope data; its bytes are read from the
// Reader until io.EOF.
type Message struct {
	// Offset is the byte offset of the From_ line in the input.
	Offset int64
	// Sender and Date come from the From_ line; Date is the internal date.
	Sender string
	Date   time.Time
	// UID is the UID the message keeps (from X-UID) or was given.
	UID uint32
	// SourceUID is the X-UID as found (0 when missing or unparsable).
	SourceUID uint32
	// UIDProblem is why X-UID was not used ("" when it was): "missing",
	// "invalid", "duplicate" or "not increasing".
	UIDProblem string
	// Flags are the IMAP system flags from Status and X-Status, sorted.
	Flags []string
	// Keywords are the keywords from X-Keywords, in order, without
	// duplicates.
	Keywords []string
	// Recent is true when Status lacks 'O'.
	Recent bool
	// Skipped lists bookkeeping values that were dropped (e.g. keywords
	// that are not IMAP atoms), with reasons.
	Skipped []string
	// HeaderTooLong is set when the header exceeded Options.MaxHeader;
	// bookkeeping fields after that point were left in the message.
	HeaderTooLong bool
}

// Reader reads the messages of one mbox file.
type Reader struct {
	br   *bufio.Reader
	opts Options

	off     int64 // bytes consumed from the input
	started bool
	err     error // sticky input error

	// nextFrom is the separator line of the next message (a copy), or nil
	// at the end of the input.
	nextFrom    []byte
	nextFromOff int64

	cur      *Message
	msgDone  bool // the current message's bytes are all queued
	out      []byte
	next     []byte // queued after out
	blank    []byte // held-back blank line (may be the separator's)
	midLine  bool   // the last piece did not end a line
	hdr      bytes.Buffer
	field    bytes.Buffer
	count    int
	subject  string
	pseudoOK bool

	mmdf bool   // the file is MMDF (c-client's mmdf driver)
	pend []byte // a complete line read ahead (MMDF), handed out next

	uidValidity    uint32
	uidLast        uint32
	keywords       []string
	lastUID        uint32
	uidValid       bool              // X-IMAP/X-IMAPbase taken, no bad X-UID since
	uidInvalidated bool              // a bad X-UID made c-client drop UIDVALIDITY
	kwCanon        map[string]string // upper case -> the folder's spelling
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader, opts Options) *Reader {
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.MaxHeader <= 0 {
		opts.MaxHeader = 1 << 20
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = 64 << 10
	}
	if opts.BufferSize < 128 {
		opts.BufferSize = 128
	}
	return &Reader{br: bufio.NewReaderSize(r, opts.BufferSize), opts: opts}
}

// UIDValidity returns the UIDVALIDITY from X-IMAP or X-IMAPbase, or 0 if
// the file has none (yet: it is known after the first Next).
func (r *Reader) UIDValidity() uint32 {
	if r.uidInvalidated {
		return 0 // c-client dropped it for a bad X-UID
	}
	return r.uidValidity
}

// UIDLast returns the last UID from X-IMAP or X-IMAPbase.
func (r *Reader) UIDLast() uint32 { return r.uidLast }

// UIDNext returns the UID the next new message would get: one more than
// the highest UID handed out or the header's last UID. Final after Next
// returned io.EOF.
func (r *Reader) UIDNext() uint32 {
	m := r.uidLast
	if r.lastUID > m {
		m = r.lastUID
	}
	return m + 1
}

// Keywords returns the folder's keyword list from X-IMAP / X-IMAPbase.
func (r *Reader) Keywords() []string { return r.keywords }

// Offset returns the number of input bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// readLine returns the next line or piece of a line longer than the
// buffer; the slice is valid until the next call. complete tells whether
// it ends with '\n'. At the end of the input it returns io.EOF with no
// bytes.
func (r *Reader) readLine() (line []byte, complete bool, err error) {
	if r.pend != nil {
		line, r.pend = r.pend, nil
		return line, true, nil
	}
	if r.err != nil {
		return nil, false, r.err
	}
	line, err = r.br.ReadSlice('\n')
	r.off += int64(len(line))
	switch {
	case err == nil:
		return line, true, nil
	case errors.Is(err, bufio.ErrBufferFull):
		return line, false, nil
	case err == io.EOF:
		if len(line) > 0 {
			return line, false, nil
		}
		r.err = io.EOF
		return nil, false, io.EOF
	default:
		r.err = &FormatError{Name: r.opts.Name, Offset: r.off, Err: err}
		return line, false, r.err
	}
}

func isBlank(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// start reads the first line, which must be a From_ line (blank lines
// before it are tolerated; an empty or blank file has no messages).
func (r *Reader) start() error {
	r.started = true
	last := byte('\n') // c-client skips leading white space, which must end a line
	for {
		line, complete, err := r.readLine()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return err
		}
		start := r.off - int64(len(line))
		k := 0
		for k < len(line) && (line[k] == '\n' || line[k] == '\r' || line[k] == ' ' || line[k] == '\t') {
			last = line[k]
			k++
		}
		if complete && k == len(line) {
			continue // white space before the first From_ line
		}
		if complete && k == 0 && start == 0 && isMMDF(line) {
			r.mmdf = true
			r.nextFrom = append([]byte(nil), line[k:]...)
			r.nextFromOff = start + int64(k)
			return nil
		}
		if complete && last == '\n' {
			if _, _, ok := ParseFromLine(line[k:], r.opts.Location); ok {
				r.nextFrom = append([]byte(nil), line[k:]...)
				r.nextFromOff = start + int64(k)
				return nil
			}
		}
		snippet := line
		if len(snippet) > 40 {
			snippet = snippet[:40]
		}
		return &FormatError{Name: r.opts.Name, Offset: start, Err: fmt.Errorf("%w: expected a From_ line, found %q", ErrNotMbox, snippet)}
	}
}

// Next advances to the next message, skipping what is left of the
// current one and c-client's pseudo-message. It returns io.EOF after the
// last message.
func (r *Reader) Next() (*Message, error) {
	if !r.started {
		if err := r.start(); err != nil {
			return nil, err
		}
	}
	for {
		if r.cur != nil {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return nil, err
			}
		}
		if r.nextFrom == nil {
			if r.err != nil && r.err != io.EOF {
				return nil, r.err
			}
			return nil, io.EOF
		}
		m, pseudo, err := r.begin()
		if err != nil {
			return nil, err
		}
		if pseudo {
			continue
		}
		return m, nil
	}
}

// begin parses the From_ line and the header of the next message.
func (r *Reader) begin() (*Message, bool, error) {
	var m *Message
	if r.mmdf {
		// After the delimiter an optional From_ line gives the date;
		// without one c-client uses the file's mtime (UTC).
		m = &Message{Offset: r.nextFromOff, Date: r.opts.ModTime.UTC(), Recent: true}
		line, complete, err := r.readLine()
		switch {
		case err == io.EOF:
		case err != nil:
			return nil, false, err
		case complete:
			if sender, date, ok := ParseFromLine(line, r.opts.Location); ok {
				m.Sender, m.Date = sender, date
			} else {
				r.pend = append([]byte(nil), line...)
			}
		default:
			r.pend = nil
			r.next = append([]byte(nil), line...) // a long first header line
			r.midLine = true
		}
	} else {
		sender, date, _ := ParseFromLine(r.nextFrom, r.opts.Location)
		m = &Message{Offset: r.nextFromOff, Sender: sender, Date: date, Recent: true}
	}
	r.cur = m
	r.nextFrom = nil
	r.msgDone = false
	longFirst := r.next
	r.out, r.next, r.blank = nil, nil, nil
	r.midLine = false
	r.hdr.Reset()
	r.field.Reset()
	r.subject = ""
	first := r.count == 0
	r.count++
	var (
		status      []byte // Status and X-Status letters
		keywords    [][]byte
		haveXIMAP   bool
		pieceOfLong bool
		uid         uint32
	)
	m.UIDProblem = "missing"
	flush := func() {
		if r.field.Len() == 0 {
			return
		}
		f := r.field.Bytes()
		name, value, ok := bytes.Cut(f, []byte(":"))
		keep := true
		if ok {
			lname := strings.ToLower(string(bytes.TrimRight(name, " \t")))
			exact := string(name)
			// c-client reads only the field's first line and drops
			// continuation lines of bookkeeping fields.
			v := value
			if i := bytes.IndexByte(v, '\n'); i >= 0 {
				v = v[:i]
			}
			switch lname {
			case "status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase":
				keep = false
				if exact != "Status" && exact != "X-Status" && exact != "X-Keywords" && exact != "X-UID" && exact != "X-IMAP" && exact != "X-IMAPbase" {
					m.Skipped = append(m.Skipped, fmt.Sprintf("%s header ignored (c-client reads it only spelled %s)", exact, canonicalName[lname]))
					break
				}
				if i := bytes.IndexByte(f, '\n'); i >= 0 && i < len(f)-1 {
					m.Skipped = append(m.Skipped, fmt.Sprintf("continuation of %s ignored (as c-client did)", exact))
				}
			}
			switch exact {
			case "Status", "X-Status":
				status = append(status, v...)
			case "X-Keywords":
				keywords = append(keywords, append([]byte(nil), v...))
			case "X-UID":
				r.xuid(m, v, &uid)
			case "X-IMAP":
				if first && r.parseBase(v, m) {
					haveXIMAP = true
				}
			case "X-IMAPbase":
				if first {
					r.parseBase(v, m)
				}
			}
			if first && lname == "subject" {
				r.subject = strings.TrimSpace(unfold(value))
			}
		}
		if keep {
			r.hdr.Write(f)
		}
		r.field.Reset()
	}
	for {
		var (
			line     []byte
			complete bool
			err      error
		)
		if longFirst != nil {
			line, longFirst = longFirst, nil
		} else {
			line, complete, err = r.readLine()
		}
		if err == io.EOF {
			flush()
			r.msgDone = true
			break
		}
		if err != nil {
			return nil, false, err
		}
		if !pieceOfLong && complete && isBlank(line) {
			flush()
			if r.mmdf {
				r.next = blankOf(line) // MMDF keeps every line of the message
			} else {
				r.blank = blankOf(line)
			}
			break
		}
		if r.mmdf && !pieceOfLong && complete && isMMDF(line) {
			flush() // header only: the delimiter ends the message
			r.mmdfEnd(line)
			break
		}
		if !pieceOfLong && len(line) > 0 && line[0] != ' ' && line[0] != '\t' {
			flush()
		}
		pieceOfLong = !complete
		if r.hdr.Len()+r.field.Len()+len(line) > r.opts.MaxHeader {
			// Give up parsing: what was buffered and the rest of the
			// header are content.
			m.HeaderTooLong = true
			r.hdr.Write(r.field.Bytes())
			r.field.Reset()
			r.next = append([]byte(nil), line...)
			r.midLine = !complete
			break
		}
		r.field.Write(line)
	}
	r.out = r.hdr.Bytes()
	if first && haveXIMAP {
		// c-client's pseudo-message: bookkeeping only, not a mail.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, false, err
		}
		r.cur = nil
		return nil, true, nil
	}
	r.setFlags(m, status, keywords)
	r.setUID(m, uid)
	return m, false, nil
}

var (
	lf   = []byte("\n")
	crlf = []byte("\r\n")
)

func blankOf(line []byte) []byte {
	if len(line) == 2 {
		return crlf
	}
	return lf
}

func unfold(v []byte) string {
	s := string(v)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\n\t", " ")
	s = strings.ReplaceAll(s, "\n ", " ")
	return strings.ReplaceAll(s, "\n", "")
}

var canonicalName = map[string]string{"status": "Status", "x-status": "X-Status", "x-keywords": "X-Keywords",
	"x-uid": "X-UID", "x-imap": "X-IMAP", "x-imapbase": "X-IMAPbase"}

// cNumber reads leading blanks and digits as c-client does ("0000001234
// rest" is 1234); ok is false without digits.
func cNumber(v []byte) (n uint64, rest []byte, ok bool) {
	v = bytes.TrimLeft(v, " ")
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		if n < 1<<40 {
			n = n*10 + uint64(v[i]-'0')
		}
		i++
	}
	return n, v[i:], i > 0
}

// parseBase parses "UIDVALIDITY UIDLAST [keywords...]" of X-IMAP or
// X-IMAPbase; it reports whether c-client would have taken it.
func (r *Reader) parseBase(v []byte, m *Message) bool {
	uv, rest, ok1 := cNumber(v)
	ul, rest, ok2 := cNumber(rest)
	if !ok1 || !ok2 || uv == 0 || uv > 0xffffffff || ul > 0xffffffff {
		m.Skipped = append(m.Skipped, fmt.Sprintf("X-IMAP/X-IMAPbase %q: expected UIDVALIDITY UIDLAST", bytes.TrimSpace(v)))
		return false
	}
	r.uidValidity, r.uidLast, r.uidValid = uint32(uv), uint32(ul), true
	r.keywords = nil
	r.kwCanon = map[string]string{}
	for _, k := range strings.Split(strings.TrimRight(string(rest), "\r"), " ") {
		if k == "" || len(r.keywords) >= maxFolderKeywords {
			continue
		}
		if ValidKeyword(k) {
			r.keywords = append(r.keywords, k)
		}
		r.kwCanon[strings.ToUpper(k)] = k
	}
	return true
}

// maxFolderKeywords is c-client's NUSERFLAGS.
const maxFolderKeywords = 30

// xuid takes an X-UID value the way c-client does: only while the folder
// has a valid UIDVALIDITY, once per message, and only if it is above the
// previous message's UID; anything else invalidates the UIDVALIDITY (no
// later X-UID is believed) and the message gets the next free UID.
func (r *Reader) xuid(m *Message, v []byte, uid *uint32) {
	n, _, ok := cNumber(v)
	if ok && n <= 0xffffffff {
		m.SourceUID = uint32(n)
	}
	if !r.uidValid {
		if r.uidValidity != 0 {
			m.UIDProblem = "ignored after an earlier bad X-UID"
		} else {
			m.UIDProblem = "missing" // c-client ignores X-UID without X-IMAP/X-IMAPbase
		}
		return
	}
	switch {
	case *uid != 0:
		m.UIDProblem = "duplicate X-UID in one message"
		*uid = 0
	case !ok || n == 0 || n > 0xffffffff:
		m.UIDProblem = "invalid"
	case uint32(n) <= r.lastUID:
		m.UIDProblem = "not increasing"
	default:
		*uid = uint32(n)
		m.UIDProblem = ""
		if *uid > r.uidLast {
			r.uidLast = *uid
		}
		return
	}
	r.uidValid = false
	r.uidInvalidated = true
}

func (r *Reader) setFlags(m *Message, status []byte, keywords [][]byte) {
	for _, c := range status {
		switch c {
		case 'R':
			m.Flags = append(m.Flags, `\Seen`)
		case 'O':
			m.Recent = false
		case 'D':
			m.Flags = append(m.Flags, `\Deleted`)
		case 'F':
			m.Flags = append(m.Flags, `\Flagged`)
		case 'A':
			m.Flags = append(m.Flags, `\Answered`)
		case 'T':
			m.Flags = append(m.Flags, `\Draft`)
		}
	}
	m.Flags = sortUnique(m.Flags)
	if r.kwCanon == nil {
		r.kwCanon = map[string]string{}
	}
	seen := map[string]bool{}
	for _, line := range keywords {
		if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
			line = line[:i]
		}
		for _, b := range bytes.Split(line, []byte(" ")) {
			if len(b) == 0 {
				continue
			}
			k := string(b)
			canon, known := r.kwCanon[strings.ToUpper(k)]
			if !known {
				// c-client shows only the keywords the folder declares
				// in X-IMAP/X-IMAPbase.
				m.Skipped = append(m.Skipped, fmt.Sprintf("keyword %q: not declared in X-IMAP/X-IMAPbase (UW-IMAP did not show it)", k))
				continue
			}
			if !ValidKeyword(canon) {
				m.Skipped = append(m.Skipped, fmt.Sprintf("keyword %q: not an IMAP atom", canon))
				continue
			}
			if !seen[canon] {
				seen[canon] = true
				m.Keywords = append(m.Keywords, canon)
			}
		}
	}
}

// setUID gives the message the UID c-client gave it: its X-UID if taken,
// else one above the highest UID so far.
func (r *Reader) setUID(m *Message, uid uint32) {
	if uid == 0 {
		r.uidLast++
		uid = r.uidLast
	}
	m.UID = uid
	r.lastUID = uid
}

func sortUnique(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ValidKeyword reports whether k can be an IMAP keyword (an atom that
// does not start with '\').
func ValidKeyword(k string) bool {
	if k == "" || k[0] == '\\' || len(k) > 250 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// Read reads the current message's bytes (bookkeeping headers removed).
// It returns io.EOF at the end of the message.
func (r *Reader) Read(p []byte) (int, error) {
	if r.cur == nil {
		return 0, io.EOF
	}
	// Fill p with as many lines as fit: one write per line would be a
	// system call per line for the caller.
	n := 0
	for n < len(p) {
		if len(r.out) == 0 {
			if r.next != nil {
				r.out, r.next = r.next, nil
				continue
			}
			if r.msgDone {
				break
			}
			if err := r.fill(); err != nil {
				if n > 0 {
					return n, nil // the error is sticky: reported next call
				}
				return 0, err
			}
			continue
		}
		k := copy(p[n:], r.out)
		r.out = r.out[k:]
		n += k
	}
	if n == 0 && r.msgDone {
		return 0, io.EOF
	}
	return n, nil
}

// fill reads one line (or piece) of body and queues what belongs to the
// message.
func (r *Reader) fill() error {
	line, complete, err := r.readLine()
	if err == io.EOF {
		// A final blank line is the mbox's, not the message's.
		r.blank = nil
		r.msgDone = true
		return nil
	}
	if err != nil {
		return err
	}
	if r.midLine {
		r.midLine = !complete
		r.out = line
		return nil
	}
	r.midLine = !complete
	if r.mmdf {
		if complete && isMMDF(line) {
			return r.mmdfEnd(line)
		}
		r.out = line
		return nil
	}
	if complete && isBlank(line) {
		prev := r.blank
		r.blank = blankOf(line)
		if prev != nil {
			r.out = prev
		}
		return nil
	}
	if complete && bytes.HasPrefix(line, []byte("From ")) {
		if _, _, ok := ParseFromLine(line, r.opts.Location); ok {
			r.nextFrom = append([]byte(nil), line...)
			r.nextFromOff = r.off - int64(len(line))
			r.blank = nil
			r.msgDone = true
			return nil
		}
	}
	if r.opts.UnescapeFrom && isQuotedFrom(line) {
		line = line[1:]
	}
	if r.blank != nil {
		r.out, r.next = r.blank, line
		r.blank = nil
		return nil
	}
	r.out = line
	return nil
}

// mmdfHeader is the MMDF delimiter line.
var mmdfHeader = []byte("\x01\x01\x01\x01\n")

func isMMDF(line []byte) bool { return bytes.Equal(line, mmdfHeader) }

// mmdfEnd ends the current MMDF message at its closing delimiter line
// (at offset r.off-len(line)). The next message starts at the next line
// if that is a delimiter too, else (as c-client does) at this one.
func (r *Reader) mmdfEnd(line []byte) error {
	r.msgDone = true
	off := r.off - int64(len(line))
	next, complete, err := r.readLine()
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	case complete && isMMDF(next):
		r.nextFrom = append([]byte(nil), next...)
		r.nextFromOff = r.off - int64(len(next))
	case complete:
		r.nextFrom = append([]byte(nil), mmdfHeader...)
		r.nextFromOff = off
		r.pend = append([]byte(nil), next...)
	default:
		return &FormatError{Name: r.opts.Name, Offset: r.off - int64(len(next)), Err: errors.New("mmdf: a line longer than the buffer after a delimiter")}
	}
	return nil
}

func isQuotedFrom(line []byte) bool {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	return i > 0 && bytes.HasPrefix(line[i:], []byte("From "))
}
