package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:      "events",
		Usage:     "show a user's event log",
		ArgsUsage: "USER",
		Description: `Prints every recorded event of USER, oldest first: enqueue, each state
transition with who caused it and why, mails sent, replies accepted or
refused, lease takeovers, errors.

Examples:
   mailmig events alice
   mailmig events --json alice`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("events: need exactly one USER")
			}
			e, err := loadBase(c)
			if err != nil {
				return err
			}
			defer e.Close()
			evs, err := e.db.Events(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				if _, err := e.db.Get(c.Context, c.Args().First()); err != nil {
					return err
				}
			}
			if c.Bool("json") {
				type ev struct {
					ID     int64     `json:"id"`
					At     time.Time `json:"at"`
					Kind   string    `json:"kind"`
					From   string    `json:"from,omitempty"`
					To     string    `json:"to,omitempty"`
					Actor  string    `json:"actor,omitempty"`
					Detail string    `json:"detail,omitempty"`
				}
				out := []ev{}
				for _, x := range evs {
					out = append(out, ev{x.ID, x.At, x.Kind, string(x.From), string(x.To), x.Actor, x.Detail})
				}
				return writeJSON(c.App.Writer, out)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tEVENT\tBY\tDETAIL")
			for _, x := range evs {
				what := x.Kind
				if x.From != "" || x.To != "" {
					what = fmt.Sprintf("%s %s → %s", x.Kind, orDash(string(x.From)), orDash(string(x.To)))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.At.Local().Format(time.DateTime), what, orDash(x.Actor), x.Detail)
			}
			return tw.Flush()
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
