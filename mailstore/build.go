package mailstore

import (
	"cmp"
	"slices"
)

// build makes a Snapshot of the cached state: from the previous
// snapshot when it can (reusing unchanged entries), else from scratch.
func (st *folderState) build() *Snapshot {
	if !st.touchedAll {
		if snap := st.buildTouched(); snap != nil {
			return snap
		}
	}
	if snap := st.buildIncremental(); snap != nil {
		return snap
	}
	return st.buildFull()
}

// touch records that key's file or UID changed.
func (st *folderState) touch(key string) {
	if st.touched == nil {
		st.touched = map[string]struct{}{}
	}
	st.touched[key] = struct{}{}
}

// sameListing reports whether names (a directory listing) is exactly the
// listing cached in known, without building a map.
func sameListing(names []string, known map[string]fileEntry) bool {
	n := 0
	for _, name := range names {
		if name == "" || name[0] == '.' {
			continue
		}
		e, ok := known[keyOf(name)]
		if !ok || e.name != name {
			return false
		}
		n++
	}
	return n == len(known)
}

// buildTouched derives the snapshot from the previous one by redoing only
// the touched keys: O(touched · log n), plus one copy of the message list
// when an entry changed or went away; pure appends reuse it. It returns
// nil when it cannot be sure (then a fuller build runs).
func (st *folderState) buildTouched() *Snapshot {
	prev, ul := st.snap, st.ul
	if prev == nil || prev.UIDValidity != ul.UIDValidity || !equalFlags(prev.Keywords, st.keywords) {
		return nil
	}
	var added []MessageInfo
	var changed map[int]MessageInfo // index in prev → new info
	var removed map[int]bool
	for key := range st.touched {
		uid, hasUID := ul.Keys[key]
		e, sub, onDisk := st.lookup(key)
		idx := -1
		if hasUID {
			idx = prev.Index(uid)
			if idx >= 0 && prev.Messages[idx].Key != key {
				return nil
			}
		}
		switch {
		case idx >= 0 && !onDisk:
			if removed == nil {
				removed = map[int]bool{}
			}
			removed[idx] = true
		case idx >= 0:
			if changed == nil {
				changed = map[int]MessageInfo{}
			}
			changed[idx] = st.info(sub, key, e, uid)
		case onDisk && hasUID && uid >= prev.UIDNext:
			added = append(added, st.info(sub, key, e, uid))
		case onDisk:
			return nil // an old UID came back, or a file without UID
		}
	}
	snap := st.newSnapshot(0)
	switch {
	case len(changed) == 0 && len(removed) == 0:
		snap.Messages = prev.Messages // appending below never touches prev's view
	default:
		snap.Messages = make([]MessageInfo, 0, len(prev.Messages)-len(removed)+len(added)+16)
		for i, m := range prev.Messages {
			if removed[i] {
				continue
			}
			if c, ok := changed[i]; ok {
				m = c
			}
			snap.Messages = append(snap.Messages, m)
		}
	}
	slices.SortFunc(added, func(a, b MessageInfo) int { return cmp.Compare(a.UID, b.UID) })
	snap.Messages = append(snap.Messages, added...)
	// Cheap consistency check: the count must match the files on disk.
	total := len(st.curFiles)
	for key := range st.newFiles {
		if _, dup := st.curFiles[key]; !dup {
			total++
		}
	}
	if len(snap.Messages) != total {
		return nil
	}
	return snap
}

func (st *folderState) newSnapshot(n int) *Snapshot {
	return &Snapshot{UIDValidity: st.ul.UIDValidity, UIDNext: st.ul.NextUID,
		Keywords: append([]string(nil), st.keywords...), Messages: make([]MessageInfo, 0, n)}
}

// info makes the MessageInfo of a file.
func (st *folderState) info(sub, key string, e fileEntry, uid uint32) MessageInfo {
	size, vsize, _ := sizesFromKey(key)
	if size < 0 {
		size = e.fsize
	}
	return MessageInfo{
		UID:          uid,
		Key:          key,
		Flags:        ParseFlags(e.name, st.keywords),
		InternalDate: e.mtime,
		Size:         size,
		VSize:        vsize,
		Path:         st.dir + "/" + sub + "/" + e.name,
		Recent:       st.recent(sub, key),
	}
}

// lookup returns the file of key and its directory (cur/ wins).
func (st *folderState) lookup(key string) (fileEntry, string, bool) {
	if e, ok := st.curFiles[key]; ok {
		return e, "cur", true
	}
	if e, ok := st.newFiles[key]; ok {
		return e, "new", true
	}
	return fileEntry{}, "", false
}

func (st *folderState) buildFull() *Snapshot {
	ul := st.ul
	snap := st.newSnapshot(len(st.curFiles) + len(st.newFiles))
	for key, e := range st.curFiles {
		if uid, ok := ul.Keys[key]; ok {
			snap.Messages = append(snap.Messages, st.info("cur", key, e, uid))
		}
	}
	for key, e := range st.newFiles {
		if _, dup := st.curFiles[key]; dup {
			continue
		}
		if uid, ok := ul.Keys[key]; ok {
			snap.Messages = append(snap.Messages, st.info("new", key, e, uid))
		}
	}
	slices.SortFunc(snap.Messages, func(a, b MessageInfo) int { return cmp.Compare(a.UID, b.UID) })
	return snap
}

// buildIncremental derives the snapshot from the previous one: entries
// whose file is unchanged are copied, changed ones re-made, new UIDs
// (all at or above the previous UIDNEXT) appended. It returns nil when
// that cannot be right (UIDVALIDITY or keywords changed, or a file came
// back with an old UID).
func (st *folderState) buildIncremental() *Snapshot {
	prev, ul := st.snap, st.ul
	if prev == nil || prev.UIDValidity != ul.UIDValidity || !equalFlags(prev.Keywords, st.keywords) {
		return nil
	}
	snap := st.newSnapshot(len(prev.Messages) + 16)
	for _, m := range prev.Messages {
		e, sub, ok := st.lookup(m.Key)
		if !ok {
			continue // expunged
		}
		// UIDs of known keys only change when the uidlist was replaced.
		if st.checkAll && ul.Keys[m.Key] != m.UID {
			return nil
		}
		if m.Recent == st.recent(sub, m.Key) && nameOf(m.Path) == e.name {
			snap.Messages = append(snap.Messages, m)
		} else {
			snap.Messages = append(snap.Messages, st.info(sub, m.Key, e, m.UID))
		}
	}
	// New messages are among the keys first seen by this sync's scans;
	// if the counts do not add up (a file came back, a file lacks a UID),
	// build from scratch.
	var added []MessageInfo
	for key := range st.fresh {
		uid, ok := ul.Keys[key]
		if !ok || uid < prev.UIDNext {
			continue
		}
		if e, sub, ok := st.lookup(key); ok {
			added = append(added, st.info(sub, key, e, uid))
		}
	}
	total := len(st.curFiles)
	for key := range st.newFiles {
		if _, dup := st.curFiles[key]; !dup {
			total++
		}
	}
	if len(snap.Messages)+len(added) != total {
		return nil
	}
	slices.SortFunc(added, func(a, b MessageInfo) int { return cmp.Compare(a.UID, b.UID) })
	snap.Messages = append(snap.Messages, added...)
	return snap
}

// diffSnapshots lists the changes from a to b (a nil a means none).
func diffSnapshots(folder string, a, b *Snapshot) []Change {
	if a == nil || b == nil {
		return nil
	}
	if a.UIDValidity != b.UIDValidity {
		return []Change{{Kind: ChangeUIDValidity, Folder: folder}}
	}
	var out []Change
	i, j := 0, 0
	for i < len(a.Messages) || j < len(b.Messages) {
		switch {
		case j >= len(b.Messages) || (i < len(a.Messages) && a.Messages[i].UID < b.Messages[j].UID):
			out = append(out, Change{Kind: ChangeExpunge, Folder: folder, UID: a.Messages[i].UID})
			i++
		case i >= len(a.Messages) || b.Messages[j].UID < a.Messages[i].UID:
			m := b.Messages[j]
			out = append(out, Change{Kind: ChangeNew, Folder: folder, UID: m.UID, Flags: m.Flags})
			j++
		default:
			if !equalFlags(a.Messages[i].Flags, b.Messages[j].Flags) {
				m := b.Messages[j]
				out = append(out, Change{Kind: ChangeFlags, Folder: folder, UID: m.UID, Flags: m.Flags})
			}
			i++
			j++
		}
	}
	return out
}

func equalFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true // the same slice: an entry carried over unchanged
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameSnapshot reports whether a and b describe the same state, paths
// included.
func sameSnapshot(a, b *Snapshot) bool {
	if a == nil || a.UIDValidity != b.UIDValidity || a.UIDNext != b.UIDNext ||
		len(a.Messages) != len(b.Messages) || !equalFlags(a.Keywords, b.Keywords) {
		return false
	}
	for i := range a.Messages {
		x, y := &a.Messages[i], &b.Messages[i]
		if x.UID != y.UID || x.Path != y.Path || x.Recent != y.Recent || !x.InternalDate.Equal(y.InternalDate) || !equalFlags(x.Flags, y.Flags) {
			return false
		}
	}
	return true
}
