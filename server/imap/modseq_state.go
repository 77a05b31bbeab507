package imap

import (
	"slices"

	"mailmig/mailstore"
)

// A MODSEQ names one state of a message's flags (RFC 7162 §3.1.1), so
// the flags and the MODSEQ of one FETCH response must belong together. A
// session's snapshot can be a little older than the folder's tracker
// (another session changed the message in between): it would then show
// the old flags with the new modseq, and two clients would see different
// flags at one modseq (a client caching by modseq never repairs that).
// With CONDSTORE on, the flags written are therefore the tracker's
// newest for the message and the modseq written after them the one that
// goes with them, read together under the tracker's lock.

// stateOf returns uid's flags in the tracker's newest snapshot and their
// modseq.
func (t *folderModseq) stateOf(uid uint32) (flags []string, modseq uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		return nil, 0, false
	}
	m, ok := t.last.Lookup(uid)
	if !ok {
		// Expunged: the flags it had at its last modseq.
		if f, ok := t.goneFlags[uid]; ok {
			return f, t.modseqLocked(uid), true
		}
		return nil, 0, false
	}
	return m.Flags, t.modseqLocked(uid), true
}

// flagsWithModseq returns m, or a copy with the tracker's newest flags,
// and remembers the modseq that goes with the flags for modseqShown.
func (c *conn) flagsWithModseq(m *mailstore.MessageInfo) *mailstore.MessageInfo {
	c.shownUID, c.shownModseq = 0, 0
	if !c.condstore || c.sel == nil || c.sel.ms == nil {
		return m
	}
	flags, modseq, ok := c.sel.ms.stateOf(m.UID)
	if !ok {
		return m
	}
	c.shownUID, c.shownModseq = m.UID, modseq
	if slices.Equal(flags, m.Flags) {
		return m
	}
	cp := *m
	cp.Flags = flags
	return &cp
}

// modseqShown is uid's modseq: the one of the flags just written for it,
// if any (used once), else the tracker's.
func (c *conn) modseqShown(uid uint32) uint64 {
	if uid == c.shownUID && c.shownModseq != 0 {
		v := c.shownModseq
		c.shownUID, c.shownModseq = 0, 0
		return v
	}
	return c.sel.ms.modseq(uid)
}
