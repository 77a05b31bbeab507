package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

// whoCommand is `mailmig who` (doveadm who): the logged-in sessions of
// the running server.
func whoCommand() *cli.Command {
	return &cli.Command{
		Name:  "who",
		Usage: "list the running server's logged-in sessions (user, protocol, address, since)",
		Description: `Asks the running 'mailmig serve' (through its control socket, [control]
socket) for its open sessions: IMAP, submission and ManageSieve connections
that have logged in. --all lists connections that have not (yet) logged in
too, LMTP included.

Examples:
   mailmig who
   mailmig who --json | jq '.[] | select(.user == "alice")'`,
		Flags: []cli.Flag{
			jsonFlag,
			&cli.BoolFlag{Name: "all", Usage: "also connections without a login"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			rep, err := controlCall(cfg, controlRequest{Op: "who", All: c.Bool("all")})
			if err != nil {
				return notServing(err)
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, nonNil(rep.Sessions))
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tPROTOCOL\tREMOTE\tSINCE")
			for _, s := range rep.Sessions {
				user := s.User
				if user == "" {
					user = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", user, s.Protocol, s.Remote, s.Since.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
}

// nonNil makes a nil slice print as [] in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
