package mailstore

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLockByLink: the uidlist lock is a hard link of the process's lock
// inode in tmp/ (no inode made or freed per lock), carrying the marker
// and a fresh mtime; releasing it leaves the lock inode for the next
// take, and lock inodes of dead processes are removed when one is made.
func TestLockByLink(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A dead process's lock inode (pid 0x7ffffffe is not running).
	dead := filepath.Join(dir, "tmp", "mailmig-lock.dovecot-uidlist.lock.2147483646.host")
	if err := os.WriteFile(dead, []byte("mailmig:2147483646:host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	target := filepath.Join(dir, "dovecot-uidlist")
	var inode uint64
	for round := 0; round < 3; round++ {
		lk, err := acquireLock(context.Background(), target, time.Second, "host", false)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(target + ".lock")
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Nlink != 2 {
			t.Fatalf("round %d: lock has %d links, want 2 (a link of the lock inode)", round, sys.Nlink)
		}
		if round == 0 {
			inode = sys.Ino
		} else if sys.Ino != inode {
			t.Fatalf("round %d: lock inode %d, want the same %d", round, sys.Ino, inode)
		}
		if time.Since(st.ModTime()) > 5*time.Second {
			t.Fatalf("round %d: lock mtime %s is not the take's", round, st.ModTime())
		}
		data, _ := os.ReadFile(target + ".lock")
		if want := "mailmig:" + strconv.Itoa(os.Getpid()) + ":host\n"; string(data) != want {
			t.Fatalf("marker %q, want %q", data, want)
		}
		// Held: another taker (a process's probe) sees a live holder.
		if breakStaleLock(target+".lock", "host") {
			t.Fatal("a held lock was broken")
		}
		lk.release()
		if _, err := os.Stat(target + ".lock"); !os.IsNotExist(err) {
			t.Fatalf("lock left after release: %v", err)
		}
		// Age the lock inode: the next take must freshen the mtime.
		spare := filepath.Join(dir, "tmp", "mailmig-lock.dovecot-uidlist.lock."+strconv.Itoa(os.Getpid())+".host")
		if err := os.Chtimes(spare, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("dead process's lock inode kept: %v", err)
	}
	names, _ := readNames(filepath.Join(dir, "tmp"))
	if len(names) != 1 || !strings.HasPrefix(names[0], "mailmig-lock.") {
		t.Fatalf("tmp/ holds %v, want this process's lock inode only", names)
	}
	// Two locks of one directory held together each get their own link.
	a, err := acquireLock(context.Background(), target, time.Second, "host", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := acquireLock(context.Background(), filepath.Join(dir, "dovecot-keywords"), time.Second, "host", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{target + ".lock", filepath.Join(dir, "dovecot-keywords.lock")} {
		st, err := os.Stat(p)
		if err != nil || st.Sys().(*syscall.Stat_t).Nlink != 2 {
			t.Fatalf("%s: %v, %v (want a link of its own lock inode)", p, st, err)
		}
	}
	b.release()
	a.release()
}

// TestLockFallsBackToCreate: without a tmp/ beside the target the lock is
// made with O_EXCL as before.
func TestLockFallsBackToCreate(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "maildirsize")
	lk, err := acquireLock(context.Background(), target, time.Second, "host", false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(target + ".lock")
	if err != nil || st.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Fatalf("lock %v, %v", st, err)
	}
	if _, err := acquireLock(context.Background(), target, 50*time.Millisecond, "host", false); err == nil {
		t.Fatal("second take of a held lock succeeded")
	}
	lk.release()
	if _, err := os.Stat(target + ".lock"); !os.IsNotExist(err) {
		t.Fatalf("lock left after release: %v", err)
	}
}
