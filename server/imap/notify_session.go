package imap

import (
	"strings"
	"sync"
	"time"

	"mailmig/mailstore"
)

// notifyState is a session's active NOTIFY SET (RFC 5465 §3): the
// request, the watches of the non-selected folders it covers and of the
// folder list, and what changed since the client was last told. The
// watch goroutines fill it under mu; the session goroutine delivers it.
type notifyState struct {
	req    *notifyRequest
	signal chan struct{}
	max    int // NotifyMaxPending

	mu        sync.Mutex
	stops     []func()
	watches   map[string]func() // folder -> stop of its watch
	dirty     map[string]bool   // folders to report with STATUS
	listDirty bool              // folders or subscriptions may have changed
	renames   []mailstore.Change
	pending   int  // notifications waiting (dirty folders + list changes)
	overflow  bool // pending passed max (RFC 5465 §5.8)
	closed    bool

	// Used by the session goroutine only (notify_list.go): the folder
	// names with their hierarchy levels, and the subscriptions, as the
	// client was last told.
	names map[string]bool
	subs  map[string]bool
	fresh map[string]bool // came in after SET: UIDVALIDITY in STATUS
}

func (n *notifyState) stop() {
	n.mu.Lock()
	stops := n.stops
	for _, s := range n.watches {
		stops = append(stops, s)
	}
	n.stops, n.watches, n.closed = nil, nil, true
	n.mu.Unlock()
	for _, s := range stops {
		s()
	}
}

// note records one more waiting notification and wakes the session;
// past the bound the state overflows. Called with mu held.
func (n *notifyState) note() {
	if n.pending++; n.pending > n.max {
		n.overflow = true
	}
	select {
	case n.signal <- struct{}{}:
	default:
	}
}

// watchFolder starts watching a non-selected folder's message changes.
func (n *notifyState) watchFolder(store *mailstore.Store, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.watches[name] != nil {
		return
	}
	ch, stop := store.Watch(name)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
				n.mu.Lock()
				if !n.dirty[name] {
					n.dirty[name] = true
					n.note()
				}
				n.mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	n.watches[name] = func() { once.Do(func() { close(done); stop() }) }
}

// unwatchFolder stops watching a folder that is gone.
func (n *notifyState) unwatchFolder(name string) {
	n.mu.Lock()
	stop := n.watches[name]
	delete(n.watches, name)
	delete(n.dirty, name)
	n.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// selectedGroup returns the event group for the selected mailbox, if any.
func (r *notifyRequest) selectedGroup() *notifyGroup {
	for i := range r.groups {
		if strings.HasPrefix(r.groups[i].filter.kind, "selected") {
			return &r.groups[i]
		}
	}
	return nil
}

// covers tells whether the personal folder name is matched by a
// non-selected filter with message events (RFC 5465 §6); subscribed
// tells whether it is subscribed.
func (r *notifyRequest) covers(name string, subscribed bool) bool {
	return r.matches(name, subscribed, "MessageNew")
}

// matches tells whether a non-selected filter whose events include
// event matches the personal folder name (RFC 5465 §6, as dovecot's
// imap_notify_match_mailbox).
func (r *notifyRequest) matches(name string, subscribed bool, event string) bool {
	for _, g := range r.groups {
		if g.events.none || !g.events.has(event) {
			continue
		}
		switch g.filter.kind {
		case "personal", "inboxes":
			// RFC 5465 §6.3: a server that cannot tell which mailboxes
			// receive mail treats inboxes as personal; Sieve fileinto
			// can deliver to any folder, and dovecot does the same.
			return true
		case "subscribed":
			if subscribed {
				return true
			}
		case "mailboxes":
			for _, m := range g.filter.mailboxes {
				if m == name || (strings.EqualFold(m, "INBOX") && strings.EqualFold(name, "INBOX")) {
					return true
				}
			}
		case "subtree":
			for _, m := range g.filter.mailboxes {
				if strings.EqualFold(m, "INBOX") && strings.EqualFold(name, "INBOX") {
					return true
				}
				if m == name || strings.HasPrefix(name, m+string(delim)) {
					return true
				}
			}
		}
	}
	return false
}

// wantsList tells whether the request needs the folder list watched:
// for MailboxName or SubscriptionChange, or to watch folders that come
// into a filter with message events later (created, renamed,
// subscribed).
func (r *notifyRequest) wantsList() bool {
	for _, g := range r.groups {
		if g.events.none || strings.HasPrefix(g.filter.kind, "selected") {
			continue
		}
		if len(g.events.names) > 0 {
			return true
		}
	}
	return false
}

// RFC 5465 §3: NOTIFY SET replaces the client's notification request,
// NOTIFY NONE ends it.
func (c *conn) cmdNotify(tag string, p *parser, _ bool) error {
	req, err := parseNotify(p)
	if err != nil {
		return err
	}
	if c.notify != nil {
		c.notify.stop()
		c.notify = nil
	}
	// RFC 5465 §3.1: NOTIFY NONE means no interest in any event, and a
	// NOTIFY SET without a selected filter is the same as
	// (selected NONE). dovecot then sends no EXISTS, RECENT or EXPUNGE
	// (without MessageNew) and no flag FETCH (without FlagChange) for
	// the selected mailbox, not even on NOOP; its view still follows
	// the mailbox. So does this server (testdata/notify/none.txt).
	c.notifyNoCounts, c.notifyNoFlags = true, true
	if g := req.selectedGroup(); g != nil && !g.events.none {
		c.notifyNoCounts = !g.events.has("MessageNew")
		c.notifyNoFlags = !g.events.has("FlagChange")
	}
	if req.none {
		return c.ok(tag, "", "NOTIFY completed", true)
	}
	n := &notifyState{req: req, signal: make(chan struct{}, 1), max: c.srv.opts.NotifyMaxPending,
		watches: map[string]func(){}, dirty: map[string]bool{}, fresh: map[string]bool{}}
	folders, err := c.store.Folders()
	if err != nil {
		return c.storeErr("NOTIFY", &mbox{name: "INBOX", owner: c.user, folder: "INBOX", store: c.store, c: c}, err)
	}
	if req.wantsList() {
		// Watch the list before reading it, so that no change falls
		// between the two (notify_list.go).
		if err := c.notifyListStart(n); err != nil {
			n.stop()
			return c.storeErr("NOTIFY", &mbox{name: "INBOX", owner: c.user, folder: "INBOX", store: c.store, c: c}, err)
		}
	}
	for _, fi := range folders {
		if !req.covers(fi.Name, fi.Subscribed) {
			continue
		}
		name := fi.Name
		m := &mbox{name: name, owner: c.user, folder: name, store: c.store, c: c}
		// Load the folder before watching it: a first load reports
		// what it finds as changes, which are no news to the client.
		// RFC 5465 §3.1: STATUS sends the current state of each
		// non-selected mailbox the request covers.
		if req.status && !c.isSelected(name) {
			if err := c.writeStatus(m, notifyStatusItems(c, true)); err != nil {
				n.stop()
				return err
			}
		} else {
			c.notifyLoad(name)
		}
		n.watchFolder(c.store, name)
	}
	c.notify = n
	return c.ok(tag, "", "NOTIFY completed", true)
}

// notifyLoad loads a folder's state before it is watched.
func (c *conn) notifyLoad(name string) {
	if f, err := c.store.Folder(name); err == nil {
		ctx, cancel := c.ctx()
		c.srv.modseq.tracker(f).snapshot(ctx, f)
		cancel()
	}
}

func (c *conn) isSelected(folder string) bool {
	return c.sel != nil && c.sel.mb.owner == c.user && c.sel.mb.folder == folder
}

// notifyStatusItems are the STATUS items of a non-selected mailbox's
// notification (RFC 5465 §5.2-§5.4); UIDVALIDITY only in the answer to
// NOTIFY SET STATUS, as dovecot does.
func notifyStatusItems(c *conn, initial bool) []string {
	items := []string{"MESSAGES", "UIDNEXT", "UNSEEN"}
	if initial {
		items = []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"}
	}
	if c.condstore || c.condstoreEnabled {
		items = append(items, "HIGHESTMODSEQ")
	}
	return items
}

// notifyWait sends notifications while the client is silent between
// commands (RFC 5465 §3: "at any time"), until a byte of the next
// command arrives or the read fails; the command is then read as usual.
func (c *conn) notifyWait() error {
	n := c.notify
	peeked := make(chan struct{})
	go func() {
		c.br.Peek(1)
		close(peeked)
	}()
	var events <-chan mailstore.Change
	g := n.req.selectedGroup()
	if c.sel != nil && g != nil && !g.events.none {
		stopPoll := c.srv.pollers.watch(c.sel.folder)
		defer stopPoll()
		events = c.sel.events
	}
	for {
		select {
		case <-peeked:
			return nil
		case ch, ok := <-events:
			if !ok {
				events = nil
			} else if ch.Kind == mailstore.ChangeFolderDeleted || ch.Kind == mailstore.ChangeUIDValidity {
				c.sel.gone = true
			}
			time.Sleep(10 * time.Millisecond)
			c.sel.changed()
			var last uint32
			if n := len(c.sel.uids); n > 0 {
				last = c.sel.uids[n-1]
			}
			// selected-delayed: no EXPUNGE until a command allows it
			// (RFC 5465 §6).
			c.sendUpdates(g.filter.kind == "selected")
			if c.sel != nil && len(g.events.fetchAtts) > 0 {
				c.notifyFetchNew(last, g.events.fetchAtts)
			}
			if err := c.w.flush(); err != nil {
				<-peeked
				return &ioError{err}
			}
			if c.state == stateLogout {
				c.nc.Close()
				<-peeked
				return &ioError{errGone}
			}
		case <-n.signal:
			time.Sleep(10 * time.Millisecond)
			if !c.notifyDeliver(n) {
				// Overflow: NOTIFY NONE from now on (RFC 5465 §5.8).
				events = nil
			}
			if err := c.w.flush(); err != nil {
				<-peeked
				return &ioError{err}
			}
		case <-c.closingCh:
			<-peeked
			return nil
		}
	}
}

// notifyFetchNew sends MessageNew's fetch-att for the messages of the
// view above UID last (RFC 5465 §5.2), after their EXISTS.
func (c *conn) notifyFetchNew(last uint32, items []fetchItem) {
	s := c.sel
	ctx, cancel := c.ctx()
	defer cancel()
	snap, err := s.snapshot(ctx)
	if err != nil {
		return
	}
	for _, u := range s.uids {
		if u <= last {
			continue
		}
		mi, ok := snap.Lookup(u)
		if !ok {
			continue
		}
		var content []byte
		for _, it := range items {
			if it.kind != "UID" && it.kind != "FLAGS" && it.kind != "MODSEQ" && it.kind != "INTERNALDATE" && it.kind != "RFC822.SIZE" {
				if content, err = c.readContent(s.folder, mi, false, nil); err != nil {
					c.log.Warn("imap: read message", "mailbox", s.mb.name, "uid", u, "err", err)
					return
				}
				break
			}
		}
		c.w.raw("* ").num(s.seqOf(u)).raw(" FETCH (")
		for i, it := range items {
			if i > 0 {
				c.w.sp()
			}
			if it.kind == "UID" {
				c.w.raw("UID ").num(u)
				continue
			}
			if err := c.fetchItem(it, &mi, content); err != nil {
				return
			}
		}
		c.w.raw(")").crlf()
	}
}
