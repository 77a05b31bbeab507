package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"mailmig/cmd/mailmig/config"
	"mailmig/server/auth/pwfile"
	"mailmig/server/auth/pwhash"
	"mailmig/state"
)

func userCommand() *cli.Command {
	quotaFlags := []cli.Flag{
		&cli.StringFlag{Name: "quota", Usage: "storage quota `SIZE` (e.g. 2GB; 0 = none; default: limits.quota)"},
		&cli.Int64Flag{Name: "quota-messages", Value: -1, Usage: "message-count quota (0 = none; default: limits.quota_messages)"},
	}
	return &cli.Command{
		Name:  "user",
		Usage: "manage server accounts (passwords are read from a prompt or stdin, never argv)",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "create an account",
				ArgsUsage: "USER",
				Description: `Creates a server account. The password is asked twice on a terminal, or
read as the first line of standard input.

Examples:
   mailmig user add alice
   printf 'secret\n' | mailmig user add --quota 2GB bob`,
				Flags: quotaFlags,
				Action: accountAction(func(c *cli.Context, e *env, user string) error {
					qb, qm, err := quotaArgs(c)
					if err != nil {
						return err
					}
					pw, err := readPassword(c, "Password for "+user)
					if err != nil {
						return err
					}
					if err := e.db.AddAccount(c.Context, user, pw, qb, qm); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: account created\n", user)
					return nil
				}),
			},
			{
				Name:      "passwd",
				Usage:     "change an account's password",
				ArgsUsage: "USER",
				Description: `Examples:
   mailmig user passwd alice
   printf 'new secret\n' | mailmig user passwd alice`,
				Action: accountAction(func(c *cli.Context, e *env, user string) error {
					pw, err := readPassword(c, "New password for "+user)
					if err != nil {
						return err
					}
					if err := e.db.SetPassword(c.Context, user, pw); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: password changed\n", user)
					return nil
				}),
			},
			{
				Name:      "quota",
				Usage:     "change an account's quota override",
				ArgsUsage: "USER",
				Description: `Examples:
   mailmig user quota --quota 2GB alice
   mailmig user quota --quota default alice`,
				Flags: quotaFlags,
				Action: accountAction(func(c *cli.Context, e *env, user string) error {
					qb, qm, err := quotaArgs(c)
					if err != nil {
						return err
					}
					return e.db.SetQuota(c.Context, user, qb, qm)
				}),
			},
			{
				Name:      "del",
				Usage:     "delete an account (its mail stays on disk)",
				ArgsUsage: "USER",
				Description: `Example:
   mailmig user del alice`,
				Action: accountAction(func(c *cli.Context, e *env, user string) error {
					if err := e.db.DeleteAccount(c.Context, user); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: account deleted; mail kept in %s\n", user, mustMaildir(e, user))
					return nil
				}),
			},
			{
				Name:  "list",
				Usage: "list accounts",
				Description: `Example:
   mailmig user list`,
				Action: func(c *cli.Context) error {
					e, err := loadBase(c)
					if err != nil {
						return err
					}
					defer e.Close()
					accts, err := e.db.Accounts(c.Context)
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "USER\tQUOTA\tMESSAGES")
					for _, a := range accts {
						q, m := "default ("+config.Size(e.cfg.Limits.Quota).String()+")", "default"
						if a.QuotaBytes == 0 {
							q = "none"
						} else if a.QuotaBytes > 0 {
							q = config.Size(a.QuotaBytes).String()
						}
						if a.QuotaMessages >= 0 {
							m = fmt.Sprint(a.QuotaMessages)
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\n", a.User, q, m)
					}
					return tw.Flush()
				},
			},
			userImportCommand(),
			{
				Name:      "lock",
				Usage:     "lock an account (its password stops working; mail is still delivered)",
				ArgsUsage: "USER",
				Description: `Example:
   mailmig user lock alice`,
				Action: accountAction(func(c *cli.Context, e *env, user string) error {
					if err := e.db.LockAccount(c.Context, user, true); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: account locked\n", user)
					return nil
				}),
			},
			{
				Name:      "unlock",
				Usage:     "unlock a locked account",
				ArgsUsage: "USER",
				Description: `Example:
   mailmig user unlock alice`,
				Action: accountAction(func(c *cli.Context, e *env, user string) error {
					if err := e.db.LockAccount(c.Context, user, false); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: account unlocked\n", user)
					return nil
				}),
			},
		},
	}
}

func userImportCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "copy crypt(3) password hashes from a shadow file or passwd-file into accounts",
		ArgsUsage: "[USER...]",
		Description: `Creates an account for each user of FILE (or only the USERs named) with the
hash as it is: md5-crypt, sha256/sha512-crypt, bcrypt or yescrypt. On the
user's first login the password is stored again as argon2id ([auth] rehash).
Users who already have an account are left as they are; locked, empty and
unsupported hashes are not imported. Each user not imported is listed with
the reason; lines that cannot be read are listed with file, line and byte
offset, and make the command exit non-zero.

Examples:
   mailmig user import --from-shadow /etc/shadow
   mailmig user import --from-shadow /etc/dovecot/users --format passwd-file alice bob`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from-shadow", Required: true, Usage: "read hashes from `FILE`"},
			&cli.StringFlag{Name: "format", Value: "shadow", Usage: "FILE's format: shadow or passwd-file"},
		},
		Action: func(c *cli.Context) error {
			e, err := loadBase(c)
			if err != nil {
				return err
			}
			defer e.Close()
			name := c.String("from-shadow")
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			entries, bad, err := pwfile.Parse(f, name, pwfile.Format(c.String("format")))
			if err != nil {
				return err
			}
			out, failed := c.App.Writer, len(bad) > 0
			for _, b := range bad {
				fmt.Fprintf(c.App.ErrWriter, "not read: %v\n", b)
			}
			users := c.Args().Slice()
			if len(users) == 0 {
				for u := range entries {
					users = append(users, u)
				}
				sort.Strings(users)
			}
			imported := 0
			for _, u := range users {
				ent, ok := entries[u]
				switch {
				case !ok:
					fmt.Fprintf(out, "%s: not in %s\n", u, name)
					failed = true
					continue
				case pwhash.Locked(ent.Hash):
					fmt.Fprintf(out, "%s: locked or no password (line %d), not imported\n", u, ent.Line)
					continue
				case pwhash.Scheme(ent.Hash) == "":
					fmt.Fprintf(out, "%s: unsupported hash scheme (line %d), not imported\n", u, ent.Line)
					continue
				}
				err := e.db.AddAccountHash(c.Context, u, ent.Hash)
				if errors.Is(err, state.ErrAccountExists) {
					fmt.Fprintf(out, "%s: has an account already, kept\n", u)
					continue
				}
				if err != nil {
					return err
				}
				imported++
				fmt.Fprintf(out, "%s: imported (%s)\n", u, pwhash.Scheme(ent.Hash))
			}
			fmt.Fprintf(out, "%d imported\n", imported)
			if failed {
				return cli.Exit("some users or lines were not imported (see above)", 1)
			}
			return nil
		},
	}
}

// accountAction wraps an account subcommand: it checks the one USER
// argument and opens the state database for f.
func accountAction(f func(c *cli.Context, e *env, user string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		user, err := oneUser(c)
		if err != nil {
			return err
		}
		e, err := loadBase(c)
		if err != nil {
			return err
		}
		defer e.Close()
		return f(c, e, user)
	}
}

func mustMaildir(e *env, user string) string {
	p, err := e.maildirFor(user)
	if err != nil {
		return "(unknown)"
	}
	return p
}

func oneUser(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("%s: need exactly one USER", c.Command.FullName())
	}
	u := c.Args().First()
	if u == "" || strings.ContainsAny(u, "/:@ \t\n") {
		return "", fmt.Errorf("%s: %q is not a valid user name", c.Command.FullName(), u)
	}
	return u, nil
}

func quotaArgs(c *cli.Context) (bytes, messages int64, err error) {
	bytes, messages = -1, c.Int64("quota-messages")
	if q := c.String("quota"); q != "" && q != "default" {
		if bytes, err = config.ParseSize(q); err != nil {
			return 0, 0, fmt.Errorf("--quota: %w", err)
		}
	}
	return bytes, messages, nil
}

// readPassword asks twice on a terminal, or reads stdin's first line.
func readPassword(c *cli.Context, prompt string) (string, error) {
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, prompt+": ")
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(os.Stderr, "Again: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("passwords differ")
		}
		if len(a) == 0 {
			return "", errors.New("empty password")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}
