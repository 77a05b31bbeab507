package mailstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmig/mailstore"
)

// helperEnv makes the test binary act as a second process appending to a
// store (see helperAppend).
const helperEnv = "MAILSTORE_TEST_HELPER_APPEND"

// helperAppend runs in the child process of TestCrossProcessAppend: it
// appends N messages to the Maildir named in the environment and prints
// "UID BODY" lines.
func helperAppend(spec string) error {
	parts := strings.SplitN(spec, "|", 3)
	n, _ := strconv.Atoi(parts[1])
	s, err := mailstore.Open(parts[0], mailstore.Options{NoFsync: true})
	if err != nil {
		return err
	}
	f, err := s.Folder("INBOX")
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("%s-%d", parts[2], i)
		uid, err := f.Append(context.Background(), strings.NewReader(body), nil, time.Time{})
		if err != nil {
			return err
		}
		fmt.Printf("UID %d %s\n", uid, body)
	}
	return nil
}

// TestMain turns the test binary into the appending child process of
// TestCrossProcessAppend when the helper variable is set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		if err := helperAppend(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCrossProcessAppend(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	const procs, each = 3, 25
	type result struct {
		uids map[uint32]string
		err  error
	}
	results := make(chan result, procs)
	for p := 0; p < procs; p++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d|proc%d", helperEnv, root, each, p))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			r := result{uids: map[uint32]string{}}
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var uid uint32
				var body string
				if _, err := fmt.Sscanf(sc.Text(), "UID %d %s", &uid, &body); err == nil {
					r.uids[uid] = body
				}
			}
			r.err = cmd.Wait()
			results <- r
		}()
	}
	// This process appends at the same time.
	mine := map[uint32]string{}
	for i := 0; i < each; i++ {
		body := fmt.Sprintf("parent-%d", i)
		uid, err := in.Append(context.Background(), strings.NewReader(body), nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		mine[uid] = body
	}
	all := mine
	for p := 0; p < procs; p++ {
		r := <-results
		if r.err != nil {
			t.Fatalf("helper: %v", r.err)
		}
		if len(r.uids) != each {
			t.Fatalf("helper reported %d UIDs, want %d", len(r.uids), each)
		}
		for uid, body := range r.uids {
			if prev, dup := all[uid]; dup {
				t.Fatalf("UID %d given to %q and %q", uid, prev, body)
			}
			all[uid] = body
		}
	}
	snap, err := in.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Messages) != (procs+1)*each {
		t.Fatalf("%d messages, want %d", len(snap.Messages), (procs+1)*each)
	}
	for i, m := range snap.Messages {
		if m.UID != uint32(i+1) {
			t.Fatalf("UIDs not dense at %d: %d", i, m.UID)
		}
		if got := readAll(t, in, m.UID); got != all[m.UID] {
			t.Fatalf("uid %d holds %q, reported %q", m.UID, got, all[m.UID])
		}
	}
}

func readAll(t *testing.T, f *mailstore.Folder, uid uint32) string {
	t.Helper()
	fh, err := f.Open(uid)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b, err := os.ReadFile(fh.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestForeignWriters covers files changed behind our back: a message
// dropped into new/ by another program gets the next UID on the next
// sync (and an event), a rename that changes flags keeps the UID, a
// removed file is an expunge.
func TestForeignWriters(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Append(ctx, strings.NewReader("first\n"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// A session's baseline: its snapshot, then its watch.
	if _, err := in.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	ch, stop := s.Watch("INBOX")
	defer stop()
	foreign := filepath.Join(root, "new", "1700000000.M1P1.otherhost")
	if err := os.WriteFile(foreign, []byte("dropped by procmail\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changes, err := in.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Kind != mailstore.ChangeNew || changes[0].UID != 2 {
		t.Fatalf("refresh after a foreign delivery: %+v", changes)
	}
	if c := <-ch; c.Kind != mailstore.ChangeNew || c.UID != 2 {
		t.Fatalf("event %+v", c)
	}
	// Another program marks it seen by rename (and moves it to cur/).
	renamed := filepath.Join(root, "cur", "1700000000.M1P1.otherhost:2,S")
	if err := os.Rename(foreign, renamed); err != nil {
		t.Fatal(err)
	}
	changes, err = in.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Kind != mailstore.ChangeFlags || changes[0].UID != 2 || changes[0].Flags[0] != `\Seen` {
		t.Fatalf("refresh after a foreign flag change: %+v", changes)
	}
	if err := os.Remove(renamed); err != nil {
		t.Fatal(err)
	}
	changes, err = in.Refresh(ctx)
	if err != nil || len(changes) != 1 || changes[0].Kind != mailstore.ChangeExpunge || changes[0].UID != 2 {
		t.Fatalf("refresh after a foreign removal: %+v, %v", changes, err)
	}
	if changes, _ := in.Refresh(ctx); len(changes) != 0 {
		t.Fatalf("quiet folder reported %+v", changes)
	}
}

func TestStaleLocks(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub(), LockTimeout: 300 * time.Millisecond, Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(root, "dovecot-uidlist.lock")
	appendOne := func() error {
		_, err := in.Append(ctx, strings.NewReader("x\n"), nil, time.Time{})
		return err
	}
	// A lock held by a live holder (dovecot writes no marker): wait, then
	// time out.
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := appendOne(); !errors.Is(err, mailstore.ErrLockTimeout) {
		t.Fatalf("append under a foreign lock: %v", err)
	}
	// Empty for a few seconds with nobody holding its flock: a mailmig
	// process died right after creating it.
	few := time.Now().Add(-10 * time.Second)
	if err := os.Chtimes(lock, few, few); err != nil {
		t.Fatal(err)
	}
	if err := appendOne(); err != nil {
		t.Fatalf("append with an old empty lock: %v", err)
	}
	if err := os.WriteFile(lock, []byte("3 V1 N1\n"), 0o600); err != nil { // dovecot writing
		t.Fatal(err)
	}
	if err := os.Chtimes(lock, few, few); err != nil {
		t.Fatal(err)
	}
	if err := appendOne(); !errors.Is(err, mailstore.ErrLockTimeout) {
		t.Fatalf("append under dovecot's lock: %v", err)
	}
	// The same lock, two minutes old: stale, broken.
	old := time.Now().Add(-3 * time.Minute)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	if err := appendOne(); err != nil {
		t.Fatalf("append with a stale lock: %v", err)
	}
	// A fresh lock of a dead mailmig process (its flock is gone): broken
	// at once.
	if err := os.WriteFile(lock, []byte("mailmig:999999:testhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := appendOne(); err != nil {
		t.Fatalf("append with a dead process's lock: %v", err)
	}
	if time.Since(start) > 250*time.Millisecond {
		t.Fatal("dead holder's lock was not broken at once")
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock left behind: %v", err)
	}
	// The uidlist lock was released, yet the stale one from another host
	// is honoured until it is old.
	if err := os.WriteFile(lock, []byte("mailmig:1:otherhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := appendOne(); !errors.Is(err, mailstore.ErrLockTimeout) {
		t.Fatalf("append under another host's lock: %v", err)
	}
	os.Remove(lock)
	snap, err := in.Snapshot(ctx)
	if err != nil || len(snap.Messages) != 3 {
		t.Fatalf("%v messages, %v", snap, err)
	}
}

// TestLockKilledMidWrite: a holder killed while writing the new uidlist
// leaves its marked lock (and maybe the temporary file); the next writer
// breaks the lock at once and the uidlist is intact.
func TestLockKilledMidWrite(t *testing.T) {
	if os.Getenv(helperEnv+"_KILL") != "" {
		// Child: take the lock like a writer would, then wait to be killed.
		root := os.Getenv(helperEnv + "_KILL")
		lock := filepath.Join(root, "dovecot-uidlist.lock")
		fh, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		host, _ := os.Hostname()
		fmt.Fprintf(fh, "mailmig:%d:%s\n", os.Getpid(), host)
		os.WriteFile(filepath.Join(root, "dovecot-uidlist.mailmig-tmp"), []byte("3 V1 N5 Gx\n1 :half"), 0o600)
		fmt.Println("LOCKED")
		time.Sleep(time.Minute)
		return
	}
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub(), LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Append(ctx, strings.NewReader("one\n"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockKilledMidWrite$")
	cmd.Env = append(os.Environ(), helperEnv+"_KILL="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "LOCKED" {
		cmd.Process.Kill()
		t.Fatalf("child did not lock: %q", sc.Text())
	}
	cmd.Process.Kill()
	cmd.Wait()
	start := time.Now()
	uid, err := in.Append(ctx, strings.NewReader("two\n"), nil, time.Time{})
	if err != nil || uid != 2 {
		t.Fatalf("append after a killed holder: uid %d, %v", uid, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("waited %s for a dead holder's lock", d)
	}
	// A full rewrite (new folder) reuses the temporary name.
	im, err := s.Importer("INBOX", 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(); err != nil {
		t.Fatal(err)
	}
	snap, err := in.Snapshot(ctx)
	if err != nil || len(snap.Messages) != 2 || snap.UIDValidity != 5 {
		t.Fatalf("after commit: %+v, %v", snap, err)
	}
	if _, err := os.Stat(filepath.Join(root, "dovecot-uidlist.mailmig-tmp")); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
}

// TestCreateFolderRace: concurrent creators and users of one new folder
// (the spam folder on first delivery) never see it half-made.
func TestCreateFolderRace(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	for round := 0; round < 5; round++ {
		name := fmt.Sprintf("junk%d", round)
		errs := make(chan error, 6)
		for w := 0; w < 6; w++ {
			go func() {
				s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub()})
				if err != nil {
					errs <- err
					return
				}
				if err := s.CreateFolder(name); err != nil && !errors.Is(err, mailstore.ErrFolderExists) {
					errs <- err
					return
				}
				f, err := s.Folder(name)
				if err != nil {
					errs <- err
					return
				}
				_, err = f.Append(ctx, strings.NewReader("spam\n"), nil, time.Time{})
				errs <- err
			}()
		}
		for w := 0; w < 6; w++ {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "..") {
			t.Fatalf("left over %s", e.Name())
		}
	}
}

// TestUIDsAppearInOrder: while two Stores with separate caches (two
// processes) append to one folder, no snapshot shows a UID lower than one
// an earlier snapshot showed (RFC 9051 §2.3.1.1: a session can only add
// messages at the end). Found by the IMAP server's tests.
func TestUIDsAppearInOrder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	open := func() *mailstore.Folder {
		st, err := mailstore.Open(root, mailstore.Options{CreateRoot: true, NoFsync: true, Hub: mailstore.NewHub()})
		if err != nil {
			t.Fatal(err)
		}
		f, err := st.Folder("INBOX")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	errs := make(chan error, 2)
	for _, f := range []*mailstore.Folder{a, b} {
		go func() {
			for i := 0; i < 100; i++ {
				if _, err := f.Append(context.Background(), strings.NewReader(fmt.Sprintf("Subject: %d\n\nx\n", i)), nil, time.Time{}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var maxSeen uint32
	seen := map[uint32]bool{}
	check := func() {
		snap, err := a.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range snap.Messages {
			if !seen[m.UID] && m.UID < maxSeen {
				t.Fatalf("UID %d appeared after UID %d had been seen", m.UID, maxSeen)
			}
			seen[m.UID] = true
			maxSeen = max(maxSeen, m.UID)
		}
	}
	for done := 0; done < 2; {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			done++
		default:
			check()
		}
	}
	check()
	if len(seen) != 200 {
		t.Fatalf("%d messages seen, want 200", len(seen))
	}
}

// TestAppendAfterForeignDrop: a delivery into an unchanged folder only
// appends its own uidlist line, yet files other programs drop into new/
// are never left without a UID: a drop within the timestamp tick of our
// last change (directory stamp unchanged) gets the next UID at the next
// sync; a drop the delivery can see makes it take the full sync, which
// numbers both (the delivered key first, as before).
func TestAppendAfterForeignDrop(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	s, err := mailstore.Open(root, mailstore.Options{NoFsync: true, CreateRoot: true, Hub: mailstore.NewHub()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // the quick path, several times
		if uid, err := in.Append(ctx, strings.NewReader("ours\n"), nil, time.Time{}); err != nil || uid != uint32(i+1) {
			t.Fatalf("append %d: uid %d, %v", i, uid, err)
		}
	}
	// Same tick: found by the next sync, after our message.
	sameTick := filepath.Join(root, "new", "1700000000.M8P9.otherhost")
	if err := os.WriteFile(sameTick, []byte("dropped at once\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	in2, _ := mailstore.Open(root, mailstore.Options{NoFsync: true, Hub: mailstore.NewHub()})
	f2, err := in2.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	snap0, err := f2.Snapshot(ctx)
	if err != nil || len(snap0.Messages) != 4 || filepath.Base(snap0.Messages[3].Path) != filepath.Base(sameTick) {
		t.Fatalf("same-tick drop not given a UID by the next sync: %+v, %v", snap0, err)
	}
	// A later tick: the delivery sees the directory changed.
	newDir := filepath.Join(root, "new")
	before, _ := os.Stat(newDir)
	foreign := filepath.Join(root, "new", "1700000000.M9P9.otherhost")
	for try := 0; ; try++ {
		time.Sleep(10 * time.Millisecond)
		if err := os.WriteFile(foreign, []byte("dropped by procmail\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		after, _ := os.Stat(newDir)
		if !after.ModTime().Equal(before.ModTime()) {
			break
		}
		if try == 200 {
			t.Fatal("new/ mtime never moved")
		}
		os.Remove(foreign)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(foreign, old, old); err != nil {
		t.Fatal(err)
	}
	uid, err := in.Append(ctx, strings.NewReader("ours again\n"), nil, time.Time{})
	if err != nil || uid != 5 {
		t.Fatalf("append after the foreign drop: uid %d, %v", uid, err)
	}
	data, err := os.ReadFile(filepath.Join(root, "dovecot-uidlist"))
	if err != nil || !strings.Contains(string(data), "\n6 :1700000000.M9P9.otherhost\n") {
		t.Fatalf("the visible drop has no UID after the delivery:\n%s", data)
	}
	snap, err := in.Snapshot(ctx)
	if err != nil || len(snap.Messages) != 6 || snap.UIDNext != 7 {
		t.Fatalf("snapshot: %+v, %v", snap, err)
	}
}
