package migrate

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"mailmig/notify"
	"mailmig/state"
)

// Mail kinds as recorded in the event log ("mail-" + kind).
const (
	mailConfirm = notify.Confirm
	mailForced  = notify.Forced
	mailFinal   = notify.Final
)

// Notifier renders the migration's mails and delivers them into the
// user's new INBOX (through the local delivery path), each at most once
// per migration: a sent mail is recorded as an event "mail-KIND".
type Notifier struct {
	DB     *state.DB
	Mailer *notify.Mailer
	// Deliver stores msg for user in the new store (delivery.Deliverer).
	Deliver func(ctx context.Context, user string, msg []byte) error
	// Client settings shown in the mails.
	Client notify.Client
	// Domain is the mail domain of user addresses and the control address.
	Domain string
	// ControlLocalPart and Secret make the reply address.
	ControlLocalPart string
	Secret           []byte
	// Postmaster is shown as the contact.
	Postmaster string
	// Language is the site default (a user's enqueue --lang wins).
	Language string
	// Location formats dates (time.Local if nil).
	Location *time.Location
	// OldCopy, if set, also puts each mail into the user's old INBOX, so
	// a user still reading mail on the old server sees it. Errors are
	// logged by the caller's Deliver path only; the new-store copy counts.
	OldCopy func(ctx context.Context, user string, msg []byte) error
	// Present reports whether the new store already holds the mail with
	// messageID. It is asked only when a previous attempt to send the mail
	// was cut short (a runner killed between delivering and recording),
	// so the mail is never delivered twice. nil: assume not present.
	Present func(ctx context.Context, user, messageID string) (bool, error)
	// PasswordSource names the password source that decides for user
	// ("accounts", "crypt", "kerberos"), so the mails say which password
	// to use; nil or "" leaves the sentence out.
	PasswordSource func(ctx context.Context, user string) string
	// SpamFolder names the user's folder that spam goes to (the site's
	// spam folder resolved against the user's folders: an existing Junk
	// or Spam is used); nil or "" leaves the sentence out.
	SpamFolder func(user string) string
}

// sent reports whether the mail of kind was recorded as sent, and whether
// an attempt to send it was started.
func (n *Notifier) sent(ctx context.Context, user string, kind notify.Kind) (sent, attempted bool, err error) {
	evs, err := n.DB.Events(ctx, user)
	if err != nil {
		return false, false, err
	}
	for _, ev := range evs {
		switch ev.Kind {
		case "mail-" + string(kind):
			sent = true
		case "mail-" + string(kind) + "-attempt":
			attempted = true
		}
	}
	return sent, attempted, nil
}

func (n *Notifier) data(e *state.Entry) (*notify.Data, error) {
	rep, err := ParseReport(e.Report)
	if err != nil {
		return nil, err
	}
	d := &notify.Data{
		User: e.User, Address: e.User + "@" + n.Domain,
		Messages: rep.Messages, Bytes: rep.Bytes,
		Client: n.Client, Postmaster: n.Postmaster, OverQuota: rep.OverQuota,
	}
	if n.PasswordSource != nil {
		d.Password = n.PasswordSource(context.Background(), e.User)
	}
	if n.SpamFolder != nil {
		d.SpamFolder = n.SpamFolder(e.User)
	}
	for _, f := range rep.Folders {
		d.Folders = append(d.Folders, notify.Folder{Name: f.New, Messages: f.Messages, Bytes: f.Bytes})
	}
	for _, rn := range rep.Renamed {
		d.Renamed = append(d.Renamed, notify.Rename{Old: rn.Old, New: rn.New})
	}
	if f := rep.Filters; f != nil && f.Script != "" {
		d.Filters = notify.Filters{Sources: strings.Join(baseNames(f.Sources), ", "), Script: "migrated",
			Active: f.Activated, Problems: f.Problems}
	}
	if !e.Deadline.IsZero() {
		d.Deadline = e.Deadline.In(n.loc()).Format("2006-01-02")
	}
	return d, nil
}

func (n *Notifier) loc() *time.Location {
	if n.Location != nil {
		return n.Location
	}
	return time.Local
}

func (n *Notifier) lang(e *state.Entry) string {
	if e.Language != "" {
		return e.Language
	}
	return n.Language
}

// SendOnce sends the confirmation (kind Confirm or Forced) unless it was
// sent for this migration already.
func (n *Notifier) SendOnce(ctx context.Context, e *state.Entry, kind notify.Kind, cutoverAt time.Time) error {
	d, err := n.data(e)
	if err != nil {
		return err
	}
	d.CutoverAt = cutoverAt.In(n.loc()).Format("2006-01-02 15:04 MST")
	reply := notify.ReplyAddress(n.ControlLocalPart, n.Domain, n.Secret, e.User, e.MigrationID)
	return n.send(ctx, e, kind, d, reply)
}

// SendFinal sends the final mail unless it was sent already.
// carried counts late messages in folders of the first copy; newFolders
// are folders the first copy did not have.
func (n *Notifier) SendFinal(ctx context.Context, e *state.Entry, carried int64, newFolders ...notify.Folder) error {
	d, err := n.data(e)
	if err != nil {
		return err
	}
	d.Carried = carried
	d.NewFolders = newFolders
	return n.send(ctx, e, mailFinal, d, "")
}

func (n *Notifier) send(ctx context.Context, e *state.Entry, kind notify.Kind, d *notify.Data, reply string) error {
	done, attempted, err := n.sent(ctx, e.User, kind)
	if err != nil || done {
		return err
	}
	host := n.Mailer.Hostname
	if host == "" {
		host = n.Domain
	}
	id := fmt.Sprintf("mailmig.%s.%s@%s", kind, e.MigrationID, host)
	mail, err := n.Mailer.Render(kind, n.lang(e), d, reply, id)
	if err != nil {
		return err
	}
	if attempted && n.Present != nil {
		ok, err := n.Present(ctx, e.User, id)
		if err != nil {
			return fmt.Errorf("migrate: look for %s mail of %s: %w", kind, e.User, err)
		}
		if ok {
			return n.DB.Log(ctx, e.User, "mail-"+string(kind), "runner", mail.Subject+" (found delivered after a restart)")
		}
	}
	if err := n.DB.Log(ctx, e.User, "mail-"+string(kind)+"-attempt", "runner", id); err != nil {
		return err
	}
	if err := n.Deliver(ctx, e.User, mail.Bytes); err != nil {
		return fmt.Errorf("migrate: deliver %s mail to %s: %w", kind, e.User, err)
	}
	if n.OldCopy != nil && kind != mailFinal {
		// The copy in the old INBOX is recognised as the same message
		// by the cutover pass (content hash) and not carried twice.
		if err := n.OldCopy(ctx, e.User, mail.Bytes); err != nil {
			n.DB.Log(ctx, e.User, "mail-"+string(kind)+"-old-failed", "runner", err.Error())
		}
	}
	return n.DB.Log(ctx, e.User, "mail-"+string(kind), "runner", mail.Subject)
}

func baseNames(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, "~/"+filepath.Base(p))
	}
	return out
}
