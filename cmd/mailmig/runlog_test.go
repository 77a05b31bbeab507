package main

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunDaemonQuietWhileWaiting (issue 9 item 11): the daemon logs a
// "queue pass" line when a pass moved someone, not on every poll while
// users wait for their reply.
func TestRunDaemonQuietWhileWaiting(t *testing.T) {
	data := t.TempDir()
	migWorld(t, data, 20<<10, "wendy")
	mustMailmig(t, data, "enqueue", "wendy")
	cmd := mailmigCmd(data, "run", "--poll", "100ms", "--no-progress")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasPrefix(queueStates(t, data)["wendy"], "confirm") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("wendy did not reach confirm:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // about 15 polls with wendy waiting
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	// Each step logged its own line; the waiting polls add nothing.
	if n := strings.Count(out.String(), `msg="queue pass"`); n > 1 {
		t.Errorf("%d queue pass lines in 15 polls with wendy waiting, want at most 1:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "step ended") {
		t.Errorf("no step logged:\n%s", out.String())
	}
}
