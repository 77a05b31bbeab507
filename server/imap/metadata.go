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
	"unicode/utf8"

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
//
// Other users' mailboxes (RFC 5464 §3.2 with RFC 4314): entries need the
// 'l' right and one of 'r', 's', 'w', 'i', 'p' (without 'l' the mailbox
// does not exist; without the others NO [NOPERM]). As in dovecot, their
// /shared entries are the owner's (kept in the owner's file under the
// folder's name) and their /private entries the reader's (kept in the
// reader's file under sharedMetadataKey).
//
// Limits (RFC 5464 §4.3): a value longer than metadataMaxValue is NO
// [METADATA MAXSIZE n], a new entry beyond metadataMaxEntries in one
// user's file NO [METADATA TOOMANY]. dovecot 2.3.19 has neither (it takes
// any value the IMAP input takes), so these are mailmig's own bounds on a
// file every METADATA command reads whole.

const metadataFile = "mailmig-metadata"

const (
	// metadataMaxValue is the longest value SETMETADATA stores.
	metadataMaxValue = 64 << 10
	// metadataMaxEntries is the most entries one user's file holds
	// (server, own mailboxes, and /private entries of others').
	metadataMaxEntries = 1000
)

// sharedMetadataKey is the key in the reader's file of the /private
// entries of another user's folder. No folder name holds a NUL, so it
// never meets one of the reader's own folders.
func sharedMetadataKey(owner, folder string) string {
	return "\x00" + owner + "\x00" + folder
}

// metadataMu serialises read-modify-write of the files (all users; the
// commands are rare).
var metadataMu sync.Mutex

// metadataStore is the file's content: mailbox name ("" for the server)
// to entry to value.
type metadataStore map[string]map[string]string

// metadataValue is a value in the file: a JSON string when it is UTF-8,
// else {"base64": "..."} (a JSON string cannot hold other bytes, and
// encoding/json would replace them by U+FFFD).
type metadataValue string

func (v metadataValue) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(v)) {
		return json.Marshal(string(v))
	}
	return json.Marshal(struct {
		Base64 []byte `json:"base64"`
	}{[]byte(v)})
}

func (v *metadataValue) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			Base64 []byte `json:"base64"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*v = metadataValue(o.Base64)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*v = metadataValue(s)
	return nil
}

func (md metadataStore) MarshalJSON() ([]byte, error) {
	out := make(map[string]map[string]metadataValue, len(md))
	for k, vals := range md {
		m := make(map[string]metadataValue, len(vals))
		for e, v := range vals {
			m[e] = metadataValue(v)
		}
		out[k] = m
	}
	return json.Marshal(out)
}

func (md *metadataStore) UnmarshalJSON(b []byte) error {
	var in map[string]map[string]metadataValue
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*md = make(metadataStore, len(in))
	for k, vals := range in {
		m := make(map[string]string, len(vals))
		for e, v := range vals {
			m[e] = string(v)
		}
		(*md)[k] = m
	}
	return nil
}

// entries counts the entries in the file.
func (md metadataStore) entries() int {
	n := 0
	for _, vals := range md {
		n += len(vals)
	}
	return n
}

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
	// dovecot compares each byte as a signed char with 0x19: below 0x1a
	// and 8-bit bytes are refused (and so never stored).
	for i := 0; i < len(l); i++ {
		if l[i] < 0x1a || l[i] >= 0x80 {
			return "", errBad("Entry name can't contain control chars")
		}
	}
	return l, nil
}

// metadataTarget is where a command's entries are: /private entries in
// privRoot's file under privKey, /shared entries in sharedRoot's under
// sharedKey (the same file and key for the server and the user's own
// mailboxes).
type metadataTarget struct {
	name                  string // mailbox name as the client sees it, "" for the server
	privRoot, privKey     string
	sharedRoot, sharedKey string
	denied                bool // the user may see the mailbox but has no right to its entries
}

// file returns the file and key of entry e's scope.
func (t *metadataTarget) file(e string) (root, key string) {
	if e == "/private" || strings.HasPrefix(e, "/private/") {
		return t.privRoot, t.privKey
	}
	return t.sharedRoot, t.sharedKey
}

// metadataMailbox resolves the mailbox argument raw: "" is the server.
// RFC 5464 §3.2: on another user's mailbox the user needs 'l' and one of
// 'r', 's', 'w', 'i', 'p'.
func (c *conn) metadataMailbox(raw string) (*metadataTarget, error) {
	root := c.store.Root()
	if raw == "" {
		return &metadataTarget{privRoot: root, sharedRoot: root}, nil
	}
	m, err := c.mailboxArgName(raw)
	if err != nil {
		return nil, err
	}
	defer m.release()
	if _, err := m.store.Folder(m.folder); err != nil {
		return nil, errNo("", "Mailbox doesn't exist: %s", m.name)
	}
	t := &metadataTarget{name: m.name, privRoot: root, privKey: m.folder, sharedRoot: root, sharedKey: m.folder}
	if m.owner != c.user {
		rights := c.rights(m)
		if !strings.ContainsRune(rights, 'l') {
			return nil, errNo("", "Mailbox doesn't exist: %s", m.name)
		}
		t.denied = !strings.ContainsAny(rights, "rswip")
		t.privKey = sharedMetadataKey(m.owner, m.folder)
		t.sharedRoot = m.store.Root()
	}
	return t, nil
}

func (c *conn) mailboxArgName(raw string) (*mbox, error) {
	name, err := c.decodeName(raw)
	if err != nil {
		return nil, err
	}
	return c.resolve(name)
}

// entryList reads entries: one entry, or a parenthesised list (RFC 5464
// §4.2: entries = entry / "(" entry *(SP entry) ")"; dovecot takes an
// empty list).
func entryList(p *parser) ([]string, error) {
	var raw []string
	if p.take('(') {
		for !p.take(')') {
			if len(raw) > 0 {
				if err := p.sp(); err != nil {
					return nil, err
				}
			}
			e, err := p.astring()
			if err != nil {
				return nil, err
			}
			raw = append(raw, e)
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

// loadMetadataFiles reads the files t's entries are in, keyed by root.
func loadMetadataFiles(t *metadataTarget) (map[string]metadataStore, error) {
	files := map[string]metadataStore{}
	for _, root := range []string{t.privRoot, t.sharedRoot} {
		if files[root] != nil {
			continue
		}
		md, err := loadMetadata(root)
		if err != nil {
			return nil, err
		}
		files[root] = md
	}
	return files, nil
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
				// dovecot takes a 32-bit number.
				n, err := p.number64()
				if err != nil {
					return err
				}
				if n > 1<<32-1 {
					return errBad("Invalid value for MAXSIZE option")
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
	raw, err := p.mailbox()
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
	t, err := c.metadataMailbox(raw)
	if err != nil {
		return err
	}
	if t.denied {
		// dovecot fails each entry's lookup once (three times when it
		// lists children too, DEPTH 1/infinity): the first failure is
		// the tagged NO, the others untagged.
		n := len(entries)
		if depth != 0 {
			n *= 3
		}
		for i := 1; i < n; i++ {
			c.w.raw("* NO Permission denied").crlf()
		}
		return errNo(imap.ResponseCodeNoPerm, "Permission denied")
	}
	metadataMu.Lock()
	files, err := loadMetadataFiles(t)
	metadataMu.Unlock()
	if err != nil {
		c.log.Error("imap: METADATA", "user", c.user, "err", err)
		return errNo(imap.ResponseCodeServerBug, "cannot read metadata")
	}
	valuesFor := func(e string) map[string]string {
		root, key := t.file(e)
		return files[root][key]
	}
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
		values := valuesFor(e)
		v, ok := values[e]
		if reservedEntry(e) {
			ok = false
		}
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
			if isChild && (depth < 0 || !strings.Contains(rest, "/")) && !reservedEntry(k) {
				children = append(children, k)
			}
		}
		slices.Sort(children)
		for _, k := range children {
			add(k, values[k])
		}
	}
	if len(out) > 0 {
		c.w.raw("* METADATA ").mailbox(t.name).raw(" (")
		for i, pr := range out {
			if i > 0 {
				c.w.sp()
			}
			writeEntryName(c.w, pr.entry).sp()
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

// writeEntryName writes an entry name as an atom, or quoted with '"' and
// '\' escaped, as dovecot sends them (checkEntry lets no CR, LF, NUL or
// 8-bit byte in; a long name goes as a literal).
func writeEntryName(w *writer, e string) *writer {
	if e == "" || len(e) > 1000 || strings.ContainsAny(e, "\r\n\x00") || strings.EqualFold(e, "NIL") {
		return w.astr(e)
	}
	atom := true
	for i := 0; i < len(e); i++ {
		atom = atom && isAtomChar(e[i], "]")
	}
	if atom {
		return w.raw(e)
	}
	w.byte1('"')
	for i := 0; i < len(e); i++ {
		if e[i] == '"' || e[i] == '\\' {
			w.byte1('\\')
		}
		w.byte1(e[i])
	}
	return w.byte1('"')
}

// reservedEntry reports entries dovecot keeps for itself, under
// /private or /shared + /vendor/vendor.dovecot/pvt/ (mailbox.h's
// MAILBOX_ATTRIBUTE_PREFIX_DOVECOT_PVT): never set, never shown.
func reservedEntry(e string) bool {
	_, rest, _ := strings.Cut(e[1:], "/")
	return strings.HasPrefix(rest, "vendor/vendor.dovecot/pvt/")
}

// RFC 5464 §4.3 SETMETADATA mailbox SP "(" entry SP value ... ")"; NIL
// removes an entry. All or nothing.
func (c *conn) cmdSetMetadata(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	raw, err := p.mailbox()
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
	t, err := c.metadataMailbox(raw)
	if err != nil {
		return err
	}
	if t.denied {
		return errNo(imap.ResponseCodeNoPerm, "Permission denied")
	}
	for _, s := range sets {
		switch {
		case reservedEntry(s.entry):
			return errNo(imap.ResponseCodeCannot, "The %s attribute cannot be changed", s.entry)
		// dovecot's server /shared/admin and /shared/comment come
		// from its configuration (mail_server_admin/_comment).
		case t.name == "" && (s.entry == "/shared/admin" || s.entry == "/shared/comment"):
			return errNo(imap.ResponseCodeCannot, "The %s server entry cannot be changed", s.entry)
		// A mailbox's special use is dovecot's configuration too; mailmig
		// sets it by CREATE (createspecialuse.go).
		case t.name != "" && s.entry == specialUseEntry:
			return errNo(imap.ResponseCodeCannot, "The %s attribute cannot be changed", s.entry)
		case !s.del && strings.IndexByte(s.value, 0) >= 0:
			return errNo(imap.ResponseCodeCannot, "NUL characters are not allowed in metadata values")
		case !s.del && len(s.value) > metadataMaxValue:
			return errNo(imap.ResponseCode(fmt.Sprintf("METADATA MAXSIZE %d", metadataMaxValue)), "Metadata value too large")
		}
	}
	metadataMu.Lock()
	defer metadataMu.Unlock()
	files, err := loadMetadataFiles(t)
	if err != nil {
		c.log.Error("imap: METADATA", "user", c.user, "err", err)
		return errNo(imap.ResponseCodeServerBug, "cannot read metadata")
	}
	before := map[string]int{}
	for root, md := range files {
		before[root] = md.entries()
	}
	changed := map[string]bool{}
	for _, s := range sets {
		root, key := t.file(s.entry)
		changed[root] = true
		md := files[root]
		values := md[key]
		if values == nil {
			values = map[string]string{}
			md[key] = values
		}
		if s.del {
			delete(values, s.entry)
		} else {
			values[s.entry] = s.value
		}
		if len(values) == 0 {
			delete(md, key)
		}
	}
	for root, md := range files {
		// RFC 5464 §4.3: [METADATA TOOMANY] when the new entries would
		// pass the limit (a file already past it may still shrink).
		if n := md.entries(); n > metadataMaxEntries && n > before[root] {
			return errNo(imap.ResponseCode("METADATA TOOMANY"), "Too many metadata entries")
		}
	}
	for root := range changed {
		if err := files[root].save(root); err != nil {
			c.log.Error("imap: METADATA", "user", c.user, "err", err)
			return errNo(imap.ResponseCodeCannot, "cannot store metadata")
		}
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
