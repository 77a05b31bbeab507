package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"mailmig/server/outbound"
)

// queueCommand is `mailmig queue list|flush|delete` for the outgoing
// queue, as Postfix's mailq, postqueue -f and postsuper -d.
func queueCommand() *cli.Command {
	return &cli.Command{
		Name:  "queue",
		Usage: "show, flush or delete mail in the outgoing queue (mailq, postqueue -f, postsuper -d)",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the queued messages (mailq)",
				Description: `Reads the spool ([submission] spool) directly, so it works whether or not
the server runs: id, size, arrival, attempts, next attempt, sender, the
recipients still pending and the last temporary failure.

Examples:
   mailmig queue list
   mailmig queue list --json`,
				Flags:  []cli.Flag{jsonFlag},
				Action: queueList,
			},
			{
				Name:  "flush",
				Usage: "attempt every queued message now (postqueue -f)",
				Description: `Makes every queued message due and wakes the running server's queue
runner; the attempts are logged by the server. Needs a running 'mailmig
serve' (exit 75 otherwise, as postqueue fails without Postfix).

Examples:
   mailmig queue flush`,
				Flags:  []cli.Flag{jsonFlag},
				Action: queueFlush,
			},
			{
				Name:      "delete",
				Usage:     "delete queued messages without delivering or bouncing them (postsuper -d)",
				ArgsUsage: "ID...",
				Description: `Removes the messages from the spool; nobody is told. Through the running
server when there is one (so an attempt in progress cannot bring the
entry back), on the spool directly otherwise.

Examples:
   mailmig queue delete 1733490000000000000.a1b2c3d4e5f6`,
				Flags:  []cli.Flag{jsonFlag},
				Action: queueDelete,
			},
		},
	}
}

// spoolQueue opens the outgoing spool of the configuration.
func spoolQueue(c *cli.Context) (*outbound.Queue, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	if cfg.Submission.Spool == "" {
		return nil, errors.New("[submission] spool is empty")
	}
	return &outbound.Queue{Dir: cfg.Submission.Spool, Hostname: cfg.Server.Hostname}, nil
}

func queueList(c *cli.Context) error {
	q, err := spoolQueue(c)
	if err != nil {
		return err
	}
	es, err := q.List()
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, nonNil(es))
	}
	if len(es) == 0 {
		fmt.Fprintln(c.App.Writer, "Mail queue is empty")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE\tARRIVED\tATTEMPTS\tNEXT\tSENDER\tRECIPIENTS")
	for _, e := range es {
		from := e.From
		if from == "" {
			from = "<>"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", e.ID, e.Size, e.Created.Local().Format(time.DateTime),
			e.Attempts, e.NextAttempt.Local().Format(time.DateTime), from, strings.Join(e.To, " "))
		if e.LastError != "" {
			fmt.Fprintf(tw, "\t\t(%s)\t\t\t\t\n", e.LastError)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var size int64
	for _, e := range es {
		size += e.Size
	}
	fmt.Fprintf(c.App.Writer, "-- %d KB in %d messages\n", kb(size), len(es))
	return nil
}

func queueFlush(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	rep, err := controlCall(cfg, controlRequest{Op: "queue-flush"})
	if err != nil {
		return notServing(err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]int{"flushed": rep.Count})
	}
	fmt.Fprintf(c.App.Writer, "%d messages to be attempted now\n", rep.Count)
	return nil
}

func queueDelete(c *cli.Context) error {
	if c.NArg() == 0 {
		return withExit(64, errors.New("usage: mailmig queue delete ID..."))
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	var deleted []string
	var failed error
	for _, id := range c.Args().Slice() {
		_, err := controlCall(cfg, controlRequest{Op: "queue-delete", ID: id})
		if errors.Is(err, errNotServing) {
			q, qerr := spoolQueue(c)
			if qerr != nil {
				return qerr
			}
			err = q.Delete(id)
		}
		if err != nil {
			failed = errors.Join(failed, fmt.Errorf("%s: %w", id, err))
			continue
		}
		deleted = append(deleted, id)
	}
	if c.Bool("json") {
		if err := printJSON(c.App.Writer, map[string][]string{"deleted": nonNil(deleted)}); err != nil {
			return err
		}
	} else {
		for _, id := range deleted {
			fmt.Fprintf(c.App.Writer, "%s: deleted\n", id)
		}
	}
	return failed
}
