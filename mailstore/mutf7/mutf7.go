// Package mutf7 implements modified UTF-7 (RFC 3501 §5.1.3): the encoding
// of mailbox names on the IMAP4rev1 wire, and the one dovecot uses for
// Maildir++ folder names on disk. mailstore, the IMAP server and the
// converter share this one implementation.
package mutf7

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every decoding error.
var ErrInvalid = errors.New("mutf7: invalid modified UTF-7")

// alphabet is base64 with ',' instead of '/', without padding.
var alphabet = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding).Strict()

// Encode encodes UTF-8 s. Printable ASCII stands for itself ('&' as "&-");
// everything else goes into shifted base64 of UTF-16. Bytes that are not
// valid UTF-8 are encoded as U+FFFD.
func Encode(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '&' {
			plain = false
			break
		}
	}
	if plain {
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
		b.WriteString(alphabet.EncodeToString(buf))
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
		run = utf16.AppendRune(run, r) // RuneError for a bad byte: U+FFFD
	}
	flush()
	return b.String()
}

// Decode decodes s strictly: printable ASCII outside shifts, '&' only as
// "&-" or the start of a shift, base64 of whole UTF-16 units with valid
// surrogate pairs, and no printable ASCII inside a shift.
func Decode(s string) (string, error) { return decode(s, false) }

// DecodeMixed is Decode that also accepts raw UTF-8 outside shifts, as
// IMAP4rev2 clients send it (RFC 9051 §5.1); control characters are still
// refused.
func DecodeMixed(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: not UTF-8", ErrInvalid)
	}
	return decode(s, true)
}

func decode(s string, rawUTF8 bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c == 0x7f || (c > 0x7e && !rawUTF8) {
			return "", fmt.Errorf("%w: byte 0x%02x at offset %d", ErrInvalid, c, i)
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", fmt.Errorf("%w: unterminated shift at offset %d", ErrInvalid, i)
		}
		enc := s[i+1 : i+1+end]
		if enc == "" {
			b.WriteByte('&')
			i += 2
			continue
		}
		raw, err := alphabet.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", fmt.Errorf("%w: bad base64 %q at offset %d", ErrInvalid, enc, i)
		}
		units := make([]uint16, len(raw)/2)
		for k := range units {
			units[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for k := 0; k < len(units); k++ {
			u := units[k]
			switch {
			case utf16.IsSurrogate(rune(u)):
				if u >= 0xdc00 || k+1 >= len(units) {
					return "", fmt.Errorf("%w: lone surrogate at offset %d", ErrInvalid, i)
				}
				r := utf16.DecodeRune(rune(u), rune(units[k+1]))
				if r == utf8.RuneError {
					return "", fmt.Errorf("%w: bad surrogate pair at offset %d", ErrInvalid, i)
				}
				b.WriteRune(r)
				k++
			case u >= 0x20 && u <= 0x7e:
				return "", fmt.Errorf("%w: encoded ASCII at offset %d", ErrInvalid, i)
			default:
				b.WriteRune(rune(u))
			}
		}
		i += end + 2
	}
	return b.String(), nil
}
