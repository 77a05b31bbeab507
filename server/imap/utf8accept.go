package imap

import "strings"

// UTF8=ACCEPT (RFC 6855). After ENABLE UTF8=ACCEPT (auth.go's cmdEnable
// sets c.utf8Accept and the writer's utf8) mailbox names travel as UTF-8
// instead of modified UTF-7 both ways (writer.mailbox, decodeName),
// quoted strings may hold UTF-8, APPEND takes the UTF8 data item, and a
// charset on SEARCH, SORT or THREAD conflicts with it (§3 with erratum
// 4029). dovecot 2.3.19 does not implement UTF8=ACCEPT (it neither
// announces it nor answers ENABLE with ENABLED), so these are checked
// against the RFC and python3's imaplib, not against dovecot.

// utf8Charset refuses a charset label once UTF8=ACCEPT is enabled: RFC
// 6855 §3 (erratum 4029) — SEARCH must not carry one (cs is its label)
// and SORT/THREAD only UTF-8 (charsetSearchProgram lets UTF-8 and
// US-ASCII through without asking).
func (c *conn) utf8Charset(cs string) error {
	if !c.utf8Accept || cs == "" {
		return nil
	}
	return errBad("a charset conflicts with UTF8=ACCEPT (RFC 6855 section 3)")
}

// appendUTF8Open reads the start of RFC 6855 §4's APPEND data item
// `"UTF8" SP "(" literal8 ")"`; true when it was there. Without ENABLE
// UTF8=ACCEPT the item is a syntax error (§4: "only ... after ENABLE").
func (c *conn) appendUTF8Open(p *parser) (bool, error) {
	rest := p.line[p.pos:]
	if len(rest) < 6 || !strings.EqualFold(string(rest[:6]), "UTF8 (") {
		return false, nil
	}
	if !c.utf8Accept {
		return false, errBad("APPEND UTF8 needs ENABLE UTF8=ACCEPT")
	}
	p.pos += 6
	if p.peek() != '~' {
		return false, errBad("APPEND UTF8 takes a literal8")
	}
	return true, nil
}

// appendUTF8Close reads the ")" that ends the UTF8 data item.
func appendUTF8Close(p *parser, open bool) error {
	if !open {
		return nil
	}
	return p.expect(')')
}
