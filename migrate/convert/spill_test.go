package convert

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"
)

// A message bigger than the in-memory part spills to an unlinked file and
// reads back byte for byte, repeatedly (a retry reads it again).
func TestSpill(t *testing.T) {
	sp := &spill{dir: t.TempDir()}
	defer sp.reset()
	for _, size := range []int{0, 10, spillMem, spillMem + 1, 3*spillMem + 12345} {
		msg := bytes.Repeat([]byte("0123456789abcdef\n"), size/17+1)[:size]
		var tee bytes.Buffer
		n, err := sp.fill(bytes.NewReader(msg), &tee)
		if err != nil || n != int64(size) || !bytes.Equal(tee.Bytes(), msg) {
			t.Fatalf("size %d: fill %d %v", size, n, err)
		}
		if (sp.f != nil) != (size > spillMem) {
			t.Errorf("size %d: spilled to a file: %v", size, sp.f != nil)
		}
		for pass := 0; pass < 2; pass++ {
			got, err := io.ReadAll(sp.reader())
			if err != nil || sha256.Sum256(got) != sha256.Sum256(msg) {
				t.Fatalf("size %d pass %d: %d bytes back, %v", size, pass, len(got), err)
			}
		}
	}
}
