// Package acl reads and writes a Maildir++ folder's access control list
// the way dovecot's acl plugin keeps it with `acl = vfile`: a
// `dovecot-acl` file in the folder's directory, one `IDENTIFIER RIGHTS`
// line each, identifiers `user=NAME`, `owner`, `authenticated` or
// `anyone`, rights letters of RFC 4314 §2.1. The owner of a folder always
// has every right; the file grants rights to others.
//
// The web page uses it to share folders; the file is the one the IMAP
// server's GETACL/SETACL read and write.
package acl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// AllRights are the rights mailmig implements (RFC 4314 §2.1), in order.
const AllRights = "lrwstipekxa"

// FileName is dovecot's per-folder ACL file.
const FileName = "dovecot-acl"

// ErrBadIdentifier is returned for an identifier that cannot be written
// to the file (empty, with white space or a control character).
var ErrBadIdentifier = errors.New("acl: bad identifier")

// mu serialises read-modify-write cycles within the process.
var mu sync.Mutex

// Read returns the ACL of the folder directory dir (identifier → rights);
// a missing file is an empty ACL.
func Read(dir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return Parse(b), nil
}

// Parse parses a dovecot-acl file. Negative entries (`-user=x rights`,
// RFC 4314 §2: rights taken away) are kept under their `-` key, so an
// update does not lose them and the IMAP server subtracts them;
// malformed entries are ignored; rights letters outside AllRights are
// dropped.
func Parse(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		id, rights, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		out[id] = Normalize(strings.TrimSpace(rights))
	}
	return out
}

// Normalize keeps known rights in AllRights order; the obsolete RFC 2086
// rights c and d imply k and x, and t and e (RFC 4314 §2.1.1, as dovecot
// maps them).
func Normalize(r string) string {
	if strings.ContainsRune(r, 'c') {
		r += "kx"
	}
	if strings.ContainsRune(r, 'd') {
		r += "te"
	}
	var b strings.Builder
	for _, c := range AllRights {
		if strings.ContainsRune(r, c) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// ID maps an RFC 4314 identifier to the file's form (`alice` →
// `user=alice`).
func ID(id string) (string, error) {
	if id == "" || strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 || strings.HasPrefix(id, "-") {
		return "", fmt.Errorf("%w %q", ErrBadIdentifier, id)
	}
	switch id {
	case "anyone", "authenticated", "owner":
		return id, nil
	}
	return "user=" + id, nil
}

// Write replaces the ACL file of dir atomically (tmp + rename).
func Write(dir string, a map[string]string) error {
	ids := make([]string, 0, len(a))
	for id := range a {
		if strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return fmt.Errorf("%w %q", ErrBadIdentifier, id)
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b bytes.Buffer
	for _, id := range ids {
		if r := Normalize(a[id]); r != "" {
			fmt.Fprintf(&b, "%s %s\n", id, r)
		}
	}
	path := filepath.Join(dir, FileName)
	tmp := path + ".mailmig-tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("acl: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("acl: rename %s: %w", tmp, err)
	}
	return nil
}

// Set gives identifier id exactly rights on the folder in dir ("" removes
// the entry).
func Set(dir, id, rights string) error {
	fid, err := ID(id)
	if err != nil {
		return err
	}
	return Update(dir, func(a map[string]string) error {
		if rights = Normalize(rights); rights == "" {
			delete(a, fid)
		} else {
			a[fid] = rights
		}
		return nil
	})
}

// Update changes the ACL of dir with edit under the process-wide lock
// (IMAP's SETACL and the web page's sharing form use it) and writes it
// back atomically.
func Update(dir string, edit func(map[string]string) error) error {
	mu.Lock()
	defer mu.Unlock()
	a, err := Read(dir)
	if err != nil {
		return err
	}
	if err := edit(a); err != nil {
		return err
	}
	return Write(dir, a)
}

// Describe says in plain words what rights allow, for people who do not
// read RFC 4314.
func Describe(rights string) string {
	words := []struct {
		r    rune
		text string
	}{
		{'l', "see the folder"}, {'r', "read messages"}, {'s', "keep read/unread"},
		{'w', "set flags"}, {'i', "add messages"}, {'p', "send to it"},
		{'k', "create subfolders"}, {'x', "delete the folder"},
		{'t', "delete messages"}, {'e', "expunge"}, {'a', "change who may do what"},
	}
	var out []string
	for _, w := range words {
		if strings.ContainsRune(rights, w.r) {
			out = append(out, w.text)
		}
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}
