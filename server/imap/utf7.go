package imap

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// UTF-7 (RFC 2152), the one charset dovecot's iconv takes for SEARCH and
// golang.org/x/text does not know. (IMAP's modified UTF-7 for mailbox
// names is mailstore/mutf7: '&' and ',' where this has '+' and '/'.)

var errUTF7 = errors.New("imap: invalid UTF-7")

// decodeUTF7 turns UTF-7 text into UTF-8: "+" starts base64 of UTF-16
// (RFC 2152's alphabet, no padding) ending at the first other character,
// a "-" there is absorbed, and "+-" is "+".
func decodeUTF7(b []byte) (string, error) {
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 0x80 {
			return "", errUTF7
		}
		if c != '+' {
			out.WriteByte(c)
			continue
		}
		i++
		if i < len(b) && b[i] == '-' {
			out.WriteByte('+')
			continue
		}
		var bits, nbits uint32
		var units []uint16
		for ; i < len(b); i++ {
			v := b64Value(b[i])
			if v < 0 {
				break
			}
			bits = bits<<6 | uint32(v)
			nbits += 6
			if nbits >= 16 {
				nbits -= 16
				units = append(units, uint16(bits>>nbits))
				bits &= 1<<nbits - 1
			}
		}
		// Left-over bits must be zero padding (RFC 2152 rule 2).
		if nbits >= 6 || bits != 0 || len(units) == 0 {
			return "", errUTF7
		}
		for _, r := range utf16.Decode(units) {
			if r == utf8.RuneError {
				return "", errUTF7
			}
			out.WriteRune(r)
		}
		if i < len(b) && b[i] != '-' {
			i-- // the character that ended the run is text
		}
	}
	return out.String(), nil
}

func b64Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}

// charsetReader is go-message's charset.Reader with UTF-7 added.
func charsetReader(cs string, r io.Reader) (io.Reader, error) {
	if !strings.EqualFold(cs, "utf-7") && !strings.EqualFold(cs, "unicode-1-1-utf-7") {
		return charset.Reader(cs, r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	s, err := decodeUTF7(b)
	if err != nil {
		// Undecodable text: U+FFFD, as x/text's decoders give.
		return strings.NewReader("\uFFFD"), nil
	}
	return bytes.NewReader([]byte(s)), nil
}
