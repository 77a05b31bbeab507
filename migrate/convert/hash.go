package convert

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
)

// ContentHash returns the dedup hash of a message: the hex SHA-256 of its
// bytes normalised so that the copy appended to the old mbox spool and the
// copy delivered to the new store hash the same:
//   - line ends become LF (any '\r's before a '\n' are dropped); trailing
//     line ends are ignored;
//   - the c-client bookkeeping header fields (Status, X-Status,
//     X-Keywords, X-UID, X-IMAP, X-IMAPbase) and Content-Length are left
//     out, with their continuation lines;
//   - a line matching ^>+From  is hashed as "From " + the rest (mboxo and
//     mboxrd quoting undone).
//
// Everything else counts, so two different messages never share a hash.
func ContentHash(msg []byte) string {
	h := NewContentHasher()
	h.Write(msg)
	return h.Sum()
}

// ContentHasher computes ContentHash incrementally, with bounded memory.
type ContentHasher struct {
	h        hash.Hash
	body     bool   // past the header
	atStart  bool   // at the start of a line
	skipping bool   // inside a dropped header field
	dropLine bool   // the current line is dropped
	pend     []byte // start of the current line, until it can be classified
	cr       int    // '\r's held back (dropped if a '\n' follows)
	nls      int    // newlines held back (trailing ones are ignored)
}

// NewContentHasher returns an empty ContentHasher.
func NewContentHasher() *ContentHasher {
	return &ContentHasher{h: sha256.New(), atStart: true}
}

const maxPend = 256

var dropFields = [][]byte{
	[]byte("status"), []byte("x-status"), []byte("x-keywords"), []byte("x-uid"),
	[]byte("x-imap"), []byte("x-imapbase"), []byte("content-length"),
}

// Write adds p; it never fails.
func (c *ContentHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if c.atStart {
			// Collect the line start until it can be classified.
			i := bytes.IndexByte(p, '\n')
			take := len(p)
			if i >= 0 {
				take = i + 1
			}
			if room := maxPend - len(c.pend); take > room {
				take = room
			}
			c.pend = append(c.pend, p[:take]...)
			p = p[take:]
			if c.classify(len(c.pend) == maxPend) {
				c.atStart = false
				pend := c.pend
				c.pend = c.pend[:0]
				c.emitLine(pend)
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.emitLine(p)
			return n, nil
		}
		c.emitLine(p[:i+1])
		p = p[i+1:]
	}
	return n, nil
}

// classify decides what to do with the line starting in c.pend; false if
// more bytes are needed.
func (c *ContentHasher) classify(full bool) bool {
	line := c.pend
	complete := len(line) > 0 && line[len(line)-1] == '\n'
	if len(line) > 0 && line[0] == '>' {
		// Undo From quoting (the spool quotes header lines too).
		i := 0
		for i < len(line) && line[i] == '>' {
			i++
		}
		if len(line)-i < 5 && !complete && !full {
			return false
		}
		if bytes.HasPrefix(line[i:], []byte("From ")) {
			c.pend = append(c.pend[:0], line[i:]...)
			line = c.pend
		}
	}
	if c.body {
		c.dropLine = false
		return true
	}
	if isBlankLine(line) && complete {
		c.body = true
		c.dropLine = false
		c.skipping = false
		return true
	}
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		c.dropLine = c.skipping
		return true
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 && !complete && !full {
		return false
	}
	c.skipping = false
	if colon > 0 {
		name := bytes.ToLower(bytes.TrimRight(line[:colon], " \t"))
		for _, f := range dropFields {
			if bytes.Equal(name, f) {
				c.skipping = true
			}
		}
	}
	c.dropLine = c.skipping
	return true
}

// isBlankLine: only '\r's before the '\n' (a spool's CRLF->LF pass can
// turn "\r\r\n" into "\r\n", so any number counts).
func isBlankLine(l []byte) bool {
	if len(l) == 0 || l[len(l)-1] != '\n' {
		return false
	}
	for _, b := range l[:len(l)-1] {
		if b != '\r' {
			return false
		}
	}
	return true
}

// emitLine hashes a piece of the current line (dropping it if needed);
// a piece ending in '\n' ends the line.
func (c *ContentHasher) emitLine(p []byte) {
	if len(p) == 0 {
		return
	}
	end := p[len(p)-1] == '\n'
	if !c.dropLine {
		c.hashText(p)
	}
	if end {
		c.atStart = true
		c.dropLine = false
	}
}

// hashText hashes text with CRLF as LF and trailing newlines held back.
func (c *ContentHasher) hashText(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			c.flushHeld()
			c.h.Write(p)
			return
		}
		if i > 0 {
			c.flushHeld()
			c.h.Write(p[:i])
		}
		switch p[i] {
		case '\r':
			c.cr++
		case '\n':
			c.cr = 0 // CR...CRLF counts as LF
			c.nls++
		}
		p = p[i+1:]
	}
}

func (c *ContentHasher) flushHeld() {
	for ; c.nls > 0; c.nls-- {
		c.h.Write([]byte{'\n'})
	}
	for ; c.cr > 0; c.cr-- {
		c.h.Write([]byte{'\r'})
	}
}

// Sum returns the hex hash of what was written (trailing line ends and
// '\r's ignored).
func (c *ContentHasher) Sum() string {
	if len(c.pend) > 0 {
		c.dropLine = false
		if c.classify(true) {
			pend := c.pend
			c.pend = nil
			if !c.dropLine {
				c.hashText(pend)
			}
		}
	}
	return hex.EncodeToString(c.h.Sum(nil))
}

// HashReader returns ContentHash of everything r yields.
func HashReader(r io.Reader) (string, error) {
	h := NewContentHasher()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return h.Sum(), nil
}
