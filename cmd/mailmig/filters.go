package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"mailmig/cmd/mailmig/config"
	"mailmig/migrate/convert"
	"mailmig/migrate/filters"
	"mailmig/server/sieve"
)

// filtersCommand is `mailmig filters convert`: a user's procmailrc,
// .forward and vacation message as the Sieve script the migration would
// install, for the postmaster to try before the move.
func filtersCommand() *cli.Command {
	return &cli.Command{
		Name:  "filters",
		Usage: "convert procmail, .forward and vacation(1) filters to Sieve",
		Subcommands: []*cli.Command{{
			Name:  "convert",
			Usage: "print the Sieve script for a procmailrc/.forward and what could not be converted",
			Description: `Prints the Sieve script (stdout) that the migration writes to
~/sieve/migrated.sieve, and the report (stderr): every rule that has no
faithful Sieve form, with its file and line, and the differences in detail.
Folder names are the copy's: give the JSON report of 'mailmig convert
--report' with --folder-map to use its renamings.

Exit status: 0 converted, 2 some rules were not converted (they are in the
script as comments), 1 error.

Examples:
   mailmig filters convert --procmailrc ~alice/.procmailrc
   mailmig filters convert --procmailrc ~alice/.procmailrc --forward ~alice/.forward \
       --folder-map alice.json --user alice --domain example.com`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "procmailrc", Usage: "the user's procmailrc `FILE`"},
				&cli.StringFlag{Name: "forward", Usage: "the user's .forward `FILE`"},
				&cli.StringFlag{Name: "vacation-msg", Usage: "vacation(1) message `FILE` (default HOME/.vacation.msg)"},
				&cli.StringFlag{Name: "folder-map", Usage: "JSON `REPORT` of mailmig convert (old folder file → new name)"},
				&cli.StringFlag{Name: "user", Usage: "login `NAME` (default: the owner of the procmailrc's directory name)"},
				&cli.StringFlag{Name: "home", Usage: "home `DIR` (default: the directory of --procmailrc or --forward)"},
				&cli.StringFlag{Name: "spool", Usage: "the old INBOX `FILE` (default /var/mail/USER)"},
				&cli.StringFlag{Name: "folders", Usage: "the old folders `DIR` (default HOME/mail)"},
				&cli.StringFlag{Name: "domain", Usage: "mail `DOMAIN` completing bare names in forwards"},
				&cli.StringFlag{Name: "global", Value: "spam", Usage: "global script to include first (include :global `NAME`; \"\" none)"},
				&cli.BoolFlag{Name: "procmail-always", Value: true, Usage: "the old MTA ran procmail for every user with a .procmailrc"},
				&cli.StringFlag{Name: "report", Usage: "also write the report as JSON to `FILE`"},
			},
			Action: filtersConvert,
		}},
	}
}

func filtersConvert(c *cli.Context) error {
	rc, fwd := c.String("procmailrc"), c.String("forward")
	if rc == "" && fwd == "" {
		return cli.Exit("usage: mailmig filters convert --procmailrc FILE [--forward FILE] [--folder-map REPORT]", 2)
	}
	home := c.String("home")
	if home == "" {
		if rc != "" {
			home = filepath.Dir(rc)
		} else {
			home = filepath.Dir(fwd)
		}
	}
	home, _ = filepath.Abs(home)
	user := c.String("user")
	if user == "" {
		user = filepath.Base(home)
	}
	spool := c.String("spool")
	if spool == "" {
		spool = "/var/mail/" + user
	}
	folders := c.String("folders")
	if folders == "" {
		folders = filepath.Join(home, "mail")
	}
	o := filters.Options{
		User: user, Home: home, Procmailrc: rc, Forward: fwd, VacationMsg: c.String("vacation-msg"),
		Spool: spool, FoldersDir: folders, Domain: c.String("domain"), GlobalInclude: c.String("global"),
		ProcmailAlways: c.Bool("procmail-always"),
	}
	if rc == "" {
		o.Procmailrc = filepath.Join(home, ".procmailrc")
	}
	if fwd == "" {
		o.Forward = filepath.Join(home, ".nonexistent-forward")
	}
	if c.String("domain") != "" {
		o.Addresses = []string{user + "@" + c.String("domain")}
	}
	if m := c.String("folder-map"); m != "" {
		b, err := os.ReadFile(m)
		if err != nil {
			return fmt.Errorf("filters: %w", err)
		}
		var rep convert.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("filters: %s is not a mailmig convert report: %w", m, err)
		}
		o.Folders = map[string]string{}
		for _, f := range rep.Folders {
			if f.Source != "" {
				o.Folders[filepath.Clean(f.Source)] = f.Name
			}
		}
		if rep.FoldersDir != "" && c.String("folders") == "" {
			o.FoldersDir = rep.FoldersDir
		}
		if rep.Inbox != "" && c.String("spool") == "" {
			o.Spool = rep.Inbox
		}
	}
	res, err := filters.Convert(o)
	if err != nil {
		return err
	}
	if res.Empty() {
		fmt.Fprintln(c.App.ErrWriter, "no filters to convert")
		return nil
	}
	fmt.Fprint(c.App.Writer, res.Script)
	w := c.App.ErrWriter
	if len(res.Problems) == 0 {
		fmt.Fprintln(w, "every rule was converted")
	} else {
		fmt.Fprintf(w, "%d rule(s) NOT converted (kept in the script as comments):\n", len(res.Problems))
		for _, p := range res.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if f := c.String("report"); f != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(f, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("filters: %w", err)
		}
	}
	if len(res.Problems) > 0 {
		return withExit(2, fmt.Errorf("%d rule(s) not converted", len(res.Problems)))
	}
	return nil
}

// reportWithFilters is convert --report's JSON: the copy's report and,
// with --user, the filter conversion (docs/filters.md).
type reportWithFilters struct {
	*convert.Report
	Filters *filters.Result `json:"filters,omitempty"`
}

// userFilters converts the filters of convert's --user with the copy's
// folder names and prints what was not converted; nil without --user.
// Nothing is installed: the runner does that during copying.
func userFilters(c *cli.Context, cfg *config.Config, rep *convert.Report) *filters.Result {
	user := c.String("user")
	if user == "" {
		return nil
	}
	p, err := cfg.PathsFor(user)
	if err != nil {
		return nil
	}
	o := filters.Options{User: user, Home: p.Home, Spool: p.Inbox, FoldersDir: p.Folders, Folders: map[string]string{},
		GlobalInclude: sieve.GlobalSpam, ProcmailAlways: cfg.Migration.ProcmailAlways}
	if len(cfg.Server.Domains) > 0 {
		o.Domain = cfg.Server.Domains[0]
		o.Addresses = []string{user + "@" + o.Domain}
	}
	for _, f := range rep.Folders {
		o.Folders[filepath.Clean(f.Source)] = f.Name
	}
	res, err := filters.Convert(o)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "filters: %v\n", err)
		return nil
	}
	if res.Empty() {
		return res
	}
	w := c.App.Writer
	if c.Bool("quiet") {
		return res
	}
	fmt.Fprintf(w, "filters: %s → Sieve (mailmig filters convert shows the script)\n", strings.Join(res.Sources, ", "))
	for _, pr := range res.Problems {
		fmt.Fprintf(w, "  NOT CONVERTED: %s\n", pr)
	}
	return res
}
