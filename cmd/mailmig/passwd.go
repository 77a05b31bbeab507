package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"mailmig/server/auth"
	"mailmig/state"
)

// passwdCommand: a local user changes their own password in mailmig's
// accounts (issue 10 item 4). Users whose password comes from the crypt
// or kerberos source are told to change it where they always did.
func passwdCommand() *cli.Command {
	return &cli.Command{
		Name:  "passwd",
		Usage: "change your own mail password (users of the accounts password source)",
		Description: `Changes the mail password of the user running it (the real user ID; no
user name is taken from the command line). Asks for the current password
and the new one twice on a terminal, or reads three lines (current, new,
new) from standard input. The new password needs 8 characters or more.

Installed setgid to the group that may write the state database, it
ignores --config, --data and MAILMIG_CONFIG and reads only the default
configuration, as passwd(1) does.

Users whose password is their system (shadow) or Kerberos password change
it where they always did (passwd, kpasswd); the command says so.

Example:
   mailmig passwd`,
		Action: runPasswd,
	}
}

func runPasswd(c *cli.Context) error {
	u, err := user.LookupId(fmt.Sprint(os.Getuid()))
	if err != nil {
		return fmt.Errorf("passwd: who are you? %w", err)
	}
	name := u.Username
	if os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid() {
		// Privileged: never let the caller choose the configuration.
		if c.IsSet("config") || c.IsSet("data") || os.Getenv("MAILMIG_CONFIG") != "" {
			return errors.New("passwd: --config, --data and MAILMIG_CONFIG are not allowed when installed setgid")
		}
	}
	e, err := loadBase(c)
	if err != nil {
		return fmt.Errorf("passwd: %w (is mailmig installed setgid to the group of the state database?)", err)
	}
	defer e.Close()
	chain, err := newPasswordChain(e)
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	st, err := chain.Status(c.Context, name)
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	switch st.Source {
	case "accounts":
	case "crypt":
		return cli.Exit(fmt.Sprintf("passwd: %s: your mail password is your usual login password; change it where you always did (passwd)", name), 1)
	case "kerberos":
		return cli.Exit(fmt.Sprintf("passwd: %s: your mail password is your Kerberos password; change it with kpasswd", name), 1)
	default:
		return cli.Exit(fmt.Sprintf("passwd: %s has no mail account (%s)", name, st.Reason), 1)
	}

	in := passwordReader(c)
	old, err := in("Current mail password for " + name)
	if err != nil {
		return err
	}
	if err := (auth.AccountsSource{DB: e.db}).Verify(c.Context, name, old); err != nil {
		time.Sleep(2 * time.Second) // as passwd(1): slow down guessing
		if errors.Is(err, state.ErrBadPassword) || errors.Is(err, auth.ErrLocked) {
			return cli.Exit("passwd: the current password is wrong; nothing changed", 1)
		}
		return fmt.Errorf("passwd: %w", err)
	}
	nw, err := in("New password")
	if err != nil {
		return err
	}
	again, err := in("Again")
	if err != nil {
		return err
	}
	switch {
	case nw != again:
		return cli.Exit("passwd: the two new passwords differ; nothing changed", 1)
	case len(nw) < 8:
		return cli.Exit("passwd: the new password must have 8 characters or more; nothing changed", 1)
	case nw == old:
		return cli.Exit("passwd: the new password is the current one; nothing changed", 1)
	}
	if err := e.db.SetPassword(c.Context, name, nw); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	e.log.Info("password changed", "user", name, "by", "mailmig passwd")
	fmt.Fprintf(c.App.Writer, "%s: mail password changed; use the new one in your mail programs too\n", name)
	return nil
}

// passwordReader asks on the terminal, or reads successive lines of
// standard input.
func passwordReader(c *cli.Context) func(prompt string) (string, error) {
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		return func(prompt string) (string, error) {
			fmt.Fprint(os.Stderr, prompt+": ")
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(os.Stderr)
			return string(b), err
		}
	}
	br := bufio.NewReader(os.Stdin)
	return func(prompt string) (string, error) {
		line, err := br.ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("passwd: %s: no line on standard input", strings.ToLower(prompt))
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
}
