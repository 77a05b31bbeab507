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
// view. It reports whether it sent a RECENT response.
func (c *conn) claimNewRecent(ctx context.Context, snap *mailstore.Snapshot, newFrom int) bool {
	s := c.sel
	if s == nil || s.readOnly || c.rev2 {
		return false
	}
	any := false
	for i := newFrom; i < len(snap.Messages); i++ {
		if snap.Messages[i].Recent {
			any = true
			break
		}
	}
	if !any {
		return false
	}
	claimed, err := s.folder.ClaimRecent(ctx)
	if err != nil {
		c.log.Warn("imap: claim recent", "mailbox", s.mb.name, "err", err)
		return false
	}
	if len(claimed) == 0 {
		return false
	}
	if s.recent == nil {
		s.recent = make(map[uint32]bool, len(claimed))
	}
	for _, u := range claimed {
		s.recent[u] = true
	}
	if !c.notifyNoCounts { // else NOTIFY without MessageNew for the selected mailbox
		c.w.raw("* ").num(s.recentCount()).raw(" RECENT").crlf()
	}
	return true
}

// recentCount is the number of messages of the view that are \Recent
// to this session.
func (s *selected) recentCount() uint32 {
	n := uint32(0)
	for _, u := range s.uids {
		if s.recent[u] {
			n++
		}
	}
	return n
}
