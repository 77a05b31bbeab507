package main

import (
	"fmt"
	"mailmig/server/web"

	"github.com/urfave/cli/v2"

	"mailmig/server/tlsconf"

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
				Description: `Checks FILE (default: --config) and names the bad key and its line, then
the TLS certificate as clients will see it: readable, the key matching,
the chain complete and in order up to a trusted root (system store or
[tls] ca_file), the names users are told covered, not expiring within 30
days (warning). An error exits 1.

Examples:
   mailmig config check /etc/mailmig/mailmig.toml
   mailmig --config ./test.toml config check`,
				Action: func(c *cli.Context) error {
					path := c.Args().First()
					if path == "" {
						path = c.String("config")
					}
					cfg, err := config.Load(path, false)
					if err != nil {
						return err
					}
					for _, w := range cfg.Warnings() {
						fmt.Fprintf(c.App.Writer, "WARNING: %s\n", w)
					}
					// The certificate, as clients will see it (issue 9.6).
					findings, present := checkTLSFiles(cfg)
					if !present {
						fmt.Fprintf(c.App.Writer, "WARNING: no certificate at %s: TLS listeners and STARTTLS will not start\n", cfg.TLS.Cert)
					}
					for _, f := range findings {
						fmt.Fprintln(c.App.Writer, f.String())
					}
					if tlsconf.HasErrors(findings) {
						return cli.Exit(fmt.Sprintf("%s: the TLS certificate has errors", path), 1)
					}
					fmt.Fprintf(c.App.Writer, "%s: OK\n", path)
					return nil
				},
			},
			{
				Name:  "dns",
				Usage: "print the DNS records that let mail clients find the servers",
				Description: `Prints zone-file lines for the first [server] domain: the RFC 6186 SRV
records (_imaps, _imap, _submissions, _submission; _pop3 marked as not
offered), _sieve (RFC 5804) and the autoconfig/autodiscover names of the
web page ([web] host), from the [client] section.

Examples:
   mailmig config dns
   mailmig --config /etc/mailmig/mailmig.toml config dns >> /etc/bind/db.example.org`,
				Action: func(c *cli.Context) error {
					cfg, err := loadConfig(c)
					if err != nil {
						return err
					}
					for _, line := range web.DNSRecords(webClient(cfg)) {
						fmt.Fprintln(c.App.Writer, line)
					}
					return nil
				},
			},
		},
	}
}
