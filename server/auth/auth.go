// Package auth checks passwords for every mailmig server (IMAP,
// submission, ManageSieve, the web page) against the accounts in state,
// and slows down guessing: each failure is answered after a delay, and a
// source address (an IPv6 /64), or an address and user name together,
// with too many recent failures is refused outright for a while without
// even checking the password.
//
// Implementation notes:
//   - Nothing is ever counted by user name alone: failures spread over
//     many addresses must not lock the real user out (anyone could do
//     that to anyone), so the right password from an address with a clean
//     record always works.
//   - Password checks (argon2id: ~19 MB and a core each) run in a fixed
//     number of slots handed out fairly across addresses (slots.go); the
//     failure delay is served after the slot is released, so spraying
//     addresses cannot starve real logins.
//
// What a client is told never says whether the user exists; what the log
// records never contains a password.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"mailmig/state"
)

// ErrFailed is what every failed authentication returns to the server,
// whatever the reason (no account, wrong password).
var ErrFailed = errors.New("auth: authentication failed")

// ErrRateLimited is returned while an address or user is locked out.
var ErrRateLimited = errors.New("auth: too many failed attempts, try again later")

// Checker verifies a password; *state.DB is one.
type Checker interface {
	Authenticate(ctx context.Context, user, password string) error
}

// Authenticator applies delays and rate limits around a Checker.
type Authenticator struct {
	Checker Checker
	Logger  *slog.Logger
	// FailDelay is how long a failed attempt waits before it is answered
	// (default 1s; doubled for each recent failure of the address, up to
	// MaxDelay).
	FailDelay time.Duration
	MaxDelay  time.Duration
	// MaxFailuresPerIP failures from an address (IPv6: its /64) within
	// Window refuse every login from it for the rest of the window;
	// MaxFailuresPerIPUser failures for one user from one address refuse
	// that user from that address (defaults 10, 5, 15 minutes). There is
	// deliberately no limit per user alone.
	MaxFailuresPerIP     int
	MaxFailuresPerIPUser int
	Window               time.Duration
	// MaxConcurrent bounds password checks running at once (default
	// 2×GOMAXPROCS): argon2id takes ~19 MB and a core per check, so a
	// flood of logins must queue rather than exhaust memory. The slots go
	// first to addresses with fewer recent failures; failure delays are
	// served outside them.
	MaxConcurrent int
	// Now is the clock (tests).
	Now func() time.Time

	slotsOnce sync.Once
	slots     *slots

	mu       sync.Mutex
	byIP     map[string]*record
	byIPUser map[string]*record
}

type record struct {
	failures []time.Time
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Authenticator) defaults() (delay, maxDelay, window time.Duration, perIP, perIPUser int) {
	delay, maxDelay, window, perIP, perIPUser = a.FailDelay, a.MaxDelay, a.Window, a.MaxFailuresPerIP, a.MaxFailuresPerIPUser
	if delay == 0 {
		delay = time.Second
	}
	if maxDelay == 0 {
		maxDelay = 8 * time.Second
	}
	if window == 0 {
		window = 15 * time.Minute
	}
	if perIP == 0 {
		perIP = 10
	}
	if perIPUser == 0 {
		perIPUser = 5
	}
	return
}

// IPKey turns a remote address ("1.2.3.4:5678" or a bare IP) into the key
// failures are counted under: the IP, or its /64 for IPv6.
func IPKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// Authenticate checks user's password for a client at remote (an address
// or IP). It returns nil, ErrFailed or ErrRateLimited; other errors are
// internal (the database failed) and mean "try again later".
func (a *Authenticator) Authenticate(ctx context.Context, remote, user, password string) error {
	return a.run(ctx, remote, user, "password", func() error {
		ipKey := IPKey(remote)
		a.mu.Lock()
		ipFails := recent(a.byIP, ipKey, a.now(), a.window())
		a.mu.Unlock()
		return a.check(ctx, ipKey, ipFails, user, password)
	})
}

func (a *Authenticator) window() time.Duration {
	_, _, w, _, _ := a.defaults()
	return w
}

// run is Authenticate's frame around a check: limits first, then the
// check, then the failure bookkeeping and delay.
func (a *Authenticator) run(ctx context.Context, remote, user, mech string, check func() error) error {
	delay, maxDelay, window, perIP, perIPUser := a.defaults()
	ipKey := IPKey(remote)
	// The NUL cannot occur in an address key; user names are opaque here.
	pairKey := ipKey + "\x00" + user
	log := a.Logger
	if log == nil {
		log = slog.Default()
	}

	a.mu.Lock()
	if a.byIP == nil {
		a.byIP, a.byIPUser = map[string]*record{}, map[string]*record{}
	}
	now := a.now()
	ipFails := recent(a.byIP, ipKey, now, window)
	pairFails := recent(a.byIPUser, pairKey, now, window)
	a.mu.Unlock()

	if ipFails >= perIP || pairFails >= perIPUser {
		log.Warn("authentication refused: rate limited", "remote", ipKey, "user", user, "ip_failures", ipFails, "ip_user_failures", pairFails)
		return ErrRateLimited
	}

	err := check()
	if err == nil {
		a.mu.Lock()
		delete(a.byIPUser, pairKey)
		a.mu.Unlock()
		log.Info("authenticated", "remote", ipKey, "user", user, "mech", mech)
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	a.mu.Lock()
	now = a.now()
	add(a.byIP, ipKey, now)
	add(a.byIPUser, pairKey, now)
	n := len(a.byIP[ipKey].failures)
	a.prune(now, window)
	a.mu.Unlock()
	log.Warn("authentication failed", "remote", ipKey, "user", user, "mech", mech, "reason", reason(err))

	// The delay is served here, after the check's slot is released.
	d := delay
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	if d > maxDelay {
		d = maxDelay
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if !isAuthFailure(err) {
		return err
	}
	return ErrFailed
}

// check runs the Checker in one of the fairly shared slots.
func (a *Authenticator) check(ctx context.Context, ipKey string, ipFails int, user, password string) error {
	sl := a.checkSlots()
	if err := sl.acquire(ctx, ipKey, ipFails); err != nil {
		return err
	}
	defer sl.release(ipKey)
	return a.Checker.Authenticate(ctx, user, password)
}

func (a *Authenticator) checkSlots() *slots {
	a.slotsOnce.Do(func() {
		n := a.MaxConcurrent
		if n <= 0 {
			n = 2 * runtime.GOMAXPROCS(0)
		}
		a.slots = newSlots(n)
	})
	return a.slots
}

// isAuthFailure tells a wrong password or unknown user from an internal
// failure (the database could not be read), which is not the client's fault.
func isAuthFailure(err error) bool {
	return errors.Is(err, state.ErrNoAccount) || errors.Is(err, state.ErrBadPassword) || errors.Is(err, ErrLocked)
}

func reason(err error) string {
	switch {
	case errors.Is(err, state.ErrNoAccount):
		return "unknown user"
	case errors.Is(err, state.ErrBadPassword):
		return "wrong password"
	case errors.Is(err, ErrLocked):
		return err.Error()
	}
	return err.Error()
}

func recent(m map[string]*record, key string, now time.Time, window time.Duration) int {
	r := m[key]
	if r == nil {
		return 0
	}
	n := 0
	for _, t := range r.failures {
		if now.Sub(t) < window {
			n++
		}
	}
	return n
}

func add(m map[string]*record, key string, now time.Time) {
	r := m[key]
	if r == nil {
		r = &record{}
		m[key] = r
	}
	r.failures = append(r.failures, now)
	if len(r.failures) > 64 {
		r.failures = r.failures[len(r.failures)-64:]
	}
}

// prune forgets records with no failure inside the window, so the maps do
// not grow without bound under a spray of user names.
func (a *Authenticator) prune(now time.Time, window time.Duration) {
	if len(a.byIP)+len(a.byIPUser) < 4096 {
		return
	}
	for _, m := range []map[string]*record{a.byIP, a.byIPUser} {
		for k := range m {
			if recent(m, k, now, window) == 0 {
				delete(m, k)
			}
		}
	}
}

// Result applies the rate limits and failure delay to an authentication
// done elsewhere (SASL GSSAPI: the ticket was checked by the server):
// ErrRateLimited when the address (or address and user) is locked out,
// nil when err is nil, else the failure is counted, the delay served,
// and ErrFailed returned. user may be "" when the exchange failed before
// naming one.
func (a *Authenticator) Result(ctx context.Context, remote, user, mech string, err error) error {
	return a.run(ctx, remote, user, mech, func() error {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrLocked, err)
		}
		return nil
	})
}
