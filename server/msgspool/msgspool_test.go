package msgspool

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bare     int
	}{
		{"a\r\nb\r\n", "a\r\nb\r\n", 0},
		{"a\nb\n", "a\r\nb\r\n", 2},
		{"a\r.\r\nMAIL FROM:<x>\r\n", "a\r\n.\r\nMAIL FROM:<x>\r\n", 1},
		{"a\r.\rb", "a\r\n.\r\nb", 2},
		{"a\n.\r\n", "a\r\n.\r\n", 1},
		{"\r", "\r\n", 1},
		{"\r\r\n", "\r\n\r\n", 1},
		{"", "", 0},
	} {
		var bare int
		got, err := io.ReadAll(Normalize(strings.NewReader(tc.in), &bare))
		if err != nil || string(got) != tc.want || bare != tc.bare {
			t.Errorf("Normalize(%q) = %q, %d bare, %v; want %q, %d", tc.in, got, bare, err, tc.want, tc.bare)
		}
		// One byte at a time gives the same.
		got, _ = io.ReadAll(iotest.OneByteReader(Normalize(iotest.OneByteReader(strings.NewReader(tc.in)), nil)))
		if string(got) != tc.want {
			t.Errorf("Normalize(%q) byte by byte = %q", tc.in, got)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add([]byte("a\r.\r\nb\n.\n\r\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := io.ReadAll(Normalize(bytes.NewReader(in), nil))
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range out {
			if c == '\r' && (i+1 >= len(out) || out[i+1] != '\n') {
				t.Fatalf("bare CR at %d in %q", i, out)
			}
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, out)
			}
		}
		// Nothing but line ends changes.
		strip := func(b []byte) string { return strings.NewReplacer("\r", "", "\n", "").Replace(string(b)) }
		if strip(in) != strip(out) {
			t.Fatalf("content changed: %q -> %q", in, out)
		}
	})
}

func TestReadSpools(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	small, err := Read(strings.NewReader("short"), &buf, 16, dir)
	if err != nil || small.Spooled() || small.Size() != 5 {
		t.Fatalf("small: %v spooled=%v size=%d", err, small.Spooled(), small.Size())
	}
	if b, _ := ReadAll(small); string(b) != "short" {
		t.Fatalf("small bytes %q", b)
	}
	big := strings.Repeat("0123456789", 10)
	m, err := Read(strings.NewReader(big), &buf, 16, dir)
	if err != nil || !m.Spooled() || m.Size() != 100 || buf.Len() != 0 {
		t.Fatalf("big: %v spooled=%v size=%d mem=%d", err, m.Spooled(), m.Size(), buf.Len())
	}
	if b, _ := ReadAll(m); string(b) != big {
		t.Fatalf("big bytes %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("temporary file visible: %v", ents)
	}
	m.Close()
	// Exactly the threshold stays in memory... and is read whole.
	m, err = Read(strings.NewReader(big[:16]), &buf, 16, dir)
	if b, _ := ReadAll(m); err != nil || string(b) != big[:16] {
		t.Fatalf("threshold-sized: %q %v", b, err)
	}
	m.Close()
}
