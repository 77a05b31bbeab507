package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// kickCommand is `mailmig kick USER` (doveadm kick): the running server
// closes the user's connections.
func kickCommand() *cli.Command {
	return &cli.Command{
		Name:      "kick",
		Usage:     "disconnect a user's sessions from the running server",
		ArgsUsage: "USER",
		Description: `Closes every connection USER has logged in on (or only those of
--protocol), as doveadm kick does: the client sees the connection drop and
reconnects. Exit status 1 when the user had no session.

Examples:
   mailmig kick alice
   mailmig kick --protocol imap --json alice`,
		Flags: []cli.Flag{
			jsonFlag,
			&cli.StringFlag{Name: "protocol", Usage: "only sessions of `PROTO` (imap, imaps, submission, submissions, managesieve)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return withExit(64, errors.New("usage: mailmig kick USER"))
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			user := c.Args().First()
			rep, err := controlCall(cfg, controlRequest{Op: "kick", User: user, Protocol: c.String("protocol")})
			if err != nil {
				return notServing(err)
			}
			if c.Bool("json") {
				if err := printJSON(c.App.Writer, nonNil(rep.Sessions)); err != nil {
					return err
				}
			} else {
				for _, s := range rep.Sessions {
					fmt.Fprintf(c.App.Writer, "%s: kicked %s session from %s\n", user, s.Protocol, s.Remote)
				}
			}
			if rep.Count == 0 {
				return withExit(1, fmt.Errorf("kick: %s has no session", user))
			}
			return nil
		},
	}
}
