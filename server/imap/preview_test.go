package imap

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzPreview: any message gives a preview of at most 200 characters,
// without a leading or trailing space.
func FuzzPreview(f *testing.F) {
	for _, s := range []string{
		"Subject: a\r\n\r\nhello\r\n> q\r\n",
		"Content-Type: text/html\r\n\r\n<p>x &amp; <style>y</style>",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xf2\r\n--b--\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		p := preview(msg)
		if utf8.RuneCountInString(p) > previewMax || strings.HasPrefix(p, " ") || strings.HasSuffix(p, " ") {
			t.Fatalf("preview %q", p)
		}
	})
}
