package mailstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteChunkFallsBack: a direct write the kernel refuses (here: a
// buffer one byte off the alignment) is written through the cache from
// where it stopped, and the file ends up byte for byte right; so does a
// file system without O_DIRECT (setDirect fails, nothing changes).
func TestWriteChunkFallsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	raw := alignedBuf(3 * directAlign)
	buf := raw[1:] // misaligned for O_DIRECT
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	n := 2 * directAlign // aligned length: only the buffer is off
	direct := setDirect(fh, true)
	wasDirect := direct
	if err := writeChunk(fh, buf, n, &direct); err != nil {
		t.Fatal(err)
	}
	if direct {
		t.Fatal("still in direct mode after the refused write")
	}
	t.Logf("file system took O_DIRECT: %v", wasDirect)
	// A second, aligned chunk after the fallback goes through the cache.
	raw2 := alignedBuf(directAlign)
	copy(raw2, "tail")
	if err := writeChunk(fh, raw2, 4, &direct); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, buf[:n]...), "tail"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("file has %d bytes, want %d (equal: %v)", len(got), len(want), bytes.Equal(got, want))
	}
}

// TestAlignedBuf: the buffers handed to O_DIRECT start on the boundary.
func TestAlignedBuf(t *testing.T) {
	for _, n := range []int{directAlign, directChunk, directBuf} {
		b := alignedBuf(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("alignedBuf(%d): len %d cap %d", n, len(b), cap(b))
		}
		if off := addrMod(b); off != 0 {
			t.Fatalf("alignedBuf(%d) starts %d bytes past the boundary", n, off)
		}
	}
}
