package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// BINARY[section] and BINARY.SIZE[section] (RFC 3516 §4.2, §4.3) as
// dovecot answers them, streamed: the section's content-transfer-encoding
// is undone (base64, quoted-printable; 7bit, 8bit, binary and none are as
// stored) and nothing else: no charset conversion (go-imap's
// ExtractBinarySection goes through go-message, which turns a text part
// into UTF-8 once go-message/charset is linked in). A section that holds
// other parts is sent with each leaf decoded: BINARY[] of a whole message,
// of a multipart, of a message/rfc822 part. Where a part was decoded, its
// Content-Transfer-Encoding field becomes "binary", moved to the end of
// the header (dovecot's rewrite),
// and the data goes in a literal8 (dovecot sends "~{n}" whenever it
// decoded something, NUL or not). An encoding it does not know fails the
// FETCH with [UNKNOWN-CTE] (§4.3 MUST), broken base64 with [PARSE], as
// dovecot's.
//
// Part numbers follow go-imap's findMessagePart (bigpart.go findPart):
// part 1 of a message that is not multipart is its body, a message/rfc822
// part is entered for the next number.

var (
	errUnknownCTE  = errors.New("imap: unknown content-transfer-encoding")
	errBadEncoding = errors.New("imap: content-transfer-encoding does not decode")
)

// binaryFailure turns a writeBinary error into the FETCH's tagged NO.
func binaryFailure(err error) error {
	if errors.Is(err, errUnknownCTE) {
		return errNo(imap.ResponseCode("UNKNOWN-CTE"), "Unknown Content-Transfer-Encoding")
	}
	return errNo(imap.ResponseCodeParse, "Invalid data in MIME part")
}

// maxRawHeader bounds a header read whole (one MIME header).
const maxRawHeader = 1 << 20

// writeBinary writes BINARY[path] of the CRLF message in r to w and
// reports whether something was decoded. A part that does not exist
// writes nothing (an empty answer, as for BODY[]).
func writeBinary(w io.Writer, r io.Reader, path []int) (decoded bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	hdr, err := readRawHeader(br)
	if err != nil {
		return false, err
	}
	if len(path) == 0 {
		return writeEntity(w, hdr, br, true, "", 0)
	}
	var body io.Reader = br
	ct, _ := entityType(hdr, "")
	if !strings.HasPrefix(ct, "multipart/") && path[0] == 1 {
		path = path[1:]
	}
	parent := ""
	for _, n := range path {
		// Into an encapsulated message (go-imap's openMessagePart).
		if ct, _ := entityType(hdr, parent); ct == "message/rfc822" || ct == "message/global" {
			eb := bufio.NewReader(body)
			if hdr, err = readRawHeader(eb); err != nil {
				return false, err
			}
			body = eb
		}
		ct, params := entityType(hdr, parent)
		if !strings.HasPrefix(ct, "multipart/") || params["boundary"] == "" {
			if n != 1 {
				return false, nil
			}
			continue
		}
		if n < 1 {
			return false, nil
		}
		ph, pb, ok, err := nthPart(body, params["boundary"], n)
		if err != nil || !ok {
			return false, err
		}
		parent, hdr, body = ct, ph, pb
	}
	// The section's content: for a message/rfc822 part the whole
	// encapsulated message, else the body.
	if ct, _ := entityType(hdr, parent); ct == "message/rfc822" || ct == "message/global" {
		eb := bufio.NewReader(body)
		ehdr, err := readRawHeader(eb)
		if err != nil {
			return false, err
		}
		return writeEntity(w, ehdr, eb, true, "", 0)
	}
	return writeEntity(w, hdr, body, false, parent, 0)
}

// nthPart returns the header and a reader of the body of part n of the
// multipart body.
func nthPart(body io.Reader, boundary string, n int) (hdr []byte, part io.Reader, ok bool, err error) {
	br := bufio.NewReader(body)
	// Skip the preamble.
	first, err := skipToDelimiter(br, boundary)
	if err != nil || first == nil || isCloseDelimiter(first, boundary) {
		return nil, nil, false, err
	}
	for i := 1; ; i++ {
		pr := &partReader{br: br, boundary: boundary}
		pb := bufio.NewReader(pr)
		if i == n {
			h, err := readRawHeader(pb)
			return h, pb, err == nil, err
		}
		if _, err := io.Copy(io.Discard, pb); err != nil {
			return nil, nil, false, err
		}
		if pr.delim == nil || isCloseDelimiter(pr.delim, boundary) {
			return nil, nil, false, nil
		}
	}
}

// skipToDelimiter reads lines up to and including the first delimiter
// line and returns it (nil at the end of the input).
func skipToDelimiter(br *bufio.Reader, boundary string) ([]byte, error) {
	atStart := true
	for {
		line, err := br.ReadSlice('\n')
		if atStart && isDelimiter(line, boundary) {
			return bytes.Clone(line), nil
		}
		atStart = len(line) > 0 && line[len(line)-1] == '\n'
		switch {
		case err == io.EOF:
			return nil, nil
		case err != nil && err != bufio.ErrBufferFull:
			return nil, err
		}
	}
}

// entityType returns the media type and parameters of a header, with
// RFC 2045 §5.2's default (message/rfc822 in a multipart/digest).
func entityType(hdr []byte, parent string) (string, map[string]string) {
	v, ok := headerValue(hdr, "content-type")
	if !ok {
		if parent == "multipart/digest" {
			return "message/rfc822", nil
		}
		return "text/plain", nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if mt == "" && err != nil {
		return "text/plain", nil
	}
	return strings.ToLower(mt), params
}

// headerValue returns the unfolded value of the first field name, or of
// the last one if last.
func headerValue(hdr []byte, name string, last ...bool) (string, bool) {
	val, found := "", false
	for _, f := range headerFields(hdr) {
		k, v, ok := strings.Cut(unfold(string(f)), ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			val, found = strings.TrimSpace(v), true
			if len(last) == 0 || !last[0] {
				break
			}
		}
	}
	return val, found
}

// transferEncoding returns a header's content-transfer-encoding in lower
// case, comments (RFC 822) left out; "" when there is none. Of two
// fields the last counts, as in dovecot.
func transferEncoding(hdr []byte) string {
	v, _ := headerValue(hdr, "content-transfer-encoding", true)
	var b strings.Builder
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0 && c != ' ' && c != '\t':
			b.WriteByte(c)
		}
	}
	return strings.ToLower(b.String())
}

// writeEntity writes an entity (its header hdr, when withHeader, and its
// body) with every leaf part decoded.
func writeEntity(w io.Writer, hdr []byte, body io.Reader, withHeader bool, parent string, depth int) (bool, error) {
	ct, params := entityType(hdr, parent)
	switch {
	case strings.HasPrefix(ct, "multipart/") && params["boundary"] != "" && depth < maxMIMEDepth:
		if withHeader {
			if _, err := w.Write(hdr); err != nil {
				return false, err
			}
		}
		return writeMultipart(w, body, ct, params["boundary"], depth)
	case (ct == "message/rfc822" || ct == "message/global") && depth < maxMIMEDepth:
		if withHeader {
			if _, err := w.Write(hdr); err != nil {
				return false, err
			}
		}
		eb := bufio.NewReader(body)
		ehdr, err := readRawHeader(eb)
		if err != nil {
			return false, err
		}
		return writeEntity(w, ehdr, eb, true, "", depth+1)
	}
	var r io.Reader
	decoded := true
	bb := bufio.NewReader(body)
	_, empty := bb.Peek(1)
	switch cte := transferEncoding(hdr); {
	case cte == "" || cte == "7bit" || cte == "8bit" || cte == "binary" || empty != nil:
		// An empty body is left as it is, whatever its encoding
		// (dovecot does not rewrite its header either).
		r, decoded = bb, false
		if empty != nil && empty != io.EOF {
			return false, empty
		}
	case cte == "base64":
		r = base64.NewDecoder(base64.StdEncoding, &base64Text{r: bb})
	case cte == "quoted-printable":
		r = &qpReader{br: bb}
	default:
		return false, errUnknownCTE
	}
	if withHeader {
		h := hdr
		if decoded {
			h = binaryHeader(hdr)
		}
		if _, err := w.Write(h); err != nil {
			return false, err
		}
	}
	if _, err := io.Copy(w, r); err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return decoded, errBadEncoding
		}
		return decoded, err
	}
	return decoded, nil
}

// binaryHeader returns hdr without its Content-Transfer-Encoding fields
// and with "Content-Transfer-Encoding: binary" as the last field, where
// dovecot puts it.
func binaryHeader(hdr []byte) []byte {
	fields := headerFields(hdr)
	var out bytes.Buffer
	for _, f := range fields {
		k, _, _ := strings.Cut(string(f), ":")
		if !strings.EqualFold(strings.TrimSpace(k), "content-transfer-encoding") {
			out.Write(f)
		}
	}
	out.WriteString("Content-Transfer-Encoding: binary\r\n")
	out.Write(hdr[len(joinLen(fields)):])
	return out.Bytes()
}

// writeMultipart writes a multipart body: preamble, delimiters and
// epilogue as they are, each part through writeEntity.
func writeMultipart(w io.Writer, body io.Reader, ct, boundary string, depth int) (bool, error) {
	br := bufio.NewReader(body)
	// The preamble, up to the first delimiter line.
	atStart := true
	var delim []byte
	for {
		line, err := br.ReadSlice('\n')
		if atStart && isDelimiter(line, boundary) {
			delim = bytes.Clone(line)
			break
		}
		if _, werr := w.Write(line); werr != nil {
			return false, werr
		}
		atStart = len(line) > 0 && line[len(line)-1] == '\n'
		switch {
		case err == io.EOF:
			return false, nil
		case err != nil && err != bufio.ErrBufferFull:
			return false, err
		}
	}
	decoded := false
	for {
		if _, err := w.Write(delim); err != nil {
			return decoded, err
		}
		pr := &partReader{br: br, boundary: boundary}
		pb := bufio.NewReader(pr)
		hdr, err := readRawHeader(pb)
		if err != nil {
			return decoded, err
		}
		d, err := writeEntity(w, hdr, pb, true, ct, depth+1)
		decoded = decoded || d
		if err != nil {
			return decoded, err
		}
		if _, err := io.Copy(io.Discard, pb); err != nil {
			return decoded, err
		}
		if pr.delim == nil {
			return decoded, nil // no closing delimiter
		}
		if _, err := w.Write(pr.held); err != nil {
			return decoded, err
		}
		if isCloseDelimiter(pr.delim, boundary) {
			if _, err := w.Write(pr.delim); err != nil {
				return decoded, err
			}
			_, err := io.Copy(w, br) // the epilogue
			return decoded, err
		}
		delim = pr.delim
	}
}

// isDelimiter reports whether line (with its line end) is a delimiter
// line of boundary, closing or not (RFC 2046 §5.1.1: "--" boundary,
// optionally "--", then transport padding).
func isDelimiter(line []byte, boundary string) bool {
	rest, ok := bytes.CutPrefix(line, []byte("--"+boundary))
	if !ok {
		return false
	}
	rest = bytes.TrimPrefix(rest, []byte("--"))
	return len(bytes.TrimRight(rest, " \t\r\n")) == 0
}

func isCloseDelimiter(line []byte, boundary string) bool {
	return bytes.HasPrefix(line, []byte("--"+boundary+"--")) && isDelimiter(line, boundary)
}

// partReader reads one part of a multipart body from br: up to the next
// delimiter line, which it keeps in delim (nil at the end of the input),
// without the line end before it (held: it belongs to the delimiter).
type partReader struct {
	br       *bufio.Reader
	boundary string
	pending  []byte // ready to be read
	held     []byte // the last line end read, not yet known to be the part's
	midLine  bool   // the last read ended inside a line
	delim    []byte
	done     bool
}

func (p *partReader) Read(b []byte) (int, error) {
	// Whole lines while they fit, so a reader with a large buffer gets
	// it filled (lines of a base64 body are short).
	n := 0
	for n < len(b) {
		k, err := p.readSome(b[n:])
		n += k
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if p.br.Buffered() == 0 {
			break // do not wait for more input than is there
		}
	}
	return n, nil
}

func (p *partReader) readSome(b []byte) (int, error) {
	if len(p.pending) == 0 && !p.done {
		p.fast()
	}
	for len(p.pending) == 0 {
		if p.done {
			return 0, io.EOF
		}
		line, err := p.br.ReadSlice('\n')
		if !p.midLine && isDelimiter(line, p.boundary) {
			p.delim = bytes.Clone(line)
			p.done = true
			return 0, io.EOF
		}
		if len(line) > 0 {
			p.pending = append(p.pending[:0], p.held...)
			p.held = p.held[:0]
			content := line
			if line[len(line)-1] == '\n' {
				eol := 1
				if len(line) > 1 && line[len(line)-2] == '\r' {
					eol = 2
				}
				content = line[:len(line)-eol]
				p.held = append(p.held, line[len(line)-eol:]...)
				p.midLine = false
			} else {
				p.midLine = true
			}
			p.pending = append(p.pending, content...)
		}
		switch {
		case err == io.EOF:
			// No closing delimiter: the last line end is the part's.
			p.pending = append(p.pending, p.held...)
			p.held = p.held[:0]
			p.done = true
		case err != nil && err != bufio.ErrBufferFull:
			return 0, err
		}
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

// fast takes, without looking at each line, the buffered lines up to the
// first one that may be a delimiter ("--" at its start): most of a part.
func (p *partReader) fast() {
	if p.br.Buffered() == 0 {
		if _, err := p.br.Peek(1); err != nil {
			return // the line-wise path sees the end
		}
	}
	buf, _ := p.br.Peek(p.br.Buffered())
	if !p.midLine && bytes.HasPrefix(buf, []byte("--")) {
		return
	}
	end := bytes.Index(buf, []byte("\n--"))
	if end < 0 {
		end = bytes.LastIndexByte(buf, '\n')
		if end < 0 {
			return
		}
	}
	region := buf[:end+1]
	eol := 1
	if len(region) > 1 && region[len(region)-2] == '\r' {
		eol = 2
	}
	p.pending = append(append(p.pending[:0], p.held...), region[:len(region)-eol]...)
	p.held = append(p.held[:0], region[len(region)-eol:]...)
	p.midLine = false
	p.br.Discard(len(region))
}

// readRawHeader reads a header up to and including the empty line that
// ends it (or to the end of the input), as it is.
func readRawHeader(br *bufio.Reader) ([]byte, error) {
	var hdr []byte
	for {
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		if len(hdr) > maxRawHeader {
			return nil, errBadEncoding
		}
		if err == nil && (len(line) == 2 && line[0] == '\r' || len(line) == 1) {
			return hdr, nil
		}
		switch {
		case err == io.EOF:
			return hdr, nil
		case err != nil && err != bufio.ErrBufferFull:
			return nil, err
		}
	}
}

// base64Text passes base64 text without the white space (line ends,
// blanks) that RFC 2045 §6.8 lets an encoder put in and dovecot skips.
type base64Text struct{ r io.Reader }

func (t *base64Text) Read(p []byte) (int, error) {
	for {
		n, err := t.r.Read(p)
		k := 0
		for _, c := range p[:n] {
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				p[k] = c
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// binaryPipe is BINARY[path] of a message as a reader (writeBinary run
// in a goroutine); decoded and err are valid once Read returned an error.
type binaryPipe struct {
	pr      *io.PipeReader
	done    chan struct{}
	decoded bool
	err     error
}

func newBinaryPipe(r io.Reader, path []int) *binaryPipe {
	pr, pw := io.Pipe()
	b := &binaryPipe{pr: pr, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		// Few, large writes: each one through the pipe is a hand-over
		// between goroutines.
		bw := bufio.NewWriterSize(pw, 64<<10)
		d, err := writeBinary(bw, r, path)
		if err == nil {
			err = bw.Flush()
		}
		b.decoded, b.err = d, err
		pw.CloseWithError(err)
	}()
	return b
}

func (b *binaryPipe) Read(p []byte) (int, error) {
	n, err := b.pr.Read(p)
	if err != nil {
		<-b.done
	}
	return n, err
}

// Close stops the goroutine (a reader may stop early) and waits for it.
func (b *binaryPipe) Close() error {
	b.pr.CloseWithError(io.ErrClosedPipe)
	<-b.done
	return nil
}

// countWriter counts what is written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// checkBinary decodes each BINARY section of items once, to fail the
// FETCH before its response for the message begins (content, or the
// big message's stream; for the latter the pass is kept as the first of
// bigFetch.section's two).
func (c *conn) checkBinary(items []fetchItem, content []byte, big *bigFetch) error {
	for _, it := range items {
		if it.kind != "BINARY[]" && it.kind != "BINARY.SIZE[]" {
			continue
		}
		var err error
		if big != nil {
			r, cl, oerr := c.openStream(big.f, big.mi, false)
			if oerr != nil {
				continue // the item itself reports it
			}
			var from, to int64 = 0, 1<<63 - 1
			if p := it.section.Partial; p != nil && it.kind != "BINARY.SIZE[]" {
				from, to = p.Offset, p.Offset+p.Size
			}
			scan := &rangeScan{from: from, to: to}
			bw := bufio.NewWriterSize(scan, 64<<10)
			var decoded bool
			decoded, err = writeBinary(bw, r, it.section.Part)
			bw.Flush()
			cl.Close()
			if err == nil {
				if big.binScans == nil {
					big.binScans = map[string]binScan{}
				}
				big.binScans[it.name] = binScan{size: scan.n, nul: scan.nul, decoded: decoded}
			}
		} else {
			_, err = writeBinary(io.Discard, bytes.NewReader(content), it.section.Part)
		}
		if errors.Is(err, errUnknownCTE) || errors.Is(err, errBadEncoding) {
			return err
		}
	}
	return nil
}

// qpReader decodes quoted-printable (RFC 2045 §6.7) as dovecot does:
// blanks at a line end are dropped, "=" at a line end is a soft line
// break, "=XY" a byte; an "=" followed by anything else is errBadEncoding
// (dovecot: [PARSE]). Go's mime/quotedprintable lets such an "=" through.
// A line is taken in pieces of the reader's buffer, so a long one costs
// no more memory: what a piece ends with that the rest of the line may
// change (blanks, "=", "=X") waits in carry.
type qpReader struct {
	br      *bufio.Reader
	carry   []byte
	pending []byte
	err     error
}

func (q *qpReader) Read(p []byte) (int, error) {
	for len(q.pending) == 0 && q.err == nil {
		chunk, err := q.br.ReadSlice('\n')
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			q.err = err
			break
		}
		text := append(q.carry, chunk...)
		q.carry = nil
		eol := false
		if n := len(text); n > 0 && text[n-1] == '\n' {
			text, eol = text[:n-1], true
			if n := len(text); n > 0 && text[n-1] == '\r' {
				text = text[:n-1]
			}
		}
		if !eol && err == bufio.ErrBufferFull {
			// Keep back what the next piece may still change.
			keep := len(text) - len(bytes.TrimRight(text, " \t"))
			if i := bytes.LastIndexByte(text, '='); i >= 0 && i >= len(text)-keep-2 {
				keep = len(text) - i
			}
			q.carry = bytes.Clone(text[len(text)-keep:])
			text = text[:len(text)-keep]
		} else {
			text = bytes.TrimRight(text, " \t")
		}
		soft := false
		for i := 0; i < len(text); i++ {
			c := text[i]
			if c != '=' {
				q.pending = append(q.pending, c)
				continue
			}
			if i == len(text)-1 && q.carry == nil {
				soft = true
				break
			}
			if i+2 >= len(text) || !isHex(text[i+1]) || !isHex(text[i+2]) {
				q.err = errBadEncoding
				break
			}
			q.pending = append(q.pending, unhex(text[i+1])<<4|unhex(text[i+2]))
			i += 2
		}
		if eol && !soft && q.err == nil {
			q.pending = append(q.pending, '\r', '\n')
		}
		if err == io.EOF && q.err == nil {
			q.err = io.EOF
		}
	}
	if len(q.pending) > 0 {
		n := copy(p, q.pending)
		q.pending = q.pending[n:]
		return n, nil
	}
	return 0, q.err
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
