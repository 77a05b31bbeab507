package mailstore

import "strings"

// ResolveFolder maps a folder name a filter asks for to the folder that
// should receive the message, so that "Junk", "SPAM" or "junk" all reach
// the one spam folder of the site (issue 9 item 9, issue 12 item 8):
//
//   - a folder of exactly that name that exists is used as it is;
//   - a name whose special use is \Junk (Junk, Spam, or junkName, in any
//     case; see DefaultSpecialUse) becomes the existing folder with the
//     \Junk special use — junkName first — or junkName when none exists
//     yet (it is then created like the site's spam folder);
//   - any other name is returned unchanged (folder names stay case
//     sensitive, as in dovecot's Maildir++).
//
// junkName is the site's spam folder ([sieve] spam_folder, "junk").
func ResolveFolder(s *Store, name, junkName string) string {
	if junkName == "" {
		junkName = "junk"
	}
	if DefaultSpecialUse(name, junkName) != `\Junk` || strings.Contains(name, "/") {
		return name
	}
	if _, err := s.Folder(name); err == nil && name == junkName {
		return name
	}
	infos, err := s.Folders()
	if err != nil {
		return name
	}
	var other string
	for _, fi := range infos {
		if DefaultSpecialUse(fi.Name, junkName) != `\Junk` {
			continue
		}
		if strings.EqualFold(fi.Name, junkName) {
			return fi.Name
		}
		if other == "" {
			other = fi.Name
		}
	}
	if other != "" {
		return other
	}
	return junkName
}
