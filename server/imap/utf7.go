package imap

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 for mailbox names on the wire (RFC 3501 §5.1.3). Inside
// mailmig names are UTF-8; the store maps them to directory names itself.

var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// errBadMUTF7 is returned for a name that is not valid modified UTF-7.
var errBadMUTF7 = errors.New("imap: invalid modified UTF-7 mailbox name")

// encodeMUTF7 encodes a UTF-8 name.
func encodeMUTF7(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '&' {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		buf := make([]byte, 2*len(run))
		for i, u := range run {
			buf[2*i], buf[2*i+1] = byte(u>>8), byte(u)
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		if r == utf8.RuneError {
			r = 0xfffd
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return b.String()
}

// decodeMUTF7 decodes a modified UTF-7 name to UTF-8. Raw UTF-8 is
// accepted too: clients talking to an IMAP4rev2 server send it (RFC 9051
// §5.1), with '&' still written "&-".
func decodeMUTF7(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errBadMUTF7
	}
	if !strings.Contains(s, "&") {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] == 0x7f {
				return "", errBadMUTF7
			}
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return "", errBadMUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", errBadMUTF7
		}
		enc := s[i+1 : i+1+j]
		i += j + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mutf7.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", errBadMUTF7
		}
		units := make([]uint16, len(raw)/2)
		for k := range units {
			units[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for _, r := range utf16.Decode(units) {
			if r == utf8.RuneError || (r >= 0x20 && r <= 0x7e) {
				return "", errBadMUTF7
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
