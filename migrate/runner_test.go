package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmig/migrate/paths"
	"mailmig/notify"
	"mailmig/state"
)

// testCopier records what the runner asks of it; failures are scripted.
type testCopier struct {
	mu        sync.Mutex
	prepared  map[string]int
	copies    map[string]int
	incr      map[string]int
	failCopy  map[string]int // user → failures left
	overLimit map[string]bool
}

func newTestCopier() *testCopier {
	return &testCopier{prepared: map[string]int{}, copies: map[string]int{}, incr: map[string]int{},
		failCopy: map[string]int{}, overLimit: map[string]bool{}}
}

func (c *testCopier) Prepare(ctx context.Context, e *state.Entry, p *paths.User) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prepared[e.User]++
	return nil
}

func (c *testCopier) Copy(ctx context.Context, e *state.Entry, p *paths.User, incremental bool, progress func(int64, int64)) (*Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if incremental {
		c.incr[e.User]++
		return &Report{Messages: 2, Bytes: 200}, nil
	}
	if c.overLimit[e.User] {
		return nil, fmt.Errorf("%w: 600MB of folders", ErrOverLimit)
	}
	if c.failCopy[e.User] > 0 {
		c.failCopy[e.User]--
		return nil, errors.New("disk hiccup")
	}
	c.copies[e.User]++
	if progress != nil {
		progress(1000, 10)
	}
	return &Report{
		Folders:  []FolderReport{{Old: "INBOX", New: "INBOX", Messages: 10, Bytes: 1000}, {Old: "a.b", New: "a_b", Messages: 1, Bytes: 10}},
		Renamed:  []Rename{{Old: "a.b", New: "a_b"}},
		Messages: 11, Bytes: 1010,
	}, nil
}

type runWorld struct {
	t      *testing.T
	db     *state.DB
	cp     *testCopier
	r      *Runner
	now    time.Time
	mu     sync.Mutex
	mails  map[string][]string // user → mails delivered
	secret []byte
}

func newRunWorld(t *testing.T) *runWorld {
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &runWorld{t: t, db: db, cp: newTestCopier(), now: time.Date(2009, 10, 1, 9, 0, 0, 0, time.UTC),
		mails: map[string][]string{}, secret: []byte("s3cret")}
	clock := func() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now }
	db.Now = clock
	os.MkdirAll(filepath.Join(dir, "spool"), 0o755)
	w.r = &Runner{
		DB: db, Copier: w.cp, DualWindow: 48 * time.Hour, Now: clock, LeaseTTL: time.Minute,
		Paths: func(user string) (*paths.User, error) {
			if user == "nohome" {
				return nil, paths.ErrUnknownUser
			}
			return &paths.User{User: user, Inbox: filepath.Join(dir, "spool", user), Maildir: filepath.Join(dir, "mail", user)}, nil
		},
		Notifier: &Notifier{
			DB: db, Mailer: &notify.Mailer{From: "pm@example.org", Now: clock},
			Deliver: func(ctx context.Context, user string, msg []byte) error {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.mails[user] = append(w.mails[user], string(msg))
				return nil
			},
			Client: notify.Client{IMAPHost: "imap.example.org", IMAPPort: 143, IMAPSPort: 993},
			Domain: "example.org", ControlLocalPart: "mailmig-confirm", Secret: w.secret, Language: "en",
		},
	}
	return w
}

func (w *runWorld) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

func (w *runWorld) enqueue(user string, o state.EnqueueOptions) {
	if _, err := w.db.Enqueue(context.Background(), user, o); err != nil {
		w.t.Fatal(err)
	}
}

func (w *runWorld) pass() *Pass {
	w.t.Helper()
	p, err := w.r.RunOnce(context.Background(), 2)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *runWorld) state(user string) *state.Entry {
	e, err := w.db.Get(context.Background(), user)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

func TestRunnerCutoverByClock(t *testing.T) {
	w := newRunWorld(t)
	w.enqueue("alice", state.EnqueueOptions{})
	p := w.pass()
	if p.Waiting != 1 || w.state("alice").State != state.Confirm {
		t.Fatalf("after first pass: %+v, state %s", p, w.state("alice").State)
	}
	if len(w.mails["alice"]) != 1 {
		t.Fatalf("%d mails", len(w.mails["alice"]))
	}
	m := w.mails["alice"][0]
	e := w.state("alice")
	for _, want := range []string{"Reply-To: " + notify.ReplyAddress("mailmig-confirm", "example.org", w.secret, "alice", e.MigrationID),
		"a.b  ->  a_b", "2009-10-03 09:00", "imap.example.org"} {
		if !strings.Contains(m, want) {
			t.Errorf("confirmation lacks %q:\n%s", want, m)
		}
	}
	// Passes inside the window change nothing and send nothing again.
	w.advance(47 * time.Hour)
	w.pass()
	if w.state("alice").State != state.Confirm || len(w.mails["alice"]) != 1 {
		t.Fatalf("moved inside the window: %s, %d mails", w.state("alice").State, len(w.mails["alice"]))
	}
	w.advance(time.Hour)
	if p := w.pass(); p.Done != 1 {
		t.Fatalf("pass after window: %+v", p)
	}
	e = w.state("alice")
	if e.State != state.Done || w.cp.incr["alice"] != 1 || w.cp.copies["alice"] != 1 || w.cp.prepared["alice"] != 1 {
		t.Fatalf("state %s, copier %+v", e.State, w.cp)
	}
	if len(w.mails["alice"]) != 2 || !strings.Contains(w.mails["alice"][1], "complete") || !strings.Contains(w.mails["alice"][1], "2 message(s)") {
		t.Fatalf("final mail: %q", w.mails["alice"])
	}
	// The copy's 11 messages plus the 2 the cutover pass carried over.
	if e.Messages != 13 || e.Bytes != 1210 || e.Folders != 2 {
		t.Errorf("progress not recorded: %+v", e)
	}
	// Done users are left alone.
	w.advance(time.Hour)
	if p := w.pass(); p.Worked != 0 {
		t.Errorf("done user worked again: %+v", p)
	}
}

func TestRunnerStopRequested(t *testing.T) {
	w := newRunWorld(t)
	w.enqueue("bob", state.EnqueueOptions{})
	w.pass()
	if ok, err := w.db.RequestStop(context.Background(), "bob", "reply", "test"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	w.pass()
	if s := w.state("bob").State; s != state.Done {
		t.Fatalf("state %s after stop", s)
	}
}

func TestRunnerForcedMail(t *testing.T) {
	w := newRunWorld(t)
	w.enqueue("late", state.EnqueueOptions{Deadline: w.now.Add(-24 * time.Hour), Language: "de"})
	w.enqueue("early", state.EnqueueOptions{Deadline: w.now.Add(24 * time.Hour)})
	w.pass()
	if m := w.mails["late"]; len(m) != 1 || !strings.Contains(m[0], "Frist") {
		t.Errorf("forced German mail: %q", m)
	}
	if m := w.mails["early"]; len(m) != 1 || !strings.Contains(m[0], "REPLY") {
		t.Errorf("voluntary mail: %q", m)
	}
}

func TestRunnerNeedsAttention(t *testing.T) {
	w := newRunWorld(t)
	w.cp.overLimit["big"] = true
	w.cp.failCopy["flaky"] = 2
	w.cp.failCopy["broken"] = 5
	for _, u := range []string{"big", "flaky", "broken", "nohome"} {
		w.enqueue(u, state.EnqueueOptions{CopyFolders: true})
	}
	for range 3 {
		w.pass()
	}
	want := map[string]state.State{"big": state.NeedsAttention, "flaky": state.Confirm, "broken": state.NeedsAttention, "nohome": state.NeedsAttention}
	for u, s := range want {
		e := w.state(u)
		if e.State != s {
			t.Errorf("%s: %s (%s), want %s", u, e.State, e.LastError, s)
		}
	}
	if e := w.state("big"); !strings.Contains(e.LastError, "600MB") || e.AttentionFrom != state.Copying {
		t.Errorf("big: reason %q from %s", e.LastError, e.AttentionFrom)
	}
	// The postmaster retries "broken": it gets three fresh attempts at
	// the copy (it has two failures left, so the third succeeds).
	if to, err := w.r.Retry(context.Background(), "broken", "postmaster"); err != nil || to != state.Copying {
		t.Fatalf("retry: %s %v", to, err)
	}
	if _, err := w.r.Retry(context.Background(), "flaky", "postmaster"); err == nil {
		t.Errorf("retry of a user not in needs-attention accepted")
	}
	for range 3 {
		w.pass()
	}
	if s := w.state("broken").State; s != state.Confirm {
		t.Errorf("broken after retry: %s", s)
	}
}

func TestRunnerResumesWithoutDuplicateMail(t *testing.T) {
	w := newRunWorld(t)
	w.enqueue("carol", state.EnqueueOptions{})
	ctx := context.Background()
	// A runner that died after sending the confirmation, before the
	// state moved on: walk the steps by hand up to there.
	for _, s := range [][2]state.State{{state.Queued, state.Dual}, {state.Dual, state.Copying}, {state.Copying, state.Confirm}} {
		if err := w.db.Transition(ctx, "carol", s[0], s[1], "test", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.r.Notifier.SendOnce(ctx, w.state("carol"), notify.Confirm, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Its lease is still live: a new runner leaves the user alone ...
	if err := w.db.Lease(ctx, "carol", "otherhost/1/w0", time.Minute); err != nil {
		t.Fatal(err)
	}
	if p := w.pass(); p.Worked != 0 {
		t.Fatalf("leased user worked: %+v", p)
	}
	// ... until the lease expires.
	w.advance(2 * time.Minute)
	w.pass()
	if len(w.mails["carol"]) != 1 {
		t.Fatalf("confirmation sent %d times", len(w.mails["carol"]))
	}
}

func TestReleaseDeadLocalWorker(t *testing.T) {
	w := newRunWorld(t)
	w.enqueue("dave", state.EnqueueOptions{})
	host, _ := os.Hostname()
	// PID 0x7ffffff0 does not exist.
	if err := w.db.Lease(context.Background(), "dave", fmt.Sprintf("%s/%d/w0", host, 0x7ffffff0), time.Hour); err != nil {
		t.Fatal(err)
	}
	w.pass()
	if s := w.state("dave").State; s != state.Confirm {
		t.Fatalf("dead worker's lease blocked the user: %s", s)
	}
}

func TestNotifierFindsMailDeliveredBeforeACrash(t *testing.T) {
	w := newRunWorld(t)
	w.enqueue("erin", state.EnqueueOptions{})
	ctx := context.Background()
	for _, s := range [][2]state.State{{state.Queued, state.Dual}, {state.Dual, state.Copying}, {state.Copying, state.Confirm}} {
		if err := w.db.Transition(ctx, "erin", s[0], s[1], "test", ""); err != nil {
			t.Fatal(err)
		}
	}
	n := w.r.Notifier
	var asked []string
	n.Present = func(ctx context.Context, user, id string) (bool, error) {
		asked = append(asked, id)
		for _, m := range w.mails[user] {
			if strings.Contains(m, "Message-ID: <"+id+">") {
				return true, nil
			}
		}
		return false, nil
	}
	// The crash: the attempt was recorded and the mail delivered, but
	// "sent" was never written.
	realDeliver := n.Deliver
	n.Deliver = func(ctx context.Context, user string, msg []byte) error {
		realDeliver(ctx, user, msg)
		return errors.New("killed")
	}
	if err := n.SendOnce(ctx, w.state("erin"), notify.Confirm, time.Now()); err == nil {
		t.Fatal("want the simulated crash")
	}
	n.Deliver = realDeliver
	if err := n.SendOnce(ctx, w.state("erin"), notify.Confirm, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := n.SendOnce(ctx, w.state("erin"), notify.Confirm, time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(w.mails["erin"]) != 1 || len(asked) != 1 {
		t.Fatalf("%d mails, Present asked %d times", len(w.mails["erin"]), len(asked))
	}
}

func TestRunDaemonUntilCancelled(t *testing.T) {
	w := newRunWorld(t)
	w.enqueue("hal", state.EnqueueOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.r.Run(ctx, 2, 10*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for w.state("hal").State != state.Confirm && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// The daemon notices the stop without being restarted.
	if _, err := w.db.RequestStop(context.Background(), "hal", "test", ""); err != nil {
		t.Fatal(err)
	}
	for w.state("hal").State != state.Done && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if s := w.state("hal").State; s != state.Done {
		t.Fatalf("state %s", s)
	}
}

func FuzzParseReport(f *testing.F) {
	f.Add(`{"folders":[{"old":"a.b","new":"a_b","messages":1,"bytes":2}],"renamed":[{"old":"a.b","new":"a_b"}],"messages":1,"bytes":2}`)
	f.Add("")
	f.Add("{")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReport(s)
		if err != nil {
			return
		}
		js, err := r.JSON()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseReport(js)
		if err != nil {
			t.Fatalf("own JSON %q: %v", js, err)
		}
		js2, _ := r2.JSON()
		if js != js2 {
			t.Fatalf("not stable: %q vs %q", js, js2)
		}
	})
}
