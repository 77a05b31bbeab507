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

	"mailmig/migrate/convert"
	"mailmig/migrate/paths"
	"mailmig/server/delivery"
	"mailmig/server/msgspool"
	"mailmig/state"
)

// routeWorld is a queue, an old spool directory and a recording new store.
type routeWorld struct {
	t     *testing.T
	db    *state.DB
	dir   string
	mu    sync.Mutex
	store map[string][]string // user → messages delivered to the new store
	fail  error               // next new-store delivery fails with this
	r     *Router
}

func newRouteWorld(t *testing.T) *routeWorld {
	t.Helper()
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	os.MkdirAll(filepath.Join(dir, "spool"), 0o755)
	w := &routeWorld{t: t, db: db, dir: dir, store: map[string][]string{}}
	w.r = &Router{
		DB: db,
		Paths: func(user string) (*paths.User, error) {
			if user == "ghost" || user == "server-only" {
				return nil, fmt.Errorf("%w: %s", paths.ErrUnknownUser, user)
			}
			return &paths.User{User: user, Inbox: filepath.Join(dir, "spool", user)}, nil
		},
		NewStore: func(ctx context.Context, env delivery.Envelope, msg msgspool.Source) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.fail != nil {
				err := w.fail
				w.fail = nil
				return err
			}
			w.store[env.User] = append(w.store[env.User], readAll(msg))
			return nil
		},
		HasAccount:       func(ctx context.Context, user string) (bool, error) { return user == "server-only", nil },
		Domain:           "example.org",
		ControlLocalPart: "mailmig-confirm",
	}
	return w
}

func (w *routeWorld) moveTo(user string, to state.State) {
	w.t.Helper()
	ctx := context.Background()
	if _, err := w.db.Enqueue(ctx, user, state.EnqueueOptions{}); err != nil {
		w.t.Fatal(err)
	}
	for i := 1; i < len(state.States) && state.States[i-1] != to; i++ {
		if err := w.db.Transition(ctx, user, state.States[i-1], state.States[i], "test", ""); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *routeWorld) old(user string) string {
	b, _ := os.ReadFile(filepath.Join(w.dir, "spool", user))
	return string(b)
}

func TestRouteByState(t *testing.T) {
	tests := []struct {
		state     state.State
		route     Route
		old, new_ bool
	}{
		{state.Queued, RouteOld, true, false},
		{state.Dual, RouteBoth, true, true},
		{state.Copying, RouteBoth, true, true},
		{state.Confirm, RouteBoth, true, true},
		{state.Cutover, RouteBoth, true, true},
		{state.Done, RouteNew, false, true},
	}
	w := newRouteWorld(t)
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			user := "u-" + string(tt.state)
			w.moveTo(user, tt.state)
			res, err := w.r.Deliver(context.Background(), "bob@example.com", user, msgspool.Bytes([]byte("Subject: hi\r\n\r\nFrom me\r\n")))
			if err != nil {
				t.Fatal(err)
			}
			if res.Route != tt.route {
				t.Errorf("route %v, want %v", res.Route, tt.route)
			}
			old := w.old(user)
			if got := strings.Count(old, "From bob@example.com "); got != b2i(tt.old) {
				t.Errorf("old mbox has %d copies: %q", got, old)
			}
			if tt.old && !strings.Contains(old, "\n>From me\n") {
				t.Errorf("old copy not mboxo-quoted: %q", old)
			}
			if got := len(w.store[user]); got != b2i(tt.new_) {
				t.Errorf("new store has %d copies", got)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRouteRecordsDualDeliveries(t *testing.T) {
	w := newRouteWorld(t)
	ctx := context.Background()
	var got []string
	w.r.Delivered = func(p *paths.User, hash string) { got = append(got, p.User+":"+hash) }
	w.moveTo("q", state.Queued)
	w.moveTo("d", state.Dual)
	w.moveTo("x", state.Done)
	for _, u := range []string{"q", "d", "x"} {
		if _, err := w.r.Deliver(ctx, "a@b", u, msgspool.Bytes([]byte("m-"+u))); err != nil {
			t.Fatal(err)
		}
	}
	w.fail = errors.New("boom")
	w.r.Deliver(ctx, "a@b", "d", msgspool.Bytes([]byte("failed")))
	if len(got) != 1 || got[0] != "d:"+convert.ContentHash([]byte("m-d")) {
		t.Fatalf("recorded %q, want only the dual delivery", got)
	}
}

func TestRouteNeedsAttentionKeepsSwitchedDelivery(t *testing.T) {
	w := newRouteWorld(t)
	ctx := context.Background()
	w.moveTo("a", state.Copying)
	if err := w.db.Transition(ctx, "a", state.Copying, state.NeedsAttention, "test", "broken"); err != nil {
		t.Fatal(err)
	}
	w.moveTo("q", state.Queued)
	if err := w.db.Transition(ctx, "q", state.Queued, state.NeedsAttention, "test", "no home"); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]Route{"a": RouteBoth, "q": RouteOld} {
		res, err := w.r.Deliver(ctx, "", user, msgspool.Bytes([]byte("Subject: x\n\nb\n")))
		if err != nil || res.Route != want {
			t.Errorf("%s: %+v %v, want %v", user, res, err, want)
		}
	}
}

func TestRouteNotQueued(t *testing.T) {
	w := newRouteWorld(t)
	ctx := context.Background()
	os.WriteFile(filepath.Join(w.dir, "spool", "olduser"), nil, 0o600)
	tests := []struct {
		user  string
		route Route
		code  int
	}{
		{"olduser", RouteOld, 0},     // spool exists
		{"nospool", RouteOld, 0},     // known to the old side, no account: spool created
		{"server-only", RouteNew, 0}, // only a server account
		{"ghost", 0, delivery.ExNoUser},
	}
	for _, tt := range tests {
		res, err := w.r.Deliver(ctx, "a@b", tt.user, msgspool.Bytes([]byte("Subject: x\n\nb\n")))
		if code := delivery.ExitCode(err); code != tt.code {
			t.Errorf("%s: exit %d (%v), want %d", tt.user, code, err, tt.code)
			continue
		}
		if err == nil && res.Route != tt.route {
			t.Errorf("%s: route %v, want %v", tt.user, res.Route, tt.route)
		}
	}
	if !strings.Contains(w.old("nospool"), "From a@b ") {
		t.Errorf("spool not created for a known old user")
	}
}

func TestRouteControlAndSubaddress(t *testing.T) {
	w := newRouteWorld(t)
	ctx := context.Background()
	res, err := w.r.Deliver(ctx, "a@b", "mailmig-confirm+0123-alice", msgspool.Bytes([]byte("Subject: Re\n\nok\n")))
	if err != nil || res.Route != RouteNew || len(w.store["mailmig-confirm"]) != 1 {
		t.Fatalf("control address: %+v %v %v", res, err, w.store)
	}
	w.moveTo("bob", state.Dual)
	if res, err := w.r.Deliver(ctx, "a@b", "bob+lists", msgspool.Bytes([]byte("Subject: x\n\nb\n"))); err != nil || res.Route != RouteBoth {
		t.Fatalf("subaddress: %+v %v", res, err)
	}
	if len(w.store["bob"]) != 1 || !strings.Contains(w.old("bob"), "Subject: x") {
		t.Fatalf("bob+lists not delivered to bob")
	}
}

func TestRouteNewStoreFailureTakesOldCopyBack(t *testing.T) {
	w := newRouteWorld(t)
	ctx := context.Background()
	w.moveTo("alice", state.Dual)
	if _, err := w.r.Deliver(ctx, "a@b", "alice", msgspool.Bytes([]byte("Subject: 1\n\nb\n"))); err != nil {
		t.Fatal(err)
	}
	before := w.old("alice")
	w.fail = delivery.Temporary(errors.New("disk full"))
	_, err := w.r.Deliver(ctx, "a@b", "alice", msgspool.Bytes([]byte("Subject: 2\n\nb\n")))
	if delivery.ExitCode(err) != delivery.ExTempFail {
		t.Fatalf("err %v: exit %d, want 75", err, delivery.ExitCode(err))
	}
	if after := w.old("alice"); after != before {
		t.Fatalf("old copy left behind after a failed new-store delivery:\n%q", after)
	}
	// A permanent refusal (Sieve reject) takes the old copy back too, and
	// keeps its exit code.
	w.fail = &delivery.RejectError{Reason: "no"}
	_, err = w.r.Deliver(ctx, "a@b", "alice", msgspool.Bytes([]byte("Subject: 3\n\nb\n")))
	if delivery.ExitCode(err) != delivery.ExNoPerm || w.old("alice") != before {
		t.Fatalf("reject: %v, old %q", err, w.old("alice"))
	}
	if len(w.store["alice"]) != 1 {
		t.Fatalf("new store has %d", len(w.store["alice"]))
	}
}

func TestRouteLockBusyIsTemporary(t *testing.T) {
	w := newRouteWorld(t)
	w.moveTo("alice", state.Dual)
	p := filepath.Join(w.dir, "spool", "alice")
	os.WriteFile(p, nil, 0o600)
	os.WriteFile(p+".lock", []byte("1\n"), 0o644) // someone else's fresh lock
	w.r.Spool.Timeout = 100e6
	_, err := w.r.Deliver(context.Background(), "a@b", "alice", msgspool.Bytes([]byte("Subject: x\n\nb\n")))
	if delivery.ExitCode(err) != delivery.ExTempFail {
		t.Fatalf("busy lock: %v", err)
	}
	if len(w.store["alice"]) != 0 || w.old("alice") != "" {
		t.Fatalf("something was delivered while the lock was busy")
	}
}

// BenchmarkRouteBoth delivers to a user in the dual window with the real
// delivery path and fsync: the old mbox lock is held for the append and
// the new-store delivery. Reports the lock hold time per delivery.
func BenchmarkRouteBoth(b *testing.B) {
	dir := b.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	db.Enqueue(ctx, "alice", state.EnqueueOptions{})
	db.Transition(ctx, "alice", state.Queued, state.Dual, "bench", "")
	maildir := filepath.Join(dir, "Maildir")
	d := &delivery.Deliverer{MaildirFor: func(string) (string, error) { return maildir, nil }}
	var newStore time.Duration
	r := &Router{
		DB: db,
		Paths: func(u string) (*paths.User, error) {
			return &paths.User{Inbox: filepath.Join(dir, "alice")}, nil
		},
		NewStore: func(ctx context.Context, env delivery.Envelope, msg msgspool.Source) error {
			t0 := time.Now()
			_, err := d.Deliver(ctx, env, msg)
			newStore += time.Since(t0)
			return err
		},
		Domain: "example.org",
	}
	msg := []byte("Subject: bench\r\n\r\n" + strings.Repeat("0123456789", 400) + "\r\n")
	var held time.Duration
	for b.Loop() {
		res, err := r.Deliver(ctx, "a@b", "alice", msgspool.Bytes(msg))
		if err != nil {
			b.Fatal(err)
		}
		held += res.LockHeld
	}
	b.ReportMetric(float64(held.Microseconds())/float64(b.N), "µs-locked/op")
	b.ReportMetric(float64(newStore.Microseconds())/float64(b.N), "µs-newstore/op")
}

// readAll is the text of a delivered message.
func readAll(msg msgspool.Source) string {
	b, err := msgspool.ReadAll(msg)
	if err != nil {
		panic(err)
	}
	return string(b)
}
