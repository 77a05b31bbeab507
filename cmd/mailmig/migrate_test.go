package main

// End-to-end tests of the migration: the demo story with assertions,
// concurrent `mailmig deliver` processes over a whole migration, and
// `mailmig run` killed with SIGKILL at random points.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"mailmig/migrate/corpus"
)

// migWorld generates an old world for users in dataDir (the --data
// layout: old/spool/USER, old/home/USER, the old/homes map).
func migWorld(t *testing.T, dataDir string, size int64, users ...string) map[string]*corpus.Tree {
	t.Helper()
	old := filepath.Join(dataDir, "old")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(old, "homes"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	trees := map[string]*corpus.Tree{}
	for i, u := range users {
		tree, err := corpus.Generate(old, u, corpus.Options{Seed: uint64(100 + i), Folders: 2, TotalBytes: size})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "%s %s\n", u, tree.Home)
		trees[u] = tree
	}
	addOldShadow(t, dataDir, users...)
	return trees
}

// storedMessage is one file of a Maildir.
type storedMessage struct {
	folder string // "" for INBOX, else the directory name (".a.b")
	path   string
	data   []byte
}

// maildirMessages reads every message of every folder of a Maildir.
func maildirMessages(t *testing.T, root string) []storedMessage {
	t.Helper()
	var out []storedMessage
	dirs := []string{""}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && e.Name() != "." && e.Name() != ".." {
			dirs = append(dirs, e.Name())
		}
	}
	for _, d := range dirs {
		for _, sub := range []string{"new", "cur"} {
			files, _ := os.ReadDir(filepath.Join(root, d, sub))
			for _, f := range files {
				p := filepath.Join(root, d, sub, f.Name())
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, storedMessage{folder: d, path: p, data: b})
			}
		}
	}
	return out
}

var testIDRe = regexp.MustCompile(`(?m)^X-Test-Id: (\S+)`)

// countIDs counts X-Test-Id headers in data.
func countIDs(data []byte) map[string]int {
	n := map[string]int{}
	for _, m := range testIDRe.FindAllSubmatch(data, -1) {
		n[string(m[1])]++
	}
	return n
}

func storeIDs(t *testing.T, root string) map[string]int {
	n := map[string]int{}
	for _, m := range maildirMessages(t, root) {
		for id, c := range countIDs(m.data) {
			n[id] += c
		}
	}
	return n
}

func mailWithID(id string) string {
	return fmt.Sprintf("From: sender@example.com\r\nTo: someone@example.org\r\nSubject: test %s\r\nMessage-ID: <%s@test>\r\nX-Test-Id: %s\r\n\r\nbody of %s\r\nFrom the test, a line that needs quoting.\r\n", id, id, id, id)
}

type statusJSON struct {
	Users []struct {
		User          string `json:"user"`
		State         string `json:"state"`
		StopRequested bool   `json:"stop_requested"`
		LastError     string `json:"last_error"`
	} `json:"users"`
}

func queueStates(t *testing.T, dataDir string) map[string]string {
	t.Helper()
	out := mustMailmig(t, dataDir, "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	m := map[string]string{}
	for _, u := range st.Users {
		m[u.User] = u.State
		if u.LastError != "" {
			m[u.User] += " (" + u.LastError + ")"
		}
	}
	return m
}

func wantStates(t *testing.T, dataDir string, want map[string]string) {
	t.Helper()
	got := queueStates(t, dataDir)
	for u, s := range want {
		if got[u] != s {
			t.Fatalf("state of %s = %q, want %q (all: %v)", u, got[u], s, got)
		}
	}
}

// mustRun runs `mailmig run --once` with extra environment.
func mustRun(t *testing.T, dataDir string, env ...string) string {
	t.Helper()
	cmd := mailmigCmd(dataDir, "run", "--once", "--workers", "2")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("run --once: %v\n%s\n%s", err, out.String(), errb.String())
	}
	return out.String()
}

// deliverMsg runs `mailmig deliver` and returns its exit code and the
// route it logged (debug log).
func deliverMsg(t *testing.T, dataDir, user, msg string) (int, string) {
	cmd := mailmigCmd(dataDir, "--log-level", "debug", "deliver", "-f", "sender@example.com", user)
	cmd.Stdin = strings.NewReader(msg)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Error(err)
		return -1, ""
	}
	route := ""
	if m := regexp.MustCompile(`route=(\w+)`).FindStringSubmatch(errb.String()); m != nil {
		route = m[1]
	}
	if code != 0 {
		t.Logf("deliver %s: exit %d: %s", user, code, errb.String())
	}
	return code, route
}

// lmtpSend sends one message over LMTP and returns the per-recipient error.
func lmtpSend(t *testing.T, addr, from, to string, msg []byte) error {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("test.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	w.Write(msg)
	_, err = w.CloseWithLMTPResponse()
	return err
}

// submitSend sends one message through submission from a trusted
// network (loopback), without authentication.
func submitSend(t *testing.T, addr, from, to string, msg []byte) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("test.example"); err != nil {
		t.Fatal(err)
	}
	return c.SendMail(from, []string{to}, bytes.NewReader(msg))
}

// findMail returns the stored message in root's INBOX whose Message-ID
// starts with prefix.
func findMail(t *testing.T, root, prefix string) []byte {
	t.Helper()
	for _, m := range maildirMessages(t, root) {
		if m.folder == "" && bytes.Contains(m.data, []byte("Message-ID: <"+prefix)) {
			return m.data
		}
	}
	return nil
}

func headerValue(msg []byte, name string) string {
	sc := bufio.NewScanner(bytes.NewReader(msg))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestMigrateStory is the demo with assertions: three users move, one by
// replying to the confirmation (after a forged reply that changes
// nothing), the others by the clock.
func TestMigrateStory(t *testing.T) {
	data := t.TempDir()
	trees := migWorld(t, data, 150<<10, "alice", "bob", "carol")
	mustMailmig(t, data, "enqueue", "--folders", "alice")
	mustMailmig(t, data, "enqueue", "--folders", "--lang", "de", "bob")
	mustMailmig(t, data, "enqueue", "--deadline", "2009-10-15", "carol") // forced: enqueued after its deadline
	if code, route := deliverMsg(t, data, "alice", mailWithID("pre-dual")); code != 0 || route != "old" {
		t.Fatalf("before dual: exit %d route %q", code, route)
	}
	srv := startServe(t, data)

	out := mustRun(t, data)
	if !strings.Contains(out, "3 waiting") {
		t.Errorf("first pass: %s", out)
	}
	wantStates(t, data, map[string]string{"alice": "confirm", "bob": "confirm", "carol": "confirm"})
	if code, route := deliverMsg(t, data, "alice", mailWithID("in-dual")); code != 0 || route != "both" {
		t.Fatalf("dual: exit %d route %q", code, route)
	}

	maildir := func(u string) string { return filepath.Join(data, "mail", u, "Maildir") }
	conf := findMail(t, maildir("alice"), "mailmig.confirm.")
	if conf == nil {
		t.Fatal("no confirmation in alice's new INBOX")
	}
	replyTo := headerValue(conf, "Reply-To")
	if !strings.HasPrefix(replyTo, "mailmig-confirm+") || !strings.HasSuffix(replyTo, "-alice@example.org") {
		t.Fatalf("Reply-To %q", replyTo)
	}
	for _, want := range []string{"INBOX", "143", "993", "587"} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("confirmation lacks %q:\n%s", want, conf)
		}
	}
	for name := range trees["alice"].Folders {
		if !bytes.Contains(conf, []byte(name)) {
			t.Errorf("confirmation does not list folder %q", name)
		}
	}
	if old, _ := os.ReadFile(filepath.Join(data, "old", "spool", "alice")); !bytes.Contains(old, []byte("Message-ID: <mailmig.confirm.")) {
		t.Error("the confirmation is not in alice's old INBOX, where she still reads mail")
	}
	if m := findMail(t, maildir("bob"), "mailmig.confirm."); m == nil || !bytes.Contains(m, []byte("Postfach")) {
		t.Errorf("bob's German confirmation missing")
	}
	if m := findMail(t, maildir("carol"), "mailmig.forced."); m == nil {
		t.Errorf("carol's forced-move mail missing")
	}

	// A forged reply: right From:, a token that is not the server's.
	tok := strings.TrimSuffix(strings.TrimPrefix(replyTo, "mailmig-confirm+"), "@example.org")
	forged := "mailmig-confirm+" + strings.Repeat("0", 32) + tok[32:] + "@example.org"
	reply := []byte("From: alice@example.org\r\nTo: " + forged + "\r\nSubject: Re: moved\r\n\r\nstop it\r\n")
	if err := lmtpSend(t, srv.Addr("lmtp"), "alice@example.org", forged, reply); err != nil {
		t.Fatalf("forged reply refused (it must be accepted and ignored): %v", err)
	}
	// bob's own token used for alice: changes nothing for alice.
	bobConf := findMail(t, maildir("bob"), "mailmig.confirm.")
	bobReply := headerValue(bobConf, "Reply-To")
	mustRun(t, data)
	wantStates(t, data, map[string]string{"alice": "confirm"})
	events := mustMailmig(t, data, "events", "alice")
	if !strings.Contains(events, "reply-rejected") {
		t.Errorf("forged reply not logged:\n%s", events)
	}

	// The real reply, through LMTP.
	reply = []byte("From: alice@example.org\r\nTo: " + replyTo + "\r\nSubject: Re: moved\r\nIn-Reply-To: " + headerValue(conf, "Message-ID") + "\r\n\r\nworks, thanks\r\n")
	if err := lmtpSend(t, srv.Addr("lmtp"), "alice@example.org", replyTo, reply); err != nil {
		t.Fatalf("reply: %v", err)
	}
	mustRun(t, data)
	wantStates(t, data, map[string]string{"alice": "done", "bob": "confirm", "carol": "confirm"})
	if findMail(t, maildir("alice"), "mailmig.final.") == nil {
		t.Error("no final mail for alice")
	}
	oldBefore, _ := os.ReadFile(filepath.Join(data, "old", "spool", "alice"))
	if code, route := deliverMsg(t, data, "alice", mailWithID("after-done")); code != 0 || route != "new" {
		t.Fatalf("after done: exit %d route %q", code, route)
	}
	oldAfter, _ := os.ReadFile(filepath.Join(data, "old", "spool", "alice"))
	if !bytes.Equal(oldBefore, oldAfter) {
		t.Error("old mbox changed after cutover")
	}
	ids := storeIDs(t, maildir("alice"))
	for _, id := range []string{"pre-dual", "in-dual", "after-done"} {
		if ids[id] != 1 {
			t.Errorf("message %s in alice's new store %d times", id, ids[id])
		}
	}
	oldIDs := countIDs(oldAfter)
	if oldIDs["pre-dual"] != 1 || oldIDs["in-dual"] != 1 || oldIDs["after-done"] != 0 {
		t.Errorf("old mbox ids %v", oldIDs)
	}

	// A replay of alice's reply after done, and bob's token sent by
	// "alice": nothing changes for anybody.
	lmtpSend(t, srv.Addr("lmtp"), "alice@example.org", replyTo, reply)
	wrong := []byte("From: alice@example.org\r\nTo: " + bobReply + "\r\nAuto-Submitted: auto-replied\r\n\r\naway\r\n")
	lmtpSend(t, srv.Addr("lmtp"), "alice@example.org", bobReply, wrong)
	mustRun(t, data)
	wantStates(t, data, map[string]string{"alice": "done", "bob": "confirm", "carol": "confirm"})

	// A forged reply through the old MTA's pipe: accepted, ignored.
	if code, _ := deliverMsg(t, data, strings.TrimSuffix(forged, "@example.org"), "From: bob@example.org\r\n\r\nstop\r\n"); code != 0 {
		t.Errorf("forged reply through deliver: exit %d", code)
	}
	// bob replies through submission.
	reply = []byte("From: bob@example.org\r\nTo: " + bobReply + "\r\nSubject: Re: umgezogen\r\n\r\nDanke\r\n")
	if err := submitSend(t, srv.Addr("submission"), "bob@example.org", bobReply, reply); err != nil {
		t.Fatalf("reply through submission: %v", err)
	}
	mustRun(t, data)
	wantStates(t, data, map[string]string{"alice": "done", "bob": "done", "carol": "confirm"})

	// carol reaches cutover by the clock.
	mustRun(t, data, clockOffsetEnv+"=49h")
	wantStates(t, data, map[string]string{"alice": "done", "bob": "done", "carol": "done"})
	for u, tree := range trees {
		got := maildirMessages(t, maildir(u))
		n := 0
		for _, f := range tree.Folders {
			if u == "carol" && f.Name != "INBOX" {
				continue // carol was enqueued without --folders
			}
			n += len(f.Messages)
		}
		notices := 0
		for _, m := range got {
			if bytes.Contains(m.data, []byte("Message-ID: <mailmig.")) {
				notices++
			}
		}
		extra := 0
		if u == "alice" {
			extra = 3 // pre-dual, in-dual, after-done
		}
		if len(got) != n+notices+extra || notices != 2 {
			t.Errorf("%s: %d messages in the new store, want %d copied + %d delivered + 2 notices (have %d notices)", u, len(got), n, extra, notices)
		}
	}
}

// TestMigrateConcurrentDeliveries runs 1,000 deliveries from 20
// concurrent `mailmig deliver` processes while three users migrate:
// every message ends up exactly once in the new store, exactly once in
// the old mbox when it was delivered before cutover, never there after.
func TestMigrateConcurrentDeliveries(t *testing.T) {
	const procs, total = 20, 1000
	users := []string{"ann", "ben", "cat"}
	data := t.TempDir()
	migWorld(t, data, 100<<10, users...)
	mustMailmig(t, data, "enqueue", "--folders", "ann", "ben", "cat")
	// One delivery first, so the self-signed certificate and the
	// database exist before 20 processes start at once.
	if code, _ := deliverMsg(t, data, "ann", mailWithID("first")); code != 0 {
		t.Fatal("first delivery failed")
	}
	var next, delivered atomic.Int64
	type outcome struct {
		user, route string
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	results := map[string]outcome{"first": {"ann", "old"}}
	// Gates make the spread deterministic however fast the machine is:
	// deliveries from #100 on wait for the migration to start, those from
	// #700 on for every user to be done.
	started, finished := make(chan struct{}), make(chan struct{})
	var openStarted, openFinished sync.Once
	defer func() { // on a failed assertion, let the workers finish
		openStarted.Do(func() { close(started) })
		openFinished.Do(func() { close(finished) })
		wg.Wait()
	}()
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				if n >= total {
					return
				}
				if n >= 100 {
					<-started
				}
				if n >= 700 {
					<-finished
				}
				id := fmt.Sprintf("m%04d", n)
				user := users[n%int64(len(users))]
				var code int
				var route string
				for try := 0; try < 5; try++ { // an MTA retries on 75
					code, route = deliverMsg(t, data, user, mailWithID(id))
					if code != 75 {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if code != 0 {
					t.Errorf("deliver %s to %s: exit %d", id, user, code)
					continue
				}
				mu.Lock()
				results[id] = outcome{user, route}
				mu.Unlock()
				delivered.Add(1)
			}
		}()
	}
	waitFor := func(n int64) {
		deadline := time.Now().Add(2 * time.Minute)
		for delivered.Load() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The migration, spread over the deliveries.
	waitFor(100)
	openStarted.Do(func() { close(started) })
	mustRun(t, data) // dual, copy, confirm
	waitFor(400)
	mustMailmig(t, data, "stop", "ann")
	mustRun(t, data) // ann: cutover, done
	waitFor(650)
	mustRun(t, data, clockOffsetEnv+"=49h") // ben, cat: cutover by the clock
	wantStates(t, data, map[string]string{"ann": "done", "ben": "done", "cat": "done"})
	openFinished.Do(func() { close(finished) })
	wg.Wait()
	if t.Failed() {
		return
	}

	routes := map[string]int{}
	for _, u := range users {
		newIDs := storeIDs(t, filepath.Join(data, "mail", u, "Maildir"))
		old, err := os.ReadFile(filepath.Join(data, "old", "spool", u))
		if err != nil {
			t.Fatal(err)
		}
		oldIDs := countIDs(old)
		for id, o := range results {
			if o.user != u {
				continue
			}
			routes[o.route]++
			if newIDs[id] != 1 {
				t.Errorf("%s (%s, route %s) is %d times in the new store", id, u, o.route, newIDs[id])
			}
			wantOld := 1
			if o.route == "new" {
				wantOld = 0
			}
			if oldIDs[id] != wantOld {
				t.Errorf("%s (%s, route %s) is %d times in the old mbox, want %d", id, u, o.route, oldIDs[id], wantOld)
			}
		}
		for id := range newIDs {
			if _, ok := results[id]; !ok {
				t.Errorf("unknown message %s in %s's store", id, u)
			}
		}
	}
	if len(results) != total+1 {
		t.Errorf("%d deliveries succeeded, want %d", len(results), total+1)
	}
	for _, r := range []string{"old", "both", "new"} {
		if routes[r] == 0 {
			t.Errorf("no delivery took route %s (routes %v): the migration was not spread over the deliveries", r, routes)
		}
	}
	t.Logf("routes: %v", routes)
}

// storeDigest sums up a user's new store for comparison: per folder, the
// sorted SHA-256 of every message that is not a migration notice, and the
// number of notices.
func storeDigest(t *testing.T, root string) string {
	byFolder := map[string][]string{}
	notices := 0
	for _, m := range maildirMessages(t, root) {
		if bytes.Contains(m.data, []byte("Message-ID: <mailmig.")) {
			notices++
			continue
		}
		s := sha256.Sum256(m.data)
		byFolder[m.folder] = append(byFolder[m.folder], hex.EncodeToString(s[:8]))
	}
	var b strings.Builder
	var names []string
	for f := range byFolder {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		sort.Strings(byFolder[f])
		fmt.Fprintf(&b, "%s: %d %s\n", f, len(byFolder[f]), strings.Join(byFolder[f], ","))
	}
	fmt.Fprintf(&b, "notices: %d\n", notices)
	return b.String()
}

// TestMigrateKill9 kills `mailmig run` with SIGKILL at random points,
// reruns it, and compares the end state with an undisturbed migration of
// the same world.
func TestMigrateKill9(t *testing.T) {
	users := []string{"dan", "eve", "fay", "gus"}
	var copyTime, cutoverTime time.Duration // of the undisturbed run
	migrate := func(data string, kill bool) {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
		migWorld(t, data, 1<<20, users...)
		mustMailmig(t, data, "enqueue", "--folders", "dan", "eve", "fay", "gus")
		if kill {
			// Per phase (copy, then cutover with the clock moved on),
			// kill runs at a uniformly random moment within the time the
			// undisturbed run of that phase took, until one finishes.
			kills := 0
			for _, ph := range []struct {
				d   time.Duration
				env []string
			}{{copyTime, nil}, {cutoverTime, []string{clockOffsetEnv + "=49h"}}} {
				for attempt := 0; attempt < 12; attempt++ {
					cmd := mailmigCmd(data, "run", "--once", "--workers", "2", "--lease-ttl", "3s")
					cmd.Env = append(cmd.Env, ph.env...)
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					done := make(chan error, 1)
					go func() { done <- cmd.Wait() }()
					finished := false
					select {
					case <-done:
						finished = true
					case <-time.After(time.Duration(rng.Int64N(int64(ph.d) + 1))):
						cmd.Process.Kill() // SIGKILL, this PID only
						<-done
						kills++
					}
					if finished {
						break
					}
				}
			}
			t.Logf("%d runs killed (copy phase %v, cutover phase %v)", kills, copyTime, cutoverTime)
			if kills == 0 {
				t.Errorf("no run was killed: the test did not test anything")
			}
		}
		start := time.Now()
		mustRun(t, data)
		if !kill {
			copyTime = time.Since(start)
		}
		start = time.Now()
		mustRun(t, data, clockOffsetEnv+"=49h")
		if !kill {
			cutoverTime = time.Since(start)
		}
		mustRun(t, data, clockOffsetEnv+"=49h")
		want := map[string]string{}
		for _, u := range users {
			want[u] = "done"
		}
		wantStates(t, data, want)
	}
	ref, killed := t.TempDir(), t.TempDir()
	migrate(ref, false)
	migrate(killed, true)
	for _, u := range users {
		a := storeDigest(t, filepath.Join(ref, "mail", u, "Maildir"))
		b := storeDigest(t, filepath.Join(killed, "mail", u, "Maildir"))
		if a != b {
			t.Errorf("%s: end state differs after kill -9\nundisturbed:\n%s\nkilled:\n%s", u, a, b)
		}
		if !strings.Contains(a, "notices: 2\n") {
			t.Errorf("%s: %s", u, a)
		}
	}
}

// TestMigrateOverLimit: folders over limits.folder_copy stop the user in
// needs-attention with the sizes; delivery keeps going to both sides;
// after the postmaster raises the limit, run --retry finishes the move.
func TestMigrateOverLimit(t *testing.T) {
	data := t.TempDir()
	migWorld(t, data, 600<<10, "ivy")
	cfg := filepath.Join(data, "mailmig.toml")
	os.WriteFile(cfg, []byte("[limits]\nfolder_copy = \"10KB\"\n"), 0o644)
	mm := func(args ...string) string {
		t.Helper()
		return mustMailmig(t, data, append([]string{"--config", cfg}, args...)...)
	}
	mm("enqueue", "--folders", "ivy")
	cmd := mailmigCmd(data, "--config", cfg, "run", "--once")
	out, _ := cmd.CombinedOutput()
	st := queueStates(t, data)["ivy"]
	if !strings.HasPrefix(st, "needs-attention") || !strings.Contains(st, "limit") {
		t.Fatalf("ivy: %q\n%s", st, out)
	}
	if code, route := deliverMsg(t, data, "ivy", mailWithID("while-stuck")); code != 0 || route != "both" {
		t.Fatalf("delivery while in needs-attention after dual: exit %d route %q", code, route)
	}
	os.WriteFile(cfg, []byte("[limits]\nfolder_copy = \"100MB\"\n"), 0o644)
	mm("run", "--once", "--retry", "ivy")
	if st := queueStates(t, data)["ivy"]; !strings.HasPrefix(st, "confirm") {
		t.Fatalf("after retry: %q", st)
	}
	ids := storeIDs(t, filepath.Join(data, "mail", "ivy", "Maildir"))
	if ids["while-stuck"] != 1 {
		t.Errorf("message delivered while stuck is %d times in the new store", ids["while-stuck"])
	}
}

// TestMigrateDeletedDuringDualStaysDeleted: a message delivered during the
// dual window and deleted by the user in the new store does not come back
// at cutover, though it is still in the old INBOX.
func TestMigrateDeletedDuringDualStaysDeleted(t *testing.T) {
	data := t.TempDir()
	migWorld(t, data, 50<<10, "jo")
	mustMailmig(t, data, "enqueue", "jo")
	mustRun(t, data)
	for _, id := range []string{"keep-me", "delete-me"} {
		if code, route := deliverMsg(t, data, "jo", mailWithID(id)); code != 0 || route != "both" {
			t.Fatalf("deliver %s: %d %q", id, code, route)
		}
	}
	maildir := filepath.Join(data, "mail", "jo", "Maildir")
	for _, m := range maildirMessages(t, maildir) {
		if countIDs(m.data)["delete-me"] > 0 {
			os.Remove(m.path) // the user deletes it (expunge) on the new server
		}
	}
	mustMailmig(t, data, "stop", "jo")
	mustRun(t, data)
	wantStates(t, data, map[string]string{"jo": "done"})
	ids := storeIDs(t, maildir)
	if ids["delete-me"] != 0 || ids["keep-me"] != 1 {
		t.Errorf("after cutover: %v", ids)
	}
}
