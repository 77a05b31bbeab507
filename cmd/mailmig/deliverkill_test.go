package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDeliverKilledAnywhere: `mailmig deliver` for a user in the dual
// window is killed with SIGKILL at random points 30 times; after the
// MTA's retries every message is exactly once in the old mbox and once in
// the new store (the review saw 37 duplicates in 1603 deliveries and a
// truncated old copy). The deliver journal (migrate.DeliverJournal) makes
// this so.
func TestDeliverKilledAnywhere(t *testing.T) {
	data := t.TempDir()
	migWorld(t, data, 20<<10, "jo")
	mustMailmig(t, data, "enqueue", "jo")
	mustRun(t, data)
	killDeliveries(t, data, "both")
}

// TestDeliverKilledAnywhereOldOnly: the same for a queued user (old mbox
// only): each message exactly once in the old mbox, none in the new store.
func TestDeliverKilledAnywhereOldOnly(t *testing.T) {
	data := t.TempDir()
	migWorld(t, data, 20<<10, "jo")
	mustMailmig(t, data, "enqueue", "jo")
	wantStates(t, data, map[string]string{"jo": "queued"})
	killDeliveries(t, data, "old")
}

// TestDeliverKilledAnywhereNewOnly: the same for a user who is done (new
// store only): each message exactly once in the new store, none added to
// the old mbox.
func TestDeliverKilledAnywhereNewOnly(t *testing.T) {
	data := t.TempDir()
	migWorld(t, data, 20<<10, "jo")
	mustMailmig(t, data, "enqueue", "--deadline", "2009-10-15", "jo") // forced: cutover by the clock
	mustRun(t, data)
	mustRun(t, data, clockOffsetEnv+"=49h")
	wantStates(t, data, map[string]string{"jo": "done"})
	killDeliveries(t, data, "new")
}

// killDeliveries delivers 3 + 30 messages to jo, the 30 each first killed
// at a random point of a delivery and then retried as an MTA does, and
// checks each message is exactly once on each side route puts it on
// ("both", "old" or "new").
func killDeliveries(t *testing.T, data, route string) {
	t.Helper()
	spoolPath := filepath.Join(data, "old", "spool", "jo")
	spoolBefore, _ := os.ReadFile(spoolPath)
	maildirPath := filepath.Join(data, "mail", "jo", "Maildir")
	newBefore := map[string]int{}
	if route == "new" {
		newBefore = storeIDs(t, maildirPath)
	}
	pad := strings.Repeat("padding line to make the append and the store take a moment\r\n", 4000) // ~250 KB
	msgOf := func(id string) string { return mailWithID(id) + pad }
	deliver := func(id string, killAfter time.Duration) (killed bool, code int, log string) {
		cmd := mailmigCmd(data, "--log-level", "info", "deliver", "-f", "sender@example.com", "jo")
		cmd.Stdin = strings.NewReader(msgOf(id))
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		if killAfter > 0 {
			select {
			case err = <-done:
			case <-time.After(killAfter):
				cmd.Process.Kill()
				err = <-done
			}
		} else {
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatalf("deliver %s hangs", id)
			}
		}
		if ee, ok := err.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return true, -1, errb.String()
			}
			return false, ee.ExitCode(), errb.String()
		}
		return false, 0, errb.String()
	}
	// How long a delivery takes here, to spread the kills over it.
	var durs []time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		if _, code, log := deliver(fmt.Sprintf("warm%d", i), 0); code != 0 {
			t.Fatalf("deliver: exit %d\n%s", code, log)
		}
		durs = append(durs, time.Since(start))
	}
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	full := durs[1]
	ids := []string{"warm0", "warm1", "warm2"}
	kills, retriesSawOld, retriesSawNew := 0, 0, 0
	rng := rand.New(rand.NewPCG(13, uint64(time.Now().UnixNano())))
	for i := 0; i < 30; i++ {
		id := fmt.Sprintf("kill%02d", i)
		ids = append(ids, id)
		// Uniform over the whole run, start-up included: the kill lands
		// before, during and after the two appends.
		after := time.Duration(rng.Int64N(int64(full))) + time.Millisecond
		if killed, _, _ := deliver(id, after); killed {
			kills++
		}
		// The MTA retries until it is told the message was delivered.
		ok := false
		for try := 0; try < 5 && !ok; try++ {
			_, code, log := deliver(id, 0)
			switch code {
			case 0:
				ok = true
				if strings.Contains(log, "old copy already delivered") {
					retriesSawOld++
				}
				if strings.Contains(log, "new copy already stored") {
					retriesSawNew++
				}
			case 75:
				time.Sleep(200 * time.Millisecond) // a stale lock being broken
			default:
				t.Fatalf("retry of %s: exit %d\n%s", id, code, log)
			}
		}
		if !ok {
			t.Fatalf("retries of %s never succeeded", id)
		}
	}
	t.Logf("route %s: one delivery takes %v; %d of 30 deliveries killed before they finished; retries found %d old and %d new copies of killed attempts",
		route, full, kills, retriesSawOld, retriesSawNew)
	if kills < 10 {
		t.Fatalf("only %d kills landed before the delivery finished: the test did not test much", kills)
	}
	spool, err := os.ReadFile(spoolPath)
	if err != nil {
		t.Fatal(err)
	}
	oldIDs := countIDs(spool)
	var newIDs map[string]int
	if route == "old" {
		newIDs = map[string]int{}
		if _, err := os.Stat(filepath.Join(maildirPath, "cur")); err == nil {
			newIDs = storeIDs(t, maildirPath)
		}
	} else {
		newIDs = storeIDs(t, maildirPath)
	}
	wantOld, wantNew := 1, 1
	switch route {
	case "old":
		wantNew = 0
	case "new":
		wantOld = 0
		if !bytes.Equal(spool, spoolBefore) {
			t.Errorf("old mbox changed by new-only deliveries")
		}
	}
	for _, id := range ids {
		if oldIDs[id] != wantOld || newIDs[id]-newBefore[id] != wantNew {
			t.Errorf("%s: %d times in the old mbox, %d times in the new store; want %d and %d", id, oldIDs[id], newIDs[id]-newBefore[id], wantOld, wantNew)
		}
	}
	// No message was cut: every copy in the old mbox ends with its padding.
	if n := strings.Count(string(spool[len(spoolBefore):]), "take a moment\n"); route != "new" && n < len(ids)*4000 {
		t.Errorf("old mbox holds %d padding lines, want at least %d: a copy was truncated", n, len(ids)*4000)
	}
}
