package imap

import (
	"bytes"
	"io"

	"github.com/emersion/go-message"
)

// decodedContains reports whether a leaf part of msg, its content
// transfer encoding (base64, quoted-printable) and charset decoded,
// contains sub case-insensitively: RFC 9051 §6.4.4 BODY and TEXT match
// the decoded text, as dovecot does ("SEARCH BODY pineapple" finds a
// base64 body saying it). Each part is read up to maxDecodedPart bytes.
func decodedContains(msg []byte, sub string) bool {
	e, err := message.Read(bytes.NewReader(msg))
	if e == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
		return false
	}
	found := false
	e.Walk(func(_ []int, part *message.Entity, err error) error {
		if found || part == nil || part.MultipartReader() != nil {
			return nil
		}
		b, _ := io.ReadAll(io.LimitReader(part.Body, maxDecodedPart))
		found = containsFold(string(b), sub)
		return nil
	})
	return found
}

const maxDecodedPart = 64 << 20

// hasTransferEncoding tells whether msg may hold an encoded part worth
// decoding for SEARCH (a cheap test before decodedContains).
func hasTransferEncoding(msg []byte) bool {
	return containsFold(string(msg), "content-transfer-encoding") || containsFold(string(msg), "charset")
}
