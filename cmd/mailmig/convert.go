package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// convertCommand is a placeholder until the command lands.
func convertCommand() *cli.Command {
	return &cli.Command{
		Name:  "convert",
		Usage: "convert mbox folders to Maildir++",
		Action: func(*cli.Context) error {
			return errors.New("convert: not built into this mailmig yet")
		},
	}
}
