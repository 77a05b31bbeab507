package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"mailmig/mailstore"
)

// mailboxCommand is `mailmig mailbox list|status|resync` (doveadm
// mailbox list / mailbox status / force-resync) on a user's Maildir.
func mailboxCommand() *cli.Command {
	return &cli.Command{
		Name:  "mailbox",
		Usage: "list a user's folders, show their status, or resync what mailmig keeps beside the Maildir",
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list a user's folders",
				ArgsUsage: "USER",
				Description: `Prints the user's folders as IMAP names ('/' separated), with the
subscription mark and special use.

Examples:
   mailmig mailbox list alice
   mailmig mailbox list --json alice`,
				Flags:  []cli.Flag{jsonFlag},
				Action: mailboxAction(mailboxList),
			},
			{
				Name:      "status",
				Usage:     "messages, unseen, UIDVALIDITY, UIDNEXT and size of a user's folders",
				ArgsUsage: "USER [FOLDER]",
				Description: `Prints, for FOLDER or every folder of USER, what IMAP STATUS and
doveadm mailbox status report: messages, unseen, UIDVALIDITY, UIDNEXT, the
size on disk and the virtual size (CRLF line ends, doveadm's vsize, IMAP's
STATUS SIZE of RFC 8438).

Examples:
   mailmig mailbox status alice
   mailmig mailbox status --json alice INBOX`,
				Flags:  []cli.Flag{jsonFlag},
				Action: mailboxAction(mailboxStatus),
			},
			{
				Name:      "resync",
				Usage:     "rescan a user's folders and rebuild the files mailmig keeps beside them",
				ArgsUsage: "USER",
				Description: `Like doveadm force-resync: every folder is rescanned, so that messages
added or removed behind mailmig's back get their UIDs assigned (or are
dropped) in dovecot-uidlist, and maildirsize is rebuilt from the files
(when a quota applies). UIDs already given are kept: clients' caches stay
valid. Safe while the server runs (the same locks as delivery).

Examples:
   mailmig mailbox resync alice`,
				Flags:  []cli.Flag{jsonFlag},
				Action: mailboxAction(mailboxResync),
			},
		},
	}
}

// mailboxAction checks USER [FOLDER] and loads the configuration.
func mailboxAction(f func(c *cli.Context, e *env, user, folder string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() < 1 || c.NArg() > 2 || (c.NArg() == 2 && c.Command.Name != "status") {
			return withExit(64, fmt.Errorf("usage: mailmig mailbox %s %s", c.Command.Name, c.Command.ArgsUsage))
		}
		e, err := loadBase(c)
		if err != nil {
			return err
		}
		defer e.Close()
		return f(c, e, c.Args().Get(0), c.Args().Get(1))
	}
}

// folderListing is one line of mailbox list.
type folderListing struct {
	Name       string `json:"name"`
	Subscribed bool   `json:"subscribed"`
	SpecialUse string `json:"special_use,omitempty"`
}

func mailboxList(c *cli.Context, e *env, user, _ string) error {
	var out []folderListing
	err := withUserStore(e, user, mailstore.Options{}, func(st *mailstore.Store) error {
		fs, err := st.Folders()
		for _, f := range fs {
			out = append(out, folderListing{Name: f.Name, Subscribed: f.Subscribed, SpecialUse: f.SpecialUse})
		}
		return err
	})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, nonNil(out))
	}
	for _, f := range out {
		fmt.Fprintln(c.App.Writer, f.Name)
	}
	return nil
}

// folderStatus is one folder's mailbox status.
type folderStatus struct {
	Name        string `json:"name"`
	Messages    int    `json:"messages"`
	Unseen      int    `json:"unseen"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	Size        int64  `json:"size"`  // bytes on disk
	VSize       int64  `json:"vsize"` // with CRLF line ends: IMAP's RFC822.SIZE, doveadm's vsize
}

func statusOf(ctx context.Context, st *mailstore.Store, name string) (folderStatus, error) {
	f, err := st.Folder(name)
	if err != nil {
		return folderStatus{}, err
	}
	snap, err := f.Snapshot(ctx)
	if err != nil {
		return folderStatus{}, err
	}
	s := folderStatus{Name: name, Messages: len(snap.Messages), UIDValidity: snap.UIDValidity, UIDNext: snap.UIDNext}
	for _, m := range snap.Messages {
		if !m.HasFlag(mailstore.FlagSeen) {
			s.Unseen++
		}
		s.Size += m.Size
		if m.VSize >= 0 {
			s.VSize += m.VSize
		} else {
			s.VSize = -1 // not told by the file name (not written by mailmig or dovecot)
		}
	}
	return s, nil
}

func mailboxStatus(c *cli.Context, e *env, user, folder string) error {
	var out []folderStatus
	err := withUserStore(e, user, mailstore.Options{}, func(st *mailstore.Store) error {
		names := []string{folder}
		if folder == "" {
			fs, err := st.Folders()
			if err != nil {
				return err
			}
			names = names[:0]
			for _, f := range fs {
				names = append(names, f.Name)
			}
		}
		for _, n := range names {
			s, err := statusOf(c.Context, st, n)
			if err != nil {
				return fmt.Errorf("%s: folder %q: %w", user, n, err)
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, nonNil(out))
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "FOLDER\tMESSAGES\tUNSEEN\tUIDVALIDITY\tUIDNEXT\tSIZE\tVSIZE")
	for _, s := range out {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", s.Name, s.Messages, s.Unseen, s.UIDValidity, s.UIDNext, s.Size, s.VSize)
	}
	return tw.Flush()
}

// resyncReport is what mailbox resync did.
type resyncReport struct {
	User    string         `json:"user"`
	Folders []folderStatus `json:"folders"`
	Quota   *quotaUsage    `json:"quota,omitempty"`
}

func mailboxResync(c *cli.Context, e *env, user, _ string) error {
	rep := resyncReport{User: user}
	qb, qm := e.quotaFor(user)
	err := withUserStore(e, user, mailstore.Options{QuotaBytes: qb, QuotaMessages: qm}, func(st *mailstore.Store) error {
		fs, err := st.Folders()
		if err != nil {
			return err
		}
		for _, fi := range fs {
			f, err := st.Folder(fi.Name)
			if err != nil {
				return fmt.Errorf("%s: folder %q: %w", user, fi.Name, err)
			}
			// This process has nothing cached: cur/ and new/ are read in
			// full and compared with dovecot-uidlist.
			if _, err := f.Refresh(c.Context); err != nil {
				return fmt.Errorf("%s: folder %q: %w", user, fi.Name, err)
			}
			s, err := statusOf(c.Context, st, fi.Name)
			if err != nil {
				return fmt.Errorf("%s: folder %q: %w", user, fi.Name, err)
			}
			rep.Folders = append(rep.Folders, s)
		}
		q, err := recalcQuota(st, qb, qm)
		rep.Quota = q
		return err
	})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
	for _, s := range rep.Folders {
		fmt.Fprintf(c.App.Writer, "%s: %s: %d messages, UIDNEXT %d\n", user, s.Name, s.Messages, s.UIDNext)
	}
	if rep.Quota != nil && rep.Quota.MaildirSize {
		fmt.Fprintf(c.App.Writer, "%s: maildirsize rebuilt: %d bytes in %d messages\n", user, rep.Quota.Bytes, rep.Quota.Messages)
	}
	return nil
}
