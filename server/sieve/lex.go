package sieve

import (
	"fmt"
	"strings"
)

// tokKind is the kind of a lexical token (RFC 5228 §8.1).
type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tTag
	tNumber
	tString // quoted or multi-line
	tLBracket
	tRBracket
	tLParen
	tRParen
	tComma
	tSemicolon
	tLBrace
	tRBrace
)

var tokNames = map[tokKind]string{
	tEOF: "end of file", tIdent: "identifier", tTag: "tag", tNumber: "number",
	tString: "string", tLBracket: "'['", tRBracket: "']'", tLParen: "'('",
	tRParen: "')'", tComma: "','", tSemicolon: "';'", tLBrace: "'{'", tRBrace: "'}'",
}

func (k tokKind) String() string { return tokNames[k] }

// pos is a 1-based line and column (columns count characters).
type pos struct{ Line, Col int }

type token struct {
	kind tokKind
	text string // identifier/tag name (no colon), string value
	num  int64
	pos  pos
	end  pos // just after the token
}

// singleTok maps the one-character tokens (tEOF: not one).
var singleTok = [256]tokKind{'[': tLBracket, ']': tRBracket, '(': tLParen, ')': tRParen,
	',': tComma, ';': tSemicolon, '{': tLBrace, '}': tRBrace}

// lexer splits a script into tokens.
type lexer struct {
	src  string
	i    int
	line int
	col  int
}

func (lx *lexer) errf(p pos, format string, a ...any) error {
	return &ScriptError{Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, a...)}
}

func (lx *lexer) adv(n int) {
	for k := 0; k < n && lx.i < len(lx.src); k++ {
		c := lx.src[lx.i]
		lx.i++
		if c == '\n' {
			lx.line++
			lx.col = 1
		} else if c < 0x80 || c >= 0xC0 {
			lx.col++
		}
	}
}

func (lx *lexer) here() pos { return pos{lx.line, lx.col} }

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lex returns all tokens of src.
func lex(src string) ([]token, error) {
	lx := &lexer{src: src, line: 1, col: 1}
	toks := make([]token, 0, len(src)/16+8)
	for {
		t, err := lx.next()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.kind == tEOF {
			return toks, nil
		}
	}
}

func (lx *lexer) next() (token, error) {
	for lx.i < len(lx.src) {
		c := lx.src[lx.i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			lx.adv(1)
		case c == '#':
			for lx.i < len(lx.src) && lx.src[lx.i] != '\n' {
				lx.adv(1)
			}
		case c == '/' && strings.HasPrefix(lx.src[lx.i:], "/*"):
			p := lx.here()
			end := strings.Index(lx.src[lx.i+2:], "*/")
			if end < 0 {
				return token{}, lx.errf(p, "end of file before end of bracket comment ('/* ... */') started at line %d", p.Line)
			}
			lx.adv(end + 4)
		default:
			t, err := lx.token()
			t.end = lx.here()
			return t, err
		}
	}
	return token{kind: tEOF, pos: lx.here()}, nil
}

func (lx *lexer) token() (token, error) {
	p := lx.here()
	c := lx.src[lx.i]
	if k := singleTok[c]; k != tEOF {
		lx.adv(1)
		return token{kind: k, pos: p}, nil
	}
	switch {
	case c == '"':
		return lx.quoted(p)
	case c == ':':
		lx.adv(1)
		if lx.i >= len(lx.src) || !isAlpha(lx.src[lx.i]) {
			return token{}, lx.errf(p, "invalid tag: ':' not followed by an identifier")
		}
		id := lx.ident()
		return token{kind: tTag, text: id, pos: p}, nil
	case isDigit(c):
		start := lx.i
		for lx.i < len(lx.src) && isDigit(lx.src[lx.i]) {
			lx.adv(1)
		}
		digits := lx.src[start:lx.i]
		var n uint64
		for _, d := range []byte(digits) {
			n = n*10 + uint64(d-'0')
			if n > 1<<31 {
				return token{}, lx.errf(p, "number '%s' exceeds the limit", digits)
			}
		}
		if lx.i < len(lx.src) {
			mul := uint64(1)
			switch lx.src[lx.i] {
			case 'k', 'K':
				mul = 1 << 10
			case 'm', 'M':
				mul = 1 << 20
			case 'g', 'G':
				mul = 1 << 30
			}
			if mul > 1 {
				lx.adv(1)
				n *= mul
				if n > 1<<40 {
					return token{}, lx.errf(p, "number '%s' exceeds the limit", digits)
				}
			}
		}
		if lx.i < len(lx.src) && isAlpha(lx.src[lx.i]) {
			return token{}, lx.errf(p, "invalid number: unexpected character '%c'", lx.src[lx.i])
		}
		return token{kind: tNumber, num: int64(n), pos: p}, nil
	case isAlpha(c):
		id := lx.ident()
		if strings.EqualFold(id, "text") && lx.i < len(lx.src) && lx.src[lx.i] == ':' {
			lx.adv(1)
			return lx.multiline(p)
		}
		return token{kind: tIdent, text: id, pos: p}, nil
	}
	if c < 0x20 || c >= 0x7f {
		return token{}, lx.errf(p, "unexpected character 0x%02x", c)
	}
	return token{}, lx.errf(p, "unexpected character '%c'", c)
}

func (lx *lexer) ident() string {
	start := lx.i
	for lx.i < len(lx.src) && (isAlpha(lx.src[lx.i]) || isDigit(lx.src[lx.i])) {
		lx.adv(1)
	}
	return lx.src[start:lx.i]
}

// quoted reads a quoted string (RFC 5228 §2.4.2): \" and \\ are escapes,
// a backslash before any other character is dropped.
func (lx *lexer) quoted(p pos) (token, error) {
	lx.adv(1)
	var b strings.Builder
	for {
		if lx.i >= len(lx.src) {
			return token{}, lx.errf(p, "end of file before end of quoted string started at line %d", p.Line)
		}
		c := lx.src[lx.i]
		switch c {
		case '"':
			lx.adv(1)
			return token{kind: tString, text: b.String(), pos: p}, nil
		case '\\':
			if lx.i+1 >= len(lx.src) {
				return token{}, lx.errf(p, "end of file before end of quoted string started at line %d", p.Line)
			}
			b.WriteByte(lx.src[lx.i+1])
			lx.adv(2)
		case 0:
			return token{}, lx.errf(lx.here(), "NUL character in string")
		default:
			b.WriteByte(c)
			lx.adv(1)
		}
	}
}

// multiline reads a "text:" string (RFC 5228 §2.4.2): the rest of the
// line is white space or a comment; lines up to "." are the value, with
// a leading ".." meaning ".".
func (lx *lexer) multiline(p pos) (token, error) {
	for lx.i < len(lx.src) && (lx.src[lx.i] == ' ' || lx.src[lx.i] == '\t') {
		lx.adv(1)
	}
	switch {
	case lx.i < len(lx.src) && lx.src[lx.i] == '#':
		for lx.i < len(lx.src) && lx.src[lx.i] != '\n' {
			lx.adv(1)
		}
	case strings.HasPrefix(lx.src[lx.i:], "\r\n"), strings.HasPrefix(lx.src[lx.i:], "\n"):
	default:
		return token{}, lx.errf(p, "invalid character after text: in multi-line string")
	}
	if lx.i < len(lx.src) && lx.src[lx.i] == '\r' {
		lx.adv(1)
	}
	if lx.i >= len(lx.src) {
		return token{}, lx.errf(p, "end of file before end of multi-line string")
	}
	lx.adv(1) // \n
	var b strings.Builder
	for {
		if lx.i >= len(lx.src) {
			return token{}, lx.errf(p, "end of file before end of multi-line string")
		}
		end := strings.IndexByte(lx.src[lx.i:], '\n')
		var line string
		if end < 0 {
			line = lx.src[lx.i:]
		} else {
			line = lx.src[lx.i : lx.i+end+1]
		}
		body := strings.TrimRight(line, "\r\n")
		if body == "." && end >= 0 {
			lx.adv(len(line))
			return token{kind: tString, text: b.String(), pos: p}, nil
		}
		if body == "." {
			return token{}, lx.errf(p, "end of file before end of multi-line string")
		}
		if strings.IndexByte(line, 0) >= 0 {
			return token{}, lx.errf(lx.here(), "NUL character in string")
		}
		raw := len(line)
		if strings.HasPrefix(line, "..") {
			line = line[1:]
		}
		// Lines end in CRLF (RFC 5228 §2.4.2), whatever the file has.
		if strings.HasSuffix(line, "\n") {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r") + "\r\n"
		}
		b.WriteString(line)
		lx.adv(raw)
		if end < 0 {
			return token{}, lx.errf(p, "end of file before end of multi-line string")
		}
	}
}
