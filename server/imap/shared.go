package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
)

// Names that collide with the shared namespace (RFC 2342 §5): a user's
// own folder cannot be "shared" or below "shared/", since those names
// reach other users' folders. CREATE refuses them as dovecot does (the
// namespace root: [CANNOT]; below it: [NOPERM]), RENAME answers
// [CANNOT], Sieve's fileinto refuses them like CREATE (see
// mailstore.IsSharedNamespaceName) and the converter maps such folders of
// the old site to "shared_..." (migrate/convert).

// isReservedName tells whether folder, a name in the user's own store,
// is the shared namespace's root or below it.
func isReservedName(folder string) bool {
	return mailstore.IsSharedNamespaceName(folder)
}

// createArg parses CREATE's mailbox argument (RFC 9051 §6.3.4) and
// resolves it, refusing the names of the shared namespace that are no
// other user's folder.
func (c *conn) createArg(p *parser) (*mbox, []string, error) {
	if err := p.sp(); err != nil {
		return nil, nil, err
	}
	raw, err := p.mailbox()
	if err != nil {
		return nil, nil, err
	}
	uses, err := createUses(p) // createspecialuse.go
	if err != nil {
		return nil, nil, err
	}
	if err := p.end(); err != nil {
		return nil, nil, err
	}
	name, err := c.decodeName(raw)
	if err != nil {
		return nil, nil, err
	}
	if name+string(delim) == sharedPrefix {
		return nil, nil, errNo(imap.ResponseCodeCannot, "Mailbox can't be created")
	}
	if strings.HasPrefix(name, sharedPrefix) {
		owner, folder, _ := strings.Cut(name[len(sharedPrefix):], string(delim))
		if owner == "" || folder == "" || owner == c.user || !c.isUser(owner) {
			return nil, nil, errNo(imap.ResponseCodeNoPerm, "Permission denied")
		}
	}
	m, err := c.resolve(name)
	return m, uses, err
}
