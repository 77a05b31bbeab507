package mailstore

import (
	"context"
	"fmt"
)

// validGUID tells whether g is a mailbox GUID as dovecot writes it in
// dovecot-uidlist's header: 32 lower-case hex digits (guid_128). dovecot
// treats a header with any other G value as corrupt and rebuilds it.
func validGUID(g string) bool {
	if len(g) != 32 {
		return false
	}
	for i := 0; i < len(g); i++ {
		if c := g[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// MailboxGUID returns the folder's mailbox GUID: the G field of the
// dovecot-uidlist header, the same value dovecot reports as the mailbox's
// guid (doveadm mailbox status guid) and dsync matches folders by. It
// lives in the folder's own directory, so it moves with a rename (children
// included) and a folder deleted and created again gets a new one; the
// converter and CreateFolder write it with the first uidlist.
//
// A uidlist without a valid one (version 1, or written by a program that
// left it out) gets one now, rewritten under dovecot-uidlist.lock after
// reading the file again, as dovecot does when asked for the GUID: two
// sessions or processes asking at once see the same value.
func (f *Folder) MailboxGUID(ctx context.Context) (string, error) {
	st := f.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, _, err := f.syncLocked(ctx, nil); err != nil {
		return "", err
	}
	if validGUID(st.ul.GUID) {
		return st.ul.GUID, nil
	}
	st.needGUID = true
	err := f.assignLocked(ctx, nil)
	st.needGUID = false
	if err != nil {
		return "", err
	}
	if st.ul == nil || !validGUID(st.ul.GUID) {
		return "", fmt.Errorf("folder %s: dovecot-uidlist has no mailbox GUID after rewriting it", f.name)
	}
	return st.ul.GUID, nil
}
