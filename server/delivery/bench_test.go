package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mailmig/server/msgspool"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkDeliver measures one delivery through the global spam script
// into the store, without fsync (the disk is measured by scripts/bench-lmtp).
func BenchmarkDeliver(b *testing.B) {
	root := b.TempDir()
	d := &Deliverer{
		MaildirFor: func(user string) (string, error) { return filepath.Join(root, user, "Maildir"), nil },
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hostname:   "bench.example",
		NoFsync:    true,
	}
	var msgs [][]byte
	for i := 0; i < 4; i++ {
		h := "X-Spam-Level: **\r\n"
		if i == 0 {
			h = "X-Spam-Level: ******\r\n"
		}
		msgs = append(msgs, []byte("From: a@example.org\r\nTo: u@example.org\r\nSubject: bench\r\n"+h+"\r\n"+strings.Repeat("0123456789 abcdefghij 0123456789 abcdefghij 0123456789 abcdefghij\r\n", 150)))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		user := fmt.Sprintf("u%d", i%8)
		if _, err := d.Deliver(ctx, Envelope{From: "a@example.org", To: user + "@example.org", User: user}, msgspool.Bytes(msgs[i%4])); err != nil {
			b.Fatal(err)
		}
	}
}
