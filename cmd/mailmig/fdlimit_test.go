package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestListenersSurviveFileLimit: with few file descriptors (prlimit), more
// IMAP and ManageSieve connections than the process can hold make accept
// fail with EMFILE; once they close, both listeners answer again (they
// used to stop for good).
func TestListenersSurviveFileLimit(t *testing.T) {
	prlimit := requireTool(t, "prlimit")
	dir := t.TempDir()
	createUser(t, dir, "alice", "alice-pass-1")
	// Soft 100, hard 300: serve raises the soft limit to 300 itself.
	cmd := exec.Command(prlimit, "--nofile=100:300", binPath, "--data", dir, "serve")
	cmd.Env = append(os.Environ(), "MAILMIG_CONFIG=")
	var log syncWriter
	log.buf = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	var addrs map[string][]string
	for i := 0; i < 300 && addrs == nil; i++ {
		if b, err := os.ReadFile(filepath.Join(dir, "serve.addrs")); err == nil {
			json.Unmarshal(b, &addrs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addrs == nil {
		t.Fatal("serve did not start")
	}
	if !strings.Contains(log.String(), "soft=300 hard=300") {
		t.Fatalf("serve did not raise its open-file limit to the hard one:\n%s", log.String())
	}
	for _, kind := range []string{"imap", "managesieve"} {
		addr := addrs[kind][0]
		var conns []net.Conn
		for i := 0; i < 400; i++ {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		if len(conns) < 300 {
			t.Fatalf("%s: only %d connections: the test did not reach the limit", kind, len(conns))
		}
		time.Sleep(300 * time.Millisecond)
		if !strings.Contains(log.String(), "too many open files") {
			t.Fatalf("%s: %d connections did not exhaust the 300 descriptors:\n%s", kind, len(conns), log.String())
		}
		for _, c := range conns {
			c.Close()
		}
		time.Sleep(1500 * time.Millisecond) // the backoff is at most 1 s
		ok := false
		for try := 0; try < 20 && !ok; try++ {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err == nil {
				c.SetDeadline(time.Now().Add(3 * time.Second))
				l, err := bufio.NewReader(c).ReadString('\n')
				ok = err == nil && (strings.HasPrefix(l, "* OK") || strings.HasPrefix(l, `"IMPLEMENTATION"`))
				c.Close()
			}
			if !ok {
				time.Sleep(200 * time.Millisecond)
			}
		}
		if !ok {
			t.Fatalf("%s listener does not answer after the file-descriptor pressure\n%s", kind, log.String())
		}
	}
}
