package imap

import (
	"bytes"
	"html"
	"io"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // charsets of text parts
)

// PREVIEW (RFC 8970): a plain-text preview of up to 200 characters (§3),
// made as dovecot makes its snippet: the first text/plain or text/html
// part (depth first; attachments skipped), decoded to UTF-8; quoted lines
// ("> ...") left out (if nothing else is left, the quoted text after one
// ">"), HTML tags, <style> and <script> dropped and entities decoded;
// ASCII white space collapsed. A message without such a part
// has the empty preview. LAZY (§3.1) changes nothing: the preview is
// always computed.

// previewMax is the preview's length in characters (RFC 8970 §3: at most
// 256; dovecot sends 200).
const previewMax = 200

// parsePreviewMods reads PREVIEW's optional " (LAZY ...)" (RFC 8970 §4).
func parsePreviewMods(p *parser) error {
	if p.pos+1 >= len(p.line) || p.line[p.pos] != ' ' || p.line[p.pos+1] != '(' {
		return nil
	}
	p.pos += 2
	for {
		m, err := p.atom()
		if err != nil {
			return err
		}
		if !strings.EqualFold(m, "LAZY") {
			return p.errorf("unknown PREVIEW modifier %s", m)
		}
		if p.take(')') {
			return nil
		}
		if err := p.sp(); err != nil {
			return err
		}
	}
}

// preview returns a message's preview text.
func preview(msg []byte) string {
	e, err := message.Read(bytes.NewReader(msg))
	if e == nil {
		return ""
	}
	_ = err // unknown charsets and the like: use what could be read
	text, isHTML, ok := firstTextPart(e, 0)
	if !ok {
		return ""
	}
	if isHTML {
		return truncateRunes(asciiFields(htmlText(text)), previewMax)
	}
	main, quoted := splitQuoted(text)
	if s := asciiFields(main); s != "" {
		return truncateRunes(s, previewMax)
	}
	// Only quoted text: dovecot shows it after one ">".
	if q := asciiFields(quoted); q != "" {
		return truncateRunes(">"+q, previewMax)
	}
	return ""
}

// asciiFields collapses runs of ASCII white space (not U+00A0, which
// dovecot keeps) into one space and trims the ends.
func asciiFields(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\f' || r == '\v'
	}), " ")
}

// firstTextPart finds the first text/plain or text/html part.
func firstTextPart(e *message.Entity, depth int) (string, bool, bool) {
	if depth > 20 {
		return "", false, false
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if p == nil || err != nil {
				return "", false, false
			}
			if t, h, ok := firstTextPart(p, depth+1); ok {
				return t, h, true
			}
		}
	}
	mt, _, _ := e.Header.ContentType()
	if mt == "" {
		mt = "text/plain"
	}
	if disp, _, _ := mime.ParseMediaType(e.Header.Get("Content-Disposition")); disp == "attachment" {
		return "", false, false
	}
	if mt != "text/plain" && mt != "text/html" {
		return "", false, false
	}
	b, _ := io.ReadAll(io.LimitReader(e.Body, 64<<10))
	return string(b), mt == "text/html", true
}

// splitQuoted separates the lines quoted with ">" (their ">" markers
// removed) from the others.
func splitQuoted(s string) (main, quoted string) {
	var m, q strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimLeft(l, " \t"); strings.HasPrefix(t, ">") {
			q.WriteString(strings.TrimLeft(t, "> \t"))
			q.WriteByte('\n')
			continue
		}
		m.WriteString(l)
		m.WriteByte('\n')
	}
	return m.String(), q.String()
}

var (
	htmlDropRE = regexp.MustCompile(`(?is)<(style|script)\b.*?</(style|script)\s*>|<!--.*?-->`)
	htmlTagRE  = regexp.MustCompile(`(?s)<[^>]*>`)
)

// htmlText is the text of an HTML part.
func htmlText(s string) string {
	s = htmlDropRE.ReplaceAllString(s, " ")
	s = htmlTagRE.ReplaceAllString(s, " ")
	return html.UnescapeString(s)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for k := 0; k < n; k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return strings.TrimRight(s[:i], " ")
}
