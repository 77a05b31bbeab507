package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"mailmig/cmd/mailmig/config"
	"mailmig/migrate/convert"
)

// Exit statuses of mailmig convert besides 0 and 1.
const (
	exitConvertPartial = 2 // some source files were not mbox / unreadable
	exitConvertTooBig  = 3 // folders over --max-size; INBOX copied
	exitConvertVerify  = 4 // the new store does not match the source
)

// convertCommand converts one user's mbox tree to Maildir++ (the same
// code the queue runner uses).
func convertCommand() *cli.Command {
	return &cli.Command{
		Name:  "convert",
		Usage: "convert one user's UW-IMAP mbox INBOX and folders to Maildir++",
		Description: `Paths come from the configuration's templates with --user, or are given
explicitly with --inbox/--folders/--subscriptions/--out. Sources are only
read. Running it again after an interruption completes the copy without
duplicates; every message is verified after the copy.

Exit status: 0 done, 1 error, 2 some files were not converted: files or
directories that could not be read (permissions, a FIFO or device as INBOX;
"NOT READ" lines) or that are not mbox (see the report), 3 folders over
--max-size (INBOX copied), 4 verification failed. Run it as a user that can
read the user's spool and home (root, or the mailmig user with
CAP_DAC_READ_SEARCH, see docs/deploying.md).

Examples:
   mailmig convert --user alice --report alice.json
   mailmig convert --user alice --dry-run
   mailmig convert --inbox /var/mail/bob --folders /home/bob/mail \
       --subscriptions /home/bob/.mailboxlist --out /srv/mail/bob/Maildir`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "take the paths for `NAME` from the configuration"},
			&cli.StringFlag{Name: "inbox", Usage: "INBOX spool mbox `FILE`"},
			&cli.StringFlag{Name: "folders", Usage: "`DIR` of mbox folders (~/mail)"},
			&cli.StringFlag{Name: "subscriptions", Usage: "c-client subscription list `FILE` (~/.mailboxlist)"},
			&cli.StringFlag{Name: "out", Aliases: []string{"maildir"}, Usage: "new Maildir++ `DIR`"},
			&cli.StringFlag{Name: "max-size", Usage: "limit for the folders' total `SIZE` (INBOX is always copied; 0 = none; default limits.folder_copy)"},
			&cli.StringFlag{Name: "report", Usage: "write the JSON report to `FILE`"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "plan and measure only, write nothing"},
			&cli.BoolFlag{Name: "incremental", Usage: "add only messages not yet in the new store (cutover)"},
			&cli.BoolFlag{Name: "prepare", Usage: "only create the new INBOX with the old UIDVALIDITY and UIDNEXT (before dual delivery)"},
			&cli.StringFlag{Name: "charset", Usage: "charset of folder names that are not UTF-8 (default old.folder_charset)"},
			&cli.StringFlag{Name: "timezone", Usage: "zone of From_ line dates without one (default: local time)"},
			&cli.BoolFlag{Name: "unescape-from", Usage: "undo mboxrd >From quoting (UW-IMAP served it as stored: off)"},
			&cli.BoolFlag{Name: "no-fsync", Usage: "do not fsync (tests and benchmarks only)", Hidden: true},
			&cli.BoolFlag{Name: "no-verify", Usage: "skip the verification pass (benchmarks only)", Hidden: true},
			&cli.BoolFlag{Name: "no-inbox-lock", Usage: "read the INBOX without the spool lock (read-only copies)", Hidden: true},
			&cli.IntFlag{Name: "workers", Usage: "folders converted at a time", Value: convert.DefaultWorkers},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors"},
		},
		Action: runConvert,
	}
}

func runConvert(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	level := cfg.Server.LogLevel
	if c.Bool("quiet") && !c.IsSet("log-level") {
		level = "warn"
	}
	log := newLogger(level, cfg.Server.LogFormat)
	o := convert.Options{
		Inbox:         c.String("inbox"),
		FoldersDir:    c.String("folders"),
		Subscriptions: c.String("subscriptions"),
		Maildir:       c.String("out"),
		Charset:       cfg.Old.FolderCharset,
		DryRun:        c.Bool("dry-run"),
		Incremental:   c.Bool("incremental"),
		UnescapeFrom:  c.Bool("unescape-from"),
		NoFsync:       c.Bool("no-fsync"),
		NoVerify:      c.Bool("no-verify"),
		NoInboxLock:   c.Bool("no-inbox-lock"),
		Workers:       c.Int("workers"),
		Logger:        log,
	}
	if user := c.String("user"); user != "" {
		if o.Inbox != "" || o.FoldersDir != "" || o.Subscriptions != "" {
			return errors.New("convert: --user and --inbox/--folders/--subscriptions exclude each other")
		}
		p, err := cfg.PathsFor(user)
		if err != nil {
			return fmt.Errorf("convert: %w", err)
		}
		o.Inbox, o.FoldersDir, o.Subscriptions = p.Inbox, p.Folders, p.Subscriptions
		if o.Maildir == "" {
			o.Maildir = p.Maildir
		}
	} else if o.Inbox == "" && o.FoldersDir == "" {
		return errors.New("convert: give --user NAME, or --inbox FILE and/or --folders DIR with --out MAILDIR")
	}
	if o.Maildir == "" {
		return errors.New("convert: no --out MAILDIR")
	}
	o.MaxFolderBytes = int64(cfg.Limits.FolderCopy)
	if s := c.String("max-size"); s != "" {
		n, err := config.ParseSize(s)
		if err != nil {
			return fmt.Errorf("convert: --max-size: %w", err)
		}
		o.MaxFolderBytes = n
	}
	if s := c.String("charset"); s != "" {
		o.Charset = s
	}
	if tz := c.String("timezone"); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return fmt.Errorf("convert: --timezone: %w", err)
		}
		o.Location = loc
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := c.App.Writer
	if c.Bool("quiet") {
		out = io.Discard
	}
	if c.Bool("prepare") {
		p, err := convert.Prepare(ctx, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "INBOX prepared: UIDVALIDITY %d, UIDNEXT %d (%d messages in the old INBOX)\n", p.UIDValidity, p.UIDNext, p.Messages)
		return nil
	}
	if !c.Bool("quiet") && !o.DryRun && term.IsTerminal(int(os.Stderr.Fd())) {
		bar, done := convertProgress()
		o.Progress = bar
		defer done()
	}
	rep, runErr := convert.Run(ctx, o)
	if rep != nil {
		printReport(out, rep)
		// With --user, the user's filters as the move converts them.
		fres := userFilters(c, cfg, rep)
		if path := c.String("report"); path != "" {
			if err := writeJSONFile(path, reportWithFilters{rep, fres}); err != nil {
				return err
			}
		}
	}
	switch {
	case runErr == nil:
		return nil
	case errors.Is(runErr, convert.ErrVerify):
		return withExit(exitConvertVerify, runErr)
	case errors.Is(runErr, convert.ErrTooBig):
		return withExit(exitConvertTooBig, runErr)
	case errors.Is(runErr, convert.ErrUnreadable), errors.Is(runErr, convert.ErrPartial):
		return withExit(exitConvertPartial, runErr)
	}
	return runErr
}

// convertProgress returns a Progress callback drawing a byte progress bar
// on standard error, and a function that finishes it.
func convertProgress() (func(convert.Progress), func()) {
	var bar *progressbar.ProgressBar
	perFolder := map[string]int64{}
	var sum int64
	update := func(p convert.Progress) {
		if bar == nil {
			bar = progressbar.NewOptions64(p.TotalBytes, progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionShowBytes(true), progressbar.OptionSetDescription("converting"),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		sum += p.Bytes - perFolder[p.Folder]
		perFolder[p.Folder] = p.Bytes
		bar.Set64(sum)
	}
	return update, func() {
		if bar != nil {
			bar.Finish()
		}
	}
}

// writeJSONFile writes v as indented JSON, atomically.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return fmt.Errorf("convert: report %s: %w", path, err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("convert: report %s: %w", path, err)
	}
	return nil
}

// printReport prints the human summary.
func printReport(w io.Writer, rep *convert.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if rep.DryRun {
		fmt.Fprintln(tw, "FOLDER\tNEW NAME\tSOURCE BYTES")
		for _, f := range rep.Folders {
			fmt.Fprintf(tw, "%q\t%q\t%d\n", f.OldName, f.Name, f.SourceBytes)
		}
	} else {
		fmt.Fprintln(tw, "FOLDER\tNEW NAME\tMESSAGES\tBYTES\tCOPIED\tALREADY\tKEPT ONCE\tUIDVALIDITY\tSTATUS")
		for _, f := range rep.Folders {
			status := "ok"
			switch {
			case f.Error != "":
				status = "FAILED: " + f.Error
			case !f.Verified && !rep.DryRun:
				status = "not verified"
			}
			fmt.Fprintf(tw, "%q\t%q\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", f.OldName, f.Name, f.Messages, f.Bytes, f.Copied, f.AlreadyPresent, f.KeptOnce, f.UIDValidity, status)
		}
	}
	tw.Flush()
	for _, r := range rep.Renamings {
		fmt.Fprintf(w, "renamed: %q -> %q (%s)\n", r.Old, r.New, r.Reason)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped: %s: %s\n", s.Path, s.Reason)
	}
	for _, s := range rep.Unreadable {
		fmt.Fprintf(w, "NOT READ (may hold mail): %s: %s\n", s.Path, s.Reason)
	}
	fmt.Fprintf(w, "INBOX %d bytes, folders %d bytes", rep.InboxBytes, rep.FolderBytes)
	if rep.MaxFolderBytes > 0 {
		fmt.Fprintf(w, " (limit %d)", rep.MaxFolderBytes)
	}
	if !rep.DryRun {
		fmt.Fprintf(w, "; %d messages, %d bytes in the new store; verified: %v", rep.Messages, rep.Bytes, rep.Verified)
	}
	fmt.Fprintln(w)
}
