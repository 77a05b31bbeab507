package sieve

import (
	"bufio"
	"bytes"
	"html"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The text of a text/html part for `body :text` (RFC 5173 §5.2 leaves
// the conversion to the implementation). pigeonhole uses dovecot's
// mail-html2text, so this is the same state machine, written from its
// observable rules: text is kept byte for byte (white space and line
// ends too); a tag ("<" to ">", quoted attribute values skipped) becomes
// one space unless the text so far is empty or ends in a space or LF;
// <!-- comments --> vanish; <script> and <style> vanish with their
// content up to the closing tag, which counts as a space; CDATA sections
// are kept as text; "&name;" and "&#n;"/"&#xh;" are decoded (a name
// unknown is dropped; an "&" not followed by a ";" within 9 characters
// or before white space is dropped). Input that ends inside a
// construct that needs more input to be recognised is dropped from its
// start, as dovecot never receives the rest. Lookahead is at most 12
// bytes, so the conversion streams.

const (
	hText = iota
	hTag
	hTagDQ
	hTagDQEsc
	hTagSQ
	hTagSQEsc
	hComment
	hCommentEnd
	hScript
	hStyle
	hCDATA
)

func htmlSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// html2text converts HTML read from br as a stream.
type html2text struct {
	br    *bufio.Reader
	state int
	wrote bool
	last  byte
	out   []byte
	done  bool
}

func newHTML2Text(r io.Reader) *html2text {
	return &html2text{br: bufio.NewReaderSize(r, 64<<10)}
}

// htmlToText is the conversion of a whole string.
func htmlToText(s string) string {
	b, _ := io.ReadAll(newHTML2Text(strings.NewReader(s)))
	return string(b)
}

func (h *html2text) Read(p []byte) (int, error) {
	for len(h.out) < len(p) && !h.done {
		h.step()
	}
	if len(h.out) == 0 {
		return 0, io.EOF
	}
	n := copy(p, h.out)
	h.out = h.out[:copy(h.out, h.out[n:])]
	return n, nil
}

func (h *html2text) emit(b ...byte) {
	if len(b) == 0 {
		return
	}
	h.out = append(h.out, b...)
	h.wrote, h.last = true, b[len(b)-1]
}

func (h *html2text) addSpace() {
	if h.wrote && h.last != ' ' && h.last != '\n' {
		h.emit(' ')
	}
}

// peek returns up to n bytes after the current one.
func (h *html2text) peek(n int) []byte {
	b, _ := h.br.Peek(n)
	return b
}

func (h *html2text) skip(n int) { h.br.Discard(n) }

// closing reports whether "<" + rest starts the closing tag end
// (case-insensitively): 1 yes, 0 no, -1 the input ends too early to say
// (then dovecot drops the rest).
func (h *html2text) closing(end string) int {
	rest := h.peek(len(end) - 1)
	n := len(rest)
	if !strings.EqualFold(string(rest), end[1:1+n]) {
		return 0
	}
	if n < len(end)-1 {
		return -1
	}
	return 1
}

func (h *html2text) step() {
	c, err := h.br.ReadByte()
	if err != nil {
		h.done = true
		return
	}
	switch h.state {
	case hText:
		switch c {
		case '<':
			h.tagStart()
		case '&':
			h.entity()
		default:
			h.emit(c)
		}
	case hTag:
		switch c {
		case '"':
			h.state = hTagDQ
		case '\'':
			h.state = hTagSQ
		case '>':
			h.state = hText
			h.addSpace()
		}
	case hTagDQ:
		switch c {
		case '"':
			h.state = hTag
		case '\\':
			h.state = hTagDQEsc
		}
	case hTagDQEsc:
		h.state = hTagDQ
	case hTagSQ:
		switch c {
		case '\'':
			h.state = hTag
		case '\\':
			h.state = hTagSQEsc
		}
	case hTagSQEsc:
		h.state = hTagSQ
	case hComment:
		if c == '-' {
			next := h.peek(1)
			if len(next) == 0 {
				h.done = true
				return
			}
			if next[0] == '-' {
				h.state = hCommentEnd
				h.skip(1)
			}
		}
	case hCommentEnd:
		if c == '>' {
			h.state = hText
		} else if !htmlSpace(c) {
			h.state = hComment
		}
	case hScript, hStyle:
		if c == '<' {
			end := "</script>"
			if h.state == hStyle {
				end = "</style>"
			}
			switch h.closing(end) {
			case -1:
				h.done = true
			case 1:
				h.addSpace()
				h.state = hText
				h.skip(len(end) - 1)
			}
		}
	case hCDATA:
		if c == ']' {
			switch h.closing("]]>") {
			case -1:
				h.done = true
				return
			case 1:
				h.state = hText
				h.skip(2)
				return
			}
		}
		h.emit(c)
	}
}

// tagStart is after "<" in text: a comment, script, style, CDATA or
// another tag.
func (h *html2text) tagStart() {
	p := h.peek(12)
	name := func(n int, s string) bool {
		return len(p) >= n+1 && strings.EqualFold(string(p[:n]), s) && (htmlSpace(p[n]) || p[n] == '>')
	}
	switch {
	case bytes.HasPrefix(p, []byte("!--")):
		h.state = hComment
		h.skip(3)
	case name(6, "script"):
		h.state = hScript
		h.skip(7)
	case name(5, "style"):
		h.state = hStyle
		h.skip(6)
	case len(p) >= 8 && strings.EqualFold(string(p[:8]), "![CDATA["):
		h.state = hCDATA
		h.skip(8)
	default:
		if len(p) < 12 && !bytes.ContainsFunc(p, func(r rune) bool { return r < utf8.RuneSelf && (htmlSpace(byte(r)) || r == '>') }) {
			h.done = true // the tag name never ends: dropped
			return
		}
		h.state = hTag
	}
}

// entity is after "&" in text.
func (h *html2text) entity() {
	p := h.peek(10)
	for i := 0; ; i++ {
		if i == len(p) {
			if len(p) < 10 {
				h.done = true // the input ends first: dropped
			}
			return // i = 10: broken, only the "&" goes
		}
		if htmlSpace(p[i]) {
			return
		}
		if p[i] == ';' {
			name := string(p[:i])
			h.skip(i + 1)
			if r, ok := htmlEntity(name); ok {
				h.emit(utf8.AppendRune(nil, r)...)
			}
			return
		}
	}
}

// htmlEntity decodes an entity name of HTML 4.01 (case-sensitively, as
// dovecot's table; HTML5's further names are unknown there) or a numeric
// reference.
func htmlEntity(name string) (rune, bool) {
	if r, ok := html4Entities[name]; ok {
		return r, true
	}
	if name == "" || name[0] != '#' {
		return 0, false
	}
	var v uint64
	var err error
	if len(name) > 1 && name[1] == 'x' {
		v, err = strconv.ParseUint(name[2:], 16, 32)
	}
	if len(name) <= 1 || name[1] != 'x' || err != nil {
		v, err = strconv.ParseUint(name[1:], 10, 32)
	}
	if err != nil || v > utf8.MaxRune || !utf8.ValidRune(rune(v)) {
		return 0, false
	}
	return rune(v), true
}

// html4Names are HTML 4.01's 252 character entities (the DTDs' Latin-1,
// symbol and special sets), with their code points from Go's html
// package (lang and rang as HTML5 has them); dovecot's table adds apos.
// TestHTMLTextLikePigeonhole holds all this to pigeonhole.
const html4Names = "nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest " +
	"Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig " +
	"agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml " +
	"fnof Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho Sigma Tau Upsilon Phi Chi Psi Omega " +
	"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigmaf sigma tau upsilon phi chi psi omega thetasym upsih piv " +
	"bull hellip prime Prime oline frasl weierp image real trade alefsym larr uarr rarr darr harr crarr lArr uArr rArr dArr hArr " +
	"forall part exist empty nabla isin notin ni prod sum minus lowast radic prop infin ang and or cap cup int there4 sim cong asymp ne equiv le ge sub sup nsub sube supe oplus otimes perp sdot " +
	"lceil rceil lfloor rfloor lang rang loz spades clubs hearts diams " +
	"quot amp lt gt OElig oelig Scaron scaron Yuml circ tilde ensp emsp thinsp zwnj zwj lrm rlm ndash mdash lsquo rsquo sbquo ldquo rdquo bdquo dagger Dagger permil lsaquo rsaquo euro"

var html4Entities = func() map[string]rune {
	m := map[string]rune{}
	for _, n := range strings.Fields(html4Names) {
		s := html.UnescapeString("&" + n + ";")
		r, size := utf8.DecodeRuneInString(s)
		if size != len(s) || s == "&"+n+";" {
			panic("html4Names: " + n)
		}
		m[n] = r
	}
	m["apos"] = '\''
	return m
}()
