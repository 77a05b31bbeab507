package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"mailmig/cmd/mailmig/config"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "print the default configuration or check a file",
		Subcommands: []*cli.Command{
			{
				Name:  "default",
				Usage: "print the complete, commented default configuration",
				Description: `Example:
   mailmig config default > /etc/mailmig/mailmig.toml`,
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprint(c.App.Writer, config.DefaultText())
					return err
				},
			},
			{
				Name:      "check",
				Usage:     "validate a configuration file",
				ArgsUsage: "[FILE]",
				Description: `Checks FILE (default: --config) and names the bad key and its line.

Examples:
   mailmig config check /etc/mailmig/mailmig.toml
   mailmig --config ./test.toml config check`,
				Action: func(c *cli.Context) error {
					path := c.Args().First()
					if path == "" {
						path = c.String("config")
					}
					if _, err := config.Load(path, false); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: OK\n", path)
					return nil
				},
			},
		},
	}
}
