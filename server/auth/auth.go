// Package auth checks passwords for every mailmig server (IMAP,
// submission, ManageSieve) against the accounts in state, and slows down
// guessing: each failure is answered after a delay, and an address or a
// user name with too many recent failures is refused outright for a while
// without even checking the password.
//
// What a client is told never says whether the user exists; what the log
// records never contains a password.
package auth

import (
	"context"
	"errors"
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
	// MaxFailures within Window lock out the address or user for the rest
	// of the window (defaults 10 per address, 20 per user, 15 minutes).
	MaxFailuresPerIP   int
	MaxFailuresPerUser int
	Window             time.Duration
	// MaxConcurrent bounds password checks running at once (default
	// 2×GOMAXPROCS): argon2id takes ~19 MB and a core per check, so a
	// flood of logins must queue rather than exhaust memory. Failure
	// delays are served outside this bound.
	MaxConcurrent int
	// Now is the clock (tests).
	Now func() time.Time

	semOnce sync.Once
	sem     chan struct{}

	mu     sync.Mutex
	byIP   map[string]*record
	byUser map[string]*record
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

func (a *Authenticator) defaults() (delay, maxDelay, window time.Duration, perIP, perUser int) {
	delay, maxDelay, window, perIP, perUser = a.FailDelay, a.MaxDelay, a.Window, a.MaxFailuresPerIP, a.MaxFailuresPerUser
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
	if perUser == 0 {
		perUser = 20
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
	delay, maxDelay, window, perIP, perUser := a.defaults()
	ipKey := IPKey(remote)
	log := a.Logger
	if log == nil {
		log = slog.Default()
	}

	a.mu.Lock()
	if a.byIP == nil {
		a.byIP, a.byUser = map[string]*record{}, map[string]*record{}
	}
	now := a.now()
	ipFails := recent(a.byIP, ipKey, now, window)
	userFails := recent(a.byUser, user, now, window)
	a.mu.Unlock()

	if ipFails >= perIP || userFails >= perUser {
		log.Warn("authentication refused: rate limited", "remote", ipKey, "user", user, "ip_failures", ipFails, "user_failures", userFails)
		return ErrRateLimited
	}

	err := a.check(ctx, user, password)
	if err == nil {
		a.mu.Lock()
		delete(a.byUser, user)
		a.mu.Unlock()
		log.Info("authenticated", "remote", ipKey, "user", user)
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	a.mu.Lock()
	add(a.byIP, ipKey, now)
	add(a.byUser, user, now)
	n := len(a.byIP[ipKey].failures)
	a.prune(now, window)
	a.mu.Unlock()
	log.Warn("authentication failed", "remote", ipKey, "user", user, "reason", reason(err))

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

// check runs the Checker within the concurrency bound.
func (a *Authenticator) check(ctx context.Context, user, password string) error {
	a.semOnce.Do(func() {
		n := a.MaxConcurrent
		if n <= 0 {
			n = 2 * runtime.GOMAXPROCS(0)
		}
		a.sem = make(chan struct{}, n)
	})
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.sem }()
	return a.Checker.Authenticate(ctx, user, password)
}

// isAuthFailure tells a wrong password or unknown user from an internal
// failure (the database could not be read), which is not the client's fault.
func isAuthFailure(err error) bool {
	return errors.Is(err, state.ErrNoAccount) || errors.Is(err, state.ErrBadPassword)
}

func reason(err error) string {
	switch {
	case errors.Is(err, state.ErrNoAccount):
		return "unknown user"
	case errors.Is(err, state.ErrBadPassword):
		return "wrong password"
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
	if len(a.byIP)+len(a.byUser) < 4096 {
		return
	}
	for _, m := range []map[string]*record{a.byIP, a.byUser} {
		for k := range m {
			if recent(m, k, now, window) == 0 {
				delete(m, k)
			}
		}
	}
}
