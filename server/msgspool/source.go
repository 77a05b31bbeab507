package msgspool

import (
	"bytes"
	"fmt"
	"io"
)

// Source is a complete message as delivery takes it: readable at any
// offset by any number of readers at once (io.ReaderAt's contract), so
// that a message spooled to disk is never held in memory whole, however
// many recipients, Sieve actions and copies it has. A *Message, Bytes,
// Section and Concat are Sources.
type Source interface {
	io.ReaderAt
	// Size is the message's length in bytes.
	Size() int64
}

var _ Source = (*Message)(nil)

// Bytes is the Source of a message held in memory.
func Bytes(b []byte) Source { return bytes.NewReader(b) }

// NewReader reads s from its start; each call gives an independent
// reader.
func NewReader(s Source) io.Reader { return io.NewSectionReader(s, 0, s.Size()) }

// Section is s from byte off on.
func Section(s Source, off int64) Source {
	off = min(max(off, 0), s.Size())
	return io.NewSectionReader(s, off, s.Size()-off)
}

// Concat is the Source of parts one after the other (a prepended header
// and a spooled message, say); nothing is copied.
func Concat(parts ...Source) Source {
	c := &concat{}
	for _, p := range parts {
		if p.Size() == 0 {
			continue
		}
		c.parts = append(c.parts, p)
		c.ends = append(c.ends, c.size+p.Size())
		c.size += p.Size()
	}
	return c
}

type concat struct {
	parts []Source
	ends  []int64 // cumulative end offsets
	size  int64
}

func (c *concat) Size() int64 { return c.size }

func (c *concat) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("msgspool: negative offset %d", off)
	}
	n := 0
	for i, end := range c.ends {
		if len(p) == 0 {
			break
		}
		if off >= end {
			continue
		}
		start := end - c.parts[i].Size()
		want := min(int64(len(p)), end-off)
		m, err := c.parts[i].ReadAt(p[:want], off-start)
		n += m
		off += int64(m)
		p = p[m:]
		if int64(m) < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// ReadAll returns the whole of s in memory (for small messages and
// bounded uses only).
func ReadAll(s Source) ([]byte, error) {
	b := make([]byte, s.Size())
	if _, err := s.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("msgspool: read message: %w", err)
	}
	return b, nil
}

// Prefix returns the first n bytes of s (fewer if s is shorter).
func Prefix(s Source, n int64) ([]byte, error) {
	b := make([]byte, min(n, s.Size()))
	if _, err := s.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("msgspool: read message: %w", err)
	}
	return b, nil
}

// MaxHeader bounds how much of a message HeaderPrefix reads: a header
// section longer than this (no real mail has one) is cut at the last line
// end before it, and the rest of it is taken for body. It is Sieve's
// bound too (sieve.MaxHeaderBytes), so editheader sees the fields the
// script saw.
const MaxHeader = 8 << 20

// HeaderPrefix returns the start of s up to and including its first empty
// line (LF or CRLF), which ends the header section (RFC 5322 §2.1): every
// header parser stops there or earlier. Without an empty line it is all of
// s, but at most MaxHeader bytes, cut after the last LF when there is one.
func HeaderPrefix(s Source) ([]byte, error) {
	var buf []byte
	off := int64(0)
	scanned := 0 // bytes of buf known not to end the header
	for off < s.Size() && len(buf) < MaxHeader {
		// 4 KiB first (most headers), then doubling.
		n := min(max(4<<10, int64(len(buf))), s.Size()-off, int64(MaxHeader-len(buf)))
		buf = append(buf, make([]byte, n)...)
		if _, err := s.ReadAt(buf[off:off+n], off); err != nil && err != io.EOF {
			return nil, fmt.Errorf("msgspool: read header: %w", err)
		}
		if end := headerEnd(buf, scanned); end >= 0 {
			return buf[:end:end], nil
		}
		// Rescan from the last line's start, which may continue.
		if i := bytes.LastIndexByte(buf[off:], '\n'); i >= 0 {
			scanned = int(off) + i + 1
		}
		off += n
	}
	if off < s.Size() {
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			buf = buf[:i+1]
		}
	}
	return buf[:len(buf):len(buf)], nil
}

// headerEnd returns the offset just after the first empty line of b at or
// after line start from, or -1.
func headerEnd(b []byte, from int) int {
	for p := from; p < len(b); {
		i := bytes.IndexByte(b[p:], '\n')
		if i < 0 {
			return -1
		}
		line := b[p : p+i]
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return p + i + 1
		}
		p += i + 1
	}
	return -1
}
