// Package spool appends messages to, and locks, the old UW-IMAP mbox
// spool (/var/mail/USER) the way c-client and the Debian delivery agents
// do, so that the old IMAP server, procmail, mutt and mailmig can share the
// file during the dual-delivery window.
//
// Implementation notes:
//   - Locking takes, in this order: the dot-lock USER.lock beside the spool
//     file (holding our PID: a temporary file hard-linked to the name, or
//     O_CREAT|O_EXCL where hard links are not supported), an exclusive
//     flock(2) on the spool file, and an exclusive OFD fcntl(2) write lock
//     on it (conflicts with classic POSIX locks of procmail/postfix, but is
//     owned by the open file, so closing another descriptor of the same
//     file in this process does not drop it). Locks are released in the
//     reverse order.
//   - A dot-lock whose mtime is older than StaleAfter (5 minutes, as in
//     c-client's LOCKTIMEOUT) is stale and removed. So is one that holds
//     the PID of a process that no longer exists on this host (as
//     Debian's liblockfile judges it), so a delivery or runner killed with
//     SIGKILL does not hold up mail for five minutes. A holder that keeps
//     the lock longer (the converter reading a large INBOX) refreshes the
//     mtime so it never looks stale.
//   - An append writes the whole From_-framed message with one pwrite at
//     the old end of file, then fsyncs. On any error the file is truncated
//     back to its old size and a TemporaryError is returned, so the MTA
//     retries: a half-written message is never left behind.
//   - Before an append the dot-lock records the spool's size on a second
//     line; whoever breaks the lock of a holder that died (kill -9) then
//     truncates the spool back to it, so a partial message never stays.
//   - Body lines starting "From " are quoted ">From " (mboxo, as UW-IMAP's
//     tmail and Debian's procmail do); CRLF line ends become LF.
package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultStaleAfter is c-client's LOCKTIMEOUT: an older dot-lock is stale.
const DefaultStaleAfter = 5 * time.Minute

// DefaultLockTimeout is how long Lock waits for a busy spool by default.
const DefaultLockTimeout = 60 * time.Second

// ErrLockTimeout is returned (inside a TemporaryError) when the spool stays
// locked by someone else for longer than the lock timeout.
var ErrLockTimeout = errors.New("spool: timed out waiting for the lock")

// TemporaryError marks a failure after which nothing was changed and the
// caller should retry later (EX_TEMPFAIL for an MTA).
type TemporaryError struct{ Err error }

func (e *TemporaryError) Error() string { return e.Err.Error() }
func (e *TemporaryError) Unwrap() error { return e.Err }

// Temporary reports true; it lets callers test with an interface.
func (e *TemporaryError) Temporary() bool { return true }

// IsTemporary reports whether err is (or wraps) a TemporaryError.
func IsTemporary(err error) bool {
	var t *TemporaryError
	return errors.As(err, &t)
}

// Options tune locking. The zero value gives the defaults.
type Options struct {
	// StaleAfter is the age after which a dot-lock is broken
	// (DefaultStaleAfter when 0).
	StaleAfter time.Duration
	// Timeout bounds the wait for a busy lock (DefaultLockTimeout when 0).
	Timeout time.Duration
	// Create makes Lock create a missing spool file (mode 0600).
	Create bool
	// Owner, if set, says who a created spool file belongs to: as
	// Postfix's local(8) and UW-IMAP make it, the user and group mail,
	// mode 0600. When the file cannot be given to them (the process may
	// not chown), it is removed again and Lock fails: a spool its user
	// cannot read is worse than mail that waits in the MTA's queue.
	Owner func() (uid, gid int, err error)
	// NoFsync skips fsync (tests and benchmarks only).
	NoFsync bool
	// Logger receives stale-lock and retry messages (slog.Default if nil).
	Logger *slog.Logger
	// Now is the clock used to judge staleness (time.Now if nil).
	Now func() time.Time
}

func (o *Options) staleAfter() time.Duration {
	if o.StaleAfter > 0 {
		return o.StaleAfter
	}
	return DefaultStaleAfter
}

func (o *Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultLockTimeout
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) log() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Locked is a spool file held under the dot-lock and both advisory locks.
// Read it with File (ReadAt is safe); call Unlock exactly once.
type Locked struct {
	path     string
	lockPath string
	f        *os.File
	acquired time.Time

	stop     chan struct{}
	done     chan struct{}
	unlocked sync.Once
}

// Path returns the spool file's path.
func (l *Locked) Path() string { return l.path }

// File returns the open spool file (read-write).
func (l *Locked) File() *os.File { return l.f }

// Held returns how long the lock has been held so far.
func (l *Locked) Held() time.Duration { return time.Since(l.acquired) }

// LockPath returns the dot-lock name for a spool file: "PATH.lock".
func LockPath(path string) string { return path + ".lock" }

// Lock locks the spool file at path for exclusive use (dot-lock, flock,
// OFD fcntl lock), waiting up to opts.Timeout. A missing file is created
// only with opts.Create; otherwise the error wraps fs.ErrNotExist. While
// held, the dot-lock's mtime is refreshed so long readers never look stale.
func Lock(ctx context.Context, path string, opts Options) (*Locked, error) {
	deadline := time.Now().Add(opts.timeout())
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	lockPath := LockPath(path)
	recovered, err := dotLock(ctx, lockPath, &opts)
	if err != nil {
		return nil, err
	}
	flags := os.O_RDWR
	if opts.Create {
		flags |= os.O_CREATE
	}
	created := false
	var f *os.File
	if opts.Create && opts.Owner != nil {
		// Learn whether this call creates the file (under the dot-lock).
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			created = true
		} else if errors.Is(err, fs.ErrExist) {
			f, err = os.OpenFile(path, os.O_RDWR, 0o600)
		}
	} else {
		f, err = os.OpenFile(path, flags, 0o600)
	}
	if err == nil && created {
		if cerr := giveSpool(f, opts.Owner); cerr != nil {
			f.Close()
			os.Remove(path)
			os.Remove(lockPath)
			return nil, &TemporaryError{fmt.Errorf("spool: create %s: %w", path, cerr)}
		}
	}
	if err != nil {
		os.Remove(lockPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("spool: open %s: %w", path, err)
		}
		return nil, &TemporaryError{fmt.Errorf("spool: open %s: %w", path, err)}
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		// A FIFO or device is never a mailbox: writing would block or
		// vanish, reading would never end.
		f.Close()
		os.Remove(lockPath)
		if err == nil {
			err = fmt.Errorf("spool: %s is not a regular file (%s)", path, st.Mode().Type())
		}
		return nil, &TemporaryError{err}
	}
	if err := advisoryLock(ctx, f); err != nil {
		f.Close()
		os.Remove(lockPath)
		return nil, &TemporaryError{fmt.Errorf("spool: lock %s: %w", path, err)}
	}
	if recovered >= 0 {
		if fi, err := f.Stat(); err == nil && fi.Size() > recovered {
			if err := f.Truncate(recovered); err != nil {
				unlockFile(f)
				f.Close()
				os.Remove(lockPath)
				return nil, &TemporaryError{fmt.Errorf("spool: truncate %s back to byte %d after a killed append: %w", path, recovered, err)}
			}
			if !opts.NoFsync {
				f.Sync()
			}
			opts.log().Warn("spool: truncated the partial append of a killed process", "path", path, "from", fi.Size(), "to", recovered)
		}
	}
	l := &Locked{path: path, lockPath: lockPath, f: f, acquired: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.refresh(opts.staleAfter() / 3)
	return l, nil
}

// refresh touches the dot-lock periodically until Unlock.
func (l *Locked) refresh(every time.Duration) {
	defer close(l.done)
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			now := time.Now()
			os.Chtimes(l.lockPath, now, now)
		}
	}
}

// Unlock releases the locks in reverse order and closes the file.
func (l *Locked) Unlock() error {
	var err error
	l.unlocked.Do(func() {
		close(l.stop)
		<-l.done
		unlockFile(l.f)
		if cerr := l.f.Close(); cerr != nil {
			err = fmt.Errorf("spool: close %s: %w", l.path, cerr)
		}
		if rerr := os.Remove(l.lockPath); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("spool: remove %s: %w", l.lockPath, rerr)
		}
	})
	return err
}

// unlockFile drops the advisory locks on f.
func unlockFile(f *os.File) {
	fd := int(f.Fd())
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0}
	unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
	unix.Flock(fd, unix.LOCK_UN)
}

// backoff returns the sleep before attempt n (capped, so waits stay short).
func backoff(n int) time.Duration {
	d := time.Millisecond << min(n, 6) // 1ms .. 64ms
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// dotLock creates lockPath with O_EXCL, breaking it when stale.
//
// It returns the spool size that a dead holder recorded before it began
// appending (-1 if none): the caller truncates a longer file back to it.
func dotLock(ctx context.Context, lockPath string, opts *Options) (int64, error) {
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	recovered := int64(-1)
	// The lock appears with its content already in place: a temporary
	// file holding our PID is hard-linked to the lock name (atomic, fails
	// if the name exists; liblockfile's way), so a process killed while
	// taking the lock never leaves an empty lock nobody can judge.
	tmp := fmt.Sprintf("%s.%d.%d", lockPath, os.Getpid(), time.Now().UnixNano())
	if err := os.WriteFile(tmp, pid, 0o644); err != nil {
		return -1, &TemporaryError{fmt.Errorf("spool: create %s: %w", tmp, err)}
	}
	defer os.Remove(tmp)
	useLink := true
	for n := 0; ; n++ {
		var err error
		if useLink {
			err = os.Link(tmp, lockPath)
			if err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrNotExist) {
				useLink = false // no hard links here: O_EXCL
				continue
			}
		} else {
			var f *os.File
			f, err = os.OpenFile(lockPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err == nil {
				_, werr := f.Write(pid)
				cerr := f.Close()
				if werr != nil || cerr != nil {
					os.Remove(lockPath)
					return -1, &TemporaryError{fmt.Errorf("spool: write %s: %w", lockPath, errors.Join(werr, cerr))}
				}
			}
		}
		if err == nil {
			return recovered, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return -1, &TemporaryError{fmt.Errorf("spool: create %s: %w", lockPath, err)}
		}
		if ok, size := breakStale(lockPath, opts); ok {
			if size >= 0 {
				recovered = size
			}
			continue
		}
		if err := sleep(ctx, backoff(n)); err != nil {
			return -1, &TemporaryError{fmt.Errorf("spool: %s: %w (%w)", lockPath, ErrLockTimeout, err)}
		}
	}
}

// breakStale removes lockPath when its mtime is older than StaleAfter. It
// re-checks the inode just before removing, so a lock that another breaker
// already replaced is left alone (the window that remains is the same as
// c-client's). For a lock whose holder is gone it also returns the spool
// size the holder recorded before appending (-1 if none).
func breakStale(lockPath string, opts *Options) (bool, int64) {
	fi, err := os.Stat(lockPath)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist), -1 // vanished: retry at once
	}
	age := opts.now().Sub(fi.ModTime())
	dead, size, holder := holderDead(lockPath)
	if age <= opts.staleAfter() && !dead {
		return false, -1
	}
	fi2, err := os.Stat(lockPath)
	if err != nil || !os.SameFile(fi, fi2) || !fi2.ModTime().Equal(fi.ModTime()) {
		return err != nil, -1
	}
	if err := os.Remove(lockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, -1
	}
	opts.log().Warn("spool: broke stale dot-lock", "lock", lockPath, "age", age.Round(time.Second), "holder_gone", dead)
	if !dead {
		size = -1
	} else {
		// The dead holder's temporary link source, if it was killed
		// before removing it.
		if left, _ := filepath.Glob(fmt.Sprintf("%s.%d.*", lockPath, holder)); len(left) > 0 {
			for _, p := range left {
				os.Remove(p)
			}
		}
	}
	return true, size
}

// holderDead reports whether the dot-lock names (on its first line) the
// PID of a process that does not exist, and the spool size recorded on
// its second line by an append in progress (-1 if none). Locks without a
// PID are judged by age only.
func holderDead(lockPath string) (bool, int64, int) {
	b, err := os.ReadFile(lockPath)
	if err != nil {
		return false, -1, 0
	}
	pid, size, ok := parseLock(b)
	if !ok || pid == os.Getpid() || !errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
		return false, -1, 0
	}
	return true, size, pid
}

// parseLock reads a dot-lock's content: a PID on the first line and,
// optionally, the spool size before an append on the second (-1 if
// absent). ok is false for anything else (c-client's or an empty lock).
func parseLock(b []byte) (pid int, size int64, ok bool) {
	if len(b) > 64 {
		return 0, -1, false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, -1, false
	}
	size = -1
	if len(lines) > 1 {
		if n, err := strconv.ParseInt(strings.TrimSpace(lines[1]), 10, 64); err == nil && n >= 0 {
			size = n
		}
	}
	return pid, size, true
}

// recordSize notes in the dot-lock the spool's size before an append, so
// that if this process dies mid-append the next locker truncates the
// partial message away (the MTA, never told of success, retries).
func (l *Locked) recordSize(size int64) {
	writeLock(l.lockPath, strconv.Itoa(os.Getpid())+"\n"+strconv.FormatInt(size, 10)+"\n")
}

// advisoryLock takes flock(LOCK_EX) and an OFD fcntl write lock on f,
// polling until ctx ends.
func advisoryLock(ctx context.Context, f *os.File) error {
	fd := int(f.Fd())
	for n := 0; ; n++ {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("flock: %w", err)
		}
		if err := sleep(ctx, backoff(n)); err != nil {
			return fmt.Errorf("flock: %w (%w)", ErrLockTimeout, err)
		}
	}
	for n := 0; ; n++ {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
		err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.EINVAL) {
			// No OFD locks (old kernel or odd filesystem): the dot-lock
			// and flock still exclude every cooperating writer.
			return nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINTR) {
			unix.Flock(fd, unix.LOCK_UN)
			return fmt.Errorf("fcntl: %w", err)
		}
		if err := sleep(ctx, backoff(n)); err != nil {
			unix.Flock(fd, unix.LOCK_UN)
			return fmt.Errorf("fcntl: %w (%w)", ErrLockTimeout, err)
		}
	}
}

// giveSpool makes a new spool file the user's: owner, group, mode 0600
// (the directory's setgid bit may have set another group).
func giveSpool(f *os.File, owner func() (int, int, error)) error {
	uid, gid, err := owner()
	if err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	// The mode first: once the file is the user's, only they may change it.
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("give it to uid %d gid %d as local(8) would (this needs CAP_CHOWN, see docs/deploying.md): %w", uid, gid, err)
	}
	return nil
}
