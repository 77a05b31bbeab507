package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// stopCommand is the postmaster's equivalent of a user's reply to the
// confirmation: old delivery stops for each USER at the runner's next
// pass (cutover with a final incremental copy, then done).
func stopCommand() *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "stop delivery to the old mbox for USER (as if the user had replied)",
		ArgsUsage: "USER...",
		Description: `Marks the users so that the runner cuts them over at its next pass, even
before the dual window is over: the final incremental copy runs, the final
mail is sent, and from then on 'mailmig deliver' writes only to the new
store. Users already stopped or done are left alone (logged as an event).

Examples:
   mailmig stop alice
   mailmig stop alice bob && mailmig run --once`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Value: "mailmig stop", Usage: "recorded in the event log"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return withExit(64, errors.New("stop: need at least one USER"))
			}
			e, err := loadBase(c)
			if err != nil {
				return err
			}
			defer e.Close()
			var failed error
			for _, user := range c.Args().Slice() {
				changed, err := e.db.RequestStop(c.Context, user, "postmaster", c.String("reason"))
				switch {
				case err != nil:
					fmt.Fprintf(c.App.ErrWriter, "%s: %v\n", user, err)
					failed = errors.Join(failed, err)
				case changed:
					fmt.Fprintf(c.App.Writer, "%s: old delivery stops at the runner's next pass\n", user)
				default:
					fmt.Fprintf(c.App.Writer, "%s: already stopped or done, nothing changed\n", user)
				}
			}
			return failed
		},
	}
}
