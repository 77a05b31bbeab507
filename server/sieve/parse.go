package sieve

import "fmt"

// argKind is the kind of a command or test argument.
type argKind int

const (
	aTag argKind = iota
	aNum
	aStr // a string or a string list
)

// arg is one argument (RFC 5228 §2.6).
type arg struct {
	kind argKind
	tag  string   // aTag: the name, lower case
	num  int64    // aNum
	strs []string // aStr
	list bool     // aStr written as a list "[...]"
	pos  pos
}

func (a arg) describe() string {
	switch a.kind {
	case aTag:
		return "tag ':" + a.tag + "'"
	case aNum:
		return "number"
	}
	if a.list {
		return "string list"
	}
	return "string"
}

// node is a command or a test.
type node struct {
	name     string // lower case
	pos      pos
	args     []arg
	tests    []*node // a test or test list
	testList bool
	block    []*node
	hasBlock bool
	argsEnd  pos // just after the identifier and arguments, before any test
}

type parser struct {
	toks  []token
	i     int
	depth int
}

const maxNesting = 32

func (p *parser) peek() token  { return p.toks[p.i] }
func (p *parser) take() token  { t := p.toks[p.i]; p.i++; return t }
func (p *parser) prevEnd() pos { return p.toks[p.i-1].end }

func perr(t token, format string, a ...any) error {
	return &ScriptError{Line: t.pos.Line, Col: t.pos.Col, Msg: fmt.Sprintf(format, a...)}
}

// parse turns src into its commands (RFC 5228 §8.2).
func parse(src string) ([]*node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	cmds, err := p.commands()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, perr(t, "unexpected %s found at (the presumed) end of file", t.kind)
	}
	return cmds, nil
}

func (p *parser) commands() ([]*node, error) {
	var out []*node
	for p.peek().kind == tIdent {
		c, err := p.command()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *parser) command() (*node, error) {
	id := p.take()
	c := &node{name: lower(id.text), pos: id.pos}
	if err := p.arguments(c); err != nil {
		return nil, err
	}
	t := p.peek()
	switch t.kind {
	case tSemicolon:
		p.take()
	case tLBrace:
		p.take()
		p.depth++
		if p.depth > maxNesting {
			return nil, perr(t, "cannot nest blocks deeper than %d levels", maxNesting)
		}
		b, err := p.commands()
		if err != nil {
			return nil, err
		}
		p.depth--
		if e := p.take(); e.kind != tRBrace {
			return nil, perr(e, "expected end of compound block '}', but found %s", e.kind)
		}
		c.block, c.hasBlock = b, true
	default:
		return nil, &ScriptError{Line: c.argsEnd.Line, Col: c.argsEnd.Col, Msg: fmt.Sprintf("missing semicolon ';' after %s command", c.name)}
	}
	return c, nil
}

// arguments reads *argument [test / test-list].
func (p *parser) arguments(n *node) error {
	for {
		t := p.peek()
		switch t.kind {
		case tTag:
			p.take()
			n.args = append(n.args, arg{kind: aTag, tag: lower(t.text), pos: t.pos})
		case tNumber:
			p.take()
			n.args = append(n.args, arg{kind: aNum, num: t.num, pos: t.pos})
		case tString:
			p.take()
			n.args = append(n.args, arg{kind: aStr, strs: []string{t.text}, pos: t.pos})
		case tLBracket:
			p.take()
			a := arg{kind: aStr, list: true, pos: t.pos}
			for {
				s := p.take()
				if s.kind != tString {
					return perr(s, "expecting string after '[' or ',' in string list, but found %s", s.kind)
				}
				a.strs = append(a.strs, s.text)
				e := p.take()
				if e.kind == tRBracket {
					break
				}
				if e.kind != tComma {
					return perr(e, "expecting ',' or end of string list ']', but found %s", e.kind)
				}
			}
			n.args = append(n.args, a)
		case tIdent:
			n.argsEnd = p.prevEnd()
			tst, err := p.test()
			if err != nil {
				return err
			}
			n.tests = []*node{tst}
			return nil
		case tLParen:
			n.argsEnd = p.prevEnd()
			p.take()
			p.depth++
			if p.depth > maxNesting {
				return perr(t, "cannot nest tests deeper than %d levels", maxNesting)
			}
			n.testList = true
			for {
				s := p.peek()
				if s.kind != tIdent {
					return perr(s, "expecting test identifier after '(' or ',' in test list, but found %s", s.kind)
				}
				tst, err := p.test()
				if err != nil {
					return err
				}
				n.tests = append(n.tests, tst)
				e := p.take()
				if e.kind == tRParen {
					break
				}
				if e.kind != tComma {
					return perr(e, "expecting ',' or end of test list ')', but found %s", e.kind)
				}
			}
			p.depth--
			return nil
		default:
			n.argsEnd = p.prevEnd()
			return nil
		}
	}
}

func (p *parser) test() (*node, error) {
	id := p.take()
	n := &node{name: lower(id.text), pos: id.pos}
	p.depth++
	if p.depth > maxNesting {
		return nil, perr(id, "cannot nest tests deeper than %d levels", maxNesting)
	}
	err := p.arguments(n)
	p.depth--
	return n, err
}

// lower is strings.ToLower for ASCII identifiers without allocation when
// already lower case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
