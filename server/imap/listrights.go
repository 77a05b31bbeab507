package imap

import "slices"

// LIST-MYRIGHTS (RFC 8440 §3): with the LIST return option MYRIGHTS, each
// selectable mailbox listed is followed by its "* MYRIGHTS" response (the
// rights MYRIGHTS would give, RFC 4314 §3.5); \Noselect and \NonExistent
// ones get none.
func (c *conn) listMyRights(name string, attrs []string) {
	if slices.Contains(attrs, `\Noselect`) || slices.Contains(attrs, `\NonExistent`) {
		return
	}
	m, err := c.resolve(name)
	if err != nil {
		return
	}
	defer m.release()
	c.w.raw("* MYRIGHTS ").mailbox(m.name).sp().astr(withObsolete(c.rights(m))).crlf()
}
