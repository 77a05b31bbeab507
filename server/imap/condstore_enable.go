package imap

import "slices"

// enableCondstore is run by every CONDSTORE enabling command (RFC 7162
// §3.1: FETCH or SEARCH with MODSEQ, STORE UNCHANGEDSINCE, ENABLE): the
// first one issued with a mailbox selected makes the server send
// HIGHESTMODSEQ ("* OK [HIGHESTMODSEQ n]", §3.1, §3.1.2.1), as dovecot
// does, since the client may not have seen it in the SELECT.
func (c *conn) enableCondstore() {
	if c.condstore {
		return
	}
	c.condstore = true
	if c.sel != nil && c.sel.ms != nil {
		c.w.raw("* OK [HIGHESTMODSEQ ").num64(int64(c.sel.ms.highestModSeq())).raw("] Highest").crlf()
	}
}

// esearchModSeq is the MODSEQ of an ESEARCH response (RFC 7162 §3.1.10):
// with RETURN (MIN) or (MAX) alone (or both), the highest mod-sequence of
// the messages returned; with ALL or COUNT, the highest of all matches.
// modseqs are the matches' in message order.
func esearchModSeq(ret []string, modseqs []uint64, all uint64) uint64 {
	if len(modseqs) == 0 || slices.Contains(ret, "ALL") || slices.Contains(ret, "COUNT") || len(ret) == 0 {
		return all
	}
	var m uint64
	if slices.Contains(ret, "MIN") {
		m = max(m, modseqs[0])
	}
	if slices.Contains(ret, "MAX") {
		m = max(m, modseqs[len(modseqs)-1])
	}
	if m == 0 {
		return all
	}
	return m
}
