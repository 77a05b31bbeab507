package imap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"mailmig/mailstore"
)

// RFC 9051 §6.4.5 FETCH and §6.4.9 UID FETCH.
func (c *conn) cmdFetch(tag string, p *parser, uid bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	set, err := p.numSet()
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	items, err := parseFetchItems(p)
	if err != nil {
		return err
	}
	// RFC 7162 §3.1.4: FETCH ... (CHANGEDSINCE n).
	var changedSince uint64
	vanished := false
	if p.take(' ') {
		if err := p.expect('('); err != nil {
			return err
		}
		for !p.take(')') {
			p.take(' ')
			a, err := p.atom()
			if err != nil {
				return err
			}
			if strings.EqualFold(a, "VANISHED") {
				// RFC 7162 §3.2.6: UID FETCH only, QRESYNC enabled.
				if !uid || !c.qresync {
					return errBad("VANISHED needs UID FETCH and ENABLE QRESYNC")
				}
				vanished = true
				continue
			}
			if !strings.EqualFold(a, "CHANGEDSINCE") {
				return errBad("unknown FETCH modifier %s", a)
			}
			if err := p.sp(); err != nil {
				return err
			}
			n, err := p.number64()
			if err != nil {
				return err
			}
			changedSince = uint64(n)
		}
		hasModSeq := false
		for _, it := range items {
			hasModSeq = hasModSeq || it.kind == "MODSEQ"
		}
		if !hasModSeq {
			items = append(items, fetchItem{kind: "MODSEQ", name: "MODSEQ"})
		}
	}
	if err := p.end(); err != nil {
		return err
	}
	if vanished && changedSince == 0 {
		return errBad("VANISHED needs CHANGEDSINCE")
	}
	for _, it := range items {
		if it.kind == "MODSEQ" {
			c.enableCondstore()
		}
	}
	s := c.sel
	uids, err := s.messages(set, uid)
	if err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()

	// Fetching a body without PEEK sets \Seen (RFC 9051 §6.4.5).
	setsSeen := false
	need := needNothing
	hasFlags, hasUID := false, uid
	for _, it := range items {
		switch it.kind {
		case "BODY[]", "BINARY[]":
			setsSeen = setsSeen || !it.section.Peek
			if len(it.section.Part) == 0 && it.section.Specifier == imap.PartSpecifierHeader {
				need = max(need, needHeader)
			} else {
				need = needFull
			}
		case "RFC822", "RFC822.TEXT":
			setsSeen = true
			need = needFull
		case "RFC822.HEADER", "ENVELOPE":
			need = max(need, needHeader)
		case "BODYSTRUCTURE", "BODY", "BINARY.SIZE[]", "PREVIEW":
			need = needFull
		case "FLAGS":
			hasFlags = true
		case "UID":
			hasUID = true
		}
	}
	var seenSet map[uint32]bool
	if setsSeen && !s.readOnly && strings.ContainsRune(s.rights, 's') && len(uids) > 0 {
		snap, err := s.snapshot(ctx)
		if err != nil {
			return c.storeErr("FETCH", s.mb, err)
		}
		var unseen []uint32
		for _, u := range uids {
			if m, ok := snap.Lookup(u); ok && !m.HasFlag(mailstore.FlagSeen) {
				unseen = append(unseen, u)
			}
		}
		if len(unseen) > 0 {
			s.changed()
			if _, err := s.folder.StoreFlags(ctx, unseen, mailstore.FlagAdd, []string{mailstore.FlagSeen}); err != nil {
				return c.storeErr("FETCH", s.mb, err)
			}
			seenSet = make(map[uint32]bool, len(unseen))
			for _, u := range unseen {
				seenSet[u] = true
			}
		}
	}
	snap, err := s.snapshot(ctx)
	if err != nil {
		return c.storeErr("FETCH", s.mb, err)
	}
	if len(seenSet) > 0 {
		// The client learns the new flags in this response; do not
		// announce them again.
		c.flagUpdates(s.base, snap, seenSet)
		s.base = snap
	}
	if vanished && !isSearchRes(set) {
		c.vanishedEarlier(set, snap, changedSince)
	}
	var buf []byte
	for _, u := range uids {
		mi, ok := snap.Lookup(u)
		if !ok {
			continue // expunged meanwhile; announced later
		}
		if changedSince > 0 && s.ms.modseq(u) <= changedSince {
			continue
		}
		seq := s.seqOf(u)
		var content []byte
		var big *bigFetch
		if c.isBig(&mi) && bigStreamable(items) {
			// Streamed from the file, never read whole (bigmsg.go).
			big = &bigFetch{c: c, f: s.folder, mi: &mi, size: -1}
		} else if need != needNothing {
			if content, err = c.readContent(s.folder, mi, need == needHeader, buf); err != nil {
				c.log.Warn("imap: read message", "mailbox", s.mb.name, "uid", u, "err", err)
				continue
			}
			buf = content[:0]
		}
		if err := c.checkBinary(items, content, big); err != nil {
			// As dovecot: the message's response holds its UID only,
			// and the FETCH ends with the tagged NO.
			c.w.raw("* ").num(seq).raw(" FETCH (UID ").num(u).raw(")").crlf()
			return binaryFailure(err)
		}
		c.w.raw("* ").num(seq).raw(" FETCH (")
		n := 0
		sep := func() {
			if n > 0 {
				c.w.sp()
			}
			n++
		}
		if hasUID {
			sep()
			c.w.raw("UID ").num(u)
		}
		if seenSet[u] && !hasFlags {
			sep()
			c.w.raw("FLAGS ")
			c.writeFlags(&mi)
			if !hasModSeqItem(items) {
				c.writeModSeq(u)
			}
		}
		for _, it := range items {
			if it.kind == "UID" {
				continue
			}
			sep()
			if it.kind == "SAVEDATE" {
				c.writeSaveDate(&mi) // savedate.go
				continue
			}
			if it.kind == "EMAILID" || it.kind == "THREADID" {
				if err := c.fetchObjectID(ctx, it.kind, snap, &mi); err != nil {
					return err
				}
				continue
			}
			if big != nil {
				if err := big.item(it); err != nil {
					return err
				}
				continue
			}
			if err := c.fetchItem(it, &mi, content); err != nil {
				return err
			}
		}
		c.w.raw(")").crlf()
		if c.w.err != nil {
			return &ioError{c.w.err}
		}
	}
	return c.ok(tag, "", "FETCH completed", uid)
}

func hasModSeqItem(items []fetchItem) bool {
	for _, it := range items {
		if it.kind == "MODSEQ" {
			return true
		}
	}
	return false
}

// How much of a message a FETCH needs.
const (
	needNothing = iota
	needHeader
	needFull
)

// readContent reads the whole message, or only its header (with the
// blank line after it), with CRLF line ends.
func (c *conn) readContent(f *mailstore.Folder, mi mailstore.MessageInfo, headerOnly bool, buf []byte) ([]byte, error) {
	if !headerOnly {
		return c.readMessage(f, mi, buf)
	}
	key := f.Dir() + "/" + mi.Key
	if h, ok := c.srv.headers.get(key); ok {
		return append(buf[:0], h...), nil
	}
	fh, err := f.OpenMessage(mi)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	br := bufio.NewReaderSize(fh, 4096)
	var raw []byte
	for {
		line, err := br.ReadSlice('\n')
		raw = append(raw, line...)
		if err == nil && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", mi.Path, err)
		}
	}
	out := toCRLF(raw, buf)
	c.srv.headers.put(key, out)
	return out, nil
}

// filterHeader keeps (or, with not, drops) the fields named in fields of
// a CRLF header block, keeping folded continuation lines with their field
// and ending with the blank line (RFC 9051 §6.4.5 HEADER.FIELDS).
func filterHeader(h []byte, fields []string, not bool) []byte {
	out := make([]byte, 0, 256)
	keep := false
	for len(h) > 0 {
		i := bytes.IndexByte(h, '\n')
		line := h
		if i >= 0 {
			line = h[:i+1]
		}
		h = h[len(line):]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			name := line
			if j := bytes.IndexByte(line, ':'); j >= 0 {
				name = line[:j]
			}
			name = bytes.TrimSpace(name)
			match := false
			for _, f := range fields {
				if strings.EqualFold(string(name), f) {
					match = true
					break
				}
			}
			keep = match != not
		}
		if keep {
			out = append(out, line...)
		}
	}
	return append(out, '\r', '\n')
}

// readMessage reads a message with CRLF line ends, as IMAP sends it
// (Maildir files have LF ends, as dovecot writes them).
func (c *conn) readMessage(f *mailstore.Folder, mi mailstore.MessageInfo, buf []byte) ([]byte, error) {
	fh, err := f.OpenMessage(mi)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	raw, err := io.ReadAll(fh)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", mi.Path, err)
	}
	return toCRLF(raw, buf), nil
}

// toCRLF converts bare LF line ends to CRLF, appending to dst.
func toCRLF(b, dst []byte) []byte {
	dst = dst[:0]
	if bytes.IndexByte(b, '\n') < 0 {
		return append(dst, b...)
	}
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(dst, b...)
		}
		if i > 0 && b[i-1] == '\r' {
			dst = append(dst, b[:i+1]...)
		} else {
			dst = append(dst, b[:i]...)
			dst = append(dst, '\r', '\n')
		}
		b = b[i+1:]
	}
}

// splitHeader returns the header (with the blank line) and the body.
func splitHeader(msg []byte) (header, body []byte) {
	if bytes.HasPrefix(msg, []byte("\r\n")) {
		return msg[:2], msg[2:]
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+4], msg[i+4:]
	}
	return msg, nil
}

func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset >= int64(len(b)) {
		return nil
	}
	b = b[p.Offset:]
	if p.Size < int64(len(b)) {
		b = b[:p.Size]
	}
	return b
}

// fetchItem writes one item of a FETCH response.
func (c *conn) fetchItem(it fetchItem, mi *mailstore.MessageInfo, content []byte) error {
	w := c.w
	switch it.kind {
	case "FLAGS":
		w.raw("FLAGS ")
		c.writeFlags(mi)
	case "INTERNALDATE":
		w.raw("INTERNALDATE ").dateTime(mi.InternalDate)
	case "MODSEQ":
		w.raw("MODSEQ (").num64(int64(c.modseqShown(mi.UID))).raw(")")
	case "RFC822.SIZE":
		size := mi.VSize
		if size < 0 {
			size = int64(len(content))
			if content == nil {
				// Not read for this FETCH: count CRLF size from the file.
				b, err := c.readMessage(c.sel.folder, *mi, nil)
				if err != nil {
					return c.storeErr("FETCH", c.sel.mb, err)
				}
				size = int64(len(b))
			}
		}
		w.raw("RFC822.SIZE ").num64(size)
	case "ENVELOPE":
		h, err := readHeaderLenient(bufio.NewReader(bytes.NewReader(content)))
		if err != nil {
			h = textproto.Header{}
		}
		w.raw("ENVELOPE ").envelopeRaw(h)
	case "PREVIEW":
		if it.name != "PREVIEW" {
			// "SNIPPET (FUZZY" or "PREVIEW (FUZZY" (previewfuzzy.go).
			w.raw(it.name).sp().str(preview(content)).raw(")")
			break
		}
		w.raw("PREVIEW ").str(preview(content))
	case "BODYSTRUCTURE":
		w.raw("BODYSTRUCTURE ").writeBodyStructure(readBodyStructure(bytes.NewReader(content)), true)
	case "BODY":
		w.raw("BODY ").writeBodyStructure(readBodyStructure(bytes.NewReader(content)), false)
	case "RFC822":
		w.raw("RFC822 ").literalText(content)
	case "RFC822.HEADER":
		h, _ := splitHeader(content)
		w.raw("RFC822.HEADER ").literalText(h)
	case "RFC822.TEXT":
		_, b := splitHeader(content)
		w.raw("RFC822.TEXT ").literalText(b)
	case "BODY[]":
		w.raw(it.name).sp()
		sec := it.section
		var data []byte
		switch {
		case len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierNone:
			data = partial(content, sec.Partial)
		case len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierText:
			_, b := splitHeader(content)
			data = partial(b, sec.Partial)
		case len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierHeader && len(sec.HeaderFields) == 0 && len(sec.HeaderFieldsNot) == 0:
			h, _ := splitHeader(content)
			data = partial(h, sec.Partial)
		case len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierHeader:
			h, _ := splitHeader(content)
			if len(sec.HeaderFields) > 0 {
				data = partial(filterHeader(h, sec.HeaderFields, false), sec.Partial)
			} else {
				data = partial(filterHeader(h, sec.HeaderFieldsNot, true), sec.Partial)
			}
		case !sectionValid(content, sec.Part, string(sec.Specifier)):
			data = []byte{}
		case len(sec.Part) == 1 && sec.Part[0] == 1 && (sec.Specifier == imap.PartSpecifierNone || sec.Specifier == imap.PartSpecifierMIME) && !isMultipartMessage(content):
			// Part 1 of a one-part message is its body, 1.MIME its
			// header (RFC 9051 §6.4.5), also when go-message cannot
			// parse that header (a stray mbox From_ line in it).
			h, b := splitHeader(content)
			if sec.Specifier == imap.PartSpecifierMIME {
				b = h
			}
			data = partial(b, sec.Partial)
		default:
			data = imapserver.ExtractBodySection(bytes.NewReader(content), sec)
			if data == nil {
				data = []byte{}
			}
		}
		w.literalText(data)
	case "BINARY[]":
		// binarydecode.go; checkBinary made sure the section decodes.
		var buf bytes.Buffer
		decoded, _ := writeBinary(&buf, bytes.NewReader(content), it.section.Part)
		data := partial(buf.Bytes(), it.section.Partial)
		w.raw(it.name).sp()
		if decoded {
			w.byte1('~').literalBytes(data)
		} else {
			w.literalBinary(data)
		}
	case "BINARY.SIZE[]":
		var n countWriter
		writeBinary(&n, bytes.NewReader(content), it.section.Part)
		w.raw(it.name).sp().num64(int64(n))
	}
	return nil
}
