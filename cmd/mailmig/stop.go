package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// stopCommand is a placeholder until the command lands.
func stopCommand() *cli.Command {
	return &cli.Command{
		Name:  "stop",
		Usage: "stop delivery to the old mbox for a user",
		Action: func(*cli.Context) error {
			return errors.New("stop: not built into this mailmig yet")
		},
	}
}
