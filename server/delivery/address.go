package delivery

import (
	"fmt"
	"net/mail"
	"strings"
)

// RedirectAddress reads the address of a redirect action as pigeonhole
// does: an RFC 5322 mailbox ("Bob <bob@example.net>" and comments and
// spaces around the parts allowed), of which the addr-spec is used, with
// the domain in lower case. The result is a valid RFC 5321 Mailbox, or
// an error: anything else is a run-time error of the script.
func RedirectAddress(v string) (string, error) {
	a, err := mail.ParseAddress(v)
	if err != nil && !strings.ContainsAny(v, "<\"(") {
		// Folding white space around the '@' and dots (RFC 5322 §4.4
		// obsolete syntax, which pigeonhole reads): "bob @example.net".
		a, err = mail.ParseAddress(strings.Join(strings.Fields(v), ""))
	}
	if err != nil {
		return "", fmt.Errorf("%q is not an address: %v", v, err)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 {
		return "", fmt.Errorf("%q is not an address: no domain", v)
	}
	local, domain := a.Address[:at], strings.ToLower(a.Address[at+1:])
	if !isDotAtom(local) {
		// net/mail hands back a quoted local part unquoted; SMTP needs
		// the quotes again (RFC 5321 §4.1.2 Quoted-string).
		local = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(local) + `"`
	}
	addr := local + "@" + domain
	if err := ValidMailbox(addr); err != nil {
		return "", err
	}
	return addr, nil
}

// ValidMailbox checks that addr is an RFC 5321 §4.1.2 Mailbox
// (Local-part "@" Domain: a dot-string or quoted-string, then a domain
// of letter-digit-hyphen labels or an address literal), so that it can
// go into a RCPT TO:<...> as it is: no spaces, no angle brackets, no
// line ends, nothing that would end the path or add ESMTP parameters.
func ValidMailbox(addr string) error {
	bad := func(why string) error { return fmt.Errorf("%q is not a mailbox address: %s", addr, why) }
	if len(addr) > 254 {
		return bad("longer than 254 octets")
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return bad("expected local-part@domain")
	}
	local, domain := addr[:at], addr[at+1:]
	if len(local) > 64 {
		return bad("local part longer than 64 octets")
	}
	if strings.HasPrefix(local, `"`) {
		if len(local) < 2 || !strings.HasSuffix(local, `"`) {
			return bad("unterminated quoted local part")
		}
		q := local[1 : len(local)-1]
		for i := 0; i < len(q); i++ {
			c := q[i]
			switch {
			case c == '\\' && i+1 < len(q) && q[i+1] >= 32 && q[i+1] <= 126:
				i++
			case c >= 32 && c <= 126 && c != '"' && c != '\\':
			default:
				return bad("bad character in quoted local part")
			}
		}
	} else {
		for _, atom := range strings.Split(local, ".") {
			if atom == "" {
				return bad("empty atom in local part")
			}
			for i := 0; i < len(atom); i++ {
				if !isAtext(atom[i]) {
					return bad(fmt.Sprintf("character %q in local part", atom[i]))
				}
			}
		}
	}
	if strings.HasPrefix(domain, "[") {
		if !strings.HasSuffix(domain, "]") || strings.ContainsAny(domain[1:len(domain)-1], "[]\\ \t\r\n") || len(domain) < 3 {
			return bad("bad address literal")
		}
		return nil
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("bad domain label")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad(fmt.Sprintf("character %q in domain", c))
			}
		}
	}
	return nil
}

// isDotAtom reports whether s is atext atoms joined by single dots.
func isDotAtom(s string) bool {
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return false
			}
		}
	}
	return true
}

// isAtext: RFC 5322 §3.2.3 atext.
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// uniqueRedirects drops repeated redirects to the same mailbox (the
// domain compared without case): RFC 5228 §4.2 lets an implementation
// send one copy, and pigeonhole does.
func uniqueRedirects(addrs []string) []string {
	seen := make(map[string]bool, len(addrs))
	out := addrs[:0:0]
	for _, a := range addrs {
		key := a
		if at := strings.LastIndexByte(a, '@'); at >= 0 {
			key = a[:at] + strings.ToLower(a[at:])
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, a)
		}
	}
	return out
}
