package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailmig/mailstore/dovecottest"
	"mailmig/migrate/convert"
	"mailmig/migrate/corpus"
)

// compareWithDovecot asks doveadm for every folder, message and
// subscription of maildir and returns how they differ from the corpus.
func compareWithDovecot(t *testing.T, tree *corpus.Tree, maildir string) []string {
	t.Helper()
	d := dovecottest.New(t, maildir)
	dump, err := d.Dump()
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	var names []string
	for n := range dump {
		names = append(names, n)
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, tree.Names()) {
		problems = append(problems, "folders: "+strings.Join(names, ",")+" want "+strings.Join(tree.Names(), ","))
	}
	for _, name := range tree.Names() {
		want, have := tree.Folders[name], dump[name]
		if want.UIDValidity != 0 && have.UIDValidity != want.UIDValidity {
			problems = append(problems, name+": UIDVALIDITY differs")
		}
		if len(have.Messages) != len(want.Messages) {
			problems = append(problems, name+": message count differs")
			continue
		}
		for i, m := range have.Messages {
			w := want.Messages[i]
			if m.UID != w.UID || strings.Join(m.Flags, " ") != strings.Join(w.Flags, " ") || !m.Received.Equal(w.Date) || m.SHA256 != hex.EncodeToString(w.SHA256[:]) {
				problems = append(problems, name+": message differs")
				break
			}
		}
	}
	subs, err := d.Subscriptions()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(subs, tree.Subscribed) {
		problems = append(problems, "subscriptions: "+strings.Join(subs, ",")+" want "+strings.Join(tree.Subscribed, ","))
	}
	return problems
}

// TestConvertCommand runs `mailmig convert --user` (paths from the
// configuration templates) on a quirky corpus and lets dovecot judge.
func TestConvertCommand(t *testing.T) {
	dovecottest.Require(t)
	data := t.TempDir()
	addOldUsers(t, data, "alice")
	tree, err := corpus.Generate(filepath.Join(data, "old"), "alice", corpus.Options{Seed: 7, Folders: 5, InboxMessages: 10, FolderMessages: 5, MaxAttachment: 8 << 10, Quirks: true})
	if err != nil {
		t.Fatal(err)
	}
	before := hashTree(t, filepath.Join(data, "old"))
	reportPath := filepath.Join(t.TempDir(), "report.json")

	// Dry run: plan only.
	out := mustMailmig(t, data, "convert", "--user", "alice", "--dry-run", "--timezone", "UTC")
	if !strings.Contains(out, `"2009.10"`) || !strings.Contains(out, `"2009_10"`) {
		t.Errorf("dry run output lacks the renaming:\n%s", out)
	}

	out, errOut, code := runMailmig(t, data, "convert", "--user", "alice", "--timezone", "UTC", "--report", reportPath, "--no-fsync")
	if code != exitConvertPartial || !strings.Contains(errOut, "old.gz at byte 0") {
		t.Fatalf("convert: exit %d (want %d for old.gz)\n%s\n%s", code, exitConvertPartial, out, errOut)
	}
	var rep convert.Report
	b, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Verified || rep.Maildir == "" || len(rep.Renamings) < 7 {
		t.Errorf("report: verified %v, maildir %q, %d renamings", rep.Verified, rep.Maildir, len(rep.Renamings))
	}
	if p := compareWithDovecot(t, tree, rep.Maildir); len(p) > 0 {
		t.Errorf("dovecot disagrees: %q", p)
	}
	if after := hashTree(t, filepath.Join(data, "old")); !reflect.DeepEqual(before, after) {
		t.Errorf("the old side changed")
	}

	// Prepare on a converted store keeps UIDVALIDITY; the cutover pass
	// finds nothing new.
	out = mustMailmig(t, data, "convert", "--user", "alice", "--prepare", "--timezone", "UTC")
	if want := fmt.Sprintf("UIDVALIDITY %d,", tree.Folders["INBOX"].UIDValidity); !strings.Contains(out, want) {
		t.Errorf("prepare: %q lacks %q", out, want)
	}
	out, errOut, code = runMailmig(t, data, "convert", "--user", "alice", "--incremental", "--timezone", "UTC", "--report", reportPath, "--no-fsync")
	if code != exitConvertPartial {
		t.Fatalf("incremental: exit %d\n%s\n%s", code, out, errOut)
	}
	rep = convert.Report{}
	b, _ = os.ReadFile(reportPath)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Folders {
		if f.Copied != 0 {
			t.Errorf("incremental copied %d into %q", f.Copied, f.Name)
		}
	}
	if p := compareWithDovecot(t, tree, rep.Maildir); len(p) > 0 {
		t.Errorf("after the incremental pass dovecot disagrees: %q", p)
	}
}

// hashTree returns size, mtime and content of every file below dir.
func hashTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[p] = fi.ModTime().String() + string(b)
		return nil
	})
	return m
}

// TestConvertKilled kills `mailmig convert` with SIGKILL at random
// points, runs it again each time, and checks with dovecot that the end
// result has every message exactly once with its UID and flags.
func TestConvertKilled(t *testing.T) {
	dovecottest.Require(t)
	dir := t.TempDir()
	tree, err := corpus.Generate(dir, "bob", corpus.Options{Seed: 11, Folders: 5, InboxMessages: 100, FolderMessages: 40, MaxAttachment: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	args := func(maildir string) []string {
		return []string{"convert", "--inbox", tree.Inbox, "--folders", tree.FoldersDir, "--subscriptions", tree.Subscriptions,
			"--out", maildir, "--timezone", "UTC", "--quiet"}
	}
	// How long does an uninterrupted run take (with fsync)?
	start := time.Now()
	mustMailmig(t, "", args(filepath.Join(dir, "full"))...)
	full := time.Since(start)
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := 0; round < 2; round++ {
		maildir := filepath.Join(dir, "killed", string(rune('a'+round)))
		for kill := 0; kill < 3; kill++ {
			cmd := mailmigCmd("", args(maildir)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(rnd.Int64N(int64(full))))
			cmd.Process.Signal(syscall.SIGKILL)
			err := cmd.Wait()
			var ee *exec.ExitError
			if err != nil && !(errorsAs(err, &ee)) {
				t.Fatal(err)
			}
		}
		mustMailmig(t, "", args(maildir)...)
		if p := compareWithDovecot(t, tree, maildir); len(p) > 0 {
			t.Fatalf("round %d: after kills, dovecot disagrees: %q", round, p)
		}
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	if ok {
		*target = ee
	}
	return ok
}
