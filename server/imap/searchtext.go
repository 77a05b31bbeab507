package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The text SEARCH BODY and TEXT look in (RFC 9051 §6.4.4), as dovecot
// without full-text search sees a message: the decoded text of its text/*
// parts (base64 and quoted-printable undone, the part's charset converted
// to UTF-8), those of encapsulated messages included; parts that are not
// text are not searched at all. TEXT adds every header: the message's,
// each part's MIME header, each encapsulated message's (encoded words
// decoded). Strings compare as dovecot's i;unicode-casemap does, near
// enough: case folded and decomposed (NFD), so "cafe" finds "café" and
// "GROSSARTIG" does not find "großartig" (dovecot neither).
//
// HTML parts are searched as they are, tags and entities included, as
// dovecot does without FTS. A big message (bigmsg.go) is searched the
// same way, streamed (streamSearch).

// searchFold is the form both sides of a text comparison are put in.
func searchFold(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToLower(norm.NFD.String(s))
}

// searchBodyText returns the text BODY (headers false) or TEXT (headers
// true) search in, folded (searchFold).
func searchBodyText(msg []byte, headers bool) string {
	var b strings.Builder
	writeSearchText(&b, bytes.NewReader(msg), headers)
	return searchFold(b.String())
}

// writeSearchText writes the text of the CRLF message in r that BODY
// (headers false) or TEXT search, not yet folded, and stops at the first
// error of w.
func writeSearchText(w io.Writer, r io.Reader, headers bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	hdr, err := readRawHeader(br)
	if err != nil {
		return err
	}
	if headers {
		if err := writeHeaderText(w, hdr); err != nil {
			return err
		}
	}
	return walkSearchText(w, hdr, br, headers, "", 0)
}

// writeHeaderText adds a header with its encoded words decoded.
func writeHeaderText(w io.Writer, hdr []byte) error {
	for _, f := range headerFields(hdr) {
		v := unfold(string(f))
		if dec, err := wordDecoder.DecodeHeader(v); err == nil {
			v = dec
		}
		if _, err := io.WriteString(w, v+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// walkSearchText adds the searchable text of an entity's body.
func walkSearchText(w io.Writer, hdr []byte, body io.Reader, headers bool, parent string, depth int) error {
	ct, params := entityType(hdr, parent)
	switch {
	case depth >= maxMIMEDepth:
		return nil
	case strings.HasPrefix(ct, "multipart/") && params["boundary"] != "":
		br := bufio.NewReader(body)
		first, err := skipToDelimiter(br, params["boundary"])
		if err != nil || first == nil || isCloseDelimiter(first, params["boundary"]) {
			return nil
		}
		for {
			pr := &partReader{br: br, boundary: params["boundary"]}
			pb := bufio.NewReader(pr)
			phdr, err := readRawHeader(pb)
			if err != nil {
				return nil
			}
			if headers {
				if err := writeHeaderText(w, phdr); err != nil {
					return err
				}
			}
			if err := walkSearchText(w, phdr, pb, headers, ct, depth+1); err != nil {
				return err
			}
			if _, err := io.Copy(io.Discard, pb); err != nil {
				return nil
			}
			if pr.delim == nil || isCloseDelimiter(pr.delim, params["boundary"]) {
				return nil
			}
		}
	case ct == "message/rfc822" || ct == "message/global":
		eb := bufio.NewReader(body)
		ehdr, err := readRawHeader(eb)
		if err != nil {
			return nil
		}
		if headers {
			if err := writeHeaderText(w, ehdr); err != nil {
				return err
			}
		}
		return walkSearchText(w, ehdr, eb, headers, "", depth+1)
	case strings.HasPrefix(ct, "text/"):
		var r io.Reader = body
		switch transferEncoding(hdr) {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, &base64Text{r: body})
		case "quoted-printable":
			r = &qpReader{br: bufio.NewReader(body)}
		}
		if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
			if cr, err := charsetReader(cs, r); err == nil {
				r = cr
			}
		}
		// What decodes before an error is searched.
		if _, err := io.Copy(w, r); err != nil {
			if errors.Is(err, errFound) {
				return err
			}
			var we *writeError
			if errors.As(err, &we) {
				return err
			}
		}
		_, err := io.WriteString(w, "\n")
		return err
	}
	return nil
}

// errFound stops a streamed search at the first match.
var errFound = errors.New("imap: found")

// writeError marks an error of the writer in io.Copy (as opposed to one
// of the decoding reader, after which the search goes on).
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// streamSearch reports whether the CRLF message in r holds sub where
// BODY (headers false) or TEXT look, streamed (a big message): the text
// goes through foldMatch, which folds it as searchFold does and stops at
// the first match; memory stays that of the readers' buffers.
func streamSearch(r io.Reader, sub string, headers bool) bool {
	needle := searchFold(sub)
	if needle == "" {
		return true
	}
	m := &foldMatch{needle: []byte(needle)}
	m.nfd = norm.NFD.Writer(&m.lower)
	m.lower.m = m
	err := writeSearchText(m, r, headers)
	if err == nil && len(m.pend) > 0 {
		_, err = m.nfd.Write(bytes.ToValidUTF8(m.pend, []byte("\uFFFD")))
	}
	if err == nil {
		err = m.nfd.Close()
	}
	return errors.Is(err, errFound) || m.found
}

// foldMatch is searchFold and strings.Contains as a writer: invalid
// UTF-8 becomes U+FFFD, then NFD (norm's streaming writer), then lower
// case, then the needle is looked for with the last bytes of the previous
// write kept, so a match across two writes is found.
type foldMatch struct {
	needle []byte
	pend   []byte // the start of a rune cut by the end of the last write
	buf    []byte // reused for each write: no garbage per chunk
	nfd    io.WriteCloser
	lower  lowerMatch
	found  bool
}

// runeCut returns where the complete runes of b end (an incomplete rune
// of up to 3 bytes may be left at the end).
func runeCut(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

func (m *foldMatch) Write(p []byte) (int, error) {
	if m.found {
		return 0, &writeError{errFound}
	}
	b := append(append(m.buf[:0], m.pend...), p...)
	m.buf = b
	cut := runeCut(b)
	m.pend = append(m.pend[:0], b[cut:]...)
	text := b[:cut]
	if !utf8.Valid(text) {
		text = bytes.ToValidUTF8(text, []byte("\uFFFD"))
	}
	if _, err := m.nfd.Write(text); err != nil {
		return 0, &writeError{err}
	}
	if m.found {
		return 0, &writeError{errFound}
	}
	return len(p), nil
}

// lowerMatch receives the NFD text and looks for the needle.
type lowerMatch struct {
	m    *foldMatch
	pend []byte
	win  []byte // the previous write's last bytes, then this one lowered
}

func (l *lowerMatch) Write(p []byte) (int, error) {
	keep := min(len(l.win), len(l.m.needle)-1)
	win := append(l.win[:0], l.win[len(l.win)-keep:]...)
	start := len(win)
	win = append(append(win, l.pend...), p...)
	cut := start + runeCut(win[start:])
	l.pend = append(l.pend[:0], win[cut:]...)
	win = win[:cut]
	ascii := true
	for i := start; i < len(win); i++ {
		c := win[i]
		if c >= 0x80 {
			ascii = false
			break
		}
		if 'A' <= c && c <= 'Z' {
			win[i] = c + 'a' - 'A'
		}
	}
	if !ascii {
		win = append(win[:start], bytes.ToLower(win[start:])...)
	}
	l.win = win
	if bytes.Contains(win, l.m.needle) {
		l.m.found = true
		return 0, errFound
	}
	return len(p), nil
}
