package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestJournalLevels: with stderr being the stream $JOURNAL_STREAM names
// (as systemd sets it up), every line serve logs starts with the syslog
// priority of its level (sd-daemon(3)), so journald records the level;
// with $JOURNAL_STREAM naming another stream the lines are plain.
func TestJournalLevels(t *testing.T) {
	for _, match := range []bool{true, false} {
		dir := t.TempDir()
		logPath := filepath.Join(dir, "stderr")
		f, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		stream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
		if !match {
			stream = fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)
		}
		cmd := mailmigCmd(dir, "serve")
		cmd.Env = append(cmd.Env, "JOURNAL_STREAM="+stream)
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "serve.addrs")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("serve did not start")
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		f.Close()
		b, _ := os.ReadFile(logPath)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		levels := map[string]string{"ERROR": "<3>", "WARN": "<4>", "INFO": "<6>", "DEBUG": "<7>"}
		re := regexp.MustCompile(`^(<[0-9]>)?time=\S+ level=([A-Z]+) `)
		seen := map[string]bool{}
		for _, l := range lines {
			m := re.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("journal=%v: unexpected line %q", match, l)
				continue
			}
			seen[m[2]] = true
			want := ""
			if match {
				want = levels[m[2]]
			}
			if m[1] != want {
				t.Errorf("journal=%v: line %q has prefix %q, want %q", match, l, m[1], want)
			}
		}
		if !seen["INFO"] || !seen["WARN"] {
			t.Errorf("journal=%v: expected INFO and WARN lines:\n%s", match, b)
		}
	}
}
