package imap

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
	"mailmig/mailstore/mutf7"
)

// sharedPrefix is the shared namespace (RFC 2342): other users' folders
// they granted rights on appear as "shared/<owner>/<folder>".
const sharedPrefix = "shared/"

// delim is the hierarchy separator, as in mailstore's names.
const delim = '/'

// mbox is a folder resolved for this session: in the user's own store or,
// under the shared namespace, in another user's.
type mbox struct {
	name   string // name as the client sees it (UTF-8)
	owner  string
	folder string // name in the owner's store
	store  *mailstore.Store
	c      *conn
}

// release gives back the owner's store if it was acquired for this mbox.
func (m *mbox) release() {
	if m.store != nil && m.owner != m.c.user {
		m.c.srv.stores.release(m.owner)
	}
	m.store = nil
}

// decodeName turns a mailbox argument into the UTF-8 name.
func (c *conn) decodeName(raw string) (string, error) {
	name := raw
	if !c.w.utf8 {
		var err error
		if name, err = mutf7.DecodeMixed(raw); err != nil {
			return "", errNo(imap.ResponseCodeCannot, "invalid mailbox name")
		}
	}
	name = strings.TrimSuffix(name, string(delim))
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	if len(name) > 6 && strings.EqualFold(name[:6], "INBOX/") {
		name = "INBOX" + name[5:]
	}
	return name, nil
}

// resolve finds the store holding name; release the result.
func (c *conn) resolve(name string) (*mbox, error) {
	m := &mbox{name: name, owner: c.user, folder: name, store: c.store, c: c}
	if !strings.HasPrefix(name, sharedPrefix) {
		return m, nil
	}
	owner, folder, ok := strings.Cut(name[len(sharedPrefix):], string(delim))
	if !ok || owner == "" || folder == "" || owner == c.user || !c.isUser(owner) {
		return nil, errNo(imap.ResponseCodeNonExistent, "no such mailbox")
	}
	if strings.EqualFold(folder, "INBOX") {
		folder = "INBOX"
	}
	st, err := c.srv.stores.acquire(owner, false)
	if err != nil {
		c.log.Debug("imap: open shared store", "owner", owner, "err", err)
		return nil, errNo(imap.ResponseCodeNonExistent, "no such mailbox")
	}
	m.owner, m.folder, m.store = owner, folder, st
	return m, nil
}

// isUser reports whether u is an account of the server.
func (c *conn) isUser(u string) bool {
	if c.srv.opts.Users == nil {
		return false
	}
	users, err := c.srv.opts.Users()
	if err != nil {
		c.log.Warn("imap: list users", "err", err)
		return false
	}
	for _, x := range users {
		if x == u {
			return true
		}
	}
	return false
}

// storeErr maps a store error to what the client sees.
func (c *conn) storeErr(op string, m *mbox, err error) error {
	switch {
	case errors.Is(err, mailstore.ErrNoSuchFolder):
		return errNo(imap.ResponseCodeNonExistent, "no such mailbox")
	case errors.Is(err, mailstore.ErrFolderExists):
		return errNo(imap.ResponseCodeAlreadyExists, "mailbox exists")
	case errors.Is(err, mailstore.ErrInvalidFolderName):
		return errNo(imap.ResponseCodeCannot, "invalid mailbox name")
	case errors.Is(err, mailstore.ErrInboxOp):
		return errNo(imap.ResponseCodeCannot, "not allowed on INBOX")
	case errors.Is(err, mailstore.ErrOverQuota):
		return errNo(imap.ResponseCodeOverQuota, "over quota")
	case errors.Is(err, mailstore.ErrTooManyKeywords):
		return errNo(imap.ResponseCodeLimit, "too many keywords in this mailbox")
	case errors.Is(err, mailstore.ErrLockTimeout):
		return errNo(imap.ResponseCodeInUse, "mailbox busy, try again")
	case errors.Is(err, mailstore.ErrNoSuchMessage):
		// Expunged by another session after this one last heard of it
		// (RFC 5530 §3; dovecot's wording).
		return errNo("EXPUNGEISSUED", "Some of the requested messages no longer exist.")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return errNo(imap.ResponseCodeOverQuota, "Not enough disk space")
	case errors.Is(err, syscall.ENAMETOOLONG):
		// dovecot's answer (RFC 5530 §3 CANNOT), not a server bug.
		return errNo(imap.ResponseCodeCannot, "Mailbox name too long")
	}
	name := ""
	if m != nil {
		name = m.name
	}
	c.log.Error("imap: store error", "op", op, "mailbox", name, "err", err)
	return errNo(imap.ResponseCodeServerBug, "%s failed", op)
}

// onlyMailboxArg parses " mailbox" and the end of the command, the whole
// argument list of DELETE, GETACL, MYRIGHTS, GETQUOTAROOT and the like.
// The caller releases the mailbox.
func (c *conn) onlyMailboxArg(p *parser) (*mbox, error) {
	if err := p.sp(); err != nil {
		return nil, err
	}
	m, err := c.mailboxArg(p)
	if err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		m.release()
		return nil, err
	}
	return m, nil
}

// mailboxArg parses a mailbox argument and resolves it; release the result.
func (c *conn) mailboxArg(p *parser) (*mbox, error) {
	raw, err := p.mailbox()
	if err != nil {
		return nil, err
	}
	name, err := c.decodeName(raw)
	if err != nil {
		return nil, err
	}
	return c.resolve(name)
}

// RFC 9051 §6.3.4
func (c *conn) cmdCreate(tag string, p *parser, _ bool) error {
	m, uses, err := c.createArg(p)
	if err != nil {
		return err
	}
	defer m.release()
	if m.folder == "INBOX" {
		return errNo(imap.ResponseCodeAlreadyExists, "INBOX exists")
	}
	if err := c.need(m, 'k'); err != nil {
		return err
	}
	// RFC 6154 §3: the uses are checked before the mailbox is made.
	if uses, err = checkUses(uses, m.owner == c.user); err != nil {
		return err
	}
	if err := m.store.CreateFolder(m.folder); err != nil {
		return c.storeErr("CREATE", m, err)
	}
	if len(uses) > 0 {
		if err := c.storeUses(m.store.Root(), m.folder, uses); err != nil {
			// RFC 6154 §3: the mailbox is not left without its use.
			c.log.Error("imap: CREATE special use", "user", c.user, "err", err)
			m.store.DeleteFolder(m.folder)
			return errNo(imap.ResponseCodeCannot, "cannot store the special use")
		}
	}
	// RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK.
	var code imap.ResponseCode
	if f, err := m.store.Folder(m.folder); err == nil {
		ctx, cancel := c.ctx()
		id, err := f.MailboxGUID(ctx)
		cancel()
		if err == nil {
			code = mailboxIDCode(id)
		} else {
			c.log.Warn("imap: CREATE mailbox id", "user", c.user, "mailbox", m.name, "err", err)
		}
	}
	return c.ok(tag, code, "CREATE completed", true)
}

// RFC 9051 §6.3.5
func (c *conn) cmdDelete(tag string, p *parser, _ bool) error {
	m, err := c.onlyMailboxArg(p)
	if err != nil {
		return err
	}
	defer m.release()
	if m.folder == "INBOX" {
		return errNo(imap.ResponseCodeCannot, "INBOX cannot be deleted")
	}
	if err := c.need(m, 'x'); err != nil {
		return err
	}
	if c.sel != nil && c.sel.mb.owner == m.owner && c.sel.mb.folder == m.folder {
		c.unselect()
		c.state = stateAuth
	}
	if err := m.store.DeleteFolder(m.folder); err != nil {
		return c.storeErr("DELETE", m, err)
	}
	c.metadataMoved(m.store.Root(), m.folder, "") // metadata.go
	// RFC 3501 §6.3.4 / RFC 9051 §6.3.4: the subscription stays (LSUB and
	// LIST (SUBSCRIBED) then show the name \NonExistent), as in dovecot.
	return c.ok(tag, "", "DELETE completed", true)
}

// RFC 9051 §6.3.6
func (c *conn) cmdRename(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	from, err := c.mailboxArg(p)
	if err != nil {
		return err
	}
	defer from.release()
	if err := p.sp(); err != nil {
		return err
	}
	to, err := c.mailboxArg(p)
	if err != nil {
		var re *respErr
		if errors.As(err, &re) && re.code == imap.ResponseCodeNonExistent {
			// A name under shared/ that is nobody's folder.
			return errNo(imap.ResponseCodeCannot, "cannot rename across namespaces")
		}
		return err
	}
	defer to.release()
	if err := p.end(); err != nil {
		return err
	}
	if from.owner == to.owner && to.folder == "INBOX" && from.folder != "INBOX" {
		// RFC 9051 §6.3.6: the new name exists (dovecot: ALREADYEXISTS).
		return errNo(imap.ResponseCodeAlreadyExists, "INBOX exists")
	}
	if from.owner != to.owner || (to.owner == c.user && isReservedName(to.folder)) {
		return errNo(imap.ResponseCodeCannot, "cannot rename across namespaces")
	}
	if from.folder == "INBOX" {
		return errNo(imap.ResponseCodeCannot, "renaming INBOX is not supported")
	}
	if err := c.need(from, 'x'); err != nil {
		return err
	}
	if err := from.store.RenameFolder(from.folder, to.folder); err != nil {
		return c.storeErr("RENAME", from, err)
	}
	c.metadataMoved(from.store.Root(), from.folder, to.folder) // metadata.go
	return c.ok(tag, "", "RENAME completed", true)
}

// RFC 9051 §6.3.7, §6.3.8
func (c *conn) cmdSubscribe(tag string, p *parser, _ bool) error {
	unsub := c.cmdName == "UNSUBSCRIBE"
	if err := p.sp(); err != nil {
		return err
	}
	raw, err := p.mailbox()
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	name, err := c.decodeName(raw)
	if err != nil {
		return err
	}
	// Subscriptions are the user's, shared names included (dovecot keeps
	// them in the user's own subscriptions file too).
	if unsub {
		err = c.store.Unsubscribe(name)
	} else {
		err = c.store.Subscribe(name)
	}
	if err != nil {
		return c.storeErr("SUBSCRIBE", nil, err)
	}
	return c.ok(tag, "", "done", true)
}

// RFC 2342 §5: "shared/USER/..." holds other users' mailboxes, so it is
// the Other Users' Namespace (the second list), as dovecot announces its
// shared namespace with prefix shared/%u/; there is no Shared Namespace.
func (c *conn) cmdNamespace(tag string, p *parser, _ bool) error {
	if err := p.end(); err != nil {
		return err
	}
	c.w.raw(`* NAMESPACE (("" "/")) `)
	if c.srv.opts.Users != nil {
		c.w.raw(`(("shared/" "/"))`)
	} else {
		c.w.raw("NIL")
	}
	c.w.raw(" NIL").crlf()
	return c.ok(tag, "", "NAMESPACE completed", true)
}

// listEntry is one mailbox LIST can return.
type listEntry struct {
	name       string
	attrs      []string
	subscribed bool
	mb         *mbox // nil for \NoSelect placeholders
	// lsubParent marks an unsubscribed parent LSUB shows \Noselect.
	lsubParent bool
}

// allMailboxes returns the user's folders, then shared ones the user may
// see (with \NoSelect parents "shared" and "shared/<owner>").
func (c *conn) allMailboxes(withShared bool) ([]listEntry, error) {
	infos, err := c.store.Folders()
	if err != nil {
		return nil, c.storeErr("LIST", nil, err)
	}
	var out []listEntry
	have := make(map[string]bool, len(infos))
	for _, fi := range infos {
		have[fi.Name] = true
	}
	stored := storedUses(c.store.Root()) // createspecialuse.go
	for _, fi := range infos {
		e := listEntry{name: fi.Name, subscribed: fi.Subscribed}
		if su, ok := stored[fi.Name]; ok {
			e.attrs = append(e.attrs, su...)
		} else if su := mailstore.DefaultSpecialUse(fi.Name, c.srv.opts.SpamFolder); su != "" {
			e.attrs = append(e.attrs, su)
		}
		out = append(out, e)
		// RFC 3501 §6.3.8: a hierarchy level that is not a mailbox
		// ("lists" of "lists/debian-devel") is listed \Noselect, as
		// dovecot does, so folder browsers can walk down to the child.
		for i := len(fi.Name) - 1; i > 0; i-- {
			if fi.Name[i] == delim && !have[fi.Name[:i]] {
				have[fi.Name[:i]] = true
				out = append(out, listEntry{name: fi.Name[:i], attrs: []string{`\Noselect`}})
			}
		}
	}
	if withShared && c.srv.opts.Users != nil {
		out = append(out, c.sharedMailboxes()...)
	}
	markChildren(out)
	return out, nil
}

// sharedMailboxes lists folders other users granted this user 'l' on.
// Finding them reads every other user's folder list and ACL files, so the
// answer is kept for grantsTTL (SETACL in this process clears it).
func (c *conn) sharedMailboxes() []listEntry {
	now := time.Now()
	c.srv.grantsMu.Lock()
	g, ok := c.srv.grants[c.user]
	c.srv.grantsMu.Unlock()
	if ok && now.Sub(g.at) < grantsTTL {
		return cloneEntries(g.entries)
	}
	entries := c.findSharedMailboxes()
	c.srv.grantsMu.Lock()
	if c.srv.grants == nil {
		c.srv.grants = map[string]grantsEntry{}
	}
	c.srv.grants[c.user] = grantsEntry{at: now, entries: entries}
	c.srv.grantsMu.Unlock()
	return cloneEntries(entries)
}

// cloneEntries copies entries deeply enough for callers to append to
// their attributes.
func cloneEntries(l []listEntry) []listEntry {
	out := slices.Clone(l)
	for i := range out {
		out[i].attrs = slices.Clip(slices.Clone(out[i].attrs))
	}
	return out
}

// grantsTTL bounds how long a user's view of others' shared folders may
// lag behind a SETACL made by another process.
const grantsTTL = 30 * time.Second

type grantsEntry struct {
	at      time.Time
	entries []listEntry
}

// ACLChanged tells the server that a dovecot-acl file was changed outside
// IMAP (the web page's sharing form), so LIST shows it at once.
func (s *Server) ACLChanged() { s.forgetGrants() }

// forgetGrants drops the cached shared-folder lists after a SETACL.
func (s *Server) forgetGrants() {
	s.grantsMu.Lock()
	s.grants = nil
	s.grantsMu.Unlock()
}

// findSharedMailboxes does the work of sharedMailboxes.
func (c *conn) findSharedMailboxes() []listEntry {
	users, err := c.srv.opts.Users()
	if err != nil {
		c.log.Warn("imap: list users", "err", err)
		return nil
	}
	var out []listEntry
	for _, owner := range users {
		if owner == c.user {
			continue
		}
		var names []string
		func() {
			st, err := c.srv.stores.acquire(owner, false)
			if err != nil {
				return
			}
			defer c.srv.stores.release(owner)
			infos, err := st.Folders()
			if err != nil {
				return
			}
			for _, fi := range infos {
				f, err := st.Folder(fi.Name)
				if err != nil {
					continue
				}
				if strings.ContainsRune(rightsFor(readACL(f.Dir()), c.user, false), 'l') {
					names = append(names, fi.Name)
				}
			}
		}()
		if len(names) == 0 {
			continue
		}
		if len(out) == 0 {
			out = append(out, listEntry{name: "shared", attrs: []string{`\Noselect`}})
		}
		out = append(out, listEntry{name: sharedPrefix + owner, attrs: []string{`\Noselect`}})
		for _, n := range names {
			out = append(out, listEntry{name: sharedPrefix + owner + "/" + n})
		}
	}
	return out
}

// markChildren adds \HasChildren or \HasNoChildren (RFC 3348).
func markChildren(l []listEntry) {
	names := make(map[string]bool, len(l))
	for _, e := range l {
		names[e.name] = true
	}
	parents := map[string]bool{}
	for _, e := range l {
		for i := len(e.name) - 1; i > 0; i-- {
			if e.name[i] == delim {
				parents[e.name[:i]] = true
			}
		}
	}
	for i := range l {
		if parents[l[i].name] {
			l[i].attrs = append(l[i].attrs, `\HasChildren`)
		} else {
			l[i].attrs = append(l[i].attrs, `\HasNoChildren`)
		}
	}
}

// matchList applies a LIST reference and pattern (RFC 9051 §6.3.9) as
// dovecot does: the reference and the pattern are concatenated (one
// delimiter kept where both have it), so LIST "foo" "%" matches "foo"
// and LIST "foo" "/%" its children; the "INBOX" at the start of a name
// matches case-insensitively (LIST "" inbox, LIST "" i*).
func matchList(name, ref, pattern string) bool {
	if ref != "" && strings.HasSuffix(ref, string(delim)) && strings.HasPrefix(pattern, string(delim)) {
		pattern = pattern[1:]
	}
	fold := 0
	if name == "INBOX" || strings.HasPrefix(name, "INBOX"+string(delim)) {
		fold = len("INBOX")
	}
	return matchPattern(name, ref+pattern, fold)
}

// matchPattern matches name against pat: '*' any text, '%' any text
// without the delimiter; the first fold bytes of name compare ignoring
// ASCII case. Dynamic programming keeps it O(len(name)*len(pat)) for any
// pattern a client sends.
func matchPattern(name, pat string, fold int) bool {
	// cur[j]: pat[:k] matches name[:j].
	cur := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	cur[0] = true
	for k := 0; k < len(pat); k++ {
		c := pat[k]
		clear(next)
		switch c {
		case '*', '%':
			for j := 0; j <= len(name); j++ {
				next[j] = cur[j] || (j > 0 && next[j-1] && (c == '*' || name[j-1] != delim))
			}
		default:
			for j := 1; j <= len(name); j++ {
				b := c
				if j-1 < fold && 'a' <= b && b <= 'z' {
					b -= 'a' - 'A'
				}
				next[j] = cur[j-1] && name[j-1] == b
			}
		}
		cur, next = next, cur
	}
	return cur[len(name)]
}
