package filters

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// .forward (sendmail/Postfix/exim forward files): one or more entries
// separated by commas or newlines, '#' comments. An entry is an address
// (forward), "\user" (deliver to the user's own mailbox, no further
// forwarding), "|command" (pipe; procmail and vacation(1) are
// recognised), "/path" (append to a file), or ":include:/file".

// ForwardEntry is one parsed .forward entry.
type ForwardEntry struct {
	Line int
	// Kind is "address", "self", "pipe", "file" or "include".
	Kind string
	Text string
}

// ParseForward splits a .forward file into entries.
func ParseForward(text string) ([]ForwardEntry, error) {
	var out []ForwardEntry
	for ln, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		lineNo := ln + 1
		s := strings.TrimSpace(line)
		if s == "" || s[0] == '#' {
			continue
		}
		for len(s) > 0 {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			var entry string
			if s[0] == '"' {
				end := -1
				for i := 1; i < len(s); i++ {
					if s[i] == '\\' {
						i++
						continue
					}
					if s[i] == '"' {
						end = i
						break
					}
				}
				if end < 0 {
					return nil, fmt.Errorf("line %d: unterminated quote", lineNo)
				}
				entry = strings.ReplaceAll(s[1:end], `\"`, `"`)
				s = s[end+1:]
			} else if s[0] == '|' {
				// An unquoted pipe runs to the end of the line.
				entry, s = s, ""
			} else {
				i := strings.IndexAny(s, ", \t")
				if i < 0 {
					i = len(s)
				}
				entry, s = s[:i], s[i:]
				if strings.HasPrefix(entry, "#") {
					break
				}
			}
			e := ForwardEntry{Line: lineNo, Text: strings.TrimSpace(entry)}
			switch {
			case strings.HasPrefix(e.Text, "|"):
				e.Kind, e.Text = "pipe", strings.TrimSpace(e.Text[1:])
			case strings.HasPrefix(e.Text, "\\"):
				e.Kind, e.Text = "self", e.Text[1:]
			case strings.HasPrefix(e.Text, "/"):
				e.Kind = "file"
			case strings.HasPrefix(strings.ToLower(e.Text), ":include:"):
				e.Kind = "include"
			default:
				e.Kind = "address"
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// forward converts a .forward file (and the procmailrc it runs).
func (c *converter) forward(path, text string, rc []byte) error {
	entries, err := ParseForward(text)
	if err != nil {
		c.problem(path, 0, "the file could not be read (%v); nothing in it was converted and your mail stays in your INBOX", err)
		c.comment(text)
		return nil
	}
	if len(entries) == 0 {
		return nil
	}
	base := filepath.Base(path)
	var addrs []string
	local := false    // a copy stays on this server
	procmail := false // procmail runs (from .forward or for \user)
	kept := false     // an entry was not converted: keep the mail here
	var vacation []ForwardEntry
	for _, e := range entries {
		switch e.Kind {
		case "address":
			if e.Text == c.o.User || (c.o.Domain != "" && strings.EqualFold(e.Text, c.o.User+"@"+c.o.Domain)) {
				local = true
				continue
			}
			a, err := c.address(e.Text)
			if err != nil {
				c.problem(path, e.Line, "your .forward forwarded to %q, which is not a valid address; it is not converted (the messages stay in your INBOX)", e.Text)
				kept = true
				c.line("# NOT CONVERTED (%s line %d): %s (not a valid address)", base, e.Line, e.Text)
				continue
			}
			addrs = append(addrs, a)
		case "self":
			local = true
		case "pipe":
			name, args, ok := program(e.Text)
			switch {
			case isProcmail(e.Text):
				procmail = true
			case ok && name == "vacation":
				vacation = append(vacation, e)
				_ = args
			default:
				c.problem(path, e.Line, "your .forward gave every message to the program %q; it does not run on the new server (the messages stay in your INBOX)", short(e.Text))
				kept = true
				c.line("# NOT CONVERTED (%s line %d): |%s", base, e.Line, e.Text)
			}
		case "file":
			st := &rcState{env: c.initialEnv()}
			name, kind, why := c.folder(st, e.Text)
			if kind == destBad || kind == destDiscard {
				if kind == destDiscard {
					c.line("# %s line %d: %s", base, e.Line, e.Text)
					continue
				}
				c.problem(path, e.Line, "your .forward appended mail to %s: %s; it is not converted (the messages stay in your INBOX)", e.Text, why)
				kept = true
				c.line("# NOT CONVERTED (%s line %d): %s", base, e.Line, e.Text)
				continue
			}
			c.require("fileinto", "copy", "mailbox")
			c.line("# %s line %d: %s", base, e.Line, e.Text)
			c.line("fileinto :copy :create %s;", quote(name))
		case "include":
			c.problem(path, e.Line, "your .forward read addresses from %s; it is not converted (the messages stay in your INBOX)", e.Text)
			kept = true
			c.line("# NOT CONVERTED (%s line %d): %s", base, e.Line, e.Text)
		}
	}
	if local && rc != nil && c.o.ProcmailAlways {
		procmail = true
	}
	for _, v := range vacation {
		_, args, _ := program(v.Text)
		c.line("# %s line %d: |%s", base, v.Line, v.Text)
		lines, why := c.vacation1(args, true)
		if why != "" {
			c.problem(path, v.Line, "%s", why)
			c.line("# NOT CONVERTED: %s", why)
			continue
		}
		for _, l := range lines {
			c.line("%s", l)
		}
	}
	for _, a := range addrs {
		c.require("copy")
		c.line("redirect :copy %s;", quote(a))
	}
	if len(addrs) > 5 {
		c.note("your .forward forwards to %d addresses; the new server forwards a message to at most 5", len(addrs))
	}
	switch {
	case procmail && rc != nil:
		c.line("# %s runs procmail:", base)
		return c.procmail(c.o.Procmailrc, rc)
	case procmail:
		c.note("your .forward runs procmail but there is no %s: mail goes to your INBOX", c.o.Procmailrc)
	case local || kept:
		c.line("keep;")
	default:
		c.line("# nothing in %s kept a copy on this server: neither does the new one", base)
		c.line("discard;")
	}
	return nil
}

func isProcmail(cmd string) bool {
	for _, w := range strings.Fields(strings.NewReplacer("\"", " ", "'", " ", "&&", " ", "||", " ", ";", " ").Replace(cmd)) {
		if filepath.Base(w) == "procmail" {
			return true
		}
	}
	return false
}

// vacation1 converts a vacation(1) call: -a alias (:addresses),
// -r/-t interval in days (:days; "infinite"/non-numeric: once), -m file
// (the message file, else ~/.vacation.msg). The message file's Subject:
// becomes :subject and $SUBJECT the original subject.
func (c *converter) vacation1(args []string, _ bool) ([]string, string) {
	days := c.o.VacationDays
	if days <= 0 {
		days = 7
	}
	var aliases []string
	msgFile := c.o.VacationMsg
	for i := 0; i < len(args); i++ {
		a := args[i]
		arg := func() string {
			if len(a) > 2 {
				return a[2:]
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case strings.HasPrefix(a, "-a"):
			aliases = append(aliases, arg())
		case strings.HasPrefix(a, "-r"), strings.HasPrefix(a, "-t"):
			v := arg()
			v = strings.TrimSuffix(strings.TrimSuffix(v, "d"), "D")
			n, err := strconv.Atoi(v)
			switch {
			case err != nil:
				days = 365
				c.note("vacation(1) answered each sender only once (-r %s); the new server answers once a year", v)
			case n <= 0:
				days = 1
				c.note("vacation(1) answered every message (-r 0); the new server answers each sender at most once a day")
			default:
				days = n
			}
		case strings.HasPrefix(a, "-m"):
			msgFile = arg()
			if !filepath.IsAbs(msgFile) {
				msgFile = filepath.Join(c.o.Home, msgFile)
			}
		case a == "-i" || a == "-I" || a == "-j" || a == "-z" || a == "-x" || a == "-d" || a == "-l" || a == "-y":
			if a == "-j" {
				c.note("vacation(1) -j answered mail not addressed to you; the new server answers only mail to your addresses")
			}
			if a == "-i" || a == "-I" {
				return nil, "vacation -i only initialises its database; it sent no replies"
			}
		case strings.HasPrefix(a, "-f"), strings.HasPrefix(a, "-s"):
			arg()
		case strings.HasPrefix(a, "-"):
			return nil, fmt.Sprintf("vacation(1) option %s has no Sieve form", a)
		default:
			// the login name
			if a != c.o.User && a != "" {
				aliases = append(aliases, a)
			}
		}
	}
	if !c.insideHome(msgFile) {
		return nil, fmt.Sprintf("the vacation message %s is outside your home directory", msgFile)
	}
	b, err := os.ReadFile(msgFile)
	if err != nil {
		return nil, fmt.Sprintf("your .forward ran vacation(1) but its message %s could not be read (%v); no vacation reply is sent", msgFile, err)
	}
	c.res.Sources = append(c.res.Sources, msgFile)
	subject, from, text := parseVacationMsg(string(b))
	c.require("vacation")
	var lines []string
	useSubj := strings.Contains(subject, "$SUBJECT") || strings.Contains(text, "$SUBJECT")
	if useSubj {
		c.require("variables")
		lines = append(lines, `set "subject" "";`, `if header :matches "subject" "*" { set "subject" "${1}"; }`)
		subject = strings.ReplaceAll(sieveVarEscape(subject), "$SUBJECT", "${subject}")
		text = strings.ReplaceAll(sieveVarEscape(text), "$SUBJECT", "${subject}")
	}
	var b2 strings.Builder
	fmt.Fprintf(&b2, "vacation :days %d", days)
	if useSubj {
		// The subject varies with the message: one handle, so that a
		// sender is answered once per :days whatever the subject
		// (RFC 5230 §4.2), as vacation(1)'s database did.
		b2.WriteString(` :handle "mailmig-vacation"`)
	}
	var addrs []string
	for _, a := range append(aliases, c.o.Addresses...) {
		if a == "" {
			continue
		}
		if !strings.Contains(a, "@") && c.o.Domain != "" {
			a += "@" + c.o.Domain
		}
		if !containsFold(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) > 0 {
		fmt.Fprintf(&b2, " :addresses %s", quoteList(addrs))
	}
	if subject != "" {
		fmt.Fprintf(&b2, " :subject %s", quote(subject))
	}
	if from != "" {
		fmt.Fprintf(&b2, " :from %s", quote(from))
	}
	fmt.Fprintf(&b2, " %s;", quote(text))
	lines = append(lines, b2.String())
	return lines, ""
}

// sieveVarEscape keeps "${" literal in a string of a script that uses
// variables.
func sieveVarEscape(s string) string { return strings.ReplaceAll(s, "${", "${hex:24}{") }

func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// parseVacationMsg reads a vacation(1) message file: header fields
// (Subject:, From:; others are dropped), a blank line, the text. A file
// without a header is all text.
func parseVacationMsg(s string) (subject, from, text string) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	i := 0
	hdr := map[string]string{}
	last := ""
	for ; i < len(lines); i++ {
		l := lines[i]
		if l == "" {
			i++
			break
		}
		if (l[0] == ' ' || l[0] == '\t') && last != "" {
			hdr[last] += " " + strings.TrimSpace(l)
			continue
		}
		m := fieldRE.FindStringSubmatch(l)
		if m == nil {
			return "", "", s // not a header: all text
		}
		last = strings.ToLower(m[1])
		hdr[last] = m[2]
	}
	if i >= len(lines) && len(hdr) > 0 && !strings.Contains(s, "\n\n") {
		return hdr["subject"], hdr["from"], ""
	}
	return hdr["subject"], hdr["from"], strings.Join(lines[i:], "\n")
}
