package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// BODY and BODYSTRUCTURE (RFC 9051 §7.5.2) written from the parts' own
// header fields, as dovecot writes them: media types, parameter names
// and values in the case and order of the header (go-imap's
// ExtractBodyStructure lower-cases them, sorts parameters and decodes
// RFC 2231 values); RFC 2231 continuations joined, not decoded
// ("filename*" "UTF-8''%E2%82%AC.txt"); the default charset appended to
// a text part that names none; Content-MD5 as body-fld-md5; the
// Content-Language list up to the first bad tag. A message that is one
// plain US-ASCII text part is written in dovecot's default form ("text"
// "plain" ("charset" "us-ascii") NIL NIL "7bit" …) whatever the case of
// its header.

// bsPart is one MIME part with the sizes BODYSTRUCTURE reports.
type bsPart struct {
	header   textproto.Header
	parent   string // the parent multipart's media type ("" for none)
	root     bool   // the message itself
	children []*bsPart
	size     int64
	lines    int64
	msgHead  *textproto.Header // an encapsulated message's header
	msg      *bsPart           // and its structure
}

// readBodyStructure walks the MIME tree of the CRLF message in r,
// streaming: sizes and lines are counted as the parts go past.
func readBodyStructure(r io.Reader) *bsPart {
	tr := &tailReader{r: r}
	br := bufio.NewReader(tr)
	h, _ := readHeaderLenient(br)
	return walkBodyPart(h, br, "", true, 0, tr, "")
}

// tailReader remembers the last bytes of the message and whether its end
// was reached.
type tailReader struct {
	r    io.Reader
	tail []byte
	eof  bool
}

const maxTail = 4096

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.tail = append(t.tail, p[:n]...)
	if len(t.tail) > 2*maxTail {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-maxTail:]...)
	}
	if err == io.EOF {
		t.eof = true
	}
	return n, err
}

// heldBack is what go-message's multipart reader keeps back at the end of
// a message whose last part has no close delimiter: the final line end
// (and any start of "--boundary" after it), which could have begun a
// delimiter. dovecot counts the last part to the end of the message.
func (t *tailReader) heldBack(boundary string) []byte {
	if !t.eof || boundary == "" {
		return nil
	}
	for _, nl := range []string{"\r\n--" + boundary, "\n--" + boundary} {
		if i := bytes.LastIndexByte(t.tail, nl[0]); i >= 0 && strings.HasPrefix(nl, string(t.tail[i:])) {
			return t.tail[i:]
		}
	}
	return nil
}

// maxBodyDepth bounds nesting (dovecot stops at 100 levels too).
const maxBodyDepth = 100

func walkBodyPart(h textproto.Header, r io.Reader, parent string, root bool, depth int, tr *tailReader, boundary string) *bsPart {
	p := &bsPart{header: h, parent: parent, root: root}
	mt := partMediaType(h, parent)
	if strings.HasPrefix(mt, "multipart/") && depth < maxBodyDepth {
		gh := gomessage.Header{Header: h}
		_, params, _ := gh.ContentType()
		mr := textproto.NewMultipartReader(r, params["boundary"])
		for {
			part, _ := mr.NextPart()
			if part == nil {
				break
			}
			p.children = append(p.children, walkBodyPart(part.Header, part, mt, false, depth+1, tr, params["boundary"]))
		}
		io.Copy(io.Discard, r)
		return p
	}
	cr := &countingReader{r: r}
	if isMessageType(mt) && depth < maxBodyDepth {
		br := bufio.NewReader(cr)
		ch, _ := readHeaderLenient(br)
		p.msgHead = &ch
		p.msg = walkBodyPart(ch, br, "", false, depth+1, tr, boundary)
	}
	_, err := io.Copy(io.Discard, cr)
	p.size, p.lines = cr.bytes, cr.lines
	if errors.Is(err, io.ErrUnexpectedEOF) && cr.bytes > 0 {
		// (An empty part at the end stays empty, as with dovecot.)
		held := tr.heldBack(boundary)
		p.size += int64(len(held))
		p.lines += int64(bytes.Count(held, []byte("\n")))
	}
	return p
}

// mimeParam is one parameter as written in the header.
type mimeParam struct{ key, value string }

// partField is a field's value unfolded, leading white space removed.
func partField(h textproto.Header, key string) string {
	return strings.TrimLeft(unfold(h.Get(key)), " \t")
}

// plain7bit tells whether the part is what dovecot writes in its
// default form: the message itself, text/plain, no parameter but
// charset=us-ascii, 7bit, none of the optional fields.
func (p *bsPart) plain7bit() bool {
	if !p.root || len(p.children) > 0 || p.msg != nil {
		return false
	}
	if p.header.Has("Content-Type") {
		typ, sub, params := parseContentType(partField(p.header, "Content-Type"))
		if !strings.EqualFold(typ, "text") || !strings.EqualFold(sub, "plain") {
			return false
		}
		for _, pr := range params {
			if !strings.EqualFold(pr.key, "charset") || !strings.EqualFold(pr.value, "us-ascii") {
				return false
			}
		}
	}
	if enc := firstToken(partField(p.header, "Content-Transfer-Encoding")); enc != "" && !strings.EqualFold(enc, "7bit") {
		return false
	}
	for _, k := range []string{"Content-Id", "Content-Description", "Content-Md5", "Content-Disposition", "Content-Language", "Content-Location"} {
		if p.header.Has(k) {
			return false
		}
	}
	return true
}

// writeBodyStructure writes BODY (ext=false) or BODYSTRUCTURE (ext=true).
func (w *writer) writeBodyStructure(p *bsPart, ext bool) *writer {
	if p.plain7bit() {
		w.raw(`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" `).num64(p.size).sp().num64(p.lines)
		if ext {
			w.raw(" NIL NIL NIL NIL")
		}
		return w.byte1(')')
	}
	typ, sub, params := "text", "plain", []mimeParam(nil)
	hasType := p.header.Has("Content-Type")
	if hasType {
		typ, sub, params = parseContentType(partField(p.header, "Content-Type"))
	} else if p.parent == "multipart/digest" {
		typ, sub = "message", "rfc822"
	}
	if len(p.children) > 0 {
		w.byte1('(')
		for _, c := range p.children {
			w.writeBodyStructure(c, ext)
		}
		w.sp().str(sub)
		if ext {
			w.sp().mimeParams(params, false).sp()
			w.bsExtension(p.header)
		}
		return w.byte1(')')
	}
	if p.msg != nil && strings.EqualFold(typ, "message") && strings.EqualFold(sub, "rfc822") {
		// dovecot writes an encapsulated message's type in lower case.
		typ, sub = "message", "rfc822"
	}
	isText := strings.EqualFold(typ, "text")
	w.byte1('(').str(typ).sp().str(sub).sp().mimeParams(params, isText)
	// A field that is there but empty is "" (dovecot), an absent one NIL.
	w.sp().fieldStr(p.header, "Content-Id").sp().fieldStr(p.header, "Content-Description").sp()
	enc := firstToken(partField(p.header, "Content-Transfer-Encoding"))
	if enc == "" {
		enc = "7bit"
	}
	w.str(enc).sp().num64(p.size)
	if p.msg != nil {
		w.sp().envelopeRaw(*p.msgHead).sp().writeBodyStructure(p.msg, ext).sp().num64(p.lines)
	} else if isText {
		w.sp().num64(p.lines)
	}
	if ext {
		w.sp().nstr(partField(p.header, "Content-Md5")).sp()
		w.bsExtension(p.header)
	}
	return w.byte1(')')
}

// bsExtension writes body-fld-dsp SP body-fld-lang SP body-fld-loc.
func (w *writer) bsExtension(h textproto.Header) *writer {
	if d := partField(h, "Content-Disposition"); d != "" {
		typ, params := parseDisposition(d)
		w.byte1('(').str(typ).sp().mimeParams(params, false).byte1(')')
	} else {
		w.raw("NIL")
	}
	w.sp()
	if langs := parseLanguages(partField(h, "Content-Language")); len(langs) > 0 {
		w.byte1('(')
		for i, l := range langs {
			if i > 0 {
				w.sp()
			}
			w.str(l)
		}
		w.byte1(')')
	} else {
		w.raw("NIL")
	}
	return w.sp().nstr(partField(h, "Content-Location"))
}

// mimeParams writes a parameter list; a text part without a charset
// gets dovecot's ("charset" "us-ascii") at the end.
func (w *writer) mimeParams(params []mimeParam, defaultCharset bool) *writer {
	if defaultCharset {
		for _, p := range params {
			if strings.EqualFold(p.key, "charset") {
				defaultCharset = false
			}
		}
	}
	if len(params) == 0 && !defaultCharset {
		return w.raw("NIL")
	}
	w.byte1('(')
	for i, p := range params {
		if i > 0 {
			w.sp()
		}
		w.str(p.key).sp().str(p.value)
	}
	if defaultCharset {
		if len(params) > 0 {
			w.sp()
		}
		w.raw(`"charset" "us-ascii"`)
	}
	return w.byte1(')')
}

// mimeLexer reads RFC 2045 §5.1 tokens and quoted strings, skipping
// comments and white space.
type mimeLexer struct {
	s string
	i int
}

func (l *mimeLexer) skipCFWS() {
	for l.i < len(l.s) {
		switch c := l.s[l.i]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.i++
		case c == '(':
			depth := 0
			for l.i < len(l.s) {
				c := l.s[l.i]
				l.i++
				if c == '\\' {
					l.i++
					continue
				}
				if c == '(' {
					depth++
				} else if c == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
		default:
			return
		}
	}
}

func isMIMETokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c)) || c >= 0x80
}

// token reads a token ("" if none).
func (l *mimeLexer) token() string {
	l.skipCFWS()
	start := l.i
	for l.i < len(l.s) && isMIMETokenChar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

// value reads a token or a quoted string.
func (l *mimeLexer) value() string {
	l.skipCFWS()
	if l.i >= len(l.s) || l.s[l.i] != '"' {
		return l.token()
	}
	var b strings.Builder
	for l.i++; l.i < len(l.s); l.i++ {
		switch c := l.s[l.i]; c {
		case '\\':
			if l.i+1 < len(l.s) {
				l.i++
				b.WriteByte(l.s[l.i])
			}
		case '"':
			l.i++
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// take consumes c after optional white space.
func (l *mimeLexer) take(c byte) bool {
	l.skipCFWS()
	if l.i < len(l.s) && l.s[l.i] == c {
		l.i++
		return true
	}
	return false
}

// parseContentType splits "type/subtype; params" keeping the case: a
// value without "/" has an empty subtype, one without a type (dovecot:
// "" "" NIL) no parameters.
func parseContentType(v string) (typ, sub string, params []mimeParam) {
	l := &mimeLexer{s: v}
	typ = l.token()
	if l.take('/') {
		sub = l.token()
	}
	if typ == "" {
		return "", "", nil
	}
	return typ, sub, parseMIMEParams(l)
}

// parseDisposition splits a Content-Disposition value.
func parseDisposition(v string) (string, []mimeParam) {
	l := &mimeLexer{s: v}
	typ := l.token()
	return typ, parseMIMEParams(l)
}

// parseMIMEParams reads "; key=value" pairs (a key without "=" is
// dropped, as dovecot drops it), then joins RFC 2231 §3 continuations:
// plain parameters first in header order, then each continued or
// extended one ("name*" when any piece is extended), pieces in index
// order, their text as written.
func parseMIMEParams(l *mimeLexer) []mimeParam {
	var plain []mimeParam
	type piece struct {
		base  string
		idx   int
		ext   bool
		value string
	}
	var pieces []piece
	for {
		if !l.take(';') {
			// Skip to the next ';' past anything unexpected.
			j := strings.IndexByte(l.s[l.i:], ';')
			if j < 0 {
				break
			}
			l.i += j + 1
		}
		key := l.token()
		if !l.take('=') {
			if l.i >= len(l.s) {
				break
			}
			continue
		}
		val := l.value()
		base, rest, star := strings.Cut(key, "*")
		if !star {
			plain = append(plain, mimeParam{key, val})
			continue
		}
		pc := piece{base: base, value: val}
		switch {
		case rest == "":
			pc.ext = true
		case strings.HasSuffix(rest, "*"):
			pc.ext = true
			rest = strings.TrimSuffix(rest, "*")
			fallthrough
		default:
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 {
				plain = append(plain, mimeParam{key, val})
				continue
			}
			pc.idx = n
		}
		pieces = append(pieces, pc)
	}
	slices.SortStableFunc(pieces, func(a, b piece) int {
		if c := strings.Compare(a.base, b.base); c != 0 {
			return c
		}
		return a.idx - b.idx
	})
	for i := 0; i < len(pieces); {
		j, ext := i, false
		var b strings.Builder
		for ; j < len(pieces) && pieces[j].base == pieces[i].base; j++ {
			ext = ext || pieces[j].ext
			b.WriteString(pieces[j].value)
		}
		key := pieces[i].base
		if ext {
			key += "*"
		}
		plain = append(plain, mimeParam{key, b.String()})
		i = j
	}
	return plain
}

// firstToken is the first token of a value (Content-Transfer-Encoding).
func firstToken(v string) string {
	l := &mimeLexer{s: v}
	return l.token()
}

// parseLanguages reads a Content-Language list (RFC 3282) up to the
// first entry that is not a language tag, that entry's tag included.
func parseLanguages(v string) []string {
	var out []string
	l := &mimeLexer{s: v}
	for {
		t := l.token()
		if t == "" {
			return out
		}
		out = append(out, t)
		if !l.take(',') {
			return out
		}
	}
}

// fieldStr writes a part field's value, "" for an empty field, NIL for
// none.
func (w *writer) fieldStr(h textproto.Header, k string) *writer {
	if !h.Has(k) {
		return w.raw("NIL")
	}
	return w.str(partField(h, k))
}
