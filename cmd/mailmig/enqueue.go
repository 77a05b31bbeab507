package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mailmig/state"
)

func enqueueCommand() *cli.Command {
	return &cli.Command{
		Name:      "enqueue",
		Usage:     "put users in the migration queue",
		ArgsUsage: "USER...",
		Description: `Adds users to the queue that 'mailmig run' works. Every user must be known
to the configured home source (passwd or map file); if one is not, nothing
is enqueued. Enqueueing a user twice changes nothing and says so.

Examples:
   mailmig enqueue alice bob
   mailmig enqueue --folders --deadline 2009-10-15 carol
   mailmig enqueue --from-file users.txt`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "folders", Usage: "also copy the ~/mail folders (otherwise only INBOX)"},
			&cli.StringFlag{Name: "deadline", Usage: "`DATE` (YYYY-MM-DD) after which users are moved without being asked"},
			&cli.StringFlag{Name: "from-file", Usage: "read user names from `FILE`, one per line (# comments allowed; - for stdin)"},
			&cli.StringFlag{Name: "lang", Usage: "language of the user's mails (en, de); default migration.language"},
		},
		Action: runEnqueue,
	}
}

func runEnqueue(c *cli.Context) error {
	users := append([]string{}, c.Args().Slice()...)
	if f := c.String("from-file"); f != "" {
		more, err := readUserFile(f)
		if err != nil {
			return err
		}
		users = append(users, more...)
	}
	if len(users) == 0 {
		return errors.New("enqueue: no users given (see mailmig enqueue --help)")
	}
	var opts state.EnqueueOptions
	opts.CopyFolders = c.Bool("folders")
	if d := c.String("deadline"); d != "" {
		t, err := time.ParseInLocation("2006-01-02", d, time.Local)
		if err != nil {
			return fmt.Errorf("enqueue: --deadline %q: want YYYY-MM-DD", d)
		}
		opts.Deadline = t
	}
	if l := c.String("lang"); l != "" {
		if l != "en" && l != "de" {
			return fmt.Errorf("enqueue: --lang %q: shipped languages are en and de", l)
		}
		opts.Language = l
	}
	opts.RequestedBy = invoker()

	e, err := loadBase(c)
	if err != nil {
		return err
	}
	defer e.Close()
	var unknown []string
	seen := map[string]bool{}
	var uniq []string
	for _, u := range users {
		if seen[u] {
			continue
		}
		seen[u] = true
		uniq = append(uniq, u)
		if _, err := e.cfg.HomeFor(u); err != nil {
			unknown = append(unknown, fmt.Sprintf("  %s: %v", u, err))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("enqueue: unknown users, nothing enqueued:\n%s", strings.Join(unknown, "\n"))
	}
	for _, u := range uniq {
		added, err := e.db.Enqueue(c.Context, u, opts)
		if err != nil {
			return err
		}
		if added {
			fmt.Fprintf(c.App.Writer, "%s: enqueued\n", u)
			warnNoLogin(c, e, u)
		} else {
			ent, _ := e.db.Get(c.Context, u)
			st := ""
			if ent != nil {
				st = string(ent.State)
			}
			fmt.Fprintf(c.App.Writer, "%s: already in the queue (%s), unchanged\n", u, st)
		}
	}
	return nil
}

func readUserFile(path string) ([]string, error) {
	var f *os.File
	if path == "-" {
		f = os.Stdin
	} else {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, fmt.Errorf("enqueue: %w", err)
		}
		defer f.Close()
	}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		out = append(out, strings.Fields(line)...)
	}
	return out, sc.Err()
}

// invoker names who ran the command, for the event log.
func invoker() string {
	if s := os.Getenv("SUDO_USER"); s != "" {
		return s
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}
