package imap

import (
	"bytes"
	"fmt"
	"io"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
)

// isBig reports whether mi is read as a stream: from
// ConnLimits.BigMessage on, FETCH and SEARCH read a message as a stream
// from its file instead of into memory (the converter brings messages of
// any size into the store; the review saw a 2.5 GB one take the server to
// 8.5 GB). Below it the in-memory path (and its caches) stays as it is.
func (c *conn) isBig(mi *mailstore.MessageInfo) bool {
	return mi.Size >= c.srv.opts.Limits.BigMessage
}

// crlfReader streams a Maildir file (LF line ends) as IMAP sends it: LF
// becomes CRLF (an existing CRLF is kept), and, with noNUL, NUL becomes
// 0x80 as in a text literal (dovecot's replacement).
type crlfReader struct {
	r      io.Reader
	noNUL  bool
	src    []byte
	out    []byte // converted bytes not yet returned
	buf    []byte
	prevCR bool
	err    error
}

func newCRLFReader(r io.Reader, noNUL bool) *crlfReader {
	return &crlfReader{r: r, noNUL: noNUL, src: make([]byte, 128<<10), buf: make([]byte, 0, 256<<10)}
}

func (x *crlfReader) Read(p []byte) (int, error) {
	for len(x.out) == 0 {
		if x.err != nil {
			return 0, x.err
		}
		n, err := x.r.Read(x.src)
		x.err = err
		s := x.src[:n]
		out := x.buf[:0]
		for len(s) > 0 {
			i := bytes.IndexByte(s, '\n')
			if i < 0 {
				out = append(out, s...)
				x.prevCR = s[len(s)-1] == '\r'
				break
			}
			out = append(out, s[:i]...)
			if !(i > 0 && s[i-1] == '\r') && !(i == 0 && x.prevCR) {
				out = append(out, '\r')
			}
			out = append(out, '\n')
			x.prevCR = false
			s = s[i+1:]
		}
		if x.noNUL {
			replaceNUL(out)
		}
		x.out = out
	}
	n := copy(p, x.out)
	x.out = x.out[n:]
	return n, nil
}

func replaceNUL(b []byte) {
	for i, c := range b {
		if c == 0 {
			b[i] = 0x80
		}
	}
}

// skip discards n bytes of the stream (without the NUL replacement).
func (x *crlfReader) skip(n int64) (int64, error) {
	noNUL := x.noNUL
	x.noNUL = false
	done, err := io.CopyN(io.Discard, x, n)
	x.noNUL = noNUL
	if noNUL {
		replaceNUL(x.out)
	}
	return done, err
}

// openStream opens mi as a CRLF stream.
func (c *conn) openStream(f *mailstore.Folder, mi *mailstore.MessageInfo, noNUL bool) (io.Reader, io.Closer, error) {
	fh, err := f.OpenMessage(*mi)
	if err != nil {
		return nil, nil, err
	}
	return newCRLFReader(fh, noNUL), fh, nil
}

// bigFetch answers the FETCH items of one big message from streams of its
// file: memory stays bounded by the buffers, whatever the message's size.
type bigFetch struct {
	c      *conn
	f      *mailstore.Folder
	mi     *mailstore.MessageInfo
	size   int64  // CRLF size, -1 until known
	header []byte // CRLF header with its blank line, nil until read
	// binScans holds checkBinary's first pass over each BINARY section
	// (by item name), which section then need not make again.
	binScans map[string]binScan
}

// binScan is what a first pass over a BINARY section found.
type binScan struct {
	size    int64
	nul     bool // a NUL in the partial range asked for
	decoded bool
}

// bigStreamable reports whether every item can be answered by bigFetch
// (all can since body parts and BINARY stream too, bigpart.go).
func bigStreamable(items []fetchItem) bool {
	return true
}

func (b *bigFetch) crlfSize() (int64, error) {
	if b.size >= 0 {
		return b.size, nil
	}
	if b.mi.VSize >= 0 {
		b.size = b.mi.VSize
		return b.size, nil
	}
	key := b.f.Dir() + "/" + b.mi.Key
	if v, ok := b.c.srv.vsizes.Load(key); ok {
		b.size = v.(int64)
		return b.size, nil
	}
	r, cl, err := b.c.openStream(b.f, b.mi, false)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", b.mi.Path, err)
	}
	b.size = n
	// Messages never change; a name without W= (converted ones) is
	// counted once per process.
	b.c.srv.vsizes.Store(key, n)
	return n, nil
}

func (b *bigFetch) head() ([]byte, error) {
	if b.header == nil {
		h, err := b.c.readContent(b.f, *b.mi, true, nil)
		if err != nil {
			return nil, err
		}
		b.header = h
	}
	return b.header, nil
}

// literal streams bytes [from, to) of the CRLF message, narrowed by
// partial, as a text literal.
func (b *bigFetch) literal(from, to int64, p *imap.SectionPartial) error {
	if p != nil {
		from += p.Offset
		if from > to {
			from = to
		}
		to = min(to, from+p.Size)
	}
	fh, err := b.f.OpenMessage(*b.mi)
	if err != nil {
		return b.c.storeErr("FETCH", b.c.sel.mb, err)
	}
	defer fh.Close()
	r := newCRLFReader(fh, true)
	if _, err := r.skip(from); err != nil {
		return b.c.storeErr("FETCH", b.c.sel.mb, err)
	}
	if err := b.c.w.literalFrom(r, to-from); err != nil && b.c.w.err == nil {
		// The literal was padded to its announced size; say why.
		b.c.log.Warn("imap: message shorter than its size", "path", b.mi.Path, "err", err)
	}
	if b.c.w.err != nil {
		return &ioError{b.c.w.err}
	}
	return nil
}

// item writes one FETCH item (fetchItem's counterpart).
func (b *bigFetch) item(it fetchItem) error {
	c := b.c
	switch it.kind {
	case "RFC822.SIZE":
		n, err := b.crlfSize()
		if err != nil {
			return c.storeErr("FETCH", c.sel.mb, err)
		}
		c.w.raw("RFC822.SIZE ").num64(n)
		return nil
	case "ENVELOPE", "RFC822.HEADER":
		h, err := b.head()
		if err != nil {
			return c.storeErr("FETCH", c.sel.mb, err)
		}
		return c.fetchItem(it, b.mi, h)
	case "BODYSTRUCTURE", "BODY":
		r, cl, err := c.openStream(b.f, b.mi, false)
		if err != nil {
			return c.storeErr("FETCH", c.sel.mb, err)
		}
		defer cl.Close()
		bs := readBodyStructure(r)
		if it.kind == "BODY" {
			c.w.raw("BODY ").writeBodyStructure(bs, false)
		} else {
			c.w.raw("BODYSTRUCTURE ").writeBodyStructure(bs, true)
		}
		return nil
	case "BINARY[]", "BINARY.SIZE[]":
		return b.section(it)
	case "RFC822", "RFC822.TEXT", "BODY[]":
		if it.kind == "BODY[]" && (len(it.section.Part) > 0 || it.section.Specifier == imap.PartSpecifierMIME) {
			return b.section(it)
		}
		size, err := b.crlfSize()
		if err != nil {
			return c.storeErr("FETCH", c.sel.mb, err)
		}
		var part *imap.SectionPartial
		spec := imap.PartSpecifierNone
		if it.kind == "BODY[]" {
			part, spec = it.section.Partial, it.section.Specifier
			c.w.raw(it.name).sp()
		} else {
			c.w.raw(it.kind).sp()
		}
		if it.kind == "RFC822.TEXT" {
			spec = imap.PartSpecifierText
		}
		switch spec {
		case imap.PartSpecifierNone:
			return b.literal(0, size, part)
		case imap.PartSpecifierText:
			h, err := b.head()
			if err != nil {
				return c.storeErr("FETCH", c.sel.mb, err)
			}
			return b.literal(int64(len(h)), size, part)
		default: // HEADER, HEADER.FIELDS (NOT): from the header alone
			h, err := b.head()
			if err != nil {
				return c.storeErr("FETCH", c.sel.mb, err)
			}
			sec := it.section
			var data []byte
			switch {
			case len(sec.HeaderFields) > 0:
				data = filterHeader(h, sec.HeaderFields, false)
			case len(sec.HeaderFieldsNot) > 0:
				data = filterHeader(h, sec.HeaderFieldsNot, true)
			default:
				data = h
			}
			c.w.literalText(partial(data, part))
			return nil
		}
	}
	return c.fetchItem(it, b.mi, nil)
}

// countingReader counts the bytes and LFs read through it.
type countingReader struct {
	r            io.Reader
	bytes, lines int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bytes += int64(n)
	c.lines += int64(bytes.Count(p[:n], []byte("\n")))
	return n, err
}

// vsize is mi's size with CRLF line ends (RFC822.SIZE): from the file
// name, else counted, as a stream for a big message.
func (c *conn) vsize(f *mailstore.Folder, mi *mailstore.MessageInfo) (int64, error) {
	if mi.VSize >= 0 {
		return mi.VSize, nil
	}
	if c.isBig(mi) {
		b := &bigFetch{c: c, f: f, mi: mi, size: -1}
		return b.crlfSize()
	}
	m, err := c.readMessage(f, *mi, nil)
	return int64(len(m)), err
}
