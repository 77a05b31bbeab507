package imap

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestBinaryPartsToBase64(t *testing.T) {
	bin := "\x00-\xe4\n\r\n\n"
	tests := []struct{ name, in, want string }{
		{"single part, header rewritten in place",
			"Content-Transfer-Encoding: BINARY\r\nX-A: b\r\n\r\n" + bin,
			"Content-Transfer-Encoding: base64\r\nX-A: b\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte(bin))},
		{"multipart, only the binary part",
			"Content-Type: multipart/mixed;\r\n boundary=\"b\"\r\n\r\npre\r\n--b\r\n\r\ntext\r\n--b\r\nContent-Transfer-Encoding: binary\r\n\r\n" + bin + "\r\n--b--\r\nepi\r\n",
			"Content-Type: multipart/mixed;\r\n boundary=\"b\"\r\n\r\npre\r\n--b\r\n\r\ntext\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte(bin)) + "\r\n--b--\r\nepi\r\n"},
		{"8bit stays", "Content-Transfer-Encoding: 8bit\r\n\r\n\xe4\r\n", "Content-Transfer-Encoding: 8bit\r\n\r\n\xe4\r\n"},
		{"long part wraps at 76",
			"Content-Transfer-Encoding: binary\r\n\r\n" + strings.Repeat("\x01", 100),
			"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 100))[:76] + "\r\n" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 100))[76:]},
	}
	for _, tc := range tests {
		got, _ := binaryPartsToBase64([]byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestNoNUL(t *testing.T) {
	in := []byte("a\x00b")
	if got := noNUL(in); string(got) != "a\x80b" || string(in) != "a\x00b" {
		t.Fatalf("noNUL = %q (input now %q)", got, in)
	}
}

// FuzzBinaryParts: the converter never panics, leaves input it does not
// change untouched, and its output needs no second conversion.
func FuzzBinaryParts(f *testing.F) {
	f.Add([]byte("Content-Transfer-Encoding: binary\r\n\r\n\x00\xff"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Transfer-Encoding: binary\r\n\r\nx\r\n--c--\r\n--b--"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		orig := bytes.Clone(msg)
		out, changed := binaryPartsToBase64(msg)
		if !bytes.Equal(msg, orig) {
			t.Fatal("input modified")
		}
		if !changed && !bytes.Equal(out, msg) {
			t.Fatal("unchanged but different")
		}
		if again, ch := binaryPartsToBase64(out); ch {
			t.Fatalf("second pass changed %q to %q", out, again)
		}
	})
}
