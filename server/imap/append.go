package imap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"mailmig/mailstore"
)

// APPEND: RFC 9051 §6.3.12, with MULTIAPPEND (RFC 3502: several messages,
// all or nothing), literal8 (RFC 3516 §4.4: binary parts stored as
// base64, see binary.go) and the flags a user without the s, t or w right
// may not set dropped (RFC 4314 §4, as dovecot does).
func (c *conn) cmdAppend(tag string, p *parser, _ bool) error {
	if err := p.sp(); err != nil {
		return err
	}
	m, err := c.mailboxArg(p)
	if err != nil {
		return err
	}
	defer m.release()

	var (
		f        *mailstore.Folder
		rights   string
		uids     []uint32 // appended so far
		total    int64
		pending  []pendingMessage // read, not yet appended
		buffered int64
	)
	ctx, cancel := c.ctx()
	defer cancel()
	// CATENATE's messages wait in temporary files (unlinked already).
	var tmps []*os.File
	defer func() {
		for _, t := range tmps {
			t.Close()
		}
	}()
	// undo removes what this command appended: RFC 3502 §6.3.11, a
	// MULTIAPPEND that fails appends nothing.
	undo := func() {
		if len(uids) > 0 {
			if _, err := f.Expunge(ctx, uids); err != nil {
				c.log.Error("imap: MULTIAPPEND undo", "user", c.user, "mailbox", m.name, "err", err)
			}
			uids = nil
		}
		pending = nil
	}
	// flush appends the messages held in memory, in order.
	flush := func() error {
		for _, pm := range pending {
			var r io.Reader = bytes.NewReader(pm.data)
			if pm.file != nil {
				r = pm.file
			}
			uid, err := f.Append(ctx, newLFReader(r), pm.flags, pm.date)
			if err != nil {
				pending = nil
				return err
			}
			uids = append(uids, uid)
		}
		pending, buffered = nil, 0
		return nil
	}
	for n := 0; ; n++ {
		if n > 0 && p.eol() {
			break
		}
		if err := p.sp(); err != nil {
			undo()
			return err
		}
		flags, date, err := appendOpts(p)
		if err != nil {
			undo()
			return err
		}
		if save := p.pos; strings.EqualFold(p.word(""), "CATENATE") {
			// RFC 4469 (catenate.go): the message is assembled in a
			// temporary file.
			if n == 0 {
				if err := c.need(m, 'i'); err != nil {
					return insertRefused(err)
				}
				rights = c.rights(m)
				if f, err = m.store.Folder(m.folder); err != nil {
					if errors.Is(err, mailstore.ErrNoSuchFolder) {
						return errNo(imap.ResponseCodeTryCreate, "no such mailbox")
					}
					return c.storeErr("APPEND", m, err)
				}
			}
			if n >= maxMultiAppend {
				undo()
				if err := c.skipLiterals(p); err != nil {
					return err
				}
				return errNo(imap.ResponseCodeLimit, "at most %d messages in one APPEND", maxMultiAppend)
			}
			file, size, err := c.catenateParts(p, filepath.Join(f.Dir(), "tmp"))
			if err != nil {
				undo()
				if _, ok := err.(*syntaxError); !ok {
					// The rest of the command may hold literals.
					if serr := c.skipLiterals(p); serr != nil {
						return serr
					}
				}
				return err
			}
			tmps = append(tmps, file)
			total += size
			pending = append(pending, pendingMessage{file: file, flags: allowedFlags(flags, rights), date: date})
			continue
		} else {
			p.pos = save
		}
		utf8Data, err := c.appendUTF8Open(p) // RFC 6855 §4, utf8accept.go
		if err != nil {
			undo()
			return err
		}
		binary := p.peek() == '~' && !utf8Data
		size, nonSync, err := p.literalHeader()
		if err != nil {
			undo()
			return err
		}
		// Refuse before the client sends the message when possible; a
		// non-synchronizing literal has to be read and dropped, with
		// the rest of the command.
		refuse := func(e error) error {
			undo()
			if nonSync {
				if _, err := io.CopyN(io.Discard, c.br, size); err != nil {
					return &ioError{err}
				}
				if err := p.nextLine(); err != nil {
					return &ioError{err}
				}
				if err := c.skipLiterals(p); err != nil {
					return err
				}
			}
			return e
		}
		total += size
		if size == 0 {
			// As dovecot: a message has at least a header or a body.
			return refuse(errNo("", "cannot save a zero byte message"))
		}
		if size > c.srv.opts.AppendLimit || total > c.srv.opts.AppendLimit*int64(maxMultiAppend) {
			return refuse(errNo(imap.ResponseCodeTooBig, "message larger than %d bytes", c.srv.opts.AppendLimit))
		}
		if n >= maxMultiAppend {
			return refuse(errNo(imap.ResponseCodeLimit, "at most %d messages in one APPEND", maxMultiAppend))
		}
		if size == 0 {
			// An empty literal is no message (RFC 5322 §3.5 needs a
			// header or at least a body): NO, as dovecot answers.
			return refuse(errNo("", "cannot save an empty message"))
		}
		if n == 0 {
			if err := c.need(m, 'i'); err != nil {
				return refuse(insertRefused(err))
			}
			rights = c.rights(m)
			if f, err = m.store.Folder(m.folder); err != nil {
				if errors.Is(err, mailstore.ErrNoSuchFolder) {
					return refuse(errNo(imap.ResponseCodeTryCreate, "no such mailbox"))
				}
				return refuse(c.storeErr("APPEND", m, err))
			}
		}
		if over, err := c.overQuota(m, total); err == nil && over {
			return refuse(errNo(imap.ResponseCodeOverQuota, "over quota"))
		}
		if !nonSync {
			if err := c.continuation(); err != nil {
				return err
			}
		}
		flags = allowedFlags(flags, rights)
		lr := &io.LimitedReader{R: progressReader{c, c.br}, N: size}
		if c.sel != nil {
			c.sel.changed() // in case f is the selected folder
		}
		// Messages are held in memory and appended when the command is
		// complete, so a MULTIAPPEND that fails uses no UIDs, as with
		// dovecot. A big one is streamed to the store instead, after
		// those held; if the command then fails they are expunged.
		var appendErr error
		if binary || (size <= maxHeldMessage && buffered+size <= maxHeldAppend) {
			data := make([]byte, size)
			if _, err := io.ReadFull(lr, data); err != nil {
				return &ioError{err}
			}
			if binary {
				data, _ = binaryPartsToBase64(data)
			}
			pending = append(pending, pendingMessage{data: data, flags: flags, date: date})
			buffered += size
		} else if appendErr = flush(); appendErr == nil {
			var uid uint32
			uid, appendErr = f.Append(ctx, newLFReader(lr), flags, date)
			if appendErr == nil {
				uids = append(uids, uid)
			}
		}
		// Whatever the store did, the literal must be consumed.
		if _, err := io.Copy(io.Discard, lr); err != nil {
			return &ioError{err}
		}
		if lr.N > 0 {
			return &ioError{io.ErrUnexpectedEOF}
		}
		if err := p.nextLine(); err != nil {
			return &ioError{err}
		}
		if err := appendUTF8Close(p, utf8Data); err != nil {
			undo()
			return err
		}
		if appendErr != nil {
			undo()
			if err := c.skipLiterals(p); err != nil {
				return err
			}
			return c.storeErr("APPEND", m, appendErr)
		}
	}
	if err := p.end(); err != nil {
		undo()
		return err
	}
	if err := flush(); err != nil {
		undo()
		return c.storeErr("APPEND", m, err)
	}
	c.noteModseqs(f)
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	code := imap.ResponseCode(fmt.Sprintf("APPENDUID %d %s", f.UIDValidity(), set.String()))
	return c.ok(tag, code, "APPEND completed", true)
}

// pendingMessage is an APPENDed message held until the command is
// complete.
type pendingMessage struct {
	data []byte
	file *os.File // instead of data: a CATENATE message

	flags []string
	date  time.Time
}

// Held in memory: messages up to maxHeldMessage, up to maxHeldAppend in
// all per command; bigger ones are streamed to the store.
const (
	maxHeldMessage = 4 << 20
	maxHeldAppend  = 16 << 20
)

// maxMultiAppend bounds the messages of one MULTIAPPEND.
const maxMultiAppend = 1000

// appendOpts parses RFC 3502's append-opts: [flag-list SP] [date-time SP].
func appendOpts(p *parser) (flags []string, date time.Time, err error) {
	if p.peek() == '(' {
		fl, err := p.flagList()
		if err != nil {
			return nil, date, err
		}
		for _, f := range fl {
			if !storableFlag(f) {
				return nil, date, p.errorf("invalid system flag %s", f)
			}
			flags = append(flags, string(f))
		}
		if err := p.sp(); err != nil {
			return nil, date, err
		}
	}
	if p.peek() == '"' {
		if date, err = p.dateTime(); err != nil {
			return nil, date, err
		}
		if err := p.sp(); err != nil {
			return nil, date, err
		}
	}
	return flags, date, nil
}

// allowedFlags drops the flags rights do not let the user set (RFC 4314
// §4: \Seen needs s, \Deleted t, the others w), as STORE does.
func allowedFlags(flags []string, rights string) []string {
	out := flags[:0:0]
	for _, f := range flags {
		var need rune
		switch strings.ToLower(f) {
		case `\seen`:
			need = 's'
		case `\deleted`:
			need = 't'
		default:
			need = 'w'
		}
		if strings.ContainsRune(rights, need) {
			out = append(out, f)
		}
	}
	return out
}
