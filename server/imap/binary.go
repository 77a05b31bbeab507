package imap

import (
	"bytes"
	"encoding/base64"
	"mime"
	"strings"
)

// BINARY (RFC 3516) on the way in and out, as dovecot does it:
//
//   - A message APPENDed in a literal8 ("~{n}", §4.4) may carry parts
//     with Content-Transfer-Encoding: binary. They are stored
//     base64-encoded (lines of 76, the header field rewritten), so the
//     file is text that survives the store's line-end handling; BINARY[n]
//     decodes them back to the exact bytes sent. dovecot's binary
//     converter does the same, so both servers give the same BODY[n],
//     BODYSTRUCTURE and RFC822.SIZE.
//   - A NUL is never sent in a plain literal (RFC 9051 §4.3): BODY[],
//     RFC822 and the like send 0x80 in its place, as dovecot does;
//     BINARY[...] data with a NUL goes in a literal8 (RFC 3516 §4.3).

// binaryPartsToBase64 returns msg (CRLF line ends, as received) with every
// Content-Transfer-Encoding: binary part re-encoded as base64, and whether
// anything changed. Multipart bodies are walked recursively; what cannot
// be parsed is left as it is.
func binaryPartsToBase64(msg []byte) ([]byte, bool) {
	return convertPart(msg, 0)
}

// maxMIMEDepth bounds the recursion on nested multiparts.
const maxMIMEDepth = 50

func convertPart(part []byte, depth int) ([]byte, bool) {
	hdr, body := splitHeaderBody(part)
	fields := headerFields(hdr)
	cte, ctype := -1, ""
	for i, f := range fields {
		name, value, ok := strings.Cut(unfold(string(f)), ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-transfer-encoding":
			if strings.EqualFold(strings.TrimSpace(value), "binary") {
				cte = i
			}
		case "content-type":
			ctype = strings.TrimSpace(value)
		}
	}
	mt, params, _ := mime.ParseMediaType(ctype)
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" && depth < maxMIMEDepth {
		nb, changed := convertMultipart(body, params["boundary"], depth)
		if !changed {
			return part, false
		}
		return append(append([]byte{}, hdr...), nb...), true
	}
	if cte < 0 {
		return part, false
	}
	var out bytes.Buffer
	for i, f := range fields {
		if i == cte {
			out.WriteString("Content-Transfer-Encoding: base64\r\n")
			continue
		}
		out.Write(f)
	}
	out.Write(hdr[len(joinLen(fields)):])
	out.Write(base64Lines(body))
	return out.Bytes(), true
}

// convertMultipart converts the parts between the delimiters of boundary
// (RFC 2046 §5.1.1).
func convertMultipart(body []byte, boundary string, depth int) ([]byte, bool) {
	delim := []byte("--" + boundary)
	var starts []int // offsets of delimiter lines
	for i := 0; i <= len(body)-len(delim); {
		j := bytes.Index(body[i:], delim)
		if j < 0 {
			break
		}
		at := i + j
		next := byte('\r')
		if at+len(delim) < len(body) {
			next = body[at+len(delim)]
		}
		if (at == 0 || (at >= 2 && body[at-2] == '\r' && body[at-1] == '\n')) &&
			(next == '\r' || next == '-' || next == ' ' || next == '\t') {
			starts = append(starts, at)
		}
		i = at + len(delim)
	}
	if len(starts) < 2 {
		return body, false
	}
	var out bytes.Buffer
	changed := false
	out.Write(body[:starts[0]])
	for k, at := range starts {
		eol := bytes.Index(body[at:], []byte("\r\n"))
		if eol < 0 || bytes.HasPrefix(body[at+len(delim):], []byte("--")) || k+1 == len(starts) {
			// The close delimiter and the epilogue, or an unclosed
			// last part, stay as they are.
			out.Write(body[at:])
			break
		}
		lineEnd := at + eol + 2
		out.Write(body[at:lineEnd])
		end := starts[k+1] - 2 // the CRLF before a delimiter is the delimiter's
		if end < lineEnd {
			out.Write(body[lineEnd:starts[k+1]])
			continue
		}
		np, c := convertPart(body[lineEnd:end], depth+1)
		changed = changed || c
		out.Write(np)
		out.Write(body[end:starts[k+1]])
	}
	return out.Bytes(), changed
}

// splitHeaderBody splits at the empty line ending the header; the header
// keeps its final CRLF CRLF.
func splitHeaderBody(b []byte) (hdr, body []byte) {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return b[:2], b[2:]
	}
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return b[:i+4], b[i+4:]
	}
	return b, nil
}

// headerFields splits a header into its fields, each with its
// continuation lines and line ends; the empty line is not a field.
func headerFields(hdr []byte) [][]byte {
	var out [][]byte
	for len(hdr) > 0 {
		if bytes.HasPrefix(hdr, []byte("\r\n")) {
			break
		}
		end := 0
		for {
			i := bytes.Index(hdr[end:], []byte("\r\n"))
			if i < 0 {
				end = len(hdr)
				break
			}
			end += i + 2
			if end >= len(hdr) || (hdr[end] != ' ' && hdr[end] != '\t') {
				break
			}
		}
		out = append(out, hdr[:end])
		hdr = hdr[end:]
	}
	return out
}

// joinLen returns a slice as long as the fields together.
func joinLen(fields [][]byte) []byte {
	n := 0
	for _, f := range fields {
		n += len(f)
	}
	return make([]byte, n)
}

// base64Lines encodes b in lines of 76 characters separated by CRLF, with
// no line end after the last (the CRLF before a boundary is the
// boundary's).
func base64Lines(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.WriteString(enc[:76])
		out.WriteString("\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc)
	return out.Bytes()
}

// noNUL returns b with every NUL replaced by 0x80, for a plain literal
// (dovecot's replacement); b itself is not modified.
func noNUL(b []byte) []byte {
	if bytes.IndexByte(b, 0) < 0 {
		return b
	}
	out := bytes.Clone(b)
	for i, c := range out {
		if c == 0 {
			out[i] = 0x80
		}
	}
	return out
}

// literalText writes b as a plain literal, never with a NUL in it.
func (w *writer) literalText(b []byte) *writer {
	return w.literalBytes(noNUL(b))
}

// literalBinary writes BINARY data: a literal8 ("~{n}", RFC 3516 §4.3)
// when it holds a NUL, else a plain literal, as dovecot sends it.
func (w *writer) literalBinary(b []byte) *writer {
	if bytes.IndexByte(b, 0) >= 0 {
		w.byte1('~')
	}
	return w.literalBytes(b)
}
