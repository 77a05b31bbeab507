package imap

import (
	"bufio"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// CATENATE (RFC 4469): APPEND's message made of TEXT literals and IMAP
// URLs (RFC 5092) of the user's own mail (or of folders shared with the
// read right): "/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s]", absolute
// ("imap://user@host/...") or server-relative, with ";PARTIAL=o[.n]"
// (URL-PARTIAL, RFC 5550 §5: n octets from octet o of the part or
// message). No URLAUTH. A URL that cannot be resolved fails the APPEND with
// [BADURL url] (§5). The message is assembled in a temporary file in the
// target folder's tmp/ (unlinked at once, so nothing is left behind):
// TEXT literals stream from the connection to it (like APPEND's message
// literal they are bounded by the APPEND limit, not by the per-command
// literal budget), URL parts stream from the stored file (sectionStream
// for a SECTION), so memory stays bounded whatever the sizes.

// catenateParts reads " (" cat-part *(SP cat-part) ")" (RFC 4469 §5) and
// returns the message, a temporary file in dir at offset 0, and its size.
func (c *conn) catenateParts(p *parser, dir string) (*os.File, int64, error) {
	if err := p.sp(); err != nil {
		return nil, 0, err
	}
	if err := p.expect('('); err != nil {
		return nil, 0, err
	}
	tmp, err := os.CreateTemp(dir, "catenate-")
	if err != nil {
		return nil, 0, errNo(imap.ResponseCodeServerBug, "cannot assemble the message: %v", err)
	}
	os.Remove(tmp.Name())
	fail := func(err error) (*os.File, int64, error) {
		tmp.Close()
		return nil, 0, err
	}
	ew := &errWriter{w: tmp}
	w := bufio.NewWriterSize(ew, 64<<10)
	limit := c.srv.opts.AppendLimit
	var size int64
	tooBig := errNo(imap.ResponseCodeTooBig, "message larger than %d bytes", limit)
	for i := 0; ; i++ {
		if i > 0 {
			if p.take(')') {
				break
			}
			if err := p.sp(); err != nil {
				return fail(err)
			}
		}
		kind, err := p.atom()
		if err != nil {
			return fail(err)
		}
		if err := p.sp(); err != nil {
			return fail(err)
		}
		switch strings.ToUpper(kind) {
		case "TEXT":
			n, nonSync, err := p.literalHeader()
			if err != nil {
				return fail(err)
			}
			if size+n > limit {
				if nonSync {
					// Sent anyway: read and dropped, so the caller can
					// skip the rest of the command.
					if _, err := io.CopyN(io.Discard, progressReader{c, p.r}, n); err != nil {
						return fail(&ioError{err})
					}
					if err := p.nextLine(); err != nil {
						return fail(&ioError{err})
					}
				}
				return fail(tooBig)
			}
			if !nonSync && p.cont != nil {
				if err := p.cont(); err != nil {
					return fail(err)
				}
			}
			if _, err := io.CopyN(w, progressReader{c, p.r}, n); err != nil {
				return fail(&ioError{err})
			}
			size += n
			p.off += int(n)
			p.line = append([]byte(nil), p.line...)
			if err := p.nextLine(); err != nil {
				return fail(&ioError{err})
			}
		case "URL":
			u, err := p.astring()
			if err != nil {
				return fail(err)
			}
			r, cl, ok := c.urlStream(u)
			if !ok {
				return fail(errNo(imap.ResponseCode("BADURL "+u), "unknown or unreadable URL"))
			}
			n, err := io.Copy(w, io.LimitReader(r, limit-size+1))
			cl.Close()
			if err != nil {
				return fail(errNo(imap.ResponseCode("BADURL "+u), "reading the URL's message failed"))
			}
			size += n
		default:
			return fail(p.errorf("unknown CATENATE part %s", kind))
		}
		if size > limit {
			return fail(tooBig)
		}
	}
	err = w.Flush()
	if err == nil {
		err = ew.err
	}
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fail(errNo(imap.ResponseCodeServerBug, "cannot assemble the message: %v", err))
	}
	return tmp, size, nil
}

// errWriter keeps writing after a failed write (dropping the bytes), so
// a literal is still read whole; err is the first failure.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err == nil {
		if _, err := e.w.Write(b); err != nil {
			e.err = err
		}
	}
	return len(b), nil
}

// urlStream returns a reader of the data an IMAP URL names (CRLF line
// ends) and what to close after reading it.
func (c *conn) urlStream(raw string) (io.Reader, io.Closer, bool) {
	u := raw
	if strings.HasPrefix(strings.ToLower(u), "imap://") {
		rest := u[len("imap://"):]
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return nil, nil, false
		}
		auth := rest[:i]
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			user, _ := url.PathUnescape(strings.SplitN(auth[:at], ";", 2)[0])
			if user != c.user {
				return nil, nil, false // another user's URL: that is URLAUTH's job
			}
		}
		u = rest[i:]
	}
	if !strings.HasPrefix(u, "/") {
		return nil, nil, false
	}
	parts := strings.Split(u[1:], "/;")
	if len(parts) < 2 {
		return nil, nil, false
	}
	mboxPart, validity, _ := strings.Cut(parts[0], ";UIDVALIDITY=")
	mboxPart = strings.TrimSuffix(mboxPart, "/")
	name, err := url.PathUnescape(mboxPart)
	if err != nil || name == "" {
		return nil, nil, false
	}
	var uid uint64
	var section string
	partialFrom, partialLen := int64(-1), int64(-1)
	for _, kv := range parts[1:] {
		k, v, _ := strings.Cut(kv, "=")
		v = strings.TrimSuffix(v, "/")
		if partialFrom >= 0 {
			return nil, nil, false // ;PARTIAL comes last (RFC 5092 §11)
		}
		switch strings.ToUpper(k) {
		case "UID":
			if uid, err = strconv.ParseUint(v, 10, 32); err != nil {
				return nil, nil, false
			}
		case "SECTION":
			if section, err = url.PathUnescape(v); err != nil {
				return nil, nil, false
			}
		case "PARTIAL":
			// RFC 5092 §11: partial-range = number ["." nz-number].
			from, n, hasLen := strings.Cut(v, ".")
			if partialFrom, err = strconv.ParseInt(from, 10, 64); err != nil || partialFrom < 0 {
				return nil, nil, false
			}
			if hasLen {
				if partialLen, err = strconv.ParseInt(n, 10, 64); err != nil || partialLen <= 0 {
					return nil, nil, false
				}
			}
		default:
			return nil, nil, false
		}
	}
	if uid == 0 {
		return nil, nil, false
	}
	dn, err := c.decodeName(name)
	if err != nil {
		dn = name
	}
	m, err := c.resolve(dn)
	if err != nil {
		return nil, nil, false
	}
	defer m.release()
	if c.need(m, 'r') != nil {
		return nil, nil, false
	}
	f, err := m.store.Folder(m.folder)
	if err != nil {
		return nil, nil, false
	}
	ctx, cancel := c.ctx()
	defer cancel()
	snap, err := f.Snapshot(ctx)
	if err != nil {
		return nil, nil, false
	}
	if validity != "" && strings.TrimSuffix(validity, "/") != strconv.FormatUint(uint64(snap.UIDValidity), 10) {
		return nil, nil, false
	}
	mi, ok := snap.Lookup(uint32(uid))
	if !ok {
		return nil, nil, false
	}
	var sec *imap.FetchItemBodySection
	if section != "" {
		sp := &parser{line: []byte("[" + section + "]")}
		if sec, err = parseSection(sp, false); err != nil || !sp.eol() {
			return nil, nil, false
		}
	}
	fh, err := f.OpenMessage(mi)
	if err != nil {
		return nil, nil, false
	}
	r := io.Reader(newCRLFReader(fh, false))
	if sec != nil {
		// The walk ExtractBodySection makes, as a stream (bigpart.go).
		if r = sectionStream(r, fetchItem{kind: "BODY[]", section: sec}); r == nil {
			fh.Close()
			return nil, nil, false
		}
	}
	if partialFrom >= 0 {
		r = &partialReader{r: r, skip: partialFrom}
		if partialLen > 0 {
			r = io.LimitReader(r, partialLen)
		}
	}
	return r, fh, true
}

// partialReader drops the first skip bytes of r (URL-PARTIAL's offset).
type partialReader struct {
	r    io.Reader
	skip int64
}

func (p *partialReader) Read(b []byte) (int, error) {
	if p.skip > 0 {
		if _, err := io.CopyN(io.Discard, p.r, p.skip); err != nil {
			p.skip = 0
			return 0, err
		}
		p.skip = 0
	}
	return p.r.Read(b)
}
