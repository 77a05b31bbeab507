package auth

// Password sources (issue 10): the accounts table, crypt(3) hashes from a
// shadow or passwd-file, and the Kerberos KDC, asked in a configured
// order. The first source that knows the user decides; when none does,
// the chain spends one dummy check so an unknown user costs what a wrong
// password costs.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"mailmig/server/auth/pwfile"
	"mailmig/server/auth/pwhash"
	"mailmig/state"
)

// ErrUnknownUser is what a Source returns for a user it does not know;
// the chain then asks the next one.
var ErrUnknownUser = errors.New("auth: user unknown to this source")

// ErrLocked is returned for a known user who can never log in here
// (locked or expired account, empty or unsupported hash).
var ErrLocked = errors.New("auth: account locked")

// Source is one place passwords are checked.
type Source interface {
	// Name is the source's configuration name ("accounts", "crypt",
	// "kerberos").
	Name() string
	// Verify checks user's password: nil, ErrUnknownUser,
	// state.ErrBadPassword, ErrLocked, or an internal error. A known
	// user costs a real check whatever the outcome; an unknown one may
	// return at once (the chain equalises).
	Verify(ctx context.Context, user, password string) error
	// Status tells, without a password, whether the source knows the
	// user and whether they could log in (the runner's check before the
	// move).
	Status(ctx context.Context, user string) (known, canLogin bool, reason string, err error)
}

// dummier is a Source that can spend the time of one failed check.
type dummier interface {
	Dummy(password string)
}

// Chain asks Sources in order; it is the Authenticator's Checker.
type Chain struct {
	Sources []Source
	// OnSuccess, if set, runs after a successful check (the rehash into
	// accounts). Its error is logged, never fails the login.
	OnSuccess func(ctx context.Context, source, user, password string) error
	Logger    *slog.Logger
}

// Authenticate implements Checker.
func (c *Chain) Authenticate(ctx context.Context, user, password string) error {
	for _, s := range c.Sources {
		err := s.Verify(ctx, user, password)
		if errors.Is(err, ErrUnknownUser) {
			continue
		}
		if err == nil && c.OnSuccess != nil {
			if herr := c.OnSuccess(ctx, s.Name(), user, password); herr != nil && c.Logger != nil {
				c.Logger.Warn("after login", "source", s.Name(), "user", user, "err", herr)
			}
		}
		if err != nil && !errors.Is(err, state.ErrBadPassword) {
			// Locked accounts and internal errors say which source.
			return fmt.Errorf("%s: %w", s.Name(), err)
		}
		return err
	}
	c.dummy(password)
	return fmt.Errorf("%w: %s", state.ErrNoAccount, user)
}

// dummy spends the cost of one check of the first source that has a
// cost of its own.
func (c *Chain) dummy(password string) {
	for _, s := range c.Sources {
		if d, ok := s.(dummier); ok {
			d.Dummy(password)
			return
		}
	}
}

// LoginStatus is the answer to "can this user log in?".
type LoginStatus struct {
	// Source is the source that decides for the user ("" when none
	// knows them).
	Source   string
	CanLogin bool
	// Reason explains a refusal ("no account in any password source",
	// "account locked in /etc/shadow").
	Reason string
}

// Status asks the sources in order whether user could log in: the first
// that knows the user decides, as for a login.
func (c *Chain) Status(ctx context.Context, user string) (LoginStatus, error) {
	for _, s := range c.Sources {
		known, ok, reason, err := s.Status(ctx, user)
		if err != nil {
			return LoginStatus{}, fmt.Errorf("%s: %w", s.Name(), err)
		}
		if known {
			return LoginStatus{Source: s.Name(), CanLogin: ok, Reason: reason}, nil
		}
	}
	var names []string
	for _, s := range c.Sources {
		names = append(names, s.Name())
	}
	return LoginStatus{Reason: "no account in any password source (" + strings.Join(names, ", ") + ")"}, nil
}

// AccountsSource is mailmig's own table in state: argon2id and bcrypt
// hashes, and crypt(3) hashes imported from a shadow file.
type AccountsSource struct {
	DB *state.DB
}

func (AccountsSource) Name() string { return "accounts" }

func (s AccountsSource) Verify(ctx context.Context, user, password string) error {
	hash, err := s.DB.PasswordHash(ctx, user)
	if errors.Is(err, state.ErrNoAccount) {
		return ErrUnknownUser
	}
	if err != nil {
		return err
	}
	return checkHash(hash, password)
}

func (AccountsSource) Dummy(password string) { state.DummyCheck(password) }

func (s AccountsSource) Status(ctx context.Context, user string) (bool, bool, string, error) {
	hash, err := s.DB.PasswordHash(ctx, user)
	if errors.Is(err, state.ErrNoAccount) {
		return false, false, "", nil
	}
	if err != nil {
		return false, false, "", err
	}
	if pwhash.Locked(hash) {
		return true, false, "account locked in mailmig's accounts", nil
	}
	return true, true, "", nil
}

// checkHash verifies against any hash an account or a crypt file holds.
func checkHash(hash, password string) error {
	if strings.HasPrefix(hash, "$argon2id$") {
		return state.CheckPassword(hash, password)
	}
	err := pwhash.Verify(hash, password)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pwhash.ErrMismatch):
		return state.ErrBadPassword
	case errors.Is(err, pwhash.ErrLocked):
		state.DummyCheck(password)
		return fmt.Errorf("%w (locked or empty hash)", ErrLocked)
	}
	// An unsupported or malformed hash: the user cannot log in, and the
	// log says why.
	state.DummyCheck(password)
	return fmt.Errorf("%w (%v)", ErrLocked, err)
}

// CryptSource reads crypt(3) hashes from a shadow(5) file or a dovecot
// passwd-file. The file is read again when its size or modification time
// changes; lines it cannot read are logged (file, line, byte offset) and
// their users are unknown to the source.
type CryptSource struct {
	Path   string
	Format pwfile.Format
	Logger *slog.Logger
	Now    func() time.Time

	mu      sync.Mutex
	stamp   string
	entries map[string]pwfile.Entry
	dummy   string
}

// NewCryptSource reads path once, so a missing or unreadable file is a
// configuration error at start.
func NewCryptSource(path string, format pwfile.Format, log *slog.Logger) (*CryptSource, error) {
	s := &CryptSource{Path: path, Format: format, Logger: log}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (*CryptSource) Name() string { return "crypt" }

func (s *CryptSource) load() (map[string]pwfile.Entry, error) {
	fi, err := os.Stat(s.Path)
	if err != nil {
		return nil, fmt.Errorf("crypt source: %w", err)
	}
	stamp := fmt.Sprintf("%d/%d/%d", fi.Size(), fi.ModTime().UnixNano(), fi.Sys())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries != nil && stamp == s.stamp {
		return s.entries, nil
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, fmt.Errorf("crypt source: %w", err)
	}
	defer f.Close()
	entries, bad, err := pwfile.Parse(f, s.Path, s.Format)
	if err != nil {
		return nil, fmt.Errorf("crypt source: %w", err)
	}
	for _, b := range bad {
		if s.Logger != nil {
			s.Logger.Warn("crypt source: line not read", "file", b.File, "line", b.Line, "offset", b.Offset, "user", b.User, "problem", b.Msg)
		}
	}
	s.entries, s.stamp = entries, stamp
	s.dummy = dummyLike(entries)
	return entries, nil
}

// dummyLike returns a hash with the settings most users of the file have
// (scheme and cost, not their salt), so that an unknown user costs what a
// typical wrong password costs.
func dummyLike(entries map[string]pwfile.Entry) string {
	count := map[string]int{}
	best, bestN := "", 0
	for _, e := range entries {
		if pwhash.Locked(e.Hash) || pwhash.Scheme(e.Hash) == "" {
			continue
		}
		h := e.Hash
		if i := strings.LastIndexByte(h, '$'); i > 0 {
			h = h[:i] // the setting: scheme, cost and salt
		}
		key := pwhash.Scheme(h) + costOf(h)
		count[key]++
		if count[key] > bestN || (count[key] == bestN && h < best) {
			best, bestN = h, count[key]
		}
	}
	return best
}

// costOf is the part of a setting that sets its cost.
func costOf(setting string) string {
	parts := strings.Split(setting, "$")
	if len(parts) > 2 {
		return parts[2]
	}
	return ""
}

func (s *CryptSource) Verify(ctx context.Context, user, password string) error {
	entries, err := s.load()
	if err != nil {
		return err
	}
	e, ok := entries[user]
	if !ok {
		return ErrUnknownUser
	}
	if e.Expired(s.now()) {
		s.Dummy(password)
		return fmt.Errorf("%w: expired %s", ErrLocked, e.Expire.Format("2006-01-02"))
	}
	return checkHash(e.Hash, password)
}

func (s *CryptSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Dummy verifies password against a hash like the file's usual one.
func (s *CryptSource) Dummy(password string) {
	s.mu.Lock()
	d := s.dummy
	s.mu.Unlock()
	if d == "" {
		state.DummyCheck(password)
		return
	}
	_ = pwhash.Verify(d+"$", password)
}

func (s *CryptSource) Status(ctx context.Context, user string) (bool, bool, string, error) {
	entries, err := s.load()
	if err != nil {
		return false, false, "", err
	}
	e, ok := entries[user]
	if !ok {
		return false, false, "", nil
	}
	switch {
	case e.Expired(s.now()):
		return true, false, fmt.Sprintf("account expired in %s (line %d)", s.Path, e.Line), nil
	case pwhash.Locked(e.Hash):
		return true, false, fmt.Sprintf("account locked or without password in %s (line %d)", s.Path, e.Line), nil
	case pwhash.Scheme(e.Hash) == "":
		return true, false, fmt.Sprintf("unsupported hash scheme in %s (line %d)", s.Path, e.Line), nil
	}
	return true, true, "", nil
}

// Lookup returns the entry for user (mailmig user import).
func (s *CryptSource) Entries() (map[string]pwfile.Entry, error) {
	return s.load()
}

// Rehash returns an OnSuccess hook that keeps the password the user just
// proved in mailmig's accounts: a user of the crypt source gets an
// account (argon2id) if they have none, and an account still holding an
// imported crypt(3) or bcrypt hash is upgraded to argon2id. Kerberos
// passwords are never copied: they change at the KDC.
func Rehash(db *state.DB) func(ctx context.Context, source, user, password string) error {
	return func(ctx context.Context, source, user, password string) error {
		switch source {
		case "crypt":
			if _, err := db.PasswordHash(ctx, user); err == nil {
				return nil // never overwrite an existing account's password
			} else if !errors.Is(err, state.ErrNoAccount) {
				return err
			}
			err := db.AddAccount(ctx, user, password, -1, -1)
			if err != nil && strings.Contains(err.Error(), "already exists") {
				return nil // a concurrent login did it
			}
			return err
		case "accounts":
			hash, err := db.PasswordHash(ctx, user)
			if err != nil || strings.HasPrefix(hash, "$argon2id$") {
				return err
			}
			return db.SetPassword(ctx, user, password)
		}
		return nil
	}
}
