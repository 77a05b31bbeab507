package convert

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"

	"mailmig/mailstore/mutf7"
)

// Folder names: how a path below the folders directory (bytes, one
// component per directory level) becomes an IMAP folder name in the new
// store. Documented in docs/convert.md; the rules, per component:
//
//  1. Decode: a pure-ASCII name that is valid modified UTF-7 with at least
//     one "&...-" sequence is decoded from it; valid UTF-8 stays; anything
//     else is decoded from Options.Charset (latin1 by default).
//  2. Map: '.' (dovecot's Maildir++ separator), control characters and the
//     IMAP wildcards '*' and '%' become '_'; a trailing ".gz" of a
//     compressed folder is dropped.
//  3. Reserved: a first component "shared" (the IMAP shared namespace,
//     where other users' folders appear) becomes "shared_".
//  4. Collisions: names are assigned in byte order of their source paths;
//     a name already taken (INBOX compared case-insensitively) gets "_2",
//     "_3", ... on its last component.
//
// Non-ASCII is stored by the mailstore in modified UTF-7, as dovecot does.

// Renaming records a folder (or subscription) whose visible name changed.
type Renaming struct {
	// Old is the name as the old server showed it (decoded to UTF-8).
	Old string `json:"old"`
	// New is the IMAP name in the new store.
	New string `json:"new"`
	// Reason says why, in words for the confirmation mail.
	Reason string `json:"reason"`
}

// nameMapper assigns new names deterministically.
type nameMapper struct {
	dec   *encoding.Decoder
	taken map[string]bool // by key()
}

func newNameMapper(charset string) (*nameMapper, error) {
	cm, err := charsetByName(charset)
	if err != nil {
		return nil, err
	}
	m := &nameMapper{dec: cm.NewDecoder(), taken: map[string]bool{"INBOX": true}}
	return m, nil
}

func charsetByName(name string) (*charmap.Charmap, error) {
	switch strings.ToLower(strings.ReplaceAll(name, "-", "")) {
	case "", "latin1", "iso88591", "l1":
		return charmap.ISO8859_1, nil
	case "latin9", "iso885915":
		return charmap.ISO8859_15, nil
	case "cp1252", "windows1252":
		return charmap.Windows1252, nil
	case "latin2", "iso88592":
		return charmap.ISO8859_2, nil
	case "koi8r":
		return charmap.KOI8R, nil
	}
	return nil, fmt.Errorf("convert: unknown folder charset %q (latin1, latin9, latin2, cp1252, koi8r)", name)
}

func key(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// decodeComponent returns the UTF-8 form of one name component and how it
// was decoded ("", "mutf7" or the charset).
func (m *nameMapper) decodeComponent(b string) (string, string) {
	if s, err := mutf7.Decode(b); err == nil && s != b {
		return s, "modified UTF-7"
	}
	if utf8.ValidString(b) {
		return b, ""
	}
	s, err := m.dec.String(b)
	if err != nil {
		return strings.ToValidUTF8(b, "\uFFFD"), "invalid"
	}
	return s, "charset"
}

// sanitize maps characters that cannot be in a component.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '.' || r == '*' || r == '%' || r == '/' || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError:
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// plan returns the display name (old, decoded) and the new name of a
// source path (components separated by '/', raw bytes), and the reasons
// for a change. It does not reserve the name.
func (m *nameMapper) plan(rel string) (old, proposed string, reasons []string) {
	parts := strings.Split(rel, "/")
	var olds, news []string
	for i, p := range parts {
		if i == len(parts)-1 && strings.HasSuffix(p, ".gz") && len(p) > 3 {
			p = strings.TrimSuffix(p, ".gz")
			reasons = append(reasons, "compressed folder")
		}
		d, how := m.decodeComponent(p)
		olds = append(olds, d)
		if how == "invalid" {
			reasons = append(reasons, "undecodable bytes")
		}
		s := sanitize(d)
		if s != d {
			reasons = append(reasons, "characters not allowed in folder names")
		}
		news = append(news, s)
	}
	if news[0] == "shared" {
		// The IMAP shared namespace (mailstore.IsSharedNamespaceName):
		// a folder of one's own there could not be selected.
		news[0] = "shared_"
		reasons = append(reasons, "the name shared/ is where other users' folders appear")
	}
	old = strings.Join(olds, "/")
	if reasons != nil && reasons[0] == "compressed folder" {
		old += ".gz"
	}
	return old, strings.Join(news, "/"), reasons
}

// assign reserves a unique name for proposed.
func (m *nameMapper) assign(proposed string) (string, bool) {
	if !m.taken[key(proposed)] {
		m.taken[key(proposed)] = true
		return proposed, false
	}
	for n := 2; ; n++ {
		c := proposed + "_" + strconv.Itoa(n)
		if !m.taken[key(c)] {
			m.taken[key(c)] = true
			return c, true
		}
	}
}

// mapName is plan+assign for one source path and returns the renaming, if
// any.
func (m *nameMapper) mapName(rel string) (oldName, newName string, ren *Renaming) {
	old, proposed, reasons := m.plan(rel)
	name, collided := m.assign(proposed)
	if collided {
		reasons = append(reasons, "name already taken")
	}
	if name != old {
		ren = &Renaming{Old: old, New: name, Reason: strings.Join(uniq(reasons), ", ")}
	}
	return old, name, ren
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// safeRel cleans a name from the subscriptions file or a folder path and
// refuses names that leave the tree: absolute, "..", empty components.
func safeRel(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty name")
	}
	if strings.HasPrefix(name, "/") || strings.HasPrefix(name, "~") {
		return "", fmt.Errorf("absolute name %q", name)
	}
	for _, p := range strings.Split(name, "/") {
		if p == ".." {
			return "", fmt.Errorf("name %q leaves the folder tree", name)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", fmt.Errorf("empty name")
	}
	return c, nil
}
