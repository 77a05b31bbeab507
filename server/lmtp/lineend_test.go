package lmtp

import (
	"strings"
	"testing"

	"mailmig/server/msgspool"
)

// lineEnd (the trace fields' line end) is the first line's, also when
// that line is longer than one read.
func TestLineEnd(t *testing.T) {
	long := strings.Repeat("x", 4095)
	for _, tc := range []struct{ msg, want string }{
		{"Subject: a\r\n\r\nb\n", "\r\n"},
		{"Subject: a\n\r\nb\r\n", "\n"},
		{"\nbody", "\n"},
		{"\r\nbody", "\r\n"},
		{"no line end", "\r\n"},
		{"", "\r\n"},
		{long + "\r\n", "\r\n"},       // CR ends the first read, LF starts the next
		{long + "x\n", "\n"},          // LF starts the next read
		{long + "xyz\r\nb\n", "\r\n"}, // well inside the second read
	} {
		got, err := lineEnd(msgspool.Bytes([]byte(tc.msg)))
		if err != nil || got != tc.want {
			t.Errorf("lineEnd(%.20q… %d bytes) = %q, %v; want %q", tc.msg, len(tc.msg), got, err, tc.want)
		}
	}
}
