package filters

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"mailmig/migrate/filters/procmailrc"
)

// Programs: what procmail and .forward pipes into is recognised for a
// few well-known patterns (formail adding header fields, formail's
// vacation idiom from procmailex(5), vacation(1)); any other program does
// not run on the new server and is reported.

// shellWords splits a command line the way sh would for simple cases
// (quotes, backslashes; no expansion).
func shellWords(s string) ([]string, bool) {
	var out []string
	var b strings.Builder
	inWord := false
	var q byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case q == '\'':
			if ch == '\'' {
				q = 0
			} else {
				b.WriteByte(ch)
			}
		case q == '"':
			if ch == '"' {
				q = 0
			} else if ch == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0 {
				i++
				b.WriteByte(s[i])
			} else {
				b.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			q = ch
			inWord = true
		case ch == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				out = append(out, b.String())
				b.Reset()
				inWord = false
			}
		default:
			b.WriteByte(ch)
			inWord = true
		}
	}
	if q != 0 {
		return nil, false
	}
	if inWord {
		out = append(out, b.String())
	}
	return out, true
}

// program returns the program's base name and arguments of a simple
// command (an optional leading "exec"), or ok=false for shell syntax.
func program(cmd string) (name string, args []string, ok bool) {
	if strings.ContainsAny(cmd, "|;&<>`$(){}") {
		return "", nil, false
	}
	w, ok := shellWords(cmd)
	if !ok || len(w) == 0 {
		return "", nil, false
	}
	if w[0] == "exec" {
		w = w[1:]
	}
	if len(w) == 0 {
		return "", nil, false
	}
	return filepath.Base(w[0]), w[1:], true
}

func (c *converter) pipe(st *rcState, lv *level, r *procmailrc.Recipe) ([]string, string) {
	text, unk, _ := expand(r.Action.Text, st.env, true)
	if unk != "" && !strings.HasPrefix(unk, "$") {
		text = r.Action.Text
	}
	if r.Action.Var != "" {
		st.env.unknown(r.Action.Var)
		delete(st.fields, r.Action.Var)
		if m := formailXRE.FindStringSubmatch("`" + strings.TrimSpace(r.Action.Text) + "`"); m != nil && len(r.Conds) == 0 && !r.Has('b') {
			st.fields[r.Action.Var] = m[1]
			return []string{fmt.Sprintf("# $%s holds the %s field (formail -x)", r.Action.Var, m[1])}, ""
		}
		return []string{fmt.Sprintf("# $%s was set from the program %q: conditions using it were not converted", r.Action.Var, short(r.Action.Text))}, ""
	}
	name, args, ok := program(text)
	if ok && name == "formail" && r.Has('f') {
		return c.formailFilter(args)
	}
	if ok && name == "vacation" {
		lines, why := c.vacation1(args, r.Has('c'))
		if why == "" && !r.Has('c') {
			lines = append(lines, "discard;")
		}
		return lines, why
	}
	if r.Has('f') {
		return nil, fmt.Sprintf("the rule changed the message with the program %q, which does not run on the new server", short(r.Action.Text))
	}
	what := "ran the program"
	if !r.Has('c') {
		what = "gave the message to the program"
	}
	return nil, fmt.Sprintf("your rule %s %q; it does not run on the new server", what, short(r.Action.Text))
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

var fieldRE = regexp.MustCompile(`^([!-9;-~]+):[ \t]*(.*)$`)

// formailFilter converts "formail -A 'Field: value'" (append a field) and
// -I (replace a field) to editheader (RFC 5293).
func (c *converter) formailFilter(args []string) ([]string, string) {
	var lines []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if (a == "-A" || a == "-I" || a == "-a") && i+1 < len(args) {
			m := fieldRE.FindStringSubmatch(args[i+1])
			if m == nil {
				return nil, fmt.Sprintf("formail %s %q is not a header field", a, args[i+1])
			}
			i++
			name, val := m[1], m[2]
			c.require("editheader")
			switch a {
			case "-I":
				lines = append(lines, fmt.Sprintf("deleteheader %s;", quote(name)))
				if val != "" {
					lines = append(lines, fmt.Sprintf("addheader :last %s %s;", quote(name), quote(val)))
				}
			case "-A":
				lines = append(lines, fmt.Sprintf("addheader :last %s %s;", quote(name), quote(val)))
			case "-a":
				c.require("variables")
				lines = append(lines, fmt.Sprintf("if not exists %s { addheader :last %s %s; }", quote(name), quote(name), quote(val)))
			}
			continue
		}
		return nil, fmt.Sprintf("the rule changed the message with formail %s, which has no Sieve form", strings.Join(args, " "))
	}
	if len(lines) == 0 {
		return nil, "formail without -A/-I changes nothing Sieve can express"
	}
	return lines, ""
}

var formailDRE = regexp.MustCompile(`^formail\s+(-r\s*)?-r?D\s+[0-9]+\s+\S+\s*$`)

// vacationIdiom converts procmailex(5)'s vacation recipe pair:
//
//	:0 Whc: vacation.lock
//	* !^FROM_DAEMON
//	* !^X-Loop: your@own.mail.address
//	| formail -rD 8192 vacation.cache
//
//	:0 ehc
//	| (formail -rA"Precedence: junk" -A"X-Loop: ..." ; echo "Mail received.") | $SENDMAIL -t
//
// into a Sieve vacation under the first recipe's conditions.
func (c *converter) vacationIdiom(st *rcState, lv *level, r1, r2 *procmailrc.Recipe) bool {
	if r1.Action.Kind != procmailrc.ActPipe || r1.Action.Var != "" || !r1.Has('c') || !(r1.Has('W') || r1.Has('w')) {
		return false
	}
	if !formailDRE.MatchString(strings.TrimSpace(r1.Action.Text)) {
		return false
	}
	if !r2.Has('e') || r2.Action.Kind != procmailrc.ActPipe || len(r2.Conds) > 0 {
		return false
	}
	t := r2.Action.Text
	if !strings.Contains(t, "formail") || !strings.Contains(t, "-r") || !(strings.Contains(t, "SENDMAIL") || strings.Contains(t, "sendmail")) {
		return false
	}
	reason, ok := c.idiomText(st, t)
	if !ok {
		return false
	}
	c.seq++
	info := &recipeInfo{varName: fmt.Sprintf("pm%d", c.seq), line: r1.Line, r: r1}
	guard, why := c.guard(st, lv, r1)
	if why != "" {
		return false
	}
	c.require("vacation")
	c.line("# %s lines %d-%d: vacation reply through formail's cache (procmailex(5))", filepath.Base(lv.file), r1.Line, r2.Line)
	open := guard != "true"
	if open {
		c.line("if %s {", guard)
		c.indent++
	}
	if c.chained[r1] {
		c.require("variables")
		c.line("set %s \"1\";", quote(info.varName))
	}
	c.line("vacation :days 365 %s;", quote(reason))
	if open {
		c.indent--
		c.line("}")
	}
	c.note("the vacation reply that formail's cache sent once per sender is answered once a year per sender; it goes to the envelope sender (formail -r answered Reply-To or From) and only to mail addressed to you, not to mailing lists")
	info.converted = true
	c.afterRecipe(lv, info)
	info2 := &recipeInfo{varName: info.varName + "e", line: r2.Line, r: r2, converted: true}
	c.afterRecipe(lv, info2)
	return true
}

var echoRE = regexp.MustCompile(`echo\s+("([^"\\]|\\.)*"|'[^']*'|[^;|)]+)`)
var catRE = regexp.MustCompile(`cat\s+("[^"]*"|'[^']*'|[^\s;|)]+)`)

// idiomText finds the reply text of the vacation idiom's second recipe.
func (c *converter) idiomText(st *rcState, t string) (string, bool) {
	if m := catRE.FindStringSubmatch(t); m != nil {
		name, unk, _ := expand(m[1], st.env, false)
		if unk != "" {
			return "", false
		}
		if !filepath.IsAbs(name) {
			md, _ := st.env.get("MAILDIR")
			name = filepath.Join(md, name)
		}
		if !c.insideHome(name) {
			return "", false
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return "", false
		}
		return string(b), true
	}
	var parts []string
	for _, m := range echoRE.FindAllStringSubmatch(t, -1) {
		w, ok := shellWords(m[1])
		if !ok {
			return "", false
		}
		parts = append(parts, strings.Join(w, " "))
	}
	if len(parts) == 0 {
		return "", false
	}
	return strings.Join(parts, "\n") + "\n", true
}
