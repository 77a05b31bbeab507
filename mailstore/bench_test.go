package mailstore_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore"
)

// benchMessage returns a message of about size bytes with LF line ends.
func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: bench@example.org\nSubject: benchmark\n\n")
	line := strings.Repeat("0123456789abcdef", 4) + "\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()[:size]
}

func benchStore(b *testing.B, noFsync bool) *mailstore.Store {
	b.Helper()
	s, err := mailstore.Open(filepath.Join(b.TempDir(), "Maildir"), mailstore.Options{CreateRoot: true, NoFsync: noFsync, Hub: mailstore.NewHub()})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkImport measures the converter's bulk path with fsync: MB/s over
// b.N messages of 4, 64 and 256 KiB, including Commit.
func BenchmarkImport(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			s := benchStore(b, false)
			msg := benchMessage(size)
			im, err := s.Importer("INBOX", 1)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			date := time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := im.Add(ctx, bytes.NewReader(msg), int64(size), uint32(i+1), []string{`\Seen`}, date); err != nil {
					b.Fatal(err)
				}
			}
			if err := im.Commit(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkAppend measures single deliveries (tmp, fsync, rename, fsync
// of new/, uidlist lock and append), with and without fsync.
func BenchmarkAppend(b *testing.B) {
	for _, noFsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("nofsync=%v", noFsync), func(b *testing.B) {
			s := benchStore(b, noFsync)
			f, err := s.Folder("INBOX")
			if err != nil {
				b.Fatal(err)
			}
			msg := benchMessage(8 << 10)
			ctx := context.Background()
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.Append(ctx, bytes.NewReader(msg), nil, time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSnapshot50k measures Snapshot of an unchanged 50,000-message
// folder (must be a few stat calls), and reports the first full scan.
func BenchmarkSnapshot50k(b *testing.B) {
	s := benchStore(b, true)
	const n = 50000
	im, err := s.Importer("Big", 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	msg := benchMessage(200)
	for i := 0; i < n; i++ {
		if err := im.Add(ctx, bytes.NewReader(msg), -1, uint32(i+1), nil, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := im.Commit(); err != nil {
		b.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the directory's dirty window
	// A fresh Store and Hub: nothing cached (Commit refreshed s's cache).
	s, err = mailstore.Open(s.Root(), mailstore.Options{NoFsync: true, Hub: mailstore.NewHub()})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	f, err := s.Folder("Big")
	if err != nil {
		b.Fatal(err)
	}
	snap, err := f.Snapshot(ctx)
	if err != nil || len(snap.Messages) != n {
		b.Fatalf("%v messages, %v", len(snap.Messages), err)
	}
	firstScan := time.Since(start)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		again, err := f.Snapshot(ctx)
		if err != nil || again != snap {
			b.Fatalf("unchanged folder rescanned (%v)", err)
		}
	}
	b.ReportMetric(float64(firstScan.Milliseconds()), "first-scan-ms")
}

// BenchmarkAppendTo50k measures, in a 50,000-message folder without
// fsync, a flag change and a delivery, each plus the Snapshot a session
// takes after it (the changed-folder path).
func BenchmarkAppendTo50k(b *testing.B) {
	s := benchStore(b, true)
	const n = 50000
	im, err := s.Importer("Big", 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	msg := benchMessage(200)
	for i := 0; i < n; i++ {
		if err := im.Add(ctx, bytes.NewReader(msg), -1, uint32(i+1), []string{`\Seen`}, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := im.Commit(); err != nil {
		b.Fatal(err)
	}
	f, err := s.Folder("Big")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("store-flags", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			op := mailstore.FlagAdd
			if i%2 == 1 {
				op = mailstore.FlagRemove
			}
			if _, err := f.StoreFlags(ctx, []uint32{uint32(i%n + 1)}, op, []string{`\Flagged`}); err != nil {
				b.Fatal(err)
			}
			if _, err := f.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, flags := range [][]string{nil, {`\Seen`}} {
		b.Run(fmt.Sprintf("flags=%v", flags), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := f.Append(ctx, bytes.NewReader(msg), flags, time.Time{}); err != nil {
					b.Fatal(err)
				}
				if _, err := f.Snapshot(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
