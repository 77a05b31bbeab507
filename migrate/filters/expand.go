package filters

import (
	"strings"
)

// env is procmail's environment as far as it is known when converting:
// a variable set from a program's output or inside a conditional block is
// unknown.
type env map[string]*string

func (e env) get(name string) (string, bool) {
	v, ok := e[name]
	if !ok {
		return "", true // unset expands to ""
	}
	if v == nil {
		return "", false
	}
	return *v, true
}

func (e env) set(name, v string)  { e[name] = &v }
func (e env) unknown(name string) { e[name] = nil }

func (e env) clone() env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	return out
}

// regexQuote disarms regex characters ($\name).
func regexQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`.[]()*+?{}|^$\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// expand performs procmail's sh-like substitution on s: quotes are
// removed, $name, ${name}, ${name:-w}, ${name-w}, ${name:+w}, ${name+w},
// $\name are substituted. inQuotes treats s as inside double quotes
// (conditions starting with '$'): quotes are then kept literally.
// unknownVar names a variable whose value is not known; program is set
// when s runs a program (backquotes).
func expand(s string, e env, inQuotes bool) (out string, unknownVar string, program bool) {
	var b strings.Builder
	var q byte // current quote
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q == '\'':
			if c == '\'' {
				q = 0
			} else {
				b.WriteByte(c)
			}
			continue
		case c == '\\':
			if i+1 < len(s) {
				n := s[i+1]
				if q == '"' || inQuotes {
					// Inside double quotes a backslash only quotes $ ` " \ and newline.
					if strings.IndexByte("$`\"\\\n", n) < 0 {
						b.WriteByte('\\')
					}
				}
				b.WriteByte(n)
				i++
				continue
			}
			b.WriteByte(c)
			continue
		case c == '"' && !inQuotes:
			if q == '"' {
				q = 0
			} else {
				q = '"'
			}
			continue
		case c == '\'' && q == 0 && !inQuotes:
			q = '\''
			continue
		case c == '`':
			program = true
			j := strings.IndexByte(s[i+1:], '`')
			if j < 0 {
				return b.String(), unknownVar, true
			}
			i += j + 1
			continue
		case c == '$' && i+1 < len(s):
			val, n, unk := expandVar(s[i+1:], e)
			if n == 0 {
				b.WriteByte(c)
				continue
			}
			if unk != "" && unknownVar == "" {
				unknownVar = unk
			}
			b.WriteString(val)
			i += n
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), unknownVar, program
}

// expandVar expands the variable reference at the start of s (after
// '$') and returns its value and the bytes used.
func expandVar(s string, e env) (string, int, string) {
	if s[0] == '\\' {
		name := varName(s[1:])
		if name == "" {
			return "", 0, ""
		}
		v, ok := e.get(name)
		if !ok {
			return "", 1 + len(name), name
		}
		return regexQuote(v), 1 + len(name), ""
	}
	if s[0] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", 0, ""
		}
		inner := s[1:end]
		name := varName(inner)
		if name == "" {
			return "", 0, ""
		}
		op := inner[len(name):]
		v, ok := e.get(name)
		_, set := e[name]
		if !ok {
			return "", end + 1, name
		}
		switch {
		case strings.HasPrefix(op, ":-"):
			if v == "" {
				w, unk, _ := expand(op[2:], e, true)
				return w, end + 1, unk
			}
		case strings.HasPrefix(op, "-"):
			if !set {
				w, unk, _ := expand(op[1:], e, true)
				return w, end + 1, unk
			}
		case strings.HasPrefix(op, ":+"):
			if v != "" {
				w, unk, _ := expand(op[2:], e, true)
				return w, end + 1, unk
			}
			return "", end + 1, ""
		case strings.HasPrefix(op, "+"):
			if set {
				w, unk, _ := expand(op[1:], e, true)
				return w, end + 1, unk
			}
			return "", end + 1, ""
		case op != "":
			return "", 0, ""
		}
		return v, end + 1, ""
	}
	name := varName(s)
	if name == "" {
		// $$, $?, $=, $_, $-, $#, $n: procmail's run-time values.
		if strings.IndexByte("$?=_-#0123456789", s[0]) >= 0 {
			return "", 1, "$" + s[:1]
		}
		return "", 0, ""
	}
	v, ok := e.get(name)
	if !ok {
		return "", len(name), name
	}
	return v, len(name), ""
}

func varName(s string) string {
	i := 0
	for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || i > 0 && s[i] >= '0' && s[i] <= '9') {
		i++
	}
	return s[:i]
}
