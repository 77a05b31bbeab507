// Package msgspool takes in a message arriving over LMTP or submission
// DATA: in memory up to a threshold, in an unlinked temporary file beyond
// it, so that clients sending big messages slowly (or never finishing
// them) hold no memory. Delivery then reads it as a Source (an
// io.ReaderAt and a size; Concat puts trace fields in front without a
// copy), so a complete big message is streamed, never held whole. It
// also normalises bare CR and bare LF to CRLF in submitted mail (the SMTP
// smuggling vector, cf. Postfix's smtpd_forbid_bare_newline), see
// Normalize.
package msgspool

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
)

// Message is a received message. Close it when done.
type Message struct {
	mem  *bytes.Buffer
	f    *os.File
	size int64
}

// Read copies r into buf (which it resets) until threshold bytes, then
// into a temporary file in dir ("" = os.TempDir()), unlinked at once so
// nothing is left behind by a crash. The error is r's (e.g. go-smtp's
// size limit) or the file's.
func Read(r io.Reader, buf *bytes.Buffer, threshold int64, dir string) (*Message, error) {
	buf.Reset()
	m := &Message{mem: buf}
	n, err := buf.ReadFrom(io.LimitReader(r, threshold))
	m.size = n
	if err != nil || n < threshold {
		return m, err
	}
	// More may follow: spill to disk.
	f, ferr := os.CreateTemp(dir, "mailmig-data-")
	if ferr != nil {
		return m, fmt.Errorf("spool message: %w", ferr)
	}
	os.Remove(f.Name())
	m.f = f
	if _, ferr := f.Write(buf.Bytes()); ferr != nil {
		return m, fmt.Errorf("spool message: %w", ferr)
	}
	buf.Reset()
	w := bufio.NewWriterSize(f, 64<<10)
	n, err = io.Copy(w, r)
	m.size += n
	if ferr := w.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("spool message: %w", ferr)
	}
	return m, err
}

// Size is the message's length in bytes.
func (m *Message) Size() int64 { return m.size }

// Spooled reports whether the message went to a temporary file.
func (m *Message) Spooled() bool { return m.f != nil }

// ReadAt reads the message at off (io.ReaderAt: safe for concurrent
// readers), from memory or from the temporary file. Valid until Close,
// and for an in-memory message until its buffer is reused.
func (m *Message) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("msgspool: negative offset %d", off)
	}
	if m.f != nil {
		if off >= m.size {
			return 0, io.EOF
		}
		want := p
		if int64(len(p)) > m.size-off {
			want = p[:m.size-off]
		}
		n, err := m.f.ReadAt(want, off)
		if err == nil && len(want) < len(p) {
			err = io.EOF
		}
		if err != nil && err != io.EOF {
			err = fmt.Errorf("read spooled message: %w", err)
		}
		return n, err
	}
	b := m.mem.Bytes()
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close removes the temporary file, if any.
func (m *Message) Close() error {
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	return err
}

// Normalize returns a reader of r with every bare CR and bare LF turned
// into CRLF: what is relayed then has one kind of line end only, so
// "\r.\r" or "\n.\n" in a submitted message can never end DATA early at
// a receiver that accepts them (SMTP smuggling, 2023). count, if not nil,
// is incremented per bare line end replaced.
func Normalize(r io.Reader, count *int) io.Reader {
	return &normalizer{r: bufio.NewReaderSize(r, 32<<10), count: count}
}

type normalizer struct {
	r       *bufio.Reader
	count   *int
	pending byte // a byte to emit before reading on (the LF after a CR)
	err     error
}

func (n *normalizer) Read(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		if n.pending != 0 {
			p[i] = n.pending
			n.pending = 0
			i++
			continue
		}
		if n.err != nil {
			break
		}
		c, err := n.r.ReadByte()
		if err != nil {
			n.err = err
			break
		}
		switch c {
		case '\r':
			next, err := n.r.Peek(1)
			if err == nil && next[0] == '\n' {
				n.r.ReadByte()
			} else if n.count != nil {
				*n.count++
			}
			p[i] = '\r'
			n.pending = '\n'
		case '\n':
			if n.count != nil {
				*n.count++
			}
			p[i] = '\r'
			n.pending = '\n'
		default:
			p[i] = c
		}
		i++
	}
	if i > 0 {
		return i, nil
	}
	return 0, n.err
}
