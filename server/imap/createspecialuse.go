package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"
)

// CREATE-SPECIAL-USE (RFC 6154 §3): CREATE name (USE (\Junk ...)). The
// uses are kept as the mailbox's /private/specialuse METADATA entry
// (metadata.go; the entry RFC 6154 §3 and dovecot 2.4 use, values
// separated by a space), so they follow RENAME and DELETE with the other
// entries (metadataMoved) and GETMETADATA shows them. LIST returns them in
// place of the default use derived from the name (allMailboxes).
// Debian's dovecot 2.3.19 does not offer the extension (it accepts and
// ignores the USE parameter), so there is no reference to compare with.

// specialUseEntry is the METADATA entry holding a mailbox's uses.
const specialUseEntry = "/private/specialuse"

// createUses parses CREATE's optional parameter list after the mailbox
// name (RFC 4466 §2.2 create-params; RFC 6154 §6 "USE" SP "(" ... ")").
// Only USE is known; any other parameter is BAD.
func createUses(p *parser) ([]string, error) {
	if !p.take(' ') {
		return nil, nil
	}
	if err := p.expect('('); err != nil {
		return nil, err
	}
	var uses []string
	for first := true; !p.take(')'); first = false {
		if !first {
			if err := p.sp(); err != nil {
				return nil, err
			}
		}
		name, err := p.atom()
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(name, "USE") {
			return nil, p.errorf("unknown CREATE parameter %s", name)
		}
		if err := p.sp(); err != nil {
			return nil, err
		}
		if err := p.expect('('); err != nil {
			return nil, err
		}
		for i := 0; !p.take(')'); i++ {
			if i > 0 {
				if err := p.sp(); err != nil {
					return nil, err
				}
			}
			if err := p.expect('\\'); err != nil {
				return nil, err
			}
			a, err := p.atom()
			if err != nil {
				return nil, err
			}
			uses = append(uses, `\`+a)
		}
	}
	return uses, nil
}

// checkUses refuses uses this server cannot give a mailbox (RFC 6154 §3:
// NO [USEATTR]): anything but the seven of RFC 6154 §2, each once, and
// any use for another user's mailbox (whose METADATA is not kept).
// It returns the uses in their canonical spelling.
func checkUses(uses []string, own bool) ([]string, error) {
	var out []string
	for _, u := range uses {
		canon := ""
		for _, k := range []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`} {
			if strings.EqualFold(u, k) {
				canon = k
			}
		}
		if canon == "" || strings.Contains(strings.Join(out, " "), canon) {
			return nil, errNo(imap.ResponseCode("USEATTR"), "Unsupported SPECIAL-USE attribute %s", u)
		}
		out = append(out, canon)
	}
	if len(out) > 0 && !own {
		return nil, errNo(imap.ResponseCode("USEATTR"), "SPECIAL-USE of other users' mailboxes is not supported")
	}
	return out, nil
}

// storeUses records uses as folder's specialUseEntry in the user's
// METADATA file (under metadataMu, written through a rename).
func (c *conn) storeUses(root, folder string, uses []string) error {
	metadataMu.Lock()
	defer metadataMu.Unlock()
	md, err := loadMetadata(root)
	if err != nil {
		return err
	}
	if md[folder] == nil {
		md[folder] = map[string]string{}
	}
	md[folder][specialUseEntry] = strings.Join(uses, " ")
	return md.save(root)
}

// storedUses returns the uses recorded for each of the user's folders.
func storedUses(root string) map[string][]string {
	metadataMu.Lock()
	defer metadataMu.Unlock()
	md, err := loadMetadata(root)
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	for folder, entries := range md {
		// A value set by SETMETADATA is shown only if it is valid.
		if v := entries[specialUseEntry]; folder != "" && v != "" {
			if uses, err := checkUses(strings.Fields(v), true); err == nil {
				out[folder] = uses
			}
		}
	}
	return out
}
