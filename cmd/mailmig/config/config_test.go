package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c := Default()
	if err := c.validate("default.toml", DefaultText()); err != nil {
		t.Fatalf("built-in defaults do not validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"inbox", c.Old.Inbox, "/var/mail/%u"},
		{"folders", c.Old.Folders, "%h/mail"},
		{"subscriptions", c.Old.Subscriptions, "%h/.mailboxlist"},
		{"maildir", c.Store.Maildir, "/srv/mail/%u/Maildir"},
		{"folder copy", int64(c.Limits.FolderCopy), int64(500 << 20)},
		{"quota", int64(c.Limits.Quota), int64(1 << 30)},
		{"message size", int64(c.Limits.MessageSize), int64(50 << 20)},
		{"dual window", c.Migration.DualWindow.D(), 48 * time.Hour},
		{"managesieve port", c.Client.ManageSievePort, 4190},
		{"spam folder", c.Sieve.SpamFolder, "junk"},
		{"trusted networks", len(c.Submission.TrustedNetworks), 0},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"500MB", 500 << 20, true},
		{"1GB", 1 << 30, true},
		{"64KB", 64 << 10, true},
		{"64k", 64 << 10, true},
		{"1048576", 1 << 20, true},
		{" 2 GB ", 2 << 30, true},
		{"0", 0, true},
		{"lots", 0, false},
		{"-1MB", 0, false},
		{"1.5GB", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for _, n := range []int64{0, 1, 1023, 1 << 10, 500 << 20, 3 << 30} {
		back, err := ParseSize(Size(n).String())
		if err != nil || back != n {
			t.Errorf("round trip %d → %q → %d, %v", n, Size(n).String(), back, err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"500MB", "1GB", "12", "x", "9999999999999GB", "1 k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

func TestExpand(t *testing.T) {
	tests := []struct{ tmpl, user, home, want string }{
		{"/var/mail/%u", "alice", "", "/var/mail/alice"},
		{"%h/mail", "bob", "/home/bob", "/home/bob/mail"},
		{"/srv/%u/%%u", "carol", "", "/srv/carol/%u"},
		{"/x/%", "d", "", "/x/%"},
	}
	for _, tc := range tests {
		if got := Expand(tc.tmpl, tc.user, tc.home); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.tmpl, got, tc.want)
		}
	}
	if NeedsHome("/srv/%%h") || !NeedsHome("%h/Maildir") {
		t.Error("NeedsHome")
	}
}

func TestHomes(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n"), 0o644)
	homes := filepath.Join(dir, "homes")
	os.WriteFile(homes, []byte("# map\nbob /export/home/bob\n\n"), 0o644)

	c := Default()
	c.Old.PasswdFile = passwd
	if h, err := c.HomeFor("alice"); err != nil || h != "/home/alice" {
		t.Fatalf("passwd alice: %q %v", h, err)
	}
	if _, err := c.HomeFor("mallory"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("passwd mallory: %v", err)
	}
	if _, err := c.HomeFor("../etc"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("path in user name: %v", err)
	}
	c.Old.Homes, c.Old.HomeMap = "map", homes
	p, err := c.PathsFor("bob")
	if err != nil {
		t.Fatal(err)
	}
	if p.Folders != "/export/home/bob/mail" || p.Inbox != "/var/mail/bob" || p.Maildir != "/srv/mail/bob/Maildir" {
		t.Fatalf("paths: %+v", p)
	}
	// The new store's template has no %h: server-only accounts have a
	// Maildir even though the old side does not know them.
	if m, err := c.MaildirFor("newbie"); err != nil || m != "/srv/mail/newbie/Maildir" {
		t.Fatalf("MaildirFor newbie: %q %v", m, err)
	}
}

func TestDataDir(t *testing.T) {
	dir := t.TempDir()
	c := Default()
	if err := c.ApplyDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if c.State.Database != filepath.Join(dir, "state.db") || !strings.HasPrefix(c.Store.Maildir, dir) || !strings.HasPrefix(c.Old.Inbox, dir) {
		t.Fatalf("paths not below the data dir: %+v", c)
	}
	for _, l := range append(append(c.IMAP.Listeners, c.Submission.Listeners...), c.ManageSieve.Listeners...) {
		if l.Address != "127.0.0.1:0" || !l.Trusted {
			t.Errorf("listener %+v not a trusted loopback one", l)
		}
	}
	if len(c.Submission.TrustedNetworks) != 2 {
		t.Errorf("demo world: loopback should relay, got %v", c.Submission.TrustedNetworks)
	}
	// A config file that asks for an untrusted loopback listener and no
	// relaying keeps both.
	f, err := Parse("t.toml", "[imap]\nlisteners = [ { address = \"127.0.0.1:0\", tls = \"starttls\", trusted = false } ]\n[submission]\ntrusted_networks = []\n")
	if err != nil {
		t.Fatal(err)
	}
	f.ApplyDataDir(dir)
	if f.IMAP.Listeners[0].Trusted || len(f.Submission.TrustedNetworks) != 0 {
		t.Fatalf("file's choices overridden: %+v %v", f.IMAP.Listeners, f.Submission.TrustedNetworks)
	}
}

func TestPlainNumberIsBytes(t *testing.T) {
	c, err := Parse("t.toml", "[limits]\nquota = \"1073741824\"\n")
	if err != nil || c.Limits.Quota != 1<<30 {
		t.Fatalf("quota = %d, %v", c.Limits.Quota, err)
	}
}

// TestOpenTrustNeedsOverride: what config check refuses is accepted with
// the explicit override, and loopback stays allowed.
func TestOpenTrustNeedsOverride(t *testing.T) {
	for _, text := range []string{
		"[server]\nallow_open_trust = true\n[submission]\ntrusted_networks = [\"0.0.0.0/0\"]\n",
		"[server]\nallow_open_trust = true\n[imap]\nlisteners = [{ address = \"0.0.0.0:143\", tls = \"none\", trusted = true }]\n",
		"[imap]\nlisteners = [{ address = \"127.0.0.1:143\", tls = \"none\", trusted = true }]\n",
		"[imap]\nlisteners = [{ address = \"[::1]:143\", tls = \"none\", trusted = true }]\n",
		"[submission]\ntrusted_networks = [\"127.0.0.0/8\", \"10.1.0.0/16\"]\n",
	} {
		if _, err := Parse("t.toml", text); err != nil {
			t.Errorf("Parse(%q): %v", text, err)
		}
	}
}

func TestErrorsNameKeyAndLine(t *testing.T) {
	tests := []struct{ text, want string }{
		{"[old]\nhomes = \"ldap\"\n", "t.toml:2: old.homes:"},
		{"[old]\nhomes = \"map\"\n", "old.home_map: must be set"},
		{"[migration]\nlanguage = \"fr\"\n", "t.toml:2: migration.language:"},
		{"\n\n[server]\ndomains = []\n", "t.toml:4: server.domains:"},
		{"[submission]\ntrusted_networks = [\"10.0.0.0/33\"]\n", "t.toml:2: submission.trusted_networks:"},
		{"[nosuch]\nx = 1\n", "t.toml:1: nosuch: unknown key"},
		// An open relay, and trusted listeners anyone can reach.
		{"[submission]\ntrusted_networks = [\"0.0.0.0/0\"]\n", "open relay"},
		{"[submission]\ntrusted_networks = [\"::/0\"]\n", "open relay"},
		{"[imap]\nlisteners = [{ address = \"0.0.0.0:143\", tls = \"none\", trusted = true }]\n", "t.toml:2: imap.listeners: listener 0.0.0.0:143 is trusted"},
		{"[submission]\nlisteners = [{ address = \":587\", tls = \"starttls\", trusted = true }]\n", "submission.listeners: listener :587 is trusted"},
		{"[managesieve]\nlisteners = [{ address = \"[::]:4190\", tls = \"none\", trusted = true }]\n", "managesieve.listeners"},
	}
	for _, tc := range tests {
		_, err := Parse("t.toml", tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.text, err, tc.want)
		}
	}
}
