package mailstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mailmig/mailstore"
)

// TestImportBigMessages: messages around and above the direct-I/O chunk
// (256 KiB) are stored byte for byte, without the padding of the last
// direct write, with the right S= and W= sizes, and ChecksumFile reads
// them back whole. Small ones go through the cache as before.
func TestImportBigMessages(t *testing.T) {
	ctx := context.Background()
	const chunk = 256 << 10
	sizes := []int{10, chunk - 1, chunk, chunk + 1, 3*chunk + 4097, 2 * chunk, 5*chunk - 7}
	for _, fsync := range []bool{false, true} {
		t.Run(fmt.Sprintf("fsync=%v", fsync), func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "Maildir")
			s, err := mailstore.Open(root, mailstore.Options{NoFsync: !fsync, CreateRoot: true, Hub: mailstore.NewHub()})
			if err != nil {
				t.Fatal(err)
			}
			im, err := s.Importer("INBOX", 7)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			want := map[uint32][]byte{}
			for i, n := range sizes {
				msg := make([]byte, n)
				for j := range msg {
					msg[j] = "ab\ncd\r\nxyz"[rng.IntN(10)]
				}
				uid := uint32(i + 1)
				want[uid] = msg
				// A reader that hands out odd pieces: the importer must
				// fill whole chunks itself.
				if err := im.Add(ctx, &oddReader{b: msg}, int64(n), uid, nil, time.Unix(1700000000, 0)); err != nil {
					t.Fatal(err)
				}
			}
			if err := im.Commit(); err != nil {
				t.Fatal(err)
			}
			f, err := s.Folder("INBOX")
			if err != nil {
				t.Fatal(err)
			}
			snap, err := f.Snapshot(ctx)
			if err != nil || len(snap.Messages) != len(sizes) {
				t.Fatalf("snapshot: %d messages, %v", len(snap.Messages), err)
			}
			for _, m := range snap.Messages {
				got, err := os.ReadFile(m.Path)
				if err != nil {
					t.Fatal(err)
				}
				w := want[m.UID]
				if !bytes.Equal(got, w) {
					t.Fatalf("uid %d: %d bytes stored, want %d (same: %v)", m.UID, len(got), len(w), bytes.Equal(got, w))
				}
				vsize := int64(len(w) + bytes.Count(w, []byte("\n")) - bytes.Count(w, []byte("\r\n")))
				if m.Size != int64(len(w)) || m.VSize != vsize {
					t.Fatalf("uid %d: S=%d W=%d, want %d %d", m.UID, m.Size, m.VSize, len(w), vsize)
				}
				h := sha256.New()
				n, err := mailstore.ChecksumFile(m.Path, h)
				if err != nil || n != int64(len(w)) {
					t.Fatalf("uid %d: ChecksumFile read %d bytes, %v", m.UID, n, err)
				}
				if !bytes.Equal(h.Sum(nil), sum(w)) {
					t.Fatalf("uid %d: ChecksumFile saw other bytes", m.UID)
				}
			}
		})
	}
}

func sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// oddReader returns at most 1000 bytes at a time, at odd lengths.
type oddReader struct {
	b []byte
	i int
}

func (r *oddReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	r.i++
	n := min(len(p), len(r.b), 1+r.i*37%1000)
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}
