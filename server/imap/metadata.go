package imap

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// METADATA (RFC 5464): server entries (mailbox "") and mailbox entries,
// /private and /shared, kept per user in one JSON file in the root of
// the user's Maildir (metadataFile, beside dovecot-uidlist and
// subscriptions; dovecot takes only dot-directories there for folders and
// ignores other files). Entry names are compared without case and stored
// in lower case, as dovecot does. Answers follow dovecot 2.3 with
// imap_metadata=yes: a missing entry asked for at DEPTH 0 is NIL, values
// are sent as literals, SETMETADATA of a /shared server entry is NO
// [CANNOT] (dovecot keeps those for the administrator).

const metadataFile = "mailmig-metadata"

// metadataMu serialises read-modify-write of the files (all users; the
// commands are rare).
var metadataMu sync.Mutex

// metadataStore is the file's content: mailbox name ("" for the server)
// to entry to value.
type metadataStore map[string]map[string]string

func loadMetadata(root string) (metadataStore, error) {
	b, err := os.ReadFile(filepath.Join(root, metadataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return metadataStore{}, nil
	}
	if err != nil {
		return nil, err
	}
	md := metadataStore{}
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(root, metadataFile), err)
	}
	return md, nil
}

// save writes the file through a temporary file and a rename.
func (md metadataStore) save(root string) error {
	b, err := json.MarshalIndent(md, "", "\t")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(root, ".mailmig-metadata-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(root, metadataFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// checkEntry validates an entry name (RFC 5464 §3.2, §5: entry names
// begin with /private or /shared; no '*', '%', "//" or final '/') and
// returns it in lower case.
func checkEntry(e string) (string, error) {
	l := strings.ToLower(e)
	switch {
	case l != "/private" && l != "/shared" && !strings.HasPrefix(l, "/private/") && !strings.HasPrefix(l, "/shared/"):
		return "", errBad("Entry name must begin with /private or /shared")
	case strings.ContainsRune(l, '*'):
		return "", errBad("Entry name can't contain '*'")
	case strings.ContainsRune(l, '%'):
		return "", errBad("Entry name can't contain '%%'")
	case strings.Contains(l, "//"):
		return "", errBad("Entry name can't contain consecutive '/'")
	case strings.HasSuffix(l, "/"):
		return "", errBad("Entry name can't end with '/'")
	}
	for i := 0; i < len(l); i++ {
		if l[i] < 0x20 || l[i] == 0x7f {
			return "", errBad("Entry name can't contain control characters")
		}
	}
	return l, nil
}

// metadataMailbox resolves the mailbox argument: "" is the server. Only
// the user's own mailboxes have entries (other users' are refused).
func (c *conn) metadataMailbox(p *parser) (name, key string, err error) {
	raw, err := p.mailbox()
	if err != nil {
		return "", "", err
	}
	if raw == "" {
		return "", "", nil
	}
	m, err := c.mailboxArgName(raw)
	if err != nil {
		return "", "", err
	}
	defer m.release()
	if m.owner != c.user {
		return "", "", errNo(imap.ResponseCodeCannot, "METADATA of other users' mailboxes is not supported")
	}
	if _, err := m.store.Folder(m.folder); err != nil {
		return "", "", errNo("", "Mailbox doesn't exist: %s", m.name)
	}
	return m.name, m.folder, nil
}

func (c *conn) mailboxArgName(raw string) (*mbox, error) {
	name, err := c.decodeName(raw)
	if err != nil {
		return nil, err
	}
	return c.resolve(name)
}

// entryList reads entries: one entry, or a parenthesised list (RFC 5464
// §4.2: entries = entry / "(" entry *(SP entry) ")").
func entryList(p *parser) ([]string, error) {
	var raw []string
	if p.take('(') {
		for {
			e, err := p.astring()
			if err != nil {
				return nil, err
			}
			raw = append(raw, e)
			if p.take(')') {
				break
			}
			if err := p.sp(); err != nil {
				return nil, err
			}
		}
	} else {
		e, err := p.astring()
		if err != nil {
			return nil, err
		}
		raw = append(raw, e)
	}
	out := make([]string, len(raw))
	for i, e := range raw {
		l, err := checkEntry(e)
		if err != nil {
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}

// RFC 5464 §4.2 GETMETADATA [SP "(" options ")"] SP mailbox SP entries,
// options MAXSIZE n (§4.2.1) and DEPTH 0/1/infinity (§4.2.2).
func (c *conn) cmdGetMetadata(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	maxSize, depth := int64(-1), 0
	if p.take('(') {
		for !p.take(')') {
			opt, err := p.atom()
			if err != nil {
				return err
			}
			if err := p.sp(); err != nil {
				return err
			}
			switch strings.ToUpper(opt) {
			case "MAXSIZE":
				n, err := p.number64()
				if err != nil {
					return err
				}
				maxSize = n
			case "DEPTH":
				v, err := p.atom()
				if err != nil {
					return err
				}
				switch strings.ToLower(v) {
				case "0":
					depth = 0
				case "1":
					depth = 1
				case "infinity":
					depth = -1
				default:
					return errBad("Invalid value for DEPTH option")
				}
			default:
				return errBad("Unknown GETMETADATA option %s", opt)
			}
			p.take(' ')
		}
		if err := p.sp(); err != nil {
			return err
		}
	}
	name, key, err := c.metadataMailbox(p)
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	entries, err := entryList(p)
	if err != nil {
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	metadataMu.Lock()
	md, err := loadMetadata(c.store.Root())
	metadataMu.Unlock()
	if err != nil {
		c.log.Error("imap: METADATA", "user", c.user, "err", err)
		return errNo(imap.ResponseCodeServerBug, "cannot read metadata")
	}
	values := md[key]
	type pair struct {
		entry string
		value *string
	}
	var out []pair
	var long int64
	add := func(e string, v string) {
		if maxSize >= 0 && int64(len(v)) > maxSize {
			long = max(long, int64(len(v)))
			return
		}
		out = append(out, pair{e, &v})
	}
	for _, e := range entries {
		v, ok := values[e]
		switch {
		case ok:
			add(e, v)
		case depth == 0:
			out = append(out, pair{e, nil})
		}
		if depth == 0 {
			continue
		}
		var children []string
		for k := range values {
			rest, isChild := strings.CutPrefix(k, e+"/")
			if isChild && (depth < 0 || !strings.Contains(rest, "/")) {
				children = append(children, k)
			}
		}
		slices.Sort(children)
		for _, k := range children {
			add(k, values[k])
		}
	}
	if len(out) > 0 {
		c.w.raw("* METADATA ").mailbox(name).raw(" (")
		for i, pr := range out {
			if i > 0 {
				c.w.sp()
			}
			c.w.astr(pr.entry).sp()
			if pr.value == nil {
				c.w.raw("NIL")
			} else {
				c.w.literal(*pr.value)
			}
		}
		c.w.raw(")").crlf()
	}
	var code imap.ResponseCode
	if long > 0 {
		code = imap.ResponseCode(fmt.Sprintf("METADATA LONGENTRIES %d", long))
	}
	return c.ok(tag, code, "GETMETADATA completed", true)
}

// RFC 5464 §4.3 SETMETADATA mailbox SP "(" entry SP value ... ")"; NIL
// removes an entry. All or nothing.
func (c *conn) cmdSetMetadata(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	name, key, err := c.metadataMailbox(p)
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	if err := p.expect('('); err != nil {
		return err
	}
	type set struct {
		entry string
		value string
		del   bool
	}
	var sets []set
	for !p.take(')') {
		if len(sets) > 0 {
			if err := p.sp(); err != nil {
				return err
			}
		}
		e, err := p.astring()
		if err != nil {
			return err
		}
		if err := p.sp(); err != nil {
			return err
		}
		var v string
		var ok bool
		if p.peek() == '~' {
			v, err = p.str()
			ok = true
		} else {
			v, ok, err = p.nstring()
		}
		if err != nil {
			return err
		}
		l, err := checkEntry(e)
		if err != nil {
			return err
		}
		sets = append(sets, set{l, v, !ok})
	}
	if err := p.end(); err != nil {
		return err
	}
	for _, s := range sets {
		if name == "" && !s.del && (s.entry == "/shared" || strings.HasPrefix(s.entry, "/shared/")) {
			return errNo(imap.ResponseCodeCannot, "The %s server entry cannot be changed", s.entry)
		}
	}
	metadataMu.Lock()
	defer metadataMu.Unlock()
	root := c.store.Root()
	md, err := loadMetadata(root)
	if err != nil {
		c.log.Error("imap: METADATA", "user", c.user, "err", err)
		return errNo(imap.ResponseCodeServerBug, "cannot read metadata")
	}
	values := md[key]
	if values == nil {
		values = map[string]string{}
	}
	for _, s := range sets {
		if s.del {
			delete(values, s.entry)
		} else {
			values[s.entry] = s.value
		}
	}
	if len(values) == 0 {
		delete(md, key)
	} else {
		md[key] = values
	}
	if err := md.save(root); err != nil {
		c.log.Error("imap: METADATA", "user", c.user, "err", err)
		return errNo(imap.ResponseCodeCannot, "cannot store metadata")
	}
	return c.ok(tag, "", "SETMETADATA completed", true)
}

// metadataMoved follows DELETE (new == "": the mailbox's entries go with
// it) and RENAME (the entries of the mailbox and its inferiors move), as
// dovecot's, whose entries live in the mailbox's index. A failure is
// logged: the mailbox operation itself is done.
func (c *conn) metadataMoved(root, old, new string) {
	metadataMu.Lock()
	defer metadataMu.Unlock()
	md, err := loadMetadata(root)
	if err != nil || len(md) == 0 {
		return
	}
	changed := false
	for k, v := range md {
		if k == "" {
			continue
		}
		rest, inferior := strings.CutPrefix(k, old+string(delim))
		if k != old && (new == "" || !inferior) {
			continue
		}
		delete(md, k)
		changed = true
		if new != "" {
			if k == old {
				md[new] = v
			} else {
				md[new+string(delim)+rest] = v
			}
		}
	}
	if changed {
		if err := md.save(root); err != nil {
			c.log.Error("imap: METADATA after DELETE/RENAME", "user", c.user, "err", err)
		}
	}
}
