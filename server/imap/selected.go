package imap

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
)

// selected is the session's view of its selected folder.
//
// The view is the list of UIDs the client knows (sequence number =
// index+1). Flags are read from the store's shared snapshot; base is the
// snapshot whose flags the client was last told, so flag changes are found
// by comparing base with the current snapshot. For CONDSTORE, a per-folder
// modseq kept beside the snapshot (in memory, or a small file) can be
// compared the same way and reported as MODSEQ in the same FETCH
// responses (see updates).
type selected struct {
	mb       *mbox
	folder   *mailstore.Folder
	readOnly bool
	rights   string
	uids     []uint32
	base     *mailstore.Snapshot
	recent   map[uint32]bool // rev1 \Recent, claimed at SELECT
	gone     bool            // folder deleted or UIDVALIDITY changed
	warned   bool            // checkBelowView logged once
	events   <-chan mailstore.Change
	unwatch  func()
	// snap is the snapshot taken during the current command; changes made
	// by the command clear it (see snapshot).
	snap *mailstore.Snapshot
	// ms assigns CONDSTORE mod-sequences; every snapshot goes through it.
	ms *folderModseq
	// searchRes is the result saved by SEARCH RETURN (SAVE), as UIDs
	// (RFC 5182), referred to as "$".
	searchRes []uint32
	// announced are the keywords the client was told of in FLAGS.
	announced []string
	// updates are the active RETURN (UPDATE) searches (context.go).
	updates []*searchUpdate
}

// snapshot returns the folder's current snapshot, taken at most once per
// command: taking one syncs with the disk, which is the main cost of a
// command on a busy folder.
func (s *selected) snapshot(ctx context.Context) (*mailstore.Snapshot, error) {
	if s.snap != nil {
		return s.snap, nil
	}
	snap, err := s.ms.snapshot(ctx, s.folder)
	if err != nil {
		return nil, err
	}
	s.snap = snap
	return snap, nil
}

// changed forgets the command's snapshot after the command changed the
// folder.
func (s *selected) changed() { s.snap = nil }

// seqOf returns the sequence number of uid, or 0.
func (s *selected) seqOf(uid uint32) uint32 {
	i, ok := slices.BinarySearch(s.uids, uid)
	if !ok {
		return 0
	}
	return uint32(i + 1)
}

// RFC 9051 §6.3.2, §6.3.3
func (c *conn) cmdSelect(tag string, p *parser, _ bool) error {
	examine := c.cmdName == "EXAMINE"
	if err := p.sp(); err != nil {
		return err
	}
	// A failed SELECT leaves no mailbox selected (RFC 9051 §6.3.2).
	if c.sel != nil {
		c.unselect()
		c.state = stateAuth
		c.w.raw("* OK [CLOSED] previous mailbox closed").crlf()
	}
	m, err := c.mailboxArg(p)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			m.release()
		}
	}()
	// RFC 7162 §3.1.8 SELECT/EXAMINE (CONDSTORE), §3.2.5 (QRESYNC (...)).
	var qr *qresyncParams
	if p.take(' ') {
		if err := p.expect('('); err != nil {
			return err
		}
		for !p.take(')') {
			p.take(' ')
			a, err := p.atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(a) {
			case "CONDSTORE":
				c.condstore = true
			case "QRESYNC":
				if !c.qresync {
					return errBad("QRESYNC must be enabled first")
				}
				if err := p.sp(); err != nil {
					return err
				}
				if qr, err = parseQResync(p); err != nil {
					return err
				}
			default:
				return errBad("unknown SELECT parameter %s", a)
			}
		}
	}
	if err := p.end(); err != nil {
		return err
	}
	rights := c.rights(m)
	if !strings.ContainsRune(rights, 'r') {
		if strings.ContainsRune(rights, 'l') {
			return errNo(imap.ResponseCodeNoPerm, "no read permission")
		}
		return errNo(imap.ResponseCodeNonExistent, "no such mailbox")
	}
	f, err := m.store.Folder(m.folder)
	if err != nil {
		return c.storeErr("SELECT", m, err)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	var recent []uint32
	readOnly := examine || !strings.ContainsAny(rights, "wsitex")
	if !readOnly && !c.rev2 {
		if recent, err = f.ClaimRecent(ctx); err != nil {
			return c.storeErr("SELECT", m, err)
		}
	}
	ms := c.srv.modseq.tracker(f)
	snap, err := ms.snapshot(ctx, f)
	if err != nil {
		return c.storeErr("SELECT", m, err)
	}
	if readOnly && !c.rev2 {
		// EXAMINE (or no right to change the folder) shows the messages
		// that are \Recent without claiming them: the next SELECT still
		// gets them, and STATUS agrees (dovecot does the same).
		for i := range snap.Messages {
			if snap.Messages[i].Recent {
				recent = append(recent, snap.Messages[i].UID)
			}
		}
	}
	// RFC 8474 §4.2 (objectid.go); a SELECT does not fail for it.
	mailboxID, err := f.MailboxGUID(ctx)
	if err != nil {
		c.log.Warn("imap: SELECT mailbox id", "user", c.user, "mailbox", m.name, "err", err)
	}
	sel := &selected{mb: m, folder: f, readOnly: readOnly, rights: rights, base: snap, ms: ms}
	sel.uids = make([]uint32, len(snap.Messages))
	for i := range snap.Messages {
		sel.uids[i] = snap.Messages[i].UID
	}
	if len(recent) > 0 {
		sel.recent = make(map[uint32]bool, len(recent))
		for _, u := range recent {
			sel.recent[u] = true
		}
	}
	sel.events, sel.unwatch = m.store.Watch(m.folder)
	keep = true
	c.sel, c.state = sel, stateSelected

	// Responses: RFC 9051 §6.3.2 (rev2 drops RECENT and UNSEEN).
	c.writeFlagList(snap.Keywords)
	c.w.raw("* ").num(uint32(len(sel.uids))).raw(" EXISTS").crlf()
	if !c.rev2 {
		c.w.raw("* ").num(uint32(len(recent))).raw(" RECENT").crlf()
		for i := range snap.Messages {
			if !snap.Messages[i].HasFlag(mailstore.FlagSeen) {
				c.w.raw("* OK [UNSEEN ").num(uint32(i + 1)).raw("] first unseen").crlf()
				break
			}
		}
	}
	c.w.raw("* OK [UIDVALIDITY ").num(snap.UIDValidity).raw("] UIDs valid").crlf()
	c.w.raw("* OK [UIDNEXT ").num(snap.UIDNext).raw("] predicted next UID").crlf()
	c.w.raw("* OK [HIGHESTMODSEQ ").num64(int64(ms.highestModSeq())).raw("] highest").crlf()
	if mailboxID != "" {
		// RFC 8474 §4.2.
		c.w.status("", imap.StatusResponseTypeOK, mailboxIDCode(mailboxID), "Ok")
	}
	if qr != nil && qr.uidValidity == snap.UIDValidity {
		c.qresyncSelect(qr, snap)
	}
	code := imap.ResponseCode("READ-WRITE")
	if readOnly {
		code = "READ-ONLY"
	}
	c.w.status(tag, imap.StatusResponseTypeOK, code, "SELECT completed")
	return nil
}

// permanentFlags lists the flags the user may change (RFC 4314 §4).
func permanentFlags(rights string, keywords []string) string {
	var l []string
	if strings.ContainsRune(rights, 'w') {
		l = append(l, `\Answered`, `\Flagged`, `\Draft`)
	}
	if strings.ContainsRune(rights, 't') {
		l = append(l, `\Deleted`)
	}
	if strings.ContainsRune(rights, 's') {
		l = append(l, `\Seen`)
	}
	if strings.ContainsRune(rights, 'w') {
		for _, k := range keywords {
			if k != "" {
				l = append(l, k)
			}
		}
		l = append(l, `\*`)
	}
	return strings.Join(l, " ")
}

// unselect drops the selected folder.
func (c *conn) unselect() {
	if c.sel == nil {
		return
	}
	c.sel.unwatch()
	c.sel.mb.release()
	c.sel = nil
}

// RFC 9051 §6.4.1 CLOSE (expunges silently) and RFC 3691 UNSELECT.
func (c *conn) cmdClose(tag string, p *parser, _ bool) error {
	isClose := c.cmdName == "CLOSE"
	if err := p.end(); err != nil {
		return err
	}
	if isClose && !c.sel.readOnly && strings.ContainsRune(c.sel.rights, 'e') {
		ctx, cancel := c.ctx()
		_, err := c.sel.folder.ExpungeDeleted(ctx, nil)
		cancel()
		if err != nil {
			c.log.Warn("imap: expunge at CLOSE", "mailbox", c.sel.mb.name, "err", err)
		}
	}
	c.unselect()
	c.state = stateAuth
	c.w.status(tag, imap.StatusResponseTypeOK, "", "closed")
	return nil
}

// RFC 9051 §6.4.3 EXPUNGE and RFC 4315 UID EXPUNGE.
func (c *conn) cmdExpunge(tag string, p *parser, uid bool) error {
	var set imap.SeqSet
	if uid {
		if err := p.sp(); err != nil {
			return err
		}
		var err error
		if set, err = p.numSet(); err != nil {
			return err
		}
	}
	if err := p.end(); err != nil {
		return err
	}
	if c.sel.readOnly {
		return errNo(imap.ResponseCodeCannot, "mailbox is read-only")
	}
	if !strings.ContainsRune(c.sel.rights, 'e') {
		return errNo(imap.ResponseCodeNoPerm, "no expunge permission")
	}
	var uids []uint32
	if uid {
		// "UID EXPUNGE $" is the saved result (RFC 5182 §2.1).
		uids, _ = c.sel.messages(set, true)
		if len(uids) == 0 {
			return c.ok(tag, "", "EXPUNGE completed", true)
		}
	}
	ctx, cancel := c.ctx()
	defer cancel()
	c.sel.changed()
	if _, err := c.sel.folder.ExpungeDeleted(ctx, uids); err != nil {
		return c.storeErr("EXPUNGE", c.sel.mb, err)
	}
	return c.okExpunged(tag, "EXPUNGE completed")
}

// okExpunged ends an EXPUNGE, UID EXPUNGE or MOVE: once QRESYNC is on,
// the tagged OK carries the HIGHESTMODSEQ after the expunge (RFC 7162
// §3.2.10, as dovecot), so a client can store it without another round
// trip.
func (c *conn) okExpunged(tag, text string) error {
	if !c.qresync || c.sel == nil {
		return c.ok(tag, "", text, true)
	}
	ms := c.sel.ms
	c.sendUpdates(true)
	c.w.status(tag, imap.StatusResponseTypeOK, imap.ResponseCode("HIGHESTMODSEQ "+strconv.FormatUint(ms.highestModSeq(), 10)), text)
	return nil
}

// sendUpdates announces changes of the selected folder since the client
// was last told (RFC 9051 §7.4.1, §7.5.1, §5.5): EXPUNGE only when allowed,
// then EXISTS for new messages, then FETCH FLAGS for changed flags.
func (c *conn) sendUpdates(allowExpunge bool) {
	s := c.sel
	if s == nil {
		return
	}
	// Drain the event queue: the snapshot below tells the whole story,
	// events are only a wake-up (IDLE) and a sign of deletion.
	for drained := false; !drained; {
		select {
		case ch, ok := <-s.events:
			if !ok {
				drained = true
				break
			}
			if ch.Kind == mailstore.ChangeFolderDeleted || ch.Kind == mailstore.ChangeUIDValidity {
				s.gone = true
			}
		default:
			drained = true
		}
	}
	ctx, cancel := c.ctx()
	defer cancel()
	snap, err := s.snapshot(ctx)
	if err != nil || s.gone || (snap != nil && snap.UIDValidity != s.base.UIDValidity) {
		if err != nil {
			c.log.Warn("imap: snapshot of selected folder", "mailbox", s.mb.name, "err", err)
		}
		c.w.raw("* BYE mailbox was deleted or changed UIDVALIDITY").crlf()
		c.state = stateLogout
		return
	}
	if snap == s.base && len(s.uids) == len(snap.Messages) {
		c.sendSearchUpdates() // the session's own STORE moved base along
		return
	}
	// An expunged \Recent message lowers the session's RECENT count,
	// which dovecot announces.
	recentDropped := false
	if allowExpunge {
		c.sendExpungedFromSearches(snap)
		// Messages in the view but gone from the snapshot.
		j := 0
		kept := s.uids[:0:0]
		var vanished imap.UIDSet
		for _, uid := range s.uids {
			for j < len(snap.Messages) && snap.Messages[j].UID < uid {
				j++
			}
			if j < len(snap.Messages) && snap.Messages[j].UID == uid {
				kept = append(kept, uid)
				continue
			}
			if s.recent[uid] {
				delete(s.recent, uid)
				recentDropped = true
			}
			if c.notifyNoCounts {
				// NOTIFY without MessageExpunge for the selected
				// mailbox: the view shrinks unannounced, as in dovecot.
				continue
			}
			if c.qresync {
				// RFC 7162 §3.2.10: VANISHED replaces EXPUNGE.
				vanished.AddNum(imap.UID(uid))
				continue
			}
			// Sequence number after the earlier expunges were announced.
			c.w.raw("* ").num(uint32(len(kept) + 1)).raw(" EXPUNGE").crlf()
		}
		if len(vanished) > 0 {
			c.w.raw("* VANISHED ").raw(vanished.String()).crlf()
		}
		if len(kept) != len(s.uids) {
			s.uids = kept
		}
	}
	// New messages: UIDs above the last one in the view.
	var last uint32
	if n := len(s.uids); n > 0 {
		last = s.uids[n-1]
	}
	if snap != s.base {
		c.checkBelowView(snap, last)
	}
	start, _ := slices.BinarySearchFunc(snap.Messages, last+1, func(m mailstore.MessageInfo, u uint32) int {
		return int(int64(m.UID) - int64(u))
	})
	if start < len(snap.Messages) {
		for i := start; i < len(snap.Messages); i++ {
			s.uids = append(s.uids, snap.Messages[i].UID)
		}
		if !c.notifyNoCounts {
			c.w.raw("* ").num(uint32(len(s.uids))).raw(" EXISTS").crlf()
		}
		if c.claimNewRecent(ctx, snap, start) {
			recentDropped = false // the count sent is the new one
		}
	}
	if recentDropped && !c.rev2 && !c.notifyNoCounts {
		c.w.raw("* ").num(c.sel.recentCount()).raw(" RECENT").crlf()
	}
	// Flag changes between base and snap, for messages of the view.
	if snap != s.base {
		c.announceKeywords(snap)
		c.flagUpdates(s.base, snap, nil)
		s.base = snap
	}
	c.sendSearchUpdates()
}

// checkBelowView logs a message the store shows with a UID below the
// view's last one although the view does not have it: IMAP cannot show it
// in this session (sequence numbers follow UIDs), so it is a store bug
// worth knowing about (docs/mailstore.md: a snapshot never shows n+1 without n).
func (c *conn) checkBelowView(snap *mailstore.Snapshot, last uint32) {
	s := c.sel
	j := 0
	for i := range snap.Messages {
		u := snap.Messages[i].UID
		if u > last {
			return
		}
		for j < len(s.uids) && s.uids[j] < u {
			j++
		}
		if (j == len(s.uids) || s.uids[j] != u) && !s.warned {
			s.warned = true
			c.log.Error("imap: store showed a UID below the view", "mailbox", s.mb.name, "uid", u, "last", last)
			return
		}
	}
}

// flagUpdates writes FETCH FLAGS for messages of the view whose flags
// differ between old and cur, except those in skip (already reported).
func (c *conn) flagUpdates(old, cur *mailstore.Snapshot, skip map[uint32]bool) {
	s := c.sel
	if c.notifyNoFlags {
		return // NOTIFY without FlagChange for the selected mailbox
	}
	i, j := 0, 0
	for i < len(old.Messages) && j < len(cur.Messages) {
		a, b := &old.Messages[i], &cur.Messages[j]
		switch {
		case a.UID < b.UID:
			i++
		case a.UID > b.UID:
			j++
		default:
			i++
			j++
			if slices.Equal(a.Flags, b.Flags) || skip[b.UID] {
				continue
			}
			seq := s.seqOf(b.UID)
			if seq == 0 {
				continue
			}
			c.w.raw("* ").num(seq).raw(" FETCH (")
			if c.notify == nil || c.qresync {
				// Under NOTIFY, a FlagChange FETCH carries FLAGS only
				// unless QRESYNC needs the UID (RFC 7162 §3.2.4), as in
				// dovecot (TestNotifyDovecot).
				c.w.raw("UID ").num(b.UID).sp()
			}
			c.w.raw("FLAGS ")
			c.writeFlags(b)
			c.writeModSeq(b.UID)
			c.w.raw(")").crlf()
		}
	}
}

// writeFlagList writes FLAGS and PERMANENTFLAGS for the selected
// folder's keywords and remembers them as announced.
func (c *conn) writeFlagList(keywords []string) {
	s := c.sel
	c.w.raw(`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft`)
	s.announced = s.announced[:0]
	for _, k := range keywords {
		if k != "" {
			c.w.sp().raw(k)
			s.announced = append(s.announced, k)
		}
	}
	c.w.raw(")").crlf()
	c.w.raw(`* OK [PERMANENTFLAGS (`)
	if !s.readOnly {
		c.w.raw(permanentFlags(s.rights, keywords))
	}
	c.w.raw(")] flags").crlf()
}

// announceKeywords sends FLAGS and PERMANENTFLAGS again when the folder
// has keywords the client was not told of (a STORE, or another session's
// change or COPY brought them), before any FETCH shows them
// (RFC 9051 §7.3.5).
func (c *conn) announceKeywords(snap *mailstore.Snapshot) {
	for _, k := range snap.Keywords {
		if k != "" && !slices.Contains(c.sel.announced, k) {
			c.writeFlagList(snap.Keywords)
			return
		}
	}
}

// writeModSeq adds " MODSEQ (n)" once the session enabled CONDSTORE.
func (c *conn) writeModSeq(uid uint32) {
	if c.condstore && c.sel != nil {
		c.w.raw(" MODSEQ (").num64(int64(c.modseqShown(uid))).raw(")")
	}
}

// writeFlags writes a message's flags with \Recent for rev1 sessions.
func (c *conn) writeFlags(m *mailstore.MessageInfo) {
	m = c.flagsWithModseq(m)
	c.w.byte1('(')
	for i, f := range m.Flags {
		if i > 0 {
			c.w.sp()
		}
		c.w.raw(f)
	}
	if c.sel != nil && c.sel.recent[m.UID] {
		if len(m.Flags) > 0 {
			c.w.sp()
		}
		c.w.raw(`\Recent`)
	}
	c.w.byte1(')')
}

// resolveUIDs turns a UID set into the UIDs of the view it names ('*' is
// the highest UID of the view).
func (s *selected) resolveUIDs(set imap.SeqSet) []uint32 {
	var out []uint32
	if len(s.uids) == 0 {
		return nil
	}
	maxUID := s.uids[len(s.uids)-1]
	for _, r := range set {
		lo, hi := r.Start, r.Stop
		if lo == 0 {
			lo = maxUID
		}
		if hi == 0 {
			hi = maxUID
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		i, _ := slices.BinarySearch(s.uids, lo)
		for ; i < len(s.uids) && s.uids[i] <= hi; i++ {
			out = append(out, s.uids[i])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// resolveSeqs turns a sequence set into UIDs; a number past the view is
// an error (RFC 9051 §9 "seq-number").
func (s *selected) resolveSeqs(set imap.SeqSet) ([]uint32, error) {
	n := uint32(len(s.uids))
	var out []uint32
	for _, r := range set {
		lo, hi := r.Start, r.Stop
		if lo == 0 {
			lo = n
		}
		if hi == 0 {
			hi = n
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if hi > n || lo == 0 {
			return nil, errBad("invalid message sequence number")
		}
		for q := lo; q <= hi; q++ {
			out = append(out, s.uids[q-1])
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// messages resolves a set in sequence or UID form.
func (s *selected) messages(set imap.SeqSet, uid bool) ([]uint32, error) {
	if isSearchRes(set) {
		// RFC 5182: the saved messages still in the view.
		var out []uint32
		for _, u := range s.searchRes {
			if s.seqOf(u) != 0 {
				out = append(out, u)
			}
		}
		return out, nil
	}
	if uid {
		return s.resolveUIDs(set), nil
	}
	return s.resolveSeqs(set)
}

// RFC 2177 IDLE: changes are announced as they happen until DONE.
func (c *conn) cmdIdle(tag string, p *parser, _ bool) error {
	if err := p.end(); err != nil {
		return err
	}
	var stopPoll func()
	var events <-chan mailstore.Change
	if c.sel != nil {
		stopPoll = c.srv.pollers.watch(c.sel.folder)
		defer stopPoll()
		events = c.sel.events
	}
	c.sendUpdates(true)
	c.w.raw("+ idling").crlf()
	if err := c.w.flush(); err != nil {
		return &ioError{err}
	}
	// One reader for the DONE line; it ends after one line.
	type lineResult struct {
		line []byte
		err  error
	}
	lines := make(chan lineResult, 1)
	// RFC 5465 §4: under IDLE the NOTIFY events keep coming
	// (notify_list.go).
	n := c.notify
	var notifySig <-chan struct{}
	if n != nil {
		notifySig = n.signal
	}
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.IdleTimeout))
	go func() {
		l, err := readLine(c.br, nil)
		lines <- lineResult{l, err}
	}()
	for {
		select {
		case lr := <-lines:
			if lr.err != nil {
				return &ioError{lr.err}
			}
			if !strings.EqualFold(string(lr.line), "DONE") {
				c.w.status(tag, imap.StatusResponseTypeBad, "", "expected DONE")
				return nil
			}
			return c.ok(tag, "", "IDLE terminated", true)
		case ch, ok := <-events:
			if !ok {
				events = nil
			} else if ch.Kind == mailstore.ChangeFolderDeleted || ch.Kind == mailstore.ChangeUIDValidity {
				c.sel.gone = true
			}
			// Collect a burst of changes into one announcement.
			time.Sleep(10 * time.Millisecond)
			if c.sel != nil {
				c.sel.changed()
			}
			c.sendUpdates(true)
			if err := c.w.flush(); err != nil {
				return &ioError{err}
			}
			if c.state == stateLogout {
				return &ioError{errGone}
			}
		case <-notifySig:
			time.Sleep(10 * time.Millisecond)
			if !c.notifyDeliver(n) {
				notifySig = nil
			}
			if err := c.w.flush(); err != nil {
				return &ioError{err}
			}
		case <-c.closingCh:
			c.bye("server shutting down")
			c.state = stateLogout
			c.nc.Close()
			<-lines
			return &ioError{errShutdown}
		}
	}
}
