package mailstore

// EncodeFolderName maps an IMAP folder name ('/' separated, UTF-8) to its
// directory name relative to the root: "" for INBOX, ".a.b" for "a/b",
// non-ASCII in modified UTF-7 (RFC 3501 §5.1.3). A component containing
// '.', an empty component, "." or ".." or invalid UTF-8 give
// ErrInvalidFolderName.
func EncodeFolderName(imapName string) (string, error) { return "", errNotYet }

// DecodeFolderName maps a directory name (".a.b", or "" / "." for the root)
// back to the IMAP name ("a/b", "INBOX").
func DecodeFolderName(dir string) (string, error) { return "", errNotYet }

// DefaultSpecialUse returns the RFC 6154 special-use attribute for a
// top-level folder by name (case-insensitive): Sent, Drafts, Trash, Junk,
// Archive, and junkName (the site's spam folder, e.g. "junk") map to
// \Sent, \Drafts, \Trash, \Junk, \Archive, \Junk; anything else to "".
// Dovecot keeps special-use in its config, not on disk; this is the
// default mapping the IMAP server announces.
func DefaultSpecialUse(name, junkName string) string { return "" }

// ParseFlags returns the IMAP flags of a Maildir file name's info part
// ("2,FRS" or a whole name); keyword letters are resolved with keywords
// (index = letter-'a'); unknown letters are ignored.
func ParseFlags(name string, keywords []string) []string { return nil }
