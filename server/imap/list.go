package imap

import (
	"slices"
	"strings"

	"mailmig/mailstore"
	"mailmig/mailstore/mutf7"
)

// RFC 9051 §6.3.9 LIST with LIST-EXTENDED (RFC 5258) selection and
// return options, SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819);
// RFC 3501 §6.3.9 LSUB.
func (c *conn) cmdList(tag string, p *parser, _ bool) error {
	lsub := c.cmdName == "LSUB"
	if err := p.sp(); err != nil {
		return err
	}
	var selSubscribed, selSpecialUse, retSubscribed, retSpecialUse, recursive bool
	var retMyRights bool // RFC 8440, listrights.go
	var statusItems []string
	// extended: the command used RFC 5258 syntax (selection options,
	// several patterns or RETURN); retChildren: RETURN (CHILDREN).
	var extended, retChildren bool
	if !lsub && p.take('(') {
		extended = true
		for !p.take(')') {
			p.take(' ')
			o, err := p.atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(o) {
			case "SUBSCRIBED":
				selSubscribed, retSubscribed = true, true
			case "SPECIAL-USE":
				selSpecialUse = true
			case "RECURSIVEMATCH":
				recursive = true
			case "REMOTE":
			default:
				return errBad("unknown LIST selection option %s", o)
			}
		}
		// RFC 5258 §3: RECURSIVEMATCH alone (without another selection
		// option) is a syntax error.
		if recursive && !selSubscribed && !selSpecialUse {
			return errBad("RECURSIVEMATCH needs another selection option")
		}
		if err := p.sp(); err != nil {
			return err
		}
	}
	ref, err := p.mailbox()
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	var patterns []string
	if !lsub && p.take('(') {
		extended = true
		for !p.take(')') {
			p.take(' ')
			pat, err := p.listMailbox()
			if err != nil {
				return err
			}
			patterns = append(patterns, pat)
		}
	} else {
		pat, err := p.listMailbox()
		if err != nil {
			return err
		}
		patterns = append(patterns, pat)
	}
	if !lsub && p.take(' ') {
		extended = true
		kw, err := p.atom()
		if err != nil || !strings.EqualFold(kw, "RETURN") {
			return errBad("expected RETURN")
		}
		if err := p.sp(); err != nil {
			return err
		}
		if err := p.expect('('); err != nil {
			return err
		}
		for !p.take(')') {
			p.take(' ')
			o, err := p.atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(o) {
			case "SUBSCRIBED":
				retSubscribed = true
			case "SPECIAL-USE":
				retSpecialUse = true
			case "CHILDREN":
				retChildren = true
			case "MYRIGHTS":
				retMyRights = true
			case "STATUS":
				if err := p.sp(); err != nil {
					return err
				}
				if statusItems, err = statusItemList(p); err != nil {
					return err
				}
				if len(statusItems) == 0 {
					// RFC 5819 §2: status-att-list has one item
					// at least.
					return errBad("STATUS needs items")
				}
			default:
				return errBad("unknown LIST return option %s", o)
			}
		}
	}
	if err := p.end(); err != nil {
		return err
	}
	_ = retSpecialUse // special-use attributes are always returned

	refName, err := c.decodeName(ref)
	if err != nil && ref != "" {
		return err
	}
	// The reference is joined to each pattern as the client wrote it
	// (its trailing delimiter and INBOX's case kept; matchList).
	refName = ref
	if d, err := mutf7.DecodeMixed(ref); err == nil && !c.w.utf8 {
		refName = d
	}
	// A pattern that is not valid modified UTF-7 is matched as it is
	// (dovecot: LIST "" &* finds "&-amp", LIST "" a& nothing).
	for i, pat := range patterns {
		if c.w.utf8 {
			continue
		}
		if d, err := mutf7.DecodeMixed(pat); err == nil {
			patterns[i] = d
		}
	}
	match := func(name string) bool {
		for _, pat := range patterns {
			if matchList(name, refName, pat) {
				return true
			}
		}
		return false
	}
	resp := "LIST"
	if lsub {
		resp = "LSUB"
	}
	// RFC 9051 §6.3.9: an empty pattern asks for the delimiter and
	// the root name of the reference ("" for none, "foo/" for
	// "foo/bar"). LSUB has no such form (dovecot: nothing), nor has an
	// extended LIST (RFC 5258; dovecot answers it with nothing).
	if len(patterns) == 1 && patterns[0] == "" && extended {
		return c.ok(tag, "", resp+" completed", true)
	}
	if len(patterns) == 1 && patterns[0] == "" {
		if !lsub {
			root := ""
			if i := strings.IndexByte(ref, delim); i >= 0 {
				root = ref[:i+1]
			}
			c.w.raw("* ").raw(resp).raw(` (\Noselect) "/" `).astr(root).crlf()
		}
		return c.ok(tag, "", resp+" completed", true)
	}
	entries, err := c.allMailboxes(true)
	if err != nil {
		return err
	}
	var subs map[string]bool
	if lsub || selSubscribed || retSubscribed {
		names, err := c.store.Subscriptions()
		if err != nil {
			return c.storeErr("LIST", nil, err)
		}
		subs = make(map[string]bool, len(names))
		for _, n := range names {
			subs[n] = true
		}
		if selSubscribed || lsub {
			// Subscribed names that do not exist are listed too.
			have := map[string]bool{}
			for _, e := range entries {
				have[e.name] = true
			}
			for _, n := range names {
				if !have[n] {
					attr := `\NonExistent`
					if lsub {
						attr = `\Noselect`
					}
					entries = append(entries, listEntry{name: n, attrs: []string{attr}})
				}
			}
		}
	}
	if lsub {
		entries = lsubParents(entries, subs, match)
	}
	// RFC 5258 §3.5 RECURSIVEMATCH with SUBSCRIBED: a name that matches
	// and has a subscribed descendant gets CHILDINFO ("SUBSCRIBED"); it
	// is listed even when it is not subscribed (or does not exist) if
	// such a descendant does not match the patterns itself.
	var subParents, viaChild map[string]bool
	if recursive && selSubscribed {
		subParents, viaChild = map[string]bool{}, map[string]bool{}
		for n := range subs {
			unlisted := !match(n)
			for i := len(n) - 1; i > 0; i-- {
				if n[i] == delim {
					subParents[n[:i]] = true
					viaChild[n[:i]] = viaChild[n[:i]] || unlisted
				}
			}
		}
		have := map[string]bool{}
		for _, e := range entries {
			have[e.name] = true
		}
		for n := range subParents {
			if !have[n] {
				entries = append(entries, listEntry{name: n, attrs: []string{`\NonExistent`}})
			}
		}
	}
	for _, e := range entries {
		if !match(e.name) {
			continue
		}
		if (lsub || selSubscribed) && !subs[e.name] && !e.lsubParent && !viaChild[e.name] {
			continue
		}
		if selSpecialUse && !hasSpecialUse(e.attrs) {
			continue
		}
		attrs := e.attrs
		if lsub && !e.lsubParent {
			// LSUB carries no child information (dovecot: "LSUB ()").
			attrs = slices.DeleteFunc(slices.Clone(attrs), func(a string) bool {
				return a == `\HasChildren` || a == `\HasNoChildren` || a == `\Noselect`
			})
		}
		if extended {
			attrs = extendedAttrs(attrs, e, retChildren)
		}
		if retSubscribed && subs[e.name] && !lsub {
			attrs = append(slices.Clip(attrs), `\Subscribed`)
		}
		c.w.raw("* ").raw(resp).raw(" (").raw(strings.Join(attrs, " ")).raw(`) "/" `).mailbox(e.name)
		if subParents[e.name] {
			c.w.raw(` (CHILDINFO ("SUBSCRIBED"))`)
		}
		c.w.crlf()
		if len(statusItems) > 0 && !slices.Contains(attrs, `\Noselect`) && !slices.Contains(attrs, `\NonExistent`) {
			if m, err := c.resolve(e.name); err == nil {
				// LIST-STATUS skips mailboxes whose status fails.
				_ = c.writeStatus(m, statusItems)
				m.release()
			}
		}
		if retMyRights {
			c.listMyRights(e.name, attrs)
		}
	}
	return c.ok(tag, "", resp+" completed", true)
}

// lsubParents adds, for LSUB, the unsubscribed parents of subscribed
// mailboxes that a pattern matches where the child does not: RFC 3501
// §6.3.9 says LSUB "%" must return "foo" for a subscribed "foo/bar",
// flagged \Noselect.
func lsubParents(entries []listEntry, subs map[string]bool, matches func(string) bool) []listEntry {
	added := map[string]bool{}
	for name := range subs {
		if matches(name) {
			continue
		}
		for i := len(name) - 1; i > 0; i-- {
			if name[i] != delim {
				continue
			}
			parent := name[:i]
			if !subs[parent] && !added[parent] && matches(parent) {
				added[parent] = true
				entries = append(entries, listEntry{name: parent, attrs: []string{`\Noselect`}, lsubParent: true})
			}
		}
	}
	return entries
}

// extendedAttrs gives an entry the attributes of an RFC 5258 LIST, as
// dovecot has them: a hierarchy level that is no mailbox of the user is
// \NonExistent (§3.4; \Noselect in the basic LIST), and child
// information is sent only for RETURN (CHILDREN) (§4).
func extendedAttrs(attrs []string, e listEntry, retChildren bool) []string {
	out := make([]string, 0, len(attrs))
	for _, a := range attrs {
		switch {
		case (a == `\HasChildren` || a == `\HasNoChildren`) && !retChildren:
		case a == `\Noselect` && e.mb == nil && !isSharedLevel(e.name):
			if !slices.Contains(attrs, `\NonExistent`) {
				out = append(out, `\NonExistent`)
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

// isSharedLevel tells whether name is "shared" or "shared/USER", the
// levels of the shared namespace above other users' mailboxes.
func isSharedLevel(name string) bool {
	return name == "shared" || (strings.HasPrefix(name, "shared/") && !strings.Contains(name[len("shared/"):], "/"))
}

func hasSpecialUse(attrs []string) bool {
	for _, a := range attrs {
		switch a {
		case `\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`:
			return true
		}
	}
	return false
}

// statusItemList parses "(" status-att *(SP status-att) ")".
func statusItemList(p *parser) ([]string, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	var items []string
	for !p.take(')') {
		p.take(' ')
		a, err := p.atom()
		if err != nil {
			return nil, err
		}
		a = strings.ToUpper(a)
		switch a {
		case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "SIZE", "DELETED", "HIGHESTMODSEQ",
			"MAILBOXID",   // RFC 8474 §4.3
			"APPENDLIMIT": // RFC 7889 §4
		default:
			return nil, errBad("unknown STATUS item %s", a)
		}
		items = append(items, a)
	}
	if len(items) == 0 {
		// RFC 9051 §9: status-att *(SP status-att), at least one.
		return nil, errBad("empty STATUS item list")
	}
	return items, nil
}

// RFC 9051 §6.3.11, STATUS=SIZE (RFC 8438).
func (c *conn) cmdStatus(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	raw, err := p.astring() // mailbox, its case kept for the response
	if err != nil {
		return err
	}
	name, err := c.decodeName(raw)
	if err != nil {
		return err
	}
	m, err := c.resolve(name)
	if err != nil {
		return err
	}
	defer m.release()
	if err := p.sp(); err != nil {
		return err
	}
	items, err := statusItemList(p)
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	if err := c.need(m, 'r'); err != nil {
		return err
	}
	// The response names the mailbox as the client did ("inbox"), as
	// dovecot does.
	if name == "INBOX" {
		name = raw
	}
	if err := c.writeStatusAs(m, name, items); err != nil {
		return err
	}
	if c.sel != nil && c.sel.mb.owner == m.owner && c.sel.mb.folder == m.folder {
		// RFC 9051 §6.3.11: clients should not STATUS the selected
		// mailbox; RFC 5530 CLIENTBUG says so without failing (dovecot).
		return c.ok(tag, "CLIENTBUG", "STATUS on the selected mailbox", true)
	}
	return c.ok(tag, "", "STATUS completed", true)
}

// writeStatus writes one "* STATUS" response.
func (c *conn) writeStatus(m *mbox, items []string) error {
	return c.writeStatusAs(m, m.name, items)
}

// writeStatusAs writes one "* STATUS" response naming the mailbox name.
func (c *conn) writeStatusAs(m *mbox, name string, items []string) error {
	f, err := m.store.Folder(m.folder)
	if err != nil {
		return c.storeErr("STATUS", m, err)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	ms := c.srv.modseq.tracker(f)
	snap, err := ms.snapshot(ctx, f)
	if err != nil {
		return c.storeErr("STATUS", m, err)
	}
	var mailboxID string
	if slices.Contains(items, "MAILBOXID") {
		if mailboxID, err = f.MailboxGUID(ctx); err != nil {
			return c.storeErr("STATUS", m, err)
		}
	}
	c.w.raw("* STATUS ").mailbox(name).raw(" (")
	for i, it := range items {
		if i > 0 {
			c.w.sp()
		}
		c.w.raw(it).sp()
		switch it {
		case "MESSAGES":
			c.w.num(uint32(len(snap.Messages)))
		case "UIDNEXT":
			c.w.num(snap.UIDNext)
		case "UIDVALIDITY":
			c.w.num(snap.UIDValidity)
		case "UNSEEN":
			c.w.num(countMessages(snap, func(mi *mailstore.MessageInfo) bool { return !mi.HasFlag(mailstore.FlagSeen) }))
		case "DELETED":
			c.w.num(countMessages(snap, func(mi *mailstore.MessageInfo) bool { return mi.HasFlag(mailstore.FlagDeleted) }))
		case "MAILBOXID":
			c.w.raw("(").raw(mailboxID).raw(")")
		case "APPENDLIMIT":
			// RFC 7889 §4: the largest message APPEND takes into
			// this mailbox, the one limit APPENDLIMIT= announces.
			c.w.num64(c.srv.opts.AppendLimit)
		case "HIGHESTMODSEQ":
			c.condstore = true
			c.w.num64(int64(ms.highestModSeq()))
		case "RECENT":
			// Of the selected mailbox, the session's own \Recent
			// messages count too, as dovecot counts its view's.
			var own map[uint32]bool
			if c.sel != nil && c.sel.mb.owner == m.owner && c.sel.mb.folder == m.folder {
				own = c.sel.recent
			}
			c.w.num(countMessages(snap, func(mi *mailstore.MessageInfo) bool { return mi.Recent || own[mi.UID] }))
		case "SIZE":
			// RFC 8438: at least the sum of RFC822.SIZE, which counts
			// CRLF line ends (W= in the file name).
			var n int64
			for i := range snap.Messages {
				if m := &snap.Messages[i]; m.VSize >= 0 {
					n += m.VSize
				} else {
					n += m.Size
				}
			}
			c.w.num64(n)
		}
	}
	c.w.raw(")").crlf()
	return nil
}

func countMessages(s *mailstore.Snapshot, pred func(*mailstore.MessageInfo) bool) uint32 {
	var n uint32
	for i := range s.Messages {
		if pred(&s.Messages[i]) {
			n++
		}
	}
	return n
}
