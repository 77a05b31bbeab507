package imap

import (
	"bytes"
	"compress/flate"
	"io"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// COMPRESS=DEFLATE (RFC 4978): after the tagged OK both directions are a
// raw DEFLATE stream (RFC 1951, no zlib header). Each burst of responses
// the server sends ends with a sync flush (§4: "the server MUST flush"),
// so the client can inflate everything it was sent.
//
// Memory per session matters more than ratio here (10,000 IDLE sessions
// must stay under 1 GB; a Go flate compressor holds ~1 MB): the
// compressor is taken from a pool for one burst and given back after its
// sync flush, so an idle session holds none. A burst compressed by a new
// compressor makes no back-references into earlier bursts, which the
// client's inflater never needs (RFC 1951 §2: a distance may reach back
// across blocks but need not). The inflater, on the other hand, must keep
// the client's 32 KB window for the whole session.

// compressLevel is the compressor's level: BestSpeed, since IMAP
// responses are mostly small and CPU per operation counts (dovecot uses
// zlib's level 6 by default; on mail text the ratio differs by a few per
// cent).
const compressLevel = flate.BestSpeed

var flatePool = sync.Pool{New: func() any {
	w, err := flate.NewWriter(nil, compressLevel)
	if err != nil {
		panic(err) // only for an invalid level
	}
	return w
}}

// deflateWriter compresses what the session's bufio.Writer hands it; flush
// ends the burst (sync flush) and gives the compressor back.
type deflateWriter struct {
	dst io.Writer
	fw  *flate.Writer
}

func (d *deflateWriter) Write(b []byte) (int, error) {
	if d.fw == nil {
		d.fw = flatePool.Get().(*flate.Writer)
		d.fw.Reset(d.dst)
	}
	return d.fw.Write(b)
}

// flush is the sync flush of RFC 4978 §4.
func (d *deflateWriter) flush() error {
	if d.fw == nil {
		return nil
	}
	err := d.fw.Flush()
	d.fw.Reset(io.Discard)
	flatePool.Put(d.fw)
	d.fw = nil
	return err
}

// connReader reads the session's current network connection (it changes
// at STARTTLS), so read deadlines set on c.nc apply.
type connReader struct{ c *conn }

func (r connReader) Read(b []byte) (int, error) { return r.c.nc.Read(b) }

// RFC 4978 §3: COMPRESS mechanism. Valid in the authenticated and
// selected states. An unknown mechanism is NO (as dovecot answers), a
// second COMPRESS is NO [COMPRESSIONACTIVE] (§3, RFC 5530 §3).
func (c *conn) cmdCompress(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	mech, err := p.atom()
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	if c.w.deflate != nil {
		return errNo("COMPRESSIONACTIVE", "DEFLATE active")
	}
	if !strings.EqualFold(mech, "DEFLATE") {
		return errNo("", "Unknown compression mechanism")
	}
	c.w.status(tag, imap.StatusResponseTypeOK, "", "Begin compression")
	if err := c.w.flush(); err != nil {
		return &ioError{err}
	}
	// A client may send its first compressed command right behind
	// COMPRESS without waiting (§3 does not forbid it): what is
	// buffered already belongs to the compressed stream.
	var src io.Reader = connReader{c}
	if n := c.br.Buffered(); n > 0 {
		ahead, _ := c.br.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), src)
	}
	c.br.Reset(newInflater(src))
	c.w.deflate = &deflateWriter{dst: deadlineWriter{c}}
	c.w.w.Reset(c.w.deflate)
	return nil
}

// newInflater reads the client's compressed commands from src.
func newInflater(src io.Reader) io.Reader {
	return newDeflateReader(src) // inflate.go: Z_PARTIAL_FLUSH

}
