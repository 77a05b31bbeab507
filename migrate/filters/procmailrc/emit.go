package procmailrc

import (
	"fmt"
	"regexp"
	"strings"
)

// Emitting ERE that POSIX regcomp (pigeonhole) and RE2 (Go, mailmig's
// Sieve) read alike: literals are escaped, bracket expressions put ']'
// first and '-' last and never hold a backslash (it is emitted as an
// alternative \\ outside the brackets), and only ASCII appears inside
// brackets (bytes from 0x80 up are matched by negated brackets only).

// ErrUnsupported is wrapped for expressions that have no ERE form here.
var ErrUnsupported = fmt.Errorf("procmailrc: unsupported in Sieve")

type emitter struct {
	b    strings.Builder
	err  error
	body bool // body search: newline also matches ^/$ of the text
}

func emitTop(n *node) string {
	e := &emitter{}
	e.b.WriteString("^")
	if n.kind != kEmpty {
		e.group(n)
	}
	return e.b.String()
}

// Emit returns the ERE for the value, anchored, or an error.
func (f FieldTest) Emit() (string, error) {
	if f.value.size() > maxNodeSize {
		return "", fmt.Errorf("%w: the expression is too complex", ErrUnsupported)
	}
	e := &emitter{}
	e.b.WriteString("^")
	if f.value.kind != kEmpty {
		e.group(f.value)
	}
	return e.b.String(), e.err
}

func emitBody(b *strings.Builder, n *node, _ int) error {
	e := &emitter{body: true}
	e.node(n)
	b.WriteString(e.b.String())
	return e.err
}

// group writes n in parentheses unless it is a single atom.
func (e *emitter) group(n *node) {
	switch n.kind {
	case kCat, kAlt:
		e.b.WriteString("(")
		e.node(n)
		e.b.WriteString(")")
	default:
		e.node(n)
	}
}

func (e *emitter) node(n *node) {
	switch n.kind {
	case kNone:
		e.err = fmt.Errorf("%w: an expression that can never match", ErrUnsupported)
	case kEmpty, kSplit:
	case kStart:
		e.b.WriteString("^")
	case kEnd:
		e.b.WriteString("$")
	case kSet:
		e.set(n.set)
	case kCat:
		for _, s := range n.subs {
			if s.kind == kAlt && !nullable(s) {
				e.b.WriteString("(")
				e.node(s)
				e.b.WriteString(")")
				continue
			}
			e.node(s)
		}
	case kAlt:
		var parts []*node
		opt := false
		for _, s := range n.subs {
			if s.kind == kEmpty || s.kind == kSplit {
				opt = true
				continue
			}
			parts = append(parts, s)
		}
		if opt {
			e.b.WriteString("(")
		}
		for i, s := range parts {
			if i > 0 {
				e.b.WriteString("|")
			}
			e.node(s)
		}
		if opt {
			e.b.WriteString(")?")
		}
	case kStar:
		s := n.subs[0]
		if s.kind == kSet {
			sub := &emitter{body: e.body}
			sub.set(s.set)
			if sub.err != nil {
				e.err = sub.err
			}
			str := sub.b.String()
			if strings.HasPrefix(str, "(") {
				str = "(" + str + ")"
			}
			e.b.WriteString(str)
		} else {
			e.b.WriteString("(")
			e.node(s)
			e.b.WriteString(")")
		}
		e.b.WriteString("*")
	}
}

const ereSpecial = `.[]()*+?{}|^$\`

func (e *emitter) set(s byteSet) {
	if e.body && s.has('\n') {
		rest := s.without('\n').without('\r')
		e.b.WriteString("(")
		if rest.count() > 0 {
			e.set(rest)
			e.b.WriteString("|")
		}
		e.b.WriteString("^|${hex:0D}?${hex:0A}|${hex:0D}?$)")
		return
	}
	s = s.without('\n').without(0)
	if e.body {
		s = s.without('\r')
	}
	var all byteSet
	all.addRange(1, 255)
	all = all.without('\n')
	if e.body {
		all = all.without('\r')
	}
	if s == all || (!e.body && s == all.without('\r')) {
		if e.body {
			e.b.WriteString("[^${hex:0D}${hex:0A}]")
		} else {
			e.b.WriteString(".")
		}
		return
	}
	n := s.count()
	if n == 0 {
		e.err = fmt.Errorf("%w: an empty character class", ErrUnsupported)
		return
	}
	if n == 1 {
		for c := 0; c < 256; c++ {
			if s.has(byte(c)) {
				e.literal(byte(c))
			}
		}
		return
	}
	// Negated when it holds every byte from 0x80 up.
	high := true
	for c := 0x80; c < 256; c++ {
		if !s.has(byte(c)) {
			high = false
			break
		}
	}
	if high {
		var ex []byte
		for c := 1; c < 0x80; c++ {
			if !s.has(byte(c)) && c != '\n' && !(e.body && c == '\r') {
				ex = append(ex, byte(c))
			}
		}
		if containsByte(ex, '\\') {
			e.err = fmt.Errorf("%w: a negated class that excludes a backslash", ErrUnsupported)
			return
		}
		e.b.WriteString("[^")
		e.members(ex)
		if e.body {
			e.b.WriteString("${hex:0D}${hex:0A}")
		}
		e.b.WriteString("]")
		return
	}
	var in []byte
	for c := 1; c < 0x80; c++ {
		if s.has(byte(c)) {
			in = append(in, byte(c))
		}
	}
	for c := 0x80; c < 256; c++ {
		if s.has(byte(c)) {
			e.err = fmt.Errorf("%w: a character class with some non-ASCII bytes", ErrUnsupported)
			return
		}
	}
	bs := containsByte(in, '\\')
	if bs {
		var rest []byte
		for _, c := range in {
			if c != '\\' {
				rest = append(rest, c)
			}
		}
		in = rest
		e.b.WriteString(`(\\|`)
	}
	if len(in) == 1 {
		e.literal(in[0])
	} else if len(in) > 1 {
		e.b.WriteString("[")
		e.members(in)
		e.b.WriteString("]")
	}
	if bs {
		e.b.WriteString(")")
	}
}

// members writes bracket members (sorted bytes, no backslash) as ranges:
// ']' first, '^' not first, '[' and '-' last.
func (e *emitter) members(in []byte) {
	var close, caret, open, dash bool
	var rest []byte
	for _, c := range in {
		switch c {
		case ']':
			close = true
		case '^':
			caret = true
		case '[':
			open = true
		case '-':
			dash = true
		default:
			rest = append(rest, c)
		}
	}
	if close {
		e.b.WriteByte(']')
	}
	for i := 0; i < len(rest); {
		j := i
		for j+1 < len(rest) && rest[j+1] == rest[j]+1 {
			j++
		}
		if j-i >= 2 {
			e.b.WriteByte(rest[i])
			e.b.WriteByte('-')
			e.b.WriteByte(rest[j])
		} else {
			for k := i; k <= j; k++ {
				e.b.WriteByte(rest[k])
			}
		}
		i = j + 1
	}
	wrote := close || len(rest) > 0
	if caret && !wrote {
		// '^' first would negate: lead with '-' or '['.
		if dash {
			e.b.WriteByte('-')
			dash = false
		} else if open {
			e.b.WriteByte('[')
			open = false
		}
	}
	if caret {
		e.b.WriteByte('^')
	}
	if open {
		e.b.WriteByte('[')
	}
	if dash {
		e.b.WriteByte('-')
	}
}

func (e *emitter) literal(c byte) {
	switch {
	case strings.IndexByte(ereSpecial, c) >= 0:
		e.b.WriteByte('\\')
		e.b.WriteByte(c)
	case c >= 0x80:
		e.err = fmt.Errorf("%w: a non-ASCII byte", ErrUnsupported)
	default:
		e.b.WriteByte(c)
	}
}

// --- Go regexp, for evaluating conditions on known variables ------------

func emitGo(b *strings.Builder, n *node, _ int) {
	switch n.kind {
	case kNone:
		b.WriteString(`[^\x00-\x{10FFFF}]`)
	case kEmpty, kSplit:
	case kStart:
		b.WriteString(`\A`)
	case kEnd:
		b.WriteString(`\z`)
	case kSet:
		if n.set.has('\n') {
			b.WriteString(`(?:\A|\n|\z`)
			rest := n.set.without('\n')
			if rest.count() > 0 {
				b.WriteString("|")
				goSet(b, rest)
			}
			b.WriteString(")")
			return
		}
		goSet(b, n.set)
	case kCat:
		b.WriteString("(?:")
		for _, s := range n.subs {
			emitGo(b, s, 0)
		}
		b.WriteString(")")
	case kAlt:
		b.WriteString("(?:")
		for i, s := range n.subs {
			if i > 0 {
				b.WriteString("|")
			}
			emitGo(b, s, 0)
		}
		b.WriteString(")")
	case kStar:
		b.WriteString("(?:")
		emitGo(b, n.subs[0], 0)
		b.WriteString(")*")
	}
}

func goSet(b *strings.Builder, s byteSet) {
	b.WriteString("[")
	for c := 0; c < 256; c++ {
		if s.has(byte(c)) {
			fmt.Fprintf(b, `\x{%x}`, c)
		}
	}
	b.WriteString("]")
}

// MatchString reports whether the regex matches s as procmail would
// (for conditions on variables whose value is known when converting).
func (r *Regex) MatchString(s string) (bool, error) {
	re, err := regexp.Compile(r.goPattern())
	if err != nil {
		return false, err
	}
	return re.MatchString(s), nil
}
