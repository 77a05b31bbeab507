package imap

import (
	"slices"
	"strings"
	"time"

	"mailmig/mailstore"
)

// RFC 5465 §5.4 MailboxName, §5.5 SubscriptionChange and §5.8
// NOTIFICATIONOVERFLOW, and the folders that come into a NOTIFY filter
// after NOTIFY SET (docs/imap.md, "NOTIFY").
//
// The session keeps the folder names (with their hierarchy levels, as
// dovecot's list index has them) and the subscriptions it last told the
// client of. When the store reports a list change made in this process
// (mailstore WatchList), or the tree's ListStamp stays changed for a
// poll interval (a folder made by the converter or by `mailmig deliver`
// in another process), the session reads both again and reports the
// difference: a new name is `* LIST () "/" name`, a gone one
// `(\NonExistent)`, a rename `("OLDNAME" (old))` after the new name,
// a new subscription `(\Subscribed)`, a removed one `()` — the lines and
// attributes dovecot 2.3 sends (testdata/notify/mailboxname.txt).

// notifyListStart watches the folder list for n and records the names
// and subscriptions the client knows now.
func (c *conn) notifyListStart(n *notifyState) error {
	// Watch first, then read: a change between the two is reported,
	// never lost.
	ch, stop := c.store.WatchList()
	stamp := c.store.ListStamp()
	folders, err := c.store.Folders()
	if err != nil {
		stop()
		return err
	}
	subs, err := c.store.Subscriptions()
	if err != nil {
		stop()
		return err
	}
	n.names = folderLevels(folders)
	n.subs = make(map[string]bool, len(subs))
	for _, s := range subs {
		n.subs[s] = true
	}
	store := c.store
	done := make(chan struct{})
	tick := time.NewTicker(c.srv.opts.PollInterval)
	go func() {
		defer tick.Stop()
		last, seen := stamp, stamp
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					return
				}
				n.mu.Lock()
				n.listDirty = true
				if ev.Kind == mailstore.ChangeFolderRenamed {
					n.renames = append(n.renames, ev)
				}
				n.note()
				n.mu.Unlock()
			case <-tick.C:
				// A changed stamp is looked at once it stayed the same
				// for a tick, so that this process's own changes arrive
				// first as events (with their renames).
				cur := store.ListStamp()
				if cur != last {
					last = cur
					continue
				}
				if cur != seen {
					seen = cur
					n.mu.Lock()
					if !n.listDirty {
						n.listDirty = true
						n.note()
					}
					n.mu.Unlock()
				}
			case <-done:
				return
			}
		}
	}()
	n.mu.Lock()
	n.stops = append(n.stops, func() { close(done); stop() })
	n.mu.Unlock()
	return nil
}

// folderLevels maps every folder name and every hierarchy level above
// one to whether it is a folder itself.
func folderLevels(folders []mailstore.FolderInfo) map[string]bool {
	out := make(map[string]bool, len(folders))
	for _, f := range folders {
		out[f.Name] = true
		for i := strings.IndexByte(f.Name, delim); i >= 0; {
			lvl := f.Name[:i]
			if _, ok := out[lvl]; !ok {
				out[lvl] = false
			}
			j := strings.IndexByte(f.Name[i+1:], delim)
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	return out
}

// notifyDeliver sends what n has waiting; false after an overflow, which
// ends NOTIFY (RFC 5465 §5.8).
func (c *conn) notifyDeliver(n *notifyState) bool {
	n.mu.Lock()
	if n.overflow {
		n.mu.Unlock()
		c.notifyOverflow()
		return false
	}
	dirty := make([]string, 0, len(n.dirty))
	for k := range n.dirty {
		dirty = append(dirty, k)
	}
	clear(n.dirty)
	listDirty, renames := n.listDirty, n.renames
	n.listDirty, n.renames, n.pending = false, nil, 0
	n.mu.Unlock()
	if listDirty {
		dirty = append(dirty, c.notifyList(n, renames)...)
	}
	slices.Sort(dirty)
	dirty = slices.Compact(dirty)
	for _, name := range dirty {
		if c.isSelected(name) {
			continue
		}
		// A folder that came into the filter after NOTIFY SET keeps
		// UIDVALIDITY in its STATUS, as dovecot's (its list index holds
		// no UIDVALIDITY for a folder another process created).
		c.writeStatus(&mbox{name: name, owner: c.user, folder: name, store: c.store, c: c}, notifyStatusItems(c, n.fresh[name]))
	}
	return true
}

// notifyOverflow ends NOTIFY for this session (RFC 5465 §5.8: "behave as
// if a NOTIFY NONE command had just been received").
func (c *conn) notifyOverflow() {
	c.w.raw("* OK [NOTIFICATIONOVERFLOW] too many notifications waiting, NOTIFY is off").crlf()
	c.log.Info("imap: NOTIFY overflow", "user", c.user, "max", c.srv.opts.NotifyMaxPending)
	if c.notify != nil {
		c.notify.stop()
		c.notify = nil
	}
	c.notifyNoCounts, c.notifyNoFlags = true, true
}

// notifyList reads the folder list and subscriptions again and sends
// the LIST responses for what changed (RFC 5465 §5.4, §5.5); it starts
// and stops the watches of folders that came into or left a filter with
// message events, and returns new folders that hold messages already
// (they get a STATUS, as in dovecot).
func (c *conn) notifyList(n *notifyState, renames []mailstore.Change) (status []string) {
	folders, err := c.store.Folders()
	if err != nil {
		c.log.Warn("imap: NOTIFY folder list", "user", c.user, "err", err)
		return nil
	}
	subList, err := c.store.Subscriptions()
	if err != nil {
		c.log.Warn("imap: NOTIFY subscriptions", "user", c.user, "err", err)
		return nil
	}
	names := folderLevels(folders)
	subs := make(map[string]bool, len(subList))
	for _, s := range subList {
		subs[s] = true
	}
	req := n.req
	listLine := func(attrs, name, old string) {
		c.w.raw("* LIST (").raw(attrs).raw(`) "/" `).mailbox(name)
		if old != "" {
			c.w.raw(` ("OLDNAME" (`).mailbox(old).raw("))")
		}
		c.w.crlf()
	}
	// RFC 5465 §5.4: a rename is one LIST of the new name with OLDNAME.
	done := map[string]bool{}
	for _, r := range renames {
		_, knewOld := n.names[r.OldFolder]
		_, knewNew := n.names[r.Folder]
		_, isOld := names[r.OldFolder]
		if !knewOld || knewNew || isOld || !names[r.Folder] || done[r.Folder] {
			continue
		}
		done[r.Folder], done[r.OldFolder] = true, true
		if req.matches(r.Folder, subs[r.Folder], "MailboxName") {
			listLine("", r.Folder, r.OldFolder)
		}
	}
	var changed []string
	for _, name := range sortedKeys(names) {
		if _, ok := n.names[name]; ok {
			continue
		}
		changed = append(changed, name)
		if !done[name] && req.matches(name, subs[name], "MailboxName") {
			listLine("", name, "")
		}
	}
	for _, name := range sortedKeys(n.names) {
		if _, ok := names[name]; ok {
			continue
		}
		changed = append(changed, name)
		if !done[name] && req.matches(name, subs[name], "MailboxName") {
			listLine(`\NonExistent`, name, "")
		}
	}
	// RFC 5465 §5.5: \Subscribed if and only if subscribed after the
	// event; dovecot matches the filter with the state after it too.
	for _, name := range sortedKeys(subs) {
		if n.subs[name] {
			continue
		}
		changed = append(changed, name)
		if req.matches(name, true, "SubscriptionChange") {
			attrs := `\Subscribed`
			if !names[name] {
				attrs = `\NonExistent \Subscribed`
			}
			listLine(attrs, name, "")
		}
	}
	for _, name := range sortedKeys(n.subs) {
		if subs[name] {
			continue
		}
		changed = append(changed, name)
		if req.matches(name, false, "SubscriptionChange") {
			attrs := ""
			if !names[name] {
				attrs = `\NonExistent`
			}
			listLine(attrs, name, "")
		}
	}
	n.names, n.subs = names, subs
	// Folders that came into or left a filter with message events.
	for _, name := range changed {
		want := names[name] && req.covers(name, subs[name])
		n.mu.Lock()
		has := n.watches[name] != nil
		n.mu.Unlock()
		switch {
		case want && !has:
			if f, err := c.store.Folder(name); err == nil {
				ctx, cancel := c.ctx()
				snap, err := c.srv.modseq.tracker(f).snapshot(ctx, f)
				cancel()
				// A new folder's STATUS carries its UIDVALIDITY (see
				// notifyDeliver); one that holds mail already gets one
				// now.
				if n.fresh == nil {
					n.fresh = map[string]bool{}
				}
				n.fresh[name] = true
				if err == nil && snap != nil && len(snap.Messages) > 0 {
					status = append(status, name)
				}
			}
			n.watchFolder(c.store, name)
		case !want && has:
			n.unwatchFolder(name)
			delete(n.fresh, name)
		}
	}
	return status
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
