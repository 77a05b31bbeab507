package imap

import (
	"errors"
	"mailmig/mailstore/acl"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// ACLs (RFC 4314) are kept the way dovecot's acl plugin keeps them with
// acl = vfile: a "dovecot-acl" file in the folder's directory, one
// "identifier rights" line each, identifiers "user=NAME", "owner",
// "authenticated" or "anyone". The owner of a folder always has every
// right; the file only grants rights to others.

// allRights are the rights mailmig implements (RFC 4314 §2.1).
const allRights = acl.AllRights

// readACL reads the ACL of the folder in dir; a missing or unreadable
// file is empty (no rights for others).
func readACL(dir string) map[string]string {
	a, err := acl.Read(dir)
	if err != nil {
		return nil
	}
	return a
}

func normalizeRights(r string) string { return acl.Normalize(r) }

// withObsolete adds to rights, for GETACL, MYRIGHTS and LISTRIGHTS, the
// RFC 2086 rights old clients look for: c when k or x is there, d when t
// or e is (RFC 4314 §2.1.1; dovecot does the same).
func withObsolete(r string) string {
	if strings.ContainsAny(r, "kx") {
		r += "c"
	}
	if strings.ContainsAny(r, "te") {
		r += "d"
	}
	return r
}

// rightsFor returns the rights an ACL gives user. As dovecot applies
// them, from the least to the most specific identifier (anyone,
// authenticated, the user), each entry adds its rights and its negative
// entry ("-ID", RFC 4314 §2) takes rights away: "-anyone s" followed by
// "user=alice s" leaves alice s.
func rightsFor(acl map[string]string, user string, isOwner bool) string {
	if isOwner {
		return allRights
	}
	r := ""
	for _, id := range []string{"anyone", "authenticated", "user=" + user} {
		r = normalizeRights(r + acl[id])
		neg := acl["-"+id]
		r = strings.Map(func(c rune) rune {
			if strings.ContainsRune(neg, c) {
				return -1
			}
			return c
		}, r)
	}
	return r
}

// imapID maps the file's identifier to RFC 4314's ("-user=bob" is
// "-bob").
func imapID(id string) string {
	if n, ok := strings.CutPrefix(id, "-"); ok {
		return "-" + strings.TrimPrefix(n, "user=")
	}
	return strings.TrimPrefix(id, "user=")
}

// folderDir returns the directory of m's folder, or an error if it does
// not exist.
func (c *conn) folderDir(m *mbox) (string, error) {
	f, err := m.store.Folder(m.folder)
	if err != nil {
		return "", err
	}
	return f.Dir(), nil
}

// rights returns this user's rights on m ("" when the folder does not
// exist or is not shared with the user).
func (c *conn) rights(m *mbox) string {
	if m.owner == c.user {
		return allRights
	}
	dir, err := c.folderDir(m)
	if err != nil {
		return ""
	}
	return rightsFor(readACL(dir), c.user, false)
}

// need checks that the user holds right r on m. Without 'l' the mailbox
// does not exist as far as the user can tell (RFC 4314 §6).
func (c *conn) need(m *mbox, r rune) error {
	rights := c.rights(m)
	if strings.ContainsRune(rights, r) {
		return nil
	}
	if !strings.ContainsRune(rights, 'l') && m.owner != c.user {
		return errNo(imap.ResponseCodeNonExistent, "no such mailbox")
	}
	return errNo(imap.ResponseCodeNoPerm, "permission denied")
}

// RFC 4314 §3.1 SETACL and §3.2 DELETEACL.
func (c *conn) cmdSetACL(tag string, p *parser, _ bool) error {
	isDelete := c.cmdName == "DELETEACL"
	if err := p.sp(); err != nil {
		return err
	}
	m, err := c.mailboxArg(p)
	if err != nil {
		return err
	}
	defer m.release()
	if err := p.sp(); err != nil {
		return err
	}
	id, err := p.astring()
	if err != nil {
		return err
	}
	var mod string
	if !isDelete {
		if err := p.sp(); err != nil {
			return err
		}
		if mod, err = p.astring(); err != nil {
			return err
		}
	}
	if err := p.end(); err != nil {
		return err
	}
	if err := c.need(m, 'a'); err != nil {
		return err
	}
	// RFC 4314 §2: "-ID" names rights taken away from ID; kept in
	// dovecot-acl as "-user=ID" lines, as dovecot does.
	neg := strings.HasPrefix(id, "-")
	bare := strings.TrimPrefix(id, "-")
	if !neg && (id == m.owner || id == "owner") {
		// The owner always has every right: nothing to change, and
		// nothing refused (dovecot answers OK too).
		return c.ok(tag, "", "ACL unchanged: the owner has every right", true)
	}
	for _, r := range strings.TrimLeft(mod, "+-") {
		if !strings.ContainsRune(allRights+"cd", r) {
			return errBad("unknown right %q", r)
		}
	}
	dir, err := c.folderDir(m)
	if err != nil {
		return c.storeErr("SETACL", m, err)
	}
	// A newline or space in the identifier would add a line to
	// dovecot-acl: such identifiers are refused (acl.ID).
	fid, err := acl.ID(bare)
	if err != nil {
		return errBad("invalid identifier")
	}
	if neg {
		fid = "-" + fid
	}
	var rights string
	err = acl.Update(dir, func(a map[string]string) error {
		switch {
		case isDelete:
			delete(a, fid)
		case strings.HasPrefix(mod, "+"):
			a[fid] = normalizeRights(a[fid] + mod[1:])
		case strings.HasPrefix(mod, "-"):
			a[fid] = strings.Map(func(r rune) rune {
				if strings.ContainsRune(normalizeRights(mod[1:]), r) {
					return -1
				}
				return r
			}, a[fid])
		default:
			a[fid] = normalizeRights(mod)
		}
		rights = a[fid]
		return nil
	})
	if err != nil {
		return c.storeErr("SETACL", m, err)
	}
	c.srv.forgetGrants()
	c.log.Info("imap: acl changed", "mailbox", m.name, "identifier", id, "rights", rights)
	return c.ok(tag, "", "ACL updated", true)
}

// RFC 4314 §3.3 GETACL.
func (c *conn) cmdGetACL(tag string, p *parser, _ bool) error {
	m, err := c.onlyMailboxArg(p)
	if err != nil {
		return err
	}
	defer m.release()
	if err := c.need(m, 'a'); err != nil {
		return err
	}
	dir, err := c.folderDir(m)
	if err != nil {
		return c.storeErr("GETACL", m, err)
	}
	acl := readACL(dir)
	c.w.raw("* ACL ").mailbox(m.name)
	if m.owner == c.user {
		// The owner's implicit rights are shown in the personal
		// namespace only, as dovecot has them.
		c.w.sp().astr(m.owner).sp().raw(withObsolete(allRights))
	}
	ids := make([]string, 0, len(acl))
	for id := range acl {
		if id != "owner" && id != "user="+m.owner {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		c.w.sp().astr(imapID(id)).sp().astr(withObsolete(acl[id]))
	}
	c.w.crlf()
	return c.ok(tag, "", "GETACL completed", true)
}

// RFC 4314 §3.4 LISTRIGHTS.
func (c *conn) cmdListRights(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	m, err := c.mailboxArg(p)
	if err != nil {
		return err
	}
	defer m.release()
	if err := p.sp(); err != nil {
		return err
	}
	id, err := p.astring()
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	if err := c.need(m, 'a'); err != nil {
		return err
	}
	// Every right may be granted to anyone, the owner included (as
	// dovecot answers), each on its own; c and d are the RFC 2086 names
	// (RFC 4314 §3.7, §2.1.1).
	c.w.raw("* LISTRIGHTS ").mailbox(m.name).sp().astr(id).sp()
	c.w.raw(`""`)
	for _, r := range withObsolete(allRights) {
		c.w.sp().byte1(byte(r))
	}
	c.w.crlf()
	return c.ok(tag, "", "LISTRIGHTS completed", true)
}

// RFC 4314 §3.5 MYRIGHTS.
func (c *conn) cmdMyRights(tag string, p *parser, _ bool) error {
	m, err := c.onlyMailboxArg(p)
	if err != nil {
		return err
	}
	defer m.release()
	// In the user's own namespace the rights are the owner's, whether
	// the mailbox exists yet or not (dovecot answers the same).
	if m.owner != c.user {
		if _, err := c.folderDir(m); err != nil {
			return errNo(imap.ResponseCodeNonExistent, "no such mailbox")
		}
	}
	r := c.rights(m)
	if r == "" {
		return errNo(imap.ResponseCodeNonExistent, "no such mailbox")
	}
	c.w.raw("* MYRIGHTS ").mailbox(m.name).sp().astr(withObsolete(r)).crlf()
	return c.ok(tag, "", "MYRIGHTS completed", true)
}

var errGone = errors.New("imap: selected mailbox gone")
var errShutdown = errors.New("imap: server shutting down")

// insertRefused is APPEND's and COPY's answer when need(m, 'i') failed:
// NO [NOPERM] when the user sees the mailbox (RFC 4314 §4, as dovecot),
// NO [TRYCREATE] when it does not exist for them (RFC 9051 §6.3.12).
func insertRefused(err error) error {
	if re, ok := err.(*respErr); ok && re.code == imap.ResponseCodeNoPerm {
		return errNo(imap.ResponseCodeNoPerm, "no right to add messages to this mailbox")
	}
	return errNo(imap.ResponseCodeTryCreate, "no such mailbox or no insert right")
}
