package imap

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// CATENATE (RFC 4469): APPEND's message made of TEXT literals and IMAP
// URLs (RFC 5092) of the user's own mail (or of folders shared with the
// read right): "/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s]", absolute
// ("imap://user@host/...") or server-relative. No URLAUTH; ;PARTIAL is
// not supported. A URL that cannot be resolved fails the APPEND with
// [BADURL url] (§5). TEXT parts are ordinary literals (up to 1 MiB each).

// catenateParts reads " (" cat-part *(SP cat-part) ")" (RFC 4469 §5) and
// returns the message.
func (c *conn) catenateParts(p *parser) ([]byte, error) {
	if err := p.sp(); err != nil {
		return nil, err
	}
	if err := p.expect('('); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for i := 0; ; i++ {
		if i > 0 {
			if p.take(')') {
				break
			}
			if err := p.sp(); err != nil {
				return nil, err
			}
		}
		kind, err := p.atom()
		if err != nil {
			return nil, err
		}
		if err := p.sp(); err != nil {
			return nil, err
		}
		switch strings.ToUpper(kind) {
		case "TEXT":
			b, err := p.literal()
			if err != nil {
				return nil, err
			}
			out.Write(b)
		case "URL":
			u, err := p.astring()
			if err != nil {
				return nil, err
			}
			b, ok := c.urlData(u)
			if !ok {
				return nil, errNo(imap.ResponseCode("BADURL "+u), "unknown or unreadable URL")
			}
			out.Write(b)
		default:
			return nil, p.errorf("unknown CATENATE part %s", kind)
		}
		if int64(out.Len()) > c.srv.opts.AppendLimit {
			return nil, errNo(imap.ResponseCodeTooBig, "message larger than %d bytes", c.srv.opts.AppendLimit)
		}
	}
	return out.Bytes(), nil
}

// urlData returns the data an IMAP URL names (CRLF line ends).
func (c *conn) urlData(raw string) ([]byte, bool) {
	u := raw
	if strings.HasPrefix(strings.ToLower(u), "imap://") {
		rest := u[len("imap://"):]
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return nil, false
		}
		auth := rest[:i]
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			user, _ := url.PathUnescape(strings.SplitN(auth[:at], ";", 2)[0])
			if user != c.user {
				return nil, false // another user's URL: that is URLAUTH's job
			}
		}
		u = rest[i:]
	}
	if !strings.HasPrefix(u, "/") {
		return nil, false
	}
	parts := strings.Split(u[1:], "/;")
	if len(parts) < 2 {
		return nil, false
	}
	mboxPart, validity, _ := strings.Cut(parts[0], ";UIDVALIDITY=")
	mboxPart = strings.TrimSuffix(mboxPart, "/")
	name, err := url.PathUnescape(mboxPart)
	if err != nil || name == "" {
		return nil, false
	}
	var uid uint64
	var section string
	for _, kv := range parts[1:] {
		k, v, _ := strings.Cut(kv, "=")
		v = strings.TrimSuffix(v, "/")
		switch strings.ToUpper(k) {
		case "UID":
			if uid, err = strconv.ParseUint(v, 10, 32); err != nil {
				return nil, false
			}
		case "SECTION":
			if section, err = url.PathUnescape(v); err != nil {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	if uid == 0 {
		return nil, false
	}
	dn, err := c.decodeName(name)
	if err != nil {
		dn = name
	}
	m, err := c.resolve(dn)
	if err != nil {
		return nil, false
	}
	defer m.release()
	if c.need(m, 'r') != nil {
		return nil, false
	}
	f, err := m.store.Folder(m.folder)
	if err != nil {
		return nil, false
	}
	ctx, cancel := c.ctx()
	defer cancel()
	snap, err := f.Snapshot(ctx)
	if err != nil {
		return nil, false
	}
	if validity != "" && strings.TrimSuffix(validity, "/") != strconv.FormatUint(uint64(snap.UIDValidity), 10) {
		return nil, false
	}
	mi, ok := snap.Lookup(uint32(uid))
	if !ok {
		return nil, false
	}
	content, err := c.readMessage(f, mi, nil)
	if err != nil {
		return nil, false
	}
	if section == "" {
		return content, true
	}
	sp := &parser{line: []byte("[" + section + "]")}
	sec, err := parseSection(sp, false)
	if err != nil || !sp.eol() {
		return nil, false
	}
	data := imapserver.ExtractBodySection(bytes.NewReader(content), sec)
	if data == nil {
		return nil, false
	}
	return data, true
}
