package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"mailmig/state"
)

type fakeChecker map[string]string

func (f fakeChecker) Authenticate(_ context.Context, user, pw string) error {
	p, ok := f[user]
	if !ok {
		return fmt.Errorf("%w: %s", state.ErrNoAccount, user)
	}
	if p != pw {
		return state.ErrBadPassword
	}
	return nil
}

func TestAuthenticate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &Authenticator{
		Checker:   fakeChecker{"alice": "pw", "bob": "pw"},
		FailDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond,
		MaxFailuresPerIP: 3, MaxFailuresPerIPUser: 5, Window: time.Minute,
		Now: func() time.Time { return now },
	}
	ctx := context.Background()
	steps := []struct {
		remote, user, pw string
		want             error
	}{
		{"10.0.0.1:1234", "alice", "pw", nil},
		{"10.0.0.1:1234", "alice", "bad", ErrFailed},
		{"10.0.0.1:1235", "ghost", "pw", ErrFailed}, // unknown user looks the same
		{"10.0.0.1:1236", "alice", "bad", ErrFailed},
		// three failures from 10.0.0.1: locked out, even with the right password
		{"10.0.0.1:1237", "alice", "pw", ErrRateLimited},
		// another address is not affected
		{"10.0.0.2:1", "alice", "pw", nil},
		{"[2001:db8::1]:1", "bob", "bad", ErrFailed},
		{"[2001:db8::2]:1", "bob", "bad", ErrFailed},
		{"[2001:db8::3]:1", "bob", "bad", ErrFailed},
		// same /64: locked out
		{"[2001:db8::4]:1", "bob", "pw", ErrRateLimited},
	}
	for i, s := range steps {
		if err := a.Authenticate(ctx, s.remote, s.user, s.pw); !errors.Is(err, s.want) && !(s.want == nil && err == nil) {
			t.Fatalf("step %d %+v: err = %v, want %v", i, s, err, s.want)
		}
	}
	now = now.Add(2 * time.Minute) // window over
	if err := a.Authenticate(ctx, "10.0.0.1:1", "alice", "pw"); err != nil {
		t.Fatalf("after window: %v", err)
	}
}

// TestNoLockoutByUser: wrong passwords for carol from many addresses never
// refuse carol's right password from an address with a clean record (a
// limit per user would let anyone lock anyone out).
func TestNoLockoutByUser(t *testing.T) {
	a := &Authenticator{Checker: fakeChecker{"carol": "pw"}, FailDelay: time.Microsecond, MaxDelay: time.Microsecond}
	ctx := context.Background()
	for i := range 200 {
		a.Authenticate(ctx, fmt.Sprintf("10.0.%d.%d:1", i/250, i%250+1), "carol", "x")
	}
	if err := a.Authenticate(ctx, "192.0.2.7:1", "carol", "pw"); err != nil {
		t.Fatalf("carol refused after a spray from other addresses: %v", err)
	}
}

// TestPerIPUserLimit: failures for one user from one address refuse that
// user there, not other users from the same address.
func TestPerIPUserLimit(t *testing.T) {
	a := &Authenticator{Checker: fakeChecker{"carol": "pw", "dave": "pw"}, FailDelay: time.Microsecond, MaxDelay: time.Microsecond,
		MaxFailuresPerIP: 100, MaxFailuresPerIPUser: 2}
	ctx := context.Background()
	a.Authenticate(ctx, "10.0.0.1:1", "carol", "x")
	a.Authenticate(ctx, "10.0.0.1:2", "carol", "y")
	if err := a.Authenticate(ctx, "10.0.0.1:3", "carol", "pw"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("carol from 10.0.0.1 after 2 failures: %v, want rate limited", err)
	}
	if err := a.Authenticate(ctx, "10.0.0.1:4", "dave", "pw"); err != nil {
		t.Fatalf("dave from the same address: %v", err)
	}
	if err := a.Authenticate(ctx, "10.0.0.2:1", "carol", "pw"); err != nil {
		t.Fatalf("carol from another address: %v", err)
	}
}

func TestFailureDelay(t *testing.T) {
	a := &Authenticator{Checker: fakeChecker{}, FailDelay: 30 * time.Millisecond}
	start := time.Now()
	a.Authenticate(context.Background(), "127.0.0.1:1", "x", "y")
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("failure answered after %v, want ≥ 30ms", d)
	}
}

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3.4:99":            "1.2.3.4",
		"1.2.3.4":               "1.2.3.4",
		"[2001:db8:1:2::5]:143": "2001:db8:1:2::/64",
		"pipe":                  "pipe",
	} {
		if got := IPKey(in); got != want {
			t.Errorf("IPKey(%q) = %q, want %q", in, got, want)
		}
	}
}

type slowChecker struct {
	mu      sync.Mutex
	running int
	peak    int
}

func (c *slowChecker) Authenticate(context.Context, string, string) error {
	c.mu.Lock()
	c.running++
	if c.running > c.peak {
		c.peak = c.running
	}
	c.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	c.mu.Lock()
	c.running--
	c.mu.Unlock()
	return nil
}

func TestConcurrencyBound(t *testing.T) {
	c := &slowChecker{}
	a := &Authenticator{Checker: c, MaxConcurrent: 3}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Authenticate(context.Background(), fmt.Sprintf("10.0.0.%d:1", i), "u", "p"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c.peak > 3 || c.peak == 0 {
		t.Fatalf("peak concurrent checks = %d, want 1..3", c.peak)
	}
}

// gateChecker blocks every check until released, recording the order in
// which users were checked.
type gateChecker struct {
	mu    sync.Mutex
	order []string
	gate  chan struct{}
}

func (c *gateChecker) Authenticate(_ context.Context, user, pw string) error {
	<-c.gate
	c.mu.Lock()
	c.order = append(c.order, user)
	c.mu.Unlock()
	if pw != "pw" {
		return state.ErrBadPassword
	}
	return nil
}

// TestFairSlots: with every slot taken and sprayers from addresses with
// failures queued, a check from a clean address is the next to run; and
// the failure delay does not hold a slot.
func TestFairSlots(t *testing.T) {
	c := &gateChecker{gate: make(chan struct{})}
	a := &Authenticator{Checker: c, MaxConcurrent: 1, FailDelay: time.Hour, MaxDelay: time.Hour, MaxFailuresPerIP: 100, MaxFailuresPerIPUser: 100}
	// Give the sprayers' addresses a failure each.
	a.mu.Lock()
	a.byIP, a.byIPUser = map[string]*record{}, map[string]*record{}
	for i := range 10 {
		add(a.byIP, fmt.Sprintf("10.0.0.%d", i), time.Now())
	}
	a.mu.Unlock()
	sl := a.checkSlots()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.Authenticate(ctx, fmt.Sprintf("10.0.0.%d:1", i), "spray", "x")
		}()
	}
	// Wait until one sprayer runs and nine wait.
	for range 1000 {
		sl.mu.Lock()
		n := len(sl.waiting)
		sl.mu.Unlock()
		if n == 9 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- a.Authenticate(ctx, "192.0.2.1:1", "real", "pw") }()
	for range 1000 {
		sl.mu.Lock()
		n := len(sl.waiting)
		sl.mu.Unlock()
		if n == 10 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	c.gate <- struct{}{} // the first sprayer finishes (and sleeps its hour outside the slot)
	c.gate <- struct{}{} // the next check must be the real one
	if err := <-done; err != nil {
		t.Fatalf("real login: %v", err)
	}
	c.mu.Lock()
	order := append([]string(nil), c.order...)
	c.mu.Unlock()
	if len(order) != 2 || order[1] != "real" {
		t.Fatalf("check order %v: the clean address did not get the next slot", order)
	}
	cancel()
	close(c.gate)
	wg.Wait()
}
