package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"mailmig/cmd/mailmig/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// newApp builds the command tree explicitly: every subcommand is a
// function in its own file.
func newApp() *cli.App {
	return &cli.App{
		Name:    "mailmig",
		Usage:   "move UW-IMAP mbox users to Maildir++ and serve them",
		Version: version,
		Description: `mailmig moves every user of a UW-IMAP site (INBOX spools in /var/mail,
folders in ~/mail) to dovecot-compatible Maildir++ without losing a message,
flag or UID, and serves the new store over IMAP, submission, LMTP with Sieve
and ManageSieve.

The postmaster runs 'mailmig enqueue' and 'mailmig run'; users get a
confirmation mail and reply to it to stop delivery to the old mbox;
'mailmig serve' is the daemon.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: config.DefaultPath, Usage: "configuration `FILE` (absent default file = built-in defaults)", EnvVars: []string{"MAILMIG_CONFIG"}},
			&cli.StringFlag{Name: "data", Usage: "keep database, stores and old world under `DIR`, listeners on loopback (demos, tests)", EnvVars: []string{"MAILMIG_DATA"}},
			&cli.StringFlag{Name: "log-level", Usage: "override server.log_level (debug, info, warn, error)"},
		},
		Commands: []*cli.Command{
			enqueueCommand(),
			runCommand(),
			statusCommand(),
			eventsCommand(),
			stopCommand(),
			convertCommand(),
			deliverCommand(),
			serveCommand(),
			userCommand(),
			passwdCommand(),
			quotaCommand(),
			configCommand(),
			aliasCommand(),
			tlsCommand(),
			gendocCommand(),
			whoCommand(),
			kickCommand(),
			mailboxCommand(),
			queueCommand(),
			filtersCommand(),
		},
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // main prints and exits
	}
}

// exitError carries a specific exit status (sysexits for deliver).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExit wraps err so that mailmig exits with code.
func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ce cli.ExitCoder
	if errors.As(err, &ce) && ce.ExitCode() != 0 {
		return ce.ExitCode()
	}
	return 1
}
