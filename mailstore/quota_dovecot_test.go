package mailstore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailmig/mailstore"
	"mailmig/mailstore/dovecottest"
)

// TestDovecotReadsOurMaildirsize: dovecot's maildir quota backend reports
// the usage we recorded in maildirsize, and takes our limits from it.
func TestDovecotReadsOurMaildirsize(t *testing.T) {
	dovecottest.Require(t)
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "Maildir")
	d := dovecottest.New(t, root)
	s, err := mailstore.Open(root, mailstore.Options{CreateRoot: true, NoFsync: true, Hub: mailstore.NewHub(), QuotaBytes: 1 << 20, QuotaMessages: 100})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFolder("Sent"); err != nil {
		t.Fatal(err)
	}
	sent, _ := s.Folder("Sent")
	for i := 0; i < 5; i++ {
		f := in
		if i%2 == 1 {
			f = sent
		}
		if _, err := f.Append(ctx, strings.NewReader(fmt.Sprintf("Subject: %d\n\n%s\n", i, strings.Repeat("x", 300*i))), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.Expunge(ctx, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	bytes, msgs, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(root, "maildirsize"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(before), "1048576S,100C\n") {
		t.Fatalf("maildirsize %q", before)
	}
	if _, err := d.Status("INBOX"); err != nil { // lets the helper hand the tree to dovecot's user
		t.Fatal(err)
	}
	conf, err := os.ReadFile(d.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	qconf := filepath.Join(filepath.Dir(d.ConfigPath()), "quota.conf")
	extra := "\nmail_plugins = $mail_plugins quota\nplugin {\n  quota = maildir:User quota\n  quota_rule = *:storage=1M:messages=100\n}\n"
	if err := os.WriteFile(qconf, append(conf, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(d.Bin, "-c", qconf, "-f", "tab", "quota", "get")
	cmd.Env = d.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("doveadm quota get: %v\n%s", err, out)
	}
	// quota name, type, value, limit, %; STORAGE in KiB.
	var gotKiB, gotMsgs int64 = -1, -1
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 {
			continue
		}
		switch f[1] {
		case "STORAGE":
			fmt.Sscan(f[2], &gotKiB)
		case "MESSAGE":
			fmt.Sscan(f[2], &gotMsgs)
		}
	}
	if gotMsgs != msgs || gotKiB != (bytes+1023)/1024 { // dovecot rounds KiB up
		t.Fatalf("doveadm says %d KiB, %d messages; we %d bytes, %d messages\n%s", gotKiB, gotMsgs, bytes, msgs, out)
	}
	after, err := os.ReadFile(filepath.Join(root, "maildirsize"))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Fatalf("dovecot rewrote maildirsize:\n%q\n%q", before, after)
	}
}
