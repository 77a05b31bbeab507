package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"mailmig/migrate/spool"
	"mailmig/server/delivery"
)

// oldInboxCopy appends a migration mail to the user's old INBOX spool
// (when it exists) under the spool's locks.
func oldInboxCopy(e *env) func(ctx context.Context, user string, msg []byte) error {
	return func(ctx context.Context, user string, msg []byte) error {
		p, err := e.cfg.PathsFor(user)
		if err != nil {
			return err
		}
		_, err = spool.Append(ctx, p.Inbox, "MAILER-DAEMON", e.db.Now(), msg, spool.Options{})
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
}

// deliveryEnvelope is the envelope of a mail from the postmaster to a
// local user (the migration's notices).
func deliveryEnvelope(from, user, domain string) delivery.Envelope {
	return delivery.Envelope{From: from, To: user + "@" + domain, User: user}
}

// inboxHasMessageID reports whether the user's new INBOX (new/ and cur/)
// holds a message whose header carries Message-ID <id>. It reads only
// the first 16 KB of each file; used after a runner restart to avoid
// sending a migration mail twice.
func inboxHasMessageID(maildirFor func(string) (string, error)) func(ctx context.Context, user, id string) (bool, error) {
	return func(ctx context.Context, user, id string) (bool, error) {
		root, err := maildirFor(user)
		if err != nil {
			return false, err
		}
		needle := []byte("<" + id + ">")
		buf := make([]byte, 16<<10)
		for _, sub := range []string{"new", "cur"} {
			ents, err := os.ReadDir(filepath.Join(root, sub))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return false, err
			}
			for _, de := range ents {
				if ctx.Err() != nil {
					return false, ctx.Err()
				}
				f, err := os.Open(filepath.Join(root, sub, de.Name()))
				if err != nil {
					continue // renamed meanwhile (flags changed): it is still found under its new name or was not ours
				}
				n, _ := io.ReadFull(f, buf)
				f.Close()
				hdr := buf[:n]
				if i := bytes.Index(hdr, []byte("\r\n\r\n")); i >= 0 {
					hdr = hdr[:i]
				} else if i := bytes.Index(hdr, []byte("\n\n")); i >= 0 {
					hdr = hdr[:i]
				}
				if bytes.Contains(hdr, needle) {
					return true, nil
				}
			}
		}
		return false, nil
	}
}
