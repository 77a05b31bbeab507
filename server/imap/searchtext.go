package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
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
// dovecot does without FTS. Not as dovecot: big messages (bigmsg.go) are
// still searched raw, as a stream.

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
	br := bufio.NewReader(bytes.NewReader(msg))
	hdr, err := readRawHeader(br)
	if err != nil {
		return ""
	}
	if headers {
		writeHeaderText(&b, hdr)
	}
	walkSearchText(&b, hdr, br, headers, "", 0)
	return searchFold(b.String())
}

// writeHeaderText adds a header with its encoded words decoded.
func writeHeaderText(b *strings.Builder, hdr []byte) {
	for _, f := range headerFields(hdr) {
		v := unfold(string(f))
		if dec, err := wordDecoder.DecodeHeader(v); err == nil {
			v = dec
		}
		b.WriteString(v)
		b.WriteByte('\n')
	}
}

// walkSearchText adds the searchable text of an entity's body.
func walkSearchText(b *strings.Builder, hdr []byte, body io.Reader, headers bool, parent string, depth int) {
	ct, params := entityType(hdr, parent)
	switch {
	case depth >= maxMIMEDepth:
		return
	case strings.HasPrefix(ct, "multipart/") && params["boundary"] != "":
		br := bufio.NewReader(body)
		first, err := skipToDelimiter(br, params["boundary"])
		if err != nil || first == nil || isCloseDelimiter(first, params["boundary"]) {
			return
		}
		for {
			pr := &partReader{br: br, boundary: params["boundary"]}
			pb := bufio.NewReader(pr)
			phdr, err := readRawHeader(pb)
			if err != nil {
				return
			}
			if headers {
				writeHeaderText(b, phdr)
			}
			walkSearchText(b, phdr, pb, headers, ct, depth+1)
			if _, err := io.Copy(io.Discard, pb); err != nil {
				return
			}
			if pr.delim == nil || isCloseDelimiter(pr.delim, params["boundary"]) {
				return
			}
		}
	case ct == "message/rfc822" || ct == "message/global":
		eb := bufio.NewReader(body)
		ehdr, err := readRawHeader(eb)
		if err != nil {
			return
		}
		if headers {
			writeHeaderText(b, ehdr)
		}
		walkSearchText(b, ehdr, eb, headers, "", depth+1)
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
		text, _ := io.ReadAll(r)
		b.Write(text)
		b.WriteByte('\n')
	}
}
