package imap

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// FuzzWriteBinary: BINARY of any message and part path never panics;
// the streamed form (newBinaryPipe, the big-message path) is the same as
// the buffered one; and a whole message in which nothing was decoded
// comes out byte for byte as it went in.
func FuzzWriteBinary(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=X\r\n\r\npre\r\n--X\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--X\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E4\r\n--X--\r\nepi\r\n"), uint8(0), uint8(0))
	f.Add([]byte("Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\nSubject: d\r\n\r\nx\r\n--D--\r\n"), uint8(1), uint8(1))
	f.Add([]byte("Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n"), uint8(1), uint8(0))
	f.Add([]byte("Content-Transfer-Encoding: base64\r\n\r\n!!\r\n"), uint8(0), uint8(0))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"a b\"\r\n\r\n--a b  \r\n\r\nno close\r\n"), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, msg []byte, p1, p2 uint8) {
		var path []int
		if p1 > 0 {
			path = append(path, int(p1%4))
			if p2 > 0 {
				path = append(path, int(p2%4))
			}
		}
		var buf bytes.Buffer
		decoded, err := writeBinary(&buf, bytes.NewReader(msg), path)
		pipe := newBinaryPipe(bytes.NewReader(msg), path)
		streamed, perr := io.ReadAll(pipe)
		pipe.Close()
		if (err == nil) != (perr == nil) || (err == nil && (!bytes.Equal(streamed, buf.Bytes()) || pipe.decoded != decoded)) {
			t.Fatalf("path %v: buffered %q %v %v, streamed %q %v %v", path, buf.Bytes(), decoded, err, streamed, pipe.decoded, perr)
		}
		if err == nil && !decoded && len(path) == 0 && !bytes.Equal(buf.Bytes(), msg) {
			t.Fatalf("nothing decoded, yet %q came out as %q", msg, buf.Bytes())
		}
	})
}

// FuzzSearchBodyText: the text SEARCH looks in is made of any message
// without a panic, and is valid UTF-8 (searchFold).
func FuzzSearchBodyText(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n8sXU\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--b--\r\n"), true)
	f.Add([]byte("Content-Type: text/plain; charset=x-nonsense\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E4=\r\n"), false)
	f.Fuzz(func(t *testing.T, msg []byte, headers bool) {
		if s := searchBodyText(msg, headers); !utf8.ValidString(s) {
			t.Fatalf("not UTF-8: %q", s)
		}
	})
}

// TestDecodeUTF7 follows RFC 2152's examples.
func TestDecodeUTF7(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A+ImIDkQ.", "A\u2262\u0391."},
		{"Hi Mom -+Jjo--!", "Hi Mom -\u263a-!"},
		{"+ZeVnLIqe-", "\u65e5\u672c\u8a9e"},
		{"1 +- 1", "1 + 1"},
		{"caf+AOk-", "caf\u00e9"},
		{"caf+AOk", "caf\u00e9"},
	} {
		if got, err := decodeUTF7([]byte(tc.in)); err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"+", "+AO", "caf\xe9", "+2D3-"} {
		if got, err := decodeUTF7([]byte(bad)); err == nil {
			t.Errorf("%q decoded to %q", bad, got)
		}
	}
}

// FuzzDecodeUTF7: any input either fails or gives valid UTF-8.
func FuzzDecodeUTF7(f *testing.F) {
	f.Add([]byte("Hi Mom -+Jjo--!"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeUTF7(b); err == nil && !utf8.ValidString(s) {
			t.Fatalf("%q: %q", b, s)
		}
	})
}

// TestQPPieces: quoted-printable decodes the same when its lines come in
// pieces of a small buffer (a long line never held whole), escapes,
// blanks and soft breaks cut anywhere.
func TestQPPieces(t *testing.T) {
	in := strings.Repeat("a=41 b\t=3d", 500) + "  \r\n" + strings.Repeat("x", 40) + "=\r\nend=20 \r\nlast="
	want := strings.Repeat("aA b\t=", 500) + "\r\n" + strings.Repeat("x", 40) + "end \r\nlast"
	for _, size := range []int{16, 17, 19, 23, 4096} {
		got, err := io.ReadAll(&qpReader{br: bufio.NewReaderSize(strings.NewReader(in), size)})
		if err != nil || string(got) != want {
			t.Errorf("buffer %d: %q, %v", size, got, err)
		}
	}
	for _, bad := range []string{"a=4", "a=4x\r\n", "=\t=ZZ"} {
		if got, err := io.ReadAll(&qpReader{br: bufio.NewReaderSize(strings.NewReader(bad), 16)}); err != errBadEncoding {
			t.Errorf("%q: %q, %v", bad, got, err)
		}
	}
}

// FuzzStreamSearch: the streamed search (big messages) finds a needle
// exactly where the in-memory one does, in any message.
func FuzzStreamSearch(f *testing.F) {
	f.Add([]byte("Subject: caf\xc3\xa9\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGRO=DFartig caf=E9\r\n"), "café", true)
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--b--\r\n"), "WORLD", false)
	f.Fuzz(func(t *testing.T, msg []byte, sub string, headers bool) {
		if !utf8.ValidString(sub) {
			return // refused by searchCharset before any search
		}
		want := strings.Contains(searchBodyText(msg, headers), searchFold(sub))
		// Writes of every size: a needle across any cut.
		for _, n := range []int{1, 3, 7, 4096} {
			if got := streamSearch(iotest.OneByteReader(&chunked{b: msg, n: n}), sub, headers); got != want {
				t.Fatalf("%q in %q (headers %v, reads of %d): streamed %v, in memory %v", sub, msg, headers, n, got, want)
			}
		}
	})
}

// chunked reads b n bytes at a time.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}
