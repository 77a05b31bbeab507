package sieve

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// Message is a parsed message for the interpreter: its header fields in
// order (unfolded) and where its body is. The header is read once, from a
// bounded prefix (MaxHeaderBytes); the body stays in the source and body
// tests read it part by part (bodystream.go), so a message of any size
// costs bounded memory.
type Message struct {
	fields []field
	src    io.ReaderAt // the whole message
	size   int64
	// The body is bodyHead (a line that ended the header without being
	// a field, as the old parser kept it) followed by src[bodyOff:size].
	bodyHead []byte
	bodyOff  int64
	hasSep   bool
	// badHeader: the header is one textproto.ReadMIMEHeader refuses (it
	// starts with a continuation line, has a line that is no field, or
	// has no end), so mime/multipart ends the multipart at such a part.
	badHeader bool
	// headerLen is where the header's lines end in src (before the
	// blank line).
	headerLen int64

	// Caches (a Message serves one delivery at a time): decoded and raw
	// values by field name, addresses by raw value. Edits start a clone.
	decodedCache map[string][]string
	rawCache     map[string][]string
	addrCache    map[string][]string
	bodyCache    map[string][]string // by transform and content types
}

type field struct {
	name  string // lower case
	orig  string // as written
	value string // unfolded, trimmed
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, err
	}
	return enc.NewDecoder().Reader(r), nil
}

// decoded is the value with RFC 2047 encoded words decoded, as
// pigeonhole's header test sees it.
func (f field) decoded() string {
	if !strings.Contains(f.value, "=?") {
		return f.value
	}
	if d, err := wordDecoder.DecodeHeader(f.value); err == nil {
		return d
	}
	return f.value
}

// MaxHeaderBytes bounds the header NewMessageReader reads: fields that
// start beyond it are not seen, and the body is taken to start at the
// first line that does not fit.
const MaxHeaderBytes = 8 << 20

// NewMessage parses raw (CRLF or LF line ends). It never fails: lines
// that are not header fields end the header, as most MUAs treat them.
func NewMessage(raw []byte) *Message {
	m, _ := NewMessageReader(bytes.NewReader(raw), int64(len(raw)))
	return m
}

// NewMessageReader parses the header of the size-byte message in r (at
// most MaxHeaderBytes of it) and keeps r for the body tests, which read
// it again each time they run; r must stay readable and unchanged while
// scripts run on the Message. The error is a read error of the header.
func NewMessageReader(r io.ReaderAt, size int64) (*Message, error) {
	m := &Message{fields: make([]field, 0, 16), src: r, size: size}
	limit := min(size, MaxHeaderBytes)
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, limit), int(max(16, min(limit, 64<<10))))
	var off int64
	var name, orig string
	var val []byte
	flush := func() {
		if name != "" {
			m.fields = append(m.fields, field{name: name, orig: orig, value: strings.TrimSpace(string(val))})
		}
		name, val = "", nil
	}
	for off < size {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		if err == io.EOF && limit < size {
			// The line goes beyond MaxHeaderBytes: the body starts here.
			m.hasSep = true
			break
		}
		start := off
		off += int64(len(line))
		m.headerLen = off
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			m.hasSep = true
			m.headerLen = start
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(m.fields) == 0 && name == "" {
				m.badHeader = true
			}
			if name != "" {
				val = append(val, line...)
			}
			continue
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 || bytes.ContainsAny(line[:c], " \t") {
			// Not a header field: the body starts here.
			flush()
			m.badHeader = true
			m.headerLen = start
			m.bodyHead = append(line[:len(line):len(line)], '\n')
			m.hasSep = true
			break
		}
		flush()
		orig = string(line[:c])
		name = strings.ToLower(orig)
		val = append([]byte(nil), line[c+1:]...)
	}
	flush()
	m.bodyOff = off
	m.badHeader = m.badHeader || !m.hasSep
	return m, nil
}

func (m *Message) clone() *Message {
	c := *m
	c.fields = append([]field(nil), m.fields...)
	c.decodedCache, c.rawCache, c.addrCache, c.bodyCache = nil, nil, nil, nil
	return &c
}

// occurrences returns the positions of the fields named name (lower case).
func (m *Message) occurrences(name string) []int {
	var out []int
	for i := range m.fields {
		if m.fields[i].name == name {
			out = append(out, i)
		}
	}
	return out
}

// values returns the decoded values of name, or with index > 0 only the
// index-th (from the end with last; RFC 5260 §6).
func (m *Message) values(name string, index int, last bool) []string {
	return m.pick(name, index, last, true)
}

// rawValues is values without RFC 2047 decoding (for address tests).
func (m *Message) rawValues(name string, index int, last bool) []string {
	return m.pick(name, index, last, false)
}

func (m *Message) pick(name string, index int, last, decode bool) []string {
	cache := &m.rawCache
	if decode {
		cache = &m.decodedCache
	}
	out, ok := (*cache)[name]
	if !ok {
		out = m.collect(name, decode)
		if *cache == nil {
			*cache = make(map[string][]string, 16)
		}
		(*cache)[name] = out
	}
	if index > 0 {
		k := index - 1
		if last {
			k = len(out) - index
		}
		if k < 0 || k >= len(out) {
			return nil
		}
		return out[k : k+1 : k+1]
	}
	return out[:len(out):len(out)]
}

// addresses returns the addr-specs of a raw header value, cached.
func (m *Message) addresses(raw string) []string {
	if a, ok := m.addrCache[raw]; ok {
		return a
	}
	a := parseAddressList(raw)
	if m.addrCache == nil {
		m.addrCache = map[string][]string{}
	}
	m.addrCache[raw] = a
	return a
}

func (m *Message) collect(name string, decode bool) []string {
	var out []string
	for i := range m.fields {
		if m.fields[i].name == name {
			if decode {
				out = append(out, m.fields[i].decoded())
			} else {
				out = append(out, m.fields[i].value)
			}
		}
	}
	return out
}

func (m *Message) add(name, value string, last bool) {
	f := field{name: lower(name), orig: name, value: strings.TrimSpace(strings.NewReplacer("\r", "", "\n", " ").Replace(value))}
	if last {
		m.fields = append(m.fields, f)
	} else {
		m.fields = append([]field{f}, m.fields...)
	}
	m.decodedCache, m.rawCache = nil, nil
}

// remove deletes the index-th (1-based) field named name.
func (m *Message) remove(name string, index int) {
	occ := m.occurrences(name)
	if index >= 1 && index <= len(occ) {
		i := occ[index-1]
		m.fields = append(m.fields[:i:i], m.fields[i+1:]...)
	}
	m.decodedCache, m.rawCache = nil, nil
}

// Header returns the first value of key (any case), or "".
func (m *Message) Header(key string) string {
	if v := m.rawValues(strings.ToLower(key), 0, false); len(v) > 0 {
		return v[0]
	}
	return ""
}

// HeaderGet returns the values of the header field key (any case).
func (m *Message) HeaderGet(key string) ([]string, error) {
	return m.rawValues(strings.ToLower(key), 0, false), nil
}

// MessageSize returns the size of the raw message.
func (m *Message) MessageSize() int { return int(m.size) }

// bodyLen is the body's size in bytes.
func (m *Message) bodyLen() int64 { return int64(len(m.bodyHead)) + m.size - m.bodyOff }

// Body returns the raw body (after the blank line) as a reader of its own.
func (m *Message) Body() *io.SectionReader {
	return io.NewSectionReader(bodyAt{m}, 0, m.bodyLen())
}

// BodyRaw returns the body and whether the message had one. It reads the
// whole body into memory: for small messages (Body streams).
func (m *Message) BodyRaw() ([]byte, bool, error) {
	b := make([]byte, m.bodyLen())
	if _, err := io.ReadFull(m.Body(), b); err != nil {
		return nil, m.hasSep, err
	}
	return b, m.hasSep, nil
}

// bodyAt is the body as an io.ReaderAt: bodyHead, then the source from
// bodyOff.
type bodyAt struct{ m *Message }

func (b bodyAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if head := b.m.bodyHead; off < int64(len(head)) {
		n = copy(p, head[off:])
		if n == len(p) {
			return n, nil
		}
		off = int64(len(head))
	}
	k, err := b.m.src.ReadAt(p[n:], b.m.bodyOff+off-int64(len(b.m.bodyHead)))
	return n + k, err
}

// bodyTexts returns what the body test matches against (RFC 5173 §5):
// :raw the undecoded body; :text the decoded text parts; :content the
// decoded parts whose type matches.
func (m *Message) bodyTexts(transform string, types []string) []string {
	key := transform + "\x00" + strings.Join(types, "\x00")
	if v, ok := m.bodyCache[key]; ok {
		return v
	}
	v := m.computeBodyTexts(transform, types)
	if m.bodyCache == nil {
		m.bodyCache = map[string][]string{}
	}
	m.bodyCache[key] = v
	return v
}

func (m *Message) computeBodyTexts(transform string, types []string) []string {
	body, _, _ := m.BodyRaw()
	if transform == "raw" {
		if len(body) == 0 {
			return nil // pigeonhole: an empty body is no value
		}
		return []string{string(body)}
	}
	if !m.hasSep {
		return nil // no body: no part has one (RFC 5173 §5)
	}
	ct, cte := m.topType()
	var parts []part
	collectParts(ct, cte, body, 0, &parts)
	var out []string
	for _, p := range parts {
		if !wantPart(transform, types, p.ctype) {
			continue
		}
		t := p.text
		if transform == "text" && p.ctype == "text/html" {
			t = htmlToText(t)
		}
		out = append(out, t)
	}
	return out
}

// topType is the message's Content-Type and Content-Transfer-Encoding
// (the first of each).
func (m *Message) topType() (ct, cte string) {
	for _, f := range m.fields {
		switch f.name {
		case "content-type":
			if ct == "" {
				ct = f.value
			}
		case "content-transfer-encoding":
			if cte == "" {
				cte = f.value
			}
		}
	}
	return ct, cte
}

// wantPart says whether a part of media type ctype is one of the values
// of a body test with transform :text (the text/ parts) or :content
// types (RFC 5173 §5.2: "" is every part, "text" every text/ type).
func wantPart(transform string, types []string, ctype string) bool {
	if transform == "text" {
		return strings.HasPrefix(ctype, "text/") || ctype == ""
	}
	for _, want := range types {
		mt, sub, hasSub := strings.Cut(ctype, "/")
		w, wsub, wHasSub := strings.Cut(want, "/")
		if want == "" || (w == mt && (!wHasSub || (hasSub && wsub == sub))) {
			return true
		}
	}
	return false
}

type part struct {
	ctype string
	text  string
}

func collectParts(ct, cte string, body []byte, depth int, out *[]part) {
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		mt, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	mt = strings.ToLower(mt)
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" && depth < 10 {
		// Split as the streamed walk does (scanParts), so both paths
		// see the same parts.
		scanParts(bytes.NewReader(body), 0, int64(len(body)), params["boundary"], func(ps, pn, nl int64) (bool, error) {
			inner := NewMessage(body[ps : ps+pn+nl])
			if !inner.hasSep {
				return false, nil // no header end: no body, no value
			}
			ib, _, _ := inner.BodyRaw()
			ib = ib[:max(0, int64(len(ib))-nl)]
			ict, icte := inner.topType()
			collectParts(ict, icte, ib, depth+1, out)
			return false, nil
		})
		return
	}
	if mt == "message/rfc822" && depth < 10 {
		inner := NewMessage(body)
		*out = append(*out, part{ctype: mt, text: headerText(body[:inner.headerLen])})
		var ict, icte string
		for _, f := range inner.fields {
			if f.name == "content-type" && ict == "" {
				ict = f.value
			}
			if f.name == "content-transfer-encoding" && icte == "" {
				icte = f.value
			}
		}
		ib, _, _ := inner.BodyRaw()
		collectParts(ict, icte, ib, depth+1, out)
		return
	}
	*out = append(*out, part{ctype: mt, text: decodePart(body, cte, params["charset"])})
}

// headerText is a message/rfc822 part's value: pigeonhole's is the
// embedded message's header lines, each ended by CRLF, not its body.
func headerText(h []byte) string {
	return strings.ReplaceAll(strings.ReplaceAll(string(h), "\r\n", "\n"), "\n", "\r\n")
}

func decodePart(body []byte, cte, charset string) string {
	var r io.Reader = bytes.NewReader(body)
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &stripSpace{r: r})
	}
	b, err := io.ReadAll(r)
	if err != nil && len(b) == 0 && !strings.EqualFold(strings.TrimSpace(cte), "base64") {
		// Undecodable QP stays as it is; undecodable base64 is no text
		// (dovecot's decoder skips it).
		b = body
	}
	if cs := strings.ToLower(charset); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if rd, err := charsetReader(cs, bytes.NewReader(b)); err == nil {
			if d, err := io.ReadAll(rd); err == nil {
				b = d
			}
		}
	} else if !utf8.Valid(b) {
		b = []byte(strings.ToValidUTF8(string(b), "\uFFFD"))
	}
	return string(b)
}

type stripSpace struct{ r io.Reader }

func (s *stripSpace) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for i := 0; i < n; i++ {
		if c := p[i]; c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			p[j] = c
			j++
		}
	}
	return j, err
}
