package imap

import "strings"

// The drafts of RFC 8970 that dovecot 2.3 still answers and announces
// (SNIPPET=FUZZY, PREVIEW=FUZZY): "SNIPPET", "SNIPPET (FUZZY)" and
// "PREVIEW (FUZZY)" fetch the same text as PREVIEW, sent as
// "SNIPPET (FUZZY text)" or "PREVIEW (FUZZY text)". Clients written
// against those drafts (older Roundcube and K-9 builds) get it as from
// dovecot.

func init() {
	extensionCaps = append(extensionCaps, "SNIPPET=FUZZY", "PREVIEW=FUZZY")
}

// parseFuzzyPreview parses what follows SNIPPET or PREVIEW when it is the
// draft's "(FUZZY)" (always for SNIPPET); ok is false for RFC 8970's
// PREVIEW, which the caller parses.
func parseFuzzyPreview(p *parser, item string) (it fetchItem, ok bool, err error) {
	const mod = " (FUZZY)"
	fuzzy := p.pos+len(mod) <= len(p.line) && strings.EqualFold(string(p.line[p.pos:p.pos+len(mod)]), mod)
	if !fuzzy && item == "PREVIEW" {
		return fetchItem{}, false, nil
	}
	if fuzzy {
		p.pos += len(mod)
	}
	return fetchItem{kind: "PREVIEW", name: item + " (FUZZY"}, true, nil
}
