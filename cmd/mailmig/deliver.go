package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// deliverCommand is a placeholder until the command lands.
func deliverCommand() *cli.Command {
	return &cli.Command{
		Name:  "deliver",
		Usage: "deliver one message from stdin",
		Action: func(*cli.Context) error {
			return errors.New("deliver: not built into this mailmig yet")
		},
	}
}
