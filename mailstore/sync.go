package mailstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// dirtyWindow: a directory modified this recently may change again within
// the same timestamp tick, so its cached listing is not trusted.
const (
	dirtyWindow     = time.Second
	fineDirtyWindow = 50 * time.Millisecond
)

// stamp identifies a version of a file or directory by mtime, size and
// inode; the zero stamp means "missing".
type stamp struct {
	exists bool
	mtime  int64
	size   int64
	ino    uint64
}

func stampOf(path string) (stamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return stamp{}, nil
		}
		return stamp{}, err
	}
	return stampOfInfo(st), nil
}

func stampOfInfo(fi os.FileInfo) stamp {
	s := stamp{exists: true, mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = sys.Ino
	}
	return s
}

// window is how long after its mtime another change of the directory
// could still leave the same mtime (one timestamp tick, generously). File
// systems with whole-second timestamps get dirtyWindow; others
// (nanosecond mtimes from a clock ticking every few ms) fineDirtyWindow.
func (s stamp) window() int64 {
	if s.mtime%int64(time.Second) != 0 {
		return int64(fineDirtyWindow)
	}
	return int64(dirtyWindow)
}

// dirtiness says when a directory's cached listing must be read again
// although its stamp did not change: after a scan or an own change in the
// same timestamp tick as the directory's last change, a further change in
// that tick would be invisible, so one rescan once the tick has passed
// settles it.
type dirtiness struct {
	force bool  // rescan at the next sync
	until int64 // rescan at the first sync at or after this time (ns)
	since int64 // when a rescan first became pending: bounds deferral
}

// maxDefer bounds how long a pending rescan may be pushed back by a
// stream of own changes.
const maxDefer = time.Second

func (d *dirtiness) mark(until, now int64) {
	if d.until < until {
		d.until = until
	}
	if d.since == 0 {
		d.since = now
	}
}

func (d dirtiness) due(now int64) bool {
	return d.force || (d.until != 0 && (now >= d.until || now-d.since >= int64(maxDefer)))
}

// afterScan is the dirtiness right after a listing of a directory whose
// stamp is after.
func afterScan(after stamp, stable bool, now int64) dirtiness {
	switch {
	case !stable:
		return dirtiness{force: true}
	case after.exists && now-after.mtime < after.window():
		return dirtiness{until: after.mtime + after.window(), since: now}
	}
	return dirtiness{}
}

// fileEntry is one message file as found in new/ or cur/.
type fileEntry struct {
	name  string
	mtime time.Time
	fsize int64
}

// folderState is the cached state of one folder directory, shared by every
// Folder handle of the process on that directory (through the Hub), so
// each change is published once.
type folderState struct {
	dir string

	mu           sync.Mutex
	newSt, curSt stamp
	listSt, kwSt stamp
	newDirty     dirtiness
	curDirty     dirtiness
	pending      bool // the cache changed since the last build
	// touched lists the keys whose file or UID changed since the last
	// build, when known; touchedAll means "anything may have changed".
	touched    map[string]struct{}
	touchedAll bool
	newFiles   map[string]fileEntry // by key
	curFiles   map[string]fileEntry // by key
	ul         *uidlist
	keywords   []string
	snap       *Snapshot // last published state
	// fresh holds keys first seen by the last scans; only they can lack
	// a UID unless checkAll (first load, uidlist replaced).
	fresh    map[string]struct{}
	checkAll bool
	// recentCur holds keys this process put in cur/ (APPEND or COPY
	// with flags) that no session has claimed as \Recent yet: dovecot
	// keeps \Recent in its index, not by new/, so such messages are
	// recent too (recent.go). The map is the Hub's (it outlives this
	// state), nil until needed; kept in memory only.
	recentCur map[string]struct{}
	hub       *Hub
	// needGUID makes assignLocked rewrite a uidlist whose header has no
	// valid mailbox GUID (MailboxGUID, mailboxguid.go).
	needGUID bool
}

// markRecentCur records key, just put in cur/, as recent.
func (st *folderState) markRecentCur(key string) {
	if st.recentCur == nil {
		if st.hub != nil {
			st.recentCur = st.hub.recentSet(st.dir)
		} else {
			st.recentCur = map[string]struct{}{}
		}
	}
	st.recentCur[key] = struct{}{}
}

// recent reports whether the file of key in sub is \Recent.
func (st *folderState) recent(sub, key string) bool {
	if sub == "new" {
		return true
	}
	_, ok := st.recentCur[key]
	return ok
}

// errBrokenUIDList marks a dovecot-uidlist that does not parse.
var errBrokenUIDList = errors.New("broken uidlist")

// lastUIDValidity makes UIDVALIDITY values handed out by this process
// strictly increasing, so a folder recreated within a second differs.
var lastUIDValidity atomic.Uint32

func newUIDValidity(now time.Time) uint32 {
	for {
		prev := lastUIDValidity.Load()
		v := uint32(now.Unix())
		if v <= prev {
			v = prev + 1
		}
		if lastUIDValidity.CompareAndSwap(prev, v) {
			return v
		}
	}
}

// scanDir lists the message files of sub ("new" or "cur"), reusing
// mtimes of keys known before (a rename keeps the mtime). It retries when
// the directory changes during the listing and reports whether the final
// listing was stable.
// same reports that the listing equals known[0] (the previous listing of
// this directory).
func (st *folderState) scanDir(sub string, before stamp, known ...map[string]fileEntry) (files map[string]fileEntry, after stamp, stable, same bool, err error) {
	path := filepath.Join(st.dir, sub)
	for attempt := 0; ; attempt++ {
		d, err := os.Open(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return map[string]fileEntry{}, stamp{}, true, len(known[0]) == 0, nil
			}
			return nil, stamp{}, false, false, fmt.Errorf("scan %s: %w", path, err)
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return nil, stamp{}, false, false, fmt.Errorf("scan %s: %w", path, err)
		}
		if known[0] != nil && sameListing(names, known[0]) {
			after, err := stampOf(path)
			if err != nil {
				return nil, stamp{}, false, false, fmt.Errorf("scan %s: %w", path, err)
			}
			if after == before || attempt >= 3 {
				return known[0], after, after == before, true, nil
			}
			before = after
			continue
		}
		out := make(map[string]fileEntry, len(names))
		unchanged := 0
		for _, n := range names {
			if n == "" || n[0] == '.' {
				continue
			}
			key := keyOf(n)
			var e fileEntry
			found := false
			for i, m := range known {
				if old, ok := m[key]; ok {
					e, found = old, true
					if i == 0 && old.name == n {
						unchanged++
					}
					break
				}
			}
			if !found {
				if st.fresh == nil {
					st.fresh = map[string]struct{}{}
				}
				st.fresh[key] = struct{}{}
				fi, err := os.Lstat(filepath.Join(path, n))
				if err != nil {
					continue // renamed or removed meanwhile; a rescan finds it
				}
				if !fi.Mode().IsRegular() {
					continue
				}
				e = fileEntry{mtime: fi.ModTime(), fsize: fi.Size()}
			}
			e.name = n
			if prev, dup := out[key]; dup {
				// Two files with one base: keep the one sorting last
				// (dovecot would rename one of them; we only read).
				if prev.name > n {
					continue
				}
			}
			out[key] = e
		}
		after, err := stampOf(path)
		if err != nil {
			return nil, stamp{}, false, false, fmt.Errorf("scan %s: %w", path, err)
		}
		if after == before || attempt >= 3 {
			same := known[0] != nil && unchanged == len(out) && len(out) == len(known[0])
			return out, after, after == before, same, nil
		}
		before = after
	}
}

// load brings the cached listing, uidlist and keywords up to date; it
// reports whether anything was re-read.
func (f *Folder) load() (bool, error) {
	st := f.st
	now := time.Now()
	newSt, err1 := stampOf(filepath.Join(st.dir, "new"))
	curSt, err2 := stampOf(filepath.Join(st.dir, "cur"))
	listSt, err3 := stampOf(filepath.Join(st.dir, "dovecot-uidlist"))
	kwSt, err4 := stampOf(filepath.Join(st.dir, "dovecot-keywords"))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return false, fmt.Errorf("sync %s: %w", st.dir, err)
	}
	if !curSt.exists {
		if _, err := os.Stat(st.dir); errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("%w: %s", ErrNoSuchFolder, f.name)
		}
	}
	changed := false
	nowNS := now.UnixNano()
	if st.newFiles == nil || newSt != st.newSt || st.newDirty.due(nowNS) {
		files, after, stable, same, err := st.scanDir("new", newSt, st.newFiles, st.curFiles)
		if err != nil {
			return false, err
		}
		st.newFiles, st.newSt = files, after
		st.newDirty = afterScan(after, stable, nowNS)
		changed = changed || !same
		st.touchedAll = st.touchedAll || !same
	}
	if st.curFiles == nil || curSt != st.curSt || st.curDirty.due(nowNS) {
		files, after, stable, same, err := st.scanDir("cur", curSt, st.curFiles, st.newFiles)
		if err != nil {
			return false, err
		}
		st.curFiles, st.curSt = files, after
		st.curDirty = afterScan(after, stable, nowNS)
		changed = changed || !same
		st.touchedAll = st.touchedAll || !same
	}
	if st.ul == nil || listSt != st.listSt {
		if err := f.readUIDList(listSt); err != nil {
			if !errors.Is(err, errBrokenUIDList) {
				return false, err
			}
			// Rebuilt under the lock by the next assignment.
			f.store.log.Warn("broken dovecot-uidlist", "folder", f.name, "err", err)
			st.ul, st.listSt = &uidlist{Keys: map[string]uint32{}, NextUID: 1}, listSt
			st.checkAll, st.touchedAll = true, true
		}
		changed = true
	}
	if kwSt != st.kwSt {
		data, err := os.ReadFile(filepath.Join(st.dir, "dovecot-keywords"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("read %s/dovecot-keywords: %w", st.dir, err)
		}
		kw, err := parseKeywords(data)
		if err != nil {
			// A broken keywords file loses keyword names, not mail.
			f.store.log.Warn("ignoring broken dovecot-keywords", "dir", st.dir, "err", err)
		}
		st.keywords, st.kwSt = kw, kwSt
		st.touchedAll = true
		changed = true
	}
	if changed {
		st.pending = true
	}
	return st.pending, nil
}

func (f *Folder) readUIDList(listSt stamp) error {
	st := f.st
	path := filepath.Join(st.dir, "dovecot-uidlist")
	if ul := st.ul; ul != nil && ul.UIDValidity != 0 && listSt.exists && listSt.ino == st.listSt.ino && listSt.size >= ul.Complete {
		// Same file, grown: dovecot and we append whole lines, so parse
		// only the tail, after checking the header is still ours.
		if ok, err := f.readUIDListTail(path, listSt); err != nil || ok {
			return err
		}
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	ul, err := parseUIDList(data)
	if err != nil {
		return fmt.Errorf("parse %s: %w: %v", path, errBrokenUIDList, err)
	}
	st.ul, st.listSt = ul, listSt
	st.checkAll, st.touchedAll = true, true
	return nil
}

// readUIDListTail parses the lines appended to the uidlist since the last
// read; ok=false means "read it all again".
func (f *Folder) readUIDListTail(path string, listSt stamp) (bool, error) {
	st := f.st
	ul := st.ul
	fh, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return false, nil
	}
	defer fh.Close()
	head := make([]byte, len(ul.Header))
	if _, err := fh.ReadAt(head, 0); err != nil || string(head) != ul.Header {
		return false, nil
	}
	var nl [1]byte
	if _, err := fh.ReadAt(nl[:], ul.Complete-1); err != nil || nl[0] != '\n' {
		return false, nil
	}
	if _, err := fh.Seek(ul.Complete, io.SeekStart); err != nil {
		return false, nil
	}
	tail, err := io.ReadAll(fh)
	if err != nil {
		return false, nil
	}
	// parseMore works on a copy of the position fields, so a broken tail
	// leaves a state that a full read replaces.
	n := len(ul.Order)
	if err := ul.parseMore(tail); err != nil {
		st.ul = nil
		return false, nil
	}
	for _, e := range ul.Order[n:] {
		st.touch(e.Key)
	}
	st.listSt = listSt
	return true, nil
}

// missingKeys returns the keys on disk without a UID, ordered by mtime
// then name (arrival order, as far as the disk tells).
func (st *folderState) missingKeys() []string {
	var miss []string
	if !st.checkAll {
		for k := range st.fresh {
			if _, ok := st.ul.Keys[k]; !ok && st.onDisk(k) {
				miss = append(miss, k)
			}
		}
	} else {
		seen := func(m map[string]fileEntry) {
			for k := range m {
				if _, ok := st.ul.Keys[k]; !ok {
					miss = append(miss, k)
				}
			}
		}
		seen(st.newFiles)
		seen(st.curFiles)
	}
	if len(miss) < 2 {
		return miss
	}
	miss = dedupe(miss)
	sort.Slice(miss, func(i, j int) bool {
		a, b := st.entry(miss[i]), st.entry(miss[j])
		if !a.mtime.Equal(b.mtime) {
			return a.mtime.Before(b.mtime)
		}
		return miss[i] < miss[j]
	})
	return miss
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// entry returns the file of key (cur/ wins over new/).
func (st *folderState) entry(key string) fileEntry {
	if e, ok := st.curFiles[key]; ok {
		return e
	}
	return st.newFiles[key]
}

// assignLocked gives UIDs to keys (in this order first) and to every other
// file without one, under dovecot-uidlist.lock. It creates the uidlist when
// missing. Caller holds st.mu.
func (f *Folder) assignLocked(ctx context.Context, keys []string) error {
	st := f.st
	s := f.store
	lk, err := acquireLock(ctx, filepath.Join(st.dir, "dovecot-uidlist"), s.opts.LockTimeout, s.host, !s.opts.NoFsync)
	if err != nil {
		return fmt.Errorf("folder %s: %w", f.name, err)
	}
	defer lk.release()
	listSt, err := stampOf(filepath.Join(st.dir, "dovecot-uidlist"))
	if err != nil {
		return fmt.Errorf("folder %s: %w", f.name, err)
	}
	if err := f.readUIDList(listSt); err != nil {
		if !errors.Is(err, errBrokenUIDList) {
			return err
		}
		// As dovecot does: a new UIDVALIDITY and new UIDs for every file.
		f.store.log.Warn("rebuilding broken dovecot-uidlist with a new UIDVALIDITY", "folder", f.name, "err", err)
		st.ul = &uidlist{Keys: map[string]uint32{}, NextUID: 1}
		st.checkAll, st.touchedAll = true, true
	}
	ul := st.ul
	var add []uidEntry
	taken := map[string]bool{}
	give := func(k string) error {
		if _, ok := ul.Keys[k]; ok || taken[k] {
			return nil
		}
		if ul.NextUID == 0 || ul.NextUID == 0xffffffff {
			return fmt.Errorf("folder %s: UID space exhausted", f.name)
		}
		add = append(add, uidEntry{ul.NextUID, k})
		taken[k] = true
		ul.NextUID++
		return nil
	}
	for _, k := range keys {
		if err := give(k); err != nil {
			return err
		}
	}
	for _, k := range st.missingKeys() {
		if err := give(k); err != nil {
			return err
		}
	}
	guidOK := !st.needGUID || validGUID(ul.GUID)
	if len(add) == 0 && ul.UIDValidity != 0 && guidOK {
		return nil
	}
	if st.canAppendUIDs(listSt) && guidOK {
		return f.appendUIDs(add)
	}
	// Rewrite, dropping entries of files no longer on disk. The
	// cached listing may lag (same-tick changes), so list both
	// directories again now, under the lock (other mailmig processes
	// and dovecot rename a new file into place before they take the
	// lock to list it), and drop nothing unless both listings were
	// stable.
	curNow, err1 := stampOf(filepath.Join(st.dir, "cur"))
	newNow, err2 := stampOf(filepath.Join(st.dir, "new"))
	var curList, newList map[string]fileEntry
	stable := err1 == nil && err2 == nil
	if stable {
		var ok1, ok2 bool
		var err error
		if curList, _, ok1, _, err = st.scanDir("cur", curNow, st.curFiles, st.newFiles); err != nil {
			return err
		}
		if newList, _, ok2, _, err = st.scanDir("new", newNow, st.newFiles, st.curFiles); err != nil {
			return err
		}
		stable = ok1 && ok2
	}
	onDisk := func(k string) bool {
		_, a := curList[k]
		_, b := newList[k]
		return a || b
	}
	if ul.UIDValidity == 0 {
		ul.UIDValidity = newUIDValidity(s.now())
	}
	if !validGUID(ul.GUID) {
		ul.GUID = newGUID()
	}
	var entries []uidEntry
	for _, e := range ul.Order {
		if !stable || onDisk(e.Key) {
			entries = append(entries, e)
		}
	}
	entries = append(entries, add...)
	if err := lk.replaceFunc(func(w io.Writer) error {
		return formatUIDList(w, ul.UIDValidity, ul.NextUID, ul.GUID, entries)
	}); err != nil {
		return fmt.Errorf("folder %s: %w", f.name, err)
	}
	// Re-read the rewritten file, so the cache matches the disk stamp.
	listSt, err = stampOf(filepath.Join(st.dir, "dovecot-uidlist"))
	if err != nil {
		return err
	}
	return f.readUIDList(listSt)
}

// assignOne gives key, a file just renamed into new/ or cur/, the next
// UID by appending one line to dovecot-uidlist under its lock, without
// listing the directories or building a snapshot: the delivery path,
// which needs the UID and nothing else (sessions find the message at
// their next sync, which also gives UIDs to other writers' files). It
// returns 0 and no error when the uidlist needs more than an append
// (missing, old version, a partial line, due for a rewrite, cache not
// loaded): syncLocked then does the full work. Caller holds st.mu.
func (f *Folder) assignOne(ctx context.Context, key string) (uint32, error) {
	st := f.st
	if st.ul == nil || st.newFiles == nil || st.curFiles == nil {
		return 0, nil
	}
	// Directories changed behind our back (expunges by another process,
	// files dropped by other writers): the full sync lists them, gives
	// the newcomers UIDs and compacts the uidlist when it is due.
	for _, sub := range []string{"new", "cur"} {
		cached, _ := st.dirOf(sub)
		now, err := stampOf(filepath.Join(st.dir, sub))
		if err != nil || now != *cached {
			return 0, nil
		}
	}
	s := f.store
	lk, err := acquireLock(ctx, filepath.Join(st.dir, "dovecot-uidlist"), s.opts.LockTimeout, s.host, !s.opts.NoFsync)
	if err != nil {
		return 0, fmt.Errorf("folder %s: %w", f.name, err)
	}
	defer lk.release()
	path := filepath.Join(st.dir, "dovecot-uidlist")
	listSt, err := stampOf(path)
	if err != nil {
		return 0, fmt.Errorf("folder %s: %w", f.name, err)
	}
	if listSt != st.listSt {
		if err := f.readUIDList(listSt); err != nil {
			if errors.Is(err, errBrokenUIDList) {
				return 0, nil
			}
			return 0, err
		}
	}
	ul := st.ul
	if uid := ul.Keys[key]; uid != 0 {
		return uid, nil // another process's sync was quicker
	}
	if !st.canAppendUIDs(listSt) || ul.NextUID == 0 || ul.NextUID == 0xffffffff {
		return 0, nil
	}
	if err := f.appendUIDs([]uidEntry{{ul.NextUID, key}}); err != nil {
		return 0, err
	}
	return ul.Keys[key], nil
}

// canAppendUIDs reports whether new entries may be appended to the
// uidlist (whose stamp is listSt) rather than rewriting it: a version 3
// file with a UIDVALIDITY, no partial last line, and not so many entries
// for files no longer listed that it is due for compaction.
func (st *folderState) canAppendUIDs(listSt stamp) bool {
	ul := st.ul
	return ul.UIDValidity != 0 && ul.Version == 3 && ul.Complete == listSt.size &&
		len(ul.Order) < 4*(len(st.newFiles)+len(st.curFiles))+64
}

// appendUIDs appends entries to the uidlist as dovecot does (the header's
// N stays, readers take max(N, last UID + 1)), in one write of whole
// lines, and brings st.ul and st.listSt up to date from the lines it wrote
// and the file's stamp after the write, without reading the file again.
// Not fsynced (dovecot's default mail_fsync=optimized does not either):
// after a crash a message may get a new UID, it is never lost. Caller
// holds the uidlist lock and st.mu, and checked canAppendUIDs.
func (f *Folder) appendUIDs(entries []uidEntry) error {
	st := f.st
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(strconv.FormatUint(uint64(e.UID), 10))
		b.WriteString(" :")
		b.WriteString(e.Key)
		b.WriteByte('\n')
	}
	lines := b.String()
	path := filepath.Join(st.dir, "dovecot-uidlist")
	fh, err := openFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	_, err = fh.WriteString(lines)
	var fi os.FileInfo
	if err == nil {
		fi, err = fh.Stat()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = st.ul.parseMore([]byte(lines))
	}
	if err == nil && fi.Size() != st.ul.Complete {
		err = fmt.Errorf("size %d after the append, want %d", fi.Size(), st.ul.Complete)
	}
	if err != nil {
		st.ul = nil // memory and file may differ: read it all again
		return fmt.Errorf("append %s: %w", path, err)
	}
	st.listSt = stampOfInfo(fi)
	for _, e := range entries {
		st.touch(e.Key)
	}
	st.pending = true
	return nil
}

func (st *folderState) onDisk(key string) bool {
	_, a := st.newFiles[key]
	_, b := st.curFiles[key]
	return a || b
}

// syncLocked brings the state up to date, assigns UIDs to new files
// (keys first, in order), builds the snapshot and publishes what changed
// since the last one. Caller holds st.mu.
func (f *Folder) syncLocked(ctx context.Context, keys []string) (*Snapshot, []Change, error) {
	st := f.st
	changed, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	if !changed && st.snap != nil && len(keys) == 0 {
		return st.snap, nil, nil
	}
	if st.ul.UIDValidity == 0 || len(keys) > 0 || len(st.missingKeys()) > 0 {
		if err := f.assignLocked(ctx, keys); err != nil {
			return nil, nil, err
		}
	}
	if st.lagging() {
		// Someone handed out a UID for a file our listing does not have
		// yet (a change absorbed into an own-change baseline, or made in
		// the same timestamp tick). List again before building, so a
		// session never sees UID n+1 before n.
		st.force()
		if _, err := f.load(); err != nil {
			return nil, nil, err
		}
		if len(st.missingKeys()) > 0 {
			if err := f.assignLocked(ctx, nil); err != nil {
				return nil, nil, err
			}
		}
	}
	snap := st.build()
	st.fresh, st.checkAll, st.pending = nil, false, false
	st.touched, st.touchedAll = nil, false
	changes := diffSnapshots(f.name, st.snap, snap)
	if len(changes) == 0 && sameSnapshot(st.snap, snap) {
		return st.snap, nil, nil // keep the pointer stable for callers
	}
	st.snap = snap
	if len(changes) > 0 {
		f.store.hub.Publish(f.store.root, changes...)
	}
	return snap, changes, nil
}

// force makes the next sync list both directories again.
func (st *folderState) force() {
	st.newDirty.force, st.curDirty.force = true, true
}

func (st *folderState) files(sub string) map[string]fileEntry {
	if sub == "new" {
		return st.newFiles
	}
	return st.curFiles
}

func (st *folderState) dirOf(sub string) (*stamp, *dirtiness) {
	if sub == "new" {
		return &st.newSt, &st.newDirty
	}
	return &st.curSt, &st.curDirty
}

// own runs op, a change of our own to the directories subs ("new",
// "cur"). If nothing else changed them since we last looked, apply brings
// the cached listing up to date and the stamps after op become the
// baseline, so our own changes cost no rescan (one verification rescan
// follows once the timestamp tick has passed, see dirtiness). Otherwise
// the next sync lists the directories again. Caller holds st.mu.
func (st *folderState) own(subs []string, op func() error, apply func()) error {
	clean := st.newFiles != nil && st.curFiles != nil && st.ul != nil
	for _, sub := range subs {
		cached, _ := st.dirOf(sub)
		s0, err := stampOf(filepath.Join(st.dir, sub))
		if err != nil || s0 != *cached {
			clean = false
		}
	}
	if err := op(); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	for _, sub := range subs {
		cached, d := st.dirOf(sub)
		s1, err := stampOf(filepath.Join(st.dir, sub))
		if !clean || err != nil {
			d.force = true
			continue
		}
		*cached = s1
		d.mark(s1.mtime+s1.window(), now)
	}
	if clean {
		apply()
		st.pending = true
	}
	return nil
}

// lagging reports whether the uidlist gained an entry, at or above the
// last snapshot's UIDNEXT, whose file is not in the cached listing.
func (st *folderState) lagging() bool {
	if st.snap == nil || st.ul == nil {
		return false // the first build follows full listings
	}
	next := st.snap.UIDNext
	check := func(key string, uid uint32) bool {
		return uid >= next && !st.onDisk(key)
	}
	if st.touchedAll {
		for i := len(st.ul.Order) - 1; i >= 0 && st.ul.Order[i].UID >= next; i-- {
			if e := st.ul.Order[i]; check(e.Key, e.UID) {
				return true
			}
		}
		return false
	}
	for key := range st.touched {
		if uid, ok := st.ul.Keys[key]; ok && check(key, uid) {
			return true
		}
	}
	return false
}
