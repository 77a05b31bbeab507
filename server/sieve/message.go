package sieve

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// Message is a parsed message for the interpreter: its header fields in
// order (unfolded) and the raw body.
type Message struct {
	fields []field
	body   *lazyBody
	size   int
	hasSep bool

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

// lazyBody is the body: what followed the header in the parsed prefix
// (head), then the rest of the message in src from off to end, read into
// memory only when a body test asks for it (bounded by the delivery's
// message size limit).
type lazyBody struct {
	head     []byte
	src      io.ReaderAt
	off, end int64
	once     sync.Once
	all      []byte
	err      error
}

func (b *lazyBody) bytes() ([]byte, error) {
	b.once.Do(func() {
		if b.src == nil || b.end <= b.off {
			b.all = b.head
			return
		}
		all := make([]byte, int64(len(b.head))+b.end-b.off)
		copy(all, b.head)
		if _, err := b.src.ReadAt(all[len(b.head):], b.off); err != nil && err != io.EOF {
			b.err = fmt.Errorf("sieve: read message body: %w", err)
		}
		b.all = all
	})
	return b.all, b.err
}

// NewMessage parses raw (CRLF or LF line ends). It never fails: lines
// that are not header fields end the header, as most MUAs treat them.
func NewMessage(raw []byte) *Message {
	return NewMessageAt(raw, nil, int64(len(raw)))
}

// NewMessageAt parses a message of size bytes in src of which head is a
// prefix holding at least the whole header section (up to its empty
// line, as msgspool.HeaderPrefix returns it); the body stays in src and
// is read only when a body test runs. src may be nil when head is the
// whole message.
func NewMessageAt(head []byte, src io.ReaderAt, size int64) *Message {
	m := &Message{fields: make([]field, 0, 16), size: int(size)}
	raw := head
	rest := raw
	var name, orig string
	var val []byte
	flush := func() {
		if name != "" {
			m.fields = append(m.fields, field{name: name, orig: orig, value: strings.TrimSpace(string(val))})
		}
		name, val = "", nil
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			m.hasSep = true
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				val = append(val, line...)
			}
			continue
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 || bytes.ContainsAny(line[:c], " \t") {
			// Not a header field: the body starts here.
			flush()
			rest = append(line[:len(line):len(line)], append([]byte("\n"), rest...)...)
			m.hasSep = true
			break
		}
		flush()
		orig = string(line[:c])
		name = strings.ToLower(orig)
		val = append([]byte(nil), line[c+1:]...)
	}
	flush()
	m.body = &lazyBody{head: rest, src: src, off: int64(len(head)), end: size}
	return m
}

func (m *Message) clone() *Message {
	return &Message{fields: append([]field(nil), m.fields...), body: m.body, size: m.size, hasSep: m.hasSep}
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
func (m *Message) MessageSize() int { return m.size }

// BodyRaw returns the body and whether the message had one.
func (m *Message) BodyRaw() ([]byte, bool, error) {
	b, err := m.body.bytes()
	return b, m.hasSep, err
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
	body, err := m.body.bytes()
	if err != nil {
		return nil
	}
	if transform == "raw" {
		return []string{string(body)}
	}
	ct := ""
	cte := ""
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
	var parts []part
	collectParts(ct, cte, body, 0, &parts)
	var out []string
	for _, p := range parts {
		if transform == "text" {
			if strings.HasPrefix(p.ctype, "text/") || p.ctype == "" {
				t := p.text
				if p.ctype == "text/html" {
					t = htmlToText(t)
				}
				out = append(out, t)
			}
			continue
		}
		for _, want := range types {
			mt, sub, hasSub := strings.Cut(p.ctype, "/")
			w, wsub, wHasSub := strings.Cut(want, "/")
			if want == "" || (w == mt && (!wHasSub || (hasSub && wsub == sub))) {
				out = append(out, p.text)
				break
			}
		}
	}
	return out
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
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(io.LimitReader(p, 32<<20))
			collectParts(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), b, depth+1, out)
		}
		return
	}
	if mt == "message/rfc822" && depth < 10 {
		inner := NewMessage(body)
		*out = append(*out, part{ctype: mt, text: string(body)})
		var ict, icte string
		for _, f := range inner.fields {
			if f.name == "content-type" && ict == "" {
				ict = f.value
			}
			if f.name == "content-transfer-encoding" && icte == "" {
				icte = f.value
			}
		}
		collectParts(ict, icte, inner.body.head, depth+1, out)
		return
	}
	*out = append(*out, part{ctype: mt, text: decodePart(body, cte, params["charset"])})
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
	if err != nil && len(b) == 0 {
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

var tagRE = regexp.MustCompile(`(?s)<[^>]*>`)

func htmlToText(s string) string {
	return strings.Join(strings.Fields(tagRE.ReplaceAllString(s, " ")), " ")
}
