// Package dovecottest runs Debian's doveadm (dovecot 2.3) against a
// Maildir++ tree that mailmig wrote, so tests can ask dovecot itself —
// not mailmig's own reader — what the tree holds: folders, UIDVALIDITY,
// UIDs, flags and keywords, internal dates, sizes, raw message bytes and
// subscriptions. It is the judge of every test that claims dovecot
// compatibility.
//
// Implementation notes:
//   - Each Doveadm has its own minimal dovecot.conf (no running dovecot,
//     no auth server: USER and HOME come from the environment), with
//     "namespace inbox { separator = / }" so names look like IMAP names
//     ("a/b"), and INDEX=MEMORY so dovecot leaves no index files behind.
//   - Dovecot refuses mail access as root. When the test runs as root the
//     mail is accessed as nobody (65534): before each command the tree is
//     chowned to it and its ancestors made traversable. Root can still
//     write everything afterwards.
//   - Any "Error:", "Warning:", "Fatal:" or "Panic:" line dovecot prints
//     makes the command fail: dovecot logs (and silently repairs) broken
//     uidlists, wrong S= sizes and the like, and a judge must not let
//     that pass.
//   - Without doveadm, New skips the test, or fails it when the CI
//     environment variable is set.
package dovecottest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nobody is the uid and gid dovecot accesses mail as when tests run as root.
const nobody = 65534

// Doveadm runs doveadm against one Maildir++ tree.
type Doveadm struct {
	// Bin is the doveadm binary.
	Bin string
	// Maildir is the absolute path of the tree (the user's ~/Maildir).
	Maildir string
	// Timeout bounds each doveadm run; zero means one minute.
	Timeout time.Duration

	dir  string // config, base_dir, home
	conf string
	uid  int
	gid  int
}

// Available reports whether doveadm is installed.
func Available() bool {
	_, err := exec.LookPath("doveadm")
	return err == nil
}

// Require fails t if doveadm is missing: `make test` (scripts/test-setup)
// installs dovecot-core, so a missing doveadm is a broken set-up, never a
// reason to skip.
func Require(t testing.TB) {
	t.Helper()
	if !Available() {
		t.Fatal("dovecottest: doveadm not found; run scripts/test-setup (make test does) to install dovecot-core")
	}
}

// New returns a Doveadm for maildir (which need not exist yet). It calls
// Require first and removes its files when t ends.
func New(t testing.TB, maildir string) *Doveadm {
	t.Helper()
	Require(t)
	d, err := NewDir(maildir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// NewDir is New without a testing.TB (for benchmarks and scripts); call
// Close when done.
func NewDir(maildir string) (*Doveadm, error) {
	bin, err := exec.LookPath("doveadm")
	if err != nil {
		return nil, fmt.Errorf("dovecottest: %w", err)
	}
	abs, err := filepath.Abs(maildir)
	if err != nil {
		return nil, fmt.Errorf("dovecottest: %w", err)
	}
	// A short directory: dovecot's sockets in base_dir must fit in
	// sun_path (108 bytes), which t.TempDir() names can exceed.
	dir, err := os.MkdirTemp("", "dvt")
	if err != nil {
		return nil, fmt.Errorf("dovecottest: %w", err)
	}
	d := &Doveadm{Bin: bin, Maildir: abs, dir: dir, uid: os.Getuid(), gid: os.Getgid()}
	if d.uid == 0 {
		d.uid, d.gid = nobody, nobody
	}
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("dovecottest: %w", err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("dovecottest: %w", err)
	}
	conf := fmt.Sprintf(`# written by mailmig's dovecottest
protocols =
ssl = no
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
info_log_path = /dev/null
first_valid_uid = 0
first_valid_gid = 0
mail_uid = %[2]d
mail_gid = %[3]d
mail_location = maildir:%[4]s:INDEX=MEMORY
namespace inbox {
  inbox = yes
  separator = /
}
`, dir, d.uid, d.gid, abs)
	d.conf = filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("dovecottest: %w", err)
	}
	return d, nil
}

// Close removes the helper's configuration directory (not the Maildir).
func (d *Doveadm) Close() { os.RemoveAll(d.dir) }

// ConfigPath returns the dovecot.conf the helper uses (for running other
// dovecot tools, e.g. "doveadm -c PATH ...", by hand).
func (d *Doveadm) ConfigPath() string { return d.conf }

// Env returns the environment doveadm runs with (USER, HOME, TZ=UTC).
func (d *Doveadm) Env() []string {
	env := []string{"USER=mailmig-test", "HOME=" + filepath.Join(d.dir, "home"), "TZ=UTC", "PATH=" + os.Getenv("PATH")}
	return env
}

// Run runs "doveadm -c CONF ARGS..." and returns its standard output.
// A non-zero exit or any error or warning dovecot logs is an error that
// includes the log.
func (d *Doveadm) Run(args ...string) ([]byte, error) {
	if err := d.grant(); err != nil {
		return nil, err
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	cmd := exec.Command(d.Bin, append([]string{"-c", d.conf}, args...)...)
	cmd.Env = d.Env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dovecottest: doveadm %s: %w", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		err = fmt.Errorf("timed out after %s", timeout)
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("dovecottest: doveadm %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	if bad := badLog(errb.String()); bad != "" {
		return out.Bytes(), fmt.Errorf("dovecottest: doveadm %s logged: %s", strings.Join(args, " "), bad)
	}
	return out.Bytes(), nil
}

// badLog returns the error and warning lines of a dovecot log.
func badLog(log string) string {
	var bad []string
	for _, line := range strings.Split(log, "\n") {
		for _, w := range []string{"Error:", "Warning:", "Fatal:", "Panic:"} {
			if strings.Contains(line, w) {
				bad = append(bad, line)
				break
			}
		}
	}
	return strings.Join(bad, "\n")
}

// grant makes the tree accessible to the uid dovecot runs as (only
// needed, and only done, when the test runs as root).
func (d *Doveadm) grant() error {
	if os.Getuid() != 0 {
		return nil
	}
	if _, err := os.Stat(d.Maildir); err != nil {
		return nil // let dovecot report it
	}
	for p := filepath.Dir(d.Maildir); p != "/" && p != "."; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("dovecottest: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("dovecottest: %w", err)
			}
		}
	}
	return filepath.WalkDir(d.Maildir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // renamed meanwhile
			}
			return err
		}
		if err := os.Lchown(p, d.uid, d.gid); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("dovecottest: %w", err)
		}
		return nil
	})
}

// Status is what "doveadm mailbox status" says about a folder.
type Status struct {
	Name        string
	Messages    int
	UIDNext     uint32
	UIDValidity uint32
}

// Folders returns the status of every existing folder (INBOX included),
// sorted by name. Parents that exist only as part of a child's name are
// not listed.
func (d *Doveadm) Folders() ([]Status, error) {
	out, err := d.Run("-f", "json", "mailbox", "status", "messages uidnext uidvalidity", "*")
	if err != nil {
		return nil, err
	}
	var rows []map[string]string
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("dovecottest: mailbox status: %w: %q", err, out)
	}
	var st []Status
	for _, r := range rows {
		s := Status{Name: r["mailbox"]}
		s.Messages, _ = strconv.Atoi(r["messages"])
		s.UIDNext = parseU32(r["uidnext"])
		s.UIDValidity = parseU32(r["uidvalidity"])
		st = append(st, s)
	}
	sort.Slice(st, func(i, j int) bool { return st[i].Name < st[j].Name })
	return st, nil
}

// Status returns the status of one folder.
func (d *Doveadm) Status(folder string) (Status, error) {
	out, err := d.Run("-f", "json", "mailbox", "status", "messages uidnext uidvalidity", folder)
	if err != nil {
		return Status{}, err
	}
	var rows []map[string]string
	if err := json.Unmarshal(out, &rows); err != nil || len(rows) != 1 {
		return Status{}, fmt.Errorf("dovecottest: mailbox status %q: %v: %q", folder, err, out)
	}
	r := rows[0]
	s := Status{Name: r["mailbox"], UIDNext: parseU32(r["uidnext"]), UIDValidity: parseU32(r["uidvalidity"])}
	s.Messages, _ = strconv.Atoi(r["messages"])
	return s, nil
}

// Subscriptions returns the subscribed names as dovecot lists them
// (including names of folders that do not exist), sorted.
func (d *Doveadm) Subscriptions() ([]string, error) {
	out, err := d.Run("-f", "json", "mailbox", "list", "-s")
	if err != nil {
		return nil, err
	}
	var rows []map[string]string
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("dovecottest: mailbox list -s: %w: %q", err, out)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r["mailbox"])
	}
	sort.Strings(names)
	return names, nil
}

// Message is one message as dovecot sees it.
type Message struct {
	UID uint32
	// Flags are system flags and keywords as dovecot reports them, sorted,
	// without \Recent (which depends on who looked first).
	Flags []string
	// Received is the internal date (date.received), in UTC.
	Received time.Time
	// Size and VSize are size.physical and size.virtual.
	Size, VSize int64
	// GUID is dovecot's guid: for Maildir the file name's base.
	GUID string
	// SHA256 is the hex SHA-256 of the raw message bytes (the "text"
	// field).
	SHA256 string
}

// Messages returns the messages of folder in UID order, with a hash of
// each message's bytes.
func (d *Doveadm) Messages(folder string) ([]Message, error) {
	out, err := d.Run("-f", "json", "fetch", "uid flags date.received.unixtime size.physical size.virtual guid", "mailbox", folder, "ALL")
	if err != nil {
		return nil, err
	}
	var rows []map[string]string
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &rows); err != nil {
			return nil, fmt.Errorf("dovecottest: fetch %q: %w: %q", folder, err, out)
		}
	}
	msgs := make([]Message, 0, len(rows))
	for _, r := range rows {
		m := Message{UID: parseU32(r["uid"]), GUID: r["guid"]}
		for _, f := range strings.Fields(r["flags"]) {
			if f != `\Recent` {
				m.Flags = append(m.Flags, f)
			}
		}
		sort.Strings(m.Flags)
		sec, _ := strconv.ParseInt(r["date.received.unixtime"], 10, 64)
		m.Received = time.Unix(sec, 0).UTC()
		m.Size, _ = strconv.ParseInt(r["size.physical"], 10, 64)
		m.VSize, _ = strconv.ParseInt(r["size.virtual"], 10, 64)
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].UID < msgs[j].UID })
	if len(msgs) == 0 {
		return msgs, nil
	}
	if err := d.hashTexts(folder, msgs); err != nil {
		return nil, err
	}
	return msgs, nil
}

// hashTexts fills in SHA256 from one "fetch uid text" run in pager
// format: "uid: N\ntext:\n" + exactly size.physical bytes, records
// separated by "\f\n". Sizes come from the json run, so a form feed in a
// message cannot confuse the parser.
func (d *Doveadm) hashTexts(folder string, msgs []Message) error {
	return d.texts(folder, msgs, func(m *Message, text []byte) {
		sum := sha256.Sum256(text)
		m.SHA256 = hex.EncodeToString(sum[:])
	})
}

// Texts returns the messages of folder as Messages does, and each
// message's raw bytes by UID.
func (d *Doveadm) Texts(folder string) ([]Message, map[uint32][]byte, error) {
	msgs, err := d.Messages(folder)
	if err != nil || len(msgs) == 0 {
		return msgs, map[uint32][]byte{}, err
	}
	texts := make(map[uint32][]byte, len(msgs))
	err = d.texts(folder, msgs, func(m *Message, text []byte) { texts[m.UID] = text })
	return msgs, texts, err
}

// texts runs "fetch uid text" once and calls fn with each message's bytes.
func (d *Doveadm) texts(folder string, msgs []Message, fn func(*Message, []byte)) error {
	out, err := d.Run("-f", "pager", "fetch", "uid text", "mailbox", folder, "ALL")
	if err != nil {
		return err
	}
	seen := make(map[uint32]bool, len(msgs))
	byUID := make(map[uint32]*Message, len(msgs))
	for i := range msgs {
		byUID[msgs[i].UID] = &msgs[i]
	}
	rest := out
	for n := 0; len(rest) > 0; n++ {
		if n > 0 {
			if !bytes.HasPrefix(rest, []byte("\f\n")) {
				return fmt.Errorf("dovecottest: fetch text %q: no record separator at %d", folder, len(out)-len(rest))
			}
			rest = rest[2:]
		}
		if !bytes.HasPrefix(rest, []byte("uid: ")) {
			return fmt.Errorf("dovecottest: fetch text %q: expected uid at %d", folder, len(out)-len(rest))
		}
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return fmt.Errorf("dovecottest: fetch text %q: truncated", folder)
		}
		uid := parseU32(string(rest[5:nl]))
		rest = rest[nl+1:]
		if !bytes.HasPrefix(rest, []byte("text:\n")) {
			return fmt.Errorf("dovecottest: fetch text %q uid %d: expected text", folder, uid)
		}
		rest = rest[6:]
		m := byUID[uid]
		if m == nil {
			return fmt.Errorf("dovecottest: fetch text %q: unknown uid %d", folder, uid)
		}
		if int64(len(rest)) < m.Size {
			return fmt.Errorf("dovecottest: fetch text %q uid %d: %d bytes, size.physical %d", folder, uid, len(rest), m.Size)
		}
		fn(m, rest[:m.Size])
		seen[uid] = true
		rest = rest[m.Size:]
		// The pager adds a newline after a value that lacks one.
		if len(rest) > 0 && rest[0] == '\n' {
			rest = rest[1:]
		}
	}
	for _, m := range msgs {
		if !seen[m.UID] {
			return fmt.Errorf("dovecottest: fetch text %q: no text for uid %d", folder, m.UID)
		}
	}
	return nil
}

// Text returns the raw bytes of one message.
func (d *Doveadm) Text(folder string, uid uint32) ([]byte, error) {
	msgs, err := d.Run("-f", "json", "fetch", "size.physical", "mailbox", folder, "uid", strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	var rows []map[string]string
	if err := json.Unmarshal(msgs, &rows); err != nil || len(rows) != 1 {
		return nil, fmt.Errorf("dovecottest: fetch %q uid %d: no such message (%v)", folder, uid, err)
	}
	size, _ := strconv.Atoi(rows[0]["size.physical"])
	out, err := d.Run("-f", "pager", "fetch", "text", "mailbox", folder, "uid", strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(out, []byte("text:\n")) || len(out) < 6+size {
		return nil, fmt.Errorf("dovecottest: fetch text %q uid %d: unexpected output", folder, uid)
	}
	return out[6 : 6+size], nil
}

// Folder is everything dovecot says about one folder.
type Folder struct {
	Status
	Messages []Message
}

// Dump returns every folder with its messages, by name.
func (d *Doveadm) Dump() (map[string]Folder, error) {
	sts, err := d.Folders()
	if err != nil {
		return nil, err
	}
	all := make(map[string]Folder, len(sts))
	for _, s := range sts {
		msgs, err := d.Messages(s.Name)
		if err != nil {
			return nil, err
		}
		all[s.Name] = Folder{Status: s, Messages: msgs}
	}
	return all, nil
}

func parseU32(s string) uint32 {
	n, _ := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	return uint32(n)
}
