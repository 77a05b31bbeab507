package mailstore

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"mailmig/mailstore/mutf7"
)

// splitName validates an IMAP name and returns its components; INBOX (any
// case) as first component is returned as "INBOX".
func splitName(name string) ([]string, error) {
	if name == "" || !utf8.ValidString(name) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidFolderName, name)
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		switch {
		case p == "":
			return nil, fmt.Errorf("%w: %q: empty component", ErrInvalidFolderName, name)
		case strings.Contains(p, "."):
			return nil, fmt.Errorf("%w: %q: '.' is the Maildir++ hierarchy separator", ErrInvalidFolderName, name)
		case strings.ContainsAny(p, "\x00\t\r\n\x7f"):
			return nil, fmt.Errorf("%w: %q: control character", ErrInvalidFolderName, name)
		case p == "~" || strings.HasPrefix(p, "~"):
			if i == 0 {
				return nil, fmt.Errorf("%w: %q: leading '~'", ErrInvalidFolderName, name)
			}
		}
		if i == 0 && strings.EqualFold(p, "INBOX") {
			parts[0] = "INBOX"
		}
	}
	return parts, nil
}

// EncodeFolderName maps an IMAP folder name ('/' separated, UTF-8) to its
// directory name relative to the root: "" for INBOX, ".a.b" for "a/b",
// non-ASCII in modified UTF-7 (RFC 3501 §5.1.3). A component containing
// '.', an empty component, a control character, a leading '~' or invalid
// UTF-8 give ErrInvalidFolderName. "INBOX/x" is ".INBOX.x" (dovecot does
// the same).
func EncodeFolderName(imapName string) (string, error) {
	parts, err := splitName(imapName)
	if err != nil {
		return "", err
	}
	if len(parts) == 1 && parts[0] == "INBOX" {
		return "", nil
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('.')
		b.WriteString(mutf7.Encode(p))
	}
	return b.String(), nil
}

// DecodeFolderName maps a directory name (".a.b", or "" / "." for the root)
// back to the IMAP name ("a/b", "INBOX").
func DecodeFolderName(dir string) (string, error) {
	if dir == "" || dir == "." {
		return "INBOX", nil
	}
	if !strings.HasPrefix(dir, ".") || dir == ".." {
		return "", fmt.Errorf("%w: directory %q", ErrInvalidFolderName, dir)
	}
	parts := strings.Split(dir[1:], ".")
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("%w: directory %q: empty component", ErrInvalidFolderName, dir)
		}
		d, err := mutf7.Decode(p)
		if err != nil {
			return "", fmt.Errorf("%w: directory %q: %v", ErrInvalidFolderName, dir, err)
		}
		if strings.ContainsAny(d, "/.\x00\t\r\n") {
			return "", fmt.Errorf("%w: directory %q: reserved character", ErrInvalidFolderName, dir)
		}
		parts[i] = d
	}
	name := strings.Join(parts, "/")
	if _, err := splitName(name); err != nil {
		return "", fmt.Errorf("directory %q: %w", dir, err)
	}
	if strings.EqualFold(name, "INBOX") {
		// ".INBOX" would shadow the root; dovecot never creates it.
		return "", fmt.Errorf("%w: directory %q shadows INBOX", ErrInvalidFolderName, dir)
	}
	return name, nil
}

// DefaultSpecialUse returns the RFC 6154 special-use attribute for a
// top-level folder by name (case-insensitive): Sent, Drafts, Trash, Junk,
// Archive, and junkName (the site's spam folder, e.g. "junk") map to
// \Sent, \Drafts, \Trash, \Junk, \Archive, \Junk; anything else to "".
// Dovecot keeps special-use in its config, not on disk; this is the
// default mapping the IMAP server announces.
func DefaultSpecialUse(name, junkName string) string {
	if junkName != "" && strings.EqualFold(name, junkName) {
		return `\Junk`
	}
	switch strings.ToLower(name) {
	case "sent", "sent messages", "sent items":
		return `\Sent`
	case "drafts":
		return `\Drafts`
	case "trash", "deleted messages", "deleted items":
		return `\Trash`
	case "junk", "spam":
		return `\Junk`
	case "archive", "archives":
		return `\Archive`
	}
	return ""
}

// Maildir info letters of the IMAP system flags (dovecot's mapping).
var flagLetters = []struct {
	letter byte
	flag   string
}{
	{'D', FlagDraft},
	{'F', FlagFlagged},
	{'R', FlagAnswered},
	{'S', FlagSeen},
	{'T', FlagDeleted},
}

// infoPart returns the flag letters of a file name ("" when it has no
// ":2," info).
func infoPart(name string) string {
	i := strings.Index(name, ":2,")
	if i < 0 {
		return ""
	}
	return name[i+3:]
}

// keyOf returns a file name's base: the part before ':'.
func keyOf(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// ParseFlags returns the IMAP flags of a Maildir file name's info part
// ("2,FRS" or a whole name); keyword letters are resolved with keywords
// (index = letter-'a'); unknown letters are ignored. The result is sorted
// (system flags first).
func ParseFlags(name string, keywords []string) []string {
	info := name
	if i := strings.Index(name, ":2,"); i >= 0 {
		info = name[i+3:]
	} else if strings.HasPrefix(name, "2,") {
		info = name[2:]
	} else if strings.Contains(name, ":") || strings.Contains(name, ".") {
		return nil
	}
	var sys, kw []string
	for i := 0; i < len(info); i++ {
		c := info[i]
		if c >= 'a' && c <= 'z' {
			if k := int(c - 'a'); k < len(keywords) && keywords[k] != "" && !hasExact(kw, keywords[k]) {
				kw = append(kw, keywords[k])
			}
			continue
		}
		for _, fl := range flagLetters {
			if fl.letter == c && !hasExact(sys, fl.flag) {
				sys = append(sys, fl.flag)
			}
		}
	}
	return sortFlags(append(sys, kw...))
}

func hasExact(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sortFlags sorts system flags (leading '\') before keywords, each group
// by name, in place.
func sortFlags(flags []string) []string {
	sort.Slice(flags, func(i, j int) bool {
		si, sj := strings.HasPrefix(flags[i], `\`), strings.HasPrefix(flags[j], `\`)
		if si != sj {
			return si
		}
		return flags[i] < flags[j]
	})
	return flags
}

// canonicalFlag returns the canonical spelling of a system flag, or the
// keyword unchanged; ok is false for \Recent and unknown system flags,
// which are not stored.
func canonicalFlag(f string) (string, bool) {
	if !strings.HasPrefix(f, `\`) {
		if f == "" || strings.ContainsAny(f, " \t\r\n()[]{}%*\"\\") {
			return "", false
		}
		return f, true
	}
	for _, fl := range flagLetters {
		if strings.EqualFold(fl.flag, f) {
			return fl.flag, true
		}
	}
	return "", false
}

// formatInfo builds the sorted flag letters for flags; keyword letters come
// from kwIndex (name → index). extra keeps letters we do not interpret
// (e.g. 'P'). Keywords missing from kwIndex are dropped.
func formatInfo(flags []string, kwIndex map[string]int, extra string) string {
	letters := []byte(extra)
	for _, f := range flags {
		if c, ok := canonicalFlag(f); ok {
			if strings.HasPrefix(c, `\`) {
				for _, fl := range flagLetters {
					if fl.flag == c {
						letters = append(letters, fl.letter)
					}
				}
			} else if k, ok := kwIndex[c]; ok && k < 26 {
				letters = append(letters, byte('a'+k))
			}
		}
	}
	sort.Slice(letters, func(i, j int) bool { return letters[i] < letters[j] })
	out := letters[:0]
	for i, c := range letters {
		if i == 0 || c != letters[i-1] {
			out = append(out, c)
		}
	}
	return string(out)
}

// uninterpretedLetters returns info letters that are neither system flag
// letters we map nor keyword letters (kept across renames, like 'P').
func uninterpretedLetters(info string) string {
	var b []byte
	for i := 0; i < len(info); i++ {
		c := info[i]
		if c >= 'a' && c <= 'z' {
			continue
		}
		known := false
		for _, fl := range flagLetters {
			if fl.letter == c {
				known = true
			}
		}
		if !known && c > ' ' && c != ',' && c != ':' && c != '/' {
			b = append(b, c)
		}
	}
	return string(b)
}

// sizesFromKey returns the S= and W= values of a file base name (-1 when
// absent), and the U= importer marker (0 when absent).
func sizesFromKey(key string) (size, vsize int64, uid uint32) {
	size, vsize = -1, -1
	fields := strings.Split(key, ",")
	for _, f := range fields[1:] {
		if len(f) < 3 || f[1] != '=' {
			continue
		}
		n, ok := parseDec(f[2:])
		if !ok {
			continue
		}
		switch f[0] {
		case 'S':
			size = n
		case 'W':
			vsize = n
		case 'U':
			if n > 0 && n <= 0xffffffff {
				uid = uint32(n)
			}
		}
	}
	return size, vsize, uid
}

// parseDec parses a non-negative decimal without sign, at most 18 digits.
func parseDec(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// SharedNamespacePrefix is the IMAP shared namespace (RFC 2342) of
// `mailmig serve`, as dovecot's usual "shared/%u/": other users' folders.
const SharedNamespacePrefix = "shared/"

// IsSharedNamespaceName tells whether a folder name of a user's own store
// would collide with the shared namespace ("shared" itself or a name
// below "shared/", case-sensitive as dovecot's namespace prefixes): such
// a folder could be neither selected, renamed nor deleted over IMAP, so
// IMAP CREATE and Sieve fileinto refuse the name and conversion maps it.
func IsSharedNamespaceName(name string) bool {
	return name == strings.TrimSuffix(SharedNamespacePrefix, "/") || strings.HasPrefix(name, SharedNamespacePrefix)
}
