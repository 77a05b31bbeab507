package config

import (
	"bufio"
	"errors"
	"fmt"
	"mailmig/migrate/paths"
	"os"
	"strings"
)

// ErrUnknownUser is returned when the configured home source does not know
// a user.
var ErrUnknownUser = paths.ErrUnknownUser

// UserPaths are one user's locations on both sides.
type UserPaths = paths.User

// HomeFor looks up a user's home directory in the configured source: the
// passwd file (field 6) or the map file ("user /home/dir" lines).
func (c *Config) HomeFor(user string) (string, error) {
	if user == "" || strings.ContainsAny(user, "/:\n\x00") || user == "." || user == ".." {
		return "", fmt.Errorf("%w: %q is not a valid user name", ErrUnknownUser, user)
	}
	switch c.Old.Homes {
	case "map":
		return lookupMap(c.Old.HomeMap, user)
	default:
		return lookupPasswd(c.Old.PasswdFile, user)
	}
}

func lookupPasswd(path, user string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("config: passwd source: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 6 && fields[0] == user {
			return fields[5], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("config: read %s: %w", path, err)
	}
	return "", fmt.Errorf("%w %q: not in %s", ErrUnknownUser, user, path)
}

func lookupMap(path, user string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w %q: home map %s does not exist", ErrUnknownUser, user, path)
		}
		return "", fmt.Errorf("config: home map: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return "", fmt.Errorf("config: %s:%d: want \"user /home/dir\"", path, n)
		}
		if fields[0] == user {
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("config: read %s: %w", path, err)
	}
	return "", fmt.Errorf("%w %q: not in %s", ErrUnknownUser, user, path)
}

// PathsFor resolves every template for user. It fails for a user the home
// source does not know.
func (c *Config) PathsFor(user string) (*UserPaths, error) {
	home, err := c.HomeFor(user)
	if err != nil {
		return nil, err
	}
	return &UserPaths{
		User:          user,
		Home:          home,
		Inbox:         Expand(c.Old.Inbox, user, home),
		Folders:       Expand(c.Old.Folders, user, home),
		Subscriptions: Expand(c.Old.Subscriptions, user, home),
		Maildir:       Expand(c.Store.Maildir, user, home),
		SieveDir:      Expand(c.Store.SieveDir, user, home),
		SieveActive:   Expand(c.Store.SieveActive, user, home),
	}, nil
}

// MaildirFor returns a user's Maildir root. The new store's template need
// not use %h; when it does not, users unknown to the old side (accounts
// created on the server only) still have a Maildir.
func (c *Config) MaildirFor(user string) (string, error) {
	return c.newSidePath(c.Store.Maildir, user)
}

// SieveDirFor returns the directory of a user's Sieve scripts.
func (c *Config) SieveDirFor(user string) (string, error) {
	return c.newSidePath(c.Store.SieveDir, user)
}

// SieveActiveFor returns the path of the link to a user's active script.
func (c *Config) SieveActiveFor(user string) (string, error) {
	return c.newSidePath(c.Store.SieveActive, user)
}

func (c *Config) newSidePath(tmpl, user string) (string, error) {
	if user == "" || strings.ContainsAny(user, "/\n\x00") || user == "." || user == ".." {
		return "", fmt.Errorf("%w: %q is not a valid user name", ErrUnknownUser, user)
	}
	home := ""
	if NeedsHome(tmpl) {
		h, err := c.HomeFor(user)
		if err != nil {
			return "", err
		}
		home = h
	}
	return Expand(tmpl, user, home), nil
}
