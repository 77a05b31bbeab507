package imap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

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
		total := 0
		for _, o := range idCaches.m {
			total += len(o.ids)
		}
		for total > maxCachedIDs && len(idCaches.m) > 0 {
			var oldest string
			var t time.Time
			for d, o := range idCaches.m {
				if oldest == "" || o.used.Before(t) {
					oldest, t = d, o.used
				}
			}
			total -= len(idCaches.m[oldest].ids)
			delete(idCaches.m, oldest)
		}
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
func (c *conn) objectIDs(ctx context.Context, f *mailstore.Folder, uidValidity uint32, mi *mailstore.MessageInfo, thread bool) (emailID, threadID string, err error) {
	fc := idCacheFor(f, uidValidity)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	e := fc.ids[mi.UID]
	if e == nil {
		e = &msgObjectIDs{}
	}
	if !e.haveEmail {
		if err := ctx.Err(); err != nil {
			return "", "", err
		}
		r, cl, err := c.openStream(f, mi, false)
		if err != nil {
			return "", "", err
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		cl.Close()
		if err != nil {
			return "", "", err
		}
		copy(e.email[:], h.Sum(nil))
		e.haveEmail = true
	}
	if thread && !e.haveThread {
		hdr, err := readHeaderOf(f, *mi)
		if err != nil {
			return "", "", err
		}
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
	fc.ids[mi.UID] = e
	emailID = "M" + hex.EncodeToString(e.email[:])
	if thread {
		threadID = "T" + hex.EncodeToString(e.thread[:])
	}
	return emailID, threadID, nil
}

// fetchObjectID writes "EMAILID (id)" or "THREADID (id)" of a selected
// message (RFC 8474 §5.1, §5.2, §7 fetch-att).
func (c *conn) fetchObjectID(ctx context.Context, kind string, mi *mailstore.MessageInfo) error {
	s := c.sel
	e, t, err := c.objectIDs(ctx, s.folder, s.folder.UIDValidity(), mi, kind == "THREADID")
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
