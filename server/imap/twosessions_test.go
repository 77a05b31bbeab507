package imap

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTwoSessionsDovecot runs each script of testdata/twosessions (lines
// "A cmd" and "B cmd": two sessions of alice, one command at a time)
// against dovecot's imap and mailmig, each on an empty Maildir, and
// compares the answers step by step (normalised as for NOTIFY:
// notify_test.go's runNotifyScript).
var badEventRE = regexp.MustCompile(`\[BADEVENT [^\]]*\]`)

func TestTwoSessionsDovecot(t *testing.T) {
	if _, err := os.Stat(dovecotIMAP); err != nil {
		t.Fatalf("%s is missing; run scripts/test-setup (make test does) to install dovecot-imapd", dovecotIMAP)
	}
	files, err := filepath.Glob("testdata/twosessions/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, l := range strings.Split(string(data), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					steps = append(steps, l)
				}
			}
			// Not t.TempDir: its parent is closed to nobody, dovecot's uid.
			dir, err := os.MkdirTemp("", "mailmig-two-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			os.MkdirAll(filepath.Join(dir, "alice", "Maildir"), 0o777)
			if os.Geteuid() == 0 {
				filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error { return os.Lchown(p, 65534, 65534) })
			}
			os.Chmod(dir, 0o777)
			conf := filepath.Join(dir, "dovecot.conf")
			os.WriteFile(conf, []byte("mail_location = maildir:"+filepath.Join(dir, "%u", "Maildir")+"\nnamespace inbox {\n  separator = /\n  inbox = yes\n}\n"+
				// No "* OK Still here" inside a script's IDLE (notify_test.go).
				"imap_idle_notify_interval = 30 mins\n"+
				// RFC 5464 METADATA, as in the session harness.
				"imap_metadata = yes\nmail_attribute_dict = file:"+filepath.Join(dir, "%u", "dovecot-attributes")+"\n"), 0o644)
			theirs, err := runNotifyScript(steps, dovecotPeer(t, dir, conf), dovecotPeer(t, dir, conf), notifyDovecot, filepath.Join(dir, "alice", "Maildir"))
			if err != nil {
				t.Fatalf("dovecot: %v", err)
			}

			ts := startServer(t)
			login := func() *notifyPeer {
				rc := dialRaw(t, ts.addr)
				rc.nc.SetDeadline(time.Time{})
				rc.send("l LOGIN alice pw-alice\r\n")
				rc.until("l ")
				return newNotifyPeer(rc.nc, rc.r)
			}
			ours, err := runNotifyScript(steps, login(), login(), notifyMailmig, filepath.Join(ts.dir, "alice", "Maildir"))
			if err != nil {
				t.Fatalf("mailmig: %v", err)
			}
			for i, s := range steps {
				// RFC 5465 §5.9: BADEVENT lists the events the server
				// supports (notify.go); dovecot lists the refused ones.
				// That both refuse is compared, not the list.
				a := badEventRE.ReplaceAllString(strings.Join(ours[i], "\n"), "[BADEVENT ...]")
				b := badEventRE.ReplaceAllString(strings.Join(theirs[i], "\n"), "[BADEVENT ...]")
				if a != b {
					t.Errorf("step %d %q:\nmailmig:\n%s\ndovecot:\n%s", i+1, s, a, b)
				}
			}
		})
	}
}
