package imap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// ACLs (RFC 4314) are kept the way dovecot's acl plugin keeps them with
// acl = vfile: a "dovecot-acl" file in the folder's directory, one
// "identifier rights" line each, identifiers "user=NAME", "owner",
// "authenticated" or "anyone". The owner of a folder always has every
// right; the file only grants rights to others.

// allRights are the rights mailmig implements (RFC 4314 §2.1).
const allRights = "lrwstipekxa"

// aclFileName is dovecot's per-folder ACL file.
const aclFileName = "dovecot-acl"

// aclMu serialises ACL file updates within the process.
var aclMu sync.Mutex

// readACL reads the ACL of the folder in dir; a missing file is empty.
func readACL(dir string) map[string]string {
	b, err := os.ReadFile(filepath.Join(dir, aclFileName))
	if err != nil {
		return nil
	}
	return parseACL(b)
}

// parseACL parses a dovecot-acl file. Negative ("-user=x") and unknown
// entries are ignored; rights letters outside allRights are dropped.
func parseACL(b []byte) map[string]string {
	acl := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '-' {
			continue
		}
		id, rights, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		acl[id] = normalizeRights(strings.TrimSpace(rights))
	}
	return acl
}

// normalizeRights keeps known rights in allRights order; the obsolete
// RFC 2086 rights c and d imply k and x, t e (RFC 4314 §2.1.1).
func normalizeRights(r string) string {
	if strings.ContainsRune(r, 'c') {
		r += "k"
	}
	if strings.ContainsRune(r, 'd') {
		r += "xte"
	}
	var b strings.Builder
	for _, c := range allRights {
		if strings.ContainsRune(r, c) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// writeACL replaces the ACL file of dir atomically.
func writeACL(dir string, acl map[string]string) error {
	ids := make([]string, 0, len(acl))
	for id := range acl {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b bytes.Buffer
	for _, id := range ids {
		if acl[id] != "" {
			fmt.Fprintf(&b, "%s %s\n", id, acl[id])
		}
	}
	path := filepath.Join(dir, aclFileName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// rightsFor returns the rights an ACL gives user.
func rightsFor(acl map[string]string, user string, isOwner bool) string {
	if isOwner {
		return allRights
	}
	r := acl["user="+user] + acl["anyone"] + acl["authenticated"]
	return normalizeRights(r)
}

// aclID maps an RFC 4314 identifier to the file's form.
func aclID(id string) string {
	switch id {
	case "anyone", "authenticated", "owner":
		return id
	}
	return "user=" + id
}

// imapID maps the file's identifier to RFC 4314's.
func imapID(id string) string {
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
	if strings.HasPrefix(id, "-") {
		return errNo(imap.ResponseCodeCannot, "negative rights are not supported")
	}
	if err := c.need(m, 'a'); err != nil {
		return err
	}
	if id == m.owner || id == "owner" {
		return errNo(imap.ResponseCodeCannot, "the owner always has all rights")
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
	aclMu.Lock()
	defer aclMu.Unlock()
	acl := readACL(dir)
	if acl == nil {
		acl = map[string]string{}
	}
	fid := aclID(id)
	switch {
	case isDelete:
		delete(acl, fid)
	case strings.HasPrefix(mod, "+"):
		acl[fid] = normalizeRights(acl[fid] + mod[1:])
	case strings.HasPrefix(mod, "-"):
		acl[fid] = strings.Map(func(r rune) rune {
			if strings.ContainsRune(normalizeRights(mod[1:]), r) {
				return -1
			}
			return r
		}, acl[fid])
	default:
		acl[fid] = normalizeRights(mod)
	}
	if err := writeACL(dir, acl); err != nil {
		return c.storeErr("SETACL", m, err)
	}
	c.srv.forgetGrants()
	c.log.Info("imap: acl changed", "mailbox", m.name, "identifier", id, "rights", acl[fid])
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
	c.w.raw("* ACL ").mailbox(m.name).sp().astr(m.owner).sp().raw(allRights)
	ids := make([]string, 0, len(acl))
	for id := range acl {
		if id != "owner" && id != "user="+m.owner {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		c.w.sp().astr(imapID(id)).sp().astr(acl[id])
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
	c.w.raw("* LISTRIGHTS ").mailbox(m.name).sp().astr(id).sp()
	if id == m.owner {
		c.w.raw(allRights)
	} else {
		c.w.raw(`""`)
		for _, r := range allRights {
			c.w.sp().byte1(byte(r))
		}
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
	if _, err := c.folderDir(m); err != nil {
		if m.owner == c.user {
			return c.storeErr("MYRIGHTS", m, err)
		}
		return errNo(imap.ResponseCodeNonExistent, "no such mailbox")
	}
	r := c.rights(m)
	if r == "" {
		return errNo(imap.ResponseCodeNonExistent, "no such mailbox")
	}
	c.w.raw("* MYRIGHTS ").mailbox(m.name).sp().astr(r).crlf()
	return c.ok(tag, "", "MYRIGHTS completed", true)
}

var errGone = errors.New("imap: selected mailbox gone")
var errShutdown = errors.New("imap: server shutting down")
