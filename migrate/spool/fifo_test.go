package spool_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmig/migrate/spool"
)

// A FIFO where the spool should be is refused at once (issue 9 item 1):
// neither the converter nor delivery blocks on it or writes into it.
func TestLockRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alice")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := spool.Append(ctx, path, "bob@example.org", time.Now(), []byte("Subject: x\n\nx\n"), spool.Options{NoFsync: true})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Append to a FIFO: %v, want 'not a regular file'", err)
	}
	if _, err := spool.Lock(ctx, path, spool.Options{}); err == nil {
		t.Fatal("Lock of a FIFO succeeded")
	}
}
