package imap

import (
	"context"

	"mailmig/mailstore"
)

// claimNewRecent gives this session the \Recent flag of messages that
// arrived in the selected folder while it was selected read-write, and
// announces the new count (RFC 3501 §2.3.2, §7.3.2: exactly one session
// sees a message as \Recent, and EXISTS and RECENT agree with STATUS).
// Sessions that race for a message both try to move it from new/ to
// cur/; only one rename succeeds, so only one session claims it, as with
// dovecot. newFrom is the index in snap of the first message new to the
// view.
func (c *conn) claimNewRecent(ctx context.Context, snap *mailstore.Snapshot, newFrom int) {
	s := c.sel
	if s == nil || s.readOnly || c.rev2 {
		return
	}
	any := false
	for i := newFrom; i < len(snap.Messages); i++ {
		if snap.Messages[i].Recent {
			any = true
			break
		}
	}
	if !any {
		return
	}
	claimed, err := s.folder.ClaimRecent(ctx)
	if err != nil {
		c.log.Warn("imap: claim recent", "mailbox", s.mb.name, "err", err)
		return
	}
	if len(claimed) == 0 {
		return
	}
	if s.recent == nil {
		s.recent = make(map[uint32]bool, len(claimed))
	}
	for _, u := range claimed {
		s.recent[u] = true
	}
	if c.notifyNoCounts {
		return // NOTIFY without MessageNew for the selected mailbox
	}
	n := uint32(0)
	for _, u := range s.uids {
		if s.recent[u] {
			n++
		}
	}
	c.w.raw("* ").num(n).raw(" RECENT").crlf()
}
