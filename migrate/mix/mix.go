// Package mix reads UW-IMAP's mix folders (c-client's mix driver,
// imap-2006 and later): a directory holding .mixmeta (UIDVALIDITY, last
// UID, keywords), .mixindex (per message: UID, internal date, size and
// where its text is), .mixstatus (per message: flags and keyword bits) and
// the data files .mixXXXXXXXX, whose messages are copied byte for byte.
//
// Implementation notes:
//   - Files are CRLF text: .mixmeta lines "S…", "V<uidvalidity hex>",
//     "L<last uid hex>", "N<newest data file hex>", "K<keyword> <keyword>…";
//     .mixindex lines ":UID:YYYYMMDDhhmmss±hhmm:SIZE:FILE:POS:ISIZE:HSIZE:"
//     (hex but the date) after an "S" line; .mixstatus lines
//     ":UID:KEYWORDBITS:FLAGS:MODSEQ:". A message's text is SIZE bytes after
//     its ":msg:UID:DATE:SIZE:" line at POS in .mixFILE.
//   - The index is the list of messages (expunged ones are gone from it); a
//     message without a status line has no flags. Flags: 1 \Seen,
//     2 \Deleted, 4 \Flagged, 8 \Answered, 0x20 \Draft (0x10 is "not
//     recent").
//   - Memory: the index is held as a slice of small entries (it is read
//     before the first message, to check it whole: a damaged index is an
//     error before anything is written), lines are bounded (4 KiB), the
//     text streams. Every error is a *mbox.FormatError naming the file
//     (.mixindex, .mixstatus, .mixmeta or the data file) and byte offset.
//   - Sources are opened read-only.
package mix

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"mailmig/migrate/mbox"
)

// Meta is the name of the file that makes a directory a mix folder.
const Meta = ".mixmeta"

// maxLine bounds a line of the metadata files; maxKeywords is c-client's
// NUSERFLAGS.
const (
	maxLine     = 4096
	maxKeywords = 30
)

type entry struct {
	uid   uint32
	date  time.Time
	size  int64
	file  uint32
	pos   int64
	off   int64 // of the index line, for errors
	flags uint32
	kw    uint32
}

// Reader reads the messages of one mix folder; it has the methods of
// mbox.Reader.
type Reader struct {
	dir string

	uidValidity uint32
	uidLast     uint32
	keywords    []string
	entries     []entry
	next        int

	f      *os.File
	fileNo uint32
	body   io.Reader
	remain int64
	name   string // data file of the current message
	off    int64  // bytes of message text handed out, all messages
	bodyAt int64  // offset in the data file of the next byte
}

// IsMix tells whether dir is a mix folder.
func IsMix(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, Meta))
	return err == nil && st.Mode().IsRegular()
}

func ferr(name string, off int64, format string, args ...any) error {
	return &mbox.FormatError{Name: name, Offset: off, Err: fmt.Errorf("mix: "+format, args...)}
}

// Open reads the metadata, index and status of the mix folder dir.
func Open(dir string) (*Reader, error) {
	r := &Reader{dir: dir}
	if err := r.readMeta(); err != nil {
		return nil, err
	}
	if err := r.readIndex(); err != nil {
		return nil, err
	}
	if err := r.readStatus(); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// check finds every message's ":msg:" line and its text within the data
// files, so that a damaged folder is refused before any of it is written.
func (r *Reader) check() error {
	defer func() {
		if r.f != nil {
			r.f.Close()
			r.f = nil
		}
	}()
	for i := range r.entries {
		e := &r.entries[i]
		start, err := r.locate(e)
		if err != nil {
			return err
		}
		st, err := r.f.Stat()
		if err != nil {
			return &mbox.FormatError{Name: r.name, Offset: 0, Err: err}
		}
		if end := start + e.size; end > st.Size() {
			return ferr(r.name, st.Size(), "message UID %d ends at byte %d, after the end of the file (truncated)", e.uid, end)
		}
	}
	return nil
}

// lines calls fn with each CRLF line (without CRLF) of file and its offset.
func lines(path string, fn func(line []byte, off int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return &mbox.FormatError{Name: path, Offset: 0, Err: err}
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, maxLine)
	var off int64
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return ferr(path, off, "line longer than %d bytes", maxLine)
		}
		if len(line) > 0 {
			if err == io.EOF || !bytes.HasSuffix(line, []byte("\r\n")) {
				return ferr(path, off, "line without CRLF (file truncated?)")
			}
			if e := fn(line[:len(line)-2], off); e != nil {
				return e
			}
			off += int64(len(line))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &mbox.FormatError{Name: path, Offset: off, Err: err}
		}
	}
}

func hex32(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 16, 32)
	return uint32(v), err == nil
}

func hex64(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 16, 63)
	return int64(v), err == nil
}

func (r *Reader) readMeta() error {
	path := filepath.Join(r.dir, Meta)
	var haveV, haveL bool
	err := lines(path, func(line []byte, off int64) error {
		if len(line) == 0 {
			return ferr(path, off, "empty line")
		}
		v := line[1:]
		switch line[0] {
		case 'V':
			n, ok := hex32(v)
			if !ok || n == 0 {
				return ferr(path, off, "bad UIDVALIDITY %q", v)
			}
			r.uidValidity, haveV = n, true
		case 'L':
			n, ok := hex32(v)
			if !ok {
				return ferr(path, off, "bad last UID %q", v)
			}
			r.uidLast, haveL = n, true
		case 'K':
			for _, k := range bytes.Split(v, []byte(" ")) {
				if len(k) > 0 && len(r.keywords) < maxKeywords {
					r.keywords = append(r.keywords, string(k))
				}
			}
		case 'S', 'N':
		default:
			return ferr(path, off, "unknown line %q", trunc(line))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveV || !haveL {
		return ferr(path, 0, "no UIDVALIDITY or last UID")
	}
	return nil
}

// fields splits ":a:b:c:" into a, b, c (n of them).
func fields(line []byte, n int) ([][]byte, bool) {
	if len(line) < 2 || line[0] != ':' || line[len(line)-1] != ':' {
		return nil, false
	}
	f := bytes.Split(line[1:len(line)-1], []byte(":"))
	return f, len(f) == n
}

// ParseDate reads mix's "YYYYMMDDhhmmss±hhmm".
func ParseDate(b []byte) (time.Time, bool) {
	if len(b) != 19 || (b[14] != '+' && b[14] != '-') {
		return time.Time{}, false
	}
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, mo, d, h, mi, s := num(b[0:4]), num(b[4:6]), num(b[6:8]), num(b[8:10]), num(b[10:12]), num(b[12:14])
	zh, zm := num(b[15:17]), num(b[17:19])
	if y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60 || zh < 0 || zm < 0 || zm > 59 {
		return time.Time{}, false
	}
	off := (zh*60 + zm) * 60
	if b[14] == '-' {
		off = -off
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.FixedZone("", off)), true
}

func (r *Reader) readIndex() error {
	path := filepath.Join(r.dir, ".mixindex")
	var last uint32
	return lines(path, func(line []byte, off int64) error {
		if len(line) > 0 && line[0] == 'S' {
			return nil
		}
		f, ok := fields(line, 7)
		if !ok {
			return ferr(path, off, "bad index line %q", trunc(line))
		}
		uid, ok1 := hex32(f[0])
		date, ok2 := ParseDate(f[1])
		size, ok3 := hex64(f[2])
		file, ok4 := hex32(f[3])
		pos, ok5 := hex64(f[4])
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || uid == 0 {
			return ferr(path, off, "bad index line %q", trunc(line))
		}
		if uid <= last {
			return ferr(path, off, "UID %d after %d", uid, last)
		}
		if uid > r.uidLast {
			return ferr(path, off, "UID %d above the last UID %d of .mixmeta", uid, r.uidLast)
		}
		last = uid
		r.entries = append(r.entries, entry{uid: uid, date: date, size: size, file: file, pos: pos, off: off})
		return nil
	})
}

func (r *Reader) readStatus() error {
	path := filepath.Join(r.dir, ".mixstatus")
	byUID := make(map[uint32]int, len(r.entries))
	for i, e := range r.entries {
		byUID[e.uid] = i
	}
	return lines(path, func(line []byte, off int64) error {
		if len(line) > 0 && line[0] == 'S' {
			return nil
		}
		f, ok := fields(line, 4)
		if !ok {
			return ferr(path, off, "bad status line %q", trunc(line))
		}
		uid, ok1 := hex32(f[0])
		kw, ok2 := hex32(f[1])
		flags, ok3 := hex32(f[2])
		if !ok1 || !ok2 || !ok3 {
			return ferr(path, off, "bad status line %q", trunc(line))
		}
		if i, ok := byUID[uid]; ok {
			r.entries[i].flags, r.entries[i].kw = flags, kw
		}
		return nil
	})
}

// UIDValidity returns the folder's UIDVALIDITY.
func (r *Reader) UIDValidity() uint32 { return r.uidValidity }

// UIDNext returns one more than the last UID of .mixmeta.
func (r *Reader) UIDNext() uint32 { return r.uidLast + 1 }

// Keywords returns the folder's keywords.
func (r *Reader) Keywords() []string { return r.keywords }

// Offset returns the message bytes handed out so far (progress).
func (r *Reader) Offset() int64 { return r.off }

// Close closes the open data file.
func (r *Reader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// Next advances to the next message; io.EOF after the last.
func (r *Reader) Next() (*mbox.Message, error) {
	if r.body != nil && r.remain > 0 {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
	}
	if r.next >= len(r.entries) {
		return nil, io.EOF
	}
	e := r.entries[r.next]
	r.next++
	start, err := r.locate(&e)
	if err != nil {
		return nil, err
	}
	r.body = io.NewSectionReader(r.f, start, e.size)
	r.remain = e.size
	r.bodyAt = start
	m := &mbox.Message{Offset: e.pos, UID: e.uid, SourceUID: e.uid, Date: e.date, Recent: e.flags&0x10 == 0}
	for _, fl := range []struct {
		bit  uint32
		name string
	}{{8, `\Answered`}, {2, `\Deleted`}, {0x20, `\Draft`}, {4, `\Flagged`}, {1, `\Seen`}} {
		if e.flags&fl.bit != 0 {
			m.Flags = append(m.Flags, fl.name)
		}
	}
	for i := 0; i < len(r.keywords); i++ {
		if e.kw&(1<<uint(i)) != 0 {
			k := r.keywords[i]
			if mbox.ValidKeyword(k) {
				m.Keywords = append(m.Keywords, k)
			} else {
				m.Skipped = append(m.Skipped, fmt.Sprintf("keyword %q: not an IMAP atom", k))
			}
		}
	}
	return m, nil
}

// locate opens e's data file and checks the ":msg:UID:DATE:SIZE:" line at
// its position; it returns where the text starts.
func (r *Reader) locate(e *entry) (int64, error) {
	if r.f == nil || r.fileNo != e.file {
		if r.f != nil {
			r.f.Close()
		}
		r.name = filepath.Join(r.dir, fmt.Sprintf(".mix%08x", e.file))
		f, err := os.Open(r.name) // read-only
		if err != nil {
			r.f = nil
			return 0, &mbox.FormatError{Name: r.name, Offset: 0, Err: err}
		}
		r.f, r.fileNo = f, e.file
	}
	want := fmt.Sprintf(":msg:%08x:", e.uid)
	var buf [64]byte
	n, err := r.f.ReadAt(buf[:], e.pos)
	if n == 0 && err != nil {
		return 0, ferr(r.name, e.pos, "no message UID %d here (index line at byte %d of .mixindex)", e.uid, e.off)
	}
	line := buf[:n]
	nl := bytes.Index(line, []byte("\r\n"))
	if nl < 0 || !bytes.HasPrefix(line, []byte(want)) {
		return 0, ferr(r.name, e.pos, "no :msg: line for UID %d here (index line at byte %d of .mixindex)", e.uid, e.off)
	}
	f, ok := fields(line[4:nl], 3)
	if !ok {
		return 0, ferr(r.name, e.pos, "bad :msg: line %q", line[:nl])
	}
	if size, ok := hex64(f[2]); !ok || size != e.size {
		return 0, ferr(r.name, e.pos, "message UID %d: size %q here, %d in the index", e.uid, f[2], e.size)
	}
	return e.pos + int64(nl) + 2, nil
}

// Read reads the current message's bytes; io.EOF at its end. A data file
// shorter than the index says is an error at the offset where it ends.
func (r *Reader) Read(p []byte) (int, error) {
	if r.body == nil || r.remain == 0 {
		return 0, io.EOF
	}
	n, err := r.body.Read(p)
	r.remain -= int64(n)
	r.off += int64(n)
	r.bodyAt += int64(n)
	if err == io.EOF && r.remain > 0 {
		return n, ferr(r.name, r.bodyAt, "message ends %d bytes early (data file truncated)", r.remain)
	}
	if err != nil && err != io.EOF {
		return n, &mbox.FormatError{Name: r.name, Offset: r.bodyAt, Err: err}
	}
	return n, err
}

func trunc(b []byte) []byte {
	if len(b) > 60 {
		return b[:60]
	}
	return b
}
