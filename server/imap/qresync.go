package imap

import (
	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
)

// QRESYNC (RFC 7162 §3.2). The folder's modseq tracker remembers at which
// modseq each UID it saw go was expunged (modseq.go): VANISHED (EARLIER)
// names those expunged after the client's modseq, as dovecot does. When
// the client's modseq is older than that history (a restart, a tracker
// started later, more than maxGone expunges), it lists every UID of the
// client's known set (or of 1:UIDNEXT-1) that is not in the folder now,
// which RFC 7162 §3.2.5.1 allows ("UIDs ... that never existed" may be
// included): exact whatever the client's modseq.

// qresyncParams are the QRESYNC parameters of SELECT.
type qresyncParams struct {
	uidValidity uint32
	modseq      uint64
	knownUIDs   imap.SeqSet // nil: all
}

// parseQResync parses "(uidvalidity modseq [known-uids [seq-match-data]])".
func parseQResync(p *parser) (*qresyncParams, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	qr := &qresyncParams{}
	var err error
	if qr.uidValidity, err = p.number(); err != nil {
		return nil, err
	}
	if err := p.sp(); err != nil {
		return nil, err
	}
	n, err := p.number64()
	if err != nil {
		return nil, err
	}
	qr.modseq = uint64(n)
	if p.take(' ') && p.peek() != '(' {
		if qr.knownUIDs, err = p.numSet(); err != nil {
			return nil, err
		}
		if isSearchRes(qr.knownUIDs) {
			return nil, p.errorf("$ is not a known-uids set")
		}
		// RFC 7162 §7: known-uids is a sequence-set where "*" is not
		// allowed (dovecot: BAD).
		for _, r := range qr.knownUIDs {
			if r.Start == 0 || r.Stop == 0 {
				return nil, p.errorf("* is not allowed in known-uids")
			}
		}
		p.take(' ')
	}
	if p.take('(') {
		// seq-match-data: a hint we do not need.
		if _, err := p.numSet(); err != nil {
			return nil, err
		}
		if err := p.sp(); err != nil {
			return nil, err
		}
		if _, err := p.numSet(); err != nil {
			return nil, err
		}
		if err := p.expect(')'); err != nil {
			return nil, err
		}
	}
	if err := p.expect(')'); err != nil {
		return nil, err
	}
	return qr, nil
}

// vanishedEarlier writes "* VANISHED (EARLIER) set" for the UIDs of known
// (nil: 1:UIDNEXT-1) not in snap that were expunged after modseq since
// (all of them when the folder's tracker has no history back to since).
func (c *conn) vanishedEarlier(known imap.SeqSet, snap *mailstore.Snapshot, since uint64) {
	if snap.UIDNext <= 1 {
		return
	}
	if known == nil {
		known = imap.SeqSet{{Start: 1, Stop: snap.UIDNext - 1}}
	}
	var gone imap.UIDSet
	if uids, ok := c.sel.ms.vanishedSince(since); ok {
		// RFC 7162 §3.2.5.1, §3.2.6: only what vanished since the
		// client's modseq, as dovecot answers.
		for _, u := range uids {
			if _, there := snap.Lookup(u); !there && inSet(known, u, snap.UIDNext-1) {
				gone.AddNum(imap.UID(u))
			}
		}
		if len(gone) > 0 {
			c.w.raw("* VANISHED (EARLIER) ").raw(gone.String()).crlf()
		}
		return
	}
	for _, r := range known {
		lo, hi := r.Start, r.Stop
		if lo == 0 || lo >= snap.UIDNext {
			lo = snap.UIDNext - 1
		}
		if hi == 0 || hi >= snap.UIDNext {
			hi = snap.UIDNext - 1
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		// Walk the range against the sorted messages: runs between
		// existing UIDs are gone.
		next := lo
		i := snap.Index(lo)
		if i < 0 {
			i = searchUID(snap, lo)
		}
		for ; i < len(snap.Messages) && snap.Messages[i].UID <= hi; i++ {
			u := snap.Messages[i].UID
			if u > next {
				gone.AddRange(imap.UID(next), imap.UID(u-1))
			}
			next = u + 1
		}
		if next <= hi {
			gone.AddRange(imap.UID(next), imap.UID(hi))
		}
	}
	if len(gone) > 0 {
		c.w.raw("* VANISHED (EARLIER) ").raw(gone.String()).crlf()
	}
}

// searchUID returns the index of the first message with UID >= u.
func searchUID(snap *mailstore.Snapshot, u uint32) int {
	lo, hi := 0, len(snap.Messages)
	for lo < hi {
		m := (lo + hi) / 2
		if snap.Messages[m].UID < u {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// qresyncSelect sends what changed since the client's modseq: VANISHED
// (EARLIER), then FETCH (UID FLAGS MODSEQ) for changed messages.
func (c *conn) qresyncSelect(qr *qresyncParams, snap *mailstore.Snapshot) {
	s := c.sel
	c.vanishedEarlier(qr.knownUIDs, snap, qr.modseq)
	for i := range snap.Messages {
		m := &snap.Messages[i]
		if qr.knownUIDs != nil && !inSet(qr.knownUIDs, m.UID, snap.UIDNext-1) {
			continue
		}
		if s.ms.modseq(m.UID) <= qr.modseq {
			continue
		}
		c.w.raw("* ").num(s.seqOf(m.UID)).raw(" FETCH (UID ").num(m.UID).raw(" FLAGS ")
		c.writeFlags(m)
		c.writeModSeq(m.UID)
		c.w.raw(")").crlf()
	}
}
