package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"mailmig/server/aliases"
)

// aliasCommand is `mailmig alias list|check`: the alias map as delivery
// sees it ([aliases] file, postmaster).
func aliasCommand() *cli.Command {
	return &cli.Command{
		Name:  "alias",
		Usage: "show the alias map ([aliases] file, /etc/aliases format) and where an address goes",
		Description: `The alias file has the format of /etc/aliases: "name: account, account,
someone@elsewhere"; continuation lines start with blank space. LMTP and
submission deliver to it, submission lets a user send as an alias that
points to them alone, and Sieve vacation counts those as the user's own
addresses. serve re-reads the file on SIGHUP.

Exit status of check: 0 the address is deliverable, 1 it is not.

Examples:
   mailmig alias list
   mailmig alias check postmaster@example.org
   mailmig alias check first.last`,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "every alias with its accounts and external addresses",
				Description: `With --postfix, prints a Postfix lookup table (texthash) of the names
mail to this site may be addressed to besides Unix users: every alias,
postmaster and the migration's control address, for local_recipient_maps
(see docs/postfix/main.cf).

Examples:
   mailmig alias list
   mailmig alias list --postfix > /etc/mailmig/postfix-recipients`,
				Flags: []cli.Flag{&cli.BoolFlag{Name: "postfix", Usage: "print a texthash table of the local names for Postfix's local_recipient_maps"}},
				Action: func(c *cli.Context) error {
					e, err := loadEnvTLS(c, false) // no TLS key needed
					if err != nil {
						return err
					}
					defer e.Close()
					if c.Bool("postfix") {
						seen := map[string]bool{}
						names := append(e.aliases.Map().Names(), "postmaster", strings.ToLower(e.cfg.Migration.ControlLocalPart))
						for _, n := range names {
							if !seen[n] && !strings.ContainsAny(n, " \t") {
								seen[n] = true
								fmt.Fprintf(c.App.Writer, "%s\tOK\n", n)
							}
						}
						return nil
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ALIAS\tLINE\tACCOUNTS\tEXTERNAL\tPROBLEM")
					names := e.aliases.Map().Names()
					if _, ok := e.aliases.Map().Targets("postmaster"); !ok {
						names = append(names, "postmaster")
					}
					for _, n := range names {
						exp, err := e.aliases.Expand(n)
						problem := ""
						if err != nil {
							problem = err.Error()
						}
						line := fmt.Sprint(e.aliases.Map().Line(n))
						if line == "0" {
							line = "[aliases] postmaster"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, line, strings.Join(exp.Users, ","), strings.Join(exp.External, ","), problem)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "check",
				Usage:     "where mail to ADDRESS goes (name or name@domain)",
				ArgsUsage: "ADDRESS",
				Description: `Example:
   mailmig alias check postmaster@example.org`,
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cli.Exit("usage: mailmig alias check ADDRESS", 2)
					}
					e, err := loadEnvTLS(c, false) // no TLS key needed
					if err != nil {
						return err
					}
					defer e.Close()
					addr := c.Args().First()
					name := addr
					if i := strings.LastIndexByte(addr, '@'); i >= 0 {
						dom := addr[i+1:]
						local := false
						for _, d := range e.cfg.Server.Domains {
							local = local || strings.EqualFold(d, dom)
						}
						if !local {
							return cli.Exit(fmt.Sprintf("%s: %s is not a local domain (server.domains)", addr, dom), 1)
						}
						name = addr[:i]
					}
					name, detail, _ := strings.Cut(name, "+")
					exp, err := e.aliases.Expand(name)
					if errors.Is(err, aliases.ErrUnknown) {
						return cli.Exit(fmt.Sprintf("%s: undeliverable: %v", addr, err), 1)
					}
					if err != nil {
						return err
					}
					w := c.App.Writer
					if !exp.Alias {
						fmt.Fprintf(w, "%s: account %s", addr, name)
					} else {
						fmt.Fprintf(w, "%s: alias %s", addr, name)
						if l := e.aliases.Map().Line(name); l > 0 {
							fmt.Fprintf(w, " (%s line %d)", e.aliases.Map().Source, l)
						} else {
							fmt.Fprint(w, " ([aliases] postmaster)")
						}
					}
					if detail != "" {
						fmt.Fprintf(w, ", subaddress %q", detail)
					}
					fmt.Fprintln(w)
					for _, u := range exp.Users {
						fmt.Fprintf(w, "  account  %s\n", u)
					}
					for _, x := range exp.External {
						fmt.Fprintf(w, "  forward  %s\n", x)
					}
					if exp.Alias {
						// Who may send as it: an alias of one account alone.
						if len(exp.Users) == 1 && len(exp.External) == 0 {
							fmt.Fprintf(w, "  %s may send as %s\n", exp.Users[0], name)
						}
					} else if own := e.aliases.AliasesOf(name); len(own) > 0 {
						fmt.Fprintf(w, "  aliases of %s alone: %s\n", name, strings.Join(own, ", "))
					}
					return nil
				},
			},
		},
	}
}
