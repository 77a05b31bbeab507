package procmailrc

import (
	"fmt"
	"sort"
	"strings"
)

// Regular expressions in procmail's egrep dialect (procmailrc(5),
// "Extended regular expressions"): . * + ? | ( ) [ ] \ escapes, and the
// procmail extensions: ^ and $ match a newline (not a position), ^^ anchors
// at the very start or end of the search area, \< and \> are shorthand
// for [^a-zA-Z0-9_] or a newline, \/ splits off the MATCH part. There is
// no {n,m} repetition ('{' is literal) and no named classes.
//
// A Regex is kept as a tree over byte sets so that it can be rewritten
// exactly: the converter takes Brzozowski derivatives to find which header
// field names a condition can name, and emits what matches the field's
// value as a POSIX ERE that pigeonhole (POSIX regcomp) and mailmig
// (Go's RE2 through go-sieve) read alike.

// nodeKind is the kind of a regex tree node.
type nodeKind uint8

const (
	kNone  nodeKind = iota // matches nothing
	kEmpty                 // matches the empty string
	kSet                   // one byte from set
	kCat                   // concatenation of subs
	kAlt                   // alternation of subs
	kStar                  // zero or more of subs[0]
	kStart                 // ^^ at the start: the start of the search area
	kEnd                   // ^^ at the end: the end of the search area
	kSplit                 // \/ (MATCH split): matches the empty string
)

// byteSet is a set of bytes.
type byteSet [4]uint64

func (s *byteSet) add(c byte)      { s[c>>6] |= 1 << (c & 63) }
func (s *byteSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }
func (s *byteSet) addRange(a, b byte) {
	for c := int(a); c <= int(b); c++ {
		s.add(byte(c))
	}
}
func (s byteSet) count() int {
	n := 0
	for c := 0; c < 256; c++ {
		if s.has(byte(c)) {
			n++
		}
	}
	return n
}
func (s byteSet) without(c byte) byteSet { s[c>>6] &^= 1 << (c & 63); return s }
func (s byteSet) only(c byte) bool       { return s.has(c) && s.count() == 1 }

// node is a regex tree node. Nodes are never changed after they are
// made, and derivatives share subtrees (the tree is a DAG): key and size
// are memoized per node so that neither walks shared parts twice.
type node struct {
	kind nodeKind
	set  byteSet
	subs []*node
	k    string   // memoized key
	sz   int      // memoized tree size (0 = not computed)
	nul  int8     // memoized nullable: 0 unknown, 1 no, 2 yes
	fst  *byteSet // memoized first set
}

// maxNodeSize bounds the tree size of expressions the converter works
// with; bigger ones (derivatives can grow quickly) are refused.
const maxNodeSize = 20000

// size is the number of nodes of the tree (shared subtrees counted each
// time, capped).
func (n *node) size() int {
	if n.sz > 0 {
		return n.sz
	}
	s := 1
	for _, c := range n.subs {
		s += c.size()
		if s > 1<<30 {
			s = 1 << 30
			break
		}
	}
	n.sz = s
	return s
}

// The shared leaves have their memo fields set here: they are read
// concurrently and must never be written.
var (
	nodeNone  = &node{kind: kNone, k: "!", sz: 1, nul: 1, fst: &byteSet{}}
	nodeEmpty = &node{kind: kEmpty, k: "e", sz: 1, nul: 2, fst: &byteSet{}}
)

func setNode(s byteSet) *node { return &node{kind: kSet, set: s} }
func charNode(c byte) *node {
	var s byteSet
	s.add(c)
	return setNode(s)
}

// nlNode is ^ or $: a newline.
func nlNode() *node { return charNode('\n') }

func cat(ns ...*node) *node {
	var out []*node
	for _, n := range ns {
		switch n.kind {
		case kNone:
			return nodeNone
		case kEmpty, kSplit:
			continue
		case kCat:
			out = append(out, n.subs...)
		default:
			out = append(out, n)
		}
	}
	switch len(out) {
	case 0:
		return nodeEmpty
	case 1:
		return out[0]
	}
	return &node{kind: kCat, subs: out}
}

func alt(ns ...*node) *node {
	var out []*node
	seen := map[string]bool{}
	for _, n := range ns {
		var parts []*node
		switch n.kind {
		case kNone:
			continue
		case kAlt:
			parts = n.subs
		default:
			parts = []*node{n}
		}
		for _, p := range parts {
			k := p.key()
			if !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
	}
	switch len(out) {
	case 0:
		return nodeNone
	case 1:
		return out[0]
	}
	return &node{kind: kAlt, subs: out}
}

func star(n *node) *node {
	switch n.kind {
	case kNone, kEmpty, kSplit:
		return nodeEmpty
	case kStar:
		return n
	}
	return &node{kind: kStar, subs: []*node{n}}
}

// key is a canonical string of the tree (for deduplication); trees
// over maxNodeSize get an identity key instead.
func (n *node) key() string {
	if n.k != "" {
		return n.k
	}
	if n.size() > maxNodeSize {
		n.k = fmt.Sprintf("#%p", n)
		return n.k
	}
	var b strings.Builder
	n.writeKey(&b)
	n.k = b.String()
	return n.k
}

func (n *node) writeKey(b *strings.Builder) {
	switch n.kind {
	case kNone:
		b.WriteString("!")
	case kEmpty, kSplit:
		b.WriteString("e")
	case kStart:
		b.WriteString("S")
	case kEnd:
		b.WriteString("E")
	case kSet:
		fmt.Fprintf(b, "[%x%x%x%x]", n.set[0], n.set[1], n.set[2], n.set[3])
	case kStar:
		b.WriteString("*(")
		b.WriteString(n.subs[0].key())
		b.WriteString(")")
	case kCat, kAlt:
		if n.kind == kCat {
			b.WriteString("C(")
		} else {
			b.WriteString("A(")
		}
		for i, s := range n.subs {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(s.key())
		}
		b.WriteString(")")
	}
}

// Regex is a parsed procmail regular expression.
type Regex struct {
	root *node
	// Split is true when the expression contains \/ (sets MATCH).
	Split bool
	// Fold is true when matching ignores case (procmail's default; the
	// D flag turns it off).
	Fold bool
}

// ParseRegex parses src in procmail's dialect. Macros (^TO_, ^TO,
// ^FROM_DAEMON, ^FROM_MAILER) must have been expanded by the caller.
func ParseRegex(src string, fold bool) (*Regex, error) {
	p := &reParser{src: src}
	n, err := p.alt(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.src) {
		return nil, fmt.Errorf("unmatched ')' at offset %d", p.pos)
	}
	return &Regex{root: n, Split: p.split, Fold: fold}, nil
}

type reParser struct {
	src   string
	pos   int
	split bool
}

func (p *reParser) alt(depth int) (*node, error) {
	if depth > 200 {
		return nil, fmt.Errorf("regular expression nested too deeply")
	}
	var alts []*node
	for {
		n, err := p.seq(depth)
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
		if p.pos < len(p.src) && p.src[p.pos] == '|' {
			p.pos++
			continue
		}
		break
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &node{kind: kAlt, subs: alts}, nil
}

func (p *reParser) seq(depth int) (*node, error) {
	var items []*node
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '|' || c == ')' {
			break
		}
		atom, err := p.atom(depth, len(items) == 0)
		if err != nil {
			return nil, err
		}
		for p.pos < len(p.src) {
			switch p.src[p.pos] {
			case '*':
				atom = star(atom)
			case '+':
				atom = cat(atom, star(atom))
			case '?':
				atom = alt(atom, nodeEmpty)
			default:
				goto done
			}
			p.pos++
		}
	done:
		items = append(items, atom)
	}
	if len(items) == 0 {
		return nodeEmpty, nil
	}
	if len(items) == 1 {
		return items[0], nil
	}
	return &node{kind: kCat, subs: items}, nil
}

func (p *reParser) atom(depth int, first bool) (*node, error) {
	c := p.src[p.pos]
	switch c {
	case '(':
		p.pos++
		n, err := p.alt(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.pos >= len(p.src) || p.src[p.pos] != ')' {
			return nil, fmt.Errorf("missing ')' at offset %d", p.pos)
		}
		p.pos++
		return n, nil
	case '[':
		return p.bracket()
	case '.':
		p.pos++
		var s byteSet
		s.addRange(0, 255)
		return setNode(s.without('\n')), nil
	case '^', '$':
		if c == '^' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '^' {
			p.pos += 2
			if first && p.pos-2 == 0 {
				return &node{kind: kStart}, nil
			}
			return &node{kind: kEnd}, nil
		}
		p.pos++
		return nlNode(), nil
	case '*', '+', '?':
		// A leading repetition operator is literal in procmail's egrep.
		p.pos++
		return charNode(c), nil
	case '\\':
		if p.pos+1 >= len(p.src) {
			p.pos++
			return charNode('\\'), nil
		}
		e := p.src[p.pos+1]
		p.pos += 2
		switch e {
		case '<', '>':
			var s byteSet
			s.addRange(0, 255)
			for _, r := range [][2]byte{{'a', 'z'}, {'A', 'Z'}, {'0', '9'}} {
				for x := r[0]; x <= r[1]; x++ {
					s = s.without(x)
				}
			}
			return setNode(s.without('_')), nil
		case '/':
			p.split = true
			return &node{kind: kSplit}, nil
		}
		return charNode(e), nil
	}
	p.pos++
	return charNode(c), nil
}

func (p *reParser) bracket() (*node, error) {
	start := p.pos
	p.pos++ // '['
	neg := false
	if p.pos < len(p.src) && p.src[p.pos] == '^' {
		neg = true
		p.pos++
	}
	var s byteSet
	firstItem := true
	for {
		if p.pos >= len(p.src) {
			return nil, fmt.Errorf("missing ']' for '[' at offset %d", start)
		}
		c := p.src[p.pos]
		if c == ']' && !firstItem {
			p.pos++
			break
		}
		firstItem = false
		if c == '\\' && p.pos+1 < len(p.src) {
			// procmail's egrep quotes inside brackets too.
			p.pos++
			c = p.src[p.pos]
		}
		p.pos++
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			hi := p.src[p.pos+1]
			p.pos += 2
			if hi == '\\' && p.pos < len(p.src) {
				hi = p.src[p.pos]
				p.pos++
			}
			if hi < c {
				return nil, fmt.Errorf("invalid range %c-%c at offset %d", c, hi, start)
			}
			s.addRange(c, hi)
			continue
		}
		s.add(c)
	}
	if neg {
		var all byteSet
		all.addRange(0, 255)
		for i := range all {
			all[i] &^= s[i]
		}
		s = all.without('\n') // a negated class never matches a newline
	}
	return setNode(s), nil
}

// --- derivatives -----------------------------------------------------

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}

func setMatch(s byteSet, c byte, fold bool) bool {
	if s.has(c) {
		return true
	}
	return fold && (s.has(lower(c)) || s.has(upper(c)))
}

func nullable(n *node) bool {
	if n.nul == 0 {
		n.nul = 1
		if nullableStep(n) {
			n.nul = 2
		}
	}
	return n.nul == 2
}

func nullableStep(n *node) bool {
	switch n.kind {
	case kEmpty, kSplit, kStar, kStart, kEnd:
		return true
	case kCat:
		for _, s := range n.subs {
			if !nullable(s) {
				return false
			}
		}
		return true
	case kAlt:
		for _, s := range n.subs {
			if nullable(s) {
				return true
			}
		}
	}
	return false
}

// deriv returns the regex matching {s : c+s in L(n)}.
func deriv(n *node, c byte, fold bool) *node {
	return derivMemo(n, c, fold, map[*node]*node{})
}

func derivMemo(n *node, c byte, fold bool, memo map[*node]*node) *node {
	if r, ok := memo[n]; ok {
		return r
	}
	r := derivStep(n, c, fold, memo)
	memo[n] = r
	return r
}

func derivStep(n *node, c byte, fold bool, memo map[*node]*node) *node {
	switch n.kind {
	case kSet:
		if setMatch(n.set, c, fold) {
			return nodeEmpty
		}
		return nodeNone
	case kAlt:
		var out []*node
		for _, s := range n.subs {
			out = append(out, derivMemo(s, c, fold, memo))
		}
		return alt(out...)
	case kStar:
		return cat(derivMemo(n.subs[0], c, fold, memo), n)
	case kCat:
		var out []*node
		for i, s := range n.subs {
			out = append(out, cat(append([]*node{derivMemo(s, c, fold, memo)}, n.subs[i+1:]...)...))
			if !nullable(s) {
				break
			}
		}
		return alt(out...)
	}
	return nodeNone
}

// first returns the bytes a match of n can start with.
func first(n *node) byteSet {
	if n.fst == nil {
		f := firstStep(n)
		n.fst = &f
	}
	return *n.fst
}

func firstStep(n *node) byteSet {
	var s byteSet
	switch n.kind {
	case kSet:
		return n.set
	case kAlt:
		for _, x := range n.subs {
			f := first(x)
			for i := range s {
				s[i] |= f[i]
			}
		}
	case kStar:
		return first(n.subs[0])
	case kCat:
		for _, x := range n.subs {
			f := first(x)
			for i := range s {
				s[i] |= f[i]
			}
			if !nullable(x) {
				break
			}
		}
	}
	return s
}

// hasKind reports whether the tree holds a node of kind k.
func hasKind(n *node, k nodeKind) bool {
	if n.kind == k {
		return true
	}
	for _, s := range n.subs {
		if hasKind(s, k) {
			return true
		}
	}
	return false
}

// --- header field names ------------------------------------------------

// errUnbounded is returned when a regex does not name a finite set of
// header fields at the start of a line.
var errUnbounded = fmt.Errorf("does not start with '^' and header field names")

// FieldTests splits a header regex into (field names, value regex) pairs:
// the regex matches a header line "Name: value" (one space after the
// colon, as mailers write it) exactly when, for one of the pairs, Name is
// one of the names and the value regex (over the unfolded value, as Sieve
// sees it) matches. Names are lower case when the regex ignores case.
func (r *Regex) FieldTests() ([]FieldTest, error) {
	if hasKind(r.root, kStart) || hasKind(r.root, kEnd) {
		return nil, fmt.Errorf("uses '^^' (start or end of the whole header)")
	}
	// Every match must begin at a line start: the first byte is the
	// newline of ^.
	f := first(r.root)
	if nullable(r.root) || !f.only('\n') {
		return nil, errUnbounded
	}
	startState := deriv(r.root, '\n', r.Fold)
	type item struct {
		name string
		n    *node
	}
	byValue := map[string]*FieldTest{}
	var order []string
	queue := []item{{"", startState}}
	seenAt := map[string][]string{}
	steps, names := 0, 0
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if steps++; steps > 2000 {
			return nil, fmt.Errorf("names too many header fields")
		}
		if it.n.kind == kNone {
			continue
		}
		if it.n.size() > maxNodeSize {
			return nil, fmt.Errorf("is too complex to convert")
		}
		// A state met again after a longer name loops: the expression
		// names infinitely many fields.
		k := it.n.key()
		for _, prev := range seenAt[k] {
			if strings.HasPrefix(it.name, prev) && it.name != prev {
				return nil, fmt.Errorf("matches header field names of any length (%q...)", it.name)
			}
		}
		seenAt[k] = append(seenAt[k], it.name)
		if nullable(it.n) {
			// The match can end inside the field name: it matches any
			// field starting with this prefix.
			return nil, fmt.Errorf("matches header field names starting with %q, not whole names", it.name)
		}
		fs := first(it.n)
		var cands []byte
		for c := 0; c < 256; c++ {
			if !fs.has(byte(c)) {
				continue
			}
			b := byte(c)
			if r.Fold {
				b = lower(b)
			}
			if len(cands) == 0 || !containsByte(cands, b) {
				cands = append(cands, b)
			}
		}
		for _, c := range cands {
			if c == ':' {
				if it.name == "" {
					continue
				}
				if names++; names > 64 {
					return nil, fmt.Errorf("names too many header fields")
				}
				v := deriv(it.n, ':', r.Fold)
				if v.kind == kNone {
					continue
				}
				val, err := valueRegex(v, r.Fold)
				if err != nil {
					return nil, fmt.Errorf("field %s: %w", it.name, err)
				}
				if val == nil {
					continue // never matches a value
				}
				k := val.key()
				ft, ok := byValue[k]
				if !ok {
					ft = &FieldTest{value: val, Fold: r.Fold}
					byValue[k] = ft
					order = append(order, k)
				}
				if !containsString(ft.Names, it.name) {
					ft.Names = append(ft.Names, it.name)
				}
				continue
			}
			if c <= ' ' || c >= 0x7f {
				if c == ' ' && strings.EqualFold(it.name, "from") {
					return nil, fmt.Errorf("matches the From_ line (envelope sender and date), which Sieve has no test for")
				}
				return nil, fmt.Errorf("matches %q after field name %q", string(c), it.name)
			}
			if len(it.name) >= 76 {
				return nil, errUnbounded
			}
			if len(cands) > 40 {
				return nil, fmt.Errorf("matches any header field name (%q...)", it.name)
			}
			queue = append(queue, item{it.name + string(c), deriv(it.n, c, r.Fold)})
		}
	}
	var out []FieldTest
	for _, k := range order {
		ft := byValue[k]
		sort.Strings(ft.Names)
		out = append(out, *ft)
	}
	return out, nil
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// FieldTest is one Sieve header test: the fields and the value regex.
type FieldTest struct {
	Names []string
	Fold  bool
	value *node
}

// Pattern is the POSIX ERE (as Sieve :regex reads it) for the field
// value, anchored at its start.
func (f FieldTest) Pattern() string { return emitTop(f.value) }

// valueRegex turns what follows "Name:" in the header text into a regex
// over the unfolded field value that Sieve compares: one space after the
// colon is consumed (derivative), and a newline ($ or ^) can only be the
// end of the value. It returns nil when nothing can match.
func valueRegex(v *node, fold bool) (*node, error) {
	if nullable(v) {
		return nodeEmpty, nil // the match may end at the colon
	}
	v = deriv(v, ' ', fold)
	if v.kind == kNone {
		return nil, nil
	}
	if v.size() > maxNodeSize {
		return nil, fmt.Errorf("is too complex to convert")
	}
	m := &nlMemo{no: map[*node]*node{}, end: map[*node]*node{}}
	p, e := m.noNL(v), m.endNL(v)
	var out *node
	switch {
	case e.kind == kNone:
		out = p
	case p.kind == kNone:
		out = cat(e, &node{kind: kEnd})
	default:
		out = alt(p, cat(e, &node{kind: kEnd}))
	}
	if out.kind == kNone {
		return nil, nil
	}
	return out, nil
}

// nlMemo memoizes noNL and endNL per node (the trees are DAGs).
type nlMemo struct{ no, end map[*node]*node }

func (m *nlMemo) noNL(n *node) *node {
	if r, ok := m.no[n]; ok {
		return r
	}
	r := noNLStep(n, m)
	m.no[n] = r
	return r
}

func (m *nlMemo) endNL(n *node) *node {
	if r, ok := m.end[n]; ok {
		return r
	}
	r := endNLStep(n, m)
	m.end[n] = r
	return r
}

// noNLStep is n restricted to strings without a newline.
func noNLStep(n *node, m *nlMemo) *node {
	switch n.kind {
	case kSet:
		s := n.set.without('\n')
		if s.count() == 0 {
			return nodeNone
		}
		return setNode(s)
	case kCat:
		var out []*node
		for _, s := range n.subs {
			out = append(out, m.noNL(s))
		}
		return cat(out...)
	case kAlt:
		var out []*node
		for _, s := range n.subs {
			out = append(out, m.noNL(s))
		}
		return alt(out...)
	case kStar:
		return star(m.noNL(n.subs[0]))
	}
	return n
}

// nextLineOK reports whether rest (what follows a newline) can match at
// the start of the next header line: it is empty or accepts any capital
// letter there (as the macros' "([^>]|$)" does).
func nextLineOK(rest *node) bool {
	if nullable(rest) {
		return true
	}
	f := first(rest)
	for c := byte('A'); c <= 'Z'; c++ {
		if !f.has(c) {
			return false
		}
	}
	return true
}

// endNLStep is the set of s (without newline) such that s followed by a
// newline starts a string of L(n) that a header can continue: what
// follows the newline is taken to be accepted (the next field), as the
// macros' "$([^>]|$)" expects.
func endNLStep(n *node, m *nlMemo) *node {
	switch n.kind {
	case kSet:
		if n.set.has('\n') {
			return nodeEmpty
		}
		return nodeNone
	case kCat:
		var out []*node
		for i, s := range n.subs {
			pre := make([]*node, 0, i+1)
			for _, q := range n.subs[:i] {
				pre = append(pre, m.noNL(q))
			}
			if !nextLineOK(cat(n.subs[i+1:]...)) {
				continue
			}
			out = append(out, cat(append(pre, m.endNL(s))...))
		}
		return alt(out...)
	case kAlt:
		var out []*node
		for _, s := range n.subs {
			out = append(out, m.endNL(s))
		}
		return alt(out...)
	case kStar:
		if !nextLineOK(n) {
			return nodeNone
		}
		return cat(star(m.noNL(n.subs[0])), m.endNL(n.subs[0]))
	}
	return nodeNone
}

// BodyPattern is the POSIX ERE for a body (or variable) search: ^ and $
// (a newline) also match at the start and end of the text, and . and
// negated classes do not match a carriage return either, since Sieve
// sees the body with CRLF line ends where procmail saw LF.
func (r *Regex) BodyPattern() (string, error) {
	if hasKind(r.root, kStart) || hasKind(r.root, kEnd) {
		return "", fmt.Errorf("uses '^^' (start or end of the whole body)")
	}
	var b strings.Builder
	emitBody(&b, r.root, 0)
	return b.String(), nil
}

// Root exposes nothing; Matches evaluates the regex on text with Go's
// regexp semantics equivalent to procmail's (for static variables).
func (r *Regex) goPattern() string {
	var b strings.Builder
	if r.Fold {
		b.WriteString("(?i)")
	}
	emitGo(&b, r.root, 0)
	return b.String()
}

// VarFieldTest converts "VAR ?? re" where VAR holds the output of
// `formail -xField:` (the field's contents after the colon, leading
// blanks kept, one line per occurrence; procmail's ^ also matches at the
// start of the variable) into a test on the field's value, under the
// same one-space assumption as FieldTests. emptyMatches reports whether
// the regex matches an empty variable (the field absent).
func (r *Regex) VarFieldTest(field string) (ft FieldTest, emptyMatches bool, err error) {
	if hasKind(r.root, kStart) || hasKind(r.root, kEnd) {
		return FieldTest{}, false, fmt.Errorf("uses '^^'")
	}
	var any byteSet
	any.addRange(1, 255)
	any = any.without('\n')
	n := alt(cat(star(setNode(any)), r.root), deriv(r.root, '\n', r.Fold))
	v, err := valueRegex(n, r.Fold)
	if err != nil {
		return FieldTest{}, false, err
	}
	name := field
	if r.Fold {
		name = strings.ToLower(name)
	}
	if v == nil {
		v = nodeNone
	}
	empty, err := r.MatchString("")
	return FieldTest{Names: []string{name}, Fold: r.Fold, value: v}, empty, err
}

// FromTests converts an expression that starts with "^From" followed by
// something that can match the From: field's colon and the blank of the
// From_ line ("^From.*peter", procmailex(5)'s first examples): procmail
// searches both lines. It returns the From: field test (nil if the
// expression cannot match it), a POSIX ERE for the envelope sender as the
// From_ line shows it (matches reaching into the line's date are not
// converted; "" if none), and whether the From_ line of the null sender
// ("From MAILER-DAEMON ...") matches. Other fields whose names start with
// "From" are not tested.
func (r *Regex) FromTests() (ft *FieldTest, sender string, nullSender bool, err error) {
	if hasKind(r.root, kStart) || hasKind(r.root, kEnd) {
		return nil, "", false, fmt.Errorf("uses '^^'")
	}
	f := first(r.root)
	if nullable(r.root) || !f.only('\n') {
		return nil, "", false, errUnbounded
	}
	s := deriv(r.root, '\n', r.Fold)
	for _, c := range []byte("From") {
		s = deriv(s, c, r.Fold)
	}
	if s.kind == kNone || nullable(s) {
		return nil, "", false, fmt.Errorf("does not name the From: field or the From_ line")
	}
	if v := deriv(s, ':', r.Fold); v.kind != kNone {
		val, err := valueRegex(v, r.Fold)
		if err != nil {
			return nil, "", false, err
		}
		if val != nil {
			name := "From"
			if r.Fold {
				name = "from"
			}
			ft = &FieldTest{Names: []string{name}, Fold: r.Fold, value: val}
		}
	}
	if e := deriv(s, ' ', r.Fold); e.kind != kNone {
		if e.size() > maxNodeSize {
			return nil, "", false, fmt.Errorf("is too complex to convert")
		}
		m := &nlMemo{no: map[*node]*node{}, end: map[*node]*node{}}
		p := m.noNL(e)
		if p.kind != kNone {
			sender = emitTop(p)
		}
		nullSender, err = r.MatchString("From MAILER-DAEMON  Sun Dec  6 10:00:01 2026\n")
		if err != nil {
			return nil, "", false, err
		}
	}
	return ft, sender, nullSender, nil
}
