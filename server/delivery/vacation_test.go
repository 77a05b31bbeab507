package delivery

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"mailmig/server/msgspool"
	"mailmig/server/sieve"
)

const vacationScript = `require "vacation"; vacation :days 2 :addresses ["alice@old.example.com"] "I am away until Monday.";`

func TestVacationOncePerDays(t *testing.T) {
	f := newFixture(t)
	f.script("alice", vacationScript)
	f.mustDeliver("bob@example.org", "alice@example.com", msg("Subject: lunch?"))
	f.mustDeliver("bob@example.org", "alice@example.com", msg("Subject: again"))
	f.now = f.now.Add(47 * time.Hour)
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if n := len(f.sender.all()); n != 1 {
		t.Fatalf("%d replies within :days, want 1", n)
	}
	f.mustDeliver("carol@example.org", "alice@example.com", msg())
	if n := len(f.sender.all()); n != 2 {
		t.Fatalf("another sender: %d replies, want 2", n)
	}
	f.now = f.now.Add(2 * time.Hour) // 49h after the first reply
	res := f.mustDeliver("BOB@example.org", "alice@example.com", msg())
	if len(res.VacationTo) != 1 || len(f.sender.all()) != 3 {
		t.Fatalf("after :days: %+v, %d replies", res, len(f.sender.all()))
	}
	if got := f.where("alice"); got != "INBOX:5" {
		t.Fatalf("vacation must keep the message: %s", got)
	}

	r := f.sender.all()[0]
	if r.From != "" || len(r.To) != 1 || r.To[0] != "bob@example.org" {
		t.Fatalf("reply envelope %q -> %v", r.From, r.To)
	}
	for _, want := range []string{
		"From: <alice@example.com>\r\n", "To: <bob@example.org>\r\n", "Subject: Auto: lunch?\r\n",
		"In-Reply-To: <m1@example.org>\r\n", "References: <m1@example.org>\r\n",
		"Auto-Submitted: auto-replied", "\r\n\r\nI am away until Monday.",
	} {
		if !strings.Contains(r.Msg, want) {
			t.Errorf("reply lacks %q:\n%s", want, r.Msg)
		}
	}
}

// Parallel deliveries from one sender (LMTP connections and recipients
// run concurrently) send one reply, not one each.
func TestVacationOnceWhenParallel(t *testing.T) {
	f := newFixture(t)
	f.script("alice", vacationScript)
	// A store as slow as a database on a busy disk.
	f.d.Vacation = slowVacation{NewMemoryVacation()}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.deliver("bob@example.org", "alice@example.com", msg())
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := len(f.sender.all()); n != 1 {
		t.Fatalf("%d vacation replies to 8 parallel deliveries from one sender, want 1", n)
	}
	if got := f.where("alice"); got != "INBOX:8" {
		t.Fatalf("stored %s", got)
	}
}

// Deliveries in two processes (two `mailmig deliver` runs for one user,
// as Postfix starts them in parallel, or one beside `mailmig serve`)
// share the vacation store but not the Deliverer's lock: they answer one
// sender once too.
func TestVacationOnceAcrossProcesses(t *testing.T) {
	f := newFixture(t)
	f.script("alice", vacationScript)
	// The two processes look the sender up at the same moment.
	store := &rendezvousVacation{MemoryVacation: NewMemoryVacation(), all: make(chan struct{})}
	f.d.Vacation = store
	other := &Deliverer{MaildirFor: f.d.MaildirFor, ScriptsFor: f.d.ScriptsFor, UserExists: f.d.UserExists,
		Sender: f.sender, Logger: f.d.Logger, Hostname: f.d.Hostname, NoFsync: true, Now: f.d.Now, Vacation: store}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, d := range []*Deliverer{f.d, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = d.Deliver(context.Background(), Envelope{From: "bob@example.org", To: "alice@example.com", User: "alice"},
				msgspool.Bytes([]byte(msg())))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := len(f.sender.all()); n != 1 {
		t.Fatalf("%d vacation replies to 2 deliveries from one sender in two processes, want 1", n)
	}
}

// rendezvousVacation's look-ups wait (up to 2 s) until two are done.
type rendezvousVacation struct {
	*MemoryVacation
	mu  sync.Mutex
	n   int
	all chan struct{}
}

func (s *rendezvousVacation) VacationSeen(ctx context.Context, user, handle, sender string, since time.Time) (bool, error) {
	seen, err := s.MemoryVacation.VacationSeen(ctx, user, handle, sender, since)
	s.mu.Lock()
	if s.n++; s.n == 2 {
		close(s.all)
	}
	s.mu.Unlock()
	select {
	case <-s.all:
	case <-time.After(2 * time.Second):
	}
	return seen, err
}

// A reply that could not be sent is not remembered: the next message
// from that sender is answered.
func TestVacationUnsentNotRemembered(t *testing.T) {
	f := newFixture(t)
	f.script("alice", vacationScript)
	store := NewMemoryVacation()
	f.d.Vacation = store
	f.d.Sender = failingSender{}
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	f.d.Sender = f.sender
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if n := len(f.sender.all()); n != 1 {
		t.Fatalf("%d vacation replies after a failed one, want 1", n)
	}
}

type failingSender struct{}

func (failingSender) Send(context.Context, string, []string, io.Reader) error {
	return errors.New("queue unavailable")
}

type slowVacation struct{ *MemoryVacation }

func (s slowVacation) VacationSeen(ctx context.Context, user, handle, sender string, since time.Time) (bool, error) {
	time.Sleep(20 * time.Millisecond)
	return s.MemoryVacation.VacationSeen(ctx, user, handle, sender, since)
}

func TestVacationNeverAnswers(t *testing.T) {
	tests := []struct {
		name, from, to string
		headers        []string
	}{
		{"null sender", "", "alice@example.com", nil},
		{"mailer-daemon", "MAILER-DAEMON@example.org", "alice@example.com", nil},
		{"owner-", "owner-list@example.org", "alice@example.com", nil},
		{"-request", "list-request@example.org", "alice@example.com", nil},
		{"list-id", "bob@example.org", "alice@example.com", []string{"List-Id: <go.example.org>"}},
		{"list-unsubscribe", "bob@example.org", "alice@example.com", []string{"List-Unsubscribe: <mailto:x@y>"}},
		{"precedence bulk", "bob@example.org", "alice@example.com", []string{"Precedence: bulk"}},
		{"precedence junk", "bob@example.org", "alice@example.com", []string{"Precedence: junk"}},
		{"precedence list", "bob@example.org", "alice@example.com", []string{"Precedence: list"}},
		{"auto-submitted", "bob@example.org", "alice@example.com", []string{"Auto-Submitted: auto-replied"}},
		{"not in to/cc", "bob@example.org", "alice@example.com", []string{"To: team@example.com"}},
		{"own address", "alice@example.com", "alice@example.com", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.script("alice", vacationScript)
			res := f.mustDeliver(tt.from, tt.to, msg(tt.headers...))
			if res.ScriptErr != nil {
				t.Fatal(res.ScriptErr)
			}
			if n := len(f.sender.all()); n != 0 {
				t.Errorf("%d replies sent: %+v", n, f.sender.all())
			}
			if got := f.where("alice"); got != "INBOX:1" {
				t.Errorf("where %q", got)
			}
		})
	}
}

func TestVacationAnswers(t *testing.T) {
	tests := []struct {
		name, to string
		headers  []string
	}{
		{"cc", "alice@example.com", []string{"To: team@example.com", "Cc: Alice <ALICE@example.com>"}},
		{":addresses", "alice@example.com", []string{"To: alice@old.example.com"}},
		{"subaddress recipient", "alice+x@example.com", []string{"To: alice@example.com"}},
		{"auto-submitted no", "alice@example.com", []string{"Auto-Submitted: no"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.script("alice", vacationScript)
			f.mustDeliver("bob@example.org", tt.to, msg(tt.headers...))
			if n := len(f.sender.all()); n != 1 {
				t.Errorf("%d replies, want 1", n)
			}
		})
	}
}

func TestVacationOptions(t *testing.T) {
	f := newFixture(t)
	f.d.VacationDays = 1
	f.script("alice", `require "vacation"; vacation :from "Alice <alice@example.com>" :subject "Vacances été" :handle "h" :mime
"Content-Type: text/plain; charset=utf-8

Back soon.";`)
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	f.now = f.now.Add(25 * time.Hour) // default :days from the Deliverer: 1
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	s := f.sender.all()
	if len(s) != 2 {
		t.Fatalf("%d replies, want 2", len(s))
	}
	for _, want := range []string{"From: Alice <alice@example.com>\r\n", "Subject: =?utf-8?q?Vacances_=C3=A9t=C3=A9?=\r\n",
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBack soon."} {
		if !strings.Contains(s[0].Msg, want) {
			t.Errorf("reply lacks %q:\n%s", want, s[0].Msg)
		}
	}
}

func TestVacationSendFailureKeepsMail(t *testing.T) {
	f := newFixture(t)
	f.sender.err = errors.New("queue full")
	f.script("alice", vacationScript)
	res := f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if len(res.VacationTo) != 0 || f.where("alice") != "INBOX:1" {
		t.Fatalf("%+v %s", res, f.where("alice"))
	}
	// Not recorded: the next message is answered once sending works.
	f.sender.err = nil
	f.mustDeliver("bob@example.org", "alice@example.com", msg())
	if len(f.sender.all()) != 1 {
		t.Fatalf("no reply after recovery")
	}
}

func TestMemoryVacation(t *testing.T) {
	m := NewMemoryVacation()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if seen, _ := m.VacationSeen(ctx, "u", "h", "s@x", t0); seen {
		t.Fatal("seen before record")
	}
	_ = m.VacationRecord(ctx, "u", "h", "S@x", t0)
	if seen, _ := m.VacationSeen(ctx, "u", "h", "s@x", t0.Add(-time.Hour)); !seen {
		t.Fatal("not seen after record")
	}
	if seen, _ := m.VacationSeen(ctx, "u", "h", "s@x", t0.Add(time.Hour)); seen {
		t.Fatal("seen after the window")
	}
	if seen, _ := m.VacationSeen(ctx, "u", "other", "s@x", t0.Add(-time.Hour)); seen {
		t.Fatal("handles must be separate")
	}
}

func TestVacationHandleDerived(t *testing.T) {
	a := vacationHandle(sieve.Vacation{Body: "x"})
	b := vacationHandle(sieve.Vacation{Body: "y"})
	if a == b || a != vacationHandle(sieve.Vacation{Body: "x"}) {
		t.Fatalf("handles %q %q", a, b)
	}
}
