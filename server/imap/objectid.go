package imap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"

	"mailmig/mailstore"
)

// OBJECTID (RFC 8474): persistent ids of mailboxes, messages and threads.
//
//   - MAILBOXID (§4) is the folder's mailbox GUID, the G field of its
//     dovecot-uidlist header (mailstore.Folder.MailboxGUID): the value
//     dovecot itself reports as the mailbox's guid. It sits in the folder's
//     directory, so it moves with RENAME and is new after DELETE + CREATE.
//   - EMAILID (§5.1) is "M" and 24 hex digits of the SHA-256 of the
//     message as IMAP serves it (CRLF line ends): the content does not
//     change under a UID, and a COPY or MOVE carries the same bytes, so the
//     id stays the same there too, across restarts and any rebuild of
//     dovecot-uidlist. Identical messages share it (as in Cyrus).
//   - THREADID (§5.2) is "T" and 24 hex digits of the SHA-256 of the
//     thread's root message id: the first id of References, else of
//     In-Reply-To, else the message's own Message-ID; a message with none
//     of these is a thread of its own (the EMAILID's digits). It depends on
//     the message alone, so it never changes once reported (§5.2 MUST)
//     and is the same in every mailbox; THREAD=REFERENCES' grouping is
//     not used because it changes as messages arrive (a late parent,
//     subject merging) and is per mailbox.
//
// docs/imap.md, "OBJECTID", has the reasons.

func init() {
	extensionCaps = append(extensionCaps, "OBJECTID") // RFC 8474, objectid.go
}

// validObjectID tells whether s matches RFC 8474 §7's objectid:
// 1*255(ALPHA / DIGIT / "_" / "-").
func validObjectID(s string) bool {
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// mailboxIDCode is the response code of RFC 8474 §4.1 and §4.2.
func mailboxIDCode(id string) imap.ResponseCode {
	return imap.ResponseCode("MAILBOXID (" + id + ")")
}

// msgObjectIDs are one message's EMAILID and THREADID digests (12 bytes
// each, 24 hex digits), zero until computed.
type msgObjectIDs struct {
	email, thread [12]byte
	haveEmail     bool
	haveThread    bool
}

// folderIDCache holds one folder's computed ids by UID: a message's
// content never changes under its UID, so they hold for the UIDVALIDITY.
type folderIDCache struct {
	mu          sync.Mutex
	uidValidity uint32
	ids         map[uint32]*msgObjectIDs
	used        time.Time
}

// idCaches are all folders' caches, process-wide by directory, bounded by
// maxCachedIDs messages: the folders used least recently go first. A
// dropped entry costs one read of the message again.
var idCaches = struct {
	sync.Mutex
	m map[string]*folderIDCache
}{m: map[string]*folderIDCache{}}

const maxCachedIDs = 1_000_000

// idCacheFor returns f's cache, emptied if its UIDVALIDITY changed.
func idCacheFor(f *mailstore.Folder, uidValidity uint32) *folderIDCache {
	idCaches.Lock()
	defer idCaches.Unlock()
	fc, ok := idCaches.m[f.Dir()]
	if !ok {
		evictLeastUsed(idCaches.m, maxCachedIDs,
			func(o *folderIDCache) int { return len(o.ids) },
			func(o *folderIDCache) time.Time { return o.used })
		fc = &folderIDCache{ids: map[uint32]*msgObjectIDs{}}
		idCaches.m[f.Dir()] = fc
	}
	fc.used = time.Now()
	if fc.uidValidity != uidValidity {
		fc.uidValidity, fc.ids = uidValidity, map[uint32]*msgObjectIDs{}
	}
	return fc
}

// objectIDs computes (or finds) the EMAILID and, with thread, the
// THREADID of mi in folder f of UIDVALIDITY uidValidity.
// mi is a message of snap, f's snapshot.
func (c *conn) objectIDs(ctx context.Context, f *mailstore.Folder, snap *mailstore.Snapshot, mi *mailstore.MessageInfo, thread bool) (emailID, threadID string, err error) {
	fc := idCacheFor(f, snap.UIDValidity)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	// Expunged messages' entries go when they outnumber the live ones.
	if len(fc.ids) > 2*len(snap.Messages)+1000 {
		for u := range fc.ids {
			if snap.Index(u) < 0 {
				delete(fc.ids, u)
			}
		}
	}
	e := fc.ids[mi.UID]
	if e == nil {
		e = &msgObjectIDs{}
	}
	if !e.haveEmail || (thread && !e.haveThread) {
		if err := ctx.Err(); err != nil {
			return "", "", err
		}
		head, err := readObjectIDs(f, mi, e)
		if err != nil {
			return "", "", err
		}
		if !e.haveThread {
			hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(head)))
			root := ""
			for _, field := range []string{"References", "In-Reply-To", "Message-Id"} {
				if ids := msgIDs(hdr.Get(field)); len(ids) > 0 {
					root = ids[0]
					break
				}
			}
			if root == "" {
				e.thread = e.email
			} else {
				sum := sha256.Sum256([]byte(root))
				copy(e.thread[:], sum[:])
			}
			e.haveThread = true
		}
	}
	fc.ids[mi.UID] = e
	emailID = "M" + hex.EncodeToString(e.email[:])
	if thread {
		threadID = "T" + hex.EncodeToString(e.thread[:])
	}
	return emailID, threadID, nil
}

// fetchObjectID writes "EMAILID (id)" or "THREADID (id)" of a selected
// message (RFC 8474 §5.1, §5.2, §7 fetch-att).
func (c *conn) fetchObjectID(ctx context.Context, kind string, snap *mailstore.Snapshot, mi *mailstore.MessageInfo) error {
	s := c.sel
	e, t, err := c.objectIDs(ctx, s.folder, snap, mi, kind == "THREADID")
	if err != nil {
		return c.storeErr("FETCH", s.mb, err)
	}
	id := e
	if kind == "THREADID" {
		id = t
	}
	c.w.raw(kind).raw(" (").raw(id).raw(")")
	return nil
}

// parseObjectIDArg reads the objectid argument of SEARCH EMAILID and
// THREADID (RFC 8474 §6, §7).
func parseObjectIDArg(p *parser, key string) (searchKey, error) {
	if err := p.sp(); err != nil {
		return searchKey{}, err
	}
	start := p.pos
	v, err := p.atom()
	if err != nil {
		return searchKey{}, err
	}
	if !validObjectID(v) {
		p.pos = start
		return searchKey{}, p.errorf("%s needs an objectid (RFC 8474: 1 to 255 letters, digits, '_' or '-')", key)
	}
	return searchKey{op: key, value: v}, nil
}

// readObjectIDs reads mi's file once: unless e has its EMAILID, it hashes
// the whole message with CRLF line ends (as FETCH RFC822 sends it, bare
// LF made CRLF as toCRLF does) into e.email; it returns the header (up to
// maxSortHeader bytes) when e has no THREADID yet.
func readObjectIDs(f *mailstore.Folder, mi *mailstore.MessageInfo, e *msgObjectIDs) ([]byte, error) {
	fh, err := f.OpenMessage(*mi)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	br := bufio.NewReaderSize(fh, 32<<10)
	var cw crlfHash
	if !e.haveEmail {
		cw.h = sha256.New()
	}
	var head []byte
	inHead, lineStart := !e.haveThread, true
	for {
		line, err := br.ReadSlice('\n')
		if cw.h != nil {
			cw.write(line)
		}
		if inHead {
			if lineStart && (len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n') {
				inHead = false
			} else if len(head)+len(line) > maxSortHeader {
				inHead = false
			} else {
				head = append(head, line...)
			}
		}
		lineStart = err == nil
		if errors.Is(err, bufio.ErrBufferFull) {
			err = nil
		}
		if err == io.EOF || (cw.h == nil && !inHead) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", mi.Path, err)
		}
	}
	if cw.h != nil {
		copy(e.email[:], cw.h.Sum(nil))
		e.haveEmail = true
	}
	return head, nil
}

// crlfHash hashes what it is given with each bare LF made CRLF.
type crlfHash struct {
	h    hash.Hash
	prev byte // last byte written
}

func (c *crlfHash) write(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.h.Write(p)
			c.prev = p[len(p)-1]
			return
		}
		before := c.prev
		if i > 0 {
			before = p[i-1]
		}
		if before == '\r' {
			c.h.Write(p[:i+1])
		} else {
			c.h.Write(p[:i])
			c.h.Write([]byte("\r\n"))
		}
		c.prev = '\n'
		p = p[i+1:]
	}
}
