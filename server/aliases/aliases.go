// Package aliases reads the site's alias map, a file in the format of
// /etc/aliases (aliases(5) as Postfix's local(8) and sendmail read it),
// and expands a recipient's local part to accounts and external
// addresses. It is used by LMTP and submission's local delivery (through
// server/delivery), by submission's sender check and by Sieve vacation's
// own-address check; `mailmig alias list|check` shows it.
//
// Format: "name: target, target, ..."; a line starting with blank space
// continues the previous one; lines starting with '#' and blank lines are
// ignored; names and targets may be double-quoted. A target is a local
// name (an account or another alias), or user@domain (a local domain's
// address is its local part, anything else is forwarded). Names are
// matched case-insensitively. "|command", "/file" and ":include:"
// targets are refused with the line number: mailmig delivers to Maildirs
// only (Sieve does the rest).
//
// Implementation notes: expansion follows Postfix's local(8): an alias
// name is looked up before the account of the same name, an alias whose
// target is its own name means the account ("alice: alice, backup"),
// loops are cut (each name expands once) and depth is bounded.
// "postmaster" always resolves (RFC 5321 §4.5.1): when the file has no
// entry for it, Table.Postmaster names the accounts.
package aliases

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
)

// MaxDepth bounds nested aliases.
const MaxDepth = 20

// ErrUnknown is returned by Expand for a name that is neither an alias
// nor an account.
var ErrUnknown = errors.New("aliases: no such alias or account")

// Map is one parsed alias file.
type Map struct {
	// Source is the file name (for messages).
	Source  string
	entries map[string][]string // lowercased name -> targets
	lines   map[string]int      // name -> line number
	order   []string
}

// Parse reads an alias file. Errors name the source and line.
func Parse(r io.Reader, source string) (*Map, error) {
	m := &Map{Source: source, entries: map[string][]string{}, lines: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	var cur strings.Builder
	curLine, n := 0, 0
	flush := func() error {
		if cur.Len() == 0 {
			return nil
		}
		err := m.addEntry(cur.String(), curLine)
		cur.Reset()
		return err
	}
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur.Len() == 0 {
				return nil, fmt.Errorf("aliases: %s line %d: continuation line without an alias before it", source, n)
			}
			cur.WriteString(" " + strings.TrimSpace(line))
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		cur.WriteString(line)
		curLine = n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("aliases: %s line %d: %w", source, n+1, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return m, nil
}

// Load parses the alias file at path.
func Load(path string) (*Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("aliases: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

func (m *Map) addEntry(text string, line int) error {
	name, rest, err := splitName(text)
	if err != nil {
		return fmt.Errorf("aliases: %s line %d: %v", m.Source, line, err)
	}
	key := strings.ToLower(name)
	if prev, dup := m.lines[key]; dup {
		return fmt.Errorf("aliases: %s line %d: %q is defined twice (first at line %d)", m.Source, line, name, prev)
	}
	targets, err := splitTargets(rest)
	if err != nil {
		return fmt.Errorf("aliases: %s line %d: %s: %v", m.Source, line, name, err)
	}
	if len(targets) == 0 {
		return fmt.Errorf("aliases: %s line %d: %s: no target", m.Source, line, name)
	}
	m.entries[key] = targets
	m.lines[key] = line
	m.order = append(m.order, key)
	return nil
}

// splitName splits `name: rest` (name possibly quoted).
func splitName(s string) (name, rest string, err error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, `"`) {
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return "", "", errors.New("unterminated quoted name")
		}
		name, s = s[1:1+end], strings.TrimSpace(s[2+end:])
		if !strings.HasPrefix(s, ":") {
			return "", "", errors.New(`expected ":" after the name`)
		}
		return name, s[1:], nil
	}
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return "", "", errors.New(`no ":" after the alias name`)
	}
	name = strings.TrimSpace(s[:i])
	if name == "" || strings.ContainsAny(name, " \t@,") {
		return "", "", fmt.Errorf("bad alias name %q", name)
	}
	return name, s[i+1:], nil
}

// splitTargets splits the comma-separated targets, honouring quotes.
func splitTargets(s string) ([]string, error) {
	var out []string
	var b strings.Builder
	quoted := false
	add := func() error {
		t := strings.TrimSpace(b.String())
		b.Reset()
		if t == "" {
			return nil
		}
		t = strings.Trim(t, `"`)
		switch {
		case strings.HasPrefix(t, "|"):
			return fmt.Errorf("command target %q is not supported (mailmig delivers to Maildirs; use Sieve)", t)
		case strings.HasPrefix(t, "/"):
			return fmt.Errorf("file target %q is not supported", t)
		case strings.HasPrefix(strings.ToLower(t), ":include:"):
			return fmt.Errorf("%q is not supported: list the members here", t)
		}
		t = strings.Trim(t, "<>")
		if strings.ContainsAny(t, " \t") || strings.Count(t, "@") > 1 || strings.HasPrefix(t, "@") || strings.HasSuffix(t, "@") {
			return fmt.Errorf("bad target %q", t)
		}
		out = append(out, t)
		return nil
	}
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			b.WriteRune(r)
		case r == ',' && !quoted:
			if err := add(); err != nil {
				return nil, err
			}
		default:
			b.WriteRune(r)
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if err := add(); err != nil {
		return nil, err
	}
	return out, nil
}

// Names lists the alias names in file order (lowercased).
func (m *Map) Names() []string { return append([]string(nil), m.order...) }

// Targets returns an alias's targets as written.
func (m *Map) Targets(name string) ([]string, bool) {
	t, ok := m.entries[strings.ToLower(name)]
	return t, ok
}

// Line is the line an alias is defined on (0 if none).
func (m *Map) Line(name string) int { return m.lines[strings.ToLower(name)] }

// Expansion is where mail to one local name goes.
type Expansion struct {
	// Users are local accounts, deduplicated, in order.
	Users []string
	// External are addresses outside the local domains.
	External []string
	// Alias is false when the name is an account and no alias.
	Alias bool
}

// Table is the alias map in use: a file reloaded on request (SIGHUP),
// the local domains and the postmaster fallback. Safe for concurrent
// use; a nil *Table has no aliases.
type Table struct {
	// Path is the alias file ("" = none).
	Path string
	// Domains are the local domains: user@domain targets in them are local.
	Domains []string
	// Postmaster are the accounts for postmaster@ when the file has no
	// postmaster entry.
	Postmaster []string
	// IsUser reports whether a name is a local account.
	IsUser func(name string) (bool, error)

	mu sync.RWMutex
	m  *Map
}

// Load reads Path (again). On error the map in use is kept.
func (t *Table) Load() error {
	if t.Path == "" {
		t.mu.Lock()
		t.m = &Map{entries: map[string][]string{}, lines: map[string]int{}}
		t.mu.Unlock()
		return nil
	}
	m, err := Load(t.Path)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.m = m
	t.mu.Unlock()
	return nil
}

// Map returns the map in use.
func (t *Table) Map() *Map {
	if t == nil {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m
}

func (t *Table) entry(name string) ([]string, bool) {
	if t == nil {
		return nil, false
	}
	key := strings.ToLower(name)
	if m := t.Map(); m != nil {
		if tg, ok := m.entries[key]; ok {
			return tg, true
		}
	}
	if key == "postmaster" && len(t.Postmaster) > 0 {
		return t.Postmaster, true
	}
	return nil, false
}

// local returns the local part of a target in a local domain ("" and
// false for an external address).
func (t *Table) local(target string) (string, bool) {
	i := strings.LastIndexByte(target, '@')
	if i < 0 {
		return target, true
	}
	for _, d := range t.Domains {
		if strings.EqualFold(d, target[i+1:]) {
			return target[:i], true
		}
	}
	return "", false
}

// Expand resolves a local name (no domain, no +detail) to accounts and
// external addresses. A name that is neither gives ErrUnknown; so does an
// alias that ends only in unknown names (the error names them).
func (t *Table) Expand(name string) (Expansion, error) {
	var exp Expansion
	if _, ok := t.entry(name); !ok {
		ok, err := t.isUser(name)
		if err != nil {
			return exp, err
		}
		if !ok {
			return exp, fmt.Errorf("%w: %s", ErrUnknown, name)
		}
		exp.Users = []string{name}
		return exp, nil
	}
	exp.Alias = true
	seen := map[string]bool{}
	seenUser := map[string]bool{}
	seenExt := map[string]bool{}
	var unknown []string
	var walk func(name string, depth int, self bool) error
	walk = func(name string, depth int, self bool) error {
		key := strings.ToLower(name)
		if depth > MaxDepth {
			return fmt.Errorf("aliases: %s: nested more than %d deep", name, MaxDepth)
		}
		targets, isAlias := t.entry(key)
		if isAlias && !self && !seen[key] {
			seen[key] = true
			for _, tg := range targets {
				local, isLocal := t.local(tg)
				if !isLocal {
					if !seenExt[strings.ToLower(tg)] {
						seenExt[strings.ToLower(tg)] = true
						exp.External = append(exp.External, tg)
					}
					continue
				}
				base, _, _ := strings.Cut(local, "+")
				if err := walk(base, depth+1, strings.EqualFold(base, key)); err != nil {
					return err
				}
			}
			return nil
		}
		ok, err := t.isUser(key)
		if err != nil {
			return err
		}
		if !ok {
			if !isAlias {
				unknown = append(unknown, name)
			}
			return nil
		}
		if !seenUser[key] {
			seenUser[key] = true
			exp.Users = append(exp.Users, key)
		}
		return nil
	}
	if err := walk(name, 0, false); err != nil {
		return exp, err
	}
	if len(exp.Users) == 0 && len(exp.External) == 0 {
		return exp, fmt.Errorf("%w: %s leads to no account (%s)", ErrUnknown, name, strings.Join(unknown, ", "))
	}
	return exp, nil
}

func (t *Table) isUser(name string) (bool, error) {
	if t == nil || t.IsUser == nil {
		return false, nil
	}
	return t.IsUser(strings.ToLower(name))
}

// AliasesOf lists the alias names whose expansion is user alone (no
// other account, no external address): the addresses user may send as
// and that count as theirs for vacation. Sorted.
func (t *Table) AliasesOf(user string) []string {
	if t == nil {
		return nil
	}
	var names []string
	if m := t.Map(); m != nil {
		names = m.Names()
	}
	if _, inFile := t.entry("postmaster"); inFile && !contains(names, "postmaster") {
		names = append(names, "postmaster")
	}
	var out []string
	for _, n := range names {
		if strings.EqualFold(n, user) {
			continue
		}
		exp, err := t.Expand(n)
		if err == nil && len(exp.External) == 0 && len(exp.Users) == 1 && strings.EqualFold(exp.Users[0], user) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// SoleUser reports whether name is user or an alias that expands to user
// alone (submission's sender check).
func (t *Table) SoleUser(name, user string) bool {
	if strings.EqualFold(name, user) {
		return true
	}
	if t == nil {
		return false
	}
	if _, ok := t.entry(name); !ok {
		return false
	}
	exp, err := t.Expand(name)
	return err == nil && len(exp.External) == 0 && len(exp.Users) == 1 && strings.EqualFold(exp.Users[0], user)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
