package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"mailmig/mailstore"
)

// Helpers shared by the doveadm-style admin commands (who, kick,
// mailbox, quota recalc, queue).

// jsonFlag is the --json flag every admin command has.
var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// notServing turns "no server" into exit 75 (EX_TEMPFAIL) with a hint.
func notServing(err error) error {
	if errors.Is(err, errNotServing) {
		return withExit(75, fmt.Errorf("%w; start it (systemctl start mailmig-serve) and retry", err))
	}
	return err
}

// withUserStore opens user's Maildir (which must exist) and runs f. Run
// as root on a store owned by another user (the mailmig user serve runs
// as), files f created or replaced (uidlist, maildirsize) are given back
// to the store's owner afterwards, so the server can still write them.
func withUserStore(e *env, user string, opts mailstore.Options, f func(*mailstore.Store) error) error {
	root, err := e.maildirFor(user)
	if err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("%s: no Maildir: %w", user, err)
	}
	opts.Logger = e.log
	st, err := mailstore.Open(root, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	ferr := f(st)
	st.Close()
	if os.Geteuid() == 0 {
		owner := fi.Sys().(*syscall.Stat_t)
		if owner.Uid != 0 {
			if err := giveBack(root, int(owner.Uid), int(owner.Gid)); err != nil {
				return errors.Join(ferr, fmt.Errorf("%s: give files back to uid %d: %w", user, owner.Uid, err))
			}
		}
	}
	return ferr
}

// giveBack chowns what root owns below dir to uid:gid (never following
// symbolic links).
func giveBack(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // renamed meanwhile
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid == 0 {
			if err := os.Lchown(p, uid, gid); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}
