package imap

import (
	"bufio"
	"bytes"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// sectionValid tells whether a BODY[part.spec] section names something
// in the message, with RFC 9051 §6.4.5's part numbering as dovecot
// applies it: a part that is neither multipart nor message/rfc822 has no
// subparts (BODY[1.1] of a one-part message is empty, where go-imap's
// ExtractBodySection would repeat part 1), and HEADER or TEXT after a
// part number needs an encapsulated message (BODY[1.HEADER] of a
// text/plain part is empty). For an invalid section dovecot answers an
// empty string; so does mailmig.
func sectionValid(content []byte, part []int, spec string) bool {
	if len(part) == 0 {
		return true
	}
	br := bufio.NewReader(bytes.NewReader(content))
	h, err := readHeaderLenient(br)
	if err != nil {
		return true // leave odd messages to ExtractBodySection
	}
	parent, ph, body := findPart(h, br, part)
	if body == nil {
		return false
	}
	switch spec {
	case "HEADER", "TEXT":
		return isMessageType(partMediaType(ph, parent))
	}
	return true
}

// partMediaType is a part's media type, RFC 2046 §5.1.5's default in a
// multipart/digest.
func partMediaType(h textproto.Header, parent string) string {
	if !h.Has("Content-Type") {
		if parent == "multipart/digest" {
			return "message/rfc822"
		}
		return "text/plain"
	}
	gh := gomessage.Header{Header: h}
	mt, _, err := gh.ContentType()
	if err != nil || mt == "" {
		return "text/plain"
	}
	return mt
}

func isMessageType(mt string) bool {
	return mt == "message/rfc822" || mt == "message/global"
}

// isMultipartMessage tells whether the message's own type is multipart.
func isMultipartMessage(content []byte) bool {
	h, _ := readHeaderLenient(bufio.NewReader(bytes.NewReader(content)))
	return strings.HasPrefix(partMediaType(h, ""), "multipart/")
}
