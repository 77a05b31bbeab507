package mailstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// staleLockAge is when dovecot considers dovecot-uidlist.lock stale
// (MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT, two minutes).
const staleLockAge = 2 * time.Minute

// emptyLockAge is when an empty lock file with no flock counts as left by
// a process killed right after creating it.
const emptyLockAge = 5 * time.Second

// procLocks serialises the goroutines of this process per lock file, so
// they queue on a channel instead of spinning on O_EXCL. Keyed by the
// lock's absolute path: a process-wide fact, like the file itself.
var procLocks sync.Map // string → chan struct{}

// dotlock is dovecot's dot-lock: TARGET.lock created with O_EXCL; while
// it exists nobody else writes TARGET. While held, the file also carries
// an flock and holds "mailmig:PID:HOST", so another mailmig process can
// tell a lock left by a dead process without waiting for the two-minute
// staleness. (Dovecot writes the new TARGET into its lock file and
// renames it; we write a separate temporary file so the marker stays.)
type dotlock struct {
	target string
	path   string
	f      *os.File
	sem    chan struct{}
	fsync  bool
}

func lockSem(path string) chan struct{} {
	v, _ := procLocks.LoadOrStore(path, make(chan struct{}, 1))
	return v.(chan struct{})
}

// acquireLock takes target's dot-lock, waiting up to timeout.
func acquireLock(ctx context.Context, target string, timeout time.Duration, host string, fsync bool) (*dotlock, error) {
	path := target + ".lock"
	sem := lockSem(path)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
	case <-timer.C:
		return nil, fmt.Errorf("lock %s: %w (held in this process)", path, ErrLockTimeout)
	}
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		f, err := linkLock(path, host)
		if err != nil && !errors.Is(err, os.ErrExist) {
			f, err = createLock(path, host)
		}
		if err == nil {
			return &dotlock{target: target, path: path, f: f, sem: sem, fsync: fsync}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			<-sem
			return nil, err
		}
		if breakStaleLock(path, host) {
			continue
		}
		if time.Now().After(deadline) {
			<-sem
			return nil, fmt.Errorf("lock %s: %w after %s", path, ErrLockTimeout, timeout)
		}
		select {
		case <-ctx.Done():
			<-sem
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(wait):
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// createLock makes the lock file path with O_EXCL, flocks it and writes
// the marker; os.ErrExist (wrapped) if it exists.
func createLock(path, host string) (*os.File, error) {
	f, err := openFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("lock %s: flock: %w", path, err)
	}
	if _, err := fmt.Fprintf(f, "mailmig:%d:%s\n", os.Getpid(), host); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// linkLock takes the lock path by hard-linking this process's lock inode
// for it, DIR/tmp/mailmig-lock.NAME.lock.PID.HOST, to it: link(2) is as
// exclusive as O_EXCL (dovecot's dotlocks use either; link is the NFS-safe
// one) but allocates and frees no inode per lock. A create and unlink per
// delivery costs a fresh inode each time, and ext4 without a journal skips
// every inode of the group freed in the last 5 s (305 s while its inode
// table block is dirty) to find one, so under steady delivery each create
// grew to hundreds of microseconds. One lock inode per lock file, so
// locks of one directory can be held together.
// The lock inode keeps the "mailmig:PID:HOST" marker; it is flocked
// before it is linked and until after it is unlinked, so a lock file with
// this marker and no flock is a dead holder's, as with createLock. Its
// mtime is set at each take, so the two-minute staleness rule of dovecot
// and of breakStaleLock counts from the take. Any failure but EEXIST
// makes the caller fall back to createLock.
func linkLock(path, host string) (*os.File, error) {
	spare := filepath.Join(filepath.Dir(path), "tmp", "mailmig-lock."+filepath.Base(path)+"."+strconv.Itoa(os.Getpid())+"."+host)
	f, err := openFile(spare, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = makeSpare(spare, host)
	}
	if err != nil {
		return nil, err
	}
	// Another process probing a lock for staleness may hold the flock for
	// a moment; a few tries, then the O_EXCL way.
	for try := 0; ; try++ {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil || try == 3 {
			break
		}
		time.Sleep(time.Duration(try+1) * 100 * time.Microsecond)
	}
	if err == nil {
		now := time.Now()
		err = os.Chtimes(spare, now, now)
	}
	if err == nil {
		err = os.Link(spare, path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// makeSpare creates this process's lock inode in a tmp/ directory, and
// removes the ones of processes of this host that are gone.
func makeSpare(spare, host string) (*os.File, error) {
	f, err := openFile(spare, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(f, "mailmig:%d:%s\n", os.Getpid(), host); err != nil {
		f.Close()
		os.Remove(spare)
		return nil, err
	}
	dir := filepath.Dir(spare)
	names, _ := readNames(dir)
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, "mailmig-lock.")
		if !ok || !strings.HasSuffix(rest, "."+host) {
			continue
		}
		rest = strings.TrimSuffix(rest, "."+host) // NAME.lock.PID
		pid, err := strconv.Atoi(rest[strings.LastIndexByte(rest, '.')+1:])
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			os.Remove(filepath.Join(dir, n))
		}
	}
	return f, nil
}

// breakStaleLock removes path if it is older than staleLockAge, or if it
// was made by a mailmig process on this host that no longer holds its
// flock. It reports whether it removed the lock.
func breakStaleLock(path, host string) bool {
	f, err := os.Open(path)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false
	}
	age := time.Since(st.ModTime())
	stale := age > staleLockAge
	if !stale {
		buf := make([]byte, 128)
		n, _ := io.ReadFull(f, buf)
		parts := strings.SplitN(strings.TrimRight(string(buf[:n]), "\n"), ":", 3)
		if n == 0 && age > emptyLockAge {
			// Created but never marked: a mailmig process killed between
			// O_EXCL and writing its marker (dovecot writes into its
			// locks right away).
			stale = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
		} else if len(parts) == 3 && parts[0] == "mailmig" && parts[2] == host {
			if _, err := strconv.Atoi(parts[1]); err == nil &&
				syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
				stale = true // holder is gone: its flock died with it
			}
		}
	}
	if !stale {
		return false
	}
	cur, err := os.Stat(path)
	if err != nil || !os.SameFile(cur, st) {
		return false
	}
	return os.Remove(path) == nil
}

// release drops the lock without changing the target.
func (l *dotlock) release() {
	if l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
	<-l.sem
}

// replace writes data as the target's new content and releases the lock.
func (l *dotlock) replace(data []byte) error {
	return l.replaceFunc(func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// replaceFunc writes the target's new content and releases the lock. The
// content goes to TARGET.mailmig-tmp (one fixed name: only the lock holder
// writes it), is fsynced and renamed over TARGET; the lock file keeps its
// "mailmig:PID:HOST" marker until released, so a holder killed at any
// point leaves a lock that the next mailmig process recognises as dead.
func (l *dotlock) replaceFunc(write func(io.Writer) error) error {
	defer l.release()
	tmp := l.target + ".mailmig-tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	err = write(fh)
	if err == nil && l.fsync {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.target)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", l.target, err)
	}
	if l.fsync {
		return syncDir(filepath.Dir(l.target))
	}
	return nil
}

// syncDir fsyncs a directory so renames and creations in it are durable.
func syncDir(dir string) error {
	d, err := openFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
