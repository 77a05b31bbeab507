package imap

import (
	"strings"
)

// envAddr is one address of an ENVELOPE address list (RFC 9051 §7.5.2):
// name is the display name as written in the header (encoded words and
// 8-bit bytes kept, quotes removed), as dovecot sends it. A group is a
// start entry (group set, no host) and an end entry (all empty, end set).
type envAddr struct {
	name, adl, mailbox, host string
	group                    string
	start, end               bool // a group's start ("name:", group may be "") and end
}

// parseAddressList splits an address header value leniently: mail from
// old clients is often not RFC 5322, and an address the parser cannot
// make sense of is better passed on than dropped.
func parseAddressList(v string) []envAddr {
	var out []envAddr
	v = unfold(v)
	for len(v) > 0 {
		tok, sep, rest := nextAddressToken(v)
		v = rest
		tok = strings.TrimSpace(tok)
		if sep == ':' {
			// Group start: "name: a, b;".
			out = append(out, envAddr{group: displayName(tok), start: true})
			inner, tail := splitGroup(v)
			for _, a := range parseAddressList(inner) {
				if !a.start && !a.end {
					out = append(out, a)
				}
			}
			out = append(out, envAddr{end: true})
			v = strings.TrimLeft(tail, " \t,")
			continue
		}
		if strings.TrimSpace(stripComments(tok)) == "" {
			// Empty, or only a comment ("group2: (foo) ;"): no address.
			continue
		}
		out = append(out, parseMailbox(tok))
	}
	return out
}

// nextAddressToken returns text up to the next top-level ',' or ':' (not
// inside quotes, comments or angle brackets) and which one ended it.
func nextAddressToken(v string) (tok string, sep byte, rest string) {
	i := indexTopLevel(v, ",:;")
	if i < 0 {
		return v, 0, ""
	}
	return v[:i], v[i], v[i+1:]
}

// splitGroup returns a group's member list (up to the top-level ';') and
// what follows it.
func splitGroup(v string) (inner, rest string) {
	i := indexTopLevel(v, ";")
	if i < 0 {
		return v, ""
	}
	return v[:i], v[i+1:]
}

// indexTopLevel returns the index of the first byte of v that is one of
// stops and stands outside quoted strings, comments and angle brackets,
// or -1.
func indexTopLevel(v, stops string) int {
	depth, angle, quoted := 0, false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case angle:
		case strings.IndexByte(stops, c) >= 0:
			return i
		}
	}
	return -1
}

// parseMailbox parses "Name <local@host>" or "local@host (comment)".
func parseMailbox(tok string) envAddr {
	var a envAddr
	spec := tok
	if i := indexUnquoted(tok, '<'); i >= 0 {
		a.name = displayName(tok[:i])
		spec = tok[i+1:]
		if j := strings.IndexByte(spec, '>'); j >= 0 {
			spec = spec[:j]
		}
		// Source route: "<@a,@b:user@host>".
		if strings.HasPrefix(spec, "@") {
			if j := strings.IndexByte(spec, ':'); j >= 0 {
				a.adl, spec = spec[:j], spec[j+1:]
			}
		}
	} else if c := lastComment(tok); c != "" {
		// The old style "user@domain (Real Name)", everywhere in mail
		// from UW-IMAP days: the comment is the name (as dovecot and
		// c-client take it).
		a.name = strings.Join(strings.Fields(c), " ")
	}
	// Comments and folding white space may stand around the '@' and the
	// dots (RFC 5322 §4.4 obs-local-part, obs-domain).
	spec = strings.TrimSpace(stripComments(spec))
	if i := strings.LastIndexByte(spec, '@'); i >= 0 {
		a.mailbox, a.host = unquote(spec[:i]), strings.Join(strings.Fields(spec[i+1:]), "")
	} else if words := strings.Fields(spec); len(words) > 1 && !strings.Contains(spec, "\"") && indexUnquoted(tok, '<') < 0 {
		// Words without '@' ("goran at domain.com (Name)"): dovecot
		// takes them for a display name without an address; the
		// comment is dropped.
		a.name, a.mailbox, a.host = strings.Join(words, " "), "MISSING_MAILBOX", "MISSING_DOMAIN"
		return a
	} else {
		// What dovecot answers for an address without a domain.
		a.mailbox, a.host = unquote(spec), "MISSING_DOMAIN"
	}
	if a.mailbox == "" {
		a.mailbox = "MISSING_MAILBOX"
	}
	return a
}

// lastComment returns the text of the last top-level comment of s
// (without its parentheses; nested comments kept as text), or "".
func lastComment(s string) string {
	depth, quoted, start, last := 0, false, -1, ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case depth == 0 && c == '"':
			quoted = true
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			if depth == 0 {
				start = i + 1
			}
			depth++
		case c == ')' && depth > 0:
			depth--
			if depth == 0 {
				last = s[start:i]
			}
		}
	}
	return strings.TrimSpace(last)
}

// indexUnquoted finds c outside quoted strings and comments.
func indexUnquoted(s string, c byte) int {
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case quoted:
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				quoted = false
			}
		case s[i] == '"':
			quoted = true
		case s[i] == '(':
			depth++
		case s[i] == ')' && depth > 0:
			depth--
		case depth == 0 && s[i] == c:
			return i
		}
	}
	return -1
}

// stripComments removes (comments), nested ones included.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '"' {
				quoted = false
			}
		case c == '"' && depth == 0:
			quoted = true
			b.WriteByte(c)
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// displayName removes comments and quotes and collapses white space.
func displayName(s string) string {
	return strings.Join(strings.Fields(unquote(stripComments(s))), " ")
}

// unquote removes the quotes of quoted strings within s and their
// backslash escapes; other text is kept.
func unquote(s string) string {
	if !strings.Contains(s, `"`) {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted = !quoted
		case quoted && c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// rawAddresses writes an ENVELOPE address list.
func (w *writer) rawAddresses(l []envAddr) *writer {
	if len(l) == 0 {
		return w.raw("NIL")
	}
	w.byte1('(')
	for _, a := range l {
		switch {
		case a.end:
			w.raw("(NIL NIL NIL NIL)")
		case a.start:
			// dovecot: an empty group name (":;") is "", not NIL.
			w.raw("(NIL NIL ").str(a.group).raw(" NIL)")
		default:
			w.byte1('(').humanNstr(a.name).sp().nstr(a.adl).sp().nstr(a.mailbox).sp().nstr(a.host).byte1(')')
		}
	}
	return w.byte1(')')
}
