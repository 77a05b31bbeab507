package convert

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"mailmig/mailstore"
	"mailmig/migrate/mbox"
	"mailmig/migrate/spool"
)

// expect is what verification must find for one UID.
type expect struct {
	sum   [32]byte // SHA-256 of the bytes: the journal's identity
	check uint64   // fast checksum of the same bytes: what verify compares
	flags string   // sorted, joined by ' '
	size  int64
}

type converter struct {
	opts  Options
	log   *slog.Logger
	rep   *Report
	plan  *plan
	store *mailstore.Store
	// index counts the ContentHash of messages that no importer placed,
	// over all folders (dual delivery). nil when there are none.
	index map[string]int
	total int64
	// mu guards index and calls of Options.Progress, shared by
	// the workers converting folders in parallel.
	mu sync.Mutex
}

// takeIndexed removes one occurrence of h from idx and tells whether
// there was one.
func (c *converter) takeIndexed(idx map[string]int, h string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if idx[h] > 0 {
		idx[h]--
		return true
	}
	return false
}

func newConverter(opts Options) (*converter, error) {
	if opts.Maildir == "" {
		return nil, errors.New("convert: no Maildir given")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	return &converter{opts: opts, log: opts.Logger}, nil
}

func (c *converter) run(ctx context.Context) (*Report, error) {
	o := c.opts
	c.rep = &Report{Inbox: o.Inbox, FoldersDir: o.FoldersDir, Maildir: o.Maildir, DryRun: o.DryRun,
		Incremental: o.Incremental, Started: time.Now().UTC(), MaxFolderBytes: o.MaxFolderBytes}
	defer func() { c.rep.Finished = time.Now().UTC() }()
	p, err := makePlan(o)
	if err != nil {
		return c.rep, err
	}
	c.plan = p
	c.rep.Skipped = append(c.rep.Skipped, p.skipped...)
	c.rep.Unreadable = append(c.rep.Unreadable, p.unread...)
	c.rep.Renamings = append(append(c.rep.Renamings, p.renames...), p.subRens...)
	if p.inbox != nil {
		c.rep.InboxBytes = p.inbox.size
		c.total += p.inbox.size
	}
	for _, s := range p.folders {
		c.rep.FolderBytes += s.size
	}
	tooBig := o.MaxFolderBytes > 0 && c.rep.FolderBytes > o.MaxFolderBytes
	c.rep.TooBig = tooBig
	if !tooBig {
		c.total += c.rep.FolderBytes
	}
	if o.DryRun {
		if p.inbox != nil {
			c.rep.Folders = append(c.rep.Folders, FolderReport{Source: p.inbox.path, OldName: "INBOX", Name: "INBOX", SourceBytes: p.inbox.size})
		}
		for _, s := range p.folders {
			c.rep.Folders = append(c.rep.Folders, FolderReport{Source: s.path, OldName: s.oldName, Name: s.name, Renaming: s.ren, SourceBytes: s.size})
		}
		c.rep.Subscriptions = p.subs
		if tooBig {
			return c.rep, fmt.Errorf("%w: %d bytes of folders, limit %d", ErrTooBig, c.rep.FolderBytes, o.MaxFolderBytes)
		}
		return c.rep, nil
	}
	st, err := mailstore.Open(o.Maildir, mailstore.Options{CreateRoot: true, NoFsync: o.NoFsync, Hostname: o.Hostname, Logger: o.Logger, LockTimeout: storeLockTimeout})
	if err != nil {
		return c.rep, fmt.Errorf("convert: %w", err)
	}
	defer st.Close()
	c.store = st

	errs, fatal := c.convertAll(ctx, tooBig)
	if fatal != nil {
		return c.rep, fatal
	}
	if tooBig {
		for _, s := range p.folders {
			c.rep.Folders = append(c.rep.Folders, FolderReport{Source: s.path, OldName: s.oldName, Name: s.name, Renaming: s.ren,
				SourceBytes: s.size, Error: "not copied: folders exceed the size limit"})
		}
	}
	if err := c.subscriptions(); err != nil {
		return c.rep, err
	}
	c.rep.Verified = !o.NoVerify
	for _, f := range c.rep.Folders {
		c.rep.Messages += f.Messages
		c.rep.Bytes += f.Bytes
		if f.Error == "" && !f.Verified {
			c.rep.Verified = false
		}
	}
	if tooBig {
		return c.rep, fmt.Errorf("%w: %d bytes of folders, limit %d", ErrTooBig, c.rep.FolderBytes, o.MaxFolderBytes)
	}
	var other []error
	for _, err := range errs {
		var se *sourceError
		if errors.As(err, &se) && se.unreadable {
			c.rep.Unreadable = append(c.rep.Unreadable, Skipped{Path: se.path, Reason: errReason(se.err)})
			continue
		}
		other = append(other, err)
	}
	if len(c.rep.Unreadable) > 0 {
		// Unreadable files come first: they may hold mail.
		err := fmt.Errorf("%w: %s", ErrUnreadable, unreadableList(c.rep.Unreadable))
		if len(other) > 0 {
			err = fmt.Errorf("%w; %w: %w", err, ErrPartial, errors.Join(other...))
		}
		return c.rep, err
	}
	if len(other) > 0 {
		return c.rep, fmt.Errorf("%w: %w", ErrPartial, errors.Join(other...))
	}
	return c.rep, nil
}

// unreadableList is "PATH: REASON; PATH: REASON".
func unreadableList(list []Skipped) string {
	var b strings.Builder
	for i, u := range list {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(u.Path + ": " + u.Reason)
	}
	return b.String()
}

// isFatal tells errors that must stop the user (verification, context,
// the store) from a source file that could not be read.
func isFatal(err error) bool {
	var fe *mbox.FormatError
	if errors.As(err, &fe) {
		return false
	}
	var se *sourceError
	return !errors.As(err, &se)
}

// sourceError marks a problem with one source file (the rest goes on).
// unreadable is set when the file could not be read at all (open or
// read error, not a format problem); path names it.
type sourceError struct {
	err        error
	unreadable bool
	path       string
}

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// convertAll converts the INBOX (under the spool lock, which also covers
// building the dedup index) and, unless skipFolders, the folders, with
// Options.Workers folders at a time. It returns the errors of single
// sources and the first fatal error.
func (c *converter) convertAll(ctx context.Context, skipFolders bool) (errs []error, fatal error) {
	s := c.plan.inbox
	var inboxIn io.Reader
	var unlockOnce sync.Once
	unlock := func() {}
	if s != nil && !c.opts.NoInboxLock {
		l, err := spool.Lock(ctx, s.path, spool.Options{NoFsync: true, Logger: c.log})
		if errors.Is(err, fs.ErrPermission) {
			// The spool (or its directory, for the dot-lock) is not ours
			// to read: the user needs attention, not a retry.
			c.rep.Unreadable = append(c.rep.Unreadable, Skipped{Path: s.path, Reason: "cannot read the INBOX spool: " + errReason(err)})
			return nil, fmt.Errorf("%w: %s: %w", ErrUnreadable, s.path, err)
		}
		if err != nil {
			return nil, fmt.Errorf("convert: lock INBOX %s: %w", s.path, err)
		}
		unlock = func() {
			unlockOnce.Do(func() {
				held := l.Held()
				if err := l.Unlock(); err != nil {
					c.log.Warn("unlock INBOX", "path", s.path, "err", err)
				}
				c.rep.InboxLockHeld = held.Round(time.Millisecond).String()
				c.log.Info("INBOX lock released", "held", held)
			})
		}
		defer unlock()
		fi, err := l.File().Stat()
		if err != nil {
			return nil, fmt.Errorf("convert: stat INBOX %s: %w", s.path, err)
		}
		s.size = fi.Size()
		inboxIn = io.NewSectionReader(l.File(), 0, fi.Size())
	}
	if err := c.buildIndex(ctx); err != nil {
		return nil, err
	}
	if inboxIn != nil {
		// Snapshot the spool into an anonymous file of the new store
		// and let go of the lock: the index and the snapshot are
		// consistent (both taken under the lock), and the old server and
		// delivery wait only for the copy, not for the conversion.
		snap, err := c.snapshotInbox(inboxIn, s.size)
		if err != nil {
			return nil, err
		}
		defer snap.Close()
		inboxIn = io.NewSectionReader(snap, 0, s.size)
		unlock()
	}
	var jobs []*source
	if s != nil {
		jobs = append(jobs, s)
	}
	if !skipFolders {
		jobs = append(jobs, c.plan.folders...)
	}
	workers := c.opts.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]FolderReport, len(jobs))
	jobErrs := make([]error, len(jobs))
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for _, i := range startOrder(jobs) {
		src := jobs[i]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var in io.Reader
			if src.inbox {
				in = inboxIn
				defer unlock()
			}
			results[i], jobErrs[i] = c.convertSource(ctx, src, in)
			if jobErrs[i] != nil && isFatal(jobErrs[i]) {
				cancel()
			}
		}()
	}
	wg.Wait()
	c.rep.Folders = append(c.rep.Folders, results...)
	for _, err := range jobErrs {
		if err == nil {
			continue
		}
		if isFatal(err) {
			if fatal == nil || errors.Is(fatal, context.Canceled) {
				fatal = err
			}
			continue
		}
		errs = append(errs, err)
	}
	return errs, fatal
}

// startOrder returns the indexes of jobs in the order to start them: the
// INBOX first (its snapshot is ready and clients look there first), then
// the largest sources first, so that a big folder does not start last and
// run alone on one core while the others are done (longest processing
// time first). Reports keep the plan's order.
func startOrder(jobs []*source) []int {
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ja, jb := jobs[order[a]], jobs[order[b]]
		if ja.inbox != jb.inbox {
			return ja.inbox
		}
		return ja.size > jb.size
	})
	return order
}

// DefaultWorkers is how many folders are converted at a time by default.
const DefaultWorkers = 4

// buildIndex hashes the messages of the store that no importer placed.
func (c *converter) buildIndex(ctx context.Context) error {
	infos, err := c.store.Folders()
	if err != nil {
		return fmt.Errorf("convert: list %s: %w", c.opts.Maildir, err)
	}
	targets := map[string]bool{}
	if c.plan.inbox != nil {
		targets["INBOX"] = true
	}
	for _, s := range c.plan.folders {
		targets[s.name] = true
	}
	idx := map[string]int{}
	for _, fi := range infos {
		var msgs []mailstore.MessageInfo
		if c.opts.Incremental || !targets[fi.Name] {
			// Nothing of ours is in a non-target folder; in incremental
			// mode every message counts.
			f, err := c.store.Folder(fi.Name)
			if err != nil {
				return fmt.Errorf("convert: folder %q: %w", fi.Name, err)
			}
			snap, err := f.Snapshot(ctx)
			if err != nil {
				return fmt.Errorf("convert: folder %q: %w", fi.Name, err)
			}
			msgs = snap.Messages
		} else {
			uv := committedUIDValidity(c.store, fi.Name)
			if uv == 0 {
				continue // created by an importer that never committed: nothing delivered yet
			}
			// A throw-away importer tells which messages no importer
			// placed; the conversion opens its own with the UIDVALIDITY
			// it decides on.
			im, err := c.store.Importer(fi.Name, uv)
			if err != nil {
				return fmt.Errorf("convert: importer %q: %w", fi.Name, err)
			}
			msgs = im.Others()
			if err := im.Abort(); err != nil {
				return fmt.Errorf("convert: importer %q: %w", fi.Name, err)
			}
		}
		for _, m := range msgs {
			h, err := hashFile(m.Path)
			if errors.Is(err, fs.ErrNotExist) {
				continue // expunged meanwhile: not in the store
			}
			if err != nil {
				return fmt.Errorf("convert: hash %s: %w", m.Path, err)
			}
			idx[h]++
		}
	}
	if len(idx) > 0 {
		c.index = idx
		c.log.Info("messages already in the new store", "count", len(idx))
	}
	return nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return HashReader(f)
}

// open returns the source's message stream (in, if given, is the locked
// INBOX).
func (c *converter) open(s *source, in io.Reader) (io.Reader, func(), error) {
	closeFn := func() {}
	if in == nil {
		f, err := os.Open(s.path) // read-only, never written
		if err != nil {
			return nil, nil, &sourceError{err: fmt.Errorf("open %s: %w", s.path, err), unreadable: true, path: s.path}
		}
		in, closeFn = f, func() { f.Close() }
	}
	if s.gz {
		zr, err := gzip.NewReader(in)
		if err != nil {
			closeFn()
			return nil, nil, &sourceError{err: fmt.Errorf("%s at byte 0: not gzip: %w", s.path, err)}
		}
		zr.Multistream(true)
		prev := closeFn
		in, closeFn = zr, func() { zr.Close(); prev() }
	}
	return in, closeFn, nil
}

// uidValidityFor returns the UIDVALIDITY the folder gets: the source's
// (what clients know; a killed run may have left a folder whose uidlist
// another opener gave a random one), else the target's if it has one (a
// rerun, or Prepare), else one derived from the source file's mtime.
func (c *converter) uidValidityFor(name string, src uint32, path string) uint32 {
	if src != 0 {
		return src
	}
	if uv := committedUIDValidity(c.store, name); uv != 0 {
		return uv
	}
	return newUIDValidity(path)
}

func newUIDValidity(path string) uint32 {
	uv := uint32(time.Now().Unix())
	if st, err := os.Stat(path); err == nil && st.ModTime().Unix() > 0 {
		uv = uint32(st.ModTime().Unix())
	}
	if uv == 0 {
		uv = 1
	}
	return uv
}

func flagKey(flags []string) string {
	var fs []string
	for _, f := range flags {
		if !strings.EqualFold(f, `\Recent`) {
			fs = append(fs, f)
		}
	}
	sort.Strings(fs)
	return strings.Join(fs, " ")
}

// countingHash hashes and counts what passes through: SHA-256 for the
// journal (a message's identity across runs, which must not collide even
// for crafted mail) and a fast checksum for the verification pass.
type countingHash struct {
	h     hash.Hash
	check maphash.Hash
	n     int64
}

func (w *countingHash) Write(p []byte) (int, error) {
	w.h.Write(p)
	w.check.Write(p)
	w.n += int64(len(p))
	return len(p), nil
}

// checkSeed seeds the verification checksums of this process.
var checkSeed = maphash.MakeSeed()

func newCountingHash() *countingHash {
	w := &countingHash{h: sha256.New()}
	w.check.SetSeed(checkSeed)
	return w
}

func (w *countingHash) reset() { w.h.Reset(); w.check.Reset(); w.n = 0 }

func (w *countingHash) sum() (s [32]byte) {
	w.h.Sum(s[:0])
	return s
}

// committedUIDValidity returns the UIDVALIDITY of a folder that has a
// dovecot-uidlist, or 0 (no folder, or one no import has committed to).
// It looks for the file before opening the folder, since opening a
// folder creates a uidlist.
func committedUIDValidity(st *mailstore.Store, name string) uint32 {
	dir, err := mailstore.EncodeFolderName(name)
	if err != nil {
		return 0
	}
	if _, err := os.Stat(filepath.Join(st.Root(), dir, "dovecot-uidlist")); err != nil {
		return 0
	}
	f, err := st.Folder(name)
	if err != nil {
		return 0
	}
	return f.UIDValidity()
}

// storeLockTimeout outlasts dovecot's two-minute staleness of
// dovecot-uidlist.lock, so a lock left by a dead process that mailstore
// cannot recognise as dead (e.g. dovecot's own) delays a run instead of
// failing it.
const storeLockTimeout = 3 * time.Minute

// snapshotInbox copies the locked spool (size bytes) into an unlinked
// file in the new store's tmp/ (same file system, so there is room; gone
// when closed, even after a kill -9).
func (c *converter) snapshotInbox(in io.Reader, size int64) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Join(c.store.Root(), "tmp"), "mailmig-inbox-*")
	if err != nil {
		return nil, fmt.Errorf("convert: snapshot INBOX: %w", err)
	}
	os.Remove(f.Name())
	if n, err := io.Copy(f, in); err != nil || n != size {
		f.Close()
		return nil, fmt.Errorf("convert: snapshot INBOX %s: copied %d of %d bytes: %v", c.plan.inbox.path, n, size, err)
	}
	return f, nil
}
