package imap

import (
	"bufio"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/klauspost/compress/flate"
)

// COMPRESS=DEFLATE (RFC 4978): after the tagged OK both directions are raw
// DEFLATE streams (RFC 1951, no zlib header). The server side writes with
// klauspost/compress's stateless DEFLATE writer: every Write (one per
// flush of the response buffer) is compressed on its own and ends
// byte-aligned and flushed (§4: what the client must see is never held
// back), and nothing is kept between writes, so an idle compressed
// session costs the inflater's 32 KiB window and no compressor state
// (compress/flate's writer keeps 1.2 MB a connection, which 10,000 IDLE
// sessions cannot afford). The reader keeps the bytes the connection had
// already buffered (compressed data sent right after the command).

// RFC 4978 §3 COMPRESS.
func (c *conn) cmdCompress(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	alg, err := p.atom()
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	if !strings.EqualFold(alg, "DEFLATE") {
		return errBad("unknown compression mechanism %s", alg)
	}
	if c.compressed {
		return errNo("COMPRESSIONACTIVE", "compression is already active")
	}
	c.w.status(tag, imap.StatusResponseTypeOK, "", "DEFLATE active")
	if err := c.w.flush(); err != nil {
		return &ioError{err}
	}
	c.compressed = true
	// Reads: the compressed stream continues in c.br (its buffered bytes
	// included); the protocol reads the inflated bytes.
	c.br = bufio.NewReaderSize(flate.NewReader(c.br), 4096)
	c.w.w.Reset(flate.NewStatelessWriter(deadlineWriter{c}))
	return nil
}
