package sieve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Body tests on big messages (RFC 5173). A body, or a MIME part of one,
// up to bodyThreshold bytes is read into memory and matched as a string
// (bodyTexts, collectParts: the path every differential test holds to
// pigeonhole). A bigger one is never held: its MIME structure is found by
// scanning the boundary lines from the source (an io.ReaderAt), each
// value (the raw body, a decoded leaf part, a message/rfc822 part) is a
// reader re-opened for each key, decoded on the fly (base64, QP, charset,
// invalid UTF-8, text/html to text, html2text.go) and matched with a bounded buffer:
// :contains keeps an overlap of len(key)-1 bytes, :is/:value compare as
// the bytes pass, :matches and :regex run Go's regexp engine on the
// stream (a :matches pattern becomes an equivalent anchored regexp). The
// values are those of the in-memory path, one per part, as pigeonhole
// matches each part as a whole; like pigeonhole's, the body test sets no
// match variables, so none are kept.

// bodyThreshold is the size from which a body or part is streamed (a
// variable so tests can stream everything).
var bodyThreshold int64 = 1 << 20

// bodyValue is one value of a body test: a string (small) or a reader
// opened afresh for each key.
type bodyValue struct {
	small bool
	text  string
	open  func() io.Reader
}

// errAt is an io.ReaderAt that remembers its first read error, so a
// failed read is reported rather than taken for the end of a part; it
// fails once ctx is done (the script's time budget bounds a long scan).
type errAt struct {
	ctx context.Context
	r   io.ReaderAt
	err *error
}

func (e errAt) ReadAt(p []byte, off int64) (int, error) {
	if err := e.ctx.Err(); err != nil {
		if *e.err == nil {
			*e.err = err
		}
		return 0, err
	}
	n, err := e.r.ReadAt(p, off)
	if err != nil && err != io.EOF && *e.err == nil {
		*e.err = err
	}
	return n, err
}

// walkBody calls fn with each value of a body test with transform and
// types, in the order of the parts, until fn says stop. The error is a
// read error of the message or fn's.
func (m *Message) walkBody(ctx context.Context, transform string, types []string, fn func(bodyValue) (bool, error)) error {
	var readErr error
	src := errAt{ctx: ctx, r: bodyAt{m}, err: &readErr}
	n := m.bodyLen()
	var err error
	if transform == "raw" {
		if n > 0 {
			_, err = fn(sectionValue(src, 0, n))
		}
	} else if m.hasSep {
		ct, cte := m.topType()
		emit := func(ctype string, v bodyValue) (bool, error) {
			if !wantPart(transform, types, ctype) {
				return false, nil
			}
			if transform == "text" && ctype == "text/html" {
				if v.small {
					v.text = htmlToText(v.text)
				} else {
					open := v.open
					v.open = func() io.Reader { return newHTML2Text(open()) }
				}
			}
			return fn(v)
		}
		_, err = walkSection(src, 0, n, ct, cte, 0, emit)
	}
	if readErr != nil {
		return readErr
	}
	return err
}

// sectionValue is src[off:off+n] as a value.
func sectionValue(src io.ReaderAt, off, n int64) bodyValue {
	if n <= bodyThreshold {
		b := make([]byte, n)
		k, _ := src.ReadAt(b, off)
		return bodyValue{small: true, text: string(b[:k])}
	}
	return bodyValue{open: func() io.Reader { return io.NewSectionReader(src, off, n) }}
}

// walkSection is collectParts on src[off:off+n] without reading it
// whole: small sections go to collectParts, big multiparts are split at
// their boundary lines, big message/rfc822 parts are a value and then
// walked, big leaves are a decoding reader.
func walkSection(src io.ReaderAt, off, n int64, ct, cte string, depth int, emit func(string, bodyValue) (bool, error)) (bool, error) {
	if n <= bodyThreshold {
		b := make([]byte, n)
		k, _ := src.ReadAt(b, off)
		var parts []part
		collectParts(ct, cte, b[:k], depth, &parts)
		for _, p := range parts {
			if stop, err := emit(p.ctype, bodyValue{small: true, text: p.text}); stop || err != nil {
				return stop, err
			}
		}
		return false, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		mt, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	mt = strings.ToLower(mt)
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" && depth < 10 {
		stop, err := scanParts(src, off, n, params["boundary"], func(ps, pn, nl int64) (bool, error) {
			inner, err := NewMessageReader(io.NewSectionReader(src, ps, pn+nl), pn+nl)
			if err != nil {
				return true, err
			}
			if !inner.hasSep {
				return false, nil // no header end: no body, no value
			}
			ict, icte := inner.topType()
			return walkSection(bodyAt{inner}, 0, max(0, inner.bodyLen()-nl), ict, icte, depth+1, emit)
		})
		return stop, err
	}
	if mt == "message/rfc822" && depth < 10 {
		inner, err := NewMessageReader(io.NewSectionReader(src, off, n), n)
		if err != nil {
			return true, err
		}
		h := make([]byte, inner.headerLen)
		k, _ := src.ReadAt(h, off)
		if stop, err := emit(mt, bodyValue{small: true, text: headerText(h[:k])}); stop || err != nil {
			return stop, err
		}
		ict, icte := inner.topType()
		return walkSection(bodyAt{inner}, 0, inner.bodyLen(), ict, icte, depth+1, emit)
	}
	charset := params["charset"]
	return emit(mt, bodyValue{open: func() io.Reader {
		return decodingReader(func() io.Reader { return io.NewSectionReader(src, off, n) }, cte, charset)
	}})
}

// scanParts calls fn with the offset and length of each part of the
// multipart body src[off:off+n] (the part's header included). It is the
// one splitter of both paths (collectParts too), line-based as dovecot's
// message parser: a line that starts with "--" boundary is a delimiter,
// the close delimiter if "--" follows the boundary (whatever comes after
// is ignored, as dovecot does); the line end before a delimiter belongs
// to it (nl, given to fn: a part's header may end on it, then the part
// has an empty body); the preamble and the epilogue are no parts; a part
// without a closing delimiter runs to the end. (The in-memory path used
// mime/multipart before, which differs on mixed line ends, trailing
// text after a boundary and unterminated ends.)
func scanParts(src io.ReaderAt, off, n int64, boundary string, fn func(ps, pn, nl int64) (bool, error)) (bool, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(src, off, n), 64<<10)
	dash := []byte("--" + boundary)
	var pos, start int64
	in := false
	prevNL := int64(0)
	for {
		ls := pos
		line, err := br.ReadSlice('\n')
		delim, closing := false, false
		if bytes.HasPrefix(line, dash) {
			// As dovecot: the boundary is a prefix of the line; "--"
			// after it closes.
			closing = bytes.HasPrefix(line[len(dash):], []byte("--"))
			delim = !closing
		}
		for err == bufio.ErrBufferFull {
			pos += int64(len(line))
			line, err = br.ReadSlice('\n')
		}
		pos += int64(len(line))
		if delim || closing {
			if in {
				end := max(ls-prevNL, start)
				if stop, err := fn(off+start, end-start, ls-end); stop || err != nil {
					return stop, err
				}
			}
			if closing {
				return false, nil
			}
			in, start = true, pos
		}
		switch {
		case bytes.HasSuffix(line, []byte("\r\n")):
			prevNL = 2
		case bytes.HasSuffix(line, []byte("\n")):
			prevNL = 1
		default:
			prevNL = 0
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return true, err
		}
	}
	if in && pos > start {
		return fn(off+start, pos-start, 0)
	}
	return false, nil
}

// decodingReader is decodePart as a stream: the transfer encoding
// undone (the raw text when decoding fails before the first byte; what
// was decoded when it fails later), then the charset converted to UTF-8,
// or invalid UTF-8 replaced by U+FFFD.
func decodingReader(open func() io.Reader, cte, charset string) io.Reader {
	var dec io.Reader
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		dec = quotedprintable.NewReader(open())
	case "base64":
		dec = base64.NewDecoder(base64.StdEncoding, &stripSpace{r: open()})
	default:
		dec = open()
	}
	raw := open
	if strings.EqualFold(strings.TrimSpace(cte), "base64") {
		// Undecodable base64 is no text (dovecot's decoder skips it).
		raw = func() io.Reader { return strings.NewReader("") }
	}
	var r io.Reader = &fallbackReader{dec: dec, raw: raw}
	if cs := strings.ToLower(charset); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if rd, err := charsetReader(cs, r); err == nil {
			r = rd
		}
		return r
	}
	return newRuneChunks(r, validUTF8())
}

// fallbackReader reads dec; an error before its first byte switches to
// raw (the undecoded text), a later one ends the stream.
type fallbackReader struct {
	dec     io.Reader
	raw     func() io.Reader
	started bool
	done    bool
}

func (f *fallbackReader) Read(p []byte) (int, error) {
	if f.done {
		return 0, io.EOF
	}
	n, err := f.dec.Read(p)
	switch {
	case n > 0:
		f.started = true
		if err != nil && err != io.EOF {
			f.done = true
		}
		return n, nil
	case err == nil || err == io.EOF:
		return 0, err
	case !f.started:
		f.started = true
		f.dec = f.raw()
		return f.dec.Read(p)
	}
	f.done = true
	return 0, io.EOF
}

// runeChunks applies fn to its input in chunks that end on a rune
// boundary (but at the end of input).
type runeChunks struct {
	r   io.Reader
	fn  func(dst, src []byte) []byte
	in  []byte
	buf []byte
	out []byte
	eof bool
}

func newRuneChunks(r io.Reader, fn func(dst, src []byte) []byte) *runeChunks {
	return &runeChunks{r: r, fn: fn, in: make([]byte, 0, 64<<10)}
}

func (c *runeChunks) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.eof && len(c.in) == 0 {
			return 0, io.EOF
		}
		if !c.eof {
			n, err := c.r.Read(c.in[len(c.in):cap(c.in)])
			c.in = c.in[:len(c.in)+n]
			if err == io.EOF {
				c.eof = true
			} else if err != nil {
				return 0, err
			}
		}
		safe := len(c.in)
		if !c.eof {
			safe = completeRunes(c.in)
		}
		c.buf = c.fn(c.buf[:0], c.in[:safe])
		c.out = c.buf
		c.in = c.in[:copy(c.in, c.in[safe:])]
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// completeRunes is the length of b without an incomplete rune at its end.
func completeRunes(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// validUTF8 is strings.ToValidUTF8(s, "\uFFFD") in chunks: each run of
// invalid bytes, across chunks too, becomes one U+FFFD.
func validUTF8() func(dst, src []byte) []byte {
	inRun := false
	return func(dst, src []byte) []byte {
		if utf8.Valid(src) {
			if len(src) > 0 {
				inRun = false
			}
			return append(dst, src...)
		}
		for i := 0; i < len(src); {
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n == 1 {
				if !inRun {
					dst = append(dst, "\uFFFD"...)
					inRun = true
				}
				i++
				continue
			}
			inRun = false
			dst = append(dst, src[i:i+n]...)
			i += n
		}
		return dst
	}
}

// foldChunk is foldUnicode in chunks.
func foldChunk(dst, src []byte) []byte {
	ascii := true
	for _, c := range src {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		for _, c := range src {
			dst = append(dst, foldByte(c))
		}
		return dst
	}
	return append(dst, foldUnicode(string(src))...)
}

// matchStream is matchOne on a value read from open (a fresh reader per
// call), without match variables (the body test sets none).
func (m *matcher) matchStream(open func() io.Reader, key string, re *regexp.Regexp) (bool, error) {
	switch m.typ {
	case "is", "value":
		c := compareStream(m.cmp, open(), key)
		if m.typ == "is" {
			return c == 0, nil
		}
		return relation(m.rel, c), nil
	case "contains":
		return containsStream(m.cmp, open(), key), nil
	case "matches":
		pat, fold, src := key, m.cmp != "i;octet", open
		if m.cmp == "i;unicode-casemap" {
			// globRunes (globBytes) drops a last lone "\".
			pat, fold = trimLoneBackslash(foldUnicode(key)), false
			src = func() io.Reader { return newRuneChunks(open(), foldChunk) }
		}
		if segs, ok := globSegments(pat); ok {
			return globStream(src(), segs, fold), nil
		}
		re, err := globRegexp(pat, fold)
		if err != nil {
			return false, &RuntimeError{Msg: "match pattern too complex for a big message part: " + err.Error()}
		}
		return re.MatchReader(bufio.NewReaderSize(src(), 64<<10)), nil
	case "regex":
		if re == nil {
			var err error
			if re, err = compileRegex(key, m.cmp); err != nil {
				return false, &RuntimeError{Msg: "invalid regular expression '" + key + "' for regex match: " + err.(*ScriptError).Msg}
			}
		}
		return re.MatchReader(bufio.NewReaderSize(open(), 64<<10)), nil
	}
	return false, nil
}

// compareStream is compare(cmp, value, key) with the value read from r
// (only the sign of the result counts).
func compareStream(cmp string, r io.Reader, key string) int {
	if cmp == "i;ascii-numeric" {
		return numericStream(r, key)
	}
	fold := cmp == "i;ascii-casemap"
	if cmp == "i;unicode-casemap" {
		r, key = newRuneChunks(r, foldChunk), foldUnicode(key)
	}
	buf := make([]byte, 64<<10)
	pos := 0
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if pos >= len(key) {
				return 1
			}
			x, y := c, key[pos]
			if fold {
				x, y = foldByte(x), foldByte(y)
			}
			if x != y {
				if x < y {
					return -1
				}
				return 1
			}
			pos++
		}
		if err != nil {
			break
		}
	}
	if pos < len(key) {
		return -1
	}
	return 0
}

// numericStream is i;ascii-numeric's compare with the value read from r.
func numericStream(r io.Reader, key string) int {
	nb, okb := numeric(key)
	br := bufio.NewReaderSize(r, 64<<10)
	c, err := br.ReadByte()
	if err != nil || !isDigit(c) {
		if !okb {
			return 0
		}
		return 1
	}
	if !okb {
		return -1
	}
	for err == nil && c == '0' {
		c, err = br.ReadByte()
	}
	diff, n := 0, 0
	for err == nil && isDigit(c) {
		if n >= len(nb) {
			return 1 // more digits than the key
		}
		if diff == 0 && c != nb[n] {
			diff = 1
			if c < nb[n] {
				diff = -1
			}
		}
		n++
		c, err = br.ReadByte()
	}
	if n < len(nb) {
		return -1
	}
	return diff
}

// containsStream is the :contains match with the value read from r: the
// last len(key)-1 bytes of each chunk are kept for the next one.
func containsStream(cmp string, r io.Reader, key string) bool {
	if cmp == "i;unicode-casemap" {
		r, key = newRuneChunks(r, foldChunk), foldUnicode(key)
	}
	if key == "" {
		return true
	}
	fold := cmp == "i;ascii-casemap"
	k := []byte(key)
	buf := make([]byte, 0, 64<<10+len(k))
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if fold && indexFold(buf, k) >= 0 || !fold && bytes.Contains(buf, k) {
			return true
		}
		if err != nil {
			return false
		}
		if keep := len(k) - 1; len(buf) > keep {
			buf = buf[:copy(buf, buf[len(buf)-keep:])]
		}
	}
}

// indexFold is the first index of key in b under ASCII case folding.
func indexFold(b, key []byte) int {
	lo := foldByte(key[0])
	up := lo
	if lo >= 'a' && lo <= 'z' {
		up = lo - 'a' + 'A'
	}
	// next finds the next position of c at or after i, -1 for none.
	next := func(c byte, i int) int {
		if j := bytes.IndexByte(b[i:], c); j >= 0 {
			return i + j
		}
		return -1
	}
	nl, nu := next(lo, 0), -1
	if up != lo {
		nu = next(up, 0)
	}
	for {
		i := nl
		if nu >= 0 && (i < 0 || nu < i) {
			i = nu
		}
		if i < 0 || i+len(key) > len(b) {
			return -1
		}
		if equalFoldASCII(string(b[i:i+len(key)]), string(key)) {
			return i
		}
		if i == nl {
			nl = next(lo, i+1)
		} else {
			nu = next(up, i+1)
		}
	}
}

// trimLoneBackslash drops a last "\" that escapes nothing.
func trimLoneBackslash(pat string) string {
	for i := 0; i < len(pat); i++ {
		if pat[i] == '\\' {
			if i == len(pat)-1 {
				return pat[:i]
			}
			i++
		}
	}
	return pat
}

// globSegments splits a :matches pattern without "?" and with at least
// one "*" into its literal pieces (the first anchored at the start, the
// last at the end; "" where the pattern starts or ends with "*"). The
// pattern must be valid UTF-8: then a piece can only match where
// globBytes' rune steps can put it.
func globSegments(pat string) ([]string, bool) {
	if !utf8.ValidString(pat) {
		return nil, false
	}
	var segs []string
	var lit strings.Builder
	stars := 0
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '\\':
			// A last lone "\" is itself, as in globFast.
			if i+1 < len(pat) {
				i++
			}
			lit.WriteByte(pat[i])
		case '?':
			return nil, false
		case '*':
			stars++
			segs = append(segs, lit.String())
			lit.Reset()
		default:
			lit.WriteByte(c)
		}
	}
	segs = append(segs, lit.String())
	return segs, stars > 0
}

// globStream matches the value read from r against segs (globSegments)
// in one pass: the first piece at the start, each middle piece at its
// leftmost place after the one before (which is where globBytes'
// shortest-first stars put it, if the match exists at all), the last
// at the end, after the middle ones. Only a piece's length of bytes is
// kept between reads.
func globStream(r io.Reader, segs []string, fold bool) bool {
	eq := func(a []byte, b string) bool {
		if fold {
			return equalFoldASCII(string(a), b)
		}
		return string(a) == b
	}
	buf := make([]byte, 0, 64<<10)
	eof := false
	fill := func() {
		if eof {
			return
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			eof = true
		}
	}
	// The first piece, at the start.
	first := segs[0]
	for len(buf) < len(first) && !eof {
		fill()
	}
	if len(buf) < len(first) || !eq(buf[:len(first)], first) {
		return false
	}
	buf = buf[:copy(buf, buf[len(first):])]
	// The middle pieces, each leftmost.
	for _, seg := range segs[1 : len(segs)-1] {
		if seg == "" {
			continue
		}
		k := []byte(seg)
		for {
			i := -1
			if fold {
				i = indexFold(buf, k)
			} else {
				i = bytes.Index(buf, k)
			}
			if i >= 0 {
				buf = buf[:copy(buf, buf[i+len(k):])]
				break
			}
			if eof {
				return false
			}
			if keep := len(k) - 1; len(buf) > keep {
				buf = buf[:copy(buf, buf[len(buf)-keep:])]
			}
			fill()
		}
	}
	// The last piece, at the end.
	last := segs[len(segs)-1]
	for !eof {
		if keep := len(last); len(buf) > keep && len(buf) > cap(buf)/2 {
			buf = buf[:copy(buf, buf[len(buf)-keep:])]
		}
		fill()
	}
	return len(buf) >= len(last) && eq(buf[len(buf)-len(last):], last)
}

// globRegexp is a :matches pattern as an anchored regexp with the same
// answer as globFast (the body test's in-memory matcher): "*" any text, "?" one character, "\" escapes;
// fold makes ASCII letters match either case (and nothing else).
func globRegexp(pat string, fold bool) (*regexp.Regexp, error) {
	var b, lit strings.Builder
	b.WriteString(`(?s)\A`)
	flush := func() {
		for _, r := range strings.ToValidUTF8(lit.String(), "\uFFFD") {
			if fold && r < utf8.RuneSelf && unicode.IsLetter(r) {
				b.WriteString("[" + string(unicode.ToLower(r)) + string(unicode.ToUpper(r)) + "]")
				continue
			}
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
		lit.Reset()
	}
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '\\':
			if i+1 < len(pat) {
				i++
			}
			lit.WriteByte(pat[i])
		case '*':
			flush()
			b.WriteString(`.*`)
		case '?':
			flush()
			b.WriteString(`.`)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	b.WriteString(`\z`)
	return regexp.Compile(b.String())
}
