package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var date = time.Date(2009, 10, 7, 12, 0, 0, 0, time.UTC)

func TestFormat(t *testing.T) {
	tests := []struct {
		name, sender, msg, want string
	}{
		{"plain", "a@b", "Subject: x\n\nhi\n", "From a@b Wed Oct  7 12:00:00 2009\nSubject: x\n\nhi\n\n"},
		{"crlf", "a@b", "Subject: x\r\n\r\nhi\r\n", "From a@b Wed Oct  7 12:00:00 2009\nSubject: x\n\nhi\n\n"},
		{"no final newline", "a@b", "Subject: x\n\nhi", "From a@b Wed Oct  7 12:00:00 2009\nSubject: x\n\nhi\n\n"},
		{"quote From", "a@b", "S: x\n\nFrom here\n>From there\nFromage\n", "From a@b Wed Oct  7 12:00:00 2009\nS: x\n\n>From here\n>From there\nFromage\n\n"},
		{"null sender", "", "S: x\n\nb\n", "From MAILER-DAEMON Wed Oct  7 12:00:00 2009\nS: x\n\nb\n\n"},
		{"angle sender", "<>", "S: x\n\nb\n", "From MAILER-DAEMON Wed Oct  7 12:00:00 2009\nS: x\n\nb\n\n"},
		{"space sender", "a b\n@c", "S: x\n\nb\n", "From a_b_@c Wed Oct  7 12:00:00 2009\nS: x\n\nb\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Format(tt.sender, date, []byte(tt.msg)))
			if got != tt.want {
				t.Errorf("Format:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSeparator(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ content, want string }{
		{"", ""}, {"\n", ""}, {"x\n\n", ""}, {"x\n", "\n"}, {"x", "\n\n"}, {"a", "\n\n"},
	} {
		p := filepath.Join(dir, "f")
		os.WriteFile(p, []byte(tt.content), 0o600)
		f, _ := os.Open(p)
		got, err := separator(f, int64(len(tt.content)))
		f.Close()
		if err != nil || string(got) != tt.want {
			t.Errorf("separator(%q) = %q, %v; want %q", tt.content, got, err, tt.want)
		}
	}
}

func TestAppendSeparatesFromExistingContent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alice")
	os.WriteFile(p, []byte("From x Wed Oct  7 12:00:00 2009\nS: a\n\nno newline"), 0o600)
	res, err := Append(context.Background(), p, "b@c", date, []byte("S: b\n\nbody\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := "From x Wed Oct  7 12:00:00 2009\nS: a\n\nno newline\n\nFrom b@c Wed Oct  7 12:00:00 2009\nS: b\n\nbody\n\n"
	if string(got) != want {
		t.Fatalf("file:\n got %q\nwant %q", got, want)
	}
	if res.Offset != int64(strings.Index(want, "From b@c")) || res.Bytes != int64(len(want))-int64(len("From x Wed Oct  7 12:00:00 2009\nS: a\n\nno newline")) {
		t.Errorf("result %+v", res)
	}
	if _, err := os.Stat(LockPath(p)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dot-lock left behind: %v", err)
	}
}

func TestAppendMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nobody")
	_, err := Append(context.Background(), p, "", date, []byte("S: x\n\nb\n"), Options{})
	if !errors.Is(err, fs.ErrNotExist) || IsTemporary(err) {
		t.Fatalf("missing spool: err = %v, want not-exist, not temporary", err)
	}
	if _, err := os.Stat(LockPath(p)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dot-lock left behind")
	}
	if _, err := Append(context.Background(), p, "", date, []byte("S: x\n\nb\n"), Options{Create: true}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created spool: %v %v", fi, err)
	}
}

func TestAppendTruncatesBackOnError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alice")
	orig := "From x Wed Oct  7 12:00:00 2009\nS: a\n\nbody\n\n"
	os.WriteFile(p, []byte(orig), 0o600)
	testHookAfterWrite = func(string) error { return errors.New("disk on fire") }
	defer func() { testHookAfterWrite = nil }()
	_, err := Append(context.Background(), p, "b@c", date, []byte("S: b\n\nbig body\n"), Options{})
	if err == nil || !IsTemporary(err) || !strings.Contains(err.Error(), "truncated back") {
		t.Fatalf("err = %v, want temporary truncated-back error", err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != orig {
		t.Fatalf("file not restored: %q", got)
	}
	if _, err := os.Stat(LockPath(p)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dot-lock left behind after failure")
	}
}

// An unwritable spool is a temporary failure (the MTA retries). A
// directory in the spool's place fails for root too; a read-only file only
// for other users, since root ignores file modes.
func TestAppendUnwritableIsTemporary(t *testing.T) {
	cases := map[string]func(p string){
		"directory": func(p string) { os.Mkdir(p, 0o755) },
	}
	if os.Geteuid() != 0 {
		cases["read-only file"] = func(p string) { os.WriteFile(p, nil, 0o400) }
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "alice")
			setup(p)
			_, err := Append(context.Background(), p, "b@c", date, []byte("S: b\n\nb\n"), Options{})
			if !IsTemporary(err) {
				t.Fatalf("err = %v, want temporary", err)
			}
		})
	}
}

func TestStaleLockIsBroken(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alice")
	os.WriteFile(p, nil, 0o600)
	os.WriteFile(LockPath(p), []byte("99999\n"), 0o644)
	old := time.Now().Add(-6 * time.Minute)
	os.Chtimes(LockPath(p), old, old)
	if _, err := Append(context.Background(), p, "a@b", date, []byte("S: x\n\nb\n"), Options{Timeout: 2 * time.Second}); err != nil {
		t.Fatalf("stale lock not broken: %v", err)
	}
}

func TestLockOfDeadProcessIsBroken(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alice")
	os.WriteFile(p, nil, 0o600)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	// A fresh lock whose holder (a finished process) is gone, and the
	// temporary file it linked the lock from.
	os.WriteFile(LockPath(p), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	leftover := fmt.Sprintf("%s.%d.12345", LockPath(p), cmd.Process.Pid)
	os.WriteFile(leftover, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	start := time.Now()
	if _, err := Append(context.Background(), p, "a@b", date, []byte("S: x\n\nb\n"), Options{Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("dead holder's lock not broken: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dead holder's temporary file left behind: %v", err)
	}
	if m, _ := filepath.Glob(LockPath(p) + ".*"); len(m) != 0 {
		t.Errorf("temporary lock files left: %v", m)
	}
}

// TestKilledAppendIsTruncated kills a process in the middle of an append
// (written, not yet unlocked): the next appender truncates the partial
// message away before adding its own.
func TestKilledAppendIsTruncated(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alice")
	orig := "From x Wed Oct  7 12:00:00 2009\nS: a\n\nbody\n\n"
	os.WriteFile(p, []byte(orig), 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SPOOL_HELPER="+p, "SPOOL_HELPER_ID=k", "SPOOL_HELPER_N=1", "SPOOL_HELPER_HANG=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(p + ".written"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("helper never wrote")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL, this PID only
	cmd.Wait()
	if got, _ := os.ReadFile(p); len(got) <= len(orig) {
		t.Fatal("helper's message not in the file before recovery")
	}
	if _, err := Append(context.Background(), p, "b@c", date, []byte("S: b\n\nnext\n"), Options{Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := orig + "From b@c Wed Oct  7 12:00:00 2009\nS: b\n\nnext\n\n"
	if string(got) != want {
		t.Fatalf("after recovery:\n got %q\nwant %q", got, want)
	}
}

func TestFreshLockTimesOut(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alice")
	os.WriteFile(p, []byte("x\n\n"), 0o600)
	os.WriteFile(LockPath(p), []byte("1\n"), 0o644) // init: alive
	start := time.Now()
	_, err := Append(context.Background(), p, "a@b", date, []byte("S: x\n\nb\n"), Options{Timeout: 200 * time.Millisecond})
	if !IsTemporary(err) || !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("err = %v, want temporary lock timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("waited %v", d)
	}
	if got, _ := os.ReadFile(p); string(got) != "x\n\n" {
		t.Errorf("file changed: %q", got)
	}
	// The other holder's lock must survive our timeout.
	if _, err := os.Stat(LockPath(p)); err != nil {
		t.Errorf("someone else's dot-lock removed: %v", err)
	}
}

func TestStaleByInjectedClock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alice")
	os.WriteFile(p, nil, 0o600)
	os.WriteFile(LockPath(p), []byte("1\n"), 0o644)
	opts := Options{Timeout: 2 * time.Second, Now: func() time.Time { return time.Now().Add(10 * time.Minute) }}
	if _, err := Append(context.Background(), p, "a@b", date, []byte("S: x\n\nb\n"), opts); err != nil {
		t.Fatalf("lock stale by clock not broken: %v", err)
	}
}

func TestFlockHeldBlocksAppend(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alice")
	os.WriteFile(p, nil, 0o600)
	l, err := Lock(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A reader holding the lock (the converter) keeps appenders out.
	_, err = Append(context.Background(), p, "a@b", date, []byte("S: x\n\nb\n"), Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("append while locked: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := Append(context.Background(), p, "a@b", date, []byte("S: x\n\nb\n"), Options{}); err != nil {
		t.Fatal(err)
	}
}

// countMessages splits an mbox on From_ lines after blank lines.
func countMessages(data []byte) (n int, bodies []string) {
	lines := strings.SplitAfter(string(data), "\n")
	prevBlank := true
	var cur strings.Builder
	for _, ln := range lines {
		if prevBlank && strings.HasPrefix(ln, "From ") {
			if n > 0 {
				bodies = append(bodies, cur.String())
			}
			n++
			cur.Reset()
		} else {
			cur.WriteString(ln)
		}
		prevBlank = ln == "\n"
	}
	if n > 0 {
		bodies = append(bodies, cur.String())
	}
	return n, bodies
}

// TestConcurrentProcesses appends from several processes (this test
// binary re-executed) and goroutines at once: every message must appear
// exactly once and whole.
func TestConcurrentProcesses(t *testing.T) {
	const procs, each = 4, 25
	p := filepath.Join(t.TempDir(), "alice")
	os.WriteFile(p, nil, 0o600)
	var wg sync.WaitGroup
	errs := make(chan error, procs+1)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "SPOOL_HELPER="+p, "SPOOL_HELPER_ID="+strconv.Itoa(i), "SPOOL_HELPER_N="+strconv.Itoa(each))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("helper %d: %v\n%s", i, err, out)
			}
		}()
	}
	// And goroutines in this process, each with its own open file.
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				msg := fmt.Sprintf("Subject: g%d-%d\n\nFrom the goroutine\nline\n", g, j)
				if _, err := Append(context.Background(), p, "x@y", date, []byte(msg), Options{NoFsync: true}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	n, bodies := countMessages(data)
	if want := (procs + 2) * each; n != want {
		t.Fatalf("%d messages in spool, want %d", n, want)
	}
	seen := map[string]bool{}
	for _, b := range bodies {
		subj := strings.SplitN(strings.TrimPrefix(b, "Subject: "), "\n", 2)[0]
		if seen[subj] {
			t.Fatalf("duplicate %s", subj)
		}
		seen[subj] = true
		if !strings.Contains(b, "\n>From the ") || !strings.HasSuffix(b, "line\n\n") {
			t.Fatalf("message %s damaged: %q", subj, b)
		}
	}
}

// TestMain turns the test binary into the appender child process of
// TestKilledAppendIsTruncated and friends when SPOOL_HELPER is set.
func TestMain(m *testing.M) {
	if p := os.Getenv("SPOOL_HELPER"); p != "" {
		if err := helperAppender(p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperAppender is the child process: it appends SPOOL_HELPER_N
// messages to the spool p.
func helperAppender(p string) error {
	if os.Getenv("SPOOL_HELPER_HANG") != "" {
		// Write a message, then hang before fsync and unlock until killed.
		testHookAfterWrite = func(string) error {
			os.WriteFile(p+".written", nil, 0o644)
			time.Sleep(time.Minute)
			return nil
		}
	}
	id := os.Getenv("SPOOL_HELPER_ID")
	n, _ := strconv.Atoi(os.Getenv("SPOOL_HELPER_N"))
	for j := range n {
		msg := fmt.Sprintf("Subject: p%s-%d\n\nFrom the process\nline\n", id, j)
		if _, err := Append(context.Background(), p, "x@y", date, []byte(msg), Options{NoFsync: true}); err != nil {
			return err
		}
	}
	return nil
}

// FuzzFormat checks that any message framed by Format reads back as
// exactly one mbox message whose body, with >From unquoted, is the input
// with LF line ends.
func FuzzFormat(f *testing.F) {
	f.Add("a@b", []byte("Subject: x\n\nFrom me\n"))
	f.Add("", []byte("From x\r\n\r\nFrom \n\nFrom y Wed Oct  7 12:00:00 2009\n"))
	f.Add("x", []byte(""))
	f.Fuzz(func(t *testing.T, sender string, msg []byte) {
		out := Format(sender, date, msg)
		n, bodies := countMessages(out)
		if n != 1 {
			t.Fatalf("%d messages from %q", n, out)
		}
		if !bytes.HasSuffix(out, []byte("\n\n")) {
			t.Fatalf("no blank line at end: %q", out)
		}
		first := strings.SplitN(string(out), "\n", 2)[0]
		if len(strings.Fields(first)) != 7 {
			t.Fatalf("From_ line %q has wrong fields", first)
		}
		want := strings.ReplaceAll(string(msg), "\r\n", "\n")
		if want != "" && !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		body := strings.TrimSuffix(bodies[0], "\n")
		var un strings.Builder
		for _, ln := range strings.SplitAfter(body, "\n") {
			un.WriteString(strings.TrimPrefix(ln, ">"))
		}
		var wq strings.Builder
		for _, ln := range strings.SplitAfter(want, "\n") {
			wq.WriteString(strings.TrimPrefix(ln, ">"))
		}
		if un.String() != wq.String() {
			t.Fatalf("round trip:\n got %q\nwant %q", un.String(), wq.String())
		}
	})
}

func TestLockedAppendRollback(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alice")
	orig := "From x Wed Oct  7 12:00:00 2009\nS: a\n\nbody\n"
	os.WriteFile(p, []byte(orig), 0o600)
	l, err := Lock(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	res, err := l.Append("a@b", date, []byte("S: b\n\nb\n"), Options{})
	if err != nil || res.OldSize != int64(len(orig)) || res.Offset != res.OldSize+1 {
		t.Fatalf("append: %+v %v", res, err)
	}
	if err := l.Rollback(res, Options{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != orig {
		t.Fatalf("after rollback %q", got)
	}
}

// BenchmarkAppend measures one locked, fsynced append of a 4 KB message
// and reports the lock hold time.
func BenchmarkAppend(b *testing.B) {
	p := filepath.Join(b.TempDir(), "alice")
	os.WriteFile(p, nil, 0o600)
	msg := []byte("Subject: bench\n\n" + strings.Repeat("x", 72) + "\n")
	msg = bytes.Repeat(msg, 4096/len(msg))
	var held time.Duration
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		res, err := Append(context.Background(), p, "a@b", date, msg, Options{})
		if err != nil {
			b.Fatal(err)
		}
		held += res.LockHeld
	}
	b.ReportMetric(float64(held.Microseconds())/float64(b.N), "µs-locked/op")
}

func FuzzParseLock(f *testing.F) {
	f.Add([]byte("1234\n"))
	f.Add([]byte("1234\n5678\n"))
	f.Add([]byte(""))
	f.Add([]byte("-1\n"))
	f.Add([]byte("12 34\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, size, ok := parseLock(b)
		if !ok {
			return
		}
		if pid <= 0 || size < -1 {
			t.Fatalf("parseLock(%q) = %d, %d", b, pid, size)
		}
		// What we write, we read back.
		pid2, size2, ok2 := parseLock([]byte(strconv.Itoa(pid) + "\n" + strconv.FormatInt(max(size, 0), 10) + "\n"))
		if !ok2 || pid2 != pid || size2 != max(size, 0) {
			t.Fatalf("round trip of %d %d: %d %d %v", pid, size, pid2, size2, ok2)
		}
	})
}

// An INBOX kept in mbx or MMDF (UW-IMAP sites did so for shared INBOXes)
// is never appended mbox text: the append fails temporarily, the file is
// unchanged and no lock is left.
func TestAppendRefusesMbxAndMMDF(t *testing.T) {
	for _, head := range []string{"*mbx*\r\n6b15c63700000000\r\n", "\x01\x01\x01\x01\nFrom a Wed Oct  7 12:00:00 2009\n\nx\n\x01\x01\x01\x01\n"} {
		p := filepath.Join(t.TempDir(), "alice")
		os.WriteFile(p, []byte(head), 0o600)
		_, err := Append(context.Background(), p, "b@c", date, []byte("S: b\n\nbody\n"), Options{})
		if !errors.Is(err, ErrForeignFormat) || !IsTemporary(err) {
			t.Fatalf("append to %q: %v, want a temporary ErrForeignFormat", head[:5], err)
		}
		if got, _ := os.ReadFile(p); string(got) != head {
			t.Errorf("file changed: %q", got)
		}
		if _, err := os.Stat(LockPath(p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("dot-lock left behind: %v", err)
		}
	}
}

// formatWhole is Format as it was before it streamed (the whole message
// in memory): WriteFormat must give the same bytes.
func formatWhole(sender string, date time.Time, msg []byte) []byte {
	var b bytes.Buffer
	b.WriteString("From " + fromSender(sender) + " " + date.Format(FromLineDate) + "\n")
	for len(msg) > 0 {
		line := msg
		next := []byte(nil)
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, next = bytes.TrimSuffix(msg[:i], []byte("\r")), msg[i+1:]
		}
		if bytes.HasPrefix(line, []byte("From ")) {
			b.WriteByte('>')
		}
		b.Write(line)
		b.WriteByte('\n')
		msg = next
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// FuzzWriteFormat holds the streaming framer to formatWhole, with a
// 16-byte buffer so that lines, CRLFs and "From " cross its boundaries.
func FuzzWriteFormat(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nFrom me\r\n"))
	f.Add([]byte("0123456789abcde\r\n0123456789abcdef\r\nFrom 0123456789abcdef\r"))
	f.Add([]byte("aaaaaaaaaaaaaaa\r\r\n\r"))
	f.Add([]byte("no newline at all, longer than sixteen bytes"))
	old := formatBuf
	formatBuf = 16
	f.Cleanup(func() { formatBuf = old })
	f.Fuzz(func(t *testing.T, msg []byte) {
		want := formatWhole("a@b", date, msg)
		var got bytes.Buffer
		n, err := WriteFormat(&got, "a@b", date, bytes.NewReader(msg))
		if err != nil || !bytes.Equal(got.Bytes(), want) || n != int64(len(want)) {
			t.Fatalf("WriteFormat(%q) = %q (%d), %v; want %q", msg, got.Bytes(), n, err, want)
		}
	})
}
