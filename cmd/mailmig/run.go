package main

import (
	"context"
	"fmt"
	"log/slog"
	"mailmig/cmd/mailmig/config"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"mailmig/migrate"
	"mailmig/migrate/copier"
	"mailmig/migrate/filters"
	"mailmig/notify"
	"mailmig/server/msgspool"
	"mailmig/server/sieve"
	"mailmig/state"
)

// clockOffsetEnv shifts mailmig's clock (a Go duration, e.g. "49h") for
// the demo and the tests, so the dual window can end without waiting.
const clockOffsetEnv = "MAILMIG_CLOCK_OFFSET"

// applyClock sets the database clock from MAILMIG_CLOCK_OFFSET; loadBase
// calls it, so every command shares the shifted clock.
func applyClock(e *env) error {
	s := os.Getenv(clockOffsetEnv)
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%s: %w", clockOffsetEnv, err)
	}
	e.db.Now = func() time.Time { return time.Now().Add(d) }
	return nil
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "work the migration queue",
		Description: `Moves every queued user through dual delivery, copy, confirmation and
cutover. With --once one pass is made (each user goes as far as it can
without waiting for a reply or the clock) and mailmig exits; otherwise it
keeps passing over the queue every --poll interval until interrupted.

Progress shows as bars on a terminal and as log lines otherwise. A run
killed at any point resumes where it was when started again.

A user in needs-attention (see 'mailmig status') stays there until
'mailmig run --retry USER' sends it back to the step that failed.

Examples:
   mailmig run --once
   mailmig run --workers 4
   mailmig run --once --retry alice`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "once", Usage: "one pass over the queue, then exit"},
			&cli.IntFlag{Name: "workers", Usage: "users worked on at once (default migration.workers)"},
			&cli.DurationFlag{Name: "poll", Value: 30 * time.Second, Usage: "time between passes of the daemon"},
			&cli.StringSliceFlag{Name: "retry", Usage: "move `USER` out of needs-attention back to the step that failed, then run (repeatable)"},
			&cli.BoolFlag{Name: "no-progress", Usage: "log lines instead of progress bars even on a terminal"},
			&cli.BoolFlag{Name: "notify-old", Value: true, Usage: "also put the confirmation into the old INBOX (users still on the old server see it)"},
			&cli.DurationFlag{Name: "lease-ttl", Value: 2 * time.Minute, Hidden: true},
			&cli.BoolFlag{Name: "no-fsync", Hidden: true, Usage: "benchmarks only"},
		},
		Action: func(c *cli.Context) error {
			e, err := loadEnv(c)
			if err != nil {
				return err
			}
			defer e.Close()
			r, err := newRunner(e, c.Bool("no-fsync"))
			if err != nil {
				return err
			}
			r.LeaseTTL = c.Duration("lease-ttl")
			if c.Bool("notify-old") {
				r.Notifier.OldCopy = oldInboxCopy(e)
			}
			workers := c.Int("workers")
			if workers <= 0 {
				workers = e.cfg.Migration.Workers
			}
			var bars *barReporter
			if !c.Bool("no-progress") && term.IsTerminal(int(os.Stderr.Fd())) {
				bars = newBarReporter(os.Stderr, workers)
				if list, err := e.db.List(c.Context); err == nil && c.Bool("once") {
					for _, ent := range list {
						switch ent.State {
						case state.Queued, state.Dual, state.Copying:
							bars.users++
						}
					}
				}
				r.Progress = bars
				// Only warnings between the bars.
				defer bars.Close()
				quiet := slog.New(slog.NewTextHandler(bars, &slog.HandlerOptions{Level: slog.LevelWarn}))
				r.Logger = quiet
				if cp, ok := r.Copier.(*copier.Convert); ok {
					cp.Logger = quiet
				}
			} else {
				r.Progress = &logReporter{log: e.log}
			}
			for _, u := range c.StringSlice("retry") {
				to, err := r.Retry(c.Context, u, "postmaster")
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "%s: retrying from %s\n", u, to)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			if c.Bool("once") {
				pass, err := r.RunOnce(ctx, workers)
				if bars != nil {
					bars.Close() // before the summary line
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "pass: %d users worked, %d done, %d waiting for a reply or the clock, %d failed\n",
					pass.Worked, pass.Done, pass.Waiting, pass.Failed)
				if len(pass.Errors) > 0 {
					var msgs []string
					for _, err := range pass.Errors {
						msgs = append(msgs, err.Error())
					}
					return withExit(1, fmt.Errorf("run: %s", strings.Join(msgs, "; ")))
				}
				return nil
			}
			e.log.Info("runner started", "workers", workers, "poll", c.Duration("poll"))
			return r.Run(ctx, workers, c.Duration("poll"))
		},
	}
}

// newRunner builds the queue runner from the environment.
func newRunner(e *env, noFsync bool) (*migrate.Runner, error) {
	cfg := e.cfg
	secret, err := e.controlSecret(context.Background())
	if err != nil {
		return nil, err
	}
	mailer := &notify.Mailer{TemplatesDir: cfg.Migration.TemplatesDir, Hostname: cfg.Server.Hostname, Now: e.db.Now}
	domain := cfg.Server.Domains[0]
	pm := cfg.Migration.Postmaster
	if !strings.Contains(pm, "@") {
		pm += "@" + domain
	}
	mailer.From = "Postmaster <" + pm + ">"
	if err := mailer.Check(); err != nil {
		return nil, err
	}
	log := e.log.With("component", "runner")
	// The migration's own mails reach the user whatever their quota (a
	// user the copy took over quota must still learn they moved, and
	// how to make room); maildirsize still counts them.
	system, err := newDeliverer(e)
	if err != nil {
		return nil, err
	}
	system.QuotaFor = nil
	n := &migrate.Notifier{
		DB: e.db, Mailer: mailer,
		Deliver: func(ctx context.Context, user string, msg []byte) error {
			_, err := system.Deliver(ctx, deliveryEnvelope(pm, user, domain), msgspool.Bytes(msg))
			return err
		},
		Client: notify.Client{
			IMAPHost: cfg.Client.IMAPHost, IMAPPort: cfg.Client.IMAPPort, IMAPSPort: cfg.Client.IMAPSPort,
			SubmissionHost: cfg.Client.SubmissionHost, SubmissionPort: cfg.Client.SubmissionPort,
			SubmissionsPort: cfg.Client.SubmissionsPort, ManageSievePort: cfg.Client.ManageSievePort,
			SetupURL: setupURL(cfg),
		},
		Domain: domain, ControlLocalPart: cfg.Migration.ControlLocalPart, Secret: secret,
		Postmaster: pm, Language: cfg.Migration.Language,
		Present:        inboxHasMessageID(e.maildirFor),
		PasswordSource: passwordSourceOf(e),
		SpamFolder:     spamFolderOf(e),
	}
	return &migrate.Runner{
		DB: e.db,
		Copier: &copier.Convert{
			MaxFolderBytes: int64(cfg.Limits.FolderCopy), Charset: cfg.Old.FolderCharset,
			Hostname: cfg.Server.Hostname, NoFsync: noFsync, Logger: log,
		},
		Paths:      cfg.PathsFor,
		Notifier:   n,
		DualWindow: cfg.Migration.DualWindow.D(),
		Now:        e.db.Now,
		Logger:     log,
		LoginCheck: loginCheck(e),
		QuotaCheck: func(ctx context.Context, user string) (bool, string, error) {
			return overQuota(e, user)
		},
		OverQuotaWarn: cfg.Migration.OverQuota == "warn",
		Filters: &filters.Installer{
			Domain: domain, ProcmailAlways: cfg.Migration.ProcmailAlways, GlobalInclude: sieve.GlobalSpam,
			GlobalDir: cfg.Sieve.GlobalDir, MaxScriptSize: int64(cfg.Sieve.MaxScriptSize), Now: e.db.Now,
		},
	}, nil
}

// setupURL is the web page's set-up address, when the page is served.
func setupURL(cfg *config.Config) string {
	if len(cfg.Web.Listeners) == 0 {
		return ""
	}
	return "https://" + cfg.WebHost() + "/setup"
}
