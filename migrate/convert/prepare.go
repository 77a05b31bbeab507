package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"mailmig/mailstore"
	"mailmig/migrate/mbox"
	"mailmig/migrate/mbx"
	"mailmig/migrate/spool"
)

// subscriptions writes the union of the store's subscriptions and the
// mapped ~/.mailboxlist (so a rerun, or a subscription made in the new
// store meanwhile, loses nothing).
func (c *converter) subscriptions() error {
	if c.opts.Subscriptions == "" {
		return nil
	}
	old, err := c.store.Subscriptions()
	if err != nil {
		return fmt.Errorf("convert: subscriptions of %s: %w", c.opts.Maildir, err)
	}
	seen := map[string]bool{}
	var all []string
	for _, n := range append(append([]string(nil), c.plan.subs...), old...) {
		if !seen[n] {
			seen[n] = true
			all = append(all, n)
		}
	}
	c.rep.Subscriptions = all
	if len(all) == len(old) && len(c.plan.subs) == 0 {
		return nil
	}
	if err := c.store.SetSubscriptions(all); err != nil {
		return fmt.Errorf("convert: subscriptions of %s: %w", c.opts.Maildir, err)
	}
	return nil
}

// Prepared is what Prepare set up.
type Prepared struct {
	// UIDValidity and UIDNext of the new INBOX.
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	// Messages is the number of messages in the source INBOX.
	Messages int `json:"messages"`
}

// Prepare readies the new store for dual delivery, before it starts:
// it creates the Maildir (if missing) and its INBOX with the source
// INBOX's UIDVALIDITY (a new one if the spool has none) and UIDNEXT one
// past the source's last UID, so UIDs handed out by delivery never take
// a UID the copy will give an old message. It reads the spool (under its
// lock) but writes nothing there. Idempotent: an INBOX that has a
// UIDVALIDITY keeps it, and UIDNEXT only grows.
func Prepare(ctx context.Context, opts Options) (*Prepared, error) {
	if opts.Maildir == "" {
		return nil, errors.New("convert: prepare: no Maildir given")
	}
	st, err := mailstore.Open(opts.Maildir, mailstore.Options{CreateRoot: true, NoFsync: opts.NoFsync, Hostname: opts.Hostname, Logger: opts.Logger, LockTimeout: storeLockTimeout})
	if err != nil {
		return nil, fmt.Errorf("convert: prepare: %w", err)
	}
	defer st.Close()
	var uv, next uint32 = 0, 1
	n := 0
	if opts.Inbox != "" {
		uv, next, n, err = scanInbox(ctx, opts)
		if err != nil {
			return nil, err
		}
	}
	if cur := committedUIDValidity(st, "INBOX"); cur != 0 {
		// Prepared (or converted) before: never lower UIDNEXT; keep the
		// UIDVALIDITY if the source has none.
		if uv == 0 {
			uv = cur
		}
		if f, err := st.Folder("INBOX"); err == nil && f.UIDNext() > next && cur == uv {
			next = f.UIDNext()
		}
	}
	if uv == 0 {
		uv = newUIDValidity(opts.Inbox)
	}
	im, err := st.Importer("INBOX", uv)
	if err != nil {
		return nil, fmt.Errorf("convert: prepare INBOX: %w", err)
	}
	im.SetUIDNext(next)
	if err := im.Commit(); err != nil {
		return nil, fmt.Errorf("convert: prepare INBOX: %w", err)
	}
	return &Prepared{UIDValidity: uv, UIDNext: next, Messages: n}, nil
}

// scanInbox reads the spool under its lock for UIDVALIDITY and the UID
// the next message would get.
func scanInbox(ctx context.Context, opts Options) (uv, next uint32, n int, err error) {
	// Never open a FIFO or device (open would block, or read forever).
	if st, err := os.Stat(opts.Inbox); err == nil && !st.Mode().IsRegular() {
		return 0, 0, 0, fmt.Errorf("%w: %s: INBOX spool is %s, not a regular file", ErrUnreadable, opts.Inbox, fileKind(st.Mode()))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, 0, fmt.Errorf("%w: %s: cannot read the INBOX spool: %s", ErrUnreadable, opts.Inbox, errReason(err))
	}
	var in io.Reader
	if opts.NoInboxLock {
		f, err := os.Open(opts.Inbox)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, 1, 0, nil
		}
		if err != nil {
			return 0, 0, 0, fmt.Errorf("%w: %s: cannot read the INBOX spool: %s", ErrUnreadable, opts.Inbox, errReason(err))
		}
		defer f.Close()
		in = f
	} else {
		if _, err := os.Stat(opts.Inbox); errors.Is(err, fs.ErrNotExist) {
			return 0, 1, 0, nil
		}
		l, err := spool.Lock(ctx, opts.Inbox, spool.Options{NoFsync: true, Logger: opts.Logger})
		if errors.Is(err, fs.ErrPermission) {
			return 0, 0, 0, fmt.Errorf("%w: %s: cannot read the INBOX spool: %s", ErrUnreadable, opts.Inbox, errReason(err))
		}
		if err != nil {
			return 0, 0, 0, fmt.Errorf("convert: prepare: lock %s: %w", opts.Inbox, err)
		}
		defer l.Unlock()
		fi, err := l.File().Stat()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("convert: prepare: %w", err)
		}
		in = io.NewSectionReader(l.File(), 0, fi.Size())
	}
	var r msgReader
	if src := (&source{path: opts.Inbox}); sniffFormat(src) == mbox.MBX {
		r = mbx.NewReader(in, mbx.Options{Name: opts.Inbox, Location: opts.Location})
	} else {
		r = mbox.NewReader(in, mbox.Options{Name: opts.Inbox, Location: opts.Location})
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, 0, err
		}
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, 0, fmt.Errorf("convert: prepare: %w", err)
		}
		n++
	}
	return r.UIDValidity(), r.UIDNext(), n, nil
}
