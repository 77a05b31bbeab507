package mailstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Commit waits for the pending fsyncs, fsyncs cur/, writes
// dovecot-keywords and dovecot-uidlist (under their dot-locks), updates
// maildirsize and publishes ChangeUIDValidity when UIDVALIDITY changed.
// The Importer is done afterwards, also on error (a new Importer resumes).
func (im *Importer) Commit() error {
	if im.done {
		return fmt.Errorf("import %s: importer finished", im.name)
	}
	if err := im.checkpoint(); err != nil {
		im.Abort()
		return err
	}
	im.done = true
	s := im.s
	ctx := context.Background()
	if im.kwChanged {
		if err := im.writeKeywords(ctx); err != nil {
			return err
		}
	}
	if err := im.writeUIDList(ctx); err != nil {
		return err
	}
	// Also without limits: an existing maildirsize is kept right.
	if err := s.RecalcQuota(); err != nil {
		return fmt.Errorf("import %s: %w", im.name, err)
	}
	// Let the shared state notice the new uidlist now, publishing
	// ChangeUIDValidity to sessions of this process.
	f := &Folder{store: s, name: im.name, dir: im.dir, st: s.hub.state(im.dir)}
	f.st.mu.Lock()
	hadSnap := f.st.snap != nil
	f.st.mu.Unlock()
	if hadSnap {
		if _, err := f.Refresh(ctx); err != nil {
			return fmt.Errorf("import %s: %w", im.name, err)
		}
	}
	return nil
}

// writeKeywords merges the importer's keywords into dovecot-keywords.
func (im *Importer) writeKeywords(ctx context.Context) error {
	s := im.s
	path := filepath.Join(im.dir, "dovecot-keywords")
	lk, err := acquireLock(ctx, path, s.opts.LockTimeout, s.host, !s.opts.NoFsync)
	if err != nil {
		return fmt.Errorf("import %s: %w", im.name, err)
	}
	defer lk.release()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("import %s: %w", im.name, err)
	}
	cur, _ := parseKeywords(data)
	merged := append([]string(nil), im.kw...)
	for i, k := range cur {
		if k == "" {
			continue
		}
		if i < len(merged) && merged[i] != "" && merged[i] != k {
			return fmt.Errorf("import %s: keyword letter %c is %q on disk but %q in the import", im.name, 'a'+i, k, merged[i])
		}
		for len(merged) <= i {
			merged = append(merged, "")
		}
		merged[i] = k
	}
	return lk.replace(formatKeywords(merged))
}

// writeUIDList rewrites dovecot-uidlist from what is on disk: imported
// files by their U= UID, others after them.
func (im *Importer) writeUIDList(ctx context.Context) error {
	s := im.s
	path := filepath.Join(im.dir, "dovecot-uidlist")
	lk, err := acquireLock(ctx, path, s.opts.LockTimeout, s.host, !s.opts.NoFsync)
	if err != nil {
		return fmt.Errorf("import %s: %w", im.name, err)
	}
	defer lk.release()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("import %s: %w", im.name, err)
	}
	old, err := parseUIDList(data)
	if err != nil {
		s.log.Warn("import: replacing broken dovecot-uidlist", "folder", im.name, "err", err)
		old = &uidlist{Keys: map[string]uint32{}}
	}
	type other struct {
		key    string
		oldUID uint32
	}
	var imported []uidEntry
	var others []other
	seenUID := map[uint32]bool{}
	for _, sub := range []string{"cur", "new"} {
		names, err := readNames(filepath.Join(im.dir, sub))
		if err != nil {
			return err
		}
		for _, n := range names {
			if n == "" || n[0] == '.' {
				continue
			}
			key := keyOf(n)
			if _, _, uid := sizesFromKey(key); uid != 0 && !seenUID[uid] {
				seenUID[uid] = true
				imported = append(imported, uidEntry{uid, key})
				continue
			}
			others = append(others, other{key, old.Keys[key]})
		}
	}
	var maxUID uint32
	for _, e := range imported {
		if e.UID > maxUID {
			maxUID = e.UID
		}
	}
	next := maxUID + 1
	if im.uidNext > next {
		next = im.uidNext
	}
	sort.Slice(others, func(i, j int) bool {
		a, b := others[i], others[j]
		if (a.oldUID == 0) != (b.oldUID == 0) {
			return b.oldUID == 0
		}
		if a.oldUID != b.oldUID {
			return a.oldUID < b.oldUID
		}
		return a.key < b.key
	})
	entries := imported
	sameValidity := old.UIDValidity == im.uidValidity
	for _, o := range others {
		if sameValidity && o.oldUID >= next && !seenUID[o.oldUID] {
			entries = append(entries, uidEntry{o.oldUID, o.key})
			seenUID[o.oldUID] = true
			if o.oldUID >= next {
				next = o.oldUID + 1
			}
			continue
		}
		if sameValidity && o.oldUID != 0 {
			s.log.Warn("import: message renumbered under unchanged UIDVALIDITY", "folder", im.name, "key", o.key, "old", o.oldUID, "new", next)
		}
		entries = append(entries, uidEntry{next, o.key})
		seenUID[next] = true
		next++
	}
	if sameValidity && old.NextUID > next {
		next = old.NextUID
	}
	guid := old.GUID
	if !validGUID(guid) {
		guid = newGUID()
	}
	return lk.replaceFunc(func(w io.Writer) error {
		return formatUIDList(w, im.uidValidity, next, guid, entries)
	})
}
