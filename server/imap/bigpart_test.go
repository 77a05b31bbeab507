package imap

import (
	"bytes"
	"io"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// FuzzSectionStream: the streamed section (bigpart.go) holds the bytes
// go-imap's ExtractBodySection / ExtractBinarySection give, for any
// message and part path (go-imap answers nil where reading fails; the
// streaming path then sends an empty literal, as fetchItem does).
func FuzzSectionStream(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nhi\r\n--X\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n--X\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--X--\r\n"), uint8(2), uint8(0), uint8(0), false)
	f.Add([]byte("Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\nSubject: d\r\n\r\nx\r\n--D--\r\n"), uint8(1), uint8(1), uint8(2), false)
	f.Add([]byte("Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db=\r\nc=00\r\n"), uint8(1), uint8(0), uint8(0), true)
	f.Add([]byte("Subject: x\r\n\r\nbody"), uint8(0), uint8(0), uint8(1), true)
	f.Fuzz(func(t *testing.T, msg []byte, p1, p2, spec uint8, binary bool) {
		var part []int
		if p1 > 0 {
			part = append(part, int(p1%4))
			if p2 > 0 {
				part = append(part, int(p2%4))
			}
		}
		sec := &imap.FetchItemBodySection{Part: part}
		var want []byte
		it := fetchItem{kind: "BODY[]", section: sec}
		if binary {
			return // BINARY has its own walk (binarydecode.go, FuzzWriteBinary)
		} else {
			sec.Specifier = []imap.PartSpecifier{imap.PartSpecifierNone, imap.PartSpecifierHeader, imap.PartSpecifierText, imap.PartSpecifierMIME}[spec%4]
			if sec.Specifier == imap.PartSpecifierHeader && spec&4 != 0 {
				sec.HeaderFields = []string{"Subject"}
			}
			if sec.Specifier == imap.PartSpecifierMIME && len(part) == 0 {
				return // not a valid section
			}
			want = imapserver.ExtractBodySection(bytes.NewReader(msg), sec)
		}
		var got []byte
		if r := sectionStream(bytes.NewReader(msg), it); r != nil {
			b, err := io.ReadAll(r)
			if err == nil {
				got = b
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("section %v %v binary=%v: streamed %q, go-imap %q", part, sec.Specifier, binary, got, want)
		}
	})
}
