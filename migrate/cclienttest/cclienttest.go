// Package cclienttest asks UW-IMAP's own library, c-client (Debian's
// libc-client2007e, the code uw-imapd and mailutil run), how it reads a
// mailbox: every message's UID, flags, keywords, internal date and bytes,
// and the folder's UIDVALIDITY. It is the judge of the tests that claim
// mailmig reads old folders (mbox, MMDF, mbx, mix) exactly as UW-IMAP
// served them.
//
// Implementation notes:
//   - csrc/dump.c (written for mailmig) links c-client, opens the mailbox
//     read-write (as uw-imapd did: c-client creates keywords only then) with c-client's drivers (unix, mmdf, mbx, mix, ...: the
//     same detection as uw-imapd) and prints what c-client serves. It is
//     compiled with gcc once per version of dump.c into the temporary
//     directory and shared by the test processes (Build); the headers come
//     from libc-client2007e-dev (scripts/test-packages).
//   - c-client refuses absolute mailbox names for a process that did not
//     log in, so Dump copies the mailbox into a fresh directory that
//     becomes c-client's home and names it relative to it. The copy keeps
//     the source's mtime (c-client uses it for MMDF messages without a
//     From_ line). The source is only read.
//   - Messages come back as c-client serves them to IMAP clients: with
//     CRLF line ends (CRLF converts a stored bare LF; see CRLF).
//   - Missing gcc or c-client headers fail the test (never a skip).
package cclienttest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed csrc/dump.c
var dumpSource []byte

// Header is c-client's main header; Build fails without it.
const Header = "/usr/include/c-client/c-client.h"

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// Build compiles the dump program once per process and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if _, err := os.Stat(Header); err != nil {
			buildErr = fmt.Errorf("cclienttest: %v: install libc-client2007e-dev (scripts/test-packages)", err)
			return
		}
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			buildErr = fmt.Errorf("cclienttest: gcc: %v (scripts/test-packages)", err)
			return
		}
		// One binary per version of dump.c, shared by the test processes
		// (built under a unique name, then renamed into place).
		sum := sha256.Sum256(dumpSource)
		dir := filepath.Join(os.TempDir(), "mailmig-cclient-dump-"+hex.EncodeToString(sum[:6]))
		bin := filepath.Join(dir, "cclient-dump")
		if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
			buildBin = bin
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		work, err := os.MkdirTemp(dir, "build-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(work)
		src := filepath.Join(work, "dump.c")
		if err := os.WriteFile(src, dumpSource, 0o644); err != nil {
			buildErr = err
			return
		}
		out, err := exec.Command(gcc, "-O", "-o", filepath.Join(work, "cclient-dump"), "-I/usr/include/c-client", src, "-lc-client").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("cclienttest: gcc: %v: %s", err, out)
			return
		}
		if err := os.Rename(filepath.Join(work, "cclient-dump"), bin); err != nil {
			buildErr = err
			return
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Message is one message as c-client serves it.
type Message struct {
	UID uint32
	// Flags are the system flags (\Answered \Deleted \Draft \Flagged
	// \Seen), sorted; Recent is c-client's \Recent.
	Flags  []string
	Recent bool
	// Keywords are the message's keywords, sorted.
	Keywords []string
	// Date is the internal date; Zone its zone as c-client keeps it
	// ("+0200").
	Date time.Time
	Zone string
	// Text is header and body as served (CRLF line ends).
	Text []byte
}

// Folder is a mailbox as c-client reads it.
type Folder struct {
	// Driver is c-client's driver: unix (mbox), mmdf, mbx, mix, phile
	// (a file that is not a mailbox, served as one message), dummy
	// (an empty file).
	Driver      string
	UIDValidity uint32
	UIDNext     uint32
	// Keywords are the keywords the folder defines, in c-client's order.
	Keywords []string
	Messages []Message
	// Log is what c-client logged while reading.
	Log string
}

// Dump copies path (a file or, for mix, a directory) into a temporary
// home and returns what c-client reads there. mailbox, if not empty, is
// the c-client name to open instead of the copy's base name (e.g.
// "#driver.mbx/NAME").
func Dump(t testing.TB, path string) *Folder {
	t.Helper()
	f, err := DumpErr(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// DumpErr is Dump returning an error instead of failing the test.
func DumpErr(t testing.TB, path, mailbox string) (*Folder, error) {
	t.Helper()
	bin := Build(t)
	f, err := dumpCopy(t, bin, path, mailbox)
	if err != nil {
		// c-client gives up on some damaged files when it would rewrite
		// them (a read-write open); read-only it still serves them. A
		// fresh copy: the failed run may have left a lock behind.
		if ro, err2 := dumpCopy(t, bin, path, mailbox, "readonly"); err2 == nil {
			return ro, nil
		}
	}
	return f, err
}

func dumpCopy(t testing.TB, bin, path, mailbox string, extra ...string) (*Folder, error) {
	home := t.TempDir()
	if err := os.Chmod(home, 0o755); err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	if err := CopyTree(path, filepath.Join(home, name)); err != nil {
		return nil, err
	}
	if mailbox == "" {
		mailbox = name
	}
	return Run(bin, home, mailbox, extra...)
}

// Run runs the dump program on mailbox (a c-client name relative to home);
// extra arguments ("readonly") are passed on.
func Run(bin, home, mailbox string, extra ...string) (*Folder, error) {
	// c-client waits up to 5 minutes for a stale lock: never that long here.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{home, mailbox}, extra...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "TZ=UTC")
	cmd.Dir = home
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("cclienttest: %s %s: %v: %s", bin, mailbox, err, stderr.String())
	}
	f, err := Parse(out)
	if err != nil {
		return nil, fmt.Errorf("cclienttest: %s: %w", mailbox, err)
	}
	f.Log = stderr.String()
	return f, nil
}

// Parse reads the dump program's output.
func Parse(out []byte) (*Folder, error) {
	br := bufio.NewReader(bytes.NewReader(out))
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("no FOLDER line: %q", out)
	}
	var f Folder
	var n int
	if _, err := fmt.Sscanf(line, "FOLDER %s %d %d %d\n", &f.Driver, &f.UIDValidity, &f.UIDNext, &n); err != nil {
		return nil, fmt.Errorf("bad FOLDER line %q: %v", line, err)
	}
	for {
		line, err = br.ReadString('\n')
		if err == io.EOF && line == "" {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("truncated output")
		}
		if k, ok := strings.CutPrefix(line, "KEYWORD "); ok {
			f.Keywords = append(f.Keywords, strings.TrimSuffix(k, "\n"))
			continue
		}
		fl := strings.Fields(line)
		if len(fl) != 6 || fl[0] != "MSG" {
			return nil, fmt.Errorf("bad MSG line %q", line)
		}
		uid, err1 := strconv.ParseUint(fl[1], 10, 32)
		sec, err2 := strconv.ParseInt(fl[3], 10, 64)
		size, err3 := strconv.Atoi(fl[5])
		if err1 != nil || err2 != nil || err3 != nil || size < 0 || size > len(out) {
			return nil, fmt.Errorf("bad MSG line %q", line)
		}
		m := Message{UID: uint32(uid), Date: time.Unix(sec, 0).UTC(), Zone: fl[4]}
		flags, kws, _ := strings.Cut(fl[2], "+")
		for _, c := range flags {
			switch c {
			case 'S':
				m.Flags = append(m.Flags, `\Seen`)
			case 'A':
				m.Flags = append(m.Flags, `\Answered`)
			case 'F':
				m.Flags = append(m.Flags, `\Flagged`)
			case 'D':
				m.Flags = append(m.Flags, `\Deleted`)
			case 'T':
				m.Flags = append(m.Flags, `\Draft`)
			case 'R':
				m.Recent = true
			}
		}
		if kws != "" {
			m.Keywords = strings.Split(kws, "+")
		}
		sort.Strings(m.Flags)
		sort.Strings(m.Keywords)
		m.Text = make([]byte, size)
		if _, err := io.ReadFull(br, m.Text); err != nil {
			return nil, fmt.Errorf("message UID %d: truncated text", uid)
		}
		if c, err := br.ReadByte(); err != nil || c != '\n' {
			return nil, fmt.Errorf("message UID %d: no newline after the text", uid)
		}
		f.Messages = append(f.Messages, m)
	}
	if len(f.Messages) != n {
		return nil, fmt.Errorf("%d messages announced, %d read", n, len(f.Messages))
	}
	return &f, nil
}

// CRLF returns b as c-client serves stored text: a LF not preceded by CR
// becomes CRLF; everything else is unchanged.
func CRLF(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/32)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// CopyTree copies a file or a directory tree (a mix folder), keeping
// mtimes, readable by everyone.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			return err
		}
		return os.Chtimes(target, info.ModTime(), info.ModTime())
	})
}

// rootRelative names path relative to "/": c-client refuses absolute names
// for a process that did not log in, and mailutil's home is "/" for root
// (and HOME=/ is set for others).
func rootRelative(t testing.TB, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(abs, "/")
}

// Mailutil runs Debian's mailutil (UW-IMAP's tool) with HOME=/; arguments
// starting with "/" or "#driver.X//" are made relative to "/" first.
func Mailutil(t testing.TB, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("mailutil")
	if err != nil {
		t.Fatalf("cclienttest: mailutil: %v (uw-mailutils, scripts/test-packages)", err)
	}
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "/"):
			args[i] = rootRelative(t, a)
		case strings.HasPrefix(a, "#driver.") && strings.Contains(a, "//"):
			j := strings.Index(a, "//")
			args[i] = a[:j+1] + rootRelative(t, a[j+1:])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HOME=/", "TZ=UTC")
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cclienttest: mailutil %q: %v: %s", args, err, out)
	}
}

// SetFlag sets flags and keywords (an IMAP flag list without parentheses,
// e.g. `\Seen Work`) on the messages of seq in the mailbox at path, through
// c-client (which creates the keywords the folder lacks). driver, if not
// empty, names c-client's driver ("mix").
func SetFlag(t testing.TB, path, driver, seq, flags string) {
	t.Helper()
	bin := Build(t)
	name := rootRelative(t, path)
	if driver != "" {
		name = "#driver." + driver + "/" + name
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "/", name, "setflag", seq, flags)
	cmd.Env = append(os.Environ(), "HOME=/", "TZ=UTC")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cclienttest: setflag %s %s %q: %v: %s", name, seq, flags, err, out)
	}
}

// Expunge expunges the \Deleted messages of the mailbox at path through
// c-client.
func Expunge(t testing.TB, path string) {
	t.Helper()
	bin := Build(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "/", rootRelative(t, path), "expunge")
	cmd.Env = append(os.Environ(), "HOME=/", "TZ=UTC")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cclienttest: expunge %s: %v: %s", path, err, out)
	}
}

// RealworldDir finds ../shared/realworld-mbox beside the repository (the
// repository is X/main or X/wt/NAME, shared/ is X/shared; in CI the clone
// sits beside a copy of shared/) by walking up from the working directory,
// or takes $MAILMIG_REALWORLD. A missing directory fails the test.
func RealworldDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("MAILMIG_REALWORLD"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "shared", "realworld-mbox")
		if st, err := os.Stat(filepath.Join(cand, "SOURCES.md")); err == nil && st.Mode().IsRegular() {
			return cand
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	t.Fatalf("shared/realworld-mbox not found beside the repository (above %s); set MAILMIG_REALWORLD", wd)
	return ""
}
