package main

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"io"
)

// COMPRESS=DEFLATE (RFC 4978) for the idle benchmark's clients: commands
// go out as DEFLATE stored blocks (a valid raw DEFLATE stream that needs
// no compressor, so ten thousand clients cost this process nothing), the
// server's answers are inflated with compress/flate until IDLE is
// running, after which the client reads nothing more.

// mixedCompress turns COMPRESS on for the mixed load's clients (their
// commands are stored blocks too: what is measured is the server's
// compressing of its answers and inflating of the commands).
var mixedCompress bool

// storedWriter writes each Write as one non-final stored block (RFC 1951
// §3.2.4); blocks are byte-aligned, so each is readable on arrival.
type storedWriter struct{ w io.Writer }

func (s storedWriter) Write(b []byte) (int, error) {
	for n := 0; n < len(b); {
		chunk := b[n:min(len(b), n+65535)]
		var h [5]byte
		binary.LittleEndian.PutUint16(h[1:], uint16(len(chunk)))
		binary.LittleEndian.PutUint16(h[3:], ^uint16(len(chunk)))
		if _, err := s.w.Write(h[:]); err != nil {
			return n, err
		}
		if _, err := s.w.Write(chunk); err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return len(b), nil
}

// compress sends COMPRESS DEFLATE and switches the client's streams.
func (c *client) compress() error {
	if _, err := c.cmd("COMPRESS DEFLATE"); err != nil {
		return err
	}
	c.r = bufio.NewReaderSize(flate.NewReader(c.r), 4096)
	c.w = bufio.NewWriterSize(storedWriter{c.nc}, 4096)
	return nil
}
