package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"mailmig/mailstore"
)

// quotaCommand is `mailmig quota USER`: the user's usage against the
// limit, in KB as the old check_inbox printed it, then per folder.
func quotaCommand() *cli.Command {
	return &cli.Command{
		Name:      "quota",
		Usage:     "show a user's quota usage (KB used, limit, percent, per folder)",
		ArgsUsage: "[USER]",
		// recalc is the only subcommand; any other word is a USER.
		Subcommands: []*cli.Command{quotaRecalcCommand()},
		Description: `Prints the user's storage against the quota (the account's override, else
limits.quota) the way the old check_inbox did: KB used, KB limit, percent,
message count, then one line per folder.

Without USER, any user gets their own report (the user name of their
uid) from the running server over the control socket, without access to
the store or the state database (see docs/deploying.md).

Examples:
   mailmig quota
   mailmig quota alice
   mailmig --config /etc/mailmig/mailmig.toml quota bob`,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return ownQuota(c)
			}
			if c.NArg() != 1 {
				return cli.Exit("usage: mailmig quota [USER]", 2)
			}
			e, err := loadBase(c)
			if err != nil {
				return err
			}
			defer e.Close()
			return printQuota(c.App.Writer, e, c.Args().First())
		},
	}
}

// printQuota writes the report for user.
func printQuota(w io.Writer, e *env, user string) error {
	if _, err := e.db.Account(context.Background(), user); err != nil {
		return fmt.Errorf("quota %s: %w", user, err)
	}
	root, err := e.maildirFor(user)
	if err != nil {
		return fmt.Errorf("quota %s: %w", user, err)
	}
	limitBytes, limitMsgs := e.quotaFor(user)
	var used, msgs int64
	var folders []mailstore.FolderUsage
	if _, err := os.Stat(root); err == nil {
		st, err := mailstore.Open(root, mailstore.Options{Logger: e.log})
		if err != nil {
			return fmt.Errorf("quota %s: %w", user, err)
		}
		defer st.Close()
		if folders, err = st.FolderUsages(); err != nil {
			return fmt.Errorf("quota %s: folder sizes in %s: %w", user, root, err)
		}
		// Sum the scan rather than trusting maildirsize, which may be
		// stale; the scan is what the folders hold now.
		for _, f := range folders {
			used += f.Bytes
			msgs += f.Messages
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("quota %s: %w", user, err)
	}
	fmt.Fprintf(w, "%s: %d KB used", user, kb(used))
	if limitBytes > 0 {
		fmt.Fprintf(w, " of %d KB (%.1f%%)", kb(limitBytes), 100*float64(used)/float64(limitBytes))
	} else {
		fmt.Fprint(w, " (no limit)")
	}
	fmt.Fprintf(w, ", %d messages", msgs)
	if limitMsgs > 0 {
		fmt.Fprintf(w, " of %d (%.1f%%)", limitMsgs, 100*float64(msgs)/float64(limitMsgs))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KB\tmessages\t\tfolder")
	for _, f := range folders {
		fmt.Fprintf(tw, "%d\t%d\t\t%s\n", kb(f.Bytes), f.Messages, f.Name)
	}
	return tw.Flush()
}

// kb rounds bytes up to kilobytes (1024), as du and check_inbox did.
func kb(n int64) int64 { return (n + 1023) / 1024 }

// overQuota reports whether user's new store holds more than their quota
// (the runner asks after the copy; issue 9 item 7).
func overQuota(e *env, user string) (bool, string, error) {
	limitBytes, limitMsgs := e.quotaFor(user)
	if limitBytes <= 0 && limitMsgs <= 0 {
		return false, "", nil
	}
	root, err := e.maildirFor(user)
	if err != nil {
		return false, "", err
	}
	st, err := mailstore.Open(root, mailstore.Options{Logger: e.log, QuotaBytes: limitBytes, QuotaMessages: limitMsgs})
	if err != nil {
		return false, "", err
	}
	defer st.Close()
	used, msgs, err := st.Usage()
	if err != nil {
		return false, "", err
	}
	switch {
	case limitBytes > 0 && used > limitBytes:
		return true, fmt.Sprintf("%d KB used of %d KB (%d%%)", used/1024, limitBytes/1024, used*100/limitBytes), nil
	case limitMsgs > 0 && msgs > limitMsgs:
		return true, fmt.Sprintf("%d messages of %d", msgs, limitMsgs), nil
	}
	return false, "", nil
}

// spamFolderOf tells the confirmation mail where the site's spam rule
// files a user's spam: the site's spam folder resolved against the
// user's folders (an existing Junk or Spam of theirs; issue 9 item 9).
func spamFolderOf(e *env) func(user string) string {
	return func(user string) string {
		root, err := e.maildirFor(user)
		if err != nil {
			return ""
		}
		st, err := mailstore.Open(root, mailstore.Options{Logger: e.log})
		if err != nil {
			return ""
		}
		defer st.Close()
		return mailstore.ResolveFolder(st, e.cfg.Sieve.SpamFolder, e.cfg.Sieve.SpamFolder)
	}
}
