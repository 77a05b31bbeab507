package sieve

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Comparators (RFC 4790, RFC 5051) and match types (RFC 5228 §2.7.1,
// RFC 5231, RFC 5229 §3.2 for the match variables).

func foldByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// foldUnicode is i;unicode-casemap's simple case fold.
func foldUnicode(s string) string {
	return strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, s)
}

func containsFold(s, sub string) bool {
	n := len(sub)
	if n == 0 {
		return true
	}
	first := foldByte(sub[0])
	for i := 0; i+n <= len(s); i++ {
		if foldByte(s[i]) != first {
			continue
		}
		j := 1
		for ; j < n && foldByte(s[i+j]) == foldByte(sub[j]); j++ {
		}
		if j == n {
			return true
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldByte(a[i]) != foldByte(b[i]) {
			return false
		}
	}
	return true
}

// numeric is i;ascii-numeric's value: the leading digits, or "positive
// infinity" (ok=false) when there are none.
func numeric(s string) (string, bool) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 {
		return "", false
	}
	d := strings.TrimLeft(s[:i], "0")
	return d, true
}

// compare orders a and b under comparator cmp.
func compare(cmp, a, b string) int {
	switch cmp {
	case "i;ascii-numeric":
		na, oka := numeric(a)
		nb, okb := numeric(b)
		switch {
		case !oka && !okb:
			return 0
		case !oka:
			return 1
		case !okb:
			return -1
		}
		if len(na) != len(nb) {
			if len(na) < len(nb) {
				return -1
			}
			return 1
		}
		return strings.Compare(na, nb)
	case "i;octet":
		return strings.Compare(a, b)
	case "i;unicode-casemap":
		return strings.Compare(foldUnicode(a), foldUnicode(b))
	}
	var x, y byte
	for i := 0; i < len(a) && i < len(b); i++ {
		if x, y = foldByte(a[i]), foldByte(b[i]); x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

func relation(rel string, c int) bool {
	switch rel {
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	}
	return false
}

// matchOne matches value against key; for :matches and :regex it returns
// the match variables (${0}, ${1}, ...) when wantVars.
func (m *matcher) matchOne(value, key string, re *regexp.Regexp, wantVars bool) (bool, []string, error) {
	switch m.typ {
	case "is":
		switch m.cmp {
		case "i;octet":
			return value == key, nil, nil
		case "i;ascii-numeric":
			return compare(m.cmp, value, key) == 0, nil, nil
		case "i;unicode-casemap":
			return foldUnicode(value) == foldUnicode(key), nil, nil
		}
		return equalFoldASCII(value, key), nil, nil
	case "contains":
		switch m.cmp {
		case "i;octet":
			return strings.Contains(value, key), nil, nil
		case "i;unicode-casemap":
			return strings.Contains(foldUnicode(value), foldUnicode(key)), nil, nil
		}
		return containsFold(value, key), nil, nil
	case "value":
		return relation(m.rel, compare(m.cmp, value, key)), nil, nil
	case "matches":
		var caps []string
		var ok bool
		if m.cmp == "i;unicode-casemap" {
			ok, caps = globRunes(key, value, wantVars)
		} else if !wantVars {
			ok = globFast(key, value, m.cmp != "i;octet")
		} else {
			ok, caps = globBytes(key, value, m.cmp != "i;octet", wantVars)
		}
		return ok, caps, nil
	case "regex":
		if re == nil {
			var err error
			if re, err = compileRegex(key, m.cmp); err != nil {
				return false, nil, &RuntimeError{Msg: "invalid regular expression '" + key + "' for regex match: " + err.(*ScriptError).Msg}
			}
		}
		if !wantVars {
			return re.MatchString(value), nil, nil
		}
		sub := re.FindStringSubmatch(value)
		if sub == nil {
			return false, nil, nil
		}
		return true, sub, nil
	}
	return false, nil, nil
}

// globFast is globBytes without captures: the iterative wildcard match
// (backtracking to the last '*' only), no allocation.
func globFast(pat, val string, fold bool) bool {
	eq := func(a, b byte) bool {
		if fold {
			return foldByte(a) == foldByte(b)
		}
		return a == b
	}
	p, v := 0, 0
	starP, starV := -1, 0
	for v < len(val) {
		if p < len(pat) {
			switch c := pat[p]; {
			case c == '*':
				starP, starV = p, v
				p++
				continue
			case c == '?':
				_, n := utf8.DecodeRuneInString(val[v:])
				p++
				v += n
				continue
			case c == '\\' && p+1 < len(pat):
				if eq(pat[p+1], val[v]) {
					p += 2
					v++
					continue
				}
			default:
				if eq(c, val[v]) {
					p++
					v++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		p = starP + 1
		starV++
		v = starV
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// globBytes matches value against a :matches pattern ("*", "?", "\"
// escapes). "?" matches one character (UTF-8 aware). Captures are the
// whole value then each wildcard's text, in the case of the value.
func globBytes(pat, val string, fold, wantVars bool) (bool, []string) {
	type piece struct {
		kind byte // 'l' literal, '*', '?'
		lit  string
	}
	var ps []piece
	var lit strings.Builder
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '\\':
			if i+1 < len(pat) {
				i++
				lit.WriteByte(pat[i])
			}
		case '*', '?':
			if lit.Len() > 0 {
				ps = append(ps, piece{kind: 'l', lit: lit.String()})
				lit.Reset()
			}
			ps = append(ps, piece{kind: c})
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		ps = append(ps, piece{kind: 'l', lit: lit.String()})
	}
	eq := func(a, b string) bool {
		if fold {
			return equalFoldASCII(a, b)
		}
		return a == b
	}
	caps := make([][2]int, 0, 8)
	var rec func(pi, vi int) bool
	steps := 0
	rec = func(pi, vi int) bool {
		steps++
		if steps > 100000 {
			return false
		}
		if pi == len(ps) {
			return vi == len(val)
		}
		p := ps[pi]
		switch p.kind {
		case 'l':
			if len(val)-vi < len(p.lit) || !eq(val[vi:vi+len(p.lit)], p.lit) {
				return false
			}
			return rec(pi+1, vi+len(p.lit))
		case '?':
			if vi >= len(val) {
				return false
			}
			_, n := utf8.DecodeRuneInString(val[vi:])
			caps = append(caps, [2]int{vi, vi + n})
			if rec(pi+1, vi+n) {
				return true
			}
			caps = caps[:len(caps)-1]
			return false
		default: // '*': shortest first, as pigeonhole's non-greedy leftmost
			for end := vi; end <= len(val); end++ {
				caps = append(caps, [2]int{vi, end})
				if rec(pi+1, end) {
					return true
				}
				caps = caps[:len(caps)-1]
				if end < len(val) {
					_, n := utf8.DecodeRuneInString(val[end:])
					end += n - 1
				}
			}
			return false
		}
	}
	if !rec(0, 0) {
		return false, nil
	}
	if !wantVars {
		return true, nil
	}
	out := make([]string, 0, len(caps)+1)
	out = append(out, val)
	for _, c := range caps {
		out = append(out, val[c[0]:c[1]])
	}
	return true, out
}

// globRunes is globBytes under i;unicode-casemap.
func globRunes(pat, val string, wantVars bool) (bool, []string) {
	fv := foldUnicode(val)
	if len(fv) != len(val) {
		// Folding changed the length: match on the folded text, captures
		// from it as well.
		return globBytes(foldUnicode(pat), fv, false, wantVars)
	}
	ok, _ := globBytes(foldUnicode(pat), fv, false, false)
	if !ok || !wantVars {
		return ok, nil
	}
	// Same byte length: positions carry over to the original.
	ok, caps := globBytes(foldUnicode(pat), fv, false, true)
	if !ok {
		return false, nil
	}
	out := []string{val}
	pos := 0
	for _, c := range caps[1:] {
		i := strings.Index(fv[pos:], c)
		if i < 0 {
			out = append(out, c)
			continue
		}
		out = append(out, val[pos+i:pos+i+len(c)])
		pos += i + len(c)
	}
	return true, out
}

func itoa(n int) string { return strconv.Itoa(n) }
