// Command mailmig moves users from UW-IMAP mbox spools to dovecot-style
// Maildir++ without losing a message, a flag or a UID, and serves the
// result over IMAP, submission, LMTP with Sieve and ManageSieve.
//
// Each subcommand lives in its own file; app.go lists them.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "mailmig:", err)
		os.Exit(exitCode(err))
	}
}
