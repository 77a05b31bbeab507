package imap

// I18NLEVEL=1 (RFC 5255 §4.3): SEARCH and SORT compare strings with
// i;unicode-casemap (RFC 5051) rather than i;ascii-casemap. The
// announcement rests on testdata/sessions/ext-i18n.txt, where mailmig's
// SEARCH (search.go) and SORT (sort.go) answer as dovecot, which
// announces this level, on non-ASCII subjects, bodies and addresses
// (case beyond ASCII, composed and decomposed forms, ß, Greek).
func init() {
	extensionCaps = append(extensionCaps, "I18NLEVEL=1")
}
