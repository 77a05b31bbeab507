package sieve

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// sval is a string argument: a constant, or literal and variable parts
// (RFC 5229 §3) expanded at run time.
type sval struct {
	lit   string
	parts []spart // nil: constant lit
}

type spart struct {
	lit   string
	name  string // variable name (lower case); "" for a literal
	match int    // match variable number, or -1
}

func (v *sval) constant() (string, bool) { return v.lit, v.parts == nil }

// sval compiles a string: encoded characters (RFC 5228 §2.4.2.4) are
// decoded, then "${...}" references split out when variables is on.
func (c *compiler) sval(s string) *sval {
	if c.has("encoded-character") && strings.Contains(s, "${") {
		s = decodeEncoded(s)
	}
	if !c.has("variables") || !strings.Contains(s, "${") {
		return &sval{lit: s}
	}
	var parts []spart
	var lit strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "${") {
			end := strings.IndexByte(s[i+2:], '}')
			if end >= 0 {
				name := s[i+2 : i+2+end]
				if n, ok := matchVarNum(name); ok {
					parts = append(parts, spart{lit: lit.String(), match: -1}, spart{match: n})
					lit.Reset()
					i += end + 3
					continue
				}
				if validVarName(name, true) {
					parts = append(parts, spart{lit: lit.String(), match: -1}, spart{name: lower(name), match: -1})
					lit.Reset()
					i += end + 3
					continue
				}
			}
		}
		lit.WriteByte(s[i])
		i++
	}
	if len(parts) == 0 {
		return &sval{lit: s}
	}
	if lit.Len() > 0 {
		parts = append(parts, spart{lit: lit.String(), match: -1})
	}
	return &sval{lit: s, parts: parts}
}

func matchVarNum(s string) (int, bool) {
	if s == "" || len(s) > 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// decodeEncoded replaces ${hex:...} and ${unicode:...} (RFC 5228
// §2.4.2.4); malformed sequences stay as they are.
func decodeEncoded(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '$' && i+2 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end > 0 {
				inner := s[i+2 : i+end]
				if dec, ok := decodeOne(inner); ok {
					b.WriteString(dec)
					i += end + 1
					continue
				}
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func decodeOne(inner string) (string, bool) {
	kind, rest, ok := strings.Cut(inner, ":")
	if !ok {
		return "", false
	}
	kind = strings.ToLower(strings.TrimSpace(kind))
	if kind != "hex" && kind != "unicode" {
		return "", false
	}
	var b strings.Builder
	for _, f := range strings.Fields(rest) {
		n, err := strconv.ParseUint(f, 16, 32)
		if err != nil {
			return "", false
		}
		if kind == "hex" {
			if n > 0xff {
				return "", false
			}
			b.WriteByte(byte(n))
		} else {
			if !utf8.ValidRune(rune(n)) {
				return "", false
			}
			b.WriteRune(rune(n))
		}
	}
	return b.String(), true
}

// quoteWildcard escapes *, ? and \ (RFC 5229 §4.1 :quotewildcard).
func quoteWildcard(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`)
	return r.Replace(s)
}

func quoteRegex(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`\^$.[]|()?*+{}`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// applyMods applies set's modifiers (RFC 5229 §4.1) in precedence order.
func applyMods(v string, mods []string) string {
	for _, m := range mods {
		switch m {
		case "lower":
			v = strings.ToLower(v)
		case "upper":
			v = strings.ToUpper(v)
		case "lowerfirst":
			if r, n := utf8.DecodeRuneInString(v); n > 0 {
				v = strings.ToLower(string(r)) + v[n:]
			}
		case "upperfirst":
			if r, n := utf8.DecodeRuneInString(v); n > 0 {
				v = strings.ToUpper(string(r)) + v[n:]
			}
		case "quotewildcard":
			v = quoteWildcard(v)
		case "quoteregex":
			v = quoteRegex(v)
		case "length":
			v = strconv.Itoa(utf8.RuneCountInString(v))
		}
	}
	return v
}
