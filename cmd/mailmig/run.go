package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// runCommand is replaced by the queue runner (migrate/).
func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "work the migration queue",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "once", Usage: "one pass over the queue, then exit"},
			&cli.IntFlag{Name: "workers", Usage: "users worked on at once (default migration.workers)"},
		},
		Action: func(*cli.Context) error {
			return errors.New("run: the queue runner is not built into this mailmig yet")
		},
	}
}
