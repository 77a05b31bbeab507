package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// path walks user through the states to reach s (via needs-attention for
// that state itself).
func driveTo(t *testing.T, d *DB, user string, s State) {
	t.Helper()
	ctx := context.Background()
	order := []State{Queued, Dual, Copying, Confirm, Cutover, Done}
	if s == NeedsAttention {
		if err := d.Transition(ctx, user, Queued, NeedsAttention, "test", "reason"); err != nil {
			t.Fatal(err)
		}
		return
	}
	for i := 1; i < len(order) && order[i-1] != s; i++ {
		if err := d.Transition(ctx, user, order[i-1], order[i], "test", ""); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTransitions(t *testing.T) {
	want := map[[2]State]bool{
		{Queued, Dual}: true, {Dual, Copying}: true, {Copying, Confirm}: true, {Confirm, Cutover}: true, {Cutover, Done}: true,
		{Queued, NeedsAttention}: true, {Dual, NeedsAttention}: true, {Copying, NeedsAttention}: true,
		{Confirm, NeedsAttention}: true, {Cutover, NeedsAttention}: true,
		{NeedsAttention, Queued}: true, {NeedsAttention, Dual}: true, {NeedsAttention, Copying}: true,
		{NeedsAttention, Confirm}: true, {NeedsAttention, Cutover}: true,
	}
	d := openTest(t)
	ctx := context.Background()
	n := 0
	for _, from := range States {
		for _, to := range States {
			from, to := from, to
			t.Run(fmt.Sprintf("%s->%s", from, to), func(t *testing.T) {
				if got := CanTransition(from, to); got != want[[2]State{from, to}] {
					t.Fatalf("CanTransition(%s, %s) = %v, want %v", from, to, got, !got)
				}
				n++
				user := fmt.Sprintf("u%d", n)
				if _, err := d.Enqueue(ctx, user, EnqueueOptions{}); err != nil {
					t.Fatal(err)
				}
				driveTo(t, d, user, from)
				err := d.Transition(ctx, user, from, to, "test", "why")
				e, gerr := d.Get(ctx, user)
				if gerr != nil {
					t.Fatal(gerr)
				}
				if want[[2]State{from, to}] {
					if err != nil {
						t.Fatalf("allowed transition failed: %v", err)
					}
					if e.State != to {
						t.Fatalf("state = %s, want %s", e.State, to)
					}
				} else {
					if !errors.Is(err, ErrTransition) {
						t.Fatalf("forbidden transition: err = %v, want ErrTransition", err)
					}
					if e.State != from {
						t.Fatalf("forbidden transition changed state to %s", e.State)
					}
				}
			})
		}
	}
}

func TestTransitionChecksCurrentState(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	d.Enqueue(ctx, "alice", EnqueueOptions{})
	if err := d.Transition(ctx, "alice", Dual, Copying, "t", ""); !errors.Is(err, ErrStateChanged) {
		t.Fatalf("err = %v, want ErrStateChanged", err)
	}
	if err := d.Transition(ctx, "nobody", Queued, Dual, "t", ""); !errors.Is(err, ErrNotQueued) {
		t.Fatalf("err = %v, want ErrNotQueued", err)
	}
}

func TestNeedsAttentionKeepsReason(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	d.Enqueue(ctx, "bob", EnqueueOptions{CopyFolders: true})
	driveTo(t, d, "bob", Copying)
	if err := d.Transition(ctx, "bob", Copying, NeedsAttention, "runner", "folders 612 MB > 500 MB"); err != nil {
		t.Fatal(err)
	}
	e, _ := d.Get(ctx, "bob")
	if e.LastError != "folders 612 MB > 500 MB" || e.AttentionFrom != Copying || e.Attempts != 1 {
		t.Fatalf("entry = %+v", e)
	}
	if err := d.Transition(ctx, "bob", NeedsAttention, Copying, "postmaster", "retry"); err != nil {
		t.Fatal(err)
	}
	if e, _ := d.Get(ctx, "bob"); e.LastError != "" || e.AttentionFrom != "" || e.Attempts != 1 {
		t.Fatalf("after resuming: last error %q, attention from %q, attempts %d", e.LastError, e.AttentionFrom, e.Attempts)
	}
	d.SetError(ctx, "bob", "disk full")
	if e, _ := d.Get(ctx, "bob"); e.LastError != "disk full" {
		t.Fatalf("SetError: %q", e.LastError)
	}
	if err := d.Transition(ctx, "bob", Copying, Confirm, "runner", ""); err != nil {
		t.Fatal(err)
	}
	if e, _ := d.Get(ctx, "bob"); e.LastError != "" {
		t.Fatalf("last error %q outlived a successful step", e.LastError)
	}
	evs, _ := d.Events(ctx, "bob")
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, fmt.Sprintf("%s:%s>%s", ev.Kind, ev.From, ev.To))
	}
	got := strings.Join(kinds, " ")
	want := "enqueued:>queued transition:queued>dual transition:dual>copying transition:copying>needs-attention transition:needs-attention>copying error:> transition:copying>confirm"
	if got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
}

func TestEnqueueIdempotent(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	added, err := d.Enqueue(ctx, "carol", EnqueueOptions{CopyFolders: true, Deadline: time.Date(2009, 10, 15, 0, 0, 0, 0, time.UTC)})
	if err != nil || !added {
		t.Fatalf("first enqueue: %v %v", added, err)
	}
	added, err = d.Enqueue(ctx, "carol", EnqueueOptions{})
	if err != nil || added {
		t.Fatalf("second enqueue: added=%v err=%v, want false nil", added, err)
	}
	e, _ := d.Get(ctx, "carol")
	if !e.CopyFolders || e.Deadline.Year() != 2009 || e.MigrationID == "" {
		t.Fatalf("second enqueue changed options: %+v", e)
	}
	if evs, _ := d.Events(ctx, "carol"); len(evs) != 1 {
		t.Fatalf("events = %d, want 1", len(evs))
	}
}

func TestLeaseExpiryTakeover(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	d.Now = func() time.Time { return now }
	d.Enqueue(ctx, "dave", EnqueueOptions{})
	if err := d.Lease(ctx, "dave", "w1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := d.Lease(ctx, "dave", "w2", time.Minute); !errors.Is(err, ErrLeased) {
		t.Fatalf("live lease taken: %v", err)
	}
	if u, err := d.LeaseNext(ctx, "w2", time.Minute); err != nil || u != "" {
		t.Fatalf("LeaseNext gave %q %v while leased", u, err)
	}
	now = now.Add(2 * time.Minute) // w1 crashed; its lease expired
	if u, err := d.LeaseNext(ctx, "w2", time.Minute); err != nil || u != "dave" {
		t.Fatalf("LeaseNext after expiry = %q %v, want dave", u, err)
	}
	if err := d.Renew(ctx, "dave", "w1", time.Minute); !errors.Is(err, ErrLeased) {
		t.Fatalf("old owner renewed a lost lease: %v", err)
	}
	if err := d.Renew(ctx, "dave", "w2", time.Minute); err != nil {
		t.Fatal(err)
	}
	evs, _ := d.Events(ctx, "dave")
	if evs[len(evs)-1].Kind != "lease-takeover" || evs[len(evs)-1].Actor != "w2" {
		t.Fatalf("no takeover event: %+v", evs[len(evs)-1])
	}
	d.Release(ctx, "dave", "w2")
	if err := d.Lease(ctx, "dave", "w3", time.Minute); err != nil {
		t.Fatalf("lease after release: %v", err)
	}
}

func TestSchemaUpgradeFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := openAt(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A version-1 database with a queued user and an account, written
	// with version 1's columns only.
	if _, err := old.sql.ExecContext(ctx, `INSERT INTO queue (user, state, copy_folders, enqueued_at, state_since) VALUES ('erin', 'dual', 1, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	h, _ := HashPassword("pw")
	if _, err := old.sql.ExecContext(ctx, `INSERT INTO accounts (user, hash, created_at, changed_at) VALUES ('erin', ?, 1, 1)`, h); err != nil {
		t.Fatal(err)
	}
	if v, _ := old.SchemaVersion(ctx); v != 1 {
		t.Fatalf("version = %d", v)
	}
	old.Close()

	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if v, _ := d.SchemaVersion(ctx); v != LatestSchema() {
		t.Fatalf("upgraded version = %d, want %d", v, LatestSchema())
	}
	e, err := d.Get(ctx, "erin")
	if err != nil {
		t.Fatal(err)
	}
	if e.State != Dual || !e.CopyFolders || len(e.MigrationID) != 24 {
		t.Fatalf("upgraded entry = %+v", e)
	}
	if err := d.Authenticate(ctx, "erin", "pw"); err != nil {
		t.Fatalf("account lost in upgrade: %v", err)
	}
	a, _ := d.Account(ctx, "erin")
	if a.QuotaMessages != -1 {
		t.Fatalf("new column default = %d", a.QuotaMessages)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	d.sql.Exec(fmt.Sprintf("PRAGMA user_version = %d", LatestSchema()+1))
	d.Close()
	_, err = Open(path)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "upgrade mailmig") {
		t.Fatalf("err = %v", err)
	}
}

func TestAccounts(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	if err := d.AddAccount(ctx, "frank", "s3cret", -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := d.AddAccount(ctx, "frank", "x", -1, -1); err == nil {
		t.Fatal("duplicate account accepted")
	}
	tests := []struct {
		user, pw string
		want     error
	}{
		{"frank", "s3cret", nil},
		{"frank", "wrong", ErrBadPassword},
		{"nobody", "s3cret", ErrNoAccount},
	}
	for _, tc := range tests {
		if err := d.Authenticate(ctx, tc.user, tc.pw); !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("Authenticate(%s, %s) = %v, want %v", tc.user, tc.pw, err, tc.want)
		}
	}
	var hash string
	d.sql.QueryRow(`SELECT hash FROM accounts WHERE user = 'frank'`).Scan(&hash)
	if !strings.HasPrefix(hash, "$argon2id$v=19$") || strings.Contains(hash, "s3cret") {
		t.Fatalf("stored hash %q", hash)
	}
	if err := d.SetPassword(ctx, "frank", "new"); err != nil {
		t.Fatal(err)
	}
	if err := d.Authenticate(ctx, "frank", "s3cret"); !errors.Is(err, ErrBadPassword) {
		t.Fatal("old password still works")
	}
	// bcrypt hashes (imported from elsewhere) are accepted too.
	bh, _ := bcrypt.GenerateFromPassword([]byte("U*U"), bcrypt.MinCost)
	if err := CheckPassword(string(bh), "U*U"); err != nil {
		t.Fatalf("bcrypt: %v", err)
	}
	if err := CheckPassword(string(bh), "U*V"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("bcrypt wrong password: %v", err)
	}
	if err := d.DeleteAccount(ctx, "frank"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteAccount(ctx, "frank"); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestVacationMemory(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	d.Now = func() time.Time { return now }
	seen, _ := d.VacationSeen(ctx, "gina", "a@x", "h", 7*24*time.Hour)
	if seen {
		t.Fatal("seen before recorded")
	}
	d.VacationRecord(ctx, "gina", "a@x", "h")
	now = now.Add(6 * 24 * time.Hour)
	if seen, _ := d.VacationSeen(ctx, "gina", "a@x", "h", 7*24*time.Hour); !seen {
		t.Fatal("not seen within :days")
	}
	now = now.Add(2 * 24 * time.Hour)
	if seen, _ := d.VacationSeen(ctx, "gina", "a@x", "h", 7*24*time.Hour); seen {
		t.Fatal("still seen after :days")
	}
}

// VacationClaim: of parallel claims (deliveries in several processes
// share the database) one wins; a claim within :days of a reply fails,
// one after succeeds; an unclaimed reply leaves no record.
func TestVacationClaim(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := d.VacationClaim(ctx, "gina", "a@x", "h", now.Add(-week), now)
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d of 8 parallel claims won, want 1", won.Load())
	}
	later := now.Add(6 * 24 * time.Hour)
	if ok, _ := d.VacationClaim(ctx, "gina", "a@x", "h", later.Add(-week), later); ok {
		t.Fatal("claimed within :days of the reply")
	}
	later = now.Add(8 * 24 * time.Hour)
	if ok, err := d.VacationClaim(ctx, "gina", "a@x", "h", later.Add(-week), later); !ok || err != nil {
		t.Fatalf("claim after :days: %v %v", ok, err)
	}
	if err := d.VacationUnclaim(ctx, "gina", "a@x", "h", later); err != nil {
		t.Fatal(err)
	}
	d.Now = func() time.Time { return later }
	if seen, _ := d.VacationSeen(ctx, "gina", "a@x", "h", week); seen {
		t.Fatal("an unclaimed reply is still remembered")
	}
}

func TestSecretStable(t *testing.T) {
	d := openTest(t)
	a, _ := d.Secret(context.Background(), "reply")
	b, _ := d.Secret(context.Background(), "reply")
	if a == "" || a != b || len(a) != 64 {
		t.Fatalf("secrets %q %q", a, b)
	}
}

// TestLeaseRaceTwoProcesses starts two real processes on one database
// file; each tries many times to lease the same user. At any moment
// exactly one may hold it: each process records the instants it held the
// lease, and the intervals must not overlap.
func TestLeaseRaceTwoProcesses(t *testing.T) {
	if os.Getenv("MAILMIG_LEASE_CHILD") != "" {
		return
	}
	path := filepath.Join(t.TempDir(), "race.db")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	d.Enqueue(context.Background(), "zoe", EnqueueOptions{})
	d.Close()

	var cmds []*exec.Cmd
	outs := make([]*strings.Builder, 2)
	for i := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MAILMIG_LEASE_CHILD="+path, fmt.Sprintf("MAILMIG_LEASE_WORKER=w%d", i))
		outs[i] = &strings.Builder{}
		cmd.Stdout = outs[i]
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	type span struct {
		w          string
		start, end int64
	}
	var spans []span
	wins := map[string]int{}
	for i, o := range outs {
		for _, line := range strings.Split(o.String(), "\n") {
			var s span
			if n, _ := fmt.Sscanf(line, "HELD %d %d", &s.start, &s.end); n == 2 {
				s.w = fmt.Sprint(i)
				spans = append(spans, s)
				wins[s.w]++
			}
		}
	}
	if len(spans) == 0 {
		t.Fatal("nobody ever won the lease")
	}
	for i := range spans {
		for j := range spans {
			a, b := spans[i], spans[j]
			if a.w != b.w && a.start < b.end && b.start < a.end {
				t.Fatalf("workers %s and %s held the lease at once: %v %v", a.w, b.w, a, b)
			}
		}
	}
	t.Logf("lease wins per worker: %v", wins)
}

// TestMain turns the test binary into the child half of
// TestLeaseRaceTwoProcesses when MAILMIG_LEASE_CHILD is set.
func TestMain(m *testing.M) {
	if path := os.Getenv("MAILMIG_LEASE_CHILD"); path != "" {
		if err := leaseRaceChild(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// leaseRaceChild is the child half of TestLeaseRaceTwoProcesses.
func leaseRaceChild(path string) error {
	worker := os.Getenv("MAILMIG_LEASE_WORKER")
	d, err := Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	ctx := context.Background()
	for range 30 {
		u, err := d.LeaseNext(ctx, worker, time.Hour)
		if err != nil {
			return err
		}
		if u == "zoe" {
			start := time.Now().UnixNano()
			time.Sleep(2 * time.Millisecond)
			end := time.Now().UnixNano()
			fmt.Printf("HELD %d %d\n", start, end)
			if err := d.Release(ctx, "zoe", worker); err != nil {
				return err
			}
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}
