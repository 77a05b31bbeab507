package mailstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// newKey returns a fresh file base "SECS.MUSECSPPIDQN.HOST" (dovecot's
// pattern, Q = a per-process counter).
func (s *Store) newKey(now time.Time) string {
	n := uniqueN.Add(1)
	return fmt.Sprintf("%d.M%dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), n, s.host)
}

// uniqueN is the process-wide delivery counter (dovecot's Q part): one
// counter for every Store in the process, so two Stores over one Maildir
// (a test, or the converter next to the server) never make the same name
// in the same microsecond. A per-Store counter did, and two creators of
// one folder then shared a tmp/ directory (TestCreateFolderRace).
var uniqueN atomic.Uint64

// sizeCounter counts bytes and the CRLF size (each bare LF counts two).
type sizeCounter struct {
	size, vsize int64
	lastCR      bool
	mtime       time.Time // set by writeTmp
}

// Write counts p. W= counts every LF not preceded by CR as two bytes,
// also when the CR ended the previous Write.
func (c *sizeCounter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := int64(len(p))
	c.size += n
	// Every LF adds one, except those after a CR (CRLF is already two).
	lf := int64(bytes.Count(p, lfBytes))
	if lf > 0 {
		crlf := int64(bytes.Count(p, crlfBytes))
		if c.lastCR && p[0] == '\n' {
			crlf++
		}
		lf -= crlf
	}
	c.vsize += n + lf
	c.lastCR = p[len(p)-1] == '\r'
	return len(p), nil
}

var lfBytes, crlfBytes = []byte("\n"), []byte("\r\n")

// writeTmp copies r into a new file in dir/tmp and returns its path and
// sizes; the file is fsynced unless NoFsync, and its mtime set to date.
// c.mtime is the mtime as stored (the file system's granularity).
func (s *Store) writeTmp(ctx context.Context, dir, key string, r io.Reader, date time.Time) (string, *sizeCounter, error) {
	path := filepath.Join(dir, "tmp", key)
	fh, err := openFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("create %s: %w", path, err)
	}
	var c sizeCounter
	_, err = io.Copy(io.MultiWriter(fh, &c), ctxReader{ctx, r})
	if err == nil && !s.opts.NoFsync {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(path, date, date)
	}
	var st os.FileInfo
	if err == nil {
		st, err = os.Stat(path)
	}
	if err != nil {
		os.Remove(path)
		return "", nil, fmt.Errorf("write %s at byte %d: %w", path, c.size, err)
	}
	c.mtime = st.ModTime()
	return path, &c, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read reads from the underlying reader unless the context is done.
func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// normFlags canonicalises flags, dropping \Recent and unknown system flags.
func normFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if c, ok := canonicalFlag(f); ok && !hasExact(out, c) {
			out = append(out, c)
		}
	}
	return sortFlags(out)
}

// ensureKeywords makes sure every keyword in flags has a letter in the
// folder's dovecot-keywords and returns name → index. Caller holds st.mu.
func (f *Folder) ensureKeywords(ctx context.Context, flags []string) (map[string]int, error) {
	hasKeyword := false
	for _, fl := range flags {
		hasKeyword = hasKeyword || !strings.HasPrefix(fl, `\`)
	}
	if !hasKeyword {
		return nil, nil // system flags only: no need to look at the disk
	}
	if _, err := f.load(); err != nil {
		return nil, err
	}
	idx := keywordIndex(f.st.keywords)
	var need []string
	for _, fl := range flags {
		if !strings.HasPrefix(fl, `\`) {
			if _, ok := idx[fl]; !ok && !hasExact(need, fl) {
				need = append(need, fl)
			}
		}
	}
	if len(need) == 0 {
		return idx, nil
	}
	s := f.store
	path := filepath.Join(f.dir, "dovecot-keywords")
	lk, err := acquireLock(ctx, path, s.opts.LockTimeout, s.host, !s.opts.NoFsync)
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", f.name, err)
	}
	defer lk.release()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	kw, err := parseKeywords(data)
	if err != nil {
		s.log.Warn("rewriting broken dovecot-keywords", "path", path, "err", err)
	}
	idx = keywordIndex(kw)
	changed := false
	for _, name := range need {
		if _, ok := idx[name]; ok {
			continue
		}
		slot := -1
		for i, k := range kw {
			if k == "" {
				slot = i
				break
			}
		}
		if slot < 0 {
			if len(kw) >= 26 {
				return nil, fmt.Errorf("folder %s keyword %q: %w", f.name, name, ErrTooManyKeywords)
			}
			kw = append(kw, "")
			slot = len(kw) - 1
		}
		kw[slot] = name
		idx[name] = slot
		changed = true
	}
	if changed {
		if err := lk.replace(formatKeywords(kw)); err != nil {
			return nil, fmt.Errorf("folder %s: %w", f.name, err)
		}
	}
	f.st.kwSt = stamp{} // force a re-read
	if _, err := f.load(); err != nil {
		return nil, err
	}
	return idx, nil
}

// Append stores the message read from r with flags and internal date
// (zero means now): written to tmp/, fsynced, renamed into new/ (no
// flags) or cur/, then given the next UID under the uidlist lock.
// ErrOverQuota if the store's quota would be exceeded. \Recent and unknown
// system flags are ignored; more than 26 keywords in the folder give
// ErrTooManyKeywords.
func (f *Folder) Append(ctx context.Context, r io.Reader, flags []string, date time.Time) (uint32, error) {
	s := f.store
	now := s.now()
	if date.IsZero() {
		date = now
	}
	date = date.Round(0) // no monotonic reading: it is an mtime
	flags = normFlags(flags)
	f.st.mu.Lock()
	idx, err := f.ensureKeywords(ctx, flags)
	f.st.mu.Unlock()
	if err != nil {
		return 0, err
	}
	key := s.newKey(now)
	tmp, c, err := s.writeTmp(ctx, f.dir, key, r, date)
	if err != nil {
		return 0, fmt.Errorf("append to %s: %w", f.name, err)
	}
	if err := s.quotaCheck(c.size, 1); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	key = fmt.Sprintf("%s,S=%d,W=%d", key, c.size, c.vsize)
	info := formatInfo(flags, idx, "")
	var dst string
	if info == "" {
		dst = filepath.Join(f.dir, "new", key)
	} else {
		dst = filepath.Join(f.dir, "cur", key+":2,"+info)
	}
	sub := "new"
	if info != "" {
		sub = "cur"
	}
	f.st.mu.Lock()
	err = f.st.own([]string{sub}, func() error { return os.Rename(tmp, dst) }, func() {
		f.st.files(sub)[key] = fileEntry{name: nameOf(dst), mtime: c.mtime, fsize: c.size}
		if f.st.fresh == nil {
			f.st.fresh = map[string]struct{}{}
		}
		f.st.fresh[key] = struct{}{}
		f.st.touch(key)
	})
	if err == nil && sub == "cur" {
		f.st.markRecentCur(key)
	}
	f.st.mu.Unlock()
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("append to %s: %w", f.name, err)
	}
	if !s.opts.NoFsync {
		if err := syncDir(filepath.Dir(dst)); err != nil {
			os.Remove(dst) // not durable: fail, and leave nothing behind
			return 0, err
		}
	}
	f.st.mu.Lock()
	uid, err := f.assignOne(ctx, key)
	if err == nil && uid == 0 {
		_, _, err = f.syncLocked(ctx, []string{key})
		if f.st.ul != nil {
			uid = f.st.ul.Keys[key]
		}
	} else if err == nil && s.hub.watched(s.root, f.name) {
		// Sessions of this process watch the folder: tell them now
		// rather than at their next poll. The message has its UID.
		if _, _, serr := f.syncLocked(ctx, nil); serr != nil {
			s.log.Warn("sync after append", "folder", f.name, "err", serr)
		}
	}
	f.st.mu.Unlock()
	if err != nil || uid == 0 {
		// The caller sees a failure, so the message must not stay: it
		// would get a UID on the next sync and be delivered twice.
		os.Remove(dst)
		if err == nil {
			err = errors.New("no UID assigned")
		}
		return 0, fmt.Errorf("append to %s: %w", f.name, err)
	}
	s.quotaAdd(c.size, 1)
	return uid, nil
}

// applyFlags returns cur combined with flags by op.
func applyFlags(cur []string, op FlagOp, flags []string) []string {
	var out []string
	switch op {
	case FlagReplace:
		out = append(out, flags...)
	case FlagAdd:
		out = append(append(out, cur...), flags...)
	case FlagRemove:
		for _, c := range cur {
			if !hasFlag(flags, c) {
				out = append(out, c)
			}
		}
	}
	return normFlags(out)
}

// StoreFlags changes the flags of the messages with uids (missing UIDs
// are skipped) by renaming their files, and returns their new infos in
// UID order. The changes are published on the Hub.
func (f *Folder) StoreFlags(ctx context.Context, uids []uint32, op FlagOp, flags []string) ([]MessageInfo, error) {
	flags = normFlags(flags)
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if _, err := f.ensureKeywords(ctx, flags); err != nil {
		return nil, err
	}
	want := uidSet(uids)
	for attempt := 0; ; attempt++ {
		snap, _, err := f.syncLocked(ctx, nil)
		if err != nil {
			return nil, err
		}
		// All of the folder's keywords: messages keep the ones not named.
		idx := keywordIndex(f.st.keywords)
		missing := false
		for _, m := range selectUIDs(snap, uids, want) {
			nf := applyFlags(m.Flags, op, flags)
			name := nameOf(m.Path)
			info := formatInfo(nf, idx, uninterpretedLetters(infoPart(name)))
			newName := m.Key + ":2," + info
			if newName == name {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			sub, key, oldPath := subOf(m), m.Key, m.Path
			err := f.st.own([]string{sub}, func() error {
				return os.Rename(oldPath, filepath.Join(filepath.Dir(oldPath), newName))
			}, func() {
				files := f.st.files(sub)
				e := files[key]
				e.name = newName
				files[key] = e
				f.st.touch(key)
			})
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					missing = true
					continue
				}
				return nil, fmt.Errorf("store flags %s uid %d: %w", f.name, m.UID, err)
			}
		}
		if !missing || attempt >= 2 {
			break
		}
		f.st.force()
	}
	snap, _, err := f.syncLocked(ctx, nil)
	if err != nil {
		return nil, err
	}
	return selectUIDs(snap, uids, want), nil
}

// selectUIDs returns the messages of snap with the given UIDs (set holds
// the same UIDs), in UID order: by binary search for a few UIDs, by one
// pass over the folder for many.
func selectUIDs(snap *Snapshot, uids []uint32, set map[uint32]bool) []MessageInfo {
	var out []MessageInfo
	if len(uids)*8 < len(snap.Messages) {
		sorted := slices.Clone(uids)
		slices.Sort(sorted)
		for _, u := range slices.Compact(sorted) {
			if m, ok := snap.Lookup(u); ok {
				out = append(out, m)
			}
		}
		return out
	}
	for _, m := range snap.Messages {
		if set[m.UID] {
			out = append(out, m)
		}
	}
	return out
}

func uidSet(uids []uint32) map[uint32]bool {
	m := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		m[u] = true
	}
	return m
}

// Copy copies the messages with uids to dst (hard links when possible,
// else a byte copy; flags and internal dates kept) and returns source →
// destination UIDs in source UID order. Missing UIDs are skipped.
// ErrOverQuota when the copies would exceed the quota.
func (f *Folder) Copy(ctx context.Context, uids []uint32, dst *Folder) ([]UIDPair, error) {
	snap, err := f.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	msgs := selectUIDs(snap, uids, uidSet(uids))
	var bytes int64
	var kws []string
	for _, m := range msgs {
		bytes += m.Size
		for _, fl := range m.Flags {
			if !strings.HasPrefix(fl, `\`) && !hasExact(kws, fl) {
				kws = append(kws, fl)
			}
		}
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	s := dst.store
	if err := s.quotaCheck(bytes, int64(len(msgs))); err != nil {
		return nil, err
	}
	dst.st.mu.Lock()
	idx, err := dst.ensureKeywords(ctx, kws)
	dst.st.mu.Unlock()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(msgs))
	var placed []string
	cleanup := func() {
		for _, p := range placed {
			os.Remove(p)
		}
	}
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			cleanup()
			return nil, err
		}
		key := s.newKey(s.now())
		if m.Size >= 0 && m.VSize >= 0 {
			key = fmt.Sprintf("%s,S=%d,W=%d", key, m.Size, m.VSize)
		} else if m.Size >= 0 {
			key = fmt.Sprintf("%s,S=%d", key, m.Size)
		}
		info := formatInfo(m.Flags, idx, "")
		target := filepath.Join(dst.dir, "new", key)
		if info != "" {
			target = filepath.Join(dst.dir, "cur", key+":2,"+info)
		}
		// The common case, a hard link, is an own change of dst's
		// cached listing; anything else makes dst list itself again.
		sub := "new"
		if info != "" {
			sub = "cur"
		}
		dst.st.mu.Lock()
		linkErr := dst.st.own([]string{sub}, func() error { return os.Link(m.Path, target) }, func() {
			dst.st.files(sub)[key] = fileEntry{name: nameOf(target), mtime: m.InternalDate, fsize: m.Size}
			if dst.st.fresh == nil {
				dst.st.fresh = map[string]struct{}{}
			}
			dst.st.fresh[key] = struct{}{}
			dst.st.touch(key)
		})
		if sub == "cur" {
			// Recent in dst whether linked or (below) copied.
			dst.st.markRecentCur(key)
		}
		dst.st.mu.Unlock()
		if linkErr != nil {
			if err := f.linkOrCopy(ctx, m, dst, key, target); err != nil {
				cleanup()
				return nil, err
			}
		}
		placed = append(placed, target)
		keys = append(keys, key)
	}
	if !s.opts.NoFsync {
		if err := errors.Join(syncDir(filepath.Join(dst.dir, "cur")), syncDir(filepath.Join(dst.dir, "new"))); err != nil {
			return nil, err
		}
	}
	dst.st.mu.Lock()
	_, _, err = dst.syncLocked(ctx, keys)
	var pairs []UIDPair
	if err == nil {
		for i, k := range keys {
			pairs = append(pairs, UIDPair{Src: msgs[i].UID, Dst: dst.st.ul.Keys[k]})
		}
	}
	dst.st.mu.Unlock()
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("copy to %s: %w", dst.name, err)
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Src < pairs[j].Src })
	s.quotaAdd(bytes, int64(len(msgs)))
	return pairs, nil
}

// linkOrCopy places message m at target: a hard link, or a copy through
// dst's tmp/ when linking fails (other file system, link limit). A
// renamed source is looked up again.
func (f *Folder) linkOrCopy(ctx context.Context, m MessageInfo, dst *Folder, key, target string) error {
	src := m.Path
	for attempt := 0; attempt < 3; attempt++ {
		err := os.Link(src, target)
		if err == nil {
			return nil
		}
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(src); serr != nil {
				fh, oerr := f.Open(m.UID)
				if oerr != nil {
					return fmt.Errorf("copy %s uid %d: %w", f.name, m.UID, oerr)
				}
				src = fh.Name()
				fh.Close()
				continue
			}
		}
		break
	}
	in, err := f.OpenMessage(MessageInfo{UID: m.UID, Path: src})
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, _, err := dst.store.writeTmp(ctx, dst.dir, key, in, m.InternalDate)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copy to %s: %w", dst.name, err)
	}
	return nil
}

// Move copies the messages to dst, then expunges them from f, and returns
// the UID pairs.
func (f *Folder) Move(ctx context.Context, uids []uint32, dst *Folder) ([]UIDPair, error) {
	pairs, err := f.Copy(ctx, uids, dst)
	if err != nil {
		return nil, err
	}
	src := make([]uint32, len(pairs))
	for i, p := range pairs {
		src[i] = p.Src
	}
	if _, err := f.Expunge(ctx, src); err != nil {
		return pairs, fmt.Errorf("move from %s: copied, but: %w", f.name, err)
	}
	return pairs, nil
}

// Expunge removes the messages with uids and returns the UIDs removed,
// ascending. The removals are published on the Hub.
func (f *Folder) Expunge(ctx context.Context, uids []uint32) ([]uint32, error) {
	return f.expunge(ctx, uids, uidSet(uids), false)
}

// ExpungeDeleted removes the messages flagged \Deleted (IMAP EXPUNGE);
// with uids non-nil only those among them (UID EXPUNGE).
func (f *Folder) ExpungeDeleted(ctx context.Context, uids []uint32) ([]uint32, error) {
	var set map[uint32]bool
	if uids != nil {
		set = uidSet(uids)
	}
	return f.expunge(ctx, uids, set, true)
}

func (f *Folder) expunge(ctx context.Context, uids []uint32, set map[uint32]bool, deletedOnly bool) ([]uint32, error) {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	var removed []uint32
	var bytes int64
	done := map[uint32]bool{}
	for attempt := 0; attempt < 3; attempt++ {
		snap, _, err := f.syncLocked(ctx, nil)
		if err != nil {
			return nil, err
		}
		msgs := snap.Messages
		if set != nil {
			msgs = selectUIDs(snap, uids, set)
		}
		missing := false
		for _, m := range msgs {
			if done[m.UID] || (deletedOnly && !m.HasFlag(FlagDeleted)) {
				continue
			}
			sub, key, path := subOf(m), m.Key, m.Path
			err := f.st.own([]string{sub}, func() error { return os.Remove(path) }, func() {
				delete(f.st.files(sub), key)
				f.st.touch(key)
			})
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					missing = true
					continue
				}
				return nil, fmt.Errorf("expunge %s uid %d: %w", f.name, m.UID, err)
			}
			done[m.UID] = true
			removed = append(removed, m.UID)
			bytes += m.Size
		}
		if !missing {
			break
		}
		f.st.force()
	}
	if _, _, err := f.syncLocked(ctx, nil); err != nil {
		return nil, err
	}
	sort.Slice(removed, func(i, j int) bool { return removed[i] < removed[j] })
	if len(removed) > 0 {
		f.store.quotaAdd(-bytes, -int64(len(removed)))
	}
	return removed, nil
}

// subOf returns the directory ("new" or "cur") of a snapshot entry.
func subOf(m MessageInfo) string {
	if m.Recent {
		return "new"
	}
	return "cur"
}
