package imap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
)

// RFC 9051 §6.4.6 STORE, with RFC 7162 §3.1.3 (UNCHANGEDSINCE n).
func (c *conn) cmdStore(tag string, p *parser, uid bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	set, err := p.numSet()
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	unchangedSince := int64(-1)
	if p.take('(') {
		for !p.take(')') {
			p.take(' ')
			a, err := p.atom()
			if err != nil {
				return err
			}
			if !strings.EqualFold(a, "UNCHANGEDSINCE") {
				return errBad("unknown STORE modifier %s", a)
			}
			if err := p.sp(); err != nil {
				return err
			}
			if unchangedSince, err = p.number64(); err != nil {
				return err
			}
		}
		if err := p.sp(); err != nil {
			return err
		}
		c.enableCondstore()
	}
	item, err := p.atom()
	if err != nil {
		return err
	}
	item = strings.ToUpper(item)
	op := mailstore.FlagReplace
	switch {
	case strings.HasPrefix(item, "+"):
		op, item = mailstore.FlagAdd, item[1:]
	case strings.HasPrefix(item, "-"):
		op, item = mailstore.FlagRemove, item[1:]
	}
	silent := strings.HasSuffix(item, ".SILENT")
	item = strings.TrimSuffix(item, ".SILENT")
	if item != "FLAGS" {
		return errBad("unknown STORE item %s", item)
	}
	if err := p.sp(); err != nil {
		return err
	}
	var flags []imap.Flag
	if p.peek() == '(' {
		if flags, err = p.flagList(); err != nil {
			return err
		}
	} else {
		for {
			f, err := p.flag()
			if err != nil {
				return err
			}
			flags = append(flags, f)
			if !p.take(' ') {
				break
			}
		}
	}
	if err := p.end(); err != nil {
		return err
	}
	for _, f := range flags {
		// RFC 9051 §9 flag: \Recent and unknown system flags cannot be
		// stored (dovecot: "BAD Invalid system flag").
		if !storableFlag(f) {
			return errBad("invalid system flag %s", f)
		}
	}
	s := c.sel
	if s.readOnly {
		return errNo(imap.ResponseCodeCannot, "mailbox is read-only")
	}
	uids, err := s.messages(set, uid)
	if err != nil {
		return err
	}
	// RFC 4314 §4: flags the user has no right to change are ignored.
	var fl []string
	for _, f := range flags {
		switch f {
		case "\\Recent":
			continue
		case imap.FlagSeen:
			if !strings.ContainsRune(s.rights, 's') {
				continue
			}
		case imap.FlagDeleted:
			if !strings.ContainsRune(s.rights, 't') {
				continue
			}
		default:
			if !strings.ContainsRune(s.rights, 'w') {
				continue
			}
		}
		fl = append(fl, string(f))
	}
	if len(fl) == 0 && op != mailstore.FlagReplace {
		uids = nil
	}
	ctx, cancel := c.ctx()
	defer cancel()
	// Messages changed since UNCHANGEDSINCE are left alone and reported in
	// MODIFIED.
	var modified imap.SeqSet
	if unchangedSince >= 0 && len(uids) > 0 {
		if _, err := s.snapshot(ctx); err != nil {
			return c.storeErr("STORE", s.mb, err)
		}
		kept := uids[:0:0]
		for _, u := range uids {
			if s.ms.modseq(u) > uint64(unchangedSince) {
				if uid {
					modified.AddNum(u)
				} else {
					modified.AddNum(s.seqOf(u))
				}
				continue
			}
			kept = append(kept, u)
		}
		uids = kept
	}
	if len(uids) > 0 {
		s.changed()
		if _, err := s.folder.StoreFlags(ctx, uids, op, fl); err != nil {
			return c.storeErr("STORE", s.mb, err)
		}
	}
	snap, err := s.snapshot(ctx)
	if err != nil {
		return c.storeErr("STORE", s.mb, err)
	}
	mine := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		mine[u] = true
	}
	// A STORE that leaves a message's flags as the client last saw them
	// is not reported (dovecot does the same; RFC 7162 §3.1.3 asks for
	// FETCH MODSEQ only for messages the STORE changed).
	changed := uids[:0:0]
	for _, u := range uids {
		if !sameFlags(s.base, snap, u) {
			changed = append(changed, u)
		}
	}
	uids = changed
	c.announceKeywords(snap)
	c.flagUpdates(s.base, snap, mine)
	s.base = snap
	if !silent {
		for _, u := range uids {
			mi, ok := snap.Lookup(u)
			if !ok {
				continue
			}
			c.w.raw("* ").num(s.seqOf(u)).raw(" FETCH (")
			if uid || c.qresync {
				// RFC 7162 §3.2.4: with QRESYNC every FETCH has UID.
				c.w.raw("UID ").num(u).sp()
			}
			c.w.raw("FLAGS ")
			c.writeFlags(&mi)
			c.writeModSeq(u)
			c.w.raw(")").crlf()
		}
	}
	if silent && c.condstore {
		// RFC 7162 §3.1.3: the new MODSEQ is sent even with .SILENT.
		for _, u := range uids {
			if _, ok := snap.Lookup(u); !ok {
				continue
			}
			// UID only for UID STORE (as dovecot) or once QRESYNC
			// is on (RFC 7162 §3.2.4).
			c.w.raw("* ").num(s.seqOf(u)).raw(" FETCH (")
			if uid || c.qresync {
				c.w.raw("UID ").num(u).sp()
			}
			c.w.raw("MODSEQ (").num64(int64(s.ms.modseq(u))).raw(")")
			c.w.raw(")").crlf()
		}
	}
	if len(modified) > 0 {
		return c.ok(tag, imap.ResponseCode("MODIFIED "+modified.String()), "conditional STORE failed for some messages", uid)
	}
	return c.ok(tag, "", "STORE completed", uid)
}

// RFC 9051 §6.4.7 COPY, RFC 6851 MOVE, with RFC 4315 COPYUID.
func (c *conn) cmdCopy(tag string, p *parser, uid bool) error {
	isMove := c.cmdName == "MOVE"
	if err := p.sp(); err != nil {
		return err
	}
	set, err := p.numSet()
	if err != nil {
		return err
	}
	if err := p.sp(); err != nil {
		return err
	}
	dst, err := c.mailboxArg(p)
	if err != nil {
		return err
	}
	defer dst.release()
	if err := p.end(); err != nil {
		return err
	}
	s := c.sel
	uids, err := s.messages(set, uid)
	if err != nil {
		return err
	}
	if err := c.need(dst, 'i'); err != nil {
		return insertRefused(err)
	}
	if isMove && (s.readOnly || !strings.ContainsRune(s.rights, 'e') || !strings.ContainsRune(s.rights, 't')) {
		return errNo(imap.ResponseCodeNoPerm, "no right to move messages out of this mailbox")
	}
	df, err := dst.store.Folder(dst.folder)
	if err != nil {
		if errors.Is(err, mailstore.ErrNoSuchFolder) {
			return errNo(imap.ResponseCodeTryCreate, "no such mailbox")
		}
		return c.storeErr("COPY", dst, err)
	}
	if len(uids) == 0 {
		return c.ok(tag, "", "nothing to do", true)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	var pairs []mailstore.UIDPair
	s.changed()
	if isMove {
		pairs, err = s.folder.Move(ctx, uids, df)
	} else {
		pairs, err = s.folder.Copy(ctx, uids, df)
	}
	if err != nil {
		return c.storeErr("COPY", dst, err)
	}
	c.noteModseqs(df)
	code := imap.ResponseCode("")
	if len(pairs) > 0 {
		var src, dstSet imap.UIDSet
		for _, pr := range pairs {
			src.AddNum(imap.UID(pr.Src))
			dstSet.AddNum(imap.UID(pr.Dst))
		}
		code = imap.ResponseCode(fmt.Sprintf("COPYUID %d %s %s", df.UIDValidity(), src, dstSet))
	}
	if isMove {
		if code != "" {
			c.w.raw("* OK [").raw(string(code)).raw("] moved").crlf()
		}
		return c.okExpunged(tag, "MOVE completed")
	}
	return c.ok(tag, code, "COPY completed", true)
}

// lfReader turns CRLF line ends into LF: Maildir files are stored with
// LF ends, as dovecot does (mail_save_crlf = no). A CR not followed by LF
// is kept.
type lfReader struct {
	r *bufio.Reader
}

func newLFReader(r io.Reader) *lfReader {
	return &lfReader{r: bufio.NewReaderSize(r, 16*1024)}
}

func (l *lfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		b, err := l.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b == '\r' {
			if next, err := l.r.Peek(1); err == nil && next[0] == '\n' {
				continue
			}
		}
		p[n] = b
		n++
	}
	return n, nil
}

// sameFlags tells whether uid has the same flags in both snapshots (false
// when either lacks it).
func sameFlags(a, b *mailstore.Snapshot, uid uint32) bool {
	if a == nil || b == nil {
		return false
	}
	x, ok := a.Lookup(uid)
	if !ok {
		return false
	}
	y, ok := b.Lookup(uid)
	return ok && slices.Equal(x.Flags, y.Flags)
}
