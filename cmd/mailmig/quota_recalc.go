package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"mailmig/mailstore"
)

// quotaRecalcCommand is `mailmig quota recalc USER` (doveadm quota
// recalc): maildirsize rebuilt from the message files.
func quotaRecalcCommand() *cli.Command {
	return &cli.Command{
		Name:      "recalc",
		Usage:     "rebuild a user's maildirsize from the message files",
		ArgsUsage: "USER",
		Description: `Counts every message file of the user's Maildir and rewrites maildirsize
(the Maildir++ quota file dovecot and mailmig keep up to date on every
delivery) under its lock, with the user's current limits in its header.
Without a quota (limits.quota = 0 and no override) there is no
maildirsize to keep; the usage is printed all the same.

Examples:
   mailmig quota recalc alice
   mailmig quota recalc --json alice`,
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return withExit(64, errors.New("usage: mailmig quota recalc USER"))
			}
			e, err := loadBase(c)
			if err != nil {
				return err
			}
			defer e.Close()
			user := c.Args().First()
			qb, qm := e.quotaFor(user)
			var q *quotaUsage
			err = withUserStore(e, user, mailstore.Options{QuotaBytes: qb, QuotaMessages: qm}, func(st *mailstore.Store) error {
				var err error
				q, err = recalcQuota(st, qb, qm)
				return err
			})
			if err != nil {
				return err
			}
			q.User = user
			if c.Bool("json") {
				return printJSON(c.App.Writer, q)
			}
			if q.MaildirSize {
				fmt.Fprintf(c.App.Writer, "%s: maildirsize rebuilt: %d bytes in %d messages\n", user, q.Bytes, q.Messages)
			} else {
				fmt.Fprintf(c.App.Writer, "%s: no quota, no maildirsize kept: %d bytes in %d messages\n", user, q.Bytes, q.Messages)
			}
			return nil
		},
	}
}

// quotaUsage is the result of a recalculation.
type quotaUsage struct {
	User          string `json:"user,omitempty"`
	Bytes         int64  `json:"bytes"`
	Messages      int64  `json:"messages"`
	LimitBytes    int64  `json:"limit_bytes"`
	LimitMessages int64  `json:"limit_messages"`
	// MaildirSize tells whether maildirsize was written (a quota applies).
	MaildirSize bool `json:"maildirsize"`
}

// recalcQuota rewrites maildirsize (when a quota applies) and returns the
// usage the files show.
func recalcQuota(st *mailstore.Store, limitBytes, limitMsgs int64) (*quotaUsage, error) {
	q := &quotaUsage{LimitBytes: limitBytes, LimitMessages: limitMsgs, MaildirSize: limitBytes > 0 || limitMsgs > 0}
	if err := st.RecalcQuota(); err != nil {
		return q, err
	}
	fs, err := st.FolderUsages()
	if err != nil {
		return q, err
	}
	for _, f := range fs {
		q.Bytes += f.Bytes
		q.Messages += f.Messages
	}
	return q, nil
}
