package msgspool

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestConcatSection(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	body := strings.Repeat("0123456789", 10)
	spooled, err := Read(strings.NewReader(body), &buf, 16, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer spooled.Close()
	for _, tc := range []struct {
		name string
		src  Source
		want string
	}{
		{"bytes", Bytes([]byte("abc")), "abc"},
		{"spooled", spooled, body},
		{"concat", Concat(Bytes([]byte("Hdr: x\r\n")), spooled), "Hdr: x\r\n" + body},
		{"empty parts", Concat(Bytes(nil), Bytes([]byte("a")), Bytes(nil), Bytes([]byte("bc"))), "abc"},
		{"nothing", Concat(), ""},
		{"section", Section(spooled, 95), body[95:]},
		{"section past end", Section(spooled, 200), ""},
		{"nested", Concat(Section(Concat(Bytes([]byte("xy")), spooled), 1), Bytes([]byte("!"))), "y" + body + "!"},
	} {
		if tc.src.Size() != int64(len(tc.want)) {
			t.Errorf("%s: size %d, want %d", tc.name, tc.src.Size(), len(tc.want))
		}
		got, err := io.ReadAll(NewReader(tc.src))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: read %q, %v; want %q", tc.name, got, err, tc.want)
		}
		// iotest.TestReader checks ReadAt at every offset too.
		if err := iotest.TestReader(io.NewSectionReader(tc.src, 0, tc.src.Size()), []byte(tc.want)); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if all, err := ReadAll(tc.src); err != nil || string(all) != tc.want {
			t.Errorf("%s: ReadAll %q, %v", tc.name, all, err)
		}
	}
}

func TestHeaderPrefix(t *testing.T) {
	long := "X: " + strings.Repeat("a", MaxHeader) + "\n"
	for _, tc := range []struct{ in, want string }{
		{"A: b\r\nC: d\r\n\r\nbody\r\n\r\nmore", "A: b\r\nC: d\r\n\r\n"},
		{"A: b\nC: d\n\nbody\n", "A: b\nC: d\n\n"},
		{"\r\nbody", "\r\n"},
		{"\nbody", "\n"},
		{"A: b\r\n", "A: b\r\n"},
		{"A: b", "A: b"},
		{"", ""},
		{"A: b\r\n\r", "A: b\r\n\r"},
		{"A: b\r\nnot a field\r\n\r\nbody", "A: b\r\nnot a field\r\n\r\n"},
		{strings.Repeat("F: v\n", 2000) + "\nb", strings.Repeat("F: v\n", 2000) + "\n"},
		// Longer than MaxHeader without an empty line: cut at a line end.
		{"A: b\n" + long + "\nbody", "A: b\n"},
		{"A: b\n" + strings.Repeat("F: v\n", MaxHeader/5+10), "A: b\n" + strings.Repeat("F: v\n", (MaxHeader-5)/5)},
	} {
		got, err := HeaderPrefix(Bytes([]byte(tc.in)))
		if err != nil || string(got) != tc.want {
			t.Errorf("HeaderPrefix(%.40q…) = %.40q… (%d bytes), %v; want %d bytes", tc.in, got, len(got), err, len(tc.want))
		}
	}
}

func FuzzHeaderPrefix(f *testing.F) {
	f.Add([]byte("A: b\r\nC: d\r\n\r\nbody"))
	f.Add([]byte("A: b\n\nbody\n\n"))
	f.Add([]byte("\r\r\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := HeaderPrefix(Bytes(in))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(in, got) {
			t.Fatalf("not a prefix: %q of %q", got, in)
		}
		// It ends at the first empty line, or takes everything.
		first := -1
		for _, sep := range []string{"\n\n", "\n\r\n"} {
			if i := bytes.Index(in, []byte(sep)); i >= 0 && (first < 0 || i+len(sep) < first) {
				first = i + len(sep)
			}
		}
		if bytes.HasPrefix(in, []byte("\n")) {
			first = 1
		} else if bytes.HasPrefix(in, []byte("\r\n")) {
			first = 2
		}
		if first >= 0 && len(got) != first {
			t.Fatalf("HeaderPrefix(%q) = %q, want %d bytes", in, got, first)
		}
		if first < 0 && len(got) != len(in) {
			t.Fatalf("HeaderPrefix(%q) = %q, want all", in, got)
		}
	})
}
