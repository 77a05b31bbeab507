package imap

import (
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// fetchItem is one FETCH data item (RFC 9051 §6.4.5).
type fetchItem struct {
	// kind is the item's name without section: FLAGS, UID, INTERNALDATE,
	// RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY (no section), BODY[]
	// (any section), BINARY[], BINARY.SIZE[], RFC822, RFC822.HEADER,
	// RFC822.TEXT.
	kind    string
	section *imap.FetchItemBodySection
	// name is the item's name in the response, e.g.
	// "BODY[HEADER.FIELDS (SUBJECT)]<0>".
	name string
}

// parseFetchItems parses the FETCH item list: a macro, one item or a
// parenthesised list.
func parseFetchItems(p *parser) ([]fetchItem, error) {
	if p.take('(') {
		var items []fetchItem
		for !p.take(')') {
			if len(items) > 0 {
				if err := p.sp(); err != nil {
					return nil, err
				}
			}
			it, err := parseFetchItem(p)
			if err != nil {
				return nil, err
			}
			items = append(items, it)
		}
		if len(items) == 0 {
			return nil, p.errorf("empty fetch item list")
		}
		return items, nil
	}
	// Macros (RFC 9051 §6.4.5).
	save := p.pos
	a := strings.ToUpper(p.word(""))
	var macro []string
	switch a {
	case "ALL":
		macro = []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"}
	case "FAST":
		macro = []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE"}
	case "FULL":
		macro = []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"}
	}
	if macro != nil {
		items := make([]fetchItem, len(macro))
		for i, m := range macro {
			items[i] = fetchItem{kind: m, name: m}
		}
		return items, nil
	}
	p.pos = save
	it, err := parseFetchItem(p)
	if err != nil {
		return nil, err
	}
	return []fetchItem{it}, nil
}

func parseFetchItem(p *parser) (fetchItem, error) {
	start := p.pos
	a := strings.ToUpper(p.wordExcept("[<"))
	switch a {
	case "FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
		"RFC822", "RFC822.HEADER", "RFC822.TEXT", "MODSEQ",
		"EMAILID", "THREADID", // RFC 8474 §5 (objectid.go)
		"SAVEDATE": // RFC 8514 §4.1 (savedate.go)
		return fetchItem{kind: a, name: a}, nil
	case "PREVIEW", "SNIPPET":
		// The drafts' FUZZY forms (previewfuzzy.go).
		if it, ok, err := parseFuzzyPreview(p, a); ok {
			return it, err
		}
		// RFC 8970 (preview.go).
		return fetchItem{kind: a, name: a}, parsePreviewMods(p)
	case "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE":
	default:
		p.pos = start
		return fetchItem{}, p.errorf("unknown fetch item %q", a)
	}
	if p.peek() != '[' {
		if a == "BODY" {
			return fetchItem{kind: "BODY", name: "BODY"}, nil
		}
		return fetchItem{}, p.errorf("%s needs a section", a)
	}
	sec, err := parseSection(p, strings.HasPrefix(a, "BINARY"))
	if err != nil {
		return fetchItem{}, err
	}
	secText := sectionName(sec, p.quotedFields)
	sec.Peek = strings.HasSuffix(a, ".PEEK")
	it := fetchItem{section: sec}
	switch {
	case a == "BINARY.SIZE":
		it.kind = "BINARY.SIZE[]"
		it.name = "BINARY.SIZE" + secText
		return it, nil
	case strings.HasPrefix(a, "BINARY"):
		it.kind, it.name = "BINARY[]", "BINARY"+secText
	default:
		it.kind, it.name = "BODY[]", "BODY"+secText
	}
	if p.take('<') {
		off, err := p.number64()
		if err != nil {
			return fetchItem{}, err
		}
		if err := p.expect('.'); err != nil {
			return fetchItem{}, err
		}
		n, err := p.number64()
		if err != nil || n == 0 {
			return fetchItem{}, p.errorf("bad partial length")
		}
		if err := p.expect('>'); err != nil {
			return fetchItem{}, err
		}
		sec.Partial = &imap.SectionPartial{Offset: off, Size: n}
		it.name += "<" + strconv.FormatInt(off, 10) + ">"
	}
	return it, nil
}

// parseSection parses "[" section-spec "]" (RFC 9051 §9).
func parseSection(p *parser, binary bool) (*imap.FetchItemBodySection, error) {
	if err := p.expect('['); err != nil {
		return nil, err
	}
	sec := &imap.FetchItemBodySection{}
	for p.peek() >= '1' && p.peek() <= '9' {
		n, err := p.number()
		if err != nil {
			return nil, err
		}
		sec.Part = append(sec.Part, int(n))
		if !p.take('.') {
			break
		}
	}
	if binary {
		if err := p.expect(']'); err != nil {
			return nil, err
		}
		return sec, nil
	}
	if p.take(']') {
		if len(sec.Part) > 0 && p.line[p.pos-2] == '.' {
			return nil, p.errorf("section ends with '.'")
		}
		return sec, nil
	}
	spec := strings.ToUpper(p.word(""))
	switch spec {
	case "HEADER":
		sec.Specifier = imap.PartSpecifierHeader
	case "TEXT":
		sec.Specifier = imap.PartSpecifierText
	case "MIME":
		if len(sec.Part) == 0 {
			return nil, p.errorf("MIME needs a part number")
		}
		sec.Specifier = imap.PartSpecifierMIME
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		sec.Specifier = imap.PartSpecifierHeader
		if err := p.sp(); err != nil {
			return nil, err
		}
		if err := p.expect('('); err != nil {
			return nil, err
		}
		var fields []string
		p.quotedFields = p.quotedFields[:0]
		for !p.take(')') {
			if len(fields) > 0 {
				if err := p.sp(); err != nil {
					return nil, err
				}
			}
			quoted := p.peek() == '"' || p.peek() == '{'
			f, err := p.astring()
			if err != nil {
				return nil, err
			}
			// RFC 9051 §7.5.2: the response names the section as
			// dovecot does, field names in upper case.
			fields = append(fields, strings.ToUpper(f))
			p.quotedFields = append(p.quotedFields, quoted)
		}
		if len(fields) == 0 {
			return nil, p.errorf("empty header list")
		}
		if spec == "HEADER.FIELDS" {
			sec.HeaderFields = fields
		} else {
			sec.HeaderFieldsNot = fields
		}
	default:
		return nil, p.errorf("unknown section %q", spec)
	}
	if err := p.expect(']'); err != nil {
		return nil, err
	}
	return sec, nil
}

// sectionName is the "[...]" part of a response item name.
// Field names that came as strings (quoted[i]) are written quoted.
func sectionName(sec *imap.FetchItemBodySection, quoted []bool) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, n := range sec.Part {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	if sec.Specifier != imap.PartSpecifierNone {
		if len(sec.Part) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(sec.Specifier))
		fields := sec.HeaderFields
		if len(fields) > 0 {
			b.WriteString(".FIELDS")
		} else if len(sec.HeaderFieldsNot) > 0 {
			b.WriteString(".FIELDS.NOT")
			fields = sec.HeaderFieldsNot
		}
		if len(fields) > 0 {
			b.WriteString(" (")
			for i, f := range fields {
				if i > 0 {
					b.WriteByte(' ')
				}
				if i < len(quoted) && quoted[i] {
					b.WriteString(strconv.Quote(f))
				} else {
					b.WriteString(f)
				}
			}
			b.WriteByte(')')
		}
	}
	b.WriteByte(']')
	return b.String()
}
