// Package procmailrc reads procmail's rcfiles (procmailrc(5)): variable
// assignments, recipes with their flags, conditions and action lines,
// nested blocks, and procmail's egrep dialect of regular expressions
// (regex.go), which it can rewrite as POSIX EREs for Sieve's :regex.
// It only parses: what the file means on the new server is decided by
// mailmig/migrate/filters.
package procmailrc

import (
	"fmt"
	"strings"
)

// File is a parsed rcfile.
type File struct {
	Name  string
	Items []Item
}

// Item is an Assignment or a Recipe.
type Item interface{ line() int }

// Assignment is NAME=value (Unset: NAME alone).
type Assignment struct {
	Line  int
	Name  string
	Value string // raw, with quotes; see Expand
	Unset bool
}

// Recipe is ":0 flags : lock", conditions, one action.
type Recipe struct {
	Line int
	// Flags are the recipe's flag letters as written.
	Flags string
	// Lock is true when a local lockfile was asked for; LockFile names it.
	Lock     bool
	LockFile string
	Conds    []Condition
	Action   Action
}

// Has reports whether the recipe has flag f.
func (r *Recipe) Has(f byte) bool { return strings.IndexByte(r.Flags, f) >= 0 }

// Condition is one "*" line, without the star and surrounding blanks.
type Condition struct {
	Line int
	Text string
}

// ActionKind says what an action line is.
type ActionKind int

const (
	ActFolder  ActionKind = iota // mailbox: file, dir/ (Maildir), dir/. (MH)
	ActForward                   // ! addresses
	ActPipe                      // | program (Var set: VAR=| capture)
	ActBlock                     // { ... }
)

// Action is a recipe's action line.
type Action struct {
	Line int
	Kind ActionKind
	// Text is the line after '!' or '|' (or the folder), trimmed.
	Text string
	// Var is the variable a "VAR=| program" line captures into.
	Var   string
	Block []Item
}

func (a *Assignment) line() int { return a.Line }
func (r *Recipe) line() int     { return r.Line }

// Error is a syntax error with its position.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// maxDepth bounds block nesting.
const maxDepth = 64

// Parse parses an rcfile's text. name is used in errors.
func Parse(name, text string) (*File, error) {
	p := &parser{name: name, lines: strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")}
	items, err := p.items(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		return nil, &Error{name, p.i + 1, "'}' without a block"}
	}
	return &File{Name: name, Items: items}, nil
}

type parser struct {
	name  string
	lines []string
	i     int // next line index
}

func (p *parser) errf(line int, f string, a ...any) error {
	return &Error{p.name, line, fmt.Sprintf(f, a...)}
}

// logical returns the next logical line (continuations joined), its
// first line number, and advances. keepLead keeps leading blanks of
// continued lines (action lines of programs).
func (p *parser) logical(trimCont bool) (string, int) {
	start := p.i + 1
	var b strings.Builder
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		p.i++
		if strings.HasSuffix(l, "\\") && !strings.HasSuffix(l, "\\\\") {
			b.WriteString(strings.TrimSuffix(l, "\\"))
			if p.i < len(p.lines) && trimCont {
				p.lines[p.i] = strings.TrimLeft(p.lines[p.i], " \t")
			}
			continue
		}
		b.WriteString(l)
		break
	}
	return b.String(), start
}

// stripComment removes a word starting with '#' and the rest, outside
// quotes.
func stripComment(s string) string {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else if c == '\\' && q == '"' {
				i++
			}
		case c == '\\':
			i++
		case c == '\'' || c == '"' || c == '`':
			q = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimRight(s[:i], " \t")
		}
	}
	return s
}

func (p *parser) items(depth int) ([]Item, error) {
	if depth > maxDepth {
		return nil, p.errf(p.i+1, "blocks nested more than %d deep", maxDepth)
	}
	var out []Item
	for p.i < len(p.lines) {
		raw := strings.TrimLeft(p.lines[p.i], " \t")
		switch {
		case raw == "" || raw[0] == '#':
			p.i++
		case raw[0] == '}':
			if depth == 0 {
				return nil, p.errf(p.i+1, "'}' without a block")
			}
			rest := strings.TrimSpace(raw[1:])
			if rest != "" && rest[0] != '#' {
				p.lines[p.i] = rest
			} else {
				p.i++
			}
			return out, nil
		case raw[0] == ':':
			r, err := p.recipe(depth)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		default:
			a, err := p.assignment()
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
	}
	if depth > 0 {
		return nil, p.errf(len(p.lines), "block not closed with '}'")
	}
	return out, nil
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

func (p *parser) assignment() (*Assignment, error) {
	line, n := p.logical(false)
	line = strings.TrimSpace(line)
	i := 0
	for i < len(line) && isNameByte(line[i], i == 0) {
		i++
	}
	if i == 0 {
		return nil, p.errf(n, "expected a recipe (':0') or an assignment, found %q", clip(line))
	}
	name := line[:i]
	rest := strings.TrimLeft(line[i:], " \t")
	if rest == "" || rest[0] == '#' {
		return &Assignment{Line: n, Name: name, Unset: true}, nil
	}
	if rest[0] != '=' {
		return nil, p.errf(n, "expected '=' after %s", name)
	}
	val := strings.TrimLeft(rest[1:], " \t")
	// A quoted value may span lines.
	for quoteOpen(val) && p.i < len(p.lines) {
		val += "\n" + p.lines[p.i]
		p.i++
	}
	if quoteOpen(val) {
		return nil, p.errf(n, "unterminated quote in the value of %s", name)
	}
	return &Assignment{Line: n, Name: name, Value: stripComment(val)}, nil
}

func quoteOpen(s string) bool {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else if c == '\\' && q != '\'' {
				i++
			}
		case c == '\\':
			i++
		case c == '\'' || c == '"' || c == '`':
			q = c
		}
	}
	return q != 0
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func (p *parser) recipe(depth int) (*Recipe, error) {
	head, n := p.logical(false)
	head = stripComment(strings.TrimSpace(head))
	r := &Recipe{Line: n}
	s := head[1:]
	// ":0" (or the old ":N" with a condition count).
	j := 0
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == 0 {
		return nil, p.errf(n, "recipe start %q: expected ':0'", clip(head))
	}
	s = s[j:]
	flags, lock, hasLock := strings.Cut(s, ":")
	for _, c := range strings.TrimSpace(flags) {
		if c == ' ' || c == '\t' {
			continue
		}
		if !strings.ContainsRune("HBDAaEehbfcwWir", c) {
			return nil, p.errf(n, "unknown recipe flag %q", c)
		}
		r.Flags += string(c)
	}
	if hasLock {
		r.Lock = true
		r.LockFile = strings.TrimSpace(lock)
	}
	for p.i < len(p.lines) {
		raw := strings.TrimLeft(p.lines[p.i], " \t")
		if raw == "" || raw[0] == '#' {
			p.i++
			continue
		}
		if raw[0] != '*' {
			break
		}
		p.lines[p.i] = raw
		c, cn := p.logical(true)
		r.Conds = append(r.Conds, Condition{Line: cn, Text: strings.TrimSpace(c[1:])})
	}
	if p.i >= len(p.lines) {
		return nil, p.errf(n, "recipe without an action line")
	}
	raw := strings.TrimLeft(p.lines[p.i], " \t")
	if raw[0] == '{' && (len(raw) == 1 || raw[1] == ' ' || raw[1] == '\t') {
		an := p.i + 1
		rest := strings.TrimSpace(raw[1:])
		if rest != "" && rest[0] != '#' {
			p.lines[p.i] = rest
		} else {
			p.i++
		}
		block, err := p.items(depth + 1)
		if err != nil {
			return nil, err
		}
		r.Action = Action{Line: an, Kind: ActBlock, Block: block}
		return r, nil
	}
	if raw[0] == ':' || raw[0] == '}' {
		return nil, p.errf(p.i+1, "recipe on line %d has no action line", n)
	}
	line, an := p.logical(false)
	line = stripComment(strings.TrimSpace(line))
	a := Action{Line: an}
	switch {
	case line == "":
		return nil, p.errf(an, "empty action line")
	case line[0] == '!':
		a.Kind, a.Text = ActForward, strings.TrimSpace(line[1:])
	case line[0] == '|':
		a.Kind, a.Text = ActPipe, strings.TrimSpace(line[1:])
	default:
		a.Kind, a.Text = ActFolder, line
		// VAR=| program captures the program's output.
		k := 0
		for k < len(line) && isNameByte(line[k], k == 0) {
			k++
		}
		if k > 0 && k < len(line) {
			rest := strings.TrimLeft(line[k:], " \t")
			if strings.HasPrefix(rest, "=") {
				rest = strings.TrimLeft(rest[1:], " \t")
				if strings.HasPrefix(rest, "|") {
					a.Kind, a.Var, a.Text = ActPipe, line[:k], strings.TrimSpace(rest[1:])
				}
			}
		}
	}
	r.Action = a
	return r, nil
}
