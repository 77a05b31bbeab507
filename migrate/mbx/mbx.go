// Package mbx reads UW-IMAP's mbx folders (c-client's mbx driver, the
// usual format of shared INBOXes on UW-IMAP sites) with bounded memory:
// UIDVALIDITY, last UID and keywords from the 2048-byte file header, each
// message's internal date, size, flags, keywords and UID from its own
// header line, and the message bytes unchanged (mbx stores CRLF text, as
// c-client served it).
//
// Implementation notes (what c-client's mbx_parse does, and so this):
//   - The file header is "*mbx*\r\n", UIDVALIDITY and the last UID as 8 hex
//     digits each, "\r\n", then up to 30 keyword names, one per CRLF line,
//     ended by an empty line; the rest of the 2048 bytes is padding.
//   - Each message is a line "dd-mmm-yyyy hh:mm:ss +zzzz,SIZE;UUUUUUUUFFFF-IIIIIIII\r\n"
//     (date, decimal size, 8 hex digits of keyword bits, 4 of system
//     flags, 8 of UID) followed by SIZE bytes of message. The line must end
//     within 64 bytes.
//   - Flags: 1 \Seen, 2 \Deleted, 4 \Flagged, 8 \Answered, 0x20 \Draft;
//     0x8000 marks a message expunged but not yet removed: not a message.
//   - UID 0 means not assigned yet: the next UID after the last. A UID that
//     does not increase or exceeds the header's last UID makes c-client
//     rebuild: the UIDVALIDITY is dropped (UIDValidity returns 0) and that
//     message and later UID-less ones are numbered on from the last good UID.
//   - Any damage c-client refuses (bad magic, a line without CRLF, bad hex,
//     a size 0 or past the end of the file, a date it cannot parse) is a
//     *mbox.FormatError naming the file and byte offset; nothing of the
//     folder should be kept then.
package mbx

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"time"

	"mailmig/migrate/mbox"
)

// HeaderSize is the size of an mbx file header.
const HeaderSize = 2048

// Magic starts every mbx file.
const Magic = "*mbx*\r\n"

const (
	fSeen     = 0x1
	fDeleted  = 0x2
	fFlagged  = 0x4
	fAnswered = 0x8
	fDraft    = 0x20
	fExpunged = 0x8000
)

// maxKeywords and maxKeywordLen are c-client's NUSERFLAGS and MAXUSERFLAG.
const (
	maxKeywords   = 30
	maxKeywordLen = 50
)

// Options configure a Reader.
type Options struct {
	// Name is used in errors (usually the file's path).
	Name string
	// Location is the zone of dates without a zone c-client knows (nil:
	// time.Local); mbx dates carry a numeric zone.
	Location *time.Location
	// Size is the file's size (c-client checks that a message does not run
	// past the end before reading it); 0 means unknown (then a short file
	// is found at its end).
	Size int64
}

// Reader reads the messages of one mbx file. It satisfies the same
// methods as mbox.Reader.
type Reader struct {
	br   *bufio.Reader
	opts Options
	off  int64

	started     bool
	uidValidity uint32
	uidLast     uint32
	lastUID     uint32
	rebuilt     bool
	keywords    [maxKeywords]string
	kwList      []string

	body   io.Reader // the current message's remaining bytes
	remain int64
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader, opts Options) *Reader {
	if opts.Location == nil {
		opts.Location = time.Local
	}
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), opts: opts}
}

func (r *Reader) errorf(off int64, format string, args ...any) error {
	return &mbox.FormatError{Name: r.opts.Name, Offset: off, Err: fmt.Errorf("mbx: "+format, args...)}
}

// UIDValidity returns the header's UIDVALIDITY, or 0 when c-client would
// have made up a new one (it rebuilt the UIDs).
func (r *Reader) UIDValidity() uint32 {
	if r.rebuilt {
		return 0
	}
	return r.uidValidity
}

// UIDNext returns one more than the highest UID given or recorded.
func (r *Reader) UIDNext() uint32 { return r.uidLast + 1 }

// Keywords returns the folder's keywords in header order.
func (r *Reader) Keywords() []string { return r.kwList }

// Offset returns the number of input bytes consumed.
func (r *Reader) Offset() int64 { return r.off }

func (r *Reader) start() error {
	r.started = true
	var h [HeaderSize]byte
	n, err := io.ReadFull(r.br, h[:])
	r.off += int64(n)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return r.errorf(int64(n), "file header is %d bytes, want %d", n, HeaderSize)
		}
		return &mbox.FormatError{Name: r.opts.Name, Offset: int64(n), Err: err}
	}
	if string(h[:len(Magic)]) != Magic {
		return r.errorf(0, "no *mbx* magic")
	}
	uv, ok1 := hexField(h[7:15])
	ul, ok2 := hexField(h[15:23])
	if !ok1 || !ok2 {
		return r.errorf(7, "UIDVALIDITY and last UID are not hex: %q", h[7:23])
	}
	r.uidValidity, r.uidLast = uint32(uv), uint32(ul)
	s := h[25:]
	for i := 0; i < maxKeywords; i++ {
		e := bytes.IndexByte(s, '\r')
		if e <= 0 {
			break
		}
		if e <= maxKeywordLen && bytes.IndexByte(s[:e], 0) < 0 {
			r.keywords[i] = string(s[:e])
			r.kwList = append(r.kwList, r.keywords[i])
		}
		if e+2 > len(s) {
			break
		}
		s = s[e+2:]
	}
	return nil
}

// hexField reads hex digits as C's strtoul(…,16) does on a fixed field
// (leading digits; none gives 0, as in c-client).
func hexField(b []byte) (uint64, bool) {
	var v uint64
	for i, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return v, i > 0 || len(b) == 0
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Next advances to the next message (skipping what is left of the current
// one and expunged ones). It returns io.EOF after the last.
func (r *Reader) Next() (*mbox.Message, error) {
	if !r.started {
		if err := r.start(); err != nil {
			return nil, err
		}
	}
	for {
		if r.body != nil {
			n, err := io.Copy(io.Discard, r.body)
			r.off += n
			r.remain -= n
			if err != nil {
				return nil, &mbox.FormatError{Name: r.opts.Name, Offset: r.off, Err: err}
			}
			if r.remain > 0 {
				return nil, r.errorf(r.off, "message ends %d bytes early (file truncated)", r.remain)
			}
			r.body = nil
		}
		m, expunged, err := r.header()
		if err != nil {
			return nil, err
		}
		if !expunged {
			return m, nil
		}
	}
}

// header reads one message's header line.
func (r *Reader) header() (*mbox.Message, bool, error) {
	at := r.off
	peek, err := r.br.Peek(64)
	if len(peek) == 0 {
		if err == io.EOF {
			return nil, false, io.EOF
		}
		return nil, false, &mbox.FormatError{Name: r.opts.Name, Offset: at, Err: err}
	}
	e := bytes.Index(peek, []byte("\r\n"))
	if e < 0 {
		return nil, false, r.errorf(at, "no CRLF in the message header line %q", trunc(peek))
	}
	if bytes.IndexByte(peek[:e], 0) >= 0 {
		// c-client reads the line as a C string: it ends at the NUL,
		// without its CRLF.
		return nil, false, r.errorf(at, "NUL in the message header line %q", trunc(peek[:e]))
	}
	line := append([]byte(nil), peek[:e]...)
	if _, err := r.br.Discard(e + 2); err != nil {
		return nil, false, &mbox.FormatError{Name: r.opts.Name, Offset: at, Err: err}
	}
	r.off += int64(e + 2)
	comma := bytes.IndexByte(line, ',')
	if comma < 0 {
		return nil, false, r.errorf(at, "cannot parse message header line %q", line)
	}
	semi := bytes.IndexByte(line[comma+1:], ';')
	if semi < 0 {
		return nil, false, r.errorf(at, "cannot parse message header line %q", line)
	}
	semi += comma + 1
	t := line[semi:]
	if len(t) < 13 || !isHex(t[1:13]) {
		return nil, false, r.errorf(at, "cannot parse message flags %q", line)
	}
	if len(t) != 22 || t[13] != '-' || !isHex(t[14:22]) {
		return nil, false, r.errorf(at, "cannot parse message UID %q", line)
	}
	sizeField := line[comma+1 : semi]
	size, digits := leadingDecimal(sizeField)
	if size == 0 && digits == len(sizeField) {
		return nil, false, r.errorf(at, "cannot parse message size %q", line)
	}
	if r.opts.Size > 0 && r.off+size > r.opts.Size {
		return nil, false, r.errorf(at, "last message runs past the end of the file (%d > %d)", r.off+size, r.opts.Size)
	}
	uid64, _ := hexField(t[14:22])
	uid := uint32(uid64)
	if uid != 0 && (uid <= r.lastUID || uid > r.uidLast) {
		r.rebuilt = true // c-client: "Invalid UID ..., rebuilding UIDs"
		uid = 0
		r.uidLast = r.lastUID
	}
	flags64, _ := hexField(t[9:13])
	kw64, _ := hexField(t[1:9])
	r.body = io.LimitReader(r.br, size)
	r.remain = size
	if flags64&fExpunged != 0 {
		if uid != 0 {
			r.lastUID = uid
		} else {
			r.uidLast++
			r.lastUID = r.uidLast
		}
		return nil, true, nil
	}
	date, ok := mbox.ParseCDate(line[:comma], r.opts.Location)
	if !ok {
		return nil, false, r.errorf(at, "cannot parse message date %q", line[:comma])
	}
	m := &mbox.Message{Offset: at, Date: date}
	if flags64&fSeen != 0 {
		m.Flags = append(m.Flags, `\Seen`)
	}
	if flags64&fDeleted != 0 {
		m.Flags = append(m.Flags, `\Deleted`)
	}
	if flags64&fFlagged != 0 {
		m.Flags = append(m.Flags, `\Flagged`)
	}
	if flags64&fAnswered != 0 {
		m.Flags = append(m.Flags, `\Answered`)
	}
	if flags64&fDraft != 0 {
		m.Flags = append(m.Flags, `\Draft`)
	}
	sortFlags(m.Flags)
	for i := 0; i < maxKeywords && i < 32; i++ {
		if kw64&(1<<uint(i)) == 0 {
			continue
		}
		if k := r.keywords[i]; k != "" {
			if mbox.ValidKeyword(k) {
				m.Keywords = append(m.Keywords, k)
			} else {
				m.Skipped = append(m.Skipped, fmt.Sprintf("keyword %q: not an IMAP atom", k))
			}
		}
	}
	if uid == 0 {
		r.uidLast++
		uid = r.uidLast
		m.Recent = true
		m.UIDProblem = "missing"
	} else {
		m.SourceUID = uid
	}
	m.UID = uid
	r.lastUID = uid
	return m, false, nil
}

// Read reads the current message's bytes; io.EOF at its end.
func (r *Reader) Read(p []byte) (int, error) {
	if r.body == nil {
		return 0, io.EOF
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	r.remain -= int64(n)
	if err == io.EOF && r.remain > 0 {
		return n, r.errorf(r.off, "message ends %d bytes early (file truncated)", r.remain)
	}
	if err != nil && err != io.EOF {
		err = &mbox.FormatError{Name: r.opts.Name, Offset: r.off, Err: err}
	}
	return n, err
}

func leadingDecimal(b []byte) (int64, int) {
	var v int64
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if v < 1<<50 {
			v = v*10 + int64(b[i]-'0')
		}
		i++
	}
	return v, i
}

func trunc(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

func sortFlags(f []string) {
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j] < f[j-1]; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
}

// Check walks every message header line of an mbx file (seeking over the
// texts) and returns the first error a Reader would meet, so that a
// damaged folder is refused before anything of it is written.
func Check(f io.ReaderAt, size int64, opts Options) error {
	opts.Size = size
	r := NewReader(io.NewSectionReader(f, 0, size), opts)
	if err := r.start(); err != nil {
		return err
	}
	sr := io.NewSectionReader(f, 0, size)
	pos := int64(HeaderSize)
	for pos < size {
		r.br.Reset(io.NewSectionReader(sr, pos, size-pos))
		r.off = pos
		_, _, err := r.header()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		pos = r.off + r.remain
		r.body = nil
	}
	return nil
}
