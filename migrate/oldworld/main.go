// Command oldworld writes a generated UW-IMAP world for `mailmig --data
// DIR`: for each user an INBOX spool DIR/old/spool/USER, mbox folders in
// DIR/old/home/USER/mail, ~/.mailboxlist, and the line "USER HOME" in the
// home map DIR/old/homes, and a sha512-crypt hash of the password
// ("old-password") in DIR/old/shadow, the old site's system password
// that the crypt password source checks in --data mode. The demo (scripts/demo) and the migration
// benchmark (scripts/bench-migrate) use it; the mail comes from
// migrate/corpus.
//
//	oldworld -data DIR [-size 2MB] [-folders 3] [-seed 1] [-quirks] USER...
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"mailmig/migrate/corpus"
	"mailmig/migrate/units"
	"mailmig/server/auth/pwhash"
)

func main() {
	data := flag.String("data", "", "the mailmig --data `DIR`")
	size := flag.String("size", "1MB", "about this many bytes per user")
	folders := flag.Int("folders", 3, "ordinary folders per user")
	seed := flag.Uint64("seed", 1, "random seed (per user: seed+index)")
	quirks := flag.Bool("quirks", false, "add the quirky folders and messages of real trees")
	flag.Parse()
	if *data == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: oldworld -data DIR [-size 1MB] [-folders N] [-seed N] [-quirks] USER...")
		os.Exit(64)
	}
	total, err := units.ParseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oldworld: -size:", err)
		os.Exit(64)
	}
	if err := write(*data, flag.Args(), total, *folders, *seed, *quirks); err != nil {
		fmt.Fprintln(os.Stderr, "oldworld:", err)
		os.Exit(1)
	}
}

func write(data string, users []string, total int64, folders int, seed uint64, quirks bool) error {
	old := filepath.Join(data, "old")
	if err := os.MkdirAll(old, 0o755); err != nil {
		return err
	}
	homes, err := os.OpenFile(filepath.Join(old, "homes"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer homes.Close()
	shadow, err := os.OpenFile(filepath.Join(old, "shadow"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer shadow.Close()
	abs, err := filepath.Abs(old)
	if err != nil {
		return err
	}
	for i, u := range users {
		tree, err := corpus.Generate(abs, u, corpus.Options{Seed: seed + uint64(i), Folders: folders, TotalBytes: total, Quirks: quirks})
		if err != nil {
			return fmt.Errorf("user %s: %w", u, err)
		}
		if _, err := fmt.Fprintf(homes, "%s %s\n", u, tree.Home); err != nil {
			return err
		}
		hash, err := pwhash.SHACrypt("old-password", fmt.Sprintf("$6$oldworld%d", seed+uint64(i)))
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(shadow, "%s:%s:19000:0:99999:7:::\n", u, hash); err != nil {
			return err
		}
		n := 0
		for _, f := range tree.Folders {
			n += len(f.Messages)
		}
		fmt.Printf("%s: %d folders, %d messages, %d bytes\n", u, len(tree.Folders), n, tree.SourceBytes)
	}
	return nil
}
